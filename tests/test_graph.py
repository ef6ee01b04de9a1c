"""Graph and partition builders: hand-computed small graph, NTU-25 properties, and re-derived reference rules."""

from __future__ import annotations

import numpy as np
import pytest

from skelact.errors import LayoutError
from skelact.skeleton import Layout, available_layouts, get_layout
from skelact.skeleton.graph import (adjacency, build_partition, distance_partition, hop_distance,
                                    inward_outward_partition, k_hop_adjacency, normalize_digraph,
                                    normalize_undigraph, spatial_partition, uniform_partition)

INF = np.inf

# A six-joint stick figure: the chain pelvis-spine-neck-head with the branch neck-arm-hand. The centre (spine)
# is not at an end, and arm-hand is an edge whose two joints are both more than one hop from the centre, which is
# where ST-GCN's capped centre distance and the exact one disagree.
#   pelvis(0) - spine(1)* - neck(2) - head(3)
#                              \
#                              arm(4) - hand(5)
TOY = Layout.from_dict({
    "name": "toy6",
    "joints": ["pelvis", "spine", "neck", "head", "arm", "hand"],
    "bones": [["pelvis", "spine"], ["neck", "spine"], ["head", "neck"], ["arm", "neck"], ["hand", "arm"]],
    "center": "spine",
})

TOY_ADJACENCY = np.array([
    [0, 1, 0, 0, 0, 0],
    [1, 0, 1, 0, 0, 0],
    [0, 1, 0, 1, 1, 0],
    [0, 0, 1, 0, 0, 0],
    [0, 0, 1, 0, 0, 1],
    [0, 0, 0, 0, 1, 0],
], dtype=np.float32)

# Shortest path lengths; with max_hop=2 everything beyond 2 is inf.
TOY_HOPS_MAX2 = np.array([
    [0, 1, 2, INF, INF, INF],
    [1, 0, 1, 2, 2, INF],
    [2, 1, 0, 1, 1, 2],
    [INF, 2, 1, 0, 2, INF],
    [INF, 2, 1, 2, 0, 1],
    [INF, INF, 2, INF, 1, 0],
], dtype=np.float32)

# The neighbourhood with self loops, A + I, has column sums (degree + 1) = [2, 3, 4, 2, 3, 2]; ST-GCN divides
# every entry of column i by that sum.
H, T, Q = 1 / 2, 1 / 3, 1 / 4
TOY_NORMALIZED = np.array([
    [H, T, 0, 0, 0, 0],
    [H, T, Q, 0, 0, 0],
    [0, T, Q, H, T, 0],
    [0, 0, Q, H, 0, 0],
    [0, 0, Q, 0, T, H],
    [0, 0, 0, 0, T, H],
], dtype=np.float32)
TOY_ROOT = np.diag([H, T, Q, H, T, H]).astype(np.float32)

