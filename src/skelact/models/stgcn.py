"""ST-GCN: spatial temporal graph convolutional network.

Yan, Xiong and Lin, "Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action Recognition", AAAI 2018;
official code yysijie/st-gcn ``net/st_gcn.py`` and ``net/utils/tgcn.py``. Our own implementation of that network:

- data batch-norm over (joint, coordinate), person slots pooled (the reference's ``BatchNorm1d(C * V)``);
- ten blocks ``64, 64, 64, 64, 128, 128, 128, 256, 256, 256``, stride 2 at blocks 5 and 8; each block is a graph
  convolution (1x1 conv to ``K * C_out`` channels, then ``sum_k`` over the partition ``A_k`` masked by a learnable
  edge importance initialised to ones), then BN, ReLU, a 9x1 temporal conv, BN, dropout; plus the residual (none in
  block 1, identity when the shape is kept, else a strided 1x1 conv + BN), then ReLU;
- global average pooling over frames, joints and persons, and a linear classifier (the reference's 1x1 conv on the
  pooled ``[N, C, 1, 1]`` map, the same function and parameter count).

CrosSCLR / SkeletonCLR use the same network at a quarter width (``base_channels=16``) with a 256-wide last block
(``final_channels=256``) and ``dropout=0.5`` (LinguoLi/CrosSCLR ``net/st_gcn.py`` and its configs).

The weight initialisation is the one the reference's training processor applies
(``processor/recognition.py::weights_init``): conv weights N(0, 0.02) with zero bias, batch-norm weights N(1, 0.02)
with zero bias; the classifier, a conv there, is initialised the same way.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from skelact.errors import ConfigError
from skelact.models.layers import (DataBatchNorm, SkeletonGCN, check_feature_blocks, make_generator,
                                   resolve_partition, standard_block_specs)


class STGCNBlock(nn.Module):
    """One reference ``st_gcn`` unit; input ``[N, C_in, T, V]`` and the (importance-masked) partition ``[K, V, V]``.

    The graph convolution follows the reference's ``ConvTemporalGraphical``: ``y = conv1x1(x)`` split into ``K``
    groups of ``C_out`` channels, then ``out[n, c, t, w] = sum_k sum_v y[n, k, c, t, v] * A[k, v, w]`` (column
    ``w`` of ``A_k`` lists who sends to joint ``w``).
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, temporal_kernel_size: int = 9,
                 stride: int = 1, dropout: float = 0.0, residual: bool = True):
        super().__init__()
        if temporal_kernel_size % 2 != 1:
            raise ConfigError(f"must be odd, got {temporal_kernel_size}", field="temporal_kernel_size")
        self.num_subsets, self.out_channels = num_subsets, out_channels
        self.gcn = nn.Conv2d(in_channels, out_channels * num_subsets, 1)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel_size, 1), (stride, 1),
                      ((temporal_kernel_size - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout),
        )
        self.has_residual = residual
        if residual and (in_channels != out_channels or stride != 1):
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=(stride, 1)),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.residual = None

    def forward(self, x: torch.Tensor, partition: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        y = self.gcn(x).view(n, self.num_subsets, self.out_channels, t, v)
        y = torch.einsum("nkctv,kvw->nctw", y, partition)
        y = self.tcn(y)
        if self.residual is not None:
            y = y + self.residual(x)
        elif self.has_residual:
            y = y + x
        return F.relu(y)


class STGCN(SkeletonGCN):
    """ST-GCN (Yan et al., AAAI 2018) for batches ``[N, M, T, V, C]``; returns logits ``[N, num_classes]``.

    Args:
        num_classes: classifier outputs.
        partition: ``[K, V, V]`` array; or give ``layout`` (and ``strategy``, default ``"spatial"``, the paper's
            spatial configuration partitioning) to build it with :func:`skelact.skeleton.build_partition`.
        num_persons: person slots ``M`` (only checked when ``data_bn="mvc"``).
        in_channels: coordinates per joint (3 for 3-D, 3 for 2-D + confidence as in the Kinetics release, 2 for
            bare 2-D).
        base_channels: width of blocks 1-4 (64 published; CrosSCLR 16); blocks 5-7 twice, 8-10 four times that.
        final_channels: width of the last block if not ``4 * base_channels`` (CrosSCLR: 256).
        num_blocks: keep the first ``num_blocks`` of the ten blocks.
        temporal_kernel_size: 9 as published.
        dropout: dropout inside every block but the first, as the reference passes it.
        edge_importance: learn one ``[K, V, V]`` mask per block (initialised to ones).
        data_bn: ``"vc"`` (reference), ``"mvc"`` or ``"none"``; see :class:`~skelact.models.layers.DataBatchNorm`.
        feature_blocks: blocks whose outputs ``forward(..., return_features=True)`` returns (default 1, 5, 8, 10).
        seed: seeds a private generator for the initialisation (else torch's global RNG).

    ``self.partition`` (buffer) is the partition; block ``i`` uses ``partition * edge_importance[i]``.
    """

    def __init__(self, num_classes: int, partition=None, *, layout=None, strategy: str = "spatial",
                 num_persons: int = 2, in_channels: int = 3, base_channels: int = 64,
                 final_channels: int | None = None, num_blocks: int = 10, temporal_kernel_size: int = 9,
                 dropout: float = 0.0, edge_importance: bool = True, data_bn: str = "vc",
                 feature_blocks: Sequence[int] | None = None, seed: int | None = None):
        super().__init__()
        a = torch.from_numpy(resolve_partition(partition, layout, strategy if layout is not None else None))
        for name, value in (("num_classes", num_classes), ("num_persons", num_persons),
                            ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be a positive integer, got {value!r}", field=name)
        self.register_buffer("partition", a)
        self.num_classes = num_classes
        self.num_persons, self.num_joints, self.in_channels = num_persons, a.shape[1], in_channels
        self.data_bn = DataBatchNorm(num_persons, self.num_joints, in_channels, data_bn)
        specs = standard_block_specs(base_channels, num_blocks, final_channels)
        blocks, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(specs):
            blocks.append(STGCNBlock(c_in, c_out, a.shape[0], temporal_kernel_size, stride,
                                     dropout=dropout if i > 0 else 0.0, residual=i > 0))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        if edge_importance:
            self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones_like(a)) for _ in blocks)
        else:
            self.edge_importance = None
        self.feature_blocks = check_feature_blocks(feature_blocks, len(blocks))
        self.dropout = nn.Identity()
        self.fc = nn.Linear(c_in, num_classes)
        self.reset_parameters(make_generator(seed))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The reference processor's ``weights_init`` (see the module docstring); edge importance back to ones."""
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.weight.normal_(0.0, 0.02, generator=generator)
                    m.bias.zero_()
                elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    m.weight.normal_(1.0, 0.02, generator=generator)
                    m.bias.zero_()
            if self.edge_importance is not None:
                for p in self.edge_importance:
                    p.fill_(1.0)

    def _block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        a = self.partition if self.edge_importance is None else self.partition * self.edge_importance[index]
        return self.blocks[index](x, a)


