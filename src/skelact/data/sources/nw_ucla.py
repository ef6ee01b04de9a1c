"""NW-UCLA Multiview Action3D skeletons in CTR-GCN's ``all_sqe`` JSON format.

The dataset: Wang et al., "Cross-view Action Modeling, Learning and Recognition", CVPR 2014 (10 actions by 10
subjects, recorded by 3 Kinect v1 cameras; 20 joints). The format is the one CTR-GCN reads
(``feeders/feeder_ucla.py`` of github.com/Uason-Chen/CTR-GCN), one file per sample in a folder ``all_sqe/``::

    {"file_name": "a01_s01_e00_v01", "skeletons": [T x 20 x [x, y, z]], "label": 1}

The name ``aXX_sYY_eZZ_vWW`` gives the action id (a01..a06, a08, a09, a11, a12: ids 7 and 10 are unused), the
subject, the repetition (``e``, counted from 0) and the view (camera 1..3). ``label`` is 1..10 in the order of the
action ids; skelact's label is ``label - 1``, and it must agree with the action id in the name (a mismatch is an
error, never silently resolved). Coordinates are Kinect v1 camera-space metres; the format has no confidence, so
every score is 1. The standard split is cross-view (train views 1 and 2, test view 3).
"""

from __future__ import annotations

import json
import re
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.class_names import NW_UCLA_CLASS_NAMES
from skelact.data.sequence import SkeletonSequence
from skelact.data.sources.base import DEFAULT_MAX_FRAMES, Source, check_frame_count, max_frames_option
from skelact.errors import DataError

NUM_JOINTS = 20
#: the dataset's action ids, in the order of the 1..10 labels (CTR-GCN, and the dataset's own class order)
ACTION_IDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
#: aXX_sYY_eZZ_vWW: action, subject, repetition (from 0), view
NAME_PATTERN = re.compile(r"a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})")
_KEYS = ("file_name", "skeletons", "label")


def parse_nw_ucla_name(name: str, source: str | PathLike | None = None) -> dict[str, int]:
    """``"a11_s03_e01_v02"`` -> ``{"action": 11, "subject": 3, "repetition": 1, "view": 2}``."""
    m = NAME_PATTERN.fullmatch(name)
    if m is None:
        raise DataError(f"expected a sample name like a01_s01_e00_v01, got {name!r}", source or name, "name")
    action, subject, repetition, view = (int(g) for g in m.groups())
    if action not in ACTION_IDS:
        raise DataError(f"action a{action:02d} is not one of NW-UCLA's "
                        f"{', '.join(f'a{a:02d}' for a in ACTION_IDS)}", source or name, "name")
    return {"action": action, "subject": subject, "repetition": repetition, "view": view}


class NWUCLASource(Source):
    """CTR-GCN's NW-UCLA ``all_sqe`` JSON files.

    ``root`` is the folder holding ``all_sqe/``, ``all_sqe/`` itself, or a single ``.json`` sample. Items are the
    ``*.json`` files of that folder, sorted by name. Option ``max_frames`` (default
    :data:`~skelact.data.sources.base.DEFAULT_MAX_FRAMES`): a longer sample is refused.
    """

    format = "nw-ucla"
    layout = "nw_ucla20"

    def __init__(self, root: str | PathLike, max_frames: int = DEFAULT_MAX_FRAMES, **options: Any):
        super().__init__(root, **options)
        self.max_frames = max_frames_option(max_frames)

    def _folder(self) -> Path:
        nested = self.root / "all_sqe"
        return nested if nested.is_dir() else self.root

    def items(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        folder = self._folder()
        if not folder.is_dir():
            raise DataError("no such file or folder", self.root, "root")
        files = sorted(folder.glob("*.json"))
        if not files:
            raise DataError("no *.json samples found (expected the all_sqe folder or the folder holding it)",
                            folder, "root")
        return files

    def class_names(self) -> list[str]:
        return list(NW_UCLA_CLASS_NAMES)

    def split_names(self) -> list[str]:
        return ["nw_ucla_cross_view"]

    def read(self, item: str | PathLike) -> SkeletonSequence:
        path = Path(item)
        meta = parse_nw_ucla_name(path.stem, path)
        doc = _load_json(path)
        missing = [k for k in _KEYS if k not in doc]
        if missing:
            empty = " (empty JSON object)" if not doc else ""
            raise DataError(f"missing key(s) {', '.join(repr(k) for k in missing)}{empty}; expected "
                            f"{{file_name, skeletons, label}}", path, missing[0])
        if doc["file_name"] != path.stem:
            raise DataError(f"says it holds sample {doc['file_name']!r}, but the file is named {path.stem!r}",
                            path, "file_name")
        skeletons = _skeletons(doc["skeletons"], path, self.max_frames)
        label = _label(doc["label"], meta["action"], path)
        seq = SkeletonSequence(keypoints=skeletons[None], scores=np.ones(skeletons.shape[:2], dtype=np.float32)[None],
                               label=label, name=path.stem, layout=self.layout, meta=meta)
        return seq.validate(str(path), NUM_JOINTS)


def _load_json(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read file ({e.strerror or e})", path) from None
    if not raw.strip():
        raise DataError("empty file", path, "json")
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"not valid JSON ({e})", path, "json") from None
    if not isinstance(doc, dict):
        raise DataError(f"expected a JSON object {{file_name, skeletons, label}}, got a {type(doc).__name__}",
                        path, "json")
    return doc


def _skeletons(value: Any, path: Path, max_frames: int = DEFAULT_MAX_FRAMES) -> np.ndarray:
    expected = f"a list of frames, each {NUM_JOINTS} joints of [x, y, z]"
    if not isinstance(value, list) or not value:
        raise DataError(f"expected {expected}, got {'no frames' if value == [] else type(value).__name__}",
                        path, "skeletons")
    check_frame_count(len(value), max_frames, path, "skeletons")
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"expected {expected}: frames of different shapes or non-numbers", path,
                        "skeletons") from None
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3):
        raise DataError(f"expected shape [T, {NUM_JOINTS}, 3], got {list(arr.shape)}", path, "skeletons")
    bad = ~np.isfinite(arr)
    if bad.any():
        t, v, _ = np.argwhere(bad)[0]
        raise DataError(f"frame {t} joint {v} is not a finite number ({int(bad.any(axis=(1, 2)).sum())} of "
                        f"{arr.shape[0]} frames affected)", path, "skeletons")
    return arr


def _label(value: Any, action: int, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= len(ACTION_IDS):
        raise DataError(f"expected an integer 1..{len(ACTION_IDS)}, got {value!r}", path, "label")
    if ACTION_IDS[value - 1] != action:
        raise DataError(f"label {value} means action a{ACTION_IDS[value - 1]:02d}, but the file name says "
                        f"a{action:02d}", path, "label")
    return value - 1


__all__ = ["ACTION_IDS", "NWUCLASource", "parse_nw_ucla_name"]
