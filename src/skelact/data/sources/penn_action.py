"""Penn Action's per-video MATLAB label files (``labels/0001.mat`` .. ``labels/2326.mat``).

Penn Action (Zhang, Zhu and Derpanis, "From Actemes to Action: A Strongly-supervised Representation for Detailed
Action Understanding", ICCV 2013) annotates 13 joints in every frame of 2326 clips of 15 actions. Each ``.mat``
file holds ``action`` (class name), ``pose`` (camera view: front, back, left, right), ``x``, ``y`` and ``visibility``
(``nframes x 13``; pixel coordinates, and 0/1 for whether the joint is visible), ``bbox`` (``nframes x 4``),
``dimensions`` (H, W, nframes), ``nframes`` and ``train`` (1 = the official training set, -1 = test; 1258 / 1068).

What a record holds: keypoints ``[1, T, 13, 2]`` in pixels, scores = visibility (an occluded joint keeps its
annotated position, with score 0; a joint that was not annotated, mostly one outside the frame, is stored by Penn
at the image's top-left corner, ``(c, c)`` with ``c`` between 0 and 2 pixels (mostly about 0.75), with visibility
0: 187,352 joints, 8.3 % of all, and the hips of every frame of 403 clips; it becomes exactly ``(0, 0)``,
skelact's mark of a missing joint, so normalisation can skip it), label = index of ``action`` in
:data:`PENN_ACTION_CLASSES`, and meta ``subset`` ("train" / "test", read by the ``penn_action_official``
split), ``view``, ``img_shape`` (H, W) and ``label_name``. ``bbox`` is not kept: it is derivable from the joints,
and in two files (1154, 1865) it has one row fewer than there are frames.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.sequence import SkeletonSequence
from skelact.data.sources.base import DEFAULT_MAX_FRAMES, Source, check_frame_count, max_frames_option
from skelact.errors import DataError

#: the 15 Penn Action classes, sorted; a label is the index into this list
PENN_ACTION_CLASSES: tuple[str, ...] = (
    "baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk", "golf_swing", "jump_rope",
    "jumping_jacks", "pullup", "pushup", "situp", "squat", "strum_guitar", "tennis_forehand", "tennis_serve",
)
NUM_JOINTS = 13
_REQUIRED = ("action", "pose", "x", "y", "visibility", "dimensions", "nframes", "train")


class PennActionSource(Source):
    """Penn Action labels; ``root`` is the folder holding ``labels/`` or the ``labels`` folder itself.

    Option ``max_frames`` (default :data:`~skelact.data.sources.base.DEFAULT_MAX_FRAMES`): a file whose arrays
    declare more frames is refused from its headers (``scipy.io.whosmat``), before anything is loaded.
    """

    format = "penn-action"
    layout = "penn13"
    #: 2: unannotated joints (invisible, at Penn's top-left corner) are stored as exactly (0, 0)
    reader_version = 2

    def __init__(self, root: str | PathLike, max_frames: int = DEFAULT_MAX_FRAMES, **options: Any):
        super().__init__(root, **options)
        self.max_frames = max_frames_option(max_frames)
        nested = self.root / "labels"
        self.label_dir = nested if nested.is_dir() else self.root

    def items(self) -> list[Path]:
        if not self.label_dir.is_dir():
            raise DataError("no such folder (expected Penn Action's labels/ folder or its parent)", self.root)
        files = sorted(self.label_dir.glob("*.mat"))
        if not files:
            raise DataError("no .mat label files found", self.label_dir)
        return files

    def class_names(self) -> list[str]:
        return list(PENN_ACTION_CLASSES)

    def split_names(self) -> list[str]:
        return ["penn_action_official"]

    def read(self, item: str | PathLike) -> SkeletonSequence:
        import scipy.io

        path = Path(item)
        try:
            declared = scipy.io.whosmat(str(path))
        except FileNotFoundError:
            raise DataError("no such file", path) from None
        except Exception as e:  # scipy raises ValueError, TypeError, MatReadError, ... for foreign bytes
            raise DataError(f"not a readable MATLAB .mat file ({type(e).__name__}: {e})", path) from None
        for name, shape, _ in declared:
            # every per-frame table is nframes x 13 (or x 4); a larger array can only be a corrupt header
            if name in ("x", "y", "visibility", "bbox"):
                check_frame_count(int(shape[0]) if shape else 0, self.max_frames, path, name)
            elif int(np.prod(shape, dtype=np.float64)) > self.max_frames * NUM_JOINTS:
                raise DataError(f"declares shape {tuple(shape)}, far larger than a Penn Action label file holds",
                                path, name)
        try:
            mat = scipy.io.loadmat(str(path), squeeze_me=True)
        except FileNotFoundError:
            raise DataError("no such file", path) from None
        except Exception as e:  # scipy raises ValueError, TypeError, MatReadError, ... for foreign bytes
            raise DataError(f"not a readable MATLAB .mat file ({type(e).__name__}: {e})", path) from None
        missing = [k for k in _REQUIRED if k not in mat]
        if missing:
            raise DataError(f"missing key(s) {missing} (a Penn Action label file has {list(_REQUIRED)})", path,
                            missing[0])

        action = _text(mat["action"], path, "action")
        if action not in PENN_ACTION_CLASSES:
            raise DataError(f"unknown action {action!r}; Penn Action classes are {list(PENN_ACTION_CLASSES)}",
                            path, "action")
        nframes = _integer(mat["nframes"], path, "nframes")
        x = _joint_table(mat["x"], path, "x")
        num_frames = x.shape[0]
        y = _joint_table(mat["y"], path, "y")
        visibility = _joint_table(mat["visibility"], path, "visibility")
        for name, table in (("y", y), ("visibility", visibility)):
            if table.shape != x.shape:
                raise DataError(f"has shape {table.shape} but x has {x.shape}", path, name)
        if nframes != num_frames:
            raise DataError(f"says {nframes} frames but x, y, visibility have {num_frames} rows", path, "nframes")
        if not np.isin(visibility, (0, 1)).all():
            raise DataError("expected 0/1 visibility flags", path, "visibility")

        train = _integer(mat["train"], path, "train")
        if train not in (1, -1):
            raise DataError(f"expected 1 (train) or -1 (test), got {train}", path, "train")
        dims = np.asarray(mat["dimensions"]).reshape(-1)
        if dims.size != 3 or not np.issubdtype(dims.dtype, np.number):
            raise DataError(f"expected (height, width, nframes), got {mat['dimensions']!r}", path, "dimensions")

        keypoints = np.stack([x, y], axis=-1)[None]
        keypoints[0][unannotated_joints(x, y, visibility)] = 0.0
        seq = SkeletonSequence(
            keypoints=keypoints, scores=visibility[None], label=PENN_ACTION_CLASSES.index(action), name=path.stem,
            layout=self.layout,
            meta={"subset": "train" if train == 1 else "test", "view": _text(mat["pose"], path, "pose"),
                  "img_shape": (int(dims[0]), int(dims[1])), "label_name": action})
        return seq.validate(str(path), NUM_JOINTS)


#: Penn stores a joint nobody annotated at (c, c), 0 <= c <= 2 pixels, with visibility 0; no visible joint of the
#: 2326 files lies within this many pixels of the corner, so an invisible joint there is an unannotated one
UNANNOTATED_MAX_PIXELS = 2.5


def unannotated_joints(x: np.ndarray, y: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """Boolean ``[T, 13]``: the joints Penn left unannotated (invisible, at the image's top-left corner)."""
    return (visibility == 0) & (x <= UNANNOTATED_MAX_PIXELS) & (y <= UNANNOTATED_MAX_PIXELS)


def _joint_table(raw: Any, path: Path, field: str) -> np.ndarray:
    table = np.asarray(raw)
    if table.ndim == 1 and table.size == NUM_JOINTS:  # squeeze_me turns a one-frame clip into a vector
        table = table[None]
    if table.ndim != 2 or not (np.issubdtype(table.dtype, np.number) or table.dtype == bool):
        raise DataError(f"expected a numeric nframes x {NUM_JOINTS} table, got shape {table.shape} "
                        f"({table.dtype})", path, field)
    if table.shape[1] != NUM_JOINTS:
        raise DataError(f"expected {NUM_JOINTS} joints (columns) per frame, got {table.shape[1]}", path, field)
    if table.shape[0] == 0:
        raise DataError("has no frames", path, field)
    table = table.astype(np.float32)
    if not np.isfinite(table).all():
        bad = int((~np.isfinite(table)).any(axis=1).sum())
        raise DataError(f"{bad} frame(s) contain NaN or infinite values", path, field)
    return table


def _text(raw: Any, path: Path, field: str) -> str:
    value = raw.item() if isinstance(raw, np.ndarray) and raw.size == 1 else raw
    if not isinstance(value, str):
        raise DataError(f"expected a string, got {raw!r}", path, field)
    return value


def _integer(raw: Any, path: Path, field: str) -> int:
    value = raw.item() if isinstance(raw, np.ndarray) and raw.size == 1 else raw
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or float(value) != int(value):
        raise DataError(f"expected an integer, got {raw!r}", path, field)
    return int(value)
