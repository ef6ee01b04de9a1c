"""ResNet3D-SlowOnly as PoseConv3D adapts it to heatmap volumes.

Duan, Zhao, Chen, Lin and Dai, "Revisiting Skeleton-based Action Recognition" (PoseConv3D), CVPR 2022,
arXiv 2104.13586, section 3.3: the SlowOnly network of SlowFast (Feichtenhofer et al., ICCV 2019) with a ResNet-50
body, changed for small, low-level inputs: no early down-sampling (stem convolution stride 1, the stem max-pool of
stride 1), one stage less (3 stages of 4, 6, 3 bottleneck blocks: ResNet-50's last three), half the width (base 32
channels instead of 64), temporal kernels inflated to 3 in the last two stages only. The reference configuration
(pyskl ``configs/posec3d/slowonly_r50_ntu60_xsub/joint.py``) reads::

    depth=50, in_channels=17, base_channels=32, num_stages=3, out_indices=(2,), stage_blocks=(4, 6, 3),
    conv1_stride_s=1, pool1_stride_s=1, inflate=(0, 1, 1), spatial_strides=(2, 2, 2), temporal_strides=(1, 1, 2)

with SlowOnly's stem kernel ``1 x 7 x 7`` and the bottleneck's ``3 x 1 x 1`` inflation (the first ``1 x 1 x 1``
convolution of an inflated block becomes ``3 x 1 x 1``; the ``1 x 3 x 3`` one carries the strides). Widths: stage
``i`` has ``base * 2**i`` inner channels and 4 times that out, so the feature is 512 channels; at 17 x 48 x 56 x 56
it is 512 x 24 x 7 x 7.

The stem max-pool: the reference keeps a ``1 x 3 x 3`` max-pool of stride ``pool1_stride_s = 1`` (shape-preserving,
no down-sampling); ``stem_pool=False`` drops it, which is what "no pool1" in the paper's text would mean. Neither
has parameters. The same class is RGBPose-Conv3D's RGB pathway (the ordinary SlowOnly-R50 of SlowFast: base 64,
blocks 3-4-6-3, inflate 0-0-1-1, spatial strides 1-2-2-2, no temporal strides, stem stride 2 and
``stem_pool_stride=2``, pyskl's ``conv1_stride_s = pool1_stride_s = 2``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from skelact.errors import ConfigError
from skelact.models.conv3d_unit import ConvBNAct3d, init_conv3d_weights

#: channels out of a bottleneck block per inner channel (ResNet-50)
EXPANSION = 4


class Bottleneck3d(nn.Module):
    """ResNet bottleneck in 3D: ``1x1x1`` (``3x1x1`` when inflated) -> ``1x3x3`` with stride
    ``(t, s, s)`` -> ``1x1x1`` to ``4 * planes``, each with batch-norm, ReLU after the first two and after the
    residual sum; the shortcut is a strided ``1x1x1`` conv + BN when the shape changes."""

    def __init__(self, in_channels: int, planes: int, spatial_stride: int = 1, temporal_stride: int = 1,
                 inflate: bool = False):
        super().__init__()
        out_channels = planes * EXPANSION
        stride = (temporal_stride, spatial_stride, spatial_stride)
        self.conv1 = ConvBNAct3d(in_channels, planes, (3, 1, 1) if inflate else 1)
        self.conv2 = ConvBNAct3d(planes, planes, (1, 3, 3), stride)
        self.conv3 = ConvBNAct3d(planes, out_channels, 1, act=False)
        # As the reference (mmaction2 / pyskl make_res_layer): a shortcut projection when the spatial stride or
        # the width changes; a temporal stride alone always comes with a spatial one in these configurations.
        if spatial_stride != 1 or temporal_stride != 1 or in_channels != out_channels:
            self.downsample = ConvBNAct3d(in_channels, out_channels, 1, stride, act=False)
        else:
            self.downsample = None
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + identity)


def _per_stage(name: str, values: Sequence[int], num_stages: int) -> tuple[int, ...]:
    out = tuple(int(v) for v in values)
    if len(out) != num_stages or any(v < 0 for v in out):
        raise ConfigError(f"expected {num_stages} non-negative values (one per stage), got {list(values)}",
                          field=name)
    return out


class ResNet3dSlowOnly(nn.Module):
    """The backbone: heatmap volumes ``[N, in_channels, T, H, W]`` -> features ``[N, out_channels, T', H', W']``."""

    def __init__(self, in_channels: int, base_channels: int = 32, stage_blocks: Sequence[int] = (4, 6, 3),
                 inflate: Sequence[int] = (0, 1, 1), spatial_strides: Sequence[int] = (2, 2, 2),
                 temporal_strides: Sequence[int] = (1, 1, 2), stem_kernel: Sequence[int] = (1, 7, 7),
                 stem_stride: int = 1, stem_pool: bool = True, stem_pool_stride: int = 1,
                 zero_init_residual: bool = True):
        super().__init__()
        if in_channels < 1 or base_channels < 1:
            raise ConfigError(f"needs at least one input and one base channel, got in_channels={in_channels}, "
                              f"base_channels={base_channels}", field="base_channels")
        stages = len(stage_blocks)
        if stages < 1 or any(int(b) < 1 for b in stage_blocks):
            raise ConfigError(f"expected one or more stages of at least one block, got {list(stage_blocks)}",
                              field="stage_blocks")
        inflate = _per_stage("inflate", inflate, stages)
        spatial = _per_stage("spatial_strides", spatial_strides, stages)
        temporal = _per_stage("temporal_strides", temporal_strides, stages)
        self.stem = ConvBNAct3d(in_channels, base_channels, tuple(stem_kernel), (1, stem_stride, stem_stride))
        if int(stem_pool_stride) < 1:
            raise ConfigError(f"expected a stride of at least 1, got {stem_pool_stride}", field="stem_pool_stride")
        pool_stride = (1, int(stem_pool_stride), int(stem_pool_stride))
        self.stem_pool = nn.MaxPool3d((1, 3, 3), pool_stride, (0, 1, 1)) if stem_pool else nn.Identity()
        width = base_channels
        self.stages = nn.ModuleList()
        for i, blocks in enumerate(stage_blocks):
            planes = base_channels * 2 ** i
            layers = []
            for b in range(int(blocks)):
                first = b == 0
                layers.append(Bottleneck3d(width, planes, spatial[i] if first else 1, temporal[i] if first else 1,
                                           inflate=bool(inflate[i])))
                width = planes * EXPANSION
            self.stages.append(nn.Sequential(*layers))
        self.out_channels = width
        init_conv3d_weights(self)
        if zero_init_residual:
            # each residual branch starts as zero, so every block starts as its shortcut (Goyal et al. 2017;
            # the reference's zero_init_residual=True)
            for m in self.modules():
                if isinstance(m, Bottleneck3d):
                    nn.init.zeros_(m.conv3.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_pool(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        return x
