"""SkeletonMAE's pre-trained network as a skelact model: the per-frame graph encoder on ``[N, M, T, V, C]``
batches, its joint features pooled into one clip embedding (what the evaluation protocols judge), and a linear
classifier (Yan et al., ICCV 2023, arXiv 2307.08476; the encoder is :class:`~skelact.models.gin.GraphEncoder`).

The embedding is the mean of the encoder's joint features over joints, frames and person slots (absent persons,
all-zero in every frame, are left out of the mean). The encoder models space only, so this embedding knows the
clip's poses, not their order; STRL (:mod:`skelact.models.strl`) adds the time.
"""

from __future__ import annotations

import torch
from torch import nn

from skelact.errors import DataError
from skelact.models.data_info import DataArguments
from skelact.models.gin import GraphEncoder


def graph_of(layout) -> torch.Tensor:
    """The layout's physical adjacency ``[V, V]`` (bones and extra edges)."""
    from skelact.skeleton.graph import adjacency
    from skelact.skeleton.layout import get_layout

    return torch.from_numpy(adjacency(get_layout(layout)))


def check_batch(x: torch.Tensor, num_joints: int, in_channels: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 5 or tuple(x.shape[3:]) != (num_joints, in_channels):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"expected a batch [N, M, T, V={num_joints}, C={in_channels}], got {shape}", field="input")


def present_persons(x: torch.Tensor) -> torch.Tensor:
    """``[N, M]`` float weights: 1 for a person slot with any non-zero joint, else 0 (at least one per sample)."""
    present = x.flatten(2).abs().sum(dim=2) > 0
    present[:, 0] |= ~present.any(dim=1)  # an all-zero sample still has one slot to pool
    return present.to(x.dtype)


class SkeletonGIN(DataArguments, nn.Module):
    """Graph encoder + mean pooling + linear classifier; ``forward(x)`` gives logits ``[N, num_classes]``.

    Args:
        num_classes, layout, in_channels: from the data.
        hidden_channels: D (64 in the paper); num_layers: L_D (3); graph_layer_type: ``gin`` (the paper) or
        ``gcn`` (its ablation); mlp_ratio, eps, train_eps: the GIN MLP's width factor and epsilon (the paper's
        silences, :mod:`skelact.models.gin`).
    """

    DATA_ARGUMENTS = ("num_classes", "layout", "in_channels")

    def __init__(self, num_classes: int, layout, in_channels: int = 3, hidden_channels: int = 64, num_layers: int = 3,
                 graph_layer_type: str = "gin", mlp_ratio: int = 2, eps: float = 0.0, train_eps: bool = False):
        super().__init__()
        from skelact.skeleton.layout import get_layout

        #: the layout (its body parts are SkeletonMAE's masking units)
        self.layout = get_layout(layout)
        self.encoder = GraphEncoder(graph_of(self.layout), in_channels, hidden_channels, num_layers, graph_layer_type,
                                    mlp_ratio, eps, train_eps)
        self.num_joints, self.in_channels = self.encoder.num_joints, in_channels
        self.fc = nn.Linear(hidden_channels, num_classes)

    @property
    def out_channels(self) -> int:
        return self.encoder.hidden_channels

    def joint_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, M, T, V, D]`` encoder features of every frame graph."""
        check_batch(x, self.num_joints, self.in_channels)
        return self.encoder(x)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.joint_features(x).mean(dim=(2, 3))  # [N, M, D]
        weights = present_persons(x)
        return (h * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.extract_features(x))
