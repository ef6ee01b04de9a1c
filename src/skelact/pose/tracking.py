"""Keep person 1 person 1: link per-frame detections into tracks, then choose the main actors.

Linking. Each new frame's persons are matched to the live tracks by a similarity that averages the IoU of their
boxes and an OKS-like keypoint similarity (``exp(-d^2 / (2 s^2 k^2))`` averaged over joints confident in both, with
``s^2`` the track's box area and ``k = 0.1``, the spirit of COCO's object keypoint similarity with one constant for
all joints). The assignment maximising total similarity is found with the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``); a pair below ``min_similarity`` is not a match, and an unmatched person
starts a new track. A track unmatched for more than ``max_missed`` frames ends, so a person who leaves and comes
back much later gets a new track. A track is compared with its last seen pose (no motion model): at video frame
rates people move little between frames, and the OKS term separates people whose boxes overlap.

Main actors. Tracks are ranked by ``criterion``:

* ``"area"`` (default): the sum over its frames of the box area, i.e. track length x mean size. The person the
  camera was pointed at is usually both the largest and the longest visible; NTU RGB+D's clips and sports clips
  like Penn Action's are framed that way.
* ``"motion"``: the sum over consecutive frames of the mean displacement of confident joints, in box-size units,
  i.e. track length x mean speed; this prefers the person performing the action over a bystander of similar size
  (the idea of CTR-GCN's NTU body selection by motion, applied to tracks).
* ``"length"``: the number of frames, ties broken by area.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from skelact.errors import ConfigError, DataError
from skelact.pose.base import FramePoses

CRITERIA = ("area", "motion", "length")
#: OKS falloff constant shared by all joints
_OKS_K = 0.1


@dataclass
class Track:
    """One person over time: the frames it was seen in and its pose there."""

    track_id: int
    frames: list[int] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    missed: int = 0

    def __len__(self) -> int:
        return len(self.frames)

    def append(self, frame: int, keypoints: np.ndarray, scores: np.ndarray, box: np.ndarray) -> None:
        self.frames.append(frame)
        self.keypoints.append(keypoints)
        self.scores.append(scores)
        self.boxes.append(box)
        self.missed = 0

    def area(self) -> float:
        """Sum of box areas over the track's frames."""
        b = np.asarray(self.boxes, dtype=np.float64)
        return float((np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)).sum())

    def motion(self, min_score: float = 0.3) -> float:
        """Sum over consecutive frames of the mean confident-joint displacement divided by the box diagonal."""
        total = 0.0
        for k in range(1, len(self.frames)):
            if self.frames[k] != self.frames[k - 1] + 1:
                continue
            both = (self.scores[k] >= min_score) & (self.scores[k - 1] >= min_score)
            if not both.any():
                continue
            step = np.linalg.norm(self.keypoints[k][both, :2] - self.keypoints[k - 1][both, :2], axis=-1).mean()
            box = self.boxes[k]
            diag = float(np.hypot(box[2] - box[0], box[3] - box[1])) or 1.0
            total += float(step) / diag
        return total


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a [N, 4]`` with every box in ``b [M, 4]`` (``x1, y1, x2, y2``): ``[N, M]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(1, -1, 4)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def keypoint_similarity(track_kp: np.ndarray, track_sc: np.ndarray, track_box: np.ndarray, kp: np.ndarray,
                        sc: np.ndarray, min_score: float = 0.3) -> np.ndarray:
    """OKS-like similarity of track poses ``[N, V, C]`` with detected poses ``[M, V, C]``: ``[N, M]`` in [0, 1]."""
    a = np.asarray(track_kp, dtype=np.float64)[:, None, :, :2]
    b = np.asarray(kp, dtype=np.float64)[None, :, :, :2]
    d2 = ((a - b) ** 2).sum(-1)
    box = np.asarray(track_box, dtype=np.float64)
    area = np.clip((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]), 1.0, None)[:, None, None]
    sim = np.exp(-d2 / (2 * area * _OKS_K ** 2))
    both = (np.asarray(track_sc)[:, None, :] >= min_score) & (np.asarray(sc)[None, :, :] >= min_score)
    count = both.sum(-1)
    return np.where(count > 0, (sim * both).sum(-1) / np.maximum(count, 1), 0.0)


