"""The one record every reader returns and every later stage consumes.

Array convention (the only one in skelact): keypoints ``[M persons, T frames, V joints, C coords]`` float32 and
scores ``[M, T, V]`` float32. A batch for a GCN adds ``N`` in front. Readers convert to it once at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skelact.errors import DataError


@dataclass
class SkeletonSequence:
    """One sample: the people in a clip, their joints over time, and what is known about it.

    ``label`` is the 0-based class index (-1 when unknown). ``meta`` holds scalar facts a split may need, with
    these names where they apply: ``subject``, ``camera`` (or ``view``), ``setup``, ``repetition``, ``action``
    (the dataset's own action id), ``subset`` (the official train/test flag of the source), ``fps``,
    ``img_shape`` (H, W).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    label: int
    name: str
    layout: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_persons(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[1])

    @property
    def num_joints(self) -> int:
        return int(self.keypoints.shape[2])

    @property
    def num_coords(self) -> int:
        return int(self.keypoints.shape[3])

    def validate(self, source: str | None = None, num_joints: int | None = None) -> "SkeletonSequence":
        """Check shapes, dtypes and values; raise :class:`DataError` naming ``source`` and the field.

        Returns ``self`` with arrays cast to float32 so a reader can end with ``return seq.validate(path)``.
        """
        src = source or self.name
        kp = np.asarray(self.keypoints)
        if kp.ndim != 4:
            raise DataError(f"expected keypoints [M, T, V, C], got shape {kp.shape}", src, "keypoints")
        m, t, v, c = kp.shape
        if m < 1 or t < 1:
            raise DataError(f"no data: {m} person(s), {t} frame(s)", src, "keypoints")
        if c not in (2, 3):
            raise DataError(f"expected 2 or 3 coordinates per joint, got {c}", src, "keypoints")
        if num_joints is not None and v != num_joints:
            raise DataError(f"expected {num_joints} joints for layout {self.layout!r}, got {v}", src, "keypoints")
        sc = np.asarray(self.scores)
        if sc.shape != (m, t, v):
            raise DataError(f"expected scores of shape {(m, t, v)}, got {sc.shape}", src, "scores")
        if not np.isfinite(kp).all():
            bad = int((~np.isfinite(kp)).any(axis=(0, 2, 3)).sum())
            raise DataError(f"{bad} of {t} frame(s) contain NaN or infinite coordinates", src, "keypoints")
        if not np.isfinite(sc).all():
            raise DataError("scores contain NaN or infinite values", src, "scores")
        if not isinstance(self.label, (int, np.integer)) or self.label < -1:
            raise DataError(f"expected a class index >= 0 (or -1 for unknown), got {self.label!r}", src, "label")
        self.keypoints = np.ascontiguousarray(kp, dtype=np.float32)
        self.scores = np.ascontiguousarray(sc, dtype=np.float32)
        self.label = int(self.label)
        return self
