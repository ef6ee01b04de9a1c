"""RGBPose-Conv3D's lateral connections: one pathway's features carried into the next stage of the other.

Duan et al., "Revisiting Skeleton-based Action Recognition" (PoseConv3D), CVPR 2022, arXiv 2104.13586, Sec. 3.4,
after SlowFast's lateral connections (Feichtenhofer et al., ICCV 2019). As pyskl's ``RGBPoseConv3D`` /
``ResNet3dPathway``:

- **pose -> RGB** (the many-frame pathway into the few-frame one): a ``7 x 1 x 1`` convolution of temporal stride
  ``speed_ratio`` (pyskl's ``ConvModule`` with neither norm nor activation, no bias), ``out = in / reduction``
  channels (pyskl: ``lateral_infl=1``, the pose features' own width);
- **RGB -> pose**: a ``7 x 1 x 1`` transposed convolution of temporal stride ``speed_ratio`` (bias-free), batch-norm
  and ReLU (pyskl's ``DeConvModule``, ``lateral_inv=True``), ``out = in / reduction`` channels (pyskl:
  ``lateral_infl=16``).

pyskl concatenates the lateral features to the receiving pathway's features and widens the first block of the next
stage (its first convolution and its shortcut projection) to take both. A convolution of a concatenation is the sum
of the convolutions of its parts, so we keep the block as it is and add the lateral part: :class:`LateralEntry`
holds the extra input channels of those two convolutions (the same kernels, strides and paddings), and
:func:`enter_block` adds their output before the block's batch-norms. The results equal pyskl's; the benefit is that
the pathways keep exactly the parameters of a single-pathway network, so their pre-trained weights load by key prefix
(``init``) with nothing to pad, and ``zero_entry()`` gives pyskl's zero-padded start (``merge_pretrain.ipynb``): the
two-pathway network then computes exactly what the two separate networks computed.
"""

from __future__ import annotations

import torch
from torch import nn

from skelact.models.conv3d_unit import init_conv3d_weights
from skelact.models.resnet3d_slowonly import Bottleneck3d

#: the temporal kernel of every lateral connection (pyskl's ``fusion_kernel``)
FUSION_KERNEL = 7


class PoseToRGB(nn.Sequential):
    """``[N, C, T, H, W]`` -> ``[N, C / reduction, T / speed_ratio, H, W]``: a strided temporal convolution."""

    def __init__(self, in_channels: int, out_channels: int, speed_ratio: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, (FUSION_KERNEL, 1, 1), (speed_ratio, 1, 1),
                              ((FUSION_KERNEL - 1) // 2, 0, 0), bias=False)


class RGBToPose(nn.Module):
    """``[N, C, T, H, W]`` -> ``[N, C / reduction, T * speed_ratio, H, W]``: a transposed temporal convolution,
    batch-norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, speed_ratio: int):
        super().__init__()
        self.speed_ratio = int(speed_ratio)
        self.conv = nn.ConvTranspose3d(in_channels, out_channels, (FUSION_KERNEL, 1, 1), (speed_ratio, 1, 1),
                                       ((FUSION_KERNEL - 1) // 2, 0, 0), bias=False)
        self.bn = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        # the output length is ambiguous for a strided transposed convolution; ask for exactly speed_ratio * T
        x = self.conv(x, output_size=(n, self.conv.out_channels, t * self.speed_ratio, h, w))
        return self.act(self.bn(x))


class LateralEntry(nn.Module):
    """The lateral channels' share of the first block of a stage: ``conv1`` (the block's first convolution) and
    ``downsample`` (its shortcut projection), bias-free, with the block's kernels, strides and paddings."""

    def __init__(self, block: Bottleneck3d, lateral_channels: int):
        super().__init__()
        if block.downsample is None:
            raise ValueError("a lateral connection enters a block with a shortcut projection (a stage whose first "
                             "block changes width or stride)")
        first, shortcut = block.conv1.conv, block.downsample.conv
        self.conv1 = nn.Conv3d(lateral_channels, first.out_channels, first.kernel_size, first.stride,
                               first.padding, bias=False)
        self.downsample = nn.Conv3d(lateral_channels, shortcut.out_channels, shortcut.kernel_size, shortcut.stride,
                                    shortcut.padding, bias=False)
        init_conv3d_weights(self)

    def zero_entry(self) -> None:
        """Lateral inputs that change nothing yet (pyskl's zero padding of pre-trained weights)."""
        nn.init.zeros_(self.conv1.weight)
        nn.init.zeros_(self.downsample.weight)


def enter_block(block: Bottleneck3d, entry: LateralEntry, x: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """``block`` on the concatenation ``[x, lateral]`` along channels, its first convolution and shortcut widened
    by ``entry`` (the sum of the two parts' convolutions, before the batch-norms)."""
    identity = block.downsample.bn(block.downsample.conv(x) + entry.downsample(lateral))
    first = block.conv1
    h = first.act(first.bn(first.conv(x) + entry.conv1(lateral)))
    return block.relu(block.conv3(block.conv2(h)) + identity)


class Lateral(nn.Module):
    """One lateral connection: ``transform`` (:class:`PoseToRGB` or :class:`RGBToPose`) and the ``entry`` into the
    receiving stage's first block."""

    def __init__(self, transform: nn.Module, entry: LateralEntry):
        super().__init__()
        self.transform = transform
        self.entry = entry


def run_stage(stage: nn.Sequential, x: torch.Tensor, lateral: Lateral | None = None,
              lateral_input: torch.Tensor | None = None) -> torch.Tensor:
    """A stage of bottleneck blocks; with ``lateral``, its first block also takes ``lateral.transform(
    lateral_input)``."""
    blocks = list(stage)
    if lateral is not None:
        x = enter_block(blocks[0], lateral.entry, x, lateral.transform(lateral_input))
        blocks = blocks[1:]
    for block in blocks:
        x = block(x)
    return x
