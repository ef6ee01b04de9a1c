"""pyskl / mmaction2 pose-annotation pickles, and a writer that produces them.

The format (pyskl ``tools/data/README.md``; Duan et al., "PYSKL: Towards Good Practices for Skeleton Action
Recognition", ACM MM 2022) is one pickle ``{"split": {name: [sample ids]}, "annotations": [dict, ...]}``. A sample
is identified by its ``frame_dir``, or by its ``filename`` when the first annotation has one (pyskl's rule; split
lists use the same identifier). Its keypoints come in one of three forms, tried in this order:

A. inline and dense: ``keypoint`` ``[M, T, V, C]`` and ``keypoint_score`` ``[M, T, V]`` (NTU, GYM, UCF101, ...;
   3D pickles have no ``keypoint_score``: a joint then scores 1 unless all its coordinates are exactly 0, the
   padding of absent persons);
B. inline and compressed: ``keypoint`` ``[N, V, C+1]`` (x, y, score) with ``frame_inds`` ``[N]``, one row per
   detected skeleton;
C. compressed in a separate keypoint file, as in the Kinetics-400 release: ``frame_inds``, ``box_score`` and
   ``valid`` are in the annotation and the ``[N, V, 3]`` rows live elsewhere. pyskl names the file in ``raw_file``
   (a pickle ``{frame_dir: {"keypoint": [N, V, 3]}}`` holding many clips); mmaction2 1.x (``PoseDataset`` with
   ``data_prefix["skeleton"]``) reads ``<skeleton dir>/<frame_dir or filename>.pkl``, a dict merged into the
   annotation (a bare ``[N, V, 3]`` array, as mmaction2 0.x ``LoadKineticsPose`` reads, is accepted too).
   Relative paths are taken from the option ``keypoint_dir`` (default: the folder of the annotation pickle).

Compressed rows are expanded as pyskl's ``DecompressPose(squeeze=True)`` does: with the option ``box_thr`` only rows
whose ``box_score`` is at least that value are kept (mmaction2's ``anno_inds``); frames without any skeleton are
dropped and the remaining distinct ``frame_inds`` become ``t = 0, 1, ...``; within a frame persons fill slots in
row order; when some frame has more than ``max_persons`` (default 10, pyskl's ``max_person``) persons, every
frame's persons are ranked by the sum of their joint scores (stable, highest first) and the first ``max_persons``
kept. ``M`` is the most persons any frame has, at most ``max_persons``.

Frame counts. A dense annotation's ``total_frames`` must equal its keypoint array's frame axis: pyskl samples frame
indices below ``total_frames`` and reads ``keypoint[:, t]`` (``UniformSampleFrames`` then ``PoseDecode``), so a
larger count sends it past the array's end and a smaller one silently drops frames; we cannot tell which of the
two is wrong, so the sample is rejected with both numbers. A compressed annotation's ``total_frames`` counts the
video's frames, most of them without a skeleton (Kinetics: 150 of 300), so it may exceed the frames we keep but
not the frame indices: the largest index may equal it (the mmaction2 Kinetics sample numbers frames from 1) and
no more. Neither form allocates by ``total_frames`` here (compressed rows are squeezed to the frames they hold), but
a count above the option ``max_frames`` (default 100000, the cap of the other readers) is rejected too, as is a
keypoint array with more frames than that. ``img_shape`` and ``original_shape`` are only copied into ``meta``.

The layout is the option ``layout`` (built-in name or YAML path), else the annotation's own ``layout`` entry (which
:func:`write_pyskl_pickle` adds), else inferred from ``V``: 25 -> ``ntu25``, 17 -> ``coco17``, 18 -> ``openpose18``.

Splits: pyskl's split dict is flat (``xsub_train``, ``xsub_val``, ``train1``, ``test1``, ``train``, ``val``).
:meth:`PysklPickleSource.splits_from_file` groups it into ``{split: {subset: [names]}}`` by
:func:`group_split_names` (rule documented there) and :func:`write_pyskl_pickle` applies the inverse,
:func:`flatten_split_names`.

Both pickles are read by :func:`skelact.data.safe_pickle.load_pickle`, which refuses any global beyond numpy arrays,
scalars and plain containers (a pickle naming one could run code); the option ``trust_pickle`` (``--trust-pickle``)
reads a file the user trusts with the plain unpickler.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.atomic import write_atomic
from skelact.data.safe_pickle import load_pickle
from skelact.data.sequence import SkeletonSequence
from skelact.data.sources.arrays import DEFAULT_SPLIT, layout_key, presence_scores
from skelact.data.sources.base import DEFAULT_MAX_FRAMES, Source
from skelact.errors import ConfigError, DataError, LayoutError
from skelact.skeleton.layout import Layout, available_layouts, get_layout

#: joint count -> built-in layout, for pickles that do not say (pyskl's NTU Kinect, HRNet COCO, OpenPose data)
LAYOUT_BY_NUM_JOINTS = {25: "ntu25", 17: "coco17", 18: "openpose18"}

#: annotation keys with a fixed meaning; every other scalar entry is copied into ``meta``
_RESERVED = frozenset({"frame_dir", "filename", "label", "keypoint", "keypoint_score", "total_frames", "img_shape",
                       "original_shape", "raw_file", "frame_inds", "box_score", "valid", "anno_inds", "layout"})
_SUBSET_WORD = re.compile(r"^(train|val|test)(\d*)$")
_NUMBERED_SPLIT = re.compile(r"^split(\d+)$")


# --------------------------------------------------------------------------------------------------------- splits


def group_split_names(split: Mapping[str, Sequence[str]],
                      source: str | PathLike | None = None) -> dict[str, dict[str, list[str]]]:
    """Group pyskl's flat split names into ``{split: {subset: [ids]}}``.

    The rule, applied to each name in order:

    1. ``train``, ``val``, ``test`` -> split ``default`` (FineGYM's ``train``/``val``);
       ``train<N>``, ``val<N>``, ``test<N>`` -> split ``split<N>`` (UCF101 / HMDB51's ``train1``, ``test1``, ...);
       the subset is the word;
    2. otherwise a name with an underscore is cut at its last one: ``<split>_<subset>``
       (``xsub_train`` -> ``xsub`` / ``train``, ``xset_val`` -> ``xset`` / ``val``);
    3. any other name is a split of its own with one subset of the same name (``all`` -> ``all`` / ``all``).

    Two names that land on the same split and subset are an error.
    """
    grouped: dict[str, dict[str, list[str]]] = {}
    origin: dict[tuple[str, str], str] = {}
    for key, names in split.items():
        key = str(key)
        split_name, subset = _split_and_subset(key)
        if (split_name, subset) in origin:
            raise DataError(f"split names {origin[split_name, subset]!r} and {key!r} both mean "
                            f"{split_name}/{subset}", source, "split")
        origin[split_name, subset] = key
        grouped.setdefault(split_name, {})[subset] = [str(n) for n in names]
    return grouped


def _split_and_subset(key: str) -> tuple[str, str]:
    word = _SUBSET_WORD.match(key)
    if word:
        return (DEFAULT_SPLIT if not word.group(2) else f"split{word.group(2)}"), word.group(1)
    prefix, _, subset = key.rpartition("_")
    if prefix and subset:
        return prefix, subset
    return key, key


def flatten_split_names(splits: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, list[str]]:
    """The inverse of :func:`group_split_names`: ``{"xsub": {"train": ids}}`` -> ``{"xsub_train": ids}``.

    ``default``/``train`` becomes ``train``, ``split1``/``test`` becomes ``test1``, ``foo``/``foo`` becomes ``foo``,
    anything else ``<split>_<subset>``. A pair that would not group back to itself (a subset containing ``_``,
    ``train``/``train``) raises :class:`DataError`.
    """
    flat: dict[str, list[str]] = {}
    for split_name, subsets in splits.items():
        for subset, names in subsets.items():
            split_name, subset = str(split_name), str(subset)
            key = _flat_key(split_name, subset)
            if _split_and_subset(key) != (split_name, subset) or key in flat:
                raise DataError(f"split {split_name!r} / subset {subset!r} cannot be written as a pyskl split name "
                                f"(it would read back as {'/'.join(_split_and_subset(key))}); rename it",
                                field=f"splits.{split_name}.{subset}")
            flat[key] = [str(n) for n in names]
    return flat


def _flat_key(split_name: str, subset: str) -> str:
    if subset in ("train", "val", "test"):
        if split_name == DEFAULT_SPLIT:
            return subset
        numbered = _NUMBERED_SPLIT.match(split_name)
        if numbered:
            return f"{subset}{numbered.group(1)}"
    if split_name == subset:
        return split_name
    return f"{split_name}_{subset}"


# --------------------------------------------------------------------------------------------------------- reader


class PysklPickleSource(Source):
    """One pyskl / mmaction2 annotation pickle (``root``: the ``.pkl`` file, or a folder holding exactly one).

    Options: ``layout``, ``keypoint_dir``, ``box_thr``, ``max_persons``, ``max_frames`` (see the module docstring),
    ``class_names`` (a list, or a text file with one name per line such as pyskl's ``label_map/*.txt``; without it
    the pickle carries no class names and :meth:`class_names` is ``None``) and ``trust_pickle`` (read the pickles
    with the plain unpickler, which runs any code they name: only for files you trust).
    """

    format = "pyskl"

    def __init__(self, root: str | PathLike, layout: str | PathLike | Layout | None = None,
                 keypoint_dir: str | PathLike | None = None, box_thr: float | None = None, max_persons: int = 10,
                 class_names: str | PathLike | list[str] | None = None, trust_pickle: bool = False,
                 max_frames: int = DEFAULT_MAX_FRAMES, **options: Any):
        super().__init__(root, **options)
        if not isinstance(trust_pickle, bool):
            raise ConfigError(f"expected true or false, got {trust_pickle!r}", field="trust_pickle")
        self.trust_pickle = trust_pickle
        self.path = self._pickle_path()
        # resolved now, so that an unknown layout fails here and not in every worker
        self.layout_object: Layout | None = None if layout is None else get_layout(layout)
        self.layout_option = None if layout is None else layout_key(layout)
        self.keypoint_dir = Path(keypoint_dir) if keypoint_dir is not None else self.path.parent
        if box_thr is not None and (isinstance(box_thr, bool) or not isinstance(box_thr, (int, float))):
            raise ConfigError(f"expected a number, got {box_thr!r}", field="box_thr")
        self.box_thr = None if box_thr is None else float(box_thr)
        if isinstance(max_persons, bool) or not isinstance(max_persons, (int, np.integer)) or max_persons < 1:
            raise ConfigError(f"expected a positive integer, got {max_persons!r}", field="max_persons")
        self.max_persons = int(max_persons)
        if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 1:
            raise ConfigError(f"expected a positive number of frames, got {max_frames!r}", field="max_frames")
        self.max_frames = int(max_frames)
        self.class_names_option = class_names
        self._cache: tuple[list[dict], dict[str, int], dict[str, list]] | None = None
        self._kpfile: tuple[Path, Any] | None = None
        self._joint_counts: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = state["_kpfile"] = None  # each worker reloads instead of receiving a copy
        return state

    def _pickle_path(self) -> Path:
        if self.root.is_dir():
            found = sorted(self.root.glob("*.pkl"))
            if len(found) != 1:
                raise DataError(f"expected the annotation .pkl file or a folder with exactly one, found {len(found)}",
                                self.root)
            return found[0]
        return self.root

    # ------------------------------------------------------------------------------------------------ index

    def _index(self) -> tuple[list[dict], dict[str, int], dict[str, list]]:
        if self._cache is None:
            self._cache = self._load_index()
        return self._cache

    def _load_index(self) -> tuple[list[dict], dict[str, int], dict[str, list]]:
        content = load_pickle(self.path, trust=self.trust_pickle)
        if isinstance(content, list):
            annotations, split = content, {}
        elif isinstance(content, dict) and "annotations" in content:
            annotations, split = content["annotations"], content.get("split", {})
        else:
            raise DataError("expected a dict {'split': ..., 'annotations': [...]} or a list of annotations, got "
                            f"{type(content).__name__}", self.path)
        if not isinstance(annotations, list) or not annotations:
            raise DataError("expected a non-empty list of annotation dicts", self.path, "annotations")
        if not isinstance(annotations[0], dict):
            raise DataError(f"expected a dict, got {type(annotations[0]).__name__}", self.path, "annotations[0]")
        # pyskl's rule: samples (and split lists) are named by 'filename' when the first annotation has one
        identifier = "filename" if "filename" in annotations[0] else "frame_dir"
        by_key: dict[str, int] = {}
        for i, ann in enumerate(annotations):
            if not isinstance(ann, dict):
                raise DataError(f"expected a dict, got {type(ann).__name__}", self.path, f"annotations[{i}]")
            key = ann.get(identifier)
            if not isinstance(key, str) or not key:
                raise DataError(f"needs a {identifier!r} string naming the sample", self.path,
                                f"annotations[{i}].{identifier}")
            if key in by_key:
                raise DataError(f"sample {key!r} also at annotations[{by_key[key]}]", self.path,
                                f"annotations[{i}].{identifier}")
            by_key[key] = i
        if not isinstance(split, dict) or not all(isinstance(v, (list, tuple)) for v in split.values()):
            raise DataError("expected a dict {split name: [sample ids]}", self.path, "split")
        return annotations, by_key, split

    def items(self) -> list[str]:
        _, by_key, _ = self._index()
        return list(by_key)

    def describe(self, item: Any) -> str:
        return f"{self.path} [{item}]"

    def class_names(self) -> list[str] | None:
        option = self.class_names_option
        if option is None:
            return None
        if isinstance(option, (list, tuple)):
            return [str(c) for c in option]
        path = Path(option)
        try:
            names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except OSError as e:
            raise DataError(f"cannot read class names ({e.strerror or e})", path) from None
        if not names:
            raise DataError("no class names (one per line expected)", path)
        return names

    def labels(self) -> dict[str, int]:
        """Sample id -> class index, from the annotations alone (no keypoint file is opened)."""
        annotations, by_key, _ = self._index()
        return {key: _label_of(annotations[i], self.path, f"annotations[{i}]") for key, i in by_key.items()}

    def splits_from_file(self) -> dict[str, dict[str, list[str]]]:
        """The pickle's splits as ``{split: {subset: [sample ids]}}`` grouped by :func:`group_split_names`.

        As in pyskl, which selects ``annotations`` whose id is in the split list, ids without an annotation are
        left out.
        """
        _, by_key, split = self._index()
        grouped = group_split_names(split, self.path)
        return {s: {sub: [n for n in names if n in by_key] for sub, names in subsets.items()}
                for s, subsets in grouped.items()}

    @property
    def layout(self) -> str:  # type: ignore[override]
        """The layout of the samples: the option, else that of the first annotation whose layout is knowable."""
        if self.layout_option is not None:
            return self.layout_option
        annotations, _, _ = self._index()
        for ann in annotations:
            if isinstance(ann.get("layout"), str):
                return ann["layout"]
            kp = ann.get("keypoint")
            if isinstance(kp, np.ndarray) and kp.ndim in (3, 4) and kp.shape[-2] in LAYOUT_BY_NUM_JOINTS:
                return LAYOUT_BY_NUM_JOINTS[kp.shape[-2]]
        raise LayoutError("cannot infer the layout (no annotation carries inline keypoints with 17, 18 or 25 "
                          "joints); give --layout", self.path, "layout")

    # ------------------------------------------------------------------------------------------------ read

    def read(self, item: str) -> SkeletonSequence:
        annotations, by_key, _ = self._index()
        if item not in by_key:
            raise DataError(f"no annotation for sample {item!r}", self.path, "frame_dir")
        i = by_key[item]
        where = f"annotations[{i}]"
        try:
            return self._read_annotation(dict(annotations[i]), item, where)
        except MemoryError:
            raise DataError("out of memory reading this sample (its arrays claim more than this machine holds: "
                            "corrupt or hostile?)", self.path, f"{where}, {item}") from None

    def _read_annotation(self, ann: dict, item: str, where: str) -> SkeletonSequence:
        if "keypoint" not in ann:
            ann.update(self._external_keypoints(ann, item, where))
        kp = np.asarray(ann["keypoint"])
        if not np.issubdtype(kp.dtype, np.number):
            raise DataError(f"expected a numeric array, got dtype {kp.dtype}", self.path, f"{where}.keypoint")
        total_frames = self._total_frames(ann, where)
        meta: dict[str, Any] = {}
        if kp.ndim == 4:
            if kp.shape[1] > self.max_frames:
                raise DataError(f"{kp.shape[1]} frames is more than the cap of {self.max_frames} (option "
                                "max_frames)", self.path, f"{where}.keypoint")
            if total_frames is not None and total_frames != kp.shape[1]:
                raise DataError(f"total_frames is {total_frames} but keypoint holds {kp.shape[1]} frames (pyskl "
                                "reads keypoint[:, t] for t below total_frames, so they must agree; corrupt "
                                "annotation?)", self.path, f"{where}.total_frames")
            keypoints = kp.astype(np.float32)
            scores = self._dense_scores(ann, keypoints, where)
        elif kp.ndim == 3:
            keypoints, scores = self._decompress(ann, kp, where, total_frames)
            if total_frames is not None:
                meta["total_frames"] = total_frames
        else:
            raise DataError(f"expected [M, T, V, C] or compressed [N, V, C+1], got shape {kp.shape}", self.path,
                            f"{where}.keypoint")
        layout = self._layout_of(ann, keypoints.shape[2], where)
        meta.update(_meta_of(ann))
        seq = SkeletonSequence(keypoints=keypoints, scores=scores, label=_label_of(ann, self.path, where),
                               name=item, layout=layout, meta=meta)
        return seq.validate(f"{self.path} [{where}, {item}]")

    def _total_frames(self, ann: dict, where: str) -> int | None:
        """The annotation's ``total_frames`` (``None`` when absent), refused when not a count or above the cap."""
        if "total_frames" not in ann:
            return None
        value = ann["total_frames"]
        if isinstance(value, np.ndarray) and value.size == 1:
            value = value.reshape(()).item()
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
            raise DataError(f"expected a frame count (an integer >= 0), got {value!r}", self.path,
                            f"{where}.total_frames")
        if value > self.max_frames:
            raise DataError(f"{int(value)} frames is more than the cap of {self.max_frames} (option max_frames; "
                            "corrupt annotation?)", self.path, f"{where}.total_frames")
        return int(value)

    def _dense_scores(self, ann: dict, keypoints: np.ndarray, where: str) -> np.ndarray:
        if ann.get("keypoint_score") is None:
            return presence_scores(keypoints)
        scores = np.asarray(ann["keypoint_score"], dtype=np.float32)
        if scores.shape != keypoints.shape[:3]:
            raise DataError(f"expected shape {keypoints.shape[:3]} to match keypoint, got {scores.shape}", self.path,
                            f"{where}.keypoint_score")
        return scores

    def _external_keypoints(self, ann: dict, key: str, where: str) -> dict:
        if "raw_file" in ann:
            path = self._keypoint_path(str(ann["raw_file"]))
            content = self._load_keypoint_file(path, key, where)
            frame_dir = ann.get("frame_dir", key)
            if not isinstance(content, dict) or frame_dir not in content:
                raise DataError(f"keypoint file has no entry {frame_dir!r} (pyskl kpfiles map frame_dir to "
                                "{'keypoint': [N, V, 3]})", path, "frame_dir")
            entry = content[frame_dir]
        else:
            path = self._keypoint_path(f"{key}.pkl")
            if not path.is_file() and "frame_dir" not in ann and self._keypoint_path(key).is_file():
                path = self._keypoint_path(key)  # mmaction2 0.x: 'filename' is the keypoint file itself
            entry = self._load_keypoint_file(path, key, where)
        if isinstance(entry, np.ndarray):
            return {"keypoint": entry}
        if isinstance(entry, dict) and "keypoint" in entry:
            return entry
        raise DataError("expected a dict with 'keypoint' or a [N, V, 3] array", path, "keypoint")

    def _keypoint_path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else self.keypoint_dir / p

    def _load_keypoint_file(self, path: Path, key: str, where: str) -> Any:
        if self._kpfile is not None and self._kpfile[0] == path:
            return self._kpfile[1]  # pyskl kpfiles hold many clips; consecutive samples often share one
        if not path.is_file():
            raise DataError(f"missing: sample {key!r} ({self.path.name} {where}) has no inline 'keypoint' array, "
                            "so its keypoints must come from this separate keypoint file (the Kinetics-400 "
                            "kpfile layout of pyskl / mmaction2); put the keypoint files there or give their "
                            "folder with the option keypoint_dir", path, "keypoint")
        content = load_pickle(path, trust=self.trust_pickle)
        self._kpfile = (path, content)
        return content

    def _decompress(self, ann: dict, rows: np.ndarray, where: str,
                    total_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """pyskl ``DecompressPose(squeeze=True, max_person=self.max_persons)``, with mmaction2's ``anno_inds``;
        ``total_frames`` (the annotation's, if any) must not be below the largest frame index."""
        if "frame_inds" not in ann:
            raise DataError("compressed keypoint rows [N, V, C] need 'frame_inds'", self.path, f"{where}.frame_inds")
        frame_inds = np.asarray(ann["frame_inds"]).reshape(-1)
        if frame_inds.shape[0] != rows.shape[0] or not np.issubdtype(frame_inds.dtype, np.integer):
            raise DataError(f"expected {rows.shape[0]} integer frame indices (one per keypoint row), got "
                            f"{frame_inds.shape[0]} of dtype {frame_inds.dtype}", self.path, f"{where}.frame_inds")
        if total_frames is not None and frame_inds.size and int(frame_inds.max()) > total_frames:
            raise DataError(f"frame index {int(frame_inds.max())} is beyond total_frames {total_frames} (corrupt "
                            "annotation?)", self.path, f"{where}.frame_inds")
        if rows.shape[2] < 3:
            raise DataError(f"expected rows of (x, y[, z], score), got shape {rows.shape}", self.path,
                            f"{where}.keypoint")
        if self.box_thr is not None:
            if "box_score" not in ann:
                raise DataError("option box_thr needs 'box_score' in the annotation", self.path,
                                f"{where}.box_score")
            box_score = np.asarray(ann["box_score"], dtype=np.float64).reshape(-1)
            if box_score.shape[0] != rows.shape[0]:
                raise DataError(f"expected {rows.shape[0]} box scores, got {box_score.shape[0]}", self.path,
                                f"{where}.box_score")
            keep = box_score >= self.box_thr
            rows, frame_inds = rows[keep], frame_inds[keep]
        if rows.shape[0] == 0:
            raise DataError("no skeleton" + (f" with box_score >= {self.box_thr}" if self.box_thr else ""),
                            self.path, f"{where}.keypoint")
        if np.any(np.diff(frame_inds) < 0):
            raise DataError("frame indices must be non-decreasing (pyskl's requirement)", self.path,
                            f"{where}.frame_inds")
        rows = rows.astype(np.float32)
        frames, t = np.unique(frame_inds, return_inverse=True)
        t = t.reshape(-1)
        most = int(np.bincount(t).max())
        if most > self.max_persons:
            order = np.lexsort((-rows[..., -1].sum(axis=1), t))
            rows, t = rows[order], t[order]
        first_row = np.searchsorted(t, np.arange(len(frames)))
        slot = np.arange(len(t)) - first_row[t]
        keep = slot < self.max_persons
        num_persons = min(most, self.max_persons)
        keypoints = np.zeros((num_persons, len(frames), rows.shape[1], rows.shape[2] - 1), dtype=np.float32)
        scores = np.zeros((num_persons, len(frames), rows.shape[1]), dtype=np.float32)
        keypoints[slot[keep], t[keep]] = rows[keep, :, :-1]
        scores[slot[keep], t[keep]] = rows[keep, :, -1]
        return keypoints, scores

    def _layout_of(self, ann: dict, num_joints: int, where: str) -> str:
        name = self.layout_option
        own = ann.get("layout")
        if name is None and isinstance(own, str):
            if own not in available_layouts() and not Path(own).is_file():
                raise LayoutError(f"the annotation names layout {own!r}, which is neither built-in nor a file; "
                                  "give --layout", self.path, f"{where}.layout")
            name = own
        if name is None:
            if num_joints not in LAYOUT_BY_NUM_JOINTS:
                raise LayoutError(f"cannot infer a layout for {num_joints} joints (known: "
                                  f"{', '.join(f'{v} -> {n}' for v, n in LAYOUT_BY_NUM_JOINTS.items())}); "
                                  "give --layout", self.path, f"{where}.keypoint")
            return LAYOUT_BY_NUM_JOINTS[num_joints]
        if name not in self._joint_counts:
            chosen = self.layout_object if name == self.layout_option else get_layout(name)
            self._joint_counts[name] = chosen.num_joints
        if self._joint_counts[name] != num_joints:
            raise LayoutError(f"keypoints have {num_joints} joints but layout {name!r} has "
                              f"{self._joint_counts[name]}", self.path, f"{where}.keypoint")
        return name


def _label_of(ann: dict, path: Path, where: str) -> int:
    label = ann.get("label", -1)
    if isinstance(label, np.ndarray) and label.size == 1:
        label = label.item()
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)) or label < -1:
        raise DataError(f"expected a class index >= 0, got {label!r}", path, f"{where}.label")
    return int(label)


def _plain(value: Any) -> Any:
    """A meta value as plain Python (scalars and short tuples of scalars), or ``None`` if it is not one."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and len(value) <= 8:
        items = [_plain(v) for v in value]
        if all(v is not None and not isinstance(v, tuple) for v in items):
            return tuple(items)
    return None


def _meta_of(ann: dict) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    img_shape = _plain(ann.get("img_shape"))
    if isinstance(img_shape, tuple) and len(img_shape) == 2:
        meta["img_shape"] = tuple(int(v) for v in img_shape)
    original = _plain(ann.get("original_shape"))
    if isinstance(original, tuple) and len(original) == 2 and original != meta.get("img_shape"):
        meta["original_shape"] = tuple(int(v) for v in original)
    for key, value in ann.items():
        if key in _RESERVED or not isinstance(key, str):
            continue
        plain = _plain(value)
        if plain is not None:
            meta[key] = plain
    return meta


# --------------------------------------------------------------------------------------------------------- writer


class _PortablePickler(pickle.Pickler):
    """Pickles arrays as ``numpy.reshape(numpy.frombuffer(bytearray, dtype), shape)``.

    numpy 2 pickles arrays by reference to ``numpy._core``, which numpy before 1.26 lacks, and pyskl / mmaction2
    installations often pin such an older numpy; ``frombuffer``/``reshape``/``dtype`` exist under ``numpy`` in every
    version, and a ``bytearray`` buffer keeps the loaded arrays writable.
    """

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            flat = np.ascontiguousarray(obj).reshape(-1)
            if obj.ndim == 1:
                return np.frombuffer, (bytearray(flat.tobytes()), flat.dtype)
            return np.reshape, (flat, obj.shape)
        if isinstance(obj, np.generic):
            value = obj.item()
            return type(value), (value,)
        return NotImplemented


def write_pyskl_pickle(path: str | PathLike, sequences: Iterable[SkeletonSequence],
                       splits: Mapping[str, Mapping[str, Sequence[str]]],
                       img_shape: tuple[int, int] | None = None) -> Path:
    """Write sequences as a pyskl annotation pickle (dense form A) with the given splits, atomically.

    Each annotation holds ``frame_dir`` (= ``name``), ``label``, ``total_frames``, ``keypoint`` float32
    ``[M, T, V, C]``, ``keypoint_score`` float32 ``[M, T, V]``, ``img_shape`` and ``original_shape`` (``img_shape``
    if given, else each sequence's ``meta["img_shape"]``, else left out as pyskl does for 3D data), ``layout`` (which
    pyskl ignores and :class:`PysklPickleSource` reads back) and the sequence's scalar meta. ``splits``
    (``{split: {subset: [names]}}``) is flattened by :func:`flatten_split_names`; every name must be one of the
    sequences. The file is written beside ``path`` under a temporary name and renamed into place.
    """
    target = Path(path)
    flat = flatten_split_names(splits)
    annotations: list[dict[str, Any]] = []
    seen: set[str] = set()
    for seq in sequences:
        seq.validate()
        if seq.name in seen:
            raise DataError(f"sample name {seq.name!r} appears twice", target, "frame_dir")
        seen.add(seq.name)
        ann: dict[str, Any] = {"frame_dir": seq.name, "label": int(seq.label), "total_frames": seq.num_frames,
                               "keypoint": seq.keypoints, "keypoint_score": seq.scores, "layout": str(seq.layout)}
        shape = img_shape if img_shape is not None else seq.meta.get("img_shape")
        if shape is not None:
            ann["img_shape"] = tuple(int(v) for v in shape)
            original = seq.meta.get("original_shape", shape) if img_shape is None else shape
            ann["original_shape"] = tuple(int(v) for v in original)
        for key, value in seq.meta.items():
            plain = _plain(value)
            if key not in _RESERVED and plain is not None:
                ann[key] = plain
        annotations.append(ann)
    if not annotations:
        raise DataError("no sequences to write", target)
    for key, names in flat.items():
        unknown = [n for n in names if n not in seen]
        if unknown:
            raise DataError(f"{len(unknown)} name(s) are not among the written sequences, e.g. {unknown[0]!r}",
                            target, f"split.{key}")
    write_atomic(target, lambda f: _PortablePickler(f, protocol=4).dump({"split": flat, "annotations": annotations}))
    return target
