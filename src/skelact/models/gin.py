"""The per-frame graph encoder of SkeletonMAE (Yan et al., ICCV 2023, arXiv 2307.08476, Sec. 3.2).

Each frame of each person is one graph ``G = (V, A, X)``: the joints ``V``, the layout's physical adjacency ``A``
(bones plus ``extra_edges``, no self loops) and the joint coordinates ``X``. Frames are batched as one
``[B, V, D]`` tensor (``B = N * M * T`` graphs) and neighbours are summed with a dense ``A @ h``: for 13-25
joints that is one small matmul, faster on a CPU than any sparse scatter.

* :class:`GINLayer`: the graph isomorphism layer (Xu et al., ICLR 2019, Eq. 4.1), the paper's choice:
  ``h'_v = MLP((1 + eps) h_v + sum_{u in N(v)} h_u)``. The paper does not give the MLP's width or ``eps``; here
  the MLP is ``Linear(D_in, r * D_out) - ReLU - Linear(r * D_out, D_out)`` with ``r = mlp_ratio`` (2) and ``eps``
  fixed (0, GIN-0) or learnt (``train_eps``).
* :class:`GCNLayer`: the plain graph convolution (Kipf and Welling, ICLR 2017) ``h' = D^-1/2 (A + I) D^-1/2 h W``,
  the paper's GCN ablation.
* :class:`GraphEncoder`: ``X`` linearly embedded to ``D`` (:meth:`GraphEncoder.embed`), then ``L`` graph layers
  each followed by a ReLU (:meth:`GraphEncoder.encode`); SkeletonMAE masks between the two.

The adjacency is a non-persistent buffer: it belongs to the data's layout, not to the weights, so an encoder
learnt on one layout loads into a model of another (x, y of NW-UCLA into Penn Action).
"""

from __future__ import annotations

import torch
from torch import nn

from skelact.errors import ConfigError, DataError

GRAPH_LAYERS = ("gin", "gcn")


def check_adjacency(adjacency) -> torch.Tensor:
    """A float32 ``[V, V]`` 0/1 symmetric tensor without self loops, or a :class:`ConfigError`."""
    a = torch.as_tensor(adjacency, dtype=torch.float32)
    if a.dim() != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ConfigError(f"expected a square adjacency [V, V], got {tuple(a.shape)}", field="adjacency")
    if not torch.equal(a, a.t()) or bool(a.diagonal().any()):
        raise ConfigError("expected a symmetric adjacency without self loops", field="adjacency")
    return a.contiguous()


class GINLayer(nn.Module):
    """``h'_v = MLP((1 + eps) h_v + sum_{u in N(v)} h_u)`` on graphs ``[B, V, D_in]`` -> ``[B, V, D_out]``."""

    def __init__(self, in_features: int, out_features: int, mlp_ratio: int = 2, eps: float = 0.0,
                 train_eps: bool = False):
        super().__init__()
        hidden = int(mlp_ratio) * int(out_features)
        if hidden < 1:
            raise ConfigError(f"must be a positive integer, got {mlp_ratio!r}", field="mlp_ratio")
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))
        eps_tensor = torch.tensor(float(eps))
        if train_eps:
            self.eps = nn.Parameter(eps_tensor)
        else:
            self.register_buffer("eps", eps_tensor)

    def aggregate(self, h: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """``(1 + eps) h_v + sum of the neighbours' h_u``: ``[B, V, D]``."""
        return (1.0 + self.eps) * h + torch.matmul(adjacency, h)

    def forward(self, h: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.aggregate(h, adjacency))


def normalized_with_self_loops(adjacency: torch.Tensor) -> torch.Tensor:
    """``D^-1/2 (A + I) D^-1/2`` (Kipf and Welling's renormalisation trick)."""
    a = adjacency + torch.eye(adjacency.shape[0], dtype=adjacency.dtype, device=adjacency.device)
    d = a.sum(dim=1).rsqrt()
    return d[:, None] * a * d[None, :]


class GCNLayer(nn.Module):
    """``h' = D^-1/2 (A + I) D^-1/2 h W + b`` on graphs ``[B, V, D_in]`` -> ``[B, V, D_out]``."""

    def __init__(self, in_features: int, out_features: int, **_ignored):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, h: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return torch.matmul(normalized_with_self_loops(adjacency), self.linear(h))


def graph_layer(kind: str, in_features: int, out_features: int, mlp_ratio: int = 2, eps: float = 0.0,
                train_eps: bool = False) -> nn.Module:
    """A :class:`GINLayer` (``kind='gin'``) or :class:`GCNLayer` (``'gcn'``)."""
    if kind == "gin":
        return GINLayer(in_features, out_features, mlp_ratio, eps, train_eps)
    if kind == "gcn":
        return GCNLayer(in_features, out_features)
    raise ConfigError(f"unknown graph layer {kind!r}; expected one of {', '.join(GRAPH_LAYERS)}", field="graph_layer")


class GraphEncoder(nn.Module):
    """Joint coordinates ``[B, V, C]`` -> joint features ``[B, V, D]`` on the graph ``adjacency``.

    ``embed`` is the linear joint embedding ``C -> D``; ``encode`` runs ``num_layers`` graph layers (each followed
    by a ReLU, as GraphMAE's encoder) on embedded features. ``forward = encode(embed(x))``.
    """

    def __init__(self, adjacency, in_channels: int, hidden_channels: int = 64, num_layers: int = 3,
                 graph_layer_type: str = "gin", mlp_ratio: int = 2, eps: float = 0.0, train_eps: bool = False):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_channels", hidden_channels),
                            ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be a positive integer, got {value!r}", field=name)
        self.register_buffer("adjacency", check_adjacency(adjacency), persistent=False)
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.embedding = nn.Linear(in_channels, hidden_channels)
        self.layers = nn.ModuleList(graph_layer(graph_layer_type, hidden_channels, hidden_channels, mlp_ratio, eps,
                                                train_eps) for _ in range(num_layers))

    @property
    def num_joints(self) -> int:
        return int(self.adjacency.shape[0])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.num_joints, self.in_channels):
            raise DataError(f"expected graphs [..., V={self.num_joints}, C={self.in_channels}], got "
                            f"{tuple(x.shape)}", field="input")
        return self.embedding(x)

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h = torch.relu(layer(h, self.adjacency))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(self.embed(x))