class PoseTracker:
    """Online tracker: feed :meth:`update` every frame in order, read :attr:`tracks` at the end."""

    def __init__(self, max_missed: int = 15, min_similarity: float = 0.1, min_score: float = 0.3,
                 keypoint_weight: float = 0.5):
        if max_missed < 0:
            raise ConfigError(f"must be >= 0, got {max_missed}", field="max_missed")
        self.max_missed = int(max_missed)
        self.min_similarity = float(min_similarity)
        self.min_score = float(min_score)
        # 0 for keypoints that are not in image pixels (metric world coordinates): boxes alone then link persons
        self.keypoint_weight = float(keypoint_weight)
        self.tracks: list[Track] = []
        self._live: list[Track] = []

    def update(self, frame: int, poses: FramePoses) -> list[int]:
        """Assign this frame's persons to tracks; returns the track id of each person, in detection order."""
        from scipy.optimize import linear_sum_assignment

        n = poses.num_persons
        boxes = poses.person_boxes(self.min_score)
        ids = [-1] * n
        if n and self._live:
            live_boxes = np.stack([t.boxes[-1] for t in self._live])
            sim = (1 - self.keypoint_weight) * box_iou(live_boxes, boxes)
            if self.keypoint_weight:
                sim = sim + self.keypoint_weight * keypoint_similarity(
                    np.stack([t.keypoints[-1] for t in self._live]), np.stack([t.scores[-1] for t in self._live]),
                    live_boxes, poses.keypoints, poses.scores, self.min_score)
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.min_similarity:
                    track = self._live[r]
                    track.append(frame, poses.keypoints[c], poses.scores[c], boxes[c])
                    ids[c] = track.track_id
        matched = {i for i in ids if i >= 0}
        for track in self._live:
            if track.track_id not in matched:
                track.missed += 1
        self._live = [t for t in self._live if t.missed <= self.max_missed]
        for c in range(n):
            if ids[c] < 0:
                track = Track(track_id=len(self.tracks))
                track.append(frame, poses.keypoints[c], poses.scores[c], boxes[c])
                self.tracks.append(track)
                self._live.append(track)
                ids[c] = track.track_id
        return ids


def track_poses(frames: Iterable[FramePoses], max_missed: int = 15, min_similarity: float = 0.1,
                keypoint_weight: float = 0.5) -> list[Track]:
    """Link a video's per-frame poses into tracks (see the module docstring)."""
    tracker = PoseTracker(max_missed=max_missed, min_similarity=min_similarity, keypoint_weight=keypoint_weight)
    for t, poses in enumerate(frames):
        tracker.update(t, poses)
    return tracker.tracks


def rank_tracks(tracks: Sequence[Track], criterion: str = "area") -> list[Track]:
    """Tracks from most to least likely main actor; ties keep the earlier track first."""
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown actor criterion {criterion!r}; choose one of {', '.join(CRITERIA)}",
                          field="criterion")
    if criterion == "area":
        key = [t.area() for t in tracks]
    elif criterion == "motion":
        key = [t.motion() for t in tracks]
    else:
        key = [len(t) + t.area() / (1 + max(t.area() for t in tracks)) for t in tracks]
    order = sorted(range(len(tracks)), key=lambda i: (-key[i], i))
    return [tracks[i] for i in order]


def select_main_actors(tracks: Sequence[Track], num_frames: int, num_joints: int, coords: int,
                       max_persons: int = 1, criterion: str = "area",
                       source: str | None = None) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The ``max_persons`` main actors as ``keypoints [M, T, V, C]``, ``scores [M, T, V]`` and their track ids.

    Frames in which a chosen person was not seen hold zeros with score 0. ``M`` is at most the number of tracks;
    no track at all is a :class:`DataError` ("no person detected"). Persons are ordered by rank.
    """
    if max_persons < 1:
        raise ConfigError(f"must be at least 1, got {max_persons}", field="max_persons")
    if not tracks:
        raise DataError(f"no person detected in any of the {num_frames} frame(s)", source, "persons")
    chosen = rank_tracks(tracks, criterion)[:max_persons]
    keypoints = np.zeros((len(chosen), num_frames, num_joints, coords), dtype=np.float32)
    scores = np.zeros((len(chosen), num_frames, num_joints), dtype=np.float32)
    for m, track in enumerate(chosen):
        idx = np.asarray(track.frames, dtype=np.int64)
        keypoints[m, idx] = np.stack(track.keypoints)
        scores[m, idx] = np.stack(track.scores)
    return keypoints, scores, [t.track_id for t in chosen]
