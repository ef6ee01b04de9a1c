"""The one interface every pose estimator implements: an RGB frame in, the people in it out.

An estimator takes one frame at a time (``uint8 [H, W, 3]``, RGB) and returns a :class:`FramePoses`: for each
person it found, keypoints ``[P, V, C]`` and scores ``[P, V]`` in the estimator's declared :class:`Layout`
(``estimator.layout``). Image coordinates are pixels of the frame it was given (x to the right, y down, origin at
the top-left corner of the top-left pixel's centre, as numpy indexes it); world coordinates (MediaPipe's metric 3D
output) are metres with the estimator's own origin. ``estimator.coordinate_space`` says which.

Estimators may keep state between frames of one video (MediaPipe tracks its region of interest, the ONNX top-down
model crops around the previous pose); :meth:`PoseEstimator.reset` forgets it and must be called between videos.

Estimators are built by name through :func:`create_estimator`; each lives in its own module, imported only when
asked for, so the core package never imports mediapipe, onnxruntime or PyAV.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import import_module
from typing import Any, ClassVar

import numpy as np

from skelact.errors import ConfigError, DataError
from skelact.skeleton.layout import Layout

#: estimator name -> "module:Class"
ESTIMATORS: dict[str, str] = {
    "mediapipe": "skelact.pose.mediapipe:MediaPipePose",
    "onnx": "skelact.pose.onnx_topdown:OnnxTopDownPose",
}

#: values of ``PoseEstimator.coordinate_space``
IMAGE, WORLD = "image", "world"


@dataclass
class FramePoses:
    """The people found in one frame: keypoints ``float32 [P, V, C]``, scores ``float32 [P, V]`` (0 = absent).

    ``boxes`` (``float32 [P, 4]``, ``x1, y1, x2, y2`` in image pixels) is what the estimator located each person
    by, when it has one; :meth:`person_boxes` falls back to the extent of the confident keypoints.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray | None = None

    @classmethod
    def empty(cls, num_joints: int, coords: int) -> "FramePoses":
        return cls(np.zeros((0, num_joints, coords), np.float32), np.zeros((0, num_joints), np.float32))

    @property
    def num_persons(self) -> int:
        return int(self.keypoints.shape[0])

    def person_boxes(self, min_score: float = 0.3) -> np.ndarray:
        """``[P, 4]`` boxes: the estimator's own, else the extent of keypoints scoring at least ``min_score``
        (all keypoints where none does). Only meaningful for image coordinates."""
        if self.boxes is not None:
            return np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        return keypoint_boxes(self.keypoints, self.scores, min_score)


def keypoint_boxes(keypoints: np.ndarray, scores: np.ndarray, min_score: float = 0.3) -> np.ndarray:
    """``[P, 4]`` ``x1, y1, x2, y2`` extent of each person's keypoints scoring at least ``min_score``."""
    kp = np.asarray(keypoints, dtype=np.float32)[..., :2]
    if kp.shape[0] == 0:
        return np.zeros((0, 4), np.float32)
    confident = np.asarray(scores) >= min_score
    confident[~confident.any(axis=1)] = True  # nobody confident: use every keypoint rather than nothing
    big = np.float32(np.inf)
    lo = np.where(confident[..., None], kp, big).min(axis=1)
    hi = np.where(confident[..., None], kp, -big).max(axis=1)
    return np.concatenate([lo, hi], axis=1).astype(np.float32)


def check_frame(frame: Any, source: str | None = None) -> np.ndarray:
    """The frame as a C-contiguous ``uint8 [H, W, 3]`` array, or :class:`DataError` saying what it is instead."""
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(f"expected an RGB frame of shape [H, W, 3], got {arr.shape}", source, "frame")
    if arr.dtype != np.uint8:
        raise DataError(f"expected uint8 pixels (0..255), got {arr.dtype}", source, "frame")
    return np.ascontiguousarray(arr)


class PoseEstimator(ABC):
    """Frames in, :class:`FramePoses` out, in ``self.layout`` (see the module docstring for the conventions)."""

    #: the name :func:`create_estimator` knows it by
    name: ClassVar[str]
    #: joints of the keypoints it returns
    layout: Layout
    #: coordinates per joint (2 or 3)
    coords: int
    #: ``"image"`` (pixels of the input frame) or ``"world"`` (metric, the estimator's own origin)
    coordinate_space: str = IMAGE
    #: most persons it returns per frame (``None``: no limit)
    max_persons: int | None = None

    @abstractmethod
    def estimate(self, frame: np.ndarray) -> FramePoses:
        """The persons in one RGB ``uint8 [H, W, 3]`` frame."""

    def reset(self) -> None:
        """Forget what earlier frames taught (call between videos)."""

    def close(self) -> None:
        """Release the model."""

    def config(self) -> dict[str, Any]:
        """The settings that change its output (recorded in a store's manifest and in extraction cache keys)."""
        return {"name": self.name}

    def __call__(self, frame: np.ndarray) -> FramePoses:
        return self.estimate(frame)

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def estimator_class(name: str) -> type[PoseEstimator]:
    """The estimator class registered under ``name``; a one-line error lists the known names or the missing extra."""
    try:
        target = ESTIMATORS[name]
    except KeyError:
        raise ConfigError(f"unknown pose estimator {name!r}; known: {', '.join(sorted(ESTIMATORS))}",
                          field="estimator") from None
    module, cls = target.split(":")
    return getattr(import_module(module), cls)


def create_estimator(estimator: "str | PoseEstimator", **options: Any) -> PoseEstimator:
    """Build an estimator by name with its options, or return a ready one unchanged (no options allowed then)."""
    if isinstance(estimator, PoseEstimator):
        if options:
            raise ConfigError(f"options {sorted(options)} given for an estimator that is already built",
                              field="estimator_options")
        return estimator
    return estimator_class(str(estimator))(**options)


def missing_extra(package: str, extra: str, error: ImportError) -> ConfigError:
    """The error for an optional dependency that is not installed."""
    return ConfigError(f"needs the Python package {package!r} ({error}); install it with "
                       f"pip install 'skelact[{extra}]'", field="estimator")
