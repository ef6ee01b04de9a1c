"""Test-time pose corruptions: the noise of a pose estimator, made on purpose and seeded.

PoseConv3D (Duan et al., CVPR 2022, arXiv 2104.13586, Sec. 1 and 4.3) claims that heatmap volumes are more robust
to pose-estimation noise than the coordinates a GCN reads. These steps corrupt the clean poses of a test set so
that the claim can be measured on models trained on clean data (``benchmarks/bench_pose_corruption.py``). Each is
an ordinary transform: placed first in a test pipeline, it sees the reader's keypoints (pixels for Penn Action)
and draws every random choice from the generator the dataset seeds per sample, so the same seed gives the same
corrupted test set.

- :class:`PoseJitter`: Gaussian noise on every present joint, its standard deviation a fraction of the person's
  box size (the longer side of the box holding the person's present joints over the whole clip, the box a pose
  estimator's person detector would give).
- :class:`DropJoints`: in every frame of every present person, a fraction of the joints made missing, which in
  skelact means coordinates exactly 0 and score 0 (docs/architecture.md, Conventions). What a missing joint then
  does depends on the model's pipeline: a heatmap draws nothing for it; a GCN pipeline's normalisation skips it
  and leaves it at 0, which after ``TorsoNormalize`` is the body's centre (the hip midpoint).
- :class:`ZeroConfidence`: every score set to 0, keypoints untouched (an estimator that reports no confidence).
  Heatmaps are weighted by the scores, so they become empty; a model that reads coordinates only is unaffected.

A joint that was missing stays missing (exactly 0) under every step: noise is never added to it.
"""

from __future__ import annotations

import numpy as np

from skelact.data.transforms.registry import as_number, register_transform
from skelact.data.transforms.sample import Sample, as_float32, get_keypoints, get_scores, updated


def present_joint_mask(keypoints: np.ndarray) -> np.ndarray:
    """``[M, T, V]``: the joints that are not missing (some coordinate non-zero)."""
    return np.any(keypoints != 0, axis=-1)


def person_box_sizes(keypoints: np.ndarray) -> np.ndarray:
    """``[M]``: per person, the longer side of the box holding its present joints over every frame (0 for a person
    who is never present)."""
    present = present_joint_mask(keypoints)
    sizes = np.zeros(keypoints.shape[0])
    for m in range(keypoints.shape[0]):
        xy = keypoints[m][present[m]].astype(np.float64)
        if len(xy):
            sizes[m] = float((xy.max(axis=0) - xy.min(axis=0)).max())
    return sizes


@register_transform
class PoseJitter:
    """Add ``N(0, (fraction * box size)^2)`` to each coordinate of every present joint, independently per joint,
    frame and axis; the box size is the person's (:func:`person_box_sizes`), so ``fraction=0.05`` is noise of 5 %
    of the person's size whatever the image resolution. Missing joints stay exactly 0."""

    def __init__(self, fraction: float = 0.05):
        self.fraction = as_number("PoseJitter", "fraction", fraction, 0.0, 10.0)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "PoseJitter")
        present = present_joint_mask(kp)
        std = self.fraction * person_box_sizes(kp)  # [M]
        noise = rng.standard_normal(kp.shape) * std[:, None, None, None]
        jittered = np.where(present[..., None], kp.astype(np.float64) + noise, 0.0)
        return updated(sample, keypoints=as_float32(jittered))

    def __repr__(self) -> str:
        return f"PoseJitter(fraction={self.fraction})"


@register_transform
class DropJoints:
    """In every (person, frame) where the person is present, pick ``round(fraction * V)`` of the ``V`` joints at
    random and make them missing: coordinates 0 and score 0 (when the sample has scores). A joint that was missing
    already may be picked, and then stays missing; frames where the person is absent are left alone."""

    def __init__(self, fraction: float = 0.2):
        self.fraction = as_number("DropJoints", "fraction", fraction, 0.0, 1.0)

    def drop_mask(self, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
        """``[M, T, V]`` boolean: exactly ``round(fraction * V)`` joints per (person, frame), uniformly chosen."""
        m, t, v = shape
        count = int(round(self.fraction * v))
        # a random permutation per (person, frame) as the ranks of uniform draws; the lowest `count` ranks drop
        ranks = np.argsort(np.argsort(rng.random((m, t, v)), axis=-1), axis=-1)
        return ranks < count

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "DropJoints")
        scores = get_scores(sample, kp, "DropJoints")
        person_present = np.any(kp != 0, axis=(2, 3))  # [M, T]
        drop = self.drop_mask(kp.shape[:3], rng) & person_present[..., None]
        changes = {"keypoints": np.where(drop[..., None], 0.0, kp).astype(np.float32)}
        if scores is not None:
            changes["scores"] = np.where(drop, 0.0, scores).astype(np.float32)
        return updated(sample, **changes)

    def __repr__(self) -> str:
        return f"DropJoints(fraction={self.fraction})"


@register_transform
class ZeroConfidence:
    """Every keypoint score set to 0 (added as zeros when the sample has none); the keypoints are unchanged."""

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "ZeroConfidence")
        return updated(sample, scores=np.zeros(kp.shape[:3], np.float32))

    def __repr__(self) -> str:
        return "ZeroConfidence()"
