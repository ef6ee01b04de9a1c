"""Pieces every skeleton GCN backbone here shares: the partition argument, the data batch-norm at the model's
edge, the standard ten-block width pattern, and the pool-and-classify tail with FR-Head's feature taps.

Tensor layouts (documented once, here):

- A batch enters a model as skelact's ``[N, M, T, V, C]`` (samples, persons, frames, joints, coordinates), the
  layout of :class:`~skelact.data.sequence.SkeletonSequence` with ``N`` in front.
- :class:`DataBatchNorm` converts it, once, to the ``[N * M, C, T, V]`` layout the published GCNs compute in
  (ST-GCN, CTR-GCN: every person slot is a separate sample until the final pooling).
- Stage features returned for FR-Head are in that inner layout ``[N * M, C_b, T_b, V]``, person-major within a
  sample (row ``n * M + m``), exactly what the official CTR-GCN / FR-Head code hands its auxiliary heads.
- A backbone may compute in another memory layout between the data batch-norm and the pooling (CTR-GCN uses the
  channel-major ``[C, N * M, T, V]``, see :func:`conv1x1_cm`); it converts at the two ends through
  :meth:`SkeletonGCN._to_inner` / :meth:`SkeletonGCN._to_outer`, so everything seen from outside keeps the layouts
  above.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skelact.errors import ConfigError, DataError

#: 1-based indices of the blocks whose outputs FR-Head taps (Zhou et al., CVPR 2023; zhysora/FR-Head
#: ``model/ctrgcn.py``: after ``l1``, ``l5``, ``l8`` and ``l10``).
FR_HEAD_BLOCKS = (1, 5, 8, 10)

DATA_BN_MODES = ("vc", "mvc", "none")


def resolve_partition(partition=None, layout=None, strategy: str | None = None, **options) -> np.ndarray:
    """The ``[K, V, V]`` float32 partition a model is built on.

    Give either ``partition`` (array-like ``[K, V, V]``, e.g. from :func:`skelact.skeleton.build_partition`) or a
    ``layout`` (name, YAML path or :class:`~skelact.skeleton.Layout`) with a ``strategy`` name and that
    strategy's ``options``. Models never read files themselves beyond a layout name the user passed.
    """
    if partition is not None and layout is not None:
        raise ConfigError("give either a partition array or a layout (+ strategy), not both", field="partition")
    if partition is None:
        if layout is None:
            raise ConfigError("a model needs its graph: give `partition` [K, V, V] or `layout` (+ `strategy`)",
                              field="layout")
        from skelact.skeleton.graph import build_partition

        partition = build_partition(layout, strategy, **options)
    elif options:
        raise ConfigError(f"partition options {sorted(options)} only apply when building from a layout",
                          field=sorted(options)[0])
    if isinstance(partition, torch.Tensor):
        partition = partition.detach().cpu().numpy()
    a = np.asarray(partition, dtype=np.float32)
    if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape[0] < 1:
        raise ConfigError(f"expected a partition of shape [K, V, V], got {a.shape}", field="partition")
    if not np.all(np.isfinite(a)):
        raise ConfigError("partition contains NaN or inf", field="partition")
    return np.ascontiguousarray(a)


def standard_block_specs(base_channels: int = 64, num_blocks: int = 10,
                         final_channels: int | None = None) -> list[tuple[int, int]]:
    """``(out_channels, temporal_stride)`` of the ten blocks ST-GCN and CTR-GCN share.

    Widths ``b, b, b, b, 2b, 2b, 2b, 4b, 4b, 4b`` with stride 2 at blocks 5 and 8 (``b = 64`` as published).
    ``num_blocks < 10`` keeps the first blocks; ``final_channels`` overrides the last block's width (CrosSCLR's
    quarter-width encoder: ``b = 16``, last block 256, its ``hidden_dim``).
    """
    if not isinstance(base_channels, int) or base_channels < 1:
        raise ConfigError(f"must be a positive integer, got {base_channels!r}", field="base_channels")
    if not isinstance(num_blocks, int) or not 1 <= num_blocks <= 10:
        raise ConfigError(f"must be an integer in 1..10, got {num_blocks!r}", field="num_blocks")
    widths = [1, 1, 1, 1, 2, 2, 2, 4, 4, 4]
    strides = [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    specs = [(base_channels * w, s) for w, s in zip(widths, strides)][:num_blocks]
    if final_channels is not None:
        if not isinstance(final_channels, int) or final_channels < 1:
            raise ConfigError(f"must be a positive integer, got {final_channels!r}", field="final_channels")
        specs[-1] = (final_channels, specs[-1][1])
    return specs


def check_feature_blocks(feature_blocks: Sequence[int] | None, num_blocks: int) -> tuple[int, ...]:
    """Validated 1-based block indices to tap; ``None`` gives FR-Head's taps that exist in ``num_blocks``."""
    if feature_blocks is None:
        return tuple(b for b in FR_HEAD_BLOCKS if b <= num_blocks)
    taps = tuple(int(b) for b in feature_blocks)
    bad = [b for b in taps if not 1 <= b <= num_blocks]
    if bad or len(set(taps)) != len(taps) or list(taps) != sorted(taps):
        raise ConfigError(f"must be increasing distinct block numbers in 1..{num_blocks}, got {list(taps)}",
                          field="feature_blocks")
    return taps


