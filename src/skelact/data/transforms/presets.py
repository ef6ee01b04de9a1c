"""The published per-sample pipelines, written as transform specs (what a YAML config would list).

Each entry reproduces one official feeder's per-sample steps in order; the modality (joint, bone, motion) is added
last by :func:`preset_pipeline`. Dataset-level habits of those repositories are not transforms and are left out:
CTR-GCN's NW-UCLA loader and pyskl's ``RepeatDataset`` repeat the training list 5 times per "epoch" (an skelact
epoch is one honest pass), and NTU's 300-frame zero padding is not stored.
"""

from __future__ import annotations

import copy
from typing import Any

from skelact.data.transforms.compose import Compose
from skelact.errors import ConfigError

PRESETS: dict[str, list[dict[str, Any]]] = {
    # Uason-Chen/CTR-GCN config/nturgbd-cross-subject/default.yaml + feeders/feeder_ntu.py
    "ctrgcn_ntu_train": [
        {"type": "ValidCropResize", "window": 64, "p_interval": [0.5, 1.0]},
        {"type": "RandomRotation", "theta": 0.3},
    ],
    "ctrgcn_ntu_test": [
        {"type": "ValidCropResize", "window": 64, "p_interval": [0.95]},
    ],
    # Uason-Chen/CTR-GCN config/ucla/default.yaml + feeders/feeder_ucla.py (test: their view change is the identity)
    "ctrgcn_ucla_train": [
        {"type": "CenterOnJoint", "joint": "spine", "frame": "first"},
        {"type": "RandomViewRotation", "max_degrees": 60, "scale_range": [0.5, 1.5]},
        {"type": "MinMaxNormalize"},
        {"type": "UclaSample", "window_size": 52},
    ],
    "ctrgcn_ucla_test": [
        {"type": "CenterOnJoint", "joint": "spine", "frame": "first"},
        {"type": "MinMaxNormalize"},
        {"type": "UclaSample", "window_size": 52, "test_mode": True},
    ],
    # kennymckormick/pyskl configs/stgcn++/stgcn++_ntu60_xsub_3dkp/j.py
    "pyskl_ntu3d_train": [
        {"type": "PreNormalize3D"},
        {"type": "UniformSample", "clip_len": 100},
    ],
    "pyskl_ntu3d_val": [
        {"type": "PreNormalize3D"},
        {"type": "UniformSample", "clip_len": 100, "num_clips": 1, "test_mode": True},
    ],
    "pyskl_ntu3d_test": [
        {"type": "PreNormalize3D"},
        {"type": "UniformSample", "clip_len": 100, "num_clips": 10, "test_mode": True},
    ],
    # LinguoLi/CrosSCLR feeder/ntu_feeder.py (_aug): temporal crop, then shear; SkeletonCLR uses the same
    "skeletonclr_train": [
        {"type": "TemporalCrop", "padding_ratio": 6},
        {"type": "Shear", "amplitude": 0.5},
    ],
}


def preset_specs(name: str, modality: str | None = None) -> list[dict[str, Any]]:
    """A copy of the specs of preset ``name``, with ``ToModality(modality)`` appended when given."""
    if name not in PRESETS:
        raise ConfigError(f"unknown pipeline preset {name!r}; known presets: {', '.join(sorted(PRESETS))}",
                          field="preset")
    specs = copy.deepcopy(PRESETS[name])
    if modality is not None:
        specs.append({"type": "ToModality", "name": modality})
    return specs


def preset_pipeline(name: str, modality: str | None = None) -> Compose:
    """The :class:`Compose` of preset ``name`` (see :data:`PRESETS`)."""
    return Compose(preset_specs(name, modality))
