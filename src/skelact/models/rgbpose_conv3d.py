"""RGBPose-Conv3D: an RGB pathway and a pose-heatmap pathway with lateral connections both ways, a head each.

Duan, Zhao, Chen, Lin and Dai, "Revisiting Skeleton-based Action Recognition" (PoseConv3D), CVPR 2022, arXiv
2104.13586, Sec. 3.4 and 4.4; the layout of pyskl's re-implementation (``RGBPoseConv3D``, ``RGBPoseHead``,
``MMRecognizer3D``; ``configs/rgbpose_conv3d/rgbpose_conv3d.py``):

- **RGB pathway** ``rgb``: SlowOnly-R50 (:class:`~skelact.models.resnet3d_slowonly.ResNet3dSlowOnly` with base 64,
  blocks 3-4-6-3, inflated last two stages, stem stride 2 and a stride-2 stem pool) on ``rgb`` ``[N, 3, T, H, W]``
  (8 frames at 224 x 224), the I3D head on its 2048 channels;
- **pose pathway** ``pose``: PoseConv3D's SlowOnly (base 32, blocks 4-6-3, inflated last two stages, no temporal
  stride) on ``heatmap`` ``[N, K, 4T, H / 4, W / 4]``, the I3D head on its 512 channels;
- **lateral connections** (``lateral``, on by default; :mod:`~skelact.models.rgbpose_laterals`) where pyskl has
  them: before RGB stages 2 and 3 (0-based; pyskl's ``layer3``, ``layer4``) the pose features of the stage before
  the aligned one enter the RGB pathway, and the RGB features enter pose stages 1 and 2 (``layer2``, ``layer3``).
  ``lateral_stages`` names the RGB stages (pose stage ``s - 1`` receives at the same time).
- **Separate losses** (pyskl's ``loss_components=['rgb', 'pose']``): in training the supervised method asks
  ``forward(..., return_pathways=True)`` and adds each head's cross-entropy times ``loss_weights[name]``.
  A head's loss never reaches the other head. Through the lateral connections it does reach the other pathway's
  lower stages, as in pyskl, whose configs leave ``rgb_detach`` and ``pose_detach`` off;
  ``lateral_detach: true`` (pyskl's two flags together) stops that, so each loss trains only its own pathway and
  the laterals into it.
- **Late fusion**: the output is the log of ``sum_i w_i p_i / sum_i w_i`` over the pathways' softmax probabilities
  ``p_i`` (averaged over the clips of a multi-clip input first), ``w = fusion_weights`` (1:1 by default, pyskl's
  ``RGBPose_1:1``); a softmax of it is the fused probability. With one pathway (``pathways: [rgb]`` or ``[pose]``,
  the networks pre-trained alone) the model is that pathway alone, its output as :class:`~skelact.models.
  poseconv3d.PoseConv3D`'s.

Inputs may carry several clips, ``[N, clips, ...]`` (both the same count); their probabilities are averaged per
sample (``clip_average: prob``, pyskl's ``average_clips='prob'``, or ``score``: logits averaged).

The pathways' parameters are exactly those of a single-pathway network of the same settings (the laterals live in
``laterals``), so ``init`` loads pre-trained pathways by key prefix (``model.rgb.``, ``model.pose.``), and
``zero_lateral_entries()`` (``lateral_entry_init: zero``; ``kaiming``, the default, initialises them as the rest
of the network) makes the joint network start as the two separate ones, as pyskl's merged weights do.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from skelact.errors import ConfigError, DataError
from skelact.models.data_info import DataInfo, with_data_arguments
from skelact.models.i3d_head import I3DHead
from skelact.models.poseconv3d import CLIP_AVERAGES, HEATMAP_KINDS, build_backbone_3d, heatmap_channels
from skelact.models.rgbpose_laterals import Lateral, LateralEntry, PoseToRGB, RGBToPose, run_stage

PATHWAYS = ("rgb", "pose")
#: the model's input per pathway
INPUT_OF = {"rgb": "rgb", "pose": "heatmap"}
#: pyskl's RGB pathway (``rgbpose_conv3d.py``'s ``rgb_pathway``, SlowOnly-R50)
RGB_BACKBONE = {"base_channels": 64, "stage_blocks": [3, 4, 6, 3], "inflate": [0, 0, 1, 1],
                "spatial_strides": [1, 2, 2, 2], "temporal_strides": [1, 1, 1, 1], "stem_kernel": [1, 7, 7],
                "stem_stride": 2, "stem_pool_stride": 2}
#: pyskl's pose pathway (``pose_pathway``: PoseConv3D's SlowOnly without its temporal stride)
POSE_BACKBONE = {"base_channels": 32, "stage_blocks": [4, 6, 3], "inflate": [0, 1, 1],
                 "spatial_strides": [2, 2, 2], "temporal_strides": [1, 1, 1], "stem_kernel": [1, 7, 7],
                 "stem_stride": 1, "stem_pool_stride": 1}


class Pathway(nn.Module):
    """A 3D-CNN backbone and its I3D head (the parameters of a single-pathway network)."""

    def __init__(self, in_channels: int, num_classes: int, options: Mapping[str, Any], dropout: float):
        super().__init__()
        self.backbone = build_backbone_3d("slowonly", in_channels, options)
        self.head = I3DHead(self.backbone.out_channels, num_classes, dropout)


def _weights(name: str, given: Mapping[str, Any] | None, pathways: Sequence[str]) -> dict[str, float]:
    given = {"rgb": 1.0, "pose": 1.0} if given is None else dict(given)
    unknown = [k for k in given if k not in PATHWAYS]
    if unknown:
        raise ConfigError(f"unknown pathway {unknown[0]!r}; expected keys among {', '.join(PATHWAYS)}", field=name)
    out = {}
    for p in pathways:
        value = given.get(p, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"expected a non-negative number for {p!r}, got {value!r}", field=f"{name}.{p}")
        out[p] = float(value)
    if sum(out.values()) <= 0:
        raise ConfigError(f"at least one weight must be above 0, got {out}", field=name)
    return out


class RGBPoseConv3D(nn.Module):
    """``forward(rgb, heatmap)`` -> fused log-probabilities ``[N, num_classes]`` (see the module docstring)."""

    def __init__(self, num_classes: int, in_channels: int | None = None, pathways: Sequence[str] = PATHWAYS,
                 rgb_backbone: Mapping[str, Any] | None = None, pose_backbone: Mapping[str, Any] | None = None,
                 lateral: bool = True, lateral_stages: Sequence[int] = (2, 3), lateral_detach: bool = False,
                 speed_ratio: int = 4, pose_to_rgb_reduction: int = 1, rgb_to_pose_reduction: int = 16,
                 dropout: float = 0.5, loss_weights: Mapping[str, Any] | None = None,
                 fusion_weights: Mapping[str, Any] | None = None, clip_average: str = "prob",
                 heatmap: str = "joints", lateral_entry_init: str = "kaiming"):
        super().__init__()
        pathways = tuple(pathways)
        if not pathways or len(set(pathways)) != len(pathways) or any(p not in PATHWAYS for p in pathways):
            raise ConfigError(f"expected one or both of {', '.join(PATHWAYS)}, got {list(pathways)}", field="pathways")
        self.pathways = tuple(p for p in PATHWAYS if p in pathways)
        if num_classes < 1:
            raise ConfigError(f"needs at least one class, got {num_classes}", field="num_classes")
        if "pose" in self.pathways and (in_channels is None or in_channels < 1):
            raise ConfigError(f"the pose pathway needs its heatmap channels, got {in_channels!r}", field="in_channels")
        if clip_average not in CLIP_AVERAGES:
            raise ConfigError(f"expected one of {', '.join(CLIP_AVERAGES)}, got {clip_average!r}",
                              field="clip_average")
        if heatmap not in HEATMAP_KINDS:
            raise ConfigError(f"expected one of {', '.join(HEATMAP_KINDS)}, got {heatmap!r}", field="heatmap")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"expected a probability in [0, 1), got {dropout}", field="dropout")
        for name, value in (("speed_ratio", speed_ratio), ("pose_to_rgb_reduction", pose_to_rgb_reduction),
                            ("rgb_to_pose_reduction", rgb_to_pose_reduction)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"expected a whole number of at least 1, got {value!r}", field=name)
        self.num_classes, self.in_channels = int(num_classes), in_channels
        self.clip_average, self.heatmap_kind = clip_average, heatmap
        self.speed_ratio = int(speed_ratio)
        self.loss_weights = _weights("loss_weights", loss_weights, self.pathways)
        self.fusion_weights = _weights("fusion_weights", fusion_weights, self.pathways)
        self.lateral_detach = bool(lateral_detach)
        self.rgb = (Pathway(3, self.num_classes, {**RGB_BACKBONE, **dict(rgb_backbone or {})}, dropout)
                    if "rgb" in self.pathways else None)
        self.pose = (Pathway(int(in_channels), self.num_classes, {**POSE_BACKBONE, **dict(pose_backbone or {})},
                             dropout) if "pose" in self.pathways else None)
        self.lateral = bool(lateral) and len(self.pathways) == 2
        self.lateral_stages = tuple(int(s) for s in lateral_stages) if self.lateral else ()
        self.laterals = nn.ModuleDict()
        if lateral_entry_init not in ("kaiming", "zero"):
            raise ConfigError(f"expected kaiming or zero, got {lateral_entry_init!r}", field="lateral_entry_init")
        if self.lateral:
            self._build_laterals(int(pose_to_rgb_reduction), int(rgb_to_pose_reduction))
            if lateral_entry_init == "zero":
                self.zero_lateral_entries()

    def _build_laterals(self, pose_to_rgb_reduction: int, rgb_to_pose_reduction: int) -> None:
        rgb_stages, pose_stages = self.rgb.backbone.stages, self.pose.backbone.stages
        if len(pose_stages) != len(rgb_stages) - 1:
            raise ConfigError(f"lateral connections pair RGB stage s with pose stage s - 1, so the pose pathway has "
                              f"one stage less; got {len(rgb_stages)} RGB and {len(pose_stages)} pose stages",
                              field="pose_backbone.stage_blocks")
        for s in self.lateral_stages:
            if not 2 <= s < len(rgb_stages):
                raise ConfigError(f"RGB stage {s} cannot receive a lateral connection: stages 2 to "
                                  f"{len(rgb_stages) - 1} can (pose stage s - 1 receives at the same time)",
                                  field="lateral_stages")
            pose_width = pose_stages[s - 2][-1].conv3.conv.out_channels
            rgb_width = rgb_stages[s - 1][-1].conv3.conv.out_channels
            if pose_width % pose_to_rgb_reduction or rgb_width % rgb_to_pose_reduction:
                raise ConfigError(f"the lateral widths {pose_width} (pose) and {rgb_width} (RGB) must divide by "
                                  f"pose_to_rgb_reduction {pose_to_rgb_reduction} and rgb_to_pose_reduction "
                                  f"{rgb_to_pose_reduction}", field="rgb_to_pose_reduction")
            to_rgb, to_pose = pose_width // pose_to_rgb_reduction, rgb_width // rgb_to_pose_reduction
            try:
                self.laterals[f"pose_to_rgb_{s}"] = Lateral(PoseToRGB(pose_width, to_rgb, self.speed_ratio),
                                                            LateralEntry(rgb_stages[s][0], to_rgb))
                self.laterals[f"rgb_to_pose_{s - 1}"] = Lateral(RGBToPose(rgb_width, to_pose, self.speed_ratio),
                                                                LateralEntry(pose_stages[s - 1][0], to_pose))
            except ValueError as e:
                raise ConfigError(f"stage {s}: {e}", field="lateral_stages") from None

    @classmethod
    def from_data(cls, data: DataInfo, **settings: Any) -> "RGBPoseConv3D":
        """``num_classes`` from the data; the pose pathway's ``in_channels`` from the layout and ``heatmap``."""
        settings = with_data_arguments(cls.__name__, ("num_classes",), data, settings)
        if "pose" in tuple(settings.get("pathways", PATHWAYS)):
            channels = heatmap_channels(data.layout, settings.get("heatmap", "joints"))
            given = settings.get("in_channels")
            if given is not None and given != channels:
                raise ConfigError(f"is {given!r} but {settings.get('heatmap', 'joints')} heatmaps of layout "
                                  f"{data.layout.name!r} have {channels} channels; leave it out to use the data's "
                                  "value", field="in_channels")
            settings["in_channels"] = channels
        return cls(**settings)

    def zero_lateral_entries(self) -> None:
        """The lateral features enter with zero weights: the network computes what its two pathways compute alone
        (the start of joint fine-tuning from pathways pre-trained alone)."""
        for lateral in self.laterals.values():
            lateral.entry.zero_entry()

    # ---------------------------------------------------------------------------------------------------------------

    def _inputs(self, rgb: torch.Tensor | None, heatmap: torch.Tensor | None
                ) -> tuple[dict[str, torch.Tensor], int | None]:
        given = {"rgb": rgb, "pose": heatmap}
        volumes, clip_counts = {}, set()
        for p in PATHWAYS:
            x = given[p]
            if (x is None) == (p in self.pathways):
                need = "needs" if x is None else "has no pathway for"
                raise DataError(f"the model {need} the input {INPUT_OF[p]!r} (pathways: {', '.join(self.pathways)})",
                                field=INPUT_OF[p])
            if x is None:
                continue
            if x.dim() == 6:
                clip_counts.add(x.shape[1])
                x = x.flatten(0, 1)
            elif x.dim() == 5:
                clip_counts.add(None)
            else:
                raise DataError(f"expected [N, C, T, H, W] or [N, clips, C, T, H, W], got {tuple(x.shape)}",
                                field=INPUT_OF[p])
            channels = 3 if p == "rgb" else self.in_channels
            if x.shape[1] != channels:
                raise DataError(f"expected {channels} channels, got {x.shape[1]} in {tuple(x.shape)}",
                                field=INPUT_OF[p])
            volumes[p] = x
        if len(clip_counts) > 1:
            raise DataError(f"rgb and heatmap carry different numbers of clips ({sorted(clip_counts, key=str)})",
                            field="heatmap")
        if self.lateral:
            t_rgb, t_pose = volumes["rgb"].shape[2], volumes["pose"].shape[2]
            if t_pose != self.speed_ratio * t_rgb:
                raise DataError(f"the lateral connections need speed_ratio ({self.speed_ratio}) x {t_rgb} RGB frames "
                                f"of heatmaps, got {t_pose}", field="heatmap")
        return volumes, clip_counts.pop()

    def _lateral_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach() if self.lateral_detach else x

    def features(self, rgb: torch.Tensor | None = None, heatmap: torch.Tensor | None = None
                 ) -> tuple[dict[str, torch.Tensor], int | None]:
        """The last stage's features of each pathway, ``{name: [N * clips, C, T, H, W]}``, and the clip count."""
        volumes, clips = self._inputs(rgb, heatmap)
        if not self.lateral:
            return {p: getattr(self, p).backbone(x) for p, x in volumes.items()}, clips
        r_net, p_net = self.rgb.backbone, self.pose.backbone
        r = run_stage(r_net.stages[0], r_net.stem_pool(r_net.stem(volumes["rgb"])))
        p = p_net.stem_pool(p_net.stem(volumes["pose"]))
        for s in range(1, len(r_net.stages)):
            # RGB stage s runs beside pose stage s - 1; both laterals come from the features before either runs
            to_rgb = self.laterals[f"pose_to_rgb_{s}"] if s in self.lateral_stages else None
            to_pose = self.laterals[f"rgb_to_pose_{s - 1}"] if s in self.lateral_stages else None
            r, p = (run_stage(r_net.stages[s], r, to_rgb, self._lateral_input(p)),
                    run_stage(p_net.stages[s - 1], p, to_pose, self._lateral_input(r)))
        return {"rgb": r, "pose": p}, clips

    def forward(self, rgb: torch.Tensor | None = None, heatmap: torch.Tensor | None = None,
                return_pathways: bool = False) -> Any:
        features, clips = self.features(rgb, heatmap)
        logits = {p: getattr(self, p).head(f) for p, f in features.items()}
        out = self._fused(logits, clips)
        return (out, logits) if return_pathways else out

    def _fused(self, logits: dict[str, torch.Tensor], clips: int | None) -> torch.Tensor:
        if len(logits) == 1:
            x = next(iter(logits.values()))
            if clips is None:
                return x
            x = x.view(-1, clips, self.num_classes)
            return x.mean(dim=1) if self.clip_average == "score" else torch.log(torch.softmax(x, dim=-1).mean(dim=1))
        total = sum(self.fusion_weights.values())
        fused = 0.0
        for p, x in logits.items():
            x = x.view(-1, clips or 1, self.num_classes)
            prob = (torch.softmax(x.mean(dim=1), dim=-1) if self.clip_average == "score"
                    else torch.softmax(x, dim=-1).mean(dim=1))
            fused = fused + prob * (self.fusion_weights[p] / total)
        return torch.log(fused)

    def extract_features(self, rgb: torch.Tensor | None = None, heatmap: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled embeddings of the pathways, concatenated (RGB first), ``[N, C]`` (averaged over clips)."""
        features, clips = self.features(rgb, heatmap)
        pooled = torch.cat([getattr(self, p).head.pool(f) for p, f in features.items()], dim=1)
        return pooled if clips is None else pooled.view(-1, clips, pooled.shape[-1]).mean(dim=1)