# Capped distances to the centre (max_hop=1): r = [1, 0, 1, inf, inf, inf]. Entry [j, i] goes to the first
# subset when r[j] >= r[i], to the second when r[j] < r[i]; arm-hand ties at inf, so both directions are first.
TOY_SPATIAL_CAPPED_1 = np.array([
    [0, T, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, T, 0, 0, 0, 0],
    [0, 0, Q, 0, 0, 0],
    [0, 0, Q, 0, 0, H],
    [0, 0, 0, 0, T, 0],
], dtype=np.float32)
TOY_SPATIAL_CAPPED_2 = np.array([
    [0, 0, 0, 0, 0, 0],
    [H, 0, Q, 0, 0, 0],
    [0, 0, 0, H, T, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
], dtype=np.float32)
# Exact distances r = [1, 0, 1, 2, 2, 3]: the arm->hand entry [4, 5] (r 2 < 3) moves to the second subset.
TOY_SPATIAL_EXACT_1 = TOY_SPATIAL_CAPPED_1.copy()
TOY_SPATIAL_EXACT_1[4, 5] = 0
TOY_SPATIAL_EXACT_2 = TOY_SPATIAL_CAPPED_2.copy()
TOY_SPATIAL_EXACT_2[4, 5] = H

# CTR-GCN: In[parent, child] = 1 (parents: pelvis->spine, neck->spine, head->neck, arm->neck, hand->arm). Every
# child has one parent, so In is already column-normalised; Out = In.T has columns spine (2 children), neck (2), arm.
TOY_IN = np.zeros((6, 6), dtype=np.float32)
TOY_IN[1, 0] = TOY_IN[1, 2] = TOY_IN[2, 3] = TOY_IN[2, 4] = TOY_IN[4, 5] = 1
TOY_OUT_NORMALIZED = np.zeros((6, 6), dtype=np.float32)
TOY_OUT_NORMALIZED[0, 1] = TOY_OUT_NORMALIZED[2, 1] = H
TOY_OUT_NORMALIZED[3, 2] = TOY_OUT_NORMALIZED[4, 2] = H
TOY_OUT_NORMALIZED[5, 4] = 1

# Pairs exactly two hops apart: pelvis-neck, spine-head, spine-arm, neck-hand, head-arm.
TOY_TWO_HOPS = np.zeros((6, 6), dtype=np.float32)
for a, b in [(0, 2), (1, 3), (1, 4), (2, 5), (3, 4)]:
    TOY_TWO_HOPS[a, b] = TOY_TWO_HOPS[b, a] = 1


def assert_exact(actual, expected):
    assert actual.dtype == np.float32
    assert actual.shape == np.shape(expected)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-7)


# --- (a) the small graph, by hand -----------------------------------------------------------------------------

def test_toy_adjacency_and_hop_distance():
    assert_exact(adjacency(TOY), TOY_ADJACENCY)
    assert_exact(hop_distance(TOY, max_hop=2), TOY_HOPS_MAX2)
    capped = hop_distance(TOY, max_hop=1)
    assert_exact(capped, np.where(TOY_ADJACENCY > 0, 1, np.where(np.eye(6) > 0, 0, INF)))


def test_normalizations_by_hand():
    path3 = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32)
    assert_exact(normalize_digraph(path3), [[0, 0.5, 0], [1, 0, 1], [0, 0.5, 0]])
    s = 1 / np.sqrt(2)
    assert_exact(normalize_undigraph(path3), [[0, s, 0], [s, 0, s], [0, s, 0]])
    # an empty column stays empty instead of becoming NaN
    lonely = np.array([[1, 0], [1, 0]], dtype=np.float32)
    assert_exact(normalize_digraph(lonely), [[0.5, 0], [0.5, 0]])
    # D^-1/2 A D^-1/2 scales row 1 by column 1's (zero) factor too, as ST-GCN's Dn @ A @ Dn does
    assert_exact(normalize_undigraph(lonely), [[0.5, 0], [0, 0]])
    assert_exact(normalize_digraph(TOY_ADJACENCY + np.eye(6)), TOY_NORMALIZED)


def test_toy_uniform_and_distance_partitions():
    assert_exact(uniform_partition(TOY), TOY_NORMALIZED[None])
    assert_exact(distance_partition(TOY), np.stack([TOY_ROOT, TOY_NORMALIZED - TOY_ROOT]))


def test_toy_spatial_partition_official_capped_centre_distance():
    assert_exact(spatial_partition(TOY), np.stack([TOY_ROOT, TOY_SPATIAL_CAPPED_1, TOY_SPATIAL_CAPPED_2]))


def test_toy_spatial_partition_exact_centre_distance():
    assert_exact(spatial_partition(TOY, center_distance="exact"),
                 np.stack([TOY_ROOT, TOY_SPATIAL_EXACT_1, TOY_SPATIAL_EXACT_2]))


def test_toy_inward_outward_partition():
    assert_exact(inward_outward_partition(TOY), np.stack([np.eye(6), TOY_IN, TOY_OUT_NORMALIZED]))


def test_toy_k_hop_adjacency():
    assert_exact(k_hop_adjacency(TOY, 0), np.eye(6))
    assert_exact(k_hop_adjacency(TOY, 1), TOY_ADJACENCY)
    assert_exact(k_hop_adjacency(TOY, 2), TOY_TWO_HOPS)
    assert_exact(k_hop_adjacency(TOY, 2, with_self=True), TOY_TWO_HOPS + np.eye(6))
    assert_exact(k_hop_adjacency(TOY, 5), np.zeros((6, 6)))


