"""Pose heatmap volumes of PoseConv3D (Duan et al., CVPR 2022, arXiv 2104.13586) in torch, batched, on any device,
so a GPU can build them inside the training step.

The maps and their rules are those of :mod:`skelact.data.heatmaps` (which documents them), with the same values to
float32 rounding: ``[N, M, T, V, C]`` keypoints and ``[N, M, T, V]`` scores give ``[N, K, T, H, W]`` volumes. The
windows of every sample, person, frame and joint (or limb) are computed at once and scattered into the zeroed
volume with ``scatter_reduce(..., 'amax')``, which accumulates persons by maximum in one call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from skelact.data.heatmaps import MIN_CONFIDENCE, WINDOW_SIGMAS


def joint_heatmaps_torch(keypoints: torch.Tensor, scores: torch.Tensor | None, size: tuple[int, int],
                         sigma: float = 0.6) -> torch.Tensor:
    """``[N, V, T, H, W]`` float32 joint maps of ``keypoints [N, M, T, V, >=2]`` on their device."""
    xy, conf = _prepared(keypoints, scores)
    n, m, t, v = conf.shape
    h, w = size
    lo_x, hi_x = _window(xy[..., 0], xy[..., 0], sigma, w)
    lo_y, hi_y = _window(xy[..., 1], xy[..., 1], sigma, h)
    width = int(2 * WINDOW_SIGMAS * sigma // 1) + 2
    steps = torch.arange(width, device=xy.device)
    xs = lo_x[..., None] + steps                                    # [N, M, T, V, P]
    ys = lo_y[..., None] + steps
    inv = -0.5 / sigma ** 2
    gx = torch.exp((xs - xy[..., 0:1]).float() ** 2 * inv)
    gy = torch.exp((ys - xy[..., 1:2]).float() ** 2 * inv) * conf[..., None]
    values = gy[..., :, None] * gx[..., None, :]
    valid = ((xs <= hi_x[..., None])[..., None, :] & (ys <= hi_y[..., None])[..., :, None]
             & (conf >= MIN_CONFIDENCE)[..., None, None])
    index = _flat_index(n, v, t, h, w, xs, ys, xy.device)
    return _scatter_max(index, values, valid, (n, v, t, h, w))


def limb_heatmaps_torch(keypoints: torch.Tensor, scores: torch.Tensor | None, limbs: Sequence[tuple[int, int]],
                        size: tuple[int, int], sigma: float = 0.6) -> torch.Tensor:
    """``[N, L, T, H, W]`` float32 limb maps, one per joint pair of ``limbs``."""
    xy, conf = _prepared(keypoints, scores)
    n, m, t, _ = conf.shape
    h, w = size
    limbs_t = torch.as_tensor(limbs, dtype=torch.long, device=xy.device).reshape(-1, 2)
    n_limbs = limbs_t.shape[0]
    a, b = xy[..., limbs_t[:, 0], :], xy[..., limbs_t[:, 1], :]    # [N, M, T, L, 2]
    ca, cb = conf[..., limbs_t[:, 0]], conf[..., limbs_t[:, 1]]
    d = b - a
    length2 = d[..., 0] ** 2 + d[..., 1] ** 2
    short = length2 < 1.0
    value = torch.where(short, ca, torch.minimum(ca, cb))
    far = torch.where(short[..., None], a, b)
    lo_x, hi_x = _window(torch.minimum(a[..., 0], far[..., 0]), torch.maximum(a[..., 0], far[..., 0]), sigma, w)
    lo_y, hi_y = _window(torch.minimum(a[..., 1], far[..., 1]), torch.maximum(a[..., 1], far[..., 1]), sigma, h)
    drawn = (torch.minimum(ca, cb) >= MIN_CONFIDENCE) & (hi_x >= lo_x) & (hi_y >= lo_y)
    out_shape = (n, n_limbs, t, h, w)
    if not bool(drawn.any()):
        return torch.zeros(out_shape, dtype=torch.float32, device=xy.device)
    # one host sync per call: the padded window size
    span_x = int((hi_x - lo_x)[drawn].max()) + 1
    span_y = int((hi_y - lo_y)[drawn].max()) + 1
    xs = lo_x[..., None] + torch.arange(span_x, device=xy.device)
    ys = lo_y[..., None] + torch.arange(span_y, device=xy.device)
    ux = (xs - a[..., 0:1]).float()[..., None, :]
    uy = (ys - a[..., 1:2]).float()[..., :, None]
    inv_length2 = torch.where(short, torch.zeros_like(length2), 1.0 / torch.where(short, torch.ones_like(length2),
                                                                                    length2)).float()
    d = d.float()
    along = (ux * (d[..., 0] * inv_length2)[..., None, None]
             + uy * (d[..., 1] * inv_length2)[..., None, None]).clamp(0.0, 1.0)
    ex = ux - along * d[..., 0, None, None]
    ey = uy - along * d[..., 1, None, None]
    values = torch.exp((ex * ex + ey * ey) * (-0.5 / sigma ** 2)) * value[..., None, None]
    valid = ((xs <= hi_x[..., None])[..., None, :] & (ys <= hi_y[..., None])[..., :, None]
             & drawn[..., None, None])
    index = _flat_index(n, n_limbs, t, h, w, xs, ys, xy.device)
    return _scatter_max(index, values, valid, out_shape)


def heatmap_volume_torch(keypoints: torch.Tensor, scores: torch.Tensor | None, size: tuple[int, int],
                         sigma: float = 0.6, limbs: Sequence[tuple[int, int]] | None = None,
                         with_joints: bool = True) -> torch.Tensor:
    """Joint maps, limb maps or both (joints first along the channel axis): ``[N, K, T, H, W]``."""
    parts = []
    if with_joints:
        parts.append(joint_heatmaps_torch(keypoints, scores, size, sigma))
    if limbs is not None:
        parts.append(limb_heatmaps_torch(keypoints, scores, limbs, size, sigma))
    if not parts:
        raise ValueError("heatmap_volume_torch: asked for neither joint nor limb maps")
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _prepared(keypoints: torch.Tensor, scores: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """x, y in float64 (window ends as the numpy version computes them) and float32 confidences, missing joints
    (coordinates exactly 0) at 0."""
    if keypoints.dim() != 5 or keypoints.shape[-1] < 2:
        raise ValueError(f"expected keypoints [N, M, T, V, C>=2], got shape {tuple(keypoints.shape)}")
    kp = keypoints.float()
    conf = torch.ones(kp.shape[:4], device=kp.device) if scores is None else scores.to(kp.device).float()
    if conf.shape != kp.shape[:4]:
        raise ValueError(f"scores of shape {tuple(conf.shape)} do not match keypoints {tuple(kp.shape)}")
    missing = ~(kp != 0).any(dim=-1)
    conf = conf.masked_fill(missing, 0.0)
    return kp[..., :2].double(), conf


def _window(low: torch.Tensor, high: torch.Tensor, sigma: float, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    reach = WINDOW_SIGMAS * sigma
    first = torch.trunc(low - reach).clamp(min=0).long()
    last = torch.trunc(high + reach).clamp(max=size - 1).long()
    return first, last


def _flat_index(n: int, channels: int, t: int, h: int, w: int, xs: torch.Tensor, ys: torch.Tensor,
                device: torch.device) -> torch.Tensor:
    """Flat index into ``[N, K, T, H, W]`` of every window pixel; ``xs``, ``ys`` are ``[N, M, T, K, P]``."""
    sample = torch.arange(n, device=device).view(n, 1, 1, 1) * channels
    channel = torch.arange(channels, device=device).view(1, 1, 1, channels)
    frame = torch.arange(t, device=device).view(1, 1, t, 1)
    plane = ((sample + channel) * t + frame) * h * w                # [N, 1, T, K]
    return plane[..., None, None] + ys[..., :, None] * w + xs[..., None, :]


def _scatter_max(index: torch.Tensor, values: torch.Tensor, valid: torch.Tensor,
                 shape: tuple[int, ...]) -> torch.Tensor:
    total = 1
    for s in shape:
        total *= s
    flat = torch.zeros(total + 1, dtype=torch.float32, device=values.device)
    index = torch.where(valid, index, torch.full_like(index, total)).reshape(-1)
    values = torch.where(valid, values, torch.zeros_like(values)).reshape(-1)
    flat.scatter_reduce_(0, index, values, reduce="amax", include_self=True)
    return flat[:total].view(shape)
