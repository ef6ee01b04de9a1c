"""Backbones and heads (torch). Models take their graph as an argument, never read data files, never pick a device.

The GCNs' input batches are skelact's ``[N, M, T, V, C]``; :mod:`skelact.models.layers` documents the layouts
inside. The 3D CNNs compute in ``[N, C, T, H, W]`` (:mod:`skelact.models.conv3d_unit`).

- :class:`STGCN`: ST-GCN (Yan et al., AAAI 2018), spatial-configuration partition by default.
- :class:`CTRGCN`: CTR-GCN (Chen et al., ICCV 2021), inward/outward partition by default.
- :class:`PoseConv3D`: PoseConv3D (Duan et al., CVPR 2022): a 3D CNN (ResNet3D-SlowOnly, C3D-light, X3D-shallow)
  and the I3D head on pose heatmap volumes, the named input ``heatmap`` ``[N, K, T, H, W]`` (or
  ``[N, clips, K, T, H, W]``, clip scores averaged).
- :class:`RGBPoseConv3D`: RGBPose-Conv3D (Duan et al., CVPR 2022): an RGB SlowOnly pathway on ``rgb`` and a pose
  SlowOnly pathway on ``heatmap``, lateral connections both ways, a head each, late fusion of their scores.
- :class:`FstCN`: FstCN (Sun et al., ICCV 2015) on RGB clip pairs ``clip``, ``diff`` ``[N, 3, T, H, W]``;
  :class:`FrameCNN`, its frame-level 2D CNN baseline on ``clip``.
- :class:`SkeletonGIN`: SkeletonMAE's per-frame GIN encoder with a pooled embedding (Yan et al., ICCV 2023).
- :class:`STRL`: SkeletonMAE's fine-tuning network around that encoder.

Models are looked up by name in :data:`MODELS` (:func:`register_model` adds one) and built from the data with
``from_data`` (:mod:`skelact.models.data_info`). Both return logits ``[N, num_classes]``;
``forward(x, return_features=True)`` adds FR-Head's stage features and ``extract_features(x)`` gives the pooled
embedding.
"""

from __future__ import annotations

from skelact.errors import ConfigError
from skelact.models.ctrgcn import CTRGCN
from skelact.models.data_info import DataArguments, DataInfo, same_layout
from skelact.models.frame_cnn import FrameCNN
from skelact.models.fstcn import FstCN
from skelact.models.layers import FR_HEAD_BLOCKS, DataBatchNorm, SkeletonGCN, standard_block_specs
from skelact.models.poseconv3d import BACKBONES_3D, PoseConv3D
from skelact.models.rgbpose_conv3d import RGBPoseConv3D
from skelact.models.skeleton_gin import SkeletonGIN
from skelact.models.stgcn import STGCN
from skelact.models.strl import STRL

#: Model classes by the name a config's ``model.type`` uses (imported, so the import structure shows them).
MODELS: dict[str, type] = {"stgcn": STGCN, "ctrgcn": CTRGCN, "poseconv3d": PoseConv3D, "fstcn": FstCN,
                          "frame_cnn": FrameCNN, "skeleton_gin": SkeletonGIN, "strl": STRL,
                          "rgbpose_conv3d": RGBPoseConv3D}
#: the former name of :data:`MODELS`
BACKBONES = MODELS


def register_model(name: str, cls: type) -> type:
    """Make ``cls`` buildable as ``model.type: name`` (a model of one's own, defined in one's own code; it needs
    a ``from_data(data_info, **settings)`` classmethod, see :mod:`skelact.models.data_info`)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a model name must be a non-empty string, got {name!r}")
    if name in MODELS and MODELS[name] is not cls:
        raise ValueError(f"model name {name!r} is already taken by {MODELS[name].__qualname__}")
    if not callable(getattr(cls, "from_data", None)):
        raise ValueError(f"{cls.__qualname__} has no from_data(data_info, **settings) classmethod")
    MODELS[name] = cls
    return cls


def build_backbone(name: str, num_classes: int, **kwargs) -> SkeletonGCN:
    """``BACKBONES[name](num_classes, **kwargs)``, with a :class:`~skelact.errors.ConfigError` for unknown names."""
    cls = BACKBONES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}", field="model")
    return cls(num_classes, **kwargs)


__all__ = ["BACKBONES", "BACKBONES_3D", "CTRGCN", "FR_HEAD_BLOCKS", "FrameCNN", "FstCN", "MODELS", "STGCN", "STRL",
           "DataArguments", "DataBatchNorm", "DataInfo", "PoseConv3D", "RGBPoseConv3D", "SkeletonGCN", "SkeletonGIN", "build_backbone",
           "register_model", "same_layout", "standard_block_specs"]
