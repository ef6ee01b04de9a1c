"""Pieces every skeleton GCN backbone here shares: the partition argument, the data batch-norm at the model's
edge, the standard ten-block width pattern, and the pool-and-classify tail with FR-Head's feature taps.

Tensor layouts (documented once, here):

- A batch enters a model as skelact's ``[N, M, T, V, C]`` (samples, persons, frames, joints, coordinates), the
  layout of :class:`~skelact.data.sequence.SkeletonSequence` with ``N`` in front.
- :class:`DataBatchNorm` converts it, once, to the ``[N * M, C, T, V]`` layout the published GCNs compute in
  (ST-GCN, CTR-GCN: every person slot is a separate sample until the final pooling).
- Stage features returned for FR-Head are in that inner layout ``[N * M, C_b, T_b, V]``, person-major within a
  sample (row ``n * M + m``), exactly what the official CTR-GCN / FR-Head code hands its auxiliary heads.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from skelact.errors import ConfigError, DataError
from skelact.models.data_info import DataArguments

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


class SkeletonGCN(DataArguments, nn.Module):
    """The shared edge and tail of a block-stacked skeleton GCN.

    Built from data (:meth:`from_data`) with the dataset's classes, joint layout (the graph), coordinates per joint
    and person slots.

    Subclasses build ``self.data_bn`` (a :class:`DataBatchNorm`), ``self.blocks`` (an ``nn.ModuleList``),
    ``self.dropout`` and ``self.fc``, set ``self.feature_blocks``, and implement :meth:`_block` (how block ``i``
    is applied). This class checks the input, runs the blocks, taps features, pools and classifies.
    """

    DATA_ARGUMENTS = ("num_classes", "layout", "in_channels", "num_persons")

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

    def _run(self, x: torch.Tensor, keep_features: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._check_input(x)
        n, m = x.shape[0], x.shape[1]
        h = self.data_bn(x)
        taps = []
        for i in range(len(self.blocks)):
            h = self._block(i, h)
            if keep_features and (i + 1) in self.feature_blocks:
                taps.append(h)
        # Global average over frames and joints, then over person slots (both references).
        pooled = h.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)
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
