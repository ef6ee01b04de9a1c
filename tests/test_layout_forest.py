"""Layouts with several trees (a forest) or a virtual centre (issue 27): graphs, bones, models and centring.

Expected values are computed by hand below; the built-in layouts are compared with fingerprints of the
partitions that the single-tree code produced before forests existed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from skelact.data.transforms.modality import bone_vectors
from skelact.data.transforms.view import CenterOnJoint
from skelact.errors import LayoutError
from skelact.models import CTRGCN, STGCN
from skelact.skeleton.graph import adjacency, build_partition
from skelact.skeleton.layout import Layout, get_layout, load_layout

# two trees: a0 - a1 - a2 (root a0, the centre) and b0 - b1 (root b0)
FOREST = {"name": "two_trees", "joints": ["a0", "a1", "a2", "b0", "b1"], "parents": [-1, 0, 1, -1, 3],
          "center": "a0"}


def forest() -> Layout:
    return Layout.from_dict(FOREST)


def test_parents_list_with_two_roots_builds_a_forest():
    lay = forest()
    assert lay.parents == (0, 0, 1, 3, 3)
    assert lay.roots == (0, 3) and lay.center == 0
    assert lay.bones == ((1, 0), (2, 1), (4, 3))
    assert list(lay.root_of_joint()) == [0, 0, 0, 3, 3]


def test_bones_with_roots_give_the_same_forest_and_round_trip():
    spec = {"name": "two_trees", "joints": FOREST["joints"], "bones": [["a1", "a0"], ["a2", "a1"], ["b1", "b0"]],
            "center": "a0", "roots": ["a0", "b0"]}
    lay = Layout.from_dict(spec)
    assert lay == forest()
    assert Layout.from_dict(lay.to_dict()) == lay
    # a root chosen elsewhere in the second tree re-orients only that tree
    other = Layout.from_dict({**spec, "roots": ["a0", "b1"]})
    assert other.parents == (0, 0, 1, 4, 4)


@pytest.mark.parametrize("changes, field, words", [
    ({"roots": None, "parents": None, "bones": [["a1", "a0"], ["a2", "a1"], ["b1", "b0"]]}, "bones",
     "['b0', 'b1'] are not connected to the centre 'a0'; if the skeleton is several trees"),
    ({"roots": ["a0", "b0", "b1"]}, "roots", "'b1' is in a tree that already has a root"),
    ({"roots": ["a0"]}, "roots", "['b0', 'b1'] are in no tree with a root"),
    ({"roots": ["a1", "b0"]}, "roots", "'a1' is in the tree of the centre 'a0'"),
    ({"center": {"midpoint": ["a1", "b1"]}}, "center", "['b1'] are not in the same tree as 'a1'"),
    ({"center": {"mid": ["a1"]}}, "center", "{midpoint: [joint, joint, ...]}"),
])
def test_bad_forest_is_a_layout_error_naming_the_field(tmp_path, changes, field, words):
    spec = {**FOREST, **changes}
    spec = {k: v for k, v in spec.items() if v is not None}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_adjacency_is_block_diagonal_by_tree():
    a = adjacency(forest())
    assert not a[:3, 3:].any() and not a[3:, :3].any()
    np.testing.assert_array_equal(a[:3, :3], [[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(a[3:, 3:], [[0, 1], [1, 0]])


def test_spatial_partition_measures_each_tree_from_its_own_root():
    # Column sums of A + I: a0 2, a1 3, a2 2, b0 2, b1 2; distances to own root r = [0, 1, 2, 0, 1].
    # Entry [j, i] goes to subset 1 when r[j] >= r[i] (sender further out), else subset 2.
    want = np.zeros((3, 5, 5))
    want[0] = np.diag([1 / 2, 1 / 3, 1 / 2, 1 / 2, 1 / 2])
    want[1][1, 0], want[1][2, 1], want[1][4, 3] = 1 / 2, 1 / 3, 1 / 2
    want[2][0, 1], want[2][1, 2], want[2][3, 4] = 1 / 3, 1 / 2, 1 / 2
    for distance in ("capped", "exact"):
        got = build_partition(forest(), "spatial", center_distance=distance)
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_inward_outward_partition_points_to_each_root():
    inward = np.zeros((5, 5))
    inward[0, 1] = inward[1, 2] = inward[3, 4] = 1.0  # In[parent, child]; each column has one entry
    got = build_partition(forest(), "inward_outward")
    np.testing.assert_array_equal(got, np.stack([np.eye(5), inward, inward.T]))


def test_bone_modality_is_zero_at_both_roots():
    x = np.random.default_rng(0).normal(size=(1, 4, 5, 3)).astype(np.float32)
    bones = bone_vectors(x, forest())
    assert not bones[..., [0, 3], :].any()
    np.testing.assert_array_equal(bones[..., 1, :], x[..., 1, :] - x[..., 0, :])
    np.testing.assert_array_equal(bones[..., 2, :], x[..., 2, :] - x[..., 1, :])
    np.testing.assert_array_equal(bones[..., 4, :], x[..., 4, :] - x[..., 3, :])


@pytest.mark.parametrize("model_class", [CTRGCN, STGCN])
def test_gcn_forward_pass_on_a_forest(model_class):
    model = model_class(4, layout=forest(), num_persons=1, base_channels=8, num_blocks=2)
    logits = model(torch.randn(2, 1, 8, 5, 3))  # [N, M, T, V, C]
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()


def hip_centred_ucla() -> Layout:
    spec = get_layout("nw_ucla20").to_dict()
    spec["center"] = {"midpoint": ["left_hip", "right_hip"]}
    return Layout.from_dict(spec)


def test_virtual_centre_is_anchored_at_the_joint_between_the_hips():
    lay = hip_centred_ucla()
    assert lay.center_joints == (12, 16) and lay.is_virtual_center
    assert lay.center == 0  # hip_center, one hop from each hip
    assert Layout.from_dict(lay.to_dict()) == lay
    hip_rooted = Layout.from_dict({**get_layout("nw_ucla20").to_dict(), "center": "hip_center"})
    assert lay.parents == hip_rooted.parents
    np.testing.assert_array_equal(build_partition(lay, "spatial"), build_partition(hip_rooted, "spatial"))


def test_virtual_centre_centres_a_real_nw_ucla_clip_on_its_hips(shared_data):
    raw = json.loads((shared_data / "nw_ucla" / "all_sqe" / "a01_s01_e00_v01.json").read_text())
    kp = np.asarray(raw["skeletons"], dtype=np.float32)[None, :6]  # [1, 6, 20, 3]
    sample = {"keypoints": kp, "scores": np.ones(kp.shape[:3], np.float32), "layout": hip_centred_ucla(),
              "name": "a01_s01_e00_v01"}
    x = kp.astype(np.float64)
    first = CenterOnJoint("center", frame="first")(sample, np.random.default_rng(0))["keypoints"]
    np.testing.assert_allclose(first, x - (x[0, 0, 12] + x[0, 0, 16]) / 2, atol=1e-5)
    each = CenterOnJoint("center", frame="each")(sample, np.random.default_rng(0))["keypoints"]
    np.testing.assert_allclose(each, x - (x[:, :, [12]] + x[:, :, [16]]) / 2, atol=1e-5)
    # the midpoint skips a missing hip: with the left hip gone, the right hip alone is the centre
    kp_missing = kp.copy()
    kp_missing[0, :, 12] = 0.0
    each = CenterOnJoint("center", frame="each")({**sample, "keypoints": kp_missing},
                                                 np.random.default_rng(0))["keypoints"]
    np.testing.assert_allclose(each[0, :, 16], 0.0, atol=1e-6)
    assert not each[0, :, 12].any()


# sha256 of the float32 partitions of nw_ucla20 computed by the single-tree code (commit b392a3d)
NW_UCLA20_PARENTS = (1, 2, 2, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18)
NW_UCLA20_PARTITION_SHA256 = {
    "spatial": "eec30f357f8b6fe6147150fb4d0ad34569a7ea49b559314b33f55573f1319166",
    "inward_outward": "c5be4e7cb196fb8928ddf03eba7a297c7daa37ea291ce2cfc907dae00913eba6",
    "uniform": "a5535484f9430f3c93529e01a9b2a9b63ffb4c4ab5559cdda95a8c6f4774dbed",
    "distance": "ec0f6447e662e7f343fb842bfc93a0efbd763aed99033526c13fc2b405a7c789",
}


@pytest.mark.parametrize("strategy", sorted(NW_UCLA20_PARTITION_SHA256))
def test_builtin_nw_ucla20_builds_exactly_as_before(strategy):
    lay = get_layout("nw_ucla20")
    assert lay.parents == NW_UCLA20_PARENTS and lay.roots == (2,) and lay.center_joints == (2,)
    part = np.ascontiguousarray(build_partition(lay, strategy), dtype=np.float32)
    assert hashlib.sha256(part.tobytes()).hexdigest() == NW_UCLA20_PARTITION_SHA256[strategy]


def test_readme_forest_example_builds_two_trees():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in readme.split("```yaml")[1:] if "name: two_arms" in b).split("```")[0]
    lay = Layout.from_dict(yaml.safe_load(block))
    assert lay.roots == (0, 4)
    assert lay.parents == (0, 0, 1, 1, 4, 4, 5, 5)
    assert lay.flip_permutation().tolist() == [4, 5, 6, 7, 0, 1, 2, 3]
