"""Bring your own arrays: numpy files plus a CSV of labels, for any skeleton with a layout.

The folder (``root``) holds::

    labels.csv        columns ``name`` and ``label``, then any metadata (option ``labels`` names another file)
    classes.txt       optional: one class name per line, in label order (option ``classes``)
    <name>.npy        EITHER one array per sample: [T, V, C] or [M, T, V, C]
    <name>.scores.npy        optional per-sample scores: [T, V] or [M, T, V]
    data.npy          OR one stacked array for all samples, row i = CSV row i: [N, M, T, V, C] or [N, T, V, C]
    scores.npy               optional stacked scores: [N, M, T, V] or [N, T, V]

The stacked form is used when ``data.npy`` exists (option ``data``); it is read through a memory map, so it is never
loaded whole. ``C`` is 2 or 3, ``V`` must equal the joint count of the layout, which is required (option
``layout``: a built-in name such as ``ntu25`` or the path of a layout YAML file).

Labels. ``label`` is either a 0-based class index in every row, or a class name in every row. Names are numbered by
their position in ``classes.txt`` when it exists, else in sorted order. An empty cell (or -1) means unknown. Indices
must lie below the number of classes when ``classes.txt`` gives them.

Frames and persons:

* per-sample files are taken exactly as given;
* in the stacked form a ``frames`` column gives each sample's valid length and the frames after it are dropped;
  without it, trailing frames in which every coordinate of every person is exactly 0 are dropped (the zero padding
  of ST-GCN / CTR-GCN style arrays). In both cases persons who are all zeros over the kept frames are dropped
  (padding for clips with fewer people); a sample that is all zeros is an error;
* without a scores file a joint gets score 1 if any of its coordinates is non-zero, else 0 (the convention of
  zero-padded skeleton arrays, where an exact zero marks a missing joint).

Metadata columns are kept in ``meta`` (integers and decimals converted, empty cells omitted); name them as
``SkeletonSequence`` documents (``subject``, ``camera``, ``view``, ``setup``, ...) so standard splits can use them.

User splits, exposed by :meth:`ArraySource.splits_from_file` as ``{split: {subset: [names]}}``. A split is named
after its column: a column ``split`` (its value is the subset, e.g. ``train``/``test``) is the split ``split``
(``data.split: split`` in a config), columns ``split_<name>`` are one split each, called ``<name>`` (an empty cell
leaves the sample out); or the option ``split_file`` names a CSV ``name,split,subset`` or a JSON
``{split: {subset: [names]}}`` (see :func:`skelact.data.splits.read_split_file`), which replaces the columns.

Units are whatever the arrays hold (metres, pixels, normalised): the pipelines of the configs centre and scale each
sample, so any unit works as long as every sample uses the same one, and an exact 0 is read as "missing", never
as a position (shift data whose origin is a real position, e.g. pixel (0, 0), before saving).

Example: three clips of a 3-joint layout in 2D (``my_layout.yaml`` holds ``joints: [hip, l_hand, r_hand]``, see
``skelact layouts`` and docs/own-data.md), one file per clip::

    my_clips/
      labels.csv         name,label,subject,split
                         clip1,wave,1,train
                         clip2,sit,2,train
                         clip3,wave,3,test
      clip1.npy          float32 (40, 3, 2)     40 frames, 3 joints, (x, y); one person, so no M axis
      clip2.npy          float32 (2, 25, 3, 2)  two persons, 25 frames
      clip3.npy          float32 (31, 3, 2)     clip3[5, 2] == (0, 0): the right hand is missing in frame 5

    skelact prepare arrays my_clips my_store --layout my_layout.yaml

gives classes ``sit`` = 0, ``wave`` = 1 (sorted names; a ``classes.txt`` fixes another order), a split ``split``
with subsets ``train`` (clip1, clip2) and ``test`` (clip3), meta ``subject``, and score 0 for the missing hand.
The stacked form of the same data is ``data.npy`` float32 ``(3, 2, 40, 3, 2)`` ``[N, M, T, V, C]``, zero-padded to
the longest clip and the most persons, with a ``frames`` column ``40, 25, 31`` (or trailing all-zero frames, which
are dropped) and a missing second person left all zeros.

Hostile input: a CSV row whose ``<name>.npy`` is missing is one rejected sample (``skelact prepare`` goes on); a
per-sample ``.npy`` is opened by its header first (:func:`numpy.lib.format.read_array_header_1_0`), and one that
claims more frames than ``max_frames`` (default :data:`~skelact.data.sources.base.DEFAULT_MAX_FRAMES`) or more
bytes than the file holds is refused before anything is allocated.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.safe_pickle import check_npy_header
from skelact.data.sequence import SkeletonSequence
from skelact.data.sources.base import DEFAULT_MAX_FRAMES, Source, check_frame_count, max_frames_option
from skelact.errors import DataError, LayoutError
from skelact.skeleton.layout import Layout, available_layouts, get_layout

#: the split name given to bare train/val/test lists in pyskl pickles
DEFAULT_SPLIT = "default"
#: the split name of a plain ``split`` column: named after its column, as ``split_<name>`` columns are
SPLIT_COLUMN = "split"

_RESERVED_COLUMNS = ("name", "label", "frames")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def presence_scores(keypoints: np.ndarray) -> np.ndarray:
    """Scores ``[M, T, V]`` for arrays without any: 1 where a joint has a non-zero coordinate, 0 where it is all zero."""
    return (np.asarray(keypoints) != 0).any(axis=-1).astype(np.float32)


def layout_key(spec: str | PathLike | Layout) -> str:
    """How a record names its layout: the built-in name, or the absolute path of a user layout YAML (a
    :class:`Layout` object given directly is named by its ``name``)."""
    if isinstance(spec, Layout):
        return spec.name
    key = str(spec)
    if key in available_layouts():
        return key
    return str(Path(key).resolve())


@dataclass
class _Row:
    name: str
    line: int
    label_text: str
    frames: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    subsets: dict[str, str] = field(default_factory=dict)


@dataclass
class _Index:
    rows: list[_Row]
    by_name: dict[str, int]
    labels: list[int]
    classes: list[str] | None
    stacked: bool
    stack_shape: tuple[int, ...] | None = None
    has_stack_scores: bool = False


class ArraySource(Source):
    """Numpy arrays with a label CSV (see the module docstring for the exact rules).

    Options: ``layout`` (required), ``labels`` (default ``labels.csv``), ``classes`` (a file name or a list;
    default ``classes.txt`` when present), ``split_file``, ``data`` (default ``data.npy``), ``scores`` (default
    ``scores.npy``), ``max_frames`` (longer samples are refused).
    """

    format = "arrays"

    def __init__(self, root: str | PathLike, layout: str | PathLike | Layout | None = None,
                 labels: str = "labels.csv", classes: str | list[str] | None = None,
                 split_file: str | PathLike | None = None,
                 data: str = "data.npy", scores: str = "scores.npy", max_frames: int = DEFAULT_MAX_FRAMES,
                 **options: Any):
        super().__init__(root, **options)
        self.max_frames = max_frames_option(max_frames)
        if layout is None:
            raise LayoutError("the arrays format needs a layout: give --layout with a built-in name "
                              f"({', '.join(available_layouts())}) or the path of a layout YAML file", self.root,
                              "layout")
        resolved: Layout = get_layout(layout)
        self.layout = layout_key(layout)
        self.num_joints = resolved.num_joints
        self.joint_names = resolved.joints
        self.labels_path = self._inside(labels)
        self.classes_option = classes
        self.split_file = None if split_file is None else self._inside(split_file)
        self.data_path = self._inside(data)
        self.scores_path = self._inside(scores)
        self._index_cache: _Index | None = None
        self._stack: np.ndarray | None = None
        self._stack_scores: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_stack"] = state["_stack_scores"] = None  # memory maps are reopened in each worker
        return state

    def _inside(self, name: str | PathLike) -> Path:
        p = Path(name)
        return p if p.is_absolute() else self.root / p

    # ------------------------------------------------------------------------------------------------ index

    def _index(self) -> _Index:
        if self._index_cache is None:
            self._index_cache = self._build_index()
        return self._index_cache

    def _build_index(self) -> _Index:
        if not self.root.is_dir():
            raise DataError("no such folder", self.root)
        rows = self._read_csv()
        by_name: dict[str, int] = {}
        for i, row in enumerate(rows):
            if row.name in by_name:
                raise DataError(f"name {row.name!r} repeats line {rows[by_name[row.name]].line}", self.labels_path,
                                f"line {row.line}, column name")
            by_name[row.name] = i
        labels, classes = self._resolve_labels(rows)
        index = _Index(rows=rows, by_name=by_name, labels=labels, classes=classes, stacked=self.data_path.is_file())
        if index.stacked:
            self._check_stack(index)
        # per-sample files: a row whose file is missing is that one sample's problem (read() says so), not the
        # whole folder's
        return index

    def _read_csv(self) -> list[_Row]:
        path = self.labels_path
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise DataError(f"cannot read label file ({e.strerror or e})", path) from None
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 text ({e})", path) from None
        reader = csv.reader(text.splitlines())
        header = next(reader, None)
        if header is None:
            raise DataError("empty file; expected a header line with columns name,label", path)
        header = [h.strip() for h in header]
        for required in ("name", "label"):
            if required not in header:
                raise DataError(f"missing column {required!r} (header is {header})", path, required)
        dup = sorted({h for h in header if header.count(h) > 1})
        if dup:
            raise DataError(f"duplicate column(s) {dup}", path, dup[0])
        rows = []
        for line, cells in enumerate(reader, start=2):
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise DataError(f"{len(cells)} cells for {len(header)} columns", path, f"line {line}")
            values = dict(zip(header, (c.strip() for c in cells)))
            if not values["name"]:
                raise DataError("empty sample name", path, f"line {line}, column name")
            row = _Row(name=values["name"], line=line, label_text=values["label"])
            for col, value in values.items():
                if col in ("name", "label"):
                    continue
                if col == "frames":
                    if value:
                        if not _INT.match(value) or int(value) < 1:
                            raise DataError(f"expected a positive frame count, got {value!r}", path,
                                            f"line {line}, column frames")
                        row.frames = int(value)
                elif col == "split" or col.startswith("split_"):
                    if value:
                        row.subsets[SPLIT_COLUMN if col == SPLIT_COLUMN else col[len("split_"):]] = value
                elif value:
                    row.meta[col] = _convert(value)
            rows.append(row)
        if not rows:
            raise DataError("no sample rows under the header", path)
        return rows

    def _class_list(self) -> list[str] | None:
        option = self.classes_option
        if isinstance(option, (list, tuple)):
            return [str(c) for c in option]
        path = self._inside(option) if option is not None else self.root / "classes.txt"
        if option is None and not path.is_file():
            return None
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except OSError as e:
            raise DataError(f"cannot read class list ({e.strerror or e})", path) from None
        names = [ln.strip() for ln in lines if ln.strip()]
        if not names:
            raise DataError("no class names (one per line expected)", path)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DataError(f"duplicate class name(s) {dup}", path)
        return names

    def _resolve_labels(self, rows: list[_Row]) -> tuple[list[int], list[str] | None]:
        classes = self._class_list()
        given = [r.label_text for r in rows if r.label_text and r.label_text != "-1"]
        as_index = all(_INT.match(t) for t in given)
        labels = []
        if as_index:
            for r in rows:
                k = int(r.label_text) if r.label_text else -1
                if k < -1 or (classes is not None and k >= len(classes)):
                    bound = f"0..{len(classes) - 1} ({len(classes)} classes)" if classes is not None else ">= 0"
                    raise DataError(f"class index {k} is out of range {bound}", self.labels_path,
                                    f"line {r.line}, column label")
                labels.append(k)
            return labels, classes
        if classes is None:
            classes = sorted(set(given))
        position = {c: i for i, c in enumerate(classes)}
        for r in rows:
            if not r.label_text or r.label_text == "-1":
                labels.append(-1)
            elif r.label_text in position:
                labels.append(position[r.label_text])
            else:
                raise DataError(f"class {r.label_text!r} is not in the class list {classes}", self.labels_path,
                                f"line {r.line}, column label")
        return labels, classes

    def _check_stack(self, index: _Index) -> None:
        stack = self._open_stack()
        shape = stack.shape
        if stack.ndim not in (4, 5):
            raise DataError(f"expected [N, M, T, V, C] or [N, T, V, C], got shape {shape}", self.data_path)
        if shape[0] != len(index.rows):
            raise DataError(f"{shape[0]} samples but {self.labels_path.name} has {len(index.rows)} rows "
                            "(row i of the CSV is sample i of the array)", self.data_path)
        self._check_joints(shape[-2], shape[-1], self.data_path, shape)
        index.stack_shape = tuple(shape)
        if self.scores_path.is_file():
            scores = self._open_stack_scores()
            if tuple(scores.shape) != tuple(shape[:-1]):
                raise DataError(f"expected shape {tuple(shape[:-1])} to match {self.data_path.name}, got "
                                f"{tuple(scores.shape)}", self.scores_path)
            index.has_stack_scores = True
        for row in index.rows:
            if row.frames is not None and row.frames > shape[-3]:
                raise DataError(f"{row.frames} frames but {self.data_path.name} holds {shape[-3]}",
                                self.labels_path, f"line {row.line}, column frames")

    def _check_joints(self, num_joints: int, coords: int, path: Path, shape: tuple[int, ...]) -> None:
        if num_joints != self.num_joints:
            hint = ""
            if len(shape) == 5 and shape[1] in (2, 3) and shape[3] == self.num_joints:
                hint = " (this looks like ST-GCN's [N, C, T, V, M] order: transpose it with a.transpose(0, 4, 2, 3, 1))"
            raise LayoutError(f"array of shape {shape} has {num_joints} joints but layout {self.layout!r} expects "
                              f"{self.num_joints} ({', '.join(self.joint_names)}){hint}", path, "joints")
        if coords not in (2, 3):
            raise DataError(f"expected 2 or 3 coordinates per joint (last axis), got shape {shape}", path,
                            "coords")

    def _sample_path(self, name: str) -> Path:
        return self.root / f"{name}.npy"

    def _open_stack(self) -> np.ndarray:
        if self._stack is None:
            self._stack = _load(self.data_path, mmap=True)
        return self._stack

    def _open_stack_scores(self) -> np.ndarray:
        if self._stack_scores is None:
            self._stack_scores = _load(self.scores_path, mmap=True)
        return self._stack_scores

    # ------------------------------------------------------------------------------------------------ interface

    def items(self) -> list[str]:
        return [r.name for r in self._index().rows]

    def class_names(self) -> list[str] | None:
        return self._index().classes

    def describe(self, item: Any) -> str:
        index = self._index()
        if index.stacked:
            return f"{self.data_path}[{index.by_name.get(item, '?')}] ({item})"
        return str(self._sample_path(item))

    def read(self, item: str) -> SkeletonSequence:
        index = self._index()
        if item not in index.by_name:
            raise DataError(f"unknown sample name {item!r}", self.labels_path, "name")
        i = index.by_name[item]
        row = index.rows[i]
        if index.stacked:
            keypoints, scores = self._read_stacked(i, row, index)
            source = f"{self.data_path}[{i}]"
        else:
            if not self._sample_path(row.name).is_file():
                raise DataError(f"no such file (named by line {row.line} of {self.labels_path.name}; no stacked "
                                f"{self.data_path.name} either)", self._sample_path(row.name), "name")
            keypoints, scores = self._read_file(row.name)
            source = str(self._sample_path(row.name))
        meta = dict(row.meta)
        label = index.labels[i]
        if label >= 0 and index.classes is not None:
            meta["label_name"] = index.classes[label]
        seq = SkeletonSequence(keypoints=keypoints, scores=scores, label=label, name=row.name, layout=self.layout,
                               meta=meta)
        return seq.validate(source, self.num_joints)

    def _read_file(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        path = self._sample_path(name)
        shape = _checked_header(path, self.max_frames, frame_axis=-3)
        if len(shape) not in (3, 4):
            raise DataError(f"expected [T, V, C] or [M, T, V, C], got shape {shape}", path)
        keypoints = _load(path, mmap=False)
        if keypoints.ndim not in (3, 4):
            raise DataError(f"expected [T, V, C] or [M, T, V, C], got shape {keypoints.shape}", path)
        # checked before the person axis is added, so a message shows the file's own shape
        self._check_joints(keypoints.shape[-2], keypoints.shape[-1], path, tuple(keypoints.shape))
        if keypoints.ndim == 3:
            keypoints = keypoints[None]
        score_path = self.root / f"{name}.scores.npy"
        if not score_path.is_file():
            return keypoints, presence_scores(keypoints)
        _checked_header(score_path, self.max_frames, frame_axis=-2)
        scores = _load(score_path, mmap=False)
        if scores.ndim == 2:
            scores = scores[None]
        if scores.shape != keypoints.shape[:3]:
            raise DataError(f"expected shape {keypoints.shape[:3]} (or {keypoints.shape[1:3]}) to match "
                            f"{path.name}, got {scores.shape}", score_path, "scores")
        return keypoints, scores

    def _read_stacked(self, i: int, row: _Row, index: _Index) -> tuple[np.ndarray, np.ndarray]:
        check_frame_count(int(self._open_stack().shape[-3]), self.max_frames, f"{self.data_path}[{i}]", "frames")
        keypoints = np.array(self._open_stack()[i], dtype=np.float32)
        scores = np.array(self._open_stack_scores()[i], dtype=np.float32) if index.has_stack_scores else None
        if keypoints.ndim == 3:
            keypoints = keypoints[None]
            scores = None if scores is None else scores[None]
        if scores is None:
            scores = presence_scores(keypoints)
        if row.frames is not None:
            length = row.frames
        else:
            nonzero = np.flatnonzero((keypoints != 0).any(axis=(0, 2, 3)))
            length = int(nonzero[-1]) + 1 if nonzero.size else 0
        keypoints, scores = keypoints[:, :length], scores[:, :length]
        present = (keypoints != 0).any(axis=(1, 2, 3))
        if not present.any():
            raise DataError(f"sample {row.name!r} is all zeros", f"{self.data_path}[{i}]", "keypoints")
        return keypoints[present], scores[present]

    # ------------------------------------------------------------------------------------------------ splits

    def splits_from_file(self) -> dict[str, dict[str, list[str]]]:
        """User splits as ``{split: {subset: [sample names]}}`` (names in CSV order); ``{}`` when none is given."""
        index = self._index()
        if self.split_file is not None:
            from skelact.data.splits import read_split_file

            splits = read_split_file(self.split_file)
            for split, subsets in splits.items():
                for subset, names in subsets.items():
                    unknown = [n for n in names if n not in index.by_name]
                    if unknown:
                        raise DataError(f"{len(unknown)} name(s) not in {self.labels_path.name}, e.g. "
                                        f"{unknown[0]!r}", self.split_file, f"{split}.{subset}")
            return splits
        splits: dict[str, dict[str, list[str]]] = {}
        for row in index.rows:
            for split, subset in row.subsets.items():
                splits.setdefault(split, {}).setdefault(subset, []).append(row.name)
        return splits


def _convert(value: str) -> Any:
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


def _checked_header(path: Path, max_frames: int, frame_axis: int) -> tuple[int, ...]:
    """The shape in an .npy header, refused when its frame axis exceeds ``max_frames`` or the data it claims is
    larger than the file (:func:`~skelact.data.safe_pickle.check_npy_header`): read before loading, so a 100-byte
    file claiming 10^9 frames allocates nothing."""
    def frame_cap(shape: tuple[int, ...]) -> None:
        if len(shape) >= -frame_axis:
            check_frame_count(shape[frame_axis], max_frames, path, "shape")

    try:
        shape = check_npy_header(path, frame_cap)
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except OSError as e:
        raise DataError(f"not a readable .npy array ({e.strerror or e})", path) from None
    if shape is None:
        raise DataError("not a readable .npy array (no .npy header)", path)
    return shape

def _load(path: Path, mmap: bool) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"not a readable .npy array ({e})", path) from None
    if not isinstance(array, np.ndarray):
        raise DataError("expected a single .npy array, got an .npz archive", path)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise DataError(f"expected a real numeric array, got dtype {array.dtype}", path)
    return array
