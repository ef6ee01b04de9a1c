"""PoseConv3D's recognizer: a 3D-CNN backbone on pose heatmap volumes and the I3D head.

Duan, Zhao, Chen, Lin and Dai, "Revisiting Skeleton-based Action Recognition", CVPR 2022, arXiv 2104.13586
(pyskl's ``Recognizer3D`` + ``I3DHead``). The model takes one named input, ``heatmap``:

- ``[N, K, T, H, W]``: one clip per sample -> logits ``[N, num_classes]``;
- ``[N, clips, K, T, H, W]``: several clips per sample (test-time augmentation: pyskl's 10 uniformly sampled clips,
  each also flipped). Every clip is classified alone and the clips are averaged per sample. ``clip_average='prob'``
  (pyskl's ``average_clips='prob'``) averages the softmax probabilities and returns their logarithm, so that a
  softmax of the output is exactly the mean of the clips' probabilities; ``'score'`` averages the logits.

``K`` is the number of heatmap channels, which the data pipeline decides: one per joint of the layout
(``heatmap='joints'``), one per bone of the layout's tree (``'limbs'``: PoseConv3D's limb maps, a segment between
two joints each), or both stacked, joints first (``'both'``). ``from_data`` computes it from the data's layout,
so a config never types it (and a config that does must agree).

Backbones (``backbone``, their own settings under ``backbone_options``): ``slowonly``
(:class:`~skelact.models.resnet3d_slowonly.ResNet3dSlowOnly`), ``c3d`` (:class:`~skelact.models.c3d.C3D`,
C3D-light by default), ``x3d`` (:class:`~skelact.models.x3d.X3D`, X3D-shallow by default).

``channels_last`` (default on) hands the backbone its volumes in ``torch.channels_last_3d`` memory format. The
values are the same (tested to 1e-5); the layout is what oneDNN's 3D convolutions want on a CPU: an X3D-shallow
training step on 16 clips of 13 x 24 x 32 x 32 took 0.53 s against 1.04 s contiguous on one Zen 4 core
(docs/benchmarks.md). cuDNN also takes the format, so a GPU run keeps it.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch
from torch import nn

from skelact.errors import ConfigError, DataError
from skelact.models.c3d import C3D
from skelact.models.data_info import DataInfo, with_data_arguments
from skelact.models.i3d_head import I3DHead
from skelact.models.resnet3d_slowonly import ResNet3dSlowOnly
from skelact.models.x3d import X3D
from skelact.skeleton.layout import Layout

#: 3D-CNN backbones by the name ``model.backbone`` uses
BACKBONES_3D: dict[str, type[nn.Module]] = {"slowonly": ResNet3dSlowOnly, "c3d": C3D, "x3d": X3D}
#: what the heatmap channels are
HEATMAP_KINDS = ("joints", "limbs", "both")
CLIP_AVERAGES = ("prob", "score")


def heatmap_channels(layout: Layout, heatmap: str) -> int:
    """Channels of a heatmap volume of ``layout``: its joints, its bones (limbs), or both."""
    if heatmap not in HEATMAP_KINDS:
        raise ConfigError(f"expected one of {', '.join(HEATMAP_KINDS)}, got {heatmap!r}", field="heatmap")
    joints, limbs = layout.num_joints, len(layout.bones)
    return {"joints": joints, "limbs": limbs, "both": joints + limbs}[heatmap]


def build_backbone_3d(name: str, in_channels: int, options: Mapping[str, Any] | None = None) -> nn.Module:
    """``BACKBONES_3D[name](in_channels, **options)``, with one :class:`ConfigError` for an unknown name or option."""
    cls = BACKBONES_3D.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown 3D backbone {name!r}; expected one of {', '.join(BACKBONES_3D)}",
                          field="backbone")
    options = dict(options or {})
    accepted = [p for p in inspect.signature(cls).parameters if p != "in_channels"]
    for key in options:
        if key not in accepted:
            raise ConfigError(f"{cls.__name__} has no option {key!r}; it accepts {', '.join(accepted)}",
                              field=f"backbone_options.{key}")
    return cls(in_channels, **options)


class PoseConv3D(nn.Module):
    """Backbone + I3D head on ``heatmap`` ``[N, K, T, H, W]`` or ``[N, clips, K, T, H, W]``."""

    def __init__(self, num_classes: int, in_channels: int, backbone: str = "slowonly", dropout: float = 0.5,
                 clip_average: str = "prob", heatmap: str = "joints",
                 backbone_options: Mapping[str, Any] | None = None, channels_last: bool = True):
        super().__init__()
        if num_classes < 1 or in_channels < 1:
            raise ConfigError(f"needs at least one class and one channel, got num_classes={num_classes}, "
                              f"in_channels={in_channels}", field="num_classes" if num_classes < 1 else "in_channels")
        if clip_average not in CLIP_AVERAGES:
            raise ConfigError(f"expected one of {', '.join(CLIP_AVERAGES)}, got {clip_average!r}",
                              field="clip_average")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"expected a probability in [0, 1), got {dropout}", field="dropout")
        if heatmap not in HEATMAP_KINDS:
            raise ConfigError(f"expected one of {', '.join(HEATMAP_KINDS)}, got {heatmap!r}", field="heatmap")
        self.num_classes, self.in_channels = int(num_classes), int(in_channels)
        self.clip_average, self.heatmap_kind = clip_average, heatmap
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        self.backbone = build_backbone_3d(backbone, self.in_channels, backbone_options)
        self.head = I3DHead(self.backbone.out_channels, self.num_classes, dropout)

    @classmethod
    def from_data(cls, data: DataInfo, **settings: Any) -> "PoseConv3D":
        """The model for ``data``: ``num_classes`` from the data, ``in_channels`` from its layout and the
        ``heatmap`` kind (joints by default)."""
        settings = with_data_arguments(cls.__name__, ("num_classes",), data, settings)
        channels = heatmap_channels(data.layout, settings.get("heatmap", "joints"))
        given = settings.get("in_channels")
        if given is not None and given != channels:
            raise ConfigError(f"is {given!r} but {settings.get('heatmap', 'joints')} heatmaps of layout "
                              f"{data.layout.name!r} have {channels} channels; leave it out to use the data's value",
                              field="in_channels")
        settings["in_channels"] = channels
        return cls(**settings)

    def _clips(self, heatmap: torch.Tensor) -> tuple[torch.Tensor, int | None]:
        """The clips as one batch ``[N * clips, K, T, H, W]`` and the clip count (``None`` for a 5-D input)."""
        if heatmap.dim() == 5:
            clips = None
        elif heatmap.dim() == 6:
            clips = heatmap.shape[1]
            heatmap = heatmap.flatten(0, 1)
        else:
            raise DataError(f"expected heatmaps [N, K, T, H, W] or [N, clips, K, T, H, W], got "
                            f"{tuple(heatmap.shape)}", field="heatmap")
        if heatmap.shape[1] != self.in_channels:
            raise DataError(f"expected {self.in_channels} heatmap channels ({self.heatmap_kind}), got "
                            f"{heatmap.shape[1]} in a volume of shape {tuple(heatmap.shape)}", field="heatmap")
        if torch.onnx.is_in_onnx_export():  # a graph has no memory formats (and the exporter refuses the call)
            return heatmap, clips
        return heatmap.contiguous(memory_format=self.memory_format), clips

    def forward(self, heatmap: torch.Tensor) -> torch.Tensor:
        volumes, clips = self._clips(heatmap)
        logits = self.head(self.backbone(volumes))
        if clips is None:
            return logits
        logits = logits.view(-1, clips, self.num_classes)
        if self.clip_average == "score":
            return logits.mean(dim=1)
        return torch.log(torch.softmax(logits, dim=-1).mean(dim=1))

    def extract_features(self, heatmap: torch.Tensor) -> torch.Tensor:
        """The pooled embedding ``[N, C]`` before the classifier (averaged over the clips of a 6-D input)."""
        volumes, clips = self._clips(heatmap)
        pooled = self.head.pool(self.backbone(volumes))
        return pooled if clips is None else pooled.view(-1, clips, pooled.shape[-1]).mean(dim=1)
