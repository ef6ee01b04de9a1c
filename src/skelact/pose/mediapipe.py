"""MediaPipe Pose (BlazePose, Bazarevsky et al., "BlazePose: On-device Real-time Body Pose tracking", 2020).

The default, offline estimator: ``mediapipe==0.10.21`` ships the "full" landmark model (``model_complexity=1``)
and the person detector inside its wheel and runs them with its legacy ``mediapipe.solutions.pose`` API. The lite
(0) and heavy (2) landmark models are not in the wheel; MediaPipe downloads them from Google's storage the first
time they are asked for, so they fail on a machine without internet access (the error says so).

What it returns: one person per frame (the solution follows the most prominent person; it detects again only
when it loses track), 33 landmarks in layout ``mediapipe33`` named from the person's own point of view as seen by an
unmirrored camera. ``coordinates``:

* ``"image"`` (default): ``x, y`` in pixels of the input frame;
* ``"image3d"``: plus MediaPipe's ``z``, depth relative to the hips' midpoint on roughly the scale of ``x``
  (MediaPipe's documentation), here in pixels (``z * frame width``), smaller = closer to the camera;
* ``"world"``: MediaPipe's metric 3D landmarks, metres, origin at the hips' midpoint.

Scores are MediaPipe's per-landmark ``visibility`` (the likelihood that the landmark is visible, i.e. in the frame
and not occluded). Boxes are the pixel extent of the landmarks with visibility >= 0.3 (all of them if none is).
``smooth_landmarks`` applies MediaPipe's own temporal filter across the frames of a video.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skelact.errors import ConfigError
from skelact.pose.base import IMAGE, WORLD, FramePoses, PoseEstimator, check_frame, keypoint_boxes, missing_extra
from skelact.skeleton.layout import get_layout

COORDINATES = ("image", "image3d", "world")


class MediaPipePose(PoseEstimator):
    """MediaPipe's legacy Pose solution behind :class:`PoseEstimator` (see the module docstring)."""

    name = "mediapipe"
    max_persons = 1

    def __init__(self, model_complexity: int = 1, coordinates: str = "image", smooth_landmarks: bool = True,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 static_image_mode: bool = False):
        if coordinates not in COORDINATES:
            raise ConfigError(f"unknown coordinates {coordinates!r}; choose one of {', '.join(COORDINATES)}",
                              field="coordinates")
        if model_complexity not in (0, 1, 2):
            raise ConfigError(f"must be 0 (lite), 1 (full) or 2 (heavy), got {model_complexity!r}",
                              field="model_complexity")
        for key, value in (("min_detection_confidence", min_detection_confidence),
                           ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"must lie in [0, 1], got {value!r}", field=key)
        try:
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as e:
            raise missing_extra("mediapipe", "pose", e) from None
        self.model_complexity = int(model_complexity)
        self.coordinates = coordinates
        self.smooth_landmarks = bool(smooth_landmarks)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.static_image_mode = bool(static_image_mode)
        self.layout = get_layout("mediapipe33")
        self.coords = 2 if coordinates == "image" else 3
        self.coordinate_space = WORLD if coordinates == "world" else IMAGE
        try:
            self._pose = mp_pose.Pose(static_image_mode=self.static_image_mode,
                                      model_complexity=self.model_complexity,
                                      smooth_landmarks=self.smooth_landmarks, enable_segmentation=False,
                                      min_detection_confidence=self.min_detection_confidence,
                                      min_tracking_confidence=self.min_tracking_confidence)
        except OSError as e:  # urllib's URLError is an OSError: the lite/heavy model download failed
            raise ConfigError(f"model_complexity {model_complexity} needs a model file that mediapipe downloads on "
                              f"first use, and the download failed ({getattr(e, 'reason', e)}); use "
                              "model_complexity=1, whose model ships with mediapipe", field="model_complexity") \
                from None

    def estimate(self, frame: np.ndarray) -> FramePoses:
        image = check_frame(frame, "mediapipe input")
        height, width = image.shape[:2]
        result = self._pose.process(image)
        if result.pose_landmarks is None:
            return FramePoses.empty(self.layout.num_joints, self.coords)
        marks = result.pose_landmarks.landmark
        raw = np.array([(m.x, m.y, m.z, m.visibility) for m in marks], dtype=np.float32)
        pixels = raw[:, :3] * np.array([width, height, width], dtype=np.float32)
        scores = raw[None, :, 3]
        box = keypoint_boxes(pixels[None, :, :2], scores)
        if self.coordinates == "image":
            keypoints = pixels[None, :, :2]
        elif self.coordinates == "image3d":
            keypoints = pixels[None]
        else:
            world = result.pose_world_landmarks.landmark
            keypoints = np.array([(m.x, m.y, m.z) for m in world], dtype=np.float32)[None]
        return FramePoses(keypoints=np.ascontiguousarray(keypoints), scores=np.ascontiguousarray(scores), boxes=box)

    def reset(self) -> None:
        # a new graph run: forgets the tracked region and the landmark filter's history
        self._pose.reset()

    def close(self) -> None:
        if getattr(self, "_pose", None) is not None:
            self._pose.close()
            self._pose = None

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "model_complexity": self.model_complexity, "coordinates": self.coordinates,
                "smooth_landmarks": self.smooth_landmarks,
                "min_detection_confidence": self.min_detection_confidence,
                "min_tracking_confidence": self.min_tracking_confidence,
                "static_image_mode": self.static_image_mode}