class DataBatchNorm(nn.Module):
    """Batch-norm of the raw coordinates, and the one layout change from ``[N, M, T, V, C]`` to
    ``[N * M, C, T, V]``.

    ``mode`` picks what shares statistics, as the reference models do:

    - ``"vc"``: one mean/variance per (joint, coordinate), person slots pooled: ST-GCN's ``data_bn``
      (yysijie/st-gcn ``net/st_gcn.py``, ``BatchNorm1d(C * V)`` over ``[N * M, V * C, T]``).
    - ``"mvc"``: one per (person slot, joint, coordinate): CTR-GCN's ``data_bn`` (``BatchNorm1d(M * V * C)``).
    - ``"none"``: layout change only.
    """

    def __init__(self, num_persons: int, num_joints: int, in_channels: int, mode: str = "mvc"):
        super().__init__()
        if mode not in DATA_BN_MODES:
            raise ConfigError(f"unknown value {mode!r}; expected one of {list(DATA_BN_MODES)}", field="data_bn")
        self.mode = mode
        self.num_persons = num_persons
        self.num_joints = num_joints
        self.in_channels = in_channels
        features = {"vc": num_joints * in_channels, "mvc": num_persons * num_joints * in_channels}.get(mode)
        self.bn = nn.BatchNorm1d(features) if features else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, m, t, v, c = x.shape
        if self.bn is None:
            return x.permute(0, 1, 4, 2, 3).reshape(n * m, c, t, v)
        # BatchNorm1d wants its features on dim 1: (person,) joint, coordinate ordered as the references order
        # them, so per-feature parameters line up with theirs.
        rows, feats = (n * m, v * c) if self.mode == "vc" else (n, m * v * c)
        y = self.bn(x.permute(0, 1, 3, 4, 2).reshape(rows, feats, t))
        return y.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)


