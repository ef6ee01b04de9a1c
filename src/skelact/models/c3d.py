"""C3D-light: the C3D network (Tran et al., "Learning Spatiotemporal Features with 3D Convolutional Networks",
ICCV 2015) shrunk for pose heatmap volumes as PoseConv3D does (Duan et al., CVPR 2022, arXiv 2104.13586, section 4
and appendix: "C3D-light"; pyskl ``configs/posec3d/c3d_light_ntu60_xsub/joint.py``:
``in_channels=17, base_channels=32, num_stages=3, temporal_downsample=False``).

Every convolution is ``3 x 3 x 3``, stride 1, with batch-norm and ReLU; between groups an average pool halves
height and width (and time, unless ``temporal_downsample`` is false, the pose setting)::

    conv1a(b)  pool1(1x2x2)  conv2a(2b)  pool2  conv3a(4b) conv3b(4b)  pool3  conv4a(8b) conv4b(8b)
    [pool4  conv5a(8b) conv5b(8b)   -- the 4th stage, left out by the light version]

With base 32 the feature is 256 channels; at 17 x 48 x 56 x 56 it is 256 x 48 x 7 x 7.
"""

from __future__ import annotations

import torch
from torch import nn

from skelact.errors import ConfigError
from skelact.models.conv3d_unit import ConvBNAct3d, init_conv3d_weights


class C3D(nn.Module):
    """The backbone: ``[N, in_channels, T, H, W]`` -> ``[N, 8 * base_channels, T', H / 8, W / 8]``."""

    def __init__(self, in_channels: int, base_channels: int = 32, num_stages: int = 3,
                 temporal_downsample: bool = False):
        super().__init__()
        if num_stages not in (3, 4):
            raise ConfigError(f"C3D has 3 (light) or 4 stages, got {num_stages}", field="num_stages")
        if in_channels < 1 or base_channels < 1:
            raise ConfigError(f"needs at least one input and one base channel, got {base_channels}",
                              field="base_channels")
        b = base_channels
        pool = (2, 2, 2) if temporal_downsample else (1, 2, 2)
        layers: list[nn.Module] = [
            ConvBNAct3d(in_channels, b, 3), nn.AvgPool3d((1, 2, 2), (1, 2, 2)),
            ConvBNAct3d(b, 2 * b, 3), nn.AvgPool3d(pool, pool),
            ConvBNAct3d(2 * b, 4 * b, 3), ConvBNAct3d(4 * b, 4 * b, 3), nn.AvgPool3d(pool, pool),
            ConvBNAct3d(4 * b, 8 * b, 3), ConvBNAct3d(8 * b, 8 * b, 3),
        ]
        if num_stages == 4:
            layers += [nn.AvgPool3d(pool, pool), ConvBNAct3d(8 * b, 8 * b, 3), ConvBNAct3d(8 * b, 8 * b, 3)]
        self.layers = nn.Sequential(*layers)
        self.out_channels = 8 * b
        init_conv3d_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
