"""Pose heatmap volumes of PoseConv3D (Duan et al., "Revisiting Skeleton-based Action Recognition", CVPR 2022,
arXiv 2104.13586, Sec. 3.2), in numpy for data workers.

Joint maps: ``J[k, y, x] = exp(-((x - x_k)^2 + (y - y_k)^2) / (2 sigma^2)) * c_k``. Limb maps:
``L[ab, y, x] = exp(-D((x, y), segment(a, b))^2 / (2 sigma^2)) * min(c_a, c_b)`` with ``D`` the distance from the
pixel to the segment between the two joints. Several persons accumulate by maximum. Pixel ``(x, y)`` is column
``x``, row ``y`` of the map; keypoints are in the same pixel units.

The reference implementation (pyskl ``GeneratePoseTarget``) draws each Gaussian only inside a window of 3 sigma
around the joint (around the segment's bounding box for a limb), with the window ends truncated towards zero, skips
confidences below 1e-3, and draws a limb shorter than one pixel as its first joint's Gaussian; we keep all of these,
so our volumes equal its volumes to float32 rounding (and to 1e-6 for limbs, see ``NEGLIGIBLE``), and add one rule of
skelact's: a missing joint (coordinates exactly 0) draws nothing, and neither does a limb touching it.

**Speed.** Every Gaussian is non-zero on only a few pixels (at most a 5 x 5 window at sigma 0.6), so instead of
touching every pixel of the ``[K, T, H, W]`` volume we compute all windows of a clip at once (one padded window per
joint-frame or limb-frame, the joint ones from separable 1-D factors; absent joints and undrawn limbs are dropped
first) and scatter them into the zeroed volume, one person after the other, by maximum. A test sample's mirror
images are drawn the same way at mirrored pixels, not copied from the volume.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: confidences below this draw nothing (pyskl's ``EPS``)
MIN_CONFIDENCE = 1e-3
#: half-width of a Gaussian's window, in sigmas (pyskl's 3 sigma)
WINDOW_SIGMAS = 3.0
#: limb window pixels below this fraction of the limb's confidence are not written (see :func:`limb_heatmaps`)
NEGLIGIBLE = 1e-6


def joint_heatmaps(keypoints: np.ndarray, scores: np.ndarray | None, size: tuple[int, int], sigma: float = 0.6,
                   clips: int | None = None, mirror: np.ndarray | None = None) -> np.ndarray:
    """``[V, T, H, W]`` float32 joint maps of ``keypoints [M, T, V, >=2]`` (x, y pixels) with ``scores [M, T, V]``
    (all 1 when ``None``), maps of ``size = (H, W)``.

    ``clips``: the ``T`` frames are that many clips one after the other; the result is ``[clips, V, T / clips, H,
    W]``. ``mirror``: a channel order (:func:`flip_heatmap`); the mirror images of the clips follow them on the
    leading axis, ``[2 * clips, ...]``, drawn directly rather than copied from the volume.
    """
    xy, conf = _prepared(keypoints, scores)
    m, t, v = conf.shape
    h, w = size
    lo_x, hi_x = _window(xy[..., 0], xy[..., 0], sigma, w)
    lo_y, hi_y = _window(xy[..., 1], xy[..., 1], sigma, h)
    person, frame, channel = np.nonzero((conf >= MIN_CONFIDENCE) & (hi_x >= lo_x) & (hi_y >= lo_y))
    at = (person, frame, channel)
    width = int(np.floor(2 * WINDOW_SIGMAS * sigma)) + 2  # the most whole pixels a window can span
    steps = np.arange(width)
    xs = lo_x[at][:, None] + steps                                  # [D, P], D drawn joints
    ys = lo_y[at][:, None] + steps
    inv = np.float32(-0.5 / sigma ** 2)
    gx = np.exp((xs - xy[..., 0][at][:, None]).astype(np.float32) ** 2 * inv)
    gy = np.exp((ys - xy[..., 1][at][:, None]).astype(np.float32) ** 2 * inv) * conf[at][:, None]
    values = gy[:, :, None] * gx[:, None, :]                        # [D, P, P]
    keep = (ys <= hi_y[at][:, None])[:, :, None] & (xs <= hi_x[at][:, None])[:, None, :]
    return _draw(at, xs, ys, values, keep, (m, v, t, h, w), clips, mirror)


def limb_heatmaps(keypoints: np.ndarray, scores: np.ndarray | None, limbs: Sequence[tuple[int, int]],
                  size: tuple[int, int], sigma: float = 0.6, clips: int | None = None,
                  mirror: np.ndarray | None = None) -> np.ndarray:
    """``[L, T, H, W]`` float32 limb maps, one per joint pair of ``limbs`` (for a layout: its ``bones``);
    ``clips`` and ``mirror`` as for :func:`joint_heatmaps` (``mirror`` orders limbs: :func:`limb_flip_permutation`).

    Pixels of a limb's window farther than about 5.3 sigma from the segment (value below ``NEGLIGIBLE`` times the
    confidence) are left at 0; pyskl writes those values, which differ from 0 by less than 1e-6."""
    xy, conf = _prepared(keypoints, scores)
    m, t, _ = conf.shape
    h, w = size
    limbs = np.asarray(limbs, dtype=np.int64).reshape(-1, 2)
    a, b = xy[:, :, limbs[:, 0]], xy[:, :, limbs[:, 1]]            # [M, T, L, 2]
    ca, cb = conf[:, :, limbs[:, 0]], conf[:, :, limbs[:, 1]]
    short = ((b - a) ** 2).sum(-1) < 1.0                           # pyskl: drawn as joint a's Gaussian
    # a short limb's window is joint a's own window
    far = np.where(short[..., None], a, b)
    lo_x, hi_x = _window(np.minimum(a[..., 0], far[..., 0]), np.maximum(a[..., 0], far[..., 0]), sigma, w)
    lo_y, hi_y = _window(np.minimum(a[..., 1], far[..., 1]), np.maximum(a[..., 1], far[..., 1]), sigma, h)
    at = np.nonzero((np.minimum(ca, cb) >= MIN_CONFIDENCE) & (hi_x >= lo_x) & (hi_y >= lo_y))
    shape = (m, len(limbs), t, h, w)
    if len(at[0]) == 0:
        return _draw(at, np.zeros((0, 1), np.int64), np.zeros((0, 1), np.int64), np.zeros((0, 1, 1), np.float32),
                     np.zeros((0, 1, 1), bool), shape, clips, mirror)
    a, b, short = a[at], b[at], short[at]                           # [D, 2], D drawn limbs
    value = np.where(short, ca[at], np.minimum(ca[at], cb[at]))
    lo_x, hi_x, lo_y, hi_y = lo_x[at], hi_x[at], lo_y[at], hi_y[at]
    xs = lo_x[:, None] + np.arange(int((hi_x - lo_x).max()) + 1)   # [D, Px]
    ys = lo_y[:, None] + np.arange(int((hi_y - lo_y).max()) + 1)   # [D, Py]
    ux = (xs - a[:, 0:1]).astype(np.float32)[:, None, :]           # [D, 1, Px]
    uy = (ys - a[:, 1:2]).astype(np.float32)[:, :, None]           # [D, Py, 1]
    d = np.where(short[:, None], 0.0, b - a).astype(np.float32)     # a short limb: the distance to joint a
    length2 = (d ** 2).sum(-1)
    direction = d / np.where(short, np.float32(1), length2)[:, None]
    # projection of the pixel onto the segment, clamped to its ends
    along = np.clip(ux * direction[:, 0, None, None] + uy * direction[:, 1, None, None], 0.0, 1.0)
    ex = ux - along * d[:, 0, None, None]
    ey = uy - along * d[:, 1, None, None]
    values = np.exp((ex * ex + ey * ey) * np.float32(-0.5 / sigma ** 2)) * value[:, None, None]
    keep = ((xs <= hi_x[:, None])[:, None, :] & (ys <= hi_y[:, None])[:, :, None]
            & (values >= NEGLIGIBLE * value[:, None, None]))
    return _draw(at, xs, ys, values, keep, shape, clips, mirror)


def heatmap_volume(keypoints: np.ndarray, scores: np.ndarray | None, size: tuple[int, int], sigma: float = 0.6,
                   limbs: Sequence[tuple[int, int]] | None = None, with_joints: bool = True,
                   clips: int | None = None, mirror: np.ndarray | None = None) -> np.ndarray:
    """Joint maps, limb maps (when ``limbs`` is given) or both, concatenated along the channel axis (joints
    first): ``[K, T, H, W]``, or ``[clips (x 2 with mirror), K, T / clips, H, W]``. ``mirror`` orders all ``K``
    channels (limb channels numbered after the joints when both are drawn)."""
    if not with_joints and limbs is None:
        raise ValueError("heatmap_volume: asked for neither joint nor limb maps")
    num_joints = np.shape(keypoints)[2]
    parts = []
    if with_joints:
        joint_mirror = None if mirror is None else np.asarray(mirror)[:num_joints]
        parts.append(joint_heatmaps(keypoints, scores, size, sigma, clips, joint_mirror))
    if limbs is not None:
        limb_mirror = None
        if mirror is not None:
            limb_mirror = np.asarray(mirror)[num_joints:] - num_joints if with_joints else np.asarray(mirror)
        parts.append(limb_heatmaps(keypoints, scores, limbs, size, sigma, clips, limb_mirror))
    channel_axis = 0 if clips is None and mirror is None else 1
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=channel_axis)


def limb_flip_permutation(limbs: Sequence[tuple[int, int]], joint_permutation: np.ndarray) -> np.ndarray:
    """For each limb, the index of the limb its joints become in the mirror image (itself for a central limb).

    A layout whose flip pairs map a limb onto no limb has inconsistent flip pairs: ``ValueError``."""
    position = {frozenset((int(a), int(b))): i for i, (a, b) in enumerate(limbs)}
    out = []
    for a, b in limbs:
        mirrored = frozenset((int(joint_permutation[a]), int(joint_permutation[b])))
        if mirrored not in position:
            raise ValueError(f"limb ({a}, {b}) mirrors to joints {sorted(mirrored)}, which form no limb")
        out.append(position[mirrored])
    return np.asarray(out, dtype=np.int64)


def flip_heatmap(volume: np.ndarray, channel_permutation: np.ndarray) -> np.ndarray:
    """The mirror image of ``[..., K, T, H, W]`` maps: columns reversed and left/right channels swapped."""
    return np.ascontiguousarray(volume[..., channel_permutation, :, :, ::-1])


def _prepared(keypoints: np.ndarray, scores: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """x, y as float64 (window ends are computed as pyskl computes them) and float32 confidences with missing
    joints at 0."""
    kp = np.asarray(keypoints)
    if kp.ndim != 4 or kp.shape[-1] < 2:
        raise ValueError(f"expected keypoints [M, T, V, C>=2], got shape {kp.shape}")
    conf = np.ones(kp.shape[:3], np.float32) if scores is None else np.asarray(scores, np.float32)
    if conf.shape != kp.shape[:3]:
        raise ValueError(f"scores of shape {conf.shape} do not match keypoints {kp.shape}")
    missing = ~np.any(kp != 0, axis=-1)
    conf = np.where(missing, np.float32(0), conf)
    return kp[..., :2].astype(np.float32).astype(np.float64), conf


def _window(low: np.ndarray, high: np.ndarray, sigma: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last pixel (inclusive, int64) of the window ``[trunc(low - 3 sigma), trunc(high + 3 sigma)]``
    clipped to the map; empty when first > last."""
    reach = WINDOW_SIGMAS * sigma
    first = np.maximum(np.trunc(low - reach), 0).astype(np.int64)
    last = np.minimum(np.trunc(high + reach), size - 1).astype(np.int64)
    return first, last


