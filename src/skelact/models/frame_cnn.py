"""A frame-level 2D CNN: each frame of a clip classified on its own, the frames' logits averaged.

The baseline FstCN's paper measures itself against (Sun et al., ICCV 2015, Table 2, "spatial" single-frame
networks; Karpathy et al., CVPR 2014, "single frame" model): no temporal modelling at all, so its gap to FstCN on
the same clips is what the temporal path adds. It uses FstCN's lower spatial layers
(:class:`~skelact.models.fstcn.LowerSCL`), global average pooling and one linear classifier. Test views
``[N, views, 3, T, H, W]`` are fused by averaging their softmax vectors (:func:`~skelact.models.fstcn.fuse_views`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from skelact.errors import ConfigError
from skelact.models.data_info import DataArguments
from skelact.models.fstcn import FUSIONS, LowerSCL, fuse_views


class FrameCNN(DataArguments, nn.Module):
    """``forward(clip)``: ``[N, 3, T, H, W]`` -> logits ``[N, K]`` (mean over frames); ``[N, views, ...]`` ->
    fused log-probabilities."""

    DATA_ARGUMENTS = ("num_classes",)

    def __init__(self, num_classes: int, clip_len: int = 5, crop_size: int = 204,
                 scl_widths: Sequence[int] = (96, 256, 512, 512), dropout: float = 0.5, fusion: str = "mean"):
        super().__init__()
        if len(scl_widths) != 4 or any(int(w) < 1 for w in scl_widths):
            raise ConfigError(f"expected four positive widths, got {list(scl_widths)}", field="scl_widths")
        if fusion not in FUSIONS:
            raise ConfigError(f"expected one of {', '.join(FUSIONS)}, got {fusion!r}", field="fusion")
        self.fusion = fusion
        #: the clip length and crop size of its data (the pipeline reads them from the model section)
        self.clip_len = int(clip_len)
        self.crop_size = int(crop_size)
        self.lower = LowerSCL([int(w) for w in scl_widths])
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(int(scl_widths[3]), int(num_classes))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.dim() == 6:
            n, views = clip.shape[:2]
            return fuse_views(self.forward(clip.flatten(0, 1)).reshape(n, views, -1), self.fusion)
        n, c, t, h, w = clip.shape
        if h != self.crop_size or w != self.crop_size:
            raise ValueError(f"FrameCNN was built for {self.crop_size}x{self.crop_size} crops (model.crop_size), "
                             f"got {h}x{w} frames")
        features = self.lower(clip.transpose(1, 2).reshape(n * t, c, h, w)).mean(dim=(2, 3))
        return self.classifier(self.dropout(features)).reshape(n, t, -1).mean(dim=1)