def test_toy_larger_neighbourhoods_and_dilation():
    two_hop_neighbourhood = (TOY_HOPS_MAX2 <= 2).astype(np.float32)
    spatial2 = spatial_partition(TOY, max_hop=2)
    assert spatial2.shape == (5, 6, 6)
    assert_exact(spatial2.sum(0), normalize_digraph(two_hop_neighbourhood))
    assert distance_partition(TOY, max_hop=2).shape == (3, 6, 6)
    # dilation 2 keeps hops {0, 2}: the 1-hop neighbours drop out of the neighbourhood
    dilated = uniform_partition(TOY, max_hop=2, dilation=2)[0]
    assert_exact(dilated, normalize_digraph(np.eye(6) + TOY_TWO_HOPS))
    assert spatial_partition(TOY, max_hop=2, dilation=2).shape == (3, 6, 6)


# --- (b) NTU-25 known properties ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ntu():
    return get_layout("ntu25")


def test_ntu_adjacency_is_symmetric_with_24_edges(ntu):
    a = adjacency(ntu)
    assert a.shape == (25, 25)
    assert (a == a.T).all() and (np.diag(a) == 0).all()
    assert a.sum() == 2 * 24
    assert set(np.unique(a)) == {0.0, 1.0}


def test_ntu_hop_distances_between_known_joints(ntu):
    hop = hop_distance(ntu, max_hop=25)
    # spine_base -> spine_mid -> spine_shoulder -> neck -> head
    assert hop[ntu.index("spine_base"), ntu.index("head")] == 4
    # foot-ankle-knee-hip-spine_base-hip-knee-ankle-foot
    assert hop[ntu.index("left_foot"), ntu.index("right_foot")] == 8
    # tip-thumb-hand-wrist-elbow-shoulder-spine_shoulder and back down the other arm
    assert hop[ntu.index("left_hand_tip"), ntu.index("right_hand_tip")] == 12
    assert hop[ntu.index("left_hand_tip"), ntu.index("left_hand")] == 2
    assert np.isinf(hop_distance(ntu, max_hop=7)[ntu.index("left_foot"), ntu.index("right_foot")])
    assert (hop == hop.T).all()


def test_ntu_partitions_shapes_column_sums_and_symmetry(ntu):
    spatial = spatial_partition(ntu)
    assert spatial.shape == (3, 25, 25) and spatial.dtype == np.float32
    assert_exact(spatial.sum(axis=(0, 1)), np.ones(25))  # every joint's neighbourhood weights sum to 1
    uniform = uniform_partition(ntu)[0]
    support = uniform > 0
    assert (support == support.T).all()
    assert_exact(support.astype(np.float32), adjacency(ntu) + np.eye(25))
    assert_exact(spatial.sum(0), uniform)
    assert_exact(distance_partition(ntu).sum(0), uniform)

    identity, inward, outward = inward_outward_partition(ntu)
    assert_exact(identity, np.eye(25))
    assert ((inward > 0) == (outward > 0).T).all()
    assert (inward > 0).sum() == 24
    # normalize_digraph: each column with an entry sums to 1; the centre has no parent, leaves have no children
    for matrix in (inward, outward):
        sums = matrix.sum(axis=0)
        assert_exact(sums[sums > 0], np.ones(int((sums > 0).sum())))
    assert inward[:, ntu.center].sum() == 0
    # Out has a column for every joint with children: all but the 5 leaves (head, both hand tips, both feet)
    leaves = [ntu.joints[v] for v in range(25) if adjacency(ntu)[v].sum() == 1]
    assert sorted(leaves) == ["head", "left_foot", "left_hand_tip", "right_foot", "right_hand_tip"]
    assert (outward.sum(axis=0) > 0).sum() == 25 - 5


def test_ntu_outward_of_the_centre_has_its_four_children(ntu):
    _, _, outward = inward_outward_partition(ntu)
    children = np.flatnonzero(outward[:, ntu.center])
    assert sorted(ntu.joints[v] for v in children) == ["left_shoulder", "neck", "right_shoulder", "spine_mid"]
    assert_exact(outward[children, ntu.center], np.full(4, 0.25))


