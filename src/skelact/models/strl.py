"""STRL: SkeletonMAE's spatial-temporal representation learning network for fine-tuning (Yan et al., ICCV 2023,
arXiv 2307.08476, Sec. 3.4), from the paper's description.

For a batch ``[N, M, T, V, C]`` every frame of every person is a graph (:mod:`skelact.models.gin`):

1. joints embedded to ``D`` by the encoder's embedding, plus a learnable temporal position embedding ``P[t]``
   (one ``D``-vector per frame index, the same for every joint);
2. ``num_blocks`` (the paper's M = 3) SM blocks (:class:`SpatialModelling`). Each runs the pre-trained encoder's
   graph layers (one set of weights shared by all blocks and all persons) on each frame graph, sum-pools their
   output over joints, repeats it to every joint and adds it, through a 1x1 projection, to the block's input
   (residual); then a weight matrix and a ReLU::

       h_{l+1} = ReLU( W_l ( h_l + Proj_l( sum_v E(h_l)_v ) ) + b_l )

   With ``block_norm`` (ours, on by default) a batch-norm sits before that ReLU; with ``temporal_module:
   multiscale`` (ours, the default) each SM block is followed by a residual multi-scale temporal convolution
   (:class:`TemporalModelling`, CTR-GCN's unit). The paper's text names "multi-scale temporal pooling" without
   saying where frames meet frames; read as pooling at the end only (``temporal_module: none``), the network sees
   time only through the segment means below, and it could not fit 256 NW-UCLA training clips: 6 passes over
   them reached 37 % training accuracy (AdamW 1e-3: 39 %), against 75 % with the temporal modules, the block
   batch-norm and AdamW (2026-12-07, ``docs/results.md``). With ``context_norm`` (ours, on by default) a layer
   norm scales the pooled context before its projection. Without it the context's scale is the encoder's: a
   SkeletonMAE encoder's joint features are about 12 times those of a fresh one (their scale is free, since the
   cosine loss ignores it), and summed over the joints they swamped the per-joint features ``h_l`` (Penn Action,
   first block: context std 7.1 against 0.57 for ``h_l``; fresh encoder 0.67), so STRL from a pre-trained encoder
   fitted its clips far more slowly than from a random one. With the layer norm, on 384 Penn Action training clips
   for 8 passes (one seed), the pre-trained start went from 47 % training / 28 % held-out accuracy to 86 % / 70 %
   and the random start from 79 % / 46 % to 87 % / 64 % (2026-12-07, ``docs/results.md``);
3. multi-scale temporal pooling (:func:`multiscale_temporal_pool`): the frames cut into ``s`` equal segments for
   each scale ``s`` of ``temporal_scales``, every segment averaged over its frames and the joints, the segments of
   all scales concatenated (``D * sum(scales)``); persons present are averaged;
4. an MLP classifier ``Linear - ReLU - Dropout - Linear`` (``fc`` is its last layer), with ``pooled_norm`` (ours,
   on by default) preceded by a batch-norm of the pooled vector: the means over joints and frames differ little
   from clip to clip at initialisation (across-clip std about 0.014 on NW-UCLA), and without it STRL stayed at
   chance (loss ln 10) for 5 epochs of NW-UCLA at lr 0.1; with it, the loss of 16 steps on 96 clips fell from 2.32
   to 1.79 within 5 steps (2.25 without).

The paper is silent on the pooling scales (ours 1, 2, 4: the whole clip, halves, quarters), the MLP width (ours
256), dropout (ours 0.5) and any normalisation (ours: ``pooled_norm``); each is an argument. The encoder lives at ``encoder.`` (a
:class:`~skelact.models.gin.GraphEncoder`), so ``init`` copies SkeletonMAE's ``views.joint.encoder.encoder.``
to ``model.encoder.``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from skelact.errors import ConfigError, DataError
from skelact.models.ctrgcn import MultiScaleTemporalConv
from skelact.models.data_info import DataArguments
from skelact.models.gin import GraphEncoder
from skelact.models.skeleton_gin import check_batch, graph_of, present_persons


#: ``temporal_module``: a multi-scale temporal convolution after every SM block, or none (pooling only)
TEMPORAL_MODULES = ("multiscale", "none")


class SpatialModelling(nn.Module):
    """One SM block around a shared ``encoder`` (not owned: every block gets the same one). With ``norm`` (ours)
    a batch-norm over the ``D`` channels sits between the weight matrix and the ReLU; with ``context_norm`` (ours)
    a layer norm scales the pooled encoder output before its projection, so the context enters at the same scale
    whatever the encoder's weights (see the module docstring)."""

    def __init__(self, channels: int, norm: bool = False, context_norm: bool = False):
        super().__init__()
        self.projection = nn.Linear(channels, channels)  # the 1x1 projection of the pooled context
        self.weight = nn.Linear(channels, channels)
        self.norm = nn.BatchNorm1d(channels) if norm else None
        self.context_norm = nn.LayerNorm(channels) if context_norm else None

    def forward(self, h: torch.Tensor, encoder: GraphEncoder) -> torch.Tensor:
        """``h``: ``[..., V, D]`` frame graphs -> ``[..., V, D]``."""
        context = encoder.encode(h).sum(dim=-2, keepdim=True)  # [..., 1, D], repeated to every joint by broadcasting
        if self.context_norm is not None:
            context = self.context_norm(context)
        z = self.weight(h + self.projection(context))
        if self.norm is not None:
            z = self.norm(z.reshape(-1, z.shape[-1])).view_as(z)
        return torch.relu(z)


