"""The I3D classification head (Carreira and Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017, as
mmaction2's / pyskl's ``I3DHead`` that PoseConv3D uses): global average pooling over time, height and width, dropout
(0.5 in every PoseConv3D configuration), one linear layer; its weights start from N(0, 0.01), its bias at 0."""

from __future__ import annotations

import torch
from torch import nn


class I3DHead(nn.Module):
    """``[N, in_channels, T, H, W]`` features -> ``[N, num_classes]`` logits."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """The pooled embedding ``[N, in_channels]``."""
        return torch.mean(features, dim=(2, 3, 4))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(features)))
