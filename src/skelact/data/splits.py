"""Named train/test splits, computed from the facts each reader puts in ``SkeletonSequence.meta``.

Splits are data about samples, never code inside a loader. A standard split is a rule that sends one sample to a
subset (``"train"`` or ``"test"``, or nowhere) from one meta value; the dataset store records each split under a
short name (``ntu60_xsub`` -> ``xsub``) as ``{split: {subset: [sample indices]}}``. A user brings their own split
as a file (:func:`read_split_file`) naming samples, resolved against the store's sample names by
:func:`resolve_named_splits`.

Standard splits and where their constants come from:

* ``ntu60_xsub``: train subjects 1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38; test the
  other 20 of subjects 1..40 (Shahroudy et al., "NTU RGB+D", CVPR 2016, Sec. 4.1; the same list is hard-coded in
  CTR-GCN ``data/ntu/seq_transformation.py``).
* ``ntu60_xview``: train cameras 2 and 3, test camera 1 (same sources).
* ``ntu120_xsub``: train the 53 subjects listed in :data:`NTU120_XSUB_TRAIN_SUBJECTS`, test the other 53 of 1..106
  (Liu et al., "NTU RGB+D 120", TPAMI 2020, Sec. 5.1; CTR-GCN ``data/ntu120/seq_transformation.py``).
* ``ntu120_xset``: train even setup ids, test odd setup ids of 1..32 (same sources).
* ``nw_ucla_cross_view``: train views 1 and 2, test view 3 (Wang et al., CVPR 2014; 1020 / 464 samples, identical
  to the lists in CTR-GCN ``feeders/feeder_ucla.py``).
* ``penn_action_official``: the ``train`` flag shipped in every Penn Action annotation file (1258 / 1068).

A sample whose meta value lies outside the dataset's range (e.g. subject 50 under ``ntu60_xsub``) belongs to no
subset, as in the official scripts, which select by explicit id lists.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import ConfigError, DataError

#: subset names used by every standard split
SUBSETS = ("train", "test")

#: NTU RGB+D 60 cross-subject training subjects (CVPR 2016; 20 of the 40 subjects)
NTU60_XSUB_TRAIN_SUBJECTS = frozenset(
    {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})

#: NTU RGB+D 120 cross-subject training subjects (TPAMI 2020; 53 of the 106 subjects, the NTU-60 list first)
NTU120_XSUB_TRAIN_SUBJECTS = frozenset(
    {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38,
     45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93,
     94, 95, 97, 98, 100, 103})


def _train_if_in(train: frozenset[int], universe: range) -> Callable[[int], str | None]:
    def assign(value: int) -> str | None:
        if value not in universe:
            return None
        return "train" if value in train else "test"
    return assign


def _penn_subset(value: Any) -> str | None:
    if isinstance(value, str) and value in SUBSETS:
        return value
    raise ValueError(f"expected 'train' or 'test', got {value!r}")


@dataclass(frozen=True)
class StandardSplit:
    """A published split: which meta key decides it and how a value maps to a subset."""

    name: str
    #: the name the store records it under
    short_name: str
    #: the ``SkeletonSequence.meta`` key the rule reads
    key: str
    #: meta value -> ``"train"``, ``"test"`` or ``None`` (outside the dataset's id range)
    rule: Callable[[Any], str | None]
    #: whether the meta value is an integer id (``"P003"``, ``"v01"`` and ``3`` all read as 3)
    integer: bool = True

    def assign(self, meta: Mapping[str, Any], sample: str | None = None) -> str | None:
        """The subset of one sample; :class:`DataError` naming the sample and ``meta.<key>`` if it is unusable."""
        if self.key not in meta:
            raise DataError(f"split {self.name!r} needs meta[{self.key!r}], which the reader did not provide",
                            sample, f"meta.{self.key}")
        value = meta[self.key]
        try:
            return self.rule(_as_id(value) if self.integer else value)
        except ValueError as e:
            raise DataError(f"unusable value for split {self.name!r}: {e}", sample, f"meta.{self.key}") from None


STANDARD_SPLITS: dict[str, StandardSplit] = {
    s.name: s for s in (
        StandardSplit("ntu60_xsub", "xsub", "subject", _train_if_in(NTU60_XSUB_TRAIN_SUBJECTS, range(1, 41))),
        StandardSplit("ntu60_xview", "xview", "camera", _train_if_in(frozenset({2, 3}), range(1, 4))),
        StandardSplit("ntu120_xsub", "xsub", "subject", _train_if_in(NTU120_XSUB_TRAIN_SUBJECTS, range(1, 107))),
        StandardSplit("ntu120_xset", "xset", "setup", _train_if_in(frozenset(range(2, 33, 2)), range(1, 33))),
        StandardSplit("nw_ucla_cross_view", "cross_view", "view", _train_if_in(frozenset({1, 2}), range(1, 4))),
        StandardSplit("penn_action_official", "official", "subset", _penn_subset, integer=False),
    )
}

_TRAILING_DIGITS = re.compile(r"^[A-Za-z]*0*(\d+)$")


def _as_id(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"expected an integer id, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        m = _TRAILING_DIGITS.match(value.strip())
        if m:
            return int(m.group(1))
    raise ValueError(f"expected an integer id, got {value!r}")


def standard_split(name: str) -> StandardSplit:
    """Look up a standard split by its full name; the error lists the known ones."""
    try:
        return STANDARD_SPLITS[name]
    except KeyError:
        raise ConfigError(f"unknown split {name!r}; standard splits are {sorted(STANDARD_SPLITS)}",
                          field="split") from None


def compute_split(name: str, metas: Iterable[Mapping[str, Any]],
                  sample_names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Apply a standard split to per-sample meta: ``{subset: int64 indices into metas}`` (both subsets present)."""
    builder = SplitBuilder([name])
    names = iter(sample_names) if sample_names is not None else None
    for index, meta in enumerate(metas):
        builder.add(index, meta, next(names) if names is not None else None)
    return builder.result()[name]