# --- (c) exact equality with the reference rules, re-derived here from their descriptions ---------------------

def reference_hops(num, edges):
    """Floyd-Warshall shortest paths, independent of the library's matrix-power search."""
    dist = np.full((num, num), np.inf)
    np.fill_diagonal(dist, 0)
    for a, b in edges:
        dist[a, b] = dist[b, a] = 1
    for k in range(num):
        dist = np.minimum(dist, dist[:, [k]] + dist[[k], :])
    return dist


def reference_stgcn_spatial(num, edges, center, max_hop, dilation=1, exact=False):
    """ST-GCN's spatial configuration as its code behaves: neighbourhood = pairs within the valid hops, divided by
    the receiver's (column's) neighbourhood size; entry [j, i] (j sends to i) is sorted by the centre distances
    read from the max_hop-capped distance table (or the true table if ``exact``)."""
    full = reference_hops(num, edges)
    capped = np.where(full <= max_hop, full, np.inf)
    valid = list(range(0, max_hop + 1, dilation))
    counts = {i: sum(1 for j in range(num) if capped[j, i] in valid) for i in range(num)}
    r = (full if exact else capped)[:, center]
    subsets = []
    for hop in valid:
        root, same_or_further, closer = (np.zeros((num, num)) for _ in range(3))
        for i in range(num):
            for j in range(num):
                if capped[j, i] != hop:
                    continue
                weight = 1.0 / counts[i]
                if r[j] == r[i]:
                    root[j, i] = weight
                elif r[j] > r[i]:
                    same_or_further[j, i] = weight
                else:
                    closer[j, i] = weight
        if hop == 0:
            subsets.append(root)
        else:
            subsets.append(root + same_or_further)
            subsets.append(closer)
    return np.stack(subsets)


def reference_ctrgcn(num, inward_pairs):
    """CTR-GCN get_spatial_graph: edge2mat puts pair (i, j) at [j, i]; columns divided by their sums."""
    def edge2mat(pairs):
        m = np.zeros((num, num))
        for i, j in pairs:
            m[j, i] = 1
        return m

    def column_normalize(m):
        sums = m.sum(axis=0)
        return m / np.where(sums > 0, sums, 1)[None, :]

    outward_pairs = [(j, i) for i, j in inward_pairs]
    return np.stack([np.eye(num), column_normalize(edge2mat(inward_pairs)), column_normalize(edge2mat(outward_pairs))])


# CTR-GCN graph/ntu_rgb_d.py inward_ori_index (1-based), typed in by hand.
NTU_INWARD_1BASED = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                     (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
                     (22, 23), (23, 8), (24, 25), (25, 12)]
NTU_INWARD = [(c - 1, p - 1) for c, p in NTU_INWARD_1BASED]


@pytest.mark.parametrize("max_hop, dilation", [(1, 1), (2, 1), (3, 2)])
def test_ntu_spatial_equals_the_stgcn_rule(ntu, max_hop, dilation):
    expected = reference_stgcn_spatial(25, NTU_INWARD, 20, max_hop, dilation)
    assert_exact(spatial_partition(ntu, max_hop=max_hop, dilation=dilation), expected)


def test_ntu_spatial_exact_centre_distance_equals_the_paper_rule(ntu):
    assert_exact(spatial_partition(ntu, center_distance="exact"),
                 reference_stgcn_spatial(25, NTU_INWARD, 20, 1, exact=True))
    # The readings differ on NTU. Exact: each of the 24 tree edges has one direction with r[j] < r[i]. Capped:
    # only joints within one hop of the centre have a finite r, so r[j] < r[i] holds for the centre sending to its
    # 4 neighbours and for those 4 sending to their 4 outer neighbours (spine_base, head, both elbows): 8 entries.
    capped, exact = spatial_partition(ntu), spatial_partition(ntu, center_distance="exact")
    assert (exact[2] > 0).sum() == 24
    assert (capped[2] > 0).sum() == 8
    assert_exact(capped.sum(0), exact.sum(0))


