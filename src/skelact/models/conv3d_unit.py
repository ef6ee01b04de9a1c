"""The unit every 3D-CNN backbone here is built of: a bias-free ``Conv3d``, optional ``BatchNorm3d``, optional ReLU
(mmcv's ``ConvModule`` as PoseConv3D's reference code uses it: with a norm layer the convolution has no bias).

Tensors are ``[N, C, T, H, W]`` (samples, channels, frames, height, width) throughout the 3D-CNN backbones.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

Triple = int | Sequence[int]


def triple(value: Triple) -> tuple[int, int, int]:
    """``k`` -> ``(k, k, k)``; a ``(t, h, w)`` sequence unchanged."""
    if isinstance(value, int):
        return (value, value, value)
    out = tuple(int(v) for v in value)
    if len(out) != 3:
        raise ValueError(f"expected an int or a (t, h, w) triple, got {value!r}")
    return out  # type: ignore[return-value]


def same_padding(kernel: Triple) -> tuple[int, int, int]:
    """Padding that keeps each size at stride 1 for the odd kernels used here."""
    return tuple((k - 1) // 2 for k in triple(kernel))  # type: ignore[return-value]


class ConvBNAct3d(nn.Sequential):
    """``conv`` (with a bias only when not normalised, unless ``bias`` says otherwise), then ``bn``, then ``act``
    (ReLU) when asked."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Triple = 1, stride: Triple = 1,
                 groups: int = 1, norm: bool = True, act: bool = True, bias: bool | None = None):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, triple(kernel), triple(stride), same_padding(kernel),
                              groups=groups, bias=(not norm) if bias is None else bias)
        if norm:
            self.bn = nn.BatchNorm3d(out_channels)
        if act:
            self.act = nn.ReLU()


def init_conv3d_weights(module: nn.Module) -> None:
    """The reference initialisation (mmcv ``kaiming_init`` as pyskl calls it): conv weights Kaiming-normal with
    fan-out and ReLU gain, zero biases; batch-norm weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
