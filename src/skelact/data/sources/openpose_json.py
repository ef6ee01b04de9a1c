"""ST-GCN's Kinetics-skeleton JSON: one OpenPose (18-joint COCO order) file per clip.

The format, as released with ST-GCN (Yan et al., "Spatial Temporal Graph Convolutional Networks for Skeleton-Based
Action Recognition", AAAI 2018) and written by its ``tools/utils/openpose.py``::

    {"data": [{"frame_index": 1,
               "skeleton": [{"pose": [x0, y0, x1, y1, ..., x17, y17], "score": [s0, ..., s17]}, ...]},
              ...],
     "label": "flipping pancake", "label_index": 129}

Coordinates are normalised to [0, 1] by the frame width and height; a joint OpenPose missed is ``(0, 0)`` with score
0. The root is a folder of such files (``kinetics_train/``); the optional label file of the release
(``kinetics_train_label.json``: ``{clip: {"has_skeleton", "label", "label_index"}}``) is given with the option
``label_file``.

How frames and persons are placed follows ST-GCN's ``feeder/feeder_kinetics.py``:

* a frame goes to the time step given by its ``frame_index``, not by its position in the list, so missing frames
  stay as zero frames with zero scores. We count time from the smallest ``frame_index`` in the file (ST-GCN writes
  index ``i`` into slot ``i`` of a 300-frame buffer, leaving slot 0 of its 1-based files empty; that artefact and
  the padding to 300 frames are not reproduced);
* only the first ``max_candidates`` skeletons listed in a frame are considered (ST-GCN's ``num_person_in`` = 5);
* in every frame the candidates are ordered by the sum of their joint scores, highest first (a stable sort, so equal
  sums keep file order), and the first ``max_persons`` are kept (ST-GCN's ``num_person_out`` = 2). As in ST-GCN the
  person slots are therefore re-ranked per frame, not tracked;
* unlike ST-GCN, ``M`` is the number of persons actually present (at most ``max_persons``), with no empty padding
  person, and coordinates are kept as stored (no ``-0.5`` centring, no y flip, no zeroing of score-0 joints: that
  is the normalisation transforms' job, and some converters write valid poses with all scores 0).

Without a label file, labels come from the file's own ``label_index`` / ``label`` (``-1`` when absent). With one,
clips marked ``has_skeleton: false`` are skipped, as ST-GCN's ``ignore_empty_sample`` does, and a clip missing from
the label file, or whose own label disagrees with it, is an error.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.sequence import SkeletonSequence
from skelact.data.sources.base import DEFAULT_MAX_FRAMES, Source, check_frame_count, max_frames_option
from skelact.errors import ConfigError, DataError

#: OpenPose's 18-joint body model (COCO order plus neck), the layout of every Kinetics-skeleton file
NUM_JOINTS = 18


class OpenPoseJSONSource(Source):
    """A folder of ST-GCN Kinetics-skeleton / OpenPose JSON files, one clip each.

    Options: ``label_file`` (path to ``kinetics_*_label.json``, absolute or relative to ``root``),
    ``max_persons`` (default 2, ST-GCN's ``num_person_out``), ``max_candidates`` (default 5, ST-GCN's
    ``num_person_in``), ``max_frames`` (default :data:`~skelact.data.sources.base.DEFAULT_MAX_FRAMES`: a clip whose
    frame indices span more is refused before its arrays are allocated, as is one spanning over 100 times the
    frames it lists). ``root`` may also be a single ``.json`` file.
    """

    format = "openpose-json"
    layout = "openpose18"

    def __init__(self, root: str | PathLike, label_file: str | PathLike | None = None, max_persons: int = 2,
                 max_candidates: int = 5, max_frames: int = DEFAULT_MAX_FRAMES, **options: Any):
        super().__init__(root, **options)
        self.max_frames = max_frames_option(max_frames)
        self.max_persons = _positive_int(max_persons, "max_persons")
        self.max_candidates = _positive_int(max_candidates, "max_candidates")
        if self.max_candidates < self.max_persons:
            raise ConfigError(f"max_candidates ({self.max_candidates}) must be >= max_persons ({self.max_persons})",
                              field="max_candidates")
        self.label_file = None if label_file is None else self._resolve(label_file)
        self._labels: dict[str, dict[str, Any]] | None = None

    def _resolve(self, path: str | PathLike) -> Path:
        p = Path(path)
        if not p.is_absolute() and not p.exists() and self.root.is_dir():
            p = self.root / p
        return p

    def _label_table(self) -> dict[str, dict[str, Any]] | None:
        if self.label_file is None:
            return None
        if self._labels is None:
            try:
                raw = json.loads(self.label_file.read_text(encoding="utf-8"))
            except OSError as e:
                raise DataError(f"cannot read label file ({e.strerror or e})", self.label_file) from None
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise DataError(f"not valid JSON ({e})", self.label_file) from None
            if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
                raise DataError("expected an object {clip name: {has_skeleton, label, label_index}}",
                                self.label_file)
            self._labels = raw
        return self._labels

    def items(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        if not self.root.is_dir():
            raise DataError("no such file or folder", self.root)
        files = sorted(self.root.glob("*.json"))
        table = self._label_table()
        if table is not None:
            files = [f for f in files if f.resolve() != self.label_file.resolve()]
            files = [f for f in files if table.get(f.stem, {}).get("has_skeleton", True) is not False]
        if not files:
            raise DataError("no *.json skeleton files found", self.root)
        return files

    def class_names(self) -> list[str] | None:
        return None

    def read(self, item: str | PathLike) -> SkeletonSequence:
        path = Path(item)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise DataError(f"cannot read file ({e.strerror or e})", path) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"not valid JSON ({e})", path) from None
        if not isinstance(doc, dict):
            raise DataError("expected a JSON object with 'data'", path)
        frames = doc.get("data")
        if not isinstance(frames, list):
            raise DataError("missing or not a list of frames", path, "data")
        if not frames:
            raise DataError("no frames", path, "data")

        indices, candidates = self._parse_frames(frames, path)
        keypoints, scores = self._place(indices, candidates, path)
        label, label_name = self._label(doc, path)
        meta: dict[str, Any] = {}
        if label_name is not None:
            meta["label_name"] = label_name
        seq = SkeletonSequence(keypoints=keypoints, scores=scores, label=label, name=path.stem, layout=self.layout,
                               meta=meta)
        return seq.validate(str(path), NUM_JOINTS)

    def _parse_frames(self, frames: list, path: Path) -> tuple[list[int], list[list[tuple[np.ndarray, np.ndarray]]]]:
        indices: list[int] = []
        candidates: list[list[tuple[np.ndarray, np.ndarray]]] = []
        seen: set[int] = set()
        for k, frame in enumerate(frames):
            where = f"data[{k}]"
            if not isinstance(frame, dict):
                raise DataError("expected an object {frame_index, skeleton}", path, where)
            index = frame.get("frame_index")
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise DataError(f"expected a non-negative integer, got {index!r}", path, f"{where}.frame_index")
            if index in seen:
                raise DataError(f"frame_index {index} appears twice", path, f"{where}.frame_index")
            seen.add(index)
            people = frame.get("skeleton", [])
            if not isinstance(people, list):
                raise DataError("expected a list of skeletons", path, f"{where}.skeleton")
            parsed = []
            for j, person in enumerate(people[: self.max_candidates]):
                pwhere = f"{where}.skeleton[{j}]"
                if not isinstance(person, dict):
                    raise DataError("expected an object {pose, score}", path, pwhere)
                pose = _numbers(person.get("pose"), 2 * NUM_JOINTS, path, f"{pwhere}.pose",
                                f"{2 * NUM_JOINTS} numbers (x, y of {NUM_JOINTS} joints)")
                score = _numbers(person.get("score"), NUM_JOINTS, path, f"{pwhere}.score",
                                 f"{NUM_JOINTS} joint scores")
                parsed.append((pose.reshape(NUM_JOINTS, 2), score))
            indices.append(index)
            candidates.append(parsed)
        return indices, candidates

    def _place(self, indices: list[int], candidates: list, path: Path) -> tuple[np.ndarray, np.ndarray]:
        most = max(len(c) for c in candidates)
        if most == 0:
            raise DataError(f"no skeleton in any of the {len(candidates)} frame(s)", path, "data")
        num_persons = min(most, self.max_persons)
        first = min(indices)
        num_frames = check_frame_count(max(indices) - first + 1, self.max_frames, path, "data.frame_index",
                                       present=len(indices))
        keypoints = np.zeros((num_persons, num_frames, NUM_JOINTS, 2), dtype=np.float32)
        scores = np.zeros((num_persons, num_frames, NUM_JOINTS), dtype=np.float32)
        for index, people in zip(indices, candidates):
            if not people:
                continue
            totals = np.array([s.sum() for _, s in people])
            order = np.argsort(-totals, kind="stable")[:num_persons]
            t = index - first
            for slot, p in enumerate(order):
                keypoints[slot, t] = people[p][0]
                scores[slot, t] = people[p][1]
        return keypoints, scores

    def _label(self, doc: dict, path: Path) -> tuple[int, str | None]:
        own_index = doc.get("label_index")
        own_name = doc.get("label")
        table = self._label_table()
        if table is not None:
            entry = table.get(path.stem)
            if entry is None:
                raise DataError(f"clip {path.stem!r} is not listed in the label file", self.label_file, path.stem)
            index, name = entry.get("label_index"), entry.get("label")
            if own_index is not None and index is not None and own_index != index:
                raise DataError(f"label_index {own_index} disagrees with {index} in {self.label_file}", path,
                                "label_index")
            src, field = self.label_file, f"{path.stem}.label_index"
        else:
            index, name = own_index, own_name
            src, field = path, "label_index"
        if index is None:
            index = -1
        if isinstance(index, bool) or not isinstance(index, int) or index < -1:
            raise DataError(f"expected a class index >= 0, got {index!r}", src, field)
        if name is not None and not isinstance(name, str):
            raise DataError(f"expected a class name string, got {name!r}", src, "label")
        return index, name


def _numbers(raw: Any, count: int, path: Path, field: str, what: str) -> np.ndarray:
    if not isinstance(raw, list) or len(raw) != count:
        got = f"{len(raw)} values" if isinstance(raw, list) else repr(type(raw).__name__)
        raise DataError(f"expected {what}, got {got}", path, field)
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"expected {what}, found a non-number", path, field) from None
    if not np.isfinite(values).all():
        raise DataError("contains NaN or infinite values", path, field)
    return values


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"expected a positive integer, got {value!r}", field=name)
    return int(value)