class SkeletonGCN(nn.Module):
    """The shared edge and tail of a block-stacked skeleton GCN.

    Subclasses build ``self.data_bn`` (a :class:`DataBatchNorm`), ``self.blocks`` (an ``nn.ModuleList``),
    ``self.dropout`` and ``self.fc``, set ``self.feature_blocks``, and implement :meth:`_block` (how block ``i``
    is applied). This class checks the input, runs the blocks, taps features, pools and classifies.
    """

    num_persons: int
    num_joints: int
    in_channels: int
    feature_blocks: tuple[int, ...]

    def _block(self, index: int, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 5:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise DataError(f"expected a batch [N, M, T, V, C], got {shape}", field="input")
        _, m, _, v, c = x.shape
        expect_m = self.num_persons if self.data_bn.mode == "mvc" else m
        if (m, v, c) != (expect_m, self.num_joints, self.in_channels):
            raise DataError(f"expected [N, M={expect_m}, T, V={self.num_joints}, C={self.in_channels}], "
                            f"got {tuple(x.shape)}", field="input")

    def _to_inner(self, h: torch.Tensor) -> torch.Tensor:
        """``[N * M, C, T, V]`` to the layout :meth:`_block` computes in (the same here)."""
        return h

    def _to_outer(self, h: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`_to_inner`; may return a strided view."""
        return h

    def _run(self, x: torch.Tensor, keep_features: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._check_input(x)
        n, m = x.shape[0], x.shape[1]
        h = self._to_inner(self.data_bn(x))
        taps = []
        for i in range(len(self.blocks)):
            h = self._block(i, h)
            if keep_features and (i + 1) in self.feature_blocks:
                taps.append(self._to_outer(h).contiguous())
        # Global average over frames and joints, then over person slots (both references).
        pooled = self._to_outer(h).mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)
        return pooled, taps

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """Logits ``[N, num_classes]`` for a batch ``[N, M, T, V, C]``.

        With ``return_features=True``, returns ``(logits, features)``: ``features`` lists the outputs of the
        blocks in ``self.feature_blocks`` (default 1, 5, 8, 10, FR-Head's taps), each ``[N * M, C_b, T_b, V]``.
        """
        pooled, taps = self._run(x, return_features)
        logits = self.fc(self.dropout(pooled))
        return (logits, taps) if return_features else logits

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled embedding ``[N, C_last]`` the classifier sees (before dropout)."""
        return self._run(x, False)[0]

    @property
    def out_channels(self) -> int:
        """Width of the embedding :meth:`extract_features` returns."""
        return self.fc.in_features


def kaiming_fan_out_(weight: torch.Tensor, fan_out: int, generator: torch.Generator | None) -> None:
    """``kaiming_normal_(mode='fan_out')`` for a weight whose reference counterpart had ``fan_out`` outputs times
    kernel elements (a fused weight keeps the std of the separate reference convolutions)."""
    with torch.no_grad():
        weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=generator)


def make_generator(seed: int | None) -> torch.Generator | None:
    """A CPU generator seeded with ``seed`` for parameter initialisation, or ``None`` (torch's global RNG)."""
    if seed is None:
        return None
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


# ------------------------------------------------------------------------------------ channel-major computation
#
# In the channel-major layout ``[C, N * M, T, V]`` (channels outermost) a 1x1 convolution over the whole batch is
# one matrix product ``W [C_out, C_in] @ h [C_in, N*M*T*V]``, a batch-norm's statistics are sums over contiguous
# rows, and channel slices are contiguous. On CPU this is what makes the GEMM-heavy GCNs fast: the
# convolutions that the NCHW layout runs as many small per-sample products (plus oneDNN layout reorders) become a
# few large ones, and no permute is needed between a 1x1 convolution and the per-channel graph aggregation.


def conv1x1_cm(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 convolution (``nn.Conv2d(C_in, C_out, 1)``) of a channel-major ``h [C_in, ...]``: ``W @ h + b`` as one
    matrix product over every sample and position; ``weight`` is ``[C_out, C_in]`` (or the conv's 4-D weight)."""
    c = h.shape[0]
    weight = weight.reshape(weight.shape[0], c)
    flat = h.reshape(c, -1)
    out = weight @ flat if bias is None else torch.addmm(bias.unsqueeze(1), weight, flat)
    return out.view(weight.shape[0], *h.shape[1:])


class _ChannelMajorBatchNorm(torch.autograd.Function):
    """Training-mode batch-norm of the rows of ``x [C, L]`` (statistics over each row), optionally followed by
    ``+ residual`` and a ReLU, with torch's running-statistics update and the standard backward formula.

    torch's own kernel for a channels-first input estimates the variance with a slow per-channel Welford loop on
    CPU; here the mean and the centred sum of squares are plain row reductions (the same two-pass formula, so the
    same values up to float rounding), and the residual add and ReLU are fused into the output pass.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, residual, relu, running_mean, running_var, factor, eps):
        count = x.shape[1]
        mean = x.sum(dim=1) / count
        centred = x - mean.unsqueeze(1)
        var = (centred * centred).sum(dim=1) / count  # biased: the one batch-norm normalises with
        inv_std = torch.rsqrt(var + eps)
        scale = weight * inv_std
        y = torch.addcmul(bias.unsqueeze(1), centred, scale.unsqueeze(1))
        if residual is not None:
            y += residual
        if relu:
            y.relu_()
        if running_mean is not None:
            running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
            # torch updates the running variance with the unbiased estimate
            running_var.mul_(1.0 - factor).add_(var * (count / max(count - 1, 1)), alpha=factor)
        ctx.relu, ctx.has_residual = relu, residual is not None
        ctx.save_for_backward(centred, inv_std, scale, y if relu else None)
        return y

    @staticmethod
    def backward(ctx, grad):
        centred, inv_std, scale, y = ctx.saved_tensors
        count = centred.shape[1]
        if ctx.relu:
            grad = torch.ops.aten.threshold_backward(grad, y, 0)
        sum_grad = grad.sum(dim=1)
        sum_grad_centred = (grad * centred).sum(dim=1)
        grad_x = None
        if ctx.needs_input_grad[0]:
            # d/dx of w * (x - mean) / std: scale * (g - mean(g) - centred * mean(g * centred) / var)
            grad_x = torch.addcmul((scale * (-sum_grad / count)).unsqueeze(1), grad, scale.unsqueeze(1))
            grad_x.addcmul_(centred, (-scale * inv_std * inv_std * sum_grad_centred / count).unsqueeze(1))
        grad_weight = sum_grad_centred * inv_std if ctx.needs_input_grad[1] else None
        grad_bias = sum_grad if ctx.needs_input_grad[2] else None
        grad_residual = grad if ctx.has_residual and ctx.needs_input_grad[3] else None
        return grad_x, grad_weight, grad_bias, grad_residual, None, None, None, None, None


def batch_norm_cm(h: torch.Tensor, bn: nn.modules.batchnorm._BatchNorm, residual: torch.Tensor | None = None,
                  relu: bool = False) -> torch.Tensor:
    """``bn`` (a ``BatchNorm1d/2d`` over ``C`` channels) applied to a channel-major ``h [C, ...]``, then
    ``+ residual`` (same shape) and ReLU if asked: the same function, parameters and running-statistics update as
    the module on the NCHW tensor."""
    c = h.shape[0]
    fast = (bn.training and bn.affine and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())
    if not fast:
        y = bn(h.reshape(1, c, -1, 1) if isinstance(bn, nn.BatchNorm2d) else h.reshape(1, c, -1)).view(h.shape)
        if residual is not None:
            y = y + residual
        return F.relu(y) if relu else y
    factor = 0.0
    if bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        factor = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
    y = _ChannelMajorBatchNorm.apply(h.reshape(c, -1), bn.weight, bn.bias,
                                     None if residual is None else residual.reshape(c, -1), relu,
                                     bn.running_mean if bn.track_running_stats else None,
                                     bn.running_var if bn.track_running_stats else None, factor, bn.eps)
    return y.view(h.shape)


def max_pool_frames_cm(h: torch.Tensor, kernel_size: int, stride: int, padding: int) -> torch.Tensor:
    """``F.max_pool2d(x, (kernel_size, 1), (stride, 1), (padding, 0))`` over the frames of a channel-major
    ``h [C, B, T, V]``. Seen as ``[C * B, V, T, 1]``, ``h`` is already a channels-last tensor, for which torch's
    pooling kernel vectorises over the joints (the NCHW kernel, pooling across rows of only ``V`` values, is an
    order of magnitude slower); same windows, same values, same gradient routing."""
    c, b, t, v = h.shape
    pooled = F.max_pool2d(h.reshape(c * b, t, 1, v).permute(0, 3, 1, 2), (kernel_size, 1), (stride, 1),
                          (padding, 0))
    return pooled.permute(0, 2, 3, 1).reshape(c, b, pooled.shape[2], v)
