"""Pose heatmap volumes of PoseConv3D (Duan et al., "Revisiting Skeleton-based Action Recognition", CVPR 2022,
arXiv 2104.13586, Sec. 3.2), in numpy for data workers.

Joint maps: ``J[k, y, x] = exp(-((x - x_k)^2 + (y - y_k)^2) / (2 sigma^2)) * c_k``. Limb maps:
``L[ab, y, x] = exp(-D((x, y), segment(a, b))^2 / (2 sigma^2)) * min(c_a, c_b)`` with ``D`` the distance from the
pixel to the segment between the two joints. Several persons accumulate by maximum. Pixel ``(x, y)`` is column
``x``, row ``y`` of the map; keypoints are in the same pixel units.

The reference implementation (pyskl ``GeneratePoseTarget``) draws each Gaussian only inside a window of 3 sigma
around the joint (around the segment's bounding box for a limb), with the window ends truncated towards zero, skips
confidences below 1e-3, and draws a limb shorter than one pixel as its first joint's Gaussian; we keep all of these,
so our volumes equal its volumes, and add one rule of skelact's: a missing joint (coordinates exactly 0) draws
nothing, and neither does a limb touching it.

**Speed.** Every Gaussian is non-zero on only a few pixels (a 4 x 4 window at sigma 0.6), so instead of touching
every pixel of the ``[K, T, H, W]`` volume we compute all windows of a clip at once (one padded window per
joint-frame or limb-frame, the joint ones from separable 1-D factors) and scatter them into the zeroed volume, one
person after the other, by maximum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: confidences below this draw nothing (pyskl's ``EPS``)
MIN_CONFIDENCE = 1e-3
#: half-width of a Gaussian's window, in sigmas (pyskl's 3 sigma)
WINDOW_SIGMAS = 3.0


def joint_heatmaps(keypoints: np.ndarray, scores: np.ndarray | None, size: tuple[int, int],
                   sigma: float = 0.6) -> np.ndarray:
    """``[V, T, H, W]`` float32 joint maps of ``keypoints [M, T, V, >=2]`` (x, y pixels) with ``scores [M, T, V]``
    (all 1 when ``None``), maps of ``size = (H, W)``."""
    xy, conf = _prepared(keypoints, scores)
    m, t, v = conf.shape
    h, w = size
    lo_x, hi_x = _window(xy[..., 0], xy[..., 0], sigma, w)
    lo_y, hi_y = _window(xy[..., 1], xy[..., 1], sigma, h)
    width = int(np.floor(2 * WINDOW_SIGMAS * sigma)) + 2  # the most whole pixels a window can span
    steps = np.arange(width)
    xs = lo_x[..., None] + steps                                    # [M, T, V, P]
    ys = lo_y[..., None] + steps
    inside_x = xs <= hi_x[..., None]
    inside_y = ys <= hi_y[..., None]
    inv = np.float32(-0.5 / sigma ** 2)
    gx = np.exp((xs - xy[..., 0:1]).astype(np.float32) ** 2 * inv)
    gy = np.exp((ys - xy[..., 1:2]).astype(np.float32) ** 2 * inv) * conf[..., None]
    values = gy[..., :, None] * gx[..., None, :]                   # [M, T, V, P, P]
    valid = inside_y[..., :, None] & inside_x[..., None, :] & (conf >= MIN_CONFIDENCE)[..., None, None]
    channel_frame = np.arange(v)[None, None, :] * t + np.arange(t)[None, :, None]  # [1, T, V]
    index = (channel_frame * h)[..., None, None] * w + ys[..., :, None] * w + xs[..., None, :]
    return _scatter_max(index, values, valid, (v, t, h, w))


def limb_heatmaps(keypoints: np.ndarray, scores: np.ndarray | None, limbs: Sequence[tuple[int, int]],
                  size: tuple[int, int], sigma: float = 0.6) -> np.ndarray:
    """``[L, T, H, W]`` float32 limb maps, one per joint pair of ``limbs`` (for a layout: its ``bones``)."""
    xy, conf = _prepared(keypoints, scores)
    m, t, _ = conf.shape
    h, w = size
    limbs = np.asarray(limbs, dtype=np.int64).reshape(-1, 2)
    n_limbs = len(limbs)
    a, b = xy[:, :, limbs[:, 0]], xy[:, :, limbs[:, 1]]            # [M, T, L, 2]
    ca, cb = conf[:, :, limbs[:, 0]], conf[:, :, limbs[:, 1]]
    d = b - a
    length2 = d[..., 0] ** 2 + d[..., 1] ** 2
    short = length2 < 1.0                                           # pyskl: drawn as joint a's Gaussian
    value = np.where(short, ca, np.minimum(ca, cb))
    # a short limb's window is joint a's own window
    far = np.where(short[..., None], a, b)
    lo_x, hi_x = _window(np.minimum(a[..., 0], far[..., 0]), np.maximum(a[..., 0], far[..., 0]), sigma, w)
    lo_y, hi_y = _window(np.minimum(a[..., 1], far[..., 1]), np.maximum(a[..., 1], far[..., 1]), sigma, h)
    drawn = (np.minimum(ca, cb) >= MIN_CONFIDENCE) & (hi_x >= lo_x) & (hi_y >= lo_y)
    if not drawn.any():
        return np.zeros((n_limbs, t, h, w), np.float32)
    span_x = int((hi_x - lo_x)[drawn].max()) + 1
    span_y = int((hi_y - lo_y)[drawn].max()) + 1
    xs = lo_x[..., None] + np.arange(span_x)                       # [M, T, L, Px]
    ys = lo_y[..., None] + np.arange(span_y)                       # [M, T, L, Py]
    ux = (xs - a[..., 0:1]).astype(np.float32)[..., None, :]       # [M, T, L, 1, Px]
    uy = (ys - a[..., 1:2]).astype(np.float32)[..., :, None]       # [M, T, L, Py, 1]
    # projection of the pixel onto the segment, clamped to its ends (0 for a short limb: distance to joint a)
    inv_length2 = np.where(short, 0.0, 1.0 / np.where(short, 1.0, length2)).astype(np.float32)
    dx = (d[..., 0] * inv_length2)[..., None, None]
    dy = (d[..., 1] * inv_length2)[..., None, None]
    along = np.clip(ux * dx + uy * dy, 0.0, 1.0)
    ex = ux - along * d[..., 0, None, None]
    ey = uy - along * d[..., 1, None, None]
    values = np.exp((ex * ex + ey * ey) * np.float32(-0.5 / sigma ** 2)) * value[..., None, None]
    valid = ((xs <= hi_x[..., None])[..., None, :] & (ys <= hi_y[..., None])[..., :, None]
             & drawn[..., None, None])
    channel_frame = np.arange(n_limbs)[None, None, :] * t + np.arange(t)[None, :, None]
    index = (channel_frame * h)[..., None, None] * w + ys[..., :, None] * w + xs[..., None, :]
    return _scatter_max(index, values, valid, (n_limbs, t, h, w))


def heatmap_volume(keypoints: np.ndarray, scores: np.ndarray | None, size: tuple[int, int], sigma: float = 0.6,
                   limbs: Sequence[tuple[int, int]] | None = None, with_joints: bool = True) -> np.ndarray:
    """Joint maps, limb maps (when ``limbs`` is given) or both, concatenated along the channel axis (joints
    first): ``[K, T, H, W]``."""
    parts = []
    if with_joints:
        parts.append(joint_heatmaps(keypoints, scores, size, sigma))
    if limbs is not None:
        parts.append(limb_heatmaps(keypoints, scores, limbs, size, sigma))
    if not parts:
        raise ValueError("heatmap_volume: asked for neither joint nor limb maps")
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


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


def _scatter_max(index: np.ndarray, values: np.ndarray, valid: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A zero volume of ``shape`` with ``values [M, ...]`` written at flat ``index`` by maximum where ``valid``.

    Within one person every (channel, frame) has one window, so its valid indices never repeat and a gather-max-
    scatter is exact; persons are taken one at a time. Invalid entries go to one spare element past the end."""
    total = int(np.prod(shape))
    flat = np.zeros(total + 1, np.float32)
    index = np.where(valid, index, total)
    values = np.where(valid, values, np.float32(0)).astype(np.float32, copy=False)
    for person in range(index.shape[0]):
        idx = index[person].ravel()
        val = values[person].ravel()
        if person == 0:
            flat[idx] = val
        else:
            flat[idx] = np.maximum(flat[idx], val)
    return flat[:total].reshape(shape)