class SplitBuilder:
    """Accumulates standard splits one sample at a time, so a store writer never holds all the meta."""

    def __init__(self, names: Iterable[str]):
        self.splits = [standard_split(n) for n in names]
        self._members: dict[str, dict[str, list[int]]] = {s.name: {k: [] for k in SUBSETS} for s in self.splits}

    def add(self, index: int, meta: Mapping[str, Any], sample: str | None = None) -> None:
        for split in self.splits:
            subset = split.assign(meta, sample)
            if subset is not None:
                self._members[split.name][subset].append(index)

    def result(self) -> dict[str, dict[str, np.ndarray]]:
        return {name: {k: np.asarray(v, dtype=np.int64) for k, v in subsets.items()}
                for name, subsets in self._members.items()}


def short_names(names: Iterable[str]) -> dict[str, str]:
    """Full standard name -> the name recorded in a store; a clash (``ntu60_xsub`` and ``ntu120_xsub`` in one
    store) keeps the full name for the later one so neither is lost."""
    out: dict[str, str] = {}
    for name in names:
        short = standard_split(name).short_name
        out[name] = name if short in out.values() else short
    return out


def read_split_file(path: str | PathLike) -> dict[str, dict[str, list[str]]]:
    """Read a user split: JSON ``{split: {subset: [sample names]}}`` or CSV rows ``name,split,subset``.

    A CSV may start with the header line ``name,split,subset``. Names are resolved later, against the samples that
    were actually stored (:func:`resolve_named_splits`).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read split file ({getattr(e, 'strerror', None) or e})", p) from None
    if p.suffix.lower() == ".csv" or (not text.lstrip().startswith("{") and p.suffix.lower() != ".json"):
        return _read_split_csv(p, text)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON ({e.msg} at line {e.lineno})", p) from None
    if not isinstance(raw, dict) or not raw:
        raise DataError("expected a non-empty object {split: {subset: [sample names]}}", p)
    out: dict[str, dict[str, list[str]]] = {}
    for split, subsets in raw.items():
        if not isinstance(subsets, dict) or not subsets:
            raise DataError("expected an object {subset: [sample names]}", p, str(split))
        out[str(split)] = {}
        for subset, names in subsets.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise DataError("expected a list of sample names (strings)", p, f"{split}.{subset}")
            out[str(split)][str(subset)] = names
    return out


def _read_split_csv(p: Path, text: str) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        cells = [c.strip() for c in row]
        if lineno == 1 and [c.lower() for c in cells] == ["name", "split", "subset"]:
            continue
        if len(cells) != 3 or not all(cells):
            raise DataError(f"expected 3 non-empty columns name,split,subset, got {row!r}", p, f"line {lineno}")
        name, split, subset = cells
        out.setdefault(split, {}).setdefault(subset, []).append(name)
    if not out:
        raise DataError("no rows name,split,subset found", p)
    return out


def resolve_named_splits(named: Mapping[str, Mapping[str, list[str]]], name_to_index: Mapping[str, int],
                         source: str | PathLike | None = None,
                         strict: bool = True) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """Turn ``{split: {subset: [names]}}`` into sample indices.

    With ``strict`` an unknown name raises :class:`DataError` naming ``source``, the split and the first unknown
    name. Without it unknown names are dropped and returned (second element) so the caller can warn: a split that
    ships with a source may list samples the source itself rejected.
    """
    resolved: dict[str, dict[str, np.ndarray]] = {}
    unknown: list[str] = []
    for split, subsets in named.items():
        resolved[split] = {}
        for subset, names in subsets.items():
            idx = []
            for n in names:
                i = name_to_index.get(n)
                if i is None:
                    if strict:
                        total = sum(1 for s in subsets.values() for m in s if m not in name_to_index)
                        raise DataError(f"unknown sample name {n!r} ({total} unknown name(s) in this split; "
                                        "names must match the stored samples)", source, f"{split}.{subset}")
                    unknown.append(n)
                    continue
                idx.append(i)
            resolved[split][subset] = np.asarray(idx, dtype=np.int64)
    return resolved, unknown