class TemporalModelling(nn.Module):
    """A residual multi-scale temporal convolution over the frames of every joint (ours, see the module
    docstring): ``h + MSTC(h)`` then ReLU, with CTR-GCN's unit (:class:`~skelact.models.ctrgcn.MultiScaleTemporalConv`:
    kernel-5 temporal convolutions at dilations 1 and 2, a 3-frame max-pool and a 1x1 branch)."""

    def __init__(self, channels: int):
        super().__init__()
        self.unit = MultiScaleTemporalConv(channels)
        self.unit.reset_parameters()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: ``[B, T, V, D]`` -> ``[B, T, V, D]``."""
        z = self.unit(h.permute(0, 3, 1, 2))  # [B, D, T, V]
        return torch.relu(h + z.permute(0, 2, 3, 1))


def multiscale_temporal_pool(h: torch.Tensor, scales: Sequence[int]) -> torch.Tensor:
    """``[B, T, V, D]`` -> ``[B, D * sum(scales)]``: for each scale ``s``, the frames split into ``s`` contiguous
    segments as equal as possible (``torch.tensor_split``), each averaged over its frames and joints."""
    pooled = []
    for s in scales:
        for segment in torch.tensor_split(h, int(s), dim=1):
            pooled.append(segment.mean(dim=(1, 2)))
    return torch.cat(pooled, dim=1)


class STRL(DataArguments, nn.Module):
    """STRL for batches ``[N, M, T, V, C]``; returns logits ``[N, num_classes]`` (see the module docstring).

    Args:
        num_classes, layout, in_channels: from the data.
        hidden_channels, num_layers, graph_layer_type, mlp_ratio, eps, train_eps: the encoder's, as
            :class:`~skelact.models.skeleton_gin.SkeletonGIN` (they must match the pre-training run's).
        num_blocks: SM blocks (the paper's M = 3).
        max_frames: rows of the temporal position embedding (the longest clip taken).
        temporal_scales: segments per scale of the final pooling.
        head_channels, dropout: the MLP classifier's hidden width and dropout.
        pooled_norm: batch-norm the pooled vector before the MLP (ours; see the module docstring).
        temporal_module: ``multiscale`` (a residual multi-scale temporal convolution after every SM block) or
            ``none`` (time enters only through the final pooling); ours.
        block_norm: batch-norm inside every SM block, before its ReLU (ours).
        context_norm: layer-norm the pooled encoder output of every SM block before its projection (ours).
    """

    DATA_ARGUMENTS = ("num_classes", "layout", "in_channels")

    def __init__(self, num_classes: int, layout, in_channels: int = 3, hidden_channels: int = 64, num_layers: int = 3,
                 graph_layer_type: str = "gin", mlp_ratio: int = 2, eps: float = 0.0, train_eps: bool = False,
                 num_blocks: int = 3, max_frames: int = 64, temporal_scales: Sequence[int] = (1, 2, 4),
                 head_channels: int = 256, dropout: float = 0.5, pooled_norm: bool = True,
                 temporal_module: str = "multiscale", block_norm: bool = True, context_norm: bool = True):
        super().__init__()
        for name, value in (("num_blocks", num_blocks), ("max_frames", max_frames), ("head_channels", head_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be a positive integer, got {value!r}", field=name)
        scales = tuple(temporal_scales)
        if not scales or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in scales):
            raise ConfigError(f"must be a non-empty list of positive integers, got {list(scales)}",
                              field="temporal_scales")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"must lie in [0, 1), got {dropout}", field="dropout")
        self.encoder = GraphEncoder(graph_of(layout), in_channels, hidden_channels, num_layers, graph_layer_type,
                                    mlp_ratio, eps, train_eps)
        self.num_joints, self.in_channels = self.encoder.num_joints, in_channels
        self.temporal_scales, self.max_frames = scales, max_frames
        self.position = nn.Parameter(torch.zeros(max_frames, hidden_channels))
        nn.init.trunc_normal_(self.position, std=0.02)
        if temporal_module not in TEMPORAL_MODULES:
            raise ConfigError(f"expected one of {', '.join(TEMPORAL_MODULES)}, got {temporal_module!r}",
                              field="temporal_module")
        self.blocks = nn.ModuleList(SpatialModelling(hidden_channels, bool(block_norm), bool(context_norm))
                                    for _ in range(num_blocks))
        self.temporal = nn.ModuleList(TemporalModelling(hidden_channels) for _ in range(num_blocks)) \
            if temporal_module == "multiscale" else None
        pooled = hidden_channels * sum(scales)
        norm = [nn.BatchNorm1d(pooled)] if pooled_norm else []
        self.head = nn.Sequential(*norm, nn.Linear(pooled, head_channels), nn.ReLU(), nn.Dropout(float(dropout)))
        self.fc = nn.Linear(head_channels, num_classes)
        self._pooled_channels = pooled

    @property
    def out_channels(self) -> int:
        """Width of :meth:`extract_features` (the multi-scale pooled vector)."""
        return self._pooled_channels

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(x, self.num_joints, self.in_channels)
        n, m, t = x.shape[:3]
        if t > self.max_frames:
            raise DataError(f"clips of {t} frames exceed the {self.max_frames} of the temporal position embedding "
                            "(model.max_frames)", field="input")
        h = self.encoder.embed(x) + self.position[:t, None, :]  # [N, M, T, V, D]
        for k, block in enumerate(self.blocks):
            h = block(h, self.encoder)
            if self.temporal is not None:
                h = self.temporal[k](h.flatten(0, 1)).view_as(h)
        pooled = multiscale_temporal_pool(h.flatten(0, 1), self.temporal_scales).view(n, m, -1)
        weights = present_persons(x)
        return (pooled * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.extract_features(x)))