_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def convert_official_state_dict(official: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a state dict of the official ST-GCN ``net.st_gcn.Model`` (yysijie/st-gcn, or CrosSCLR's encoder, whose
    classifier is ``fc``; ``module.`` prefixes removed) onto :class:`STGCN`'s names. The official ``A`` buffer is
    returned as ``partition``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in official.items():
        key = key[7:] if key.startswith("module.") else key
        if key == "A":
            out["partition"] = value
        elif key.startswith("data_bn."):
            out["data_bn.bn." + key[len("data_bn."):]] = value
        elif key.startswith(("fcn.", "fc.")):
            name = key.split(".", 1)[1]
            out["fc." + name] = value.flatten(1) if name == "weight" else value
        elif m := re.match(r"st_gcn_networks\.(\d+)\.gcn\.conv\.(weight|bias)$", key):
            out[f"blocks.{m.group(1)}.gcn.{m.group(2)}"] = value
        elif m := re.match(r"st_gcn_networks\.(\d+)\.(tcn|residual)\.(.+)$", key):
            out[f"blocks.{m.group(1)}.{m.group(2)}.{m.group(3)}"] = value
        elif key.startswith("edge_importance."):
            out[key] = value
        else:
            raise ConfigError(f"unexpected key {key!r} in an official ST-GCN state dict", field="state_dict")
    return out
