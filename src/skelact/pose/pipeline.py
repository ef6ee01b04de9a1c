"""One video to one skeleton sequence: decode, estimate every frame, track, pick the main actors, map the layout.

:func:`iter_video_poses` is the streaming half (frames and the poses found in them, for a caller that also wants
the pixels, e.g. to render); :func:`video_to_sequence` runs the whole chain and returns the
:class:`~skelact.data.sequence.SkeletonSequence` that ``skelact extract-poses`` stores and ``skelact predict``
classifies. The sequence has exactly one frame per decoded video frame; a frame in which a chosen person was not
found holds zeros with score 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.sequence import SkeletonSequence
from skelact.pose.base import IMAGE, FramePoses, PoseEstimator, create_estimator
from skelact.pose.mapping import get_mapping, mirror_sides
from skelact.pose.tracking import select_main_actors, track_poses
from skelact.video.info import VideoInfo
from skelact.video.reader import VideoReader
from skelact.skeleton.layout import Layout


def _to_full_resolution(poses: FramePoses, scale: tuple[float, float], space: str) -> FramePoses:
    """Poses found on a scaled-down frame, in pixels of the full-size video (depth ``z`` scales as ``x``)."""
    if scale == (1.0, 1.0):
        return poses
    sx, sy = scale
    factor = np.array([sx, sy, sx][: poses.keypoints.shape[-1]], dtype=np.float32)
    boxes = poses.person_boxes() * np.array([sx, sy, sx, sy], dtype=np.float32)
    keypoints = poses.keypoints * factor if space == IMAGE else poses.keypoints
    return FramePoses(keypoints=keypoints.astype(np.float32), scores=poses.scores, boxes=boxes)


def iter_video_poses(path: str | PathLike, estimator: PoseEstimator, max_side: int | None = None,
                     threads: int | None = None, info: dict[str, Any] | None = None
                     ) -> Iterator[tuple[int, np.ndarray, FramePoses]]:
    """``(frame index, RGB frame, poses)`` for every frame of a video, in order.

    The frame is what the estimator saw (scaled down when ``max_side`` is given); the poses are in pixels of the
    full-size video whatever ``max_side`` (or in the estimator's world units). The estimator is reset first. When
    ``info`` is a dict it receives ``"video"`` (the :class:`VideoInfo`) and, at the end, ``"frames"``.
    """
    estimator.reset()
    with VideoReader(path, max_side=max_side, threads=threads) as reader:
        if info is not None:
            info["video"] = reader.info
        t = -1
        for t, frame in enumerate(reader):
            poses = estimator.estimate(frame)
            yield t, frame, _to_full_resolution(poses, reader.scale, estimator.coordinate_space)
        if info is not None:
            info["frames"] = t + 1


def video_to_sequence(path: str | PathLike, estimator: "str | PoseEstimator" = "mediapipe",
                      layout: "str | Layout | None" = None, *, max_persons: int = 1, criterion: str = "area",
                      max_side: int | None = None, mirrored: bool = False, threads: int | None = None,
                      label: int = -1, name: str | None = None,
                      mapping_weights: Mapping[str, Mapping[str, float]] | None = None,
                      estimator_options: Mapping[str, Any] | None = None,
                      frames_out: list[np.ndarray] | None = None) -> SkeletonSequence:
    """Estimate the poses of the main actors of a video as a :class:`SkeletonSequence` in ``layout``.

    ``estimator``: a name (``"mediapipe"``, ``"onnx"``; built with ``estimator_options`` and closed at the end) or a
    ready :class:`PoseEstimator` (left open). ``layout``: the layout to store (default: the estimator's own); the
    mapping is :func:`skelact.pose.mapping.get_mapping` (or ``mapping_weights``). ``max_persons``/``criterion``:
    how many tracked persons to keep and how to rank them (:mod:`skelact.pose.tracking`). ``mirrored``: the video is
    a mirror image (NTU RGB+D's colour videos are), so the estimator's left and right are swapped back.
    ``max_side``: scale frames down before estimation (keypoints are still in full-size pixels). ``frames_out``: a
    list that receives every decoded frame as the estimator saw it, so a caller that also needs the pixels (an
    RGBPose model in ``predict``) does not decode the video a second time.

    Raises :class:`DataError` for an unreadable video or one in which nobody was found. ``meta`` records ``fps``,
    ``img_shape`` (H, W of the full-size video), ``declared_frames`` and the estimator's settings.
    """
    path = Path(path)
    owned = not isinstance(estimator, PoseEstimator)
    est = create_estimator(estimator, **dict(estimator_options or {}))
    try:
        target = est.layout if layout is None else layout
        mapping = get_mapping(est.layout, target, mapping_weights)
        info: dict[str, Any] = {}
        frames = []
        for _, frame, poses in iter_video_poses(path, est, max_side=max_side, threads=threads, info=info):
            frames.append(poses)
            if frames_out is not None:
                frames_out.append(frame)
        weight = 0.5 if est.coordinate_space == IMAGE else 0.0
        tracks = track_poses(frames, keypoint_weight=weight)
        keypoints, scores, _ = select_main_actors(tracks, len(frames), est.layout.num_joints, est.coords,
                                                  max_persons=max_persons, criterion=criterion, source=str(path))
        if mirrored:
            keypoints, scores = mirror_sides(keypoints, scores, est.layout)
        keypoints, scores = mapping.apply(keypoints, scores)
        video: VideoInfo = info["video"]
        meta = {"fps": video.fps, "img_shape": [video.height, video.width], "declared_frames": video.declared_frames,
                "estimator": est.config(), "coordinate_space": est.coordinate_space, "mirrored": bool(mirrored),
                "max_side": max_side, "persons_tracked": len(tracks)}
        seq = SkeletonSequence(keypoints=keypoints, scores=scores, label=int(label), name=name or path.stem,
                               layout=mapping.target.name, meta=meta)
        return seq.validate(source=str(path), num_joints=mapping.target.num_joints)
    finally:
        if owned:
            est.close()