def test_ntu_inward_outward_equals_ctrgcn(ntu):
    assert_exact(inward_outward_partition(ntu), reference_ctrgcn(25, NTU_INWARD))


@pytest.mark.parametrize("name", ["nw_ucla20", "coco17", "openpose18", "penn13"])
def test_other_tree_layouts_match_both_reference_rules(name):
    layout = get_layout(name)
    num = layout.num_joints
    assert_exact(inward_outward_partition(layout), reference_ctrgcn(num, list(layout.bones)))
    assert_exact(spatial_partition(layout), reference_stgcn_spatial(num, layout.edges, layout.center, 1))


def test_k_hop_matches_the_matrix_power_rule_of_msg3d(ntu):
    # MS-G3D / pyskl k_adjacency: min((A + I)^k, 1) - min((A + I)^(k-1), 1)
    a_hat = adjacency(ntu).astype(np.float64) + np.eye(25)
    for k in range(1, 5):
        expected = (np.minimum(np.linalg.matrix_power(a_hat, k), 1)
                    - np.minimum(np.linalg.matrix_power(a_hat, k - 1), 1))
        assert_exact(k_hop_adjacency(ntu, k), expected)


# --- layouts with extra (non-tree) edges ------------------------------------------------------------------------

def test_mediapipe_extra_edges_enter_the_adjacency_and_both_directions_on_ties():
    layout = get_layout("mediapipe33")
    assert adjacency(layout).sum() == 2 * 39
    assert adjacency(layout, include_extra=False).sum() == 2 * 32
    identity, inward, outward = inward_outward_partition(layout)
    assert ((inward > 0) == (outward > 0).T).all()
    left, right = layout.index("left_shoulder"), layout.index("right_shoulder")
    # both shoulders are one hop from the nose: their extra edge goes both ways
    assert inward[left, right] > 0 and inward[right, left] > 0
    # the heel is as far from the nose as the foot index, the pinky as far as the index finger
    assert inward[layout.index("left_heel"), layout.index("left_foot_index")] > 0
    tree_only = inward_outward_partition(layout, include_extra=False)
    assert (tree_only[1] > 0).sum() == 32
    spatial = spatial_partition(layout)
    assert_exact(spatial.sum(axis=(0, 1)), np.ones(33))
    assert_exact(spatial, reference_stgcn_spatial(33, layout.edges, layout.center, 1))


# --- dispatch -------------------------------------------------------------------------------------------------

def test_build_partition_dispatches_and_accepts_names(ntu):
    assert_exact(build_partition("ntu25", "spatial"), spatial_partition(ntu))
    assert_exact(build_partition(ntu, "uniform", max_hop=2), uniform_partition(ntu, max_hop=2))
    assert_exact(build_partition(ntu, "distance", max_hop=2), distance_partition(ntu, max_hop=2))
    assert_exact(build_partition(ntu, "ctrgcn"), build_partition(ntu, "inward_outward"))
    assert build_partition(ntu, "spatial", max_hop=2, center_distance="exact").shape == (5, 25, 25)
    for name in available_layouts():
        assert build_partition(name, "ctrgcn").shape[0] == 3


def test_build_partition_typos_name_the_problem(ntu):
    with pytest.raises(LayoutError) as caught:
        build_partition(ntu, "spatail")
    assert caught.value.field == "strategy" and "'spatail'" in str(caught.value) and "spatial" in str(caught.value)
    with pytest.raises(LayoutError, match=r"unknown option\(s\) \['max_hops'\] for strategy 'spatial'"):
        build_partition(ntu, "spatial", max_hops=2)
    with pytest.raises(LayoutError) as caught:
        build_partition(ntu, "inward_outward", max_hop=2)
    assert caught.value.field == "max_hop"
    with pytest.raises(LayoutError, match="center_distance"):
        spatial_partition(ntu, center_distance="true")
    with pytest.raises(LayoutError) as caught:
        spatial_partition(ntu, dilation=0)
    assert caught.value.field == "dilation"
    with pytest.raises(ValueError, match="square"):
        normalize_digraph(np.ones((2, 3)))
