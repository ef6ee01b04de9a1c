"""Graphs over a joint layout, and the partitions of the neighbourhood that GCN kernels weight separately.

Every function takes a :class:`~skelact.skeleton.layout.Layout` (or the name / YAML path of one) and returns
float32 numpy arrays. A partition is a stack ``A`` of shape ``[K, V, V]`` used as ST-GCN and CTR-GCN use it:
joint ``i`` receives ``sum_j x[j] * A[k, j, i]`` from subset ``k`` (the ``'nkctv,kvw->nctw'`` contraction of
ST-GCN), so column ``i`` of each subset lists who sends to ``i`` and the normalisations divide by column sums.

Strategies, all built from the layout's bones (and ``extra_edges`` where ``include_extra``):

- ``uniform``, ``distance``, ``spatial``: the three partitions of ST-GCN (Yan, Xiong and Lin, "Spatial Temporal
  Graph Convolutional Networks for Skeleton-Based Action Recognition", AAAI 2018, Sec. 3.3 and Eq. 10), computed as
  the official ``net/utils/graph.py`` computes them.
- ``inward_outward`` (alias ``ctrgcn``): ``[I, norm(In), norm(Out)]`` of 2s-AGCN (Shi et al., CVPR 2019) and CTR-GCN
  (Chen et al., ICCV 2021), ``graph/tools.py::get_spatial_graph``.
"""

from __future__ import annotations

import inspect
from os import PathLike
from typing import Callable

import numpy as np

from skelact.errors import LayoutError
from skelact.skeleton.layout import Layout, get_layout

CENTER_DISTANCES = ("capped", "exact")


def _as_layout(layout: Layout | str | PathLike) -> Layout:
    return get_layout(layout)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise LayoutError(f"must be an integer >= {minimum}, got {value!r}", field=name)
    return int(value)


def adjacency(layout: Layout | str | PathLike, include_extra: bool = True) -> np.ndarray:
    """Symmetric 0/1 adjacency ``[V, V]`` of the bones (plus ``extra_edges`` if ``include_extra``), no self loops."""
    lay = _as_layout(layout)
    edges = lay.edges if include_extra else lay.bones
    a = np.zeros((lay.num_joints, lay.num_joints), dtype=np.float32)
    for i, j in edges:
        a[i, j] = a[j, i] = 1.0
    return a


def _hop_distance_from_adjacency(a: np.ndarray, max_hop: int) -> np.ndarray:
    num = a.shape[0]
    dist = np.full((num, num), np.inf, dtype=np.float32)
    reached = np.eye(num, dtype=bool)
    dist[reached] = 0.0
    step = a > 0
    for hop in range(1, max_hop + 1):
        grown = reached | ((reached.astype(np.int64) @ step.astype(np.int64)) > 0)
        new = grown & ~reached
        if not new.any():
            break
        dist[new] = hop
        reached = grown
    return dist


def hop_distance(layout: Layout | str | PathLike, max_hop: int, include_extra: bool = True) -> np.ndarray:
    """Number of edges on the shortest path between every two joints ``[V, V]``; ``inf`` beyond ``max_hop``.

    Same values as ST-GCN's ``get_hop_distance`` (powers of ``A + I`` up to ``max_hop``), including the cap: two
    joints more than ``max_hop`` apart are ``inf``, not their true distance.
    """
    max_hop = _check_int(max_hop, "max_hop", 0)
    return _hop_distance_from_adjacency(adjacency(layout, include_extra), max_hop)


def normalize_digraph(a: np.ndarray) -> np.ndarray:
    """``A @ D^-1`` with ``D`` the column sums: each non-empty column sums to 1 (ST-GCN / CTR-GCN
    ``normalize_digraph``); empty columns stay zero."""
    a = _square(a)
    col = a.sum(axis=0)
    inv = np.zeros_like(col)
    np.divide(1.0, col, out=inv, where=col > 0)
    return (a * inv[None, :]).astype(np.float32)


def normalize_undigraph(a: np.ndarray) -> np.ndarray:
    """``D^-1/2 A D^-1/2`` with ``D`` the column sums (ST-GCN ``normalize_undigraph``); empty columns stay zero."""
    a = _square(a)
    col = a.sum(axis=0)
    inv_sqrt = np.zeros_like(col)
    np.divide(1.0, np.sqrt(np.maximum(col, 0.0)), out=inv_sqrt, where=col > 0)
    return (inv_sqrt[:, None] * a * inv_sqrt[None, :]).astype(np.float32)


