"""Pose heatmap volumes of PoseConv3D (Duan et al., CVPR 2022, arXiv 2104.13586) in torch, batched, on any device,
so a GPU can build them inside the training step.

The maps and their rules are those of :mod:`skelact.data.heatmaps` (which documents them), with the same values to
float32 rounding (limb pixels under 1e-6 are written here, not there): ``[N, M, T, V, C]`` keypoints and
``[N, M, T, V]`` scores give ``[N, K, T, H, W]`` volumes. The windows of every drawn joint (or limb) of every
sample, person and frame are computed at once and scattered into the zeroed volume with
``scatter_reduce(..., 'amax')``, which accumulates persons by maximum in one call. Selecting the drawn windows and
sizing the limb windows read two numbers back from the device per call.
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
    at = torch.nonzero((conf >= MIN_CONFIDENCE) & (hi_x >= lo_x) & (hi_y >= lo_y), as_tuple=True)
    width = int(2 * WINDOW_SIGMAS * sigma // 1) + 2
    steps = torch.arange(width, device=xy.device)
    xs = lo_x[at][:, None] + steps                                  # [D, P], D drawn joints
    ys = lo_y[at][:, None] + steps
    inv = -0.5 / sigma ** 2
    gx = torch.exp((xs - xy[..., 0][at][:, None]).float() ** 2 * inv)
    gy = torch.exp((ys - xy[..., 1][at][:, None]).float() ** 2 * inv) * conf[at][:, None]
    values = gy[:, :, None] * gx[:, None, :]
    keep = (xs <= hi_x[at][:, None])[:, None, :] & (ys <= hi_y[at][:, None])[:, :, None]
    return _scatter_max(at, xs, ys, values, keep, (n, v, t, h, w))


def limb_heatmaps_torch(keypoints: torch.Tensor, scores: torch.Tensor | None, limbs: Sequence[tuple[int, int]],
                        size: tuple[int, int], sigma: float = 0.6) -> torch.Tensor:
    """``[N, L, T, H, W]`` float32 limb maps, one per joint pair of ``limbs``."""
    xy, conf = _prepared(keypoints, scores)
    n, m, t, _ = conf.shape
    h, w = size
    limbs_t = torch.as_tensor(limbs, dtype=torch.long, device=xy.device).reshape(-1, 2)
    a, b = xy[..., limbs_t[:, 0], :], xy[..., limbs_t[:, 1], :]    # [N, M, T, L, 2]
    ca, cb = conf[..., limbs_t[:, 0]], conf[..., limbs_t[:, 1]]
    short = ((b - a) ** 2).sum(-1) < 1.0
    far = torch.where(short[..., None], a, b)
    lo_x, hi_x = _window(torch.minimum(a[..., 0], far[..., 0]), torch.maximum(a[..., 0], far[..., 0]), sigma, w)
    lo_y, hi_y = _window(torch.minimum(a[..., 1], far[..., 1]), torch.maximum(a[..., 1], far[..., 1]), sigma, h)
    at = torch.nonzero((torch.minimum(ca, cb) >= MIN_CONFIDENCE) & (hi_x >= lo_x) & (hi_y >= lo_y), as_tuple=True)
    out_shape = (n, limbs_t.shape[0], t, h, w)
    if at[0].numel() == 0:
        return torch.zeros(out_shape, dtype=torch.float32, device=xy.device)
    a, b, short = a[at], b[at], short[at]                           # [D, 2], D drawn limbs
    value = torch.where(short, ca[at], torch.minimum(ca[at], cb[at]))
    lo_x, hi_x, lo_y, hi_y = lo_x[at], hi_x[at], lo_y[at], hi_y[at]
    # one host sync per call: the padded window size
    xs = lo_x[:, None] + torch.arange(int((hi_x - lo_x).max()) + 1, device=xy.device)
    ys = lo_y[:, None] + torch.arange(int((hi_y - lo_y).max()) + 1, device=xy.device)
    ux = (xs - a[:, 0:1]).float()[:, None, :]
    uy = (ys - a[:, 1:2]).float()[:, :, None]
    d = torch.where(short[:, None], torch.zeros_like(b), b - a).float()
    length2 = (d ** 2).sum(-1)
    direction = d / torch.where(short, torch.ones_like(length2), length2)[:, None]
    along = (ux * direction[:, 0, None, None] + uy * direction[:, 1, None, None]).clamp(0.0, 1.0)
    ex = ux - along * d[:, 0, None, None]
    ey = uy - along * d[:, 1, None, None]
    values = torch.exp((ex * ex + ey * ey) * (-0.5 / sigma ** 2)) * value[:, None, None]
    keep = (xs <= hi_x[:, None])[:, None, :] & (ys <= hi_y[:, None])[:, :, None]
    return _scatter_max(at, xs, ys, values, keep, out_shape)


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


def _scatter_max(at: tuple[torch.Tensor, ...], xs: torch.Tensor, ys: torch.Tensor, values: torch.Tensor,
                 keep: torch.Tensor, shape: tuple[int, int, int, int, int]) -> torch.Tensor:
    """The windows ``values [D, Py, Px]`` at pixels ``xs [D, Px]``, ``ys [D, Py]`` of (sample, person, frame,
    channel) ``at`` written into a zero ``[N, K, T, H, W]`` volume by maximum (so persons accumulate by maximum);
    pixels outside ``keep`` go to one spare element past the end."""
    n, channels, t, h, w = shape
    sample, _, frame, channel = at
    total = n * channels * t * h * w
    plane = ((sample * channels + channel) * t + frame) * (h * w)
    index = plane[:, None, None] + (ys * w)[:, :, None] + xs[:, None, :]
    index = torch.where(keep, index, torch.full_like(index, total)).reshape(-1)
    flat = torch.zeros(total + 1, dtype=torch.float32, device=values.device)
    flat.scatter_reduce_(0, index, values.reshape(-1), reduce="amax", include_self=True)
    return flat[:total].view(shape)