def _draw(at: tuple[np.ndarray, ...], xs: np.ndarray, ys: np.ndarray, values: np.ndarray, keep: np.ndarray,
          shape: tuple[int, int, int, int, int], clips: int | None, mirror: np.ndarray | None) -> np.ndarray:
    """Scatter the windows into a zero volume by maximum.

    ``at = (person, frame, channel)`` of each window (sorted by person, as ``np.nonzero`` gives them), ``xs [D,
    Px]`` and ``ys [D, Py]`` its pixels, ``values [D, Py, Px]``, ``keep`` the pixels to write; ``shape = (persons,
    channels, frames, H, W)``. Within one person every (channel, frame) has one window, so its pixels never repeat
    and a gather-max-scatter is exact; persons are taken one at a time.
    """
    persons, channels, frames, h, w = shape
    person, frame, channel = at
    count = 1 if clips is None else int(clips)
    if count < 1 or frames % count:
        raise ValueError(f"{frames} frames do not split into {clips} clips")
    length = frames // count
    row = (ys * w)[:, :, None]

    def flat_index(first_clip: int, channel_of: np.ndarray, columns: np.ndarray) -> np.ndarray:
        plane = ((first_clip + frame // length) * channels + channel_of) * length + frame % length
        return (plane * (h * w))[:, None, None] + row + columns[:, None, :]

    indices = [flat_index(0, channel, xs)]
    if mirror is not None:
        indices.append(flat_index(count, np.asarray(mirror)[channel], (w - 1) - xs))
    copies = len(indices)
    flat = np.zeros(copies * count * channels * length * h * w, np.float32)
    bounds = np.searchsorted(person, np.arange(persons + 1))
    written = False
    for p in range(persons):
        lo, hi = bounds[p], bounds[p + 1]
        if lo == hi:
            continue
        kept = keep[lo:hi]
        vals = np.broadcast_to(values[lo:hi], kept.shape)[kept]
        for index in indices:
            idx = np.broadcast_to(index[lo:hi], kept.shape)[kept]
            flat[idx] = np.maximum(flat[idx], vals) if written else vals
        written = True
    if clips is None and mirror is None:
        return flat.reshape(channels, frames, h, w)
    return flat.reshape(copies * count, channels, length, h, w)
