"""X3D-shallow: X3D (Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020)
as PoseConv3D uses it on pose heatmap volumes (Duan et al., CVPR 2022, arXiv 2104.13586, appendix; pyskl
``configs/posec3d/x3d_shallow_ntu60_xsub/joint.py``: ``gamma_d=1, in_channels=17, base_channels=24, num_stages=3,
se_ratio=None, use_swish=False, stage_blocks=(2, 5, 3), spatial_strides=(2, 2, 2)``).

- stem: a ``1 x 3 x 3`` convolution of spatial stride 2 (no norm, no activation), then a depth-wise ``5 x 1 x 1``
  temporal convolution with batch-norm and ReLU;
- stage ``i`` (width ``w_i = base * 2**i``, inner width ``int(w_i * gamma_b)``, ``gamma_b = 2.25``): blocks of
  ``1x1x1`` (BN, ReLU) -> depth-wise ``3x3x3`` with spatial stride on the first block (BN) -> optional
  squeeze-excitation (every other block, from the first) -> optional swish -> ``1x1x1`` back to ``w_i`` (BN),
  plus the shortcut (strided ``1x1x1`` + BN where the shape changes), then ReLU;
- a last ``1x1x1`` convolution widening ``w_last`` by ``gamma_b`` (BN, ReLU).

``width_factor`` (X3D's ``gamma_w``) scales the base width, rounded to a multiple of 8 as X3D rounds;
``depth_factor`` (``gamma_d``) multiplies the blocks per stage, rounded up (1 for the shallow version). With base
24 the feature is 216 channels; at 17 x 48 x 56 x 56 it is 216 x 48 x 4 x 4.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from skelact.errors import ConfigError
from skelact.models.conv3d_unit import ConvBNAct3d, init_conv3d_weights


def round_width(width: float, multiplier: float, minimum: int = 8, divisor: int = 8) -> int:
    """``width * multiplier`` to the nearest multiple of ``divisor`` (at least ``minimum``), never more than 10 %
    below the exact value (X3D's and EfficientNet's channel rounding)."""
    exact = width * multiplier
    rounded = max(minimum, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return int(rounded)


class SqueezeExcite3d(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018): global average pool, ``1x1x1`` to a rounded
    ``channels * ratio``, ReLU, ``1x1x1`` back, sigmoid, channel-wise scale."""

    def __init__(self, channels: int, ratio: float):
        super().__init__()
        hidden = round_width(channels, ratio)
        self.reduce = nn.Conv3d(channels, hidden, 1)
        self.expand = nn.Conv3d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.mean(x, dim=(2, 3, 4), keepdim=True)
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(s))))


class X3DBlock(nn.Module):
    """One X3D bottleneck ``[N, in_channels, T, H, W] -> [N, out_channels, T, H / stride, W / stride]``."""

    def __init__(self, in_channels: int, inner_channels: int, out_channels: int, spatial_stride: int = 1,
                 se_ratio: float | None = None, swish: bool = False):
        super().__init__()
        self.conv1 = ConvBNAct3d(in_channels, inner_channels, 1)
        self.conv2 = ConvBNAct3d(inner_channels, inner_channels, 3, (1, spatial_stride, spatial_stride),
                                 groups=inner_channels, act=False)
        self.se = SqueezeExcite3d(inner_channels, se_ratio) if se_ratio else nn.Identity()
        self.swish = nn.SiLU() if swish else nn.Identity()
        self.conv3 = ConvBNAct3d(inner_channels, out_channels, 1, act=False)
        if spatial_stride != 1 or in_channels != out_channels:
            self.downsample = ConvBNAct3d(in_channels, out_channels, 1, (1, spatial_stride, spatial_stride),
                                          act=False)
        else:
            self.downsample = None
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.conv3(self.swish(self.se(self.conv2(self.conv1(x)))))
        return self.relu(y + identity)


class X3D(nn.Module):
    """The backbone: ``[N, in_channels, T, H, W]`` -> ``[N, out_channels, T, H', W']``."""

    def __init__(self, in_channels: int, base_channels: int = 24, stage_blocks: Sequence[int] = (2, 5, 3),
                 spatial_strides: Sequence[int] = (2, 2, 2), width_factor: float = 1.0,
                 bottleneck_factor: float = 2.25, depth_factor: float = 1.0, se_ratio: float | None = None,
                 swish: bool = False, zero_init_residual: bool = True):
        super().__init__()
        if in_channels < 1 or base_channels < 1:
            raise ConfigError(f"needs at least one input and one base channel, got {base_channels}",
                              field="base_channels")
        if len(stage_blocks) < 1 or any(int(b) < 1 for b in stage_blocks):
            raise ConfigError(f"expected one or more stages of at least one block, got {list(stage_blocks)}",
                              field="stage_blocks")
        if len(spatial_strides) != len(stage_blocks):
            raise ConfigError(f"expected {len(stage_blocks)} strides (one per stage), got {list(spatial_strides)}",
                              field="spatial_strides")
        if se_ratio is not None and not se_ratio > 0:
            raise ConfigError(f"expected a positive ratio or null, got {se_ratio}", field="se_ratio")
        base = round_width(base_channels, width_factor)
        blocks_per_stage = [int(math.ceil(depth_factor * int(b))) for b in stage_blocks]
        self.stem = nn.Sequential(
            # bias-free although no norm layer follows, as the reference's stem
            ConvBNAct3d(in_channels, base, (1, 3, 3), (1, 2, 2), norm=False, act=False, bias=False),
            ConvBNAct3d(base, base, (5, 1, 1), groups=base),
        )
        width = base
        self.stages = nn.ModuleList()
        for i, blocks in enumerate(blocks_per_stage):
            stage_width = base * 2 ** i
            inner = int(stage_width * bottleneck_factor)
            self.stages.append(nn.Sequential(*[
                X3DBlock(width if b == 0 else stage_width, inner, stage_width,
                         int(spatial_strides[i]) if b == 0 else 1,
                         se_ratio if b % 2 == 0 else None, swish)
                for b in range(blocks)]))
            width = stage_width
        self.out_channels = int(width * bottleneck_factor)
        self.head_conv = ConvBNAct3d(width, self.out_channels, 1)
        init_conv3d_weights(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, X3DBlock):
                    nn.init.zeros_(m.conv3.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head_conv(x)
