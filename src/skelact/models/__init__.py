"""Backbones and heads (torch). Models take their graph as an argument, never read data files, never pick a device.

Input batches are skelact's ``[N, M, T, V, C]``; :mod:`skelact.models.layers` documents the layouts inside.

- :class:`STGCN`: ST-GCN (Yan et al., AAAI 2018), spatial-configuration partition by default.
- :class:`CTRGCN`: CTR-GCN (Chen et al., ICCV 2021), inward/outward partition by default.

Both return logits ``[N, num_classes]``; ``forward(x, return_features=True)`` adds FR-Head's stage features and
``extract_features(x)`` gives the pooled embedding.
"""

from __future__ import annotations

from skelact.errors import ConfigError
from skelact.models.ctrgcn import CTRGCN
from skelact.models.layers import FR_HEAD_BLOCKS, DataBatchNorm, SkeletonGCN, standard_block_specs
from skelact.models.stgcn import STGCN

#: Backbone classes by the name a config uses.
BACKBONES = {"stgcn": STGCN, "ctrgcn": CTRGCN}


def build_backbone(name: str, num_classes: int, **kwargs) -> SkeletonGCN:
    """``BACKBONES[name](num_classes, **kwargs)``, with a :class:`~skelact.errors.ConfigError` for unknown names."""
    cls = BACKBONES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}", field="model")
    return cls(num_classes, **kwargs)


__all__ = ["BACKBONES", "CTRGCN", "FR_HEAD_BLOCKS", "STGCN", "DataBatchNorm", "SkeletonGCN", "build_backbone",
           "standard_block_specs"]