def _square(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a square [V, V] matrix, got shape {a.shape}")
    return a


def _valid_hops(max_hop: int, dilation: int) -> list[int]:
    max_hop = _check_int(max_hop, "max_hop", 0)
    dilation = _check_int(dilation, "dilation", 1)
    return list(range(0, max_hop + 1, dilation))


def _normalized_neighbourhood(hop: np.ndarray, hops: list[int]) -> np.ndarray:
    """ST-GCN's ``normalize_digraph`` of the 0/1 matrix of joint pairs whose distance is one of ``hops``."""
    return normalize_digraph(np.isin(hop, hops).astype(np.float32))


def uniform_partition(layout: Layout | str | PathLike, max_hop: int = 1, dilation: int = 1,
                      include_extra: bool = True) -> np.ndarray:
    """ST-GCN uni-labeling (Sec. 3.3): one subset ``[1, V, V]``, the column-normalised neighbourhood with self."""
    hops = _valid_hops(max_hop, dilation)
    hop = hop_distance(layout, max_hop, include_extra)
    return _normalized_neighbourhood(hop, hops)[None]


def distance_partition(layout: Layout | str | PathLike, max_hop: int = 1, dilation: int = 1,
                       include_extra: bool = True) -> np.ndarray:
    """ST-GCN distance partitioning (Sec. 3.3): one subset per hop distance ``0, d, 2d, ... <= max_hop``
    (``[max_hop + 1, V, V]`` for ``dilation=1``), each the matching entries of the jointly normalised
    neighbourhood, so the subsets sum to :func:`uniform_partition`."""
    hops = _valid_hops(max_hop, dilation)
    hop = hop_distance(layout, max_hop, include_extra)
    norm = _normalized_neighbourhood(hop, hops)
    return np.stack([np.where(hop == h, norm, 0.0) for h in hops]).astype(np.float32)


def spatial_partition(layout: Layout | str | PathLike, max_hop: int = 1, dilation: int = 1,
                      include_extra: bool = True, center_distance: str = "capped") -> np.ndarray:
    """ST-GCN spatial configuration partitioning (Sec. 3.3, Eq. 10 with the adjacency split into subsets).

    The neighbourhood (joint pairs at hop distance ``0, d, 2d, ... <= max_hop``) is column-normalised once, as in
    :func:`uniform_partition`, and its entries ``[j, i]`` are dealt into subsets by comparing the distances
    ``r`` of sender ``j`` and receiver ``i`` to the layout's centre joint (in a forest: to the root of each
    joint's own tree): hop 0 gives the root subset; every
    further valid hop gives two subsets, ``r[j] >= r[i]`` (ties included) and ``r[j] < r[i]``. So ``K = 3`` for
    ``max_hop=1`` and ``K = 2 * len(valid hops) - 1`` in general, the order of the official code.

    ``center_distance`` chooses ``r``:

    - ``"capped"`` (default, reproduces the official ST-GCN code and pyskl's ``stgcn_spatial``, hence their
      checkpoints and numbers): ``r`` is read from the hop distances capped at ``max_hop``, so every joint more
      than ``max_hop`` hops from the centre has ``r = inf``; edges between two such joints tie and fall in the
      first subset in both directions (reported in open-mmlab/mmskeleton issue #367).
    - ``"exact"``: ``r`` is the true graph distance to the centre, as the paper describes the rule.

    The paper calls the subsets root, centripetal and centrifugal; read in the official code's
    ``[sender, receiver]`` convention, the first non-root subset holds senders at least as far from the centre as
    the receiver (mmskeleton issue #245 discusses the naming).
    """
    if center_distance not in CENTER_DISTANCES:
        raise LayoutError(f"unknown value {center_distance!r}; expected one of {list(CENTER_DISTANCES)}",
                          field="center_distance")
    lay = _as_layout(layout)
    hops = _valid_hops(max_hop, dilation)
    hop = hop_distance(lay, max_hop, include_extra)
    norm = _normalized_neighbourhood(hop, hops)
    if center_distance == "capped":
        r = _distance_to_own_root(lay, hop)
    else:
        r = _distance_to_own_root(lay, hop_distance(lay, lay.num_joints, include_extra))
    # further_or_equal[j, i]: sender j is at least as far from the centre as receiver i
    further_or_equal = r[:, None] >= r[None, :]
    subsets = []
    for h in hops:
        at_hop = hop == h
        if h == 0:
            subsets.append(np.where(at_hop, norm, 0.0))
            continue
        subsets.append(np.where(at_hop & further_or_equal, norm, 0.0))
        subsets.append(np.where(at_hop & ~further_or_equal, norm, 0.0))
    return np.stack(subsets).astype(np.float32)


def inward_outward_partition(layout: Layout | str | PathLike, include_extra: bool = True) -> np.ndarray:
    """``[I, normalize_digraph(In), normalize_digraph(Out)]`` of 2s-AGCN / CTR-GCN ``get_spatial_graph``.

    ``In[parent, child] = 1`` for every bone, i.e. their ``edge2mat`` of the inward pairs ``(child, parent)``
    (``A[j, i] = 1`` for pair ``(i, j)``); ``Out = In.T``. Bones are oriented towards the layout's centre (the
    layout's ``parents``; in a forest towards the root of each tree). An extra edge is oriented the same way by
    graph distance to the centre (to each joint's own root); one between two joints equally far from it is put in
    both directions, so ``Out == In.T`` still holds before normalisation.
    """
    lay = _as_layout(layout)
    inward = _inward_matrix(lay, include_extra)
    eye = np.eye(lay.num_joints, dtype=np.float32)
    return np.stack([eye, normalize_digraph(inward), normalize_digraph(inward.T)]).astype(np.float32)


def _distance_to_own_root(lay: Layout, hop: np.ndarray) -> np.ndarray:
    """Each joint's entry of ``hop`` towards the root of its own tree: for a one-tree layout the column of the
    centre, as in ST-GCN; in a forest (issue 27) every tree is measured from its own root, so no joint is at an
    infinite distance merely for having no bone path to the centre. A virtual centre's tree is measured from its
    anchor joint ``lay.center``."""
    return hop[np.arange(lay.num_joints), lay.root_of_joint()]


def _inward_matrix(lay: Layout, include_extra: bool) -> np.ndarray:
    inward = np.zeros((lay.num_joints, lay.num_joints), dtype=np.float32)
    for child, parent in lay.bones:
        inward[parent, child] = 1.0
    if include_extra and lay.extra_edges:
        r = _distance_to_own_root(lay, hop_distance(lay, lay.num_joints, include_extra=True))
        for a, b in lay.extra_edges:
            if r[a] >= r[b]:
                inward[b, a] = 1.0
            if r[b] >= r[a]:
                inward[a, b] = 1.0
    return inward


def k_hop_adjacency(layout: Layout | str | PathLike, k: int, with_self: bool = False,
                    include_extra: bool = True) -> np.ndarray:
    """0/1 matrix of joint pairs exactly ``k`` hops apart (plus the identity if ``with_self``); ``k = 0`` gives
    the identity. Same as ``k_adjacency`` of MS-G3D / pyskl on the undirected adjacency."""
    k = _check_int(k, "k", 0)
    hop = hop_distance(layout, k, include_extra)
    out = (hop == k).astype(np.float32)
    if with_self and k > 0:
        out += np.eye(out.shape[0], dtype=np.float32)
    return out


STRATEGIES: dict[str, Callable[..., np.ndarray]] = {
    "spatial": spatial_partition,
    "uniform": uniform_partition,
    "distance": distance_partition,
    "inward_outward": inward_outward_partition,
    "ctrgcn": inward_outward_partition,
}


def build_partition(layout: Layout | str | PathLike, strategy: str, **options) -> np.ndarray:
    """The ``[K, V, V]`` partition named by ``strategy`` (see :data:`STRATEGIES`), with that builder's options.

    Unknown strategies and options raise :class:`~skelact.errors.LayoutError` naming them and what is accepted,
    since both usually come from a config file.
    """
    builder = STRATEGIES.get(strategy) if isinstance(strategy, str) else None
    if builder is None:
        raise LayoutError(f"unknown graph partition strategy {strategy!r}; expected one of {sorted(STRATEGIES)}",
                          field="strategy")
    accepted = [p for p in inspect.signature(builder).parameters if p != "layout"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise LayoutError(f"unknown option(s) {unknown} for strategy {strategy!r}; accepted: {accepted}",
                          field=unknown[0])
    return builder(layout, **options)


__all__ = [
    "STRATEGIES",
    "adjacency",
    "build_partition",
    "distance_partition",
    "hop_distance",
    "inward_outward_partition",
    "k_hop_adjacency",
    "normalize_digraph",
    "normalize_undigraph",
    "spatial_partition",
    "uniform_partition",
]
