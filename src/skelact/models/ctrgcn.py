"""CTR-GCN: channel-wise topology refinement graph convolution.

Chen, Zhang, Yuan, Li, Deng and Hu, "Channel-wise Topology Refinement Graph Convolution for Skeleton-Based Action
Recognition", ICCV 2021; official code Uason-Chen/CTR-GCN ``model/ctrgcn.py``. This is our own implementation of
that network: the same layers, widths, initialisation and parameter count (1,446,672 for NTU-60 with 25 joints, 2
persons, 3 coordinates; 1,426,892 for NW-UCLA with 20 joints, 1 person, 10 classes), computed in a cheaper but
mathematically identical way:

- the query/key 1x1 convolutions of CTR-GC are applied to the time-averaged input (a 1x1 convolution commutes
  with the mean over frames, which the reference takes after convolving every frame);
- the three subsets' 1x1 convolutions run as one convolution with stacked weights, and their three
  ``einsum('ncuv,nctv->nctu')`` aggregations plus the sum over subsets as one batched matrix product contracting
  over (subset, joint);
- the multi-scale temporal convolution runs its four branch-entry 1x1 convolutions as one, and the per-branch
  batch-norms that act on disjoint channels as one batch-norm over the concatenated channels (batch-norm is
  per channel, so this is the same function with the same parameters).

:func:`convert_official_state_dict` maps an official checkpoint onto this module, so official weights give the
same outputs (float rounding aside).
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from skelact.errors import ConfigError
from skelact.models.layers import (DataBatchNorm, SkeletonGCN, check_feature_blocks, kaiming_fan_out_,
                                   make_generator, resolve_partition, standard_block_specs)


def relation_channels(in_channels: int, rel_reduction: int = 8) -> int:
    """Width of CTR-GC's pairwise-relation features.

    The reference uses 8 for its raw 3- or 9-channel inputs and ``in_channels // rel_reduction`` otherwise; we
    use 8 for every input narrower than 16 (so 2-D skeletons and very thin test models work), which agrees with
    the reference on every configuration it supports.
    """
    return 8 if in_channels < 16 else max(1, in_channels // rel_reduction)


class CTRGraphConv(nn.Module):
    """The spatial unit (reference ``unit_gcn`` with its ``K`` ``CTRGC`` subsets), input/output ``[N, C, T, V]``.

    For subset ``k``: ``M_k = alpha * conv4_k(tanh(q_k(u) - k_k(v))) + A_k`` is a per-sample, per-channel
    ``[V, V]`` topology (``q``, ``k`` from the time-averaged input, ``A_k`` the shared learnable topology, ``alpha``
    initialised to 0), and ``z_k[c, t, u] = sum_v M_k[c, u, v] * conv3_k(x)[c, t, v]``. The unit returns
    ``relu(bn(sum_k z_k) + down(x))``.

    Parameters keep the reference's count but are stacked over subsets: ``relation_weight[0, k]`` is the
    reference's ``convs[k].conv1`` (query), ``relation_weight[1, k]`` its ``conv2`` (key), ``value_weight[k]`` its
    ``conv3`` and ``refine_weight[k]`` its ``conv4``.
    """

    def __init__(self, in_channels: int, out_channels: int, partition: torch.Tensor, adaptive: bool = True,
                 rel_reduction: int = 8):
        super().__init__()
        k, v, _ = partition.shape
        rel = relation_channels(in_channels, rel_reduction)
        self.in_channels, self.out_channels, self.num_subsets, self.rel_channels = in_channels, out_channels, k, rel
        self.relation_weight = nn.Parameter(torch.empty(2, k, rel, in_channels))
        self.relation_bias = nn.Parameter(torch.empty(2, k, rel))
        self.refine_weight = nn.Parameter(torch.empty(k, out_channels, rel))
        self.refine_bias = nn.Parameter(torch.empty(k, out_channels))
        self.value_weight = nn.Parameter(torch.empty(k, out_channels, in_channels))
        self.value_bias = nn.Parameter(torch.empty(k, out_channels))
        if adaptive:
            self.topology = nn.Parameter(partition.clone())
        else:
            # Not saved: the reference keeps its fixed graph outside the state dict too.
            self.register_buffer("topology", partition.clone(), persistent=False)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        else:
            self.down = None

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The reference initialisation: every 1x1 convolution Kaiming-normal (fan-out) with zero bias, batch-norms
        at 1 / 0 except the output one at 1e-6, ``alpha = 0``; the topology keeps the partition."""
        kaiming_fan_out_(self.relation_weight, self.rel_channels, generator)
        kaiming_fan_out_(self.refine_weight, self.out_channels, generator)
        kaiming_fan_out_(self.value_weight, self.out_channels, generator)
        for b in (self.relation_bias, self.refine_bias, self.value_bias):
            nn.init.zeros_(b)
        nn.init.zeros_(self.alpha)
        nn.init.constant_(self.bn.weight, 1e-6)
        nn.init.zeros_(self.bn.bias)
        if self.down is not None:
            kaiming_fan_out_(self.down[0].weight, self.out_channels, generator)
            nn.init.zeros_(self.down[0].bias)
            nn.init.ones_(self.down[1].weight)
            nn.init.zeros_(self.down[1].bias)

    def topologies(self, x: torch.Tensor) -> torch.Tensor:
        """The refined per-channel topologies ``[N, K, C_out, V, V]`` (index ``[..., u, v]``: ``v`` sends to ``u``)."""
        n, c, _, v = x.shape
        k, r, o = self.num_subsets, self.rel_channels, self.out_channels
        mean = x.mean(dim=2)  # [N, C, V]; conv1/conv2 commute with this mean
        qk = torch.matmul(self.relation_weight.reshape(2 * k * r, c), mean) + self.relation_bias.reshape(-1, 1)
        query, key = qk.view(n, 2, k, r, v).unbind(1)
        relation = torch.tanh(query.unsqueeze(-1) - key.unsqueeze(-2))  # [N, K, R, U, V]
        # alpha * (W4 rel + b4) + A computed as (alpha W4) rel + (alpha b4 + A): alpha scales the small weight
        # instead of the [N, K, O, V, V] product, so neither pass spends a full-size multiply on it.
        refined = torch.matmul(self.refine_weight * self.alpha, relation.reshape(n, k, r, v * v))  # [N, K, O, U*V]
        offset = self.refine_bias.unsqueeze(-1) * self.alpha + self.topology.reshape(k, 1, v * v)
        return refined.add_(offset).view(n, k, o, v, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        k, o = self.num_subsets, self.out_channels
        adjacency = self.topologies(x)
        value = F.conv2d(x, self.value_weight.reshape(k * o, c, 1, 1), self.value_bias.reshape(k * o))
        # One product contracting over (subset, sender joint) does the three aggregations and their sum.
        value = value.view(n, k, o, t, v).permute(0, 2, 3, 1, 4).reshape(n * o, t, k * v)
        adjacency = adjacency.permute(0, 2, 1, 4, 3).reshape(n * o, k * v, v)
        y = torch.bmm(value, adjacency).view(n, o, t, v)
        y = self.bn(y)
        y = y + (x if self.down is None else self.down(x))
        return F.relu(y)


class MultiScaleTemporalConv(nn.Module):
    """CTR-GCN's multi-scale temporal unit (reference ``MultiScale_TemporalConv`` with ``residual=False``).

    Four branches of ``C / 4`` channels each: 1x1 conv, BN, ReLU, then a ``kernel_size x 1`` temporal conv with
    dilation 1 and 2 (two branches), or a 3x1 max-pool; the fourth branch is a strided 1x1 conv alone. Each branch
    ends in a BN; outputs are concatenated. Here the four entry convolutions are one ``C -> C`` convolution
    (``pointwise``), the three entry BNs one BN (``entry_bn``) and the four exit BNs one BN (``exit_bn``); the
    fourth branch's strided 1x1 conv is the unstrided one sampled every ``stride`` frames.
    """

    def __init__(self, channels: int, kernel_size: int = 5, stride: int = 1, dilations: Sequence[int] = (1, 2)):
        super().__init__()
        num_branches = len(dilations) + 2
        if channels % num_branches:
            raise ConfigError(f"block width {channels} must be a multiple of the {num_branches} temporal branches",
                              field="base_channels")
        if kernel_size % 2 != 1:
            raise ConfigError(f"must be odd, got {kernel_size}", field="temporal_kernel_size")
        self.branch_channels = bc = channels // num_branches
        self.stride = stride
        self.kernel_size = kernel_size
        self.pointwise = nn.Conv2d(channels, channels, 1)
        self.entry_bn = nn.BatchNorm2d((num_branches - 1) * bc)
        self.temporal = nn.ModuleList(
            nn.Conv2d(bc, bc, (kernel_size, 1), stride=(stride, 1), padding=((kernel_size - 1) * d // 2, 0),
                      dilation=(d, 1))
            for d in dilations)
        self.exit_bn = nn.BatchNorm2d(channels)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The reference ``weights_init``: convs Kaiming-normal (fan-out of each branch's own conv), zero bias; BN
        weights drawn from N(1, 0.02), zero bias."""
        kaiming_fan_out_(self.pointwise.weight, self.branch_channels, generator)
        nn.init.zeros_(self.pointwise.bias)
        for conv in self.temporal:
            kaiming_fan_out_(conv.weight, self.branch_channels * self.kernel_size, generator)
            nn.init.zeros_(conv.bias)
        for bn in (self.entry_bn, self.exit_bn):
            with torch.no_grad():
                bn.weight.normal_(1.0, 0.02, generator=generator)
            nn.init.zeros_(bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bc, s = self.branch_channels, self.stride
        entry = self.pointwise(x)
        nd = len(self.temporal)
        hidden = F.relu(self.entry_bn(entry[:, :(nd + 1) * bc]))
        outs = [conv(hidden[:, i * bc:(i + 1) * bc]) for i, conv in enumerate(self.temporal)]
        outs.append(F.max_pool2d(hidden[:, nd * bc:], (3, 1), stride=(s, 1), padding=(1, 0)))
        outs.append(entry[:, (nd + 1) * bc:, ::s])
        return self.exit_bn(torch.cat(outs, dim=1))


class CTRGCNBlock(nn.Module):
    """Reference ``TCN_GCN_unit``: ``relu(tcn(gcn(x)) + residual(x))``; the residual is absent in block 1, the
    identity when shape is kept, else a strided 1x1 conv + BN."""

    def __init__(self, in_channels: int, out_channels: int, partition: torch.Tensor, stride: int = 1,
                 residual: bool = True, adaptive: bool = True, rel_reduction: int = 8, kernel_size: int = 5,
                 dilations: Sequence[int] = (1, 2)):
        super().__init__()
        self.gcn = CTRGraphConv(in_channels, out_channels, partition, adaptive, rel_reduction)
        self.tcn = MultiScaleTemporalConv(out_channels, kernel_size, stride, dilations)
        self.has_residual = residual
        if residual and (in_channels != out_channels or stride != 1):
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=(stride, 1)),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.residual = None

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        self.gcn.reset_parameters(generator)
        self.tcn.reset_parameters(generator)
        if self.residual is not None:
            kaiming_fan_out_(self.residual[0].weight, self.residual[0].out_channels, generator)
            nn.init.zeros_(self.residual[0].bias)
            nn.init.ones_(self.residual[1].weight)
            nn.init.zeros_(self.residual[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual is not None:
            y = y + self.residual(x)
        elif self.has_residual:
            y = y + x
        return F.relu(y)


class CTRGCN(SkeletonGCN):
    """CTR-GCN (Chen et al., ICCV 2021) for batches ``[N, M, T, V, C]``; returns logits ``[N, num_classes]``.

    Args:
        num_classes: classifier outputs (60 for NTU-60, 10 for NW-UCLA).
        partition: ``[K, V, V]`` array; or give ``layout`` (and ``strategy``, default ``"inward_outward"``, the
            reference's ``[I, norm(In), norm(Out)]``) to build it with :func:`skelact.skeleton.build_partition`.
        num_persons: person slots ``M`` (2 for NTU, 1 for NW-UCLA); the data batch-norm has a set per slot.
        in_channels: coordinates per joint (3; 2 for 2-D poses).
        base_channels: width of blocks 1-4 (64 published); blocks 5-7 have twice, 8-10 four times that.
            Must be a multiple of 4 (temporal branches).
        num_blocks: keep the first ``num_blocks`` of the ten blocks.
        dropout: dropout on the pooled embedding before the classifier (reference ``drop_out``, default 0).
        adaptive: learn the shared topology (reference ``PA``); ``False`` keeps the partition fixed.
        rel_reduction: relation-feature reduction of CTR-GC (8).
        temporal_kernel_size, dilations: multi-scale temporal conv (5 and (1, 2) published).
        data_bn: ``"mvc"`` (reference), ``"vc"`` or ``"none"``; see :class:`~skelact.models.layers.DataBatchNorm`.
        feature_blocks: blocks whose outputs ``forward(..., return_features=True)`` returns (FR-Head: 1, 5, 8, 10).
        seed: seeds a private generator for the initialisation (else torch's global RNG).

    ``self.partition`` (buffer) holds the partition the model was built on; each block's ``gcn.topology`` starts
    as a copy of it.
    """

    def __init__(self, num_classes: int, partition=None, *, layout=None, strategy: str = "inward_outward",
                 num_persons: int = 2, in_channels: int = 3, base_channels: int = 64, num_blocks: int = 10,
                 dropout: float = 0.0, adaptive: bool = True, rel_reduction: int = 8, temporal_kernel_size: int = 5,
                 dilations: Sequence[int] = (1, 2), data_bn: str = "mvc",
                 feature_blocks: Sequence[int] | None = None, seed: int | None = None):
        super().__init__()
        a = torch.from_numpy(resolve_partition(partition, layout, strategy if layout is not None else None))
        _check_positive(num_classes=num_classes, num_persons=num_persons, in_channels=in_channels)
        self.register_buffer("partition", a)
        self.num_classes = num_classes
        self.num_persons, self.num_joints, self.in_channels = num_persons, a.shape[1], in_channels
        self.data_bn = DataBatchNorm(num_persons, self.num_joints, in_channels, data_bn)
        specs = standard_block_specs(base_channels, num_blocks)
        blocks, c_in = [], in_channels
        for i, (c_out, stride) in enumerate(specs):
            blocks.append(CTRGCNBlock(c_in, c_out, a, stride=stride, residual=i > 0, adaptive=adaptive,
                                      rel_reduction=rel_reduction, kernel_size=temporal_kernel_size,
                                      dilations=dilations))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.feature_blocks = check_feature_blocks(feature_blocks, len(blocks))
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(c_in, num_classes)
        self.reset_parameters(make_generator(seed))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Reference initialisation; classifier weight N(0, sqrt(2 / num_classes)), bias as ``nn.Linear``."""
        for block in self.blocks:
            block.reset_parameters(generator)
        if self.data_bn.bn is not None:
            nn.init.ones_(self.data_bn.bn.weight)
            nn.init.zeros_(self.data_bn.bn.bias)
        with torch.no_grad():
            self.fc.weight.normal_(0.0, math.sqrt(2.0 / self.num_classes), generator=generator)
            bound = 1.0 / math.sqrt(self.fc.in_features)
            self.fc.bias.uniform_(-bound, bound, generator=generator)

    def _block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[index](x)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"must be a positive integer, got {value!r}", field=name)


_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def convert_official_state_dict(official: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a state dict of the official ``model.ctrgcn.Model`` (optionally ``module.``-prefixed, as saved from
    ``DataParallel``) onto :class:`CTRGCN`'s names and stacked shapes. The result has no ``partition`` buffer:
    load it with ``load_state_dict(..., strict=False)`` and check that only ``partition`` is missing, or use
    :func:`load_official_state_dict`."""
    sd = {k[7:] if k.startswith("module.") else k: v for k, v in official.items()}
    out: dict[str, torch.Tensor] = {}
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"l(\d+)\.", k))})
    for key in _BN_KEYS:
        if f"data_bn.{key}" in sd:
            out[f"data_bn.bn.{key}"] = sd[f"data_bn.{key}"]
    for key in ("weight", "bias"):
        out[f"fc.{key}"] = sd[f"fc.{key}"]
    for i in blocks:
        src, dst = f"l{i}.", f"blocks.{i - 1}."
        g, t = src + "gcn1.", src + "tcn1.branches."
        subsets = sorted({int(m.group(1)) for k in sd if (m := re.match(re.escape(g) + r"convs\.(\d+)\.", k))})

        def conv(j: int, name: str, part: str) -> torch.Tensor:
            w = sd[f"{g}convs.{j}.{name}.{part}"]
            return w.flatten(1) if part == "weight" else w

        for part, suffix in (("weight", "weight"), ("bias", "bias")):
            out[f"{dst}gcn.relation_{suffix}"] = torch.stack(
                [torch.stack([conv(j, name, part) for j in subsets]) for name in ("conv1", "conv2")])
            out[f"{dst}gcn.value_{suffix}"] = torch.stack([conv(j, "conv3", part) for j in subsets])
            out[f"{dst}gcn.refine_{suffix}"] = torch.stack([conv(j, "conv4", part) for j in subsets])
        if f"{g}PA" in sd:
            out[f"{dst}gcn.topology"] = sd[f"{g}PA"]
        out[f"{dst}gcn.alpha"] = sd[f"{g}alpha"]
        for key in _BN_KEYS:
            out[f"{dst}gcn.bn.{key}"] = sd[f"{g}bn.{key}"]
        if f"{g}down.0.weight" in sd:
            for key in ("weight", "bias"):
                out[f"{dst}gcn.down.0.{key}"] = sd[f"{g}down.0.{key}"]
            for key in _BN_KEYS:
                out[f"{dst}gcn.down.1.{key}"] = sd[f"{g}down.1.{key}"]
        # Branches 0..nd-1: [1x1 conv, BN, ReLU, TemporalConv(conv, bn)]; nd: [1x1, BN, ReLU, MaxPool, BN];
        # nd+1: [1x1 conv (strided), BN].
        nb = len({int(m.group(1)) for k in sd if (m := re.match(re.escape(t) + r"(\d+)\.", k))})
        nd = nb - 2
        entry_convs = [f"{t}{b}.0" for b in range(nb)]
        entry_bns = [f"{t}{b}.1" for b in range(nd + 1)]
        exit_bns = [f"{t}{b}.3.bn" for b in range(nd)] + [f"{t}{nd}.4", f"{t}{nd + 1}.1"]
        for key in ("weight", "bias"):
            out[f"{dst}tcn.pointwise.{key}"] = torch.cat([sd[f"{p}.{key}"] for p in entry_convs])
            for b in range(nd):
                out[f"{dst}tcn.temporal.{b}.{key}"] = sd[f"{t}{b}.3.conv.{key}"]
        for name, parts in (("entry_bn", entry_bns), ("exit_bn", exit_bns)):
            for key in _BN_KEYS[:4]:
                out[f"{dst}tcn.{name}.{key}"] = torch.cat([sd[f"{p}.{key}"] for p in parts])
            out[f"{dst}tcn.{name}.num_batches_tracked"] = sd[f"{parts[0]}.num_batches_tracked"]
        if f"{src}residual.conv.weight" in sd:
            for key in ("weight", "bias"):
                out[f"{dst}residual.0.{key}"] = sd[f"{src}residual.conv.{key}"]
            for key in _BN_KEYS:
                out[f"{dst}residual.1.{key}"] = sd[f"{src}residual.bn.{key}"]
    return out


def load_official_state_dict(model: CTRGCN, official: Mapping[str, torch.Tensor]) -> None:
    """Load an official CTR-GCN checkpoint's state dict into ``model`` (all of it, or raise)."""
    converted = convert_official_state_dict(official)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [k for k in missing if k != "partition"]
    if missing or unexpected:
        raise ConfigError(f"official CTR-GCN weights do not fit this model: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}", field="state_dict")
