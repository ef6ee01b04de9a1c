"""Modalities (joint, bone, joint motion, bone motion) against CTR-GCN's definitions and hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skelact.data.transforms import (
    MODALITIES,
    ToModality,
    bone_vectors,
    build_transform,
    modality_name,
    modality_scores,
    motion,
    to_modality,
)
from skelact.errors import ConfigError
from skelact.skeleton.layout import Layout, available_layouts, get_layout

# CTR-GCN feeders/bone_pairs.py `ntu_pairs`: 1-based (joint, parent); (21, 21) is the root
CTRGCN_NTU_PAIRS = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
    (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (21, 21), (23, 8),
    (24, 25), (25, 12),
)
# CTR-GCN feeders/feeder_ucla.py `self.bone`: 1-based (joint, parent); (3, 3) is the root
CTRGCN_UCLA_PAIRS = (
    (1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11), (13, 1),
    (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
)


def ctrgcn_bone(data: np.ndarray, pairs) -> np.ndarray:
    """Bones as CTR-GCN's feeders compute them: zeros, then joint minus partner for every listed pair."""
    out = np.zeros_like(data)
    for v1, v2 in pairs:
        out[..., v1 - 1, :] = data[..., v1 - 1, :] - data[..., v2 - 1, :]
    return out


def layout_from_pairs(pairs, name: str) -> Layout:
    joints = [f"j{k}" for k in range(len(pairs))]
    parents = [None] * len(pairs)
    root = None
    for v1, v2 in pairs:
        if v1 == v2:
            root = joints[v1 - 1]
        else:
            parents[v1 - 1] = joints[v2 - 1]
    return Layout.from_dict({"name": name, "joints": joints, "parents": parents, "center": root})


def builtin(name: str, joints: int) -> Layout:
    if name not in available_layouts():
        pytest.skip(f"built-in layout {name!r} is not written yet (skelact/skeleton/layouts/{name}.yaml)")
    layout = get_layout(name)
    assert layout.num_joints == joints
    return layout


def ucla_keypoints(shared_data, name: str) -> np.ndarray:
    with open(shared_data / "nw_ucla" / "all_sqe" / f"{name}.json") as f:
        return np.asarray(json.load(f)["skeletons"], dtype=np.float32)[None]  # [1, T, 20, 3]


def test_builtin_ntu25_bones_are_ctrgcn_ntu_pairs():
    layout = builtin("ntu25", 25)
    assert {(c + 1, p + 1) for c, p in layout.bones} | {(layout.center + 1,) * 2} == set(CTRGCN_NTU_PAIRS)
    kp = np.random.default_rng(0).normal(size=(2, 7, 25, 3)).astype(np.float32)
    np.testing.assert_array_equal(to_modality(kp, layout, "bone"), ctrgcn_bone(kp, CTRGCN_NTU_PAIRS))


def test_builtin_nw_ucla20_bones_are_ctrgcn_ucla_pairs(shared_data):
    layout = builtin("nw_ucla20", 20)
    assert {(c + 1, p + 1) for c, p in layout.bones} | {(layout.center + 1,) * 2} == set(CTRGCN_UCLA_PAIRS)
    kp = ucla_keypoints(shared_data, "a01_s01_e00_v01")
    np.testing.assert_array_equal(to_modality(kp, layout, "bone"), ctrgcn_bone(kp, CTRGCN_UCLA_PAIRS))


def test_bone_from_parents_equals_the_pair_loop_on_real_data(shared_data):
    layout = layout_from_pairs(CTRGCN_UCLA_PAIRS, "ucla_pairs")
    kp = ucla_keypoints(shared_data, "a08_s02_e01_v03")
    bone = to_modality(kp, layout, "bone")
    np.testing.assert_array_equal(bone, ctrgcn_bone(kp, CTRGCN_UCLA_PAIRS))
    np.testing.assert_array_equal(bone[..., layout.center, :], 0)  # the centre's bone is zero
    ntu = layout_from_pairs(CTRGCN_NTU_PAIRS, "ntu_pairs")
    assert ntu.center == 20 and ntu.parents[21] == 22 and ntu.parents[22] == 7  # tip -> thumb -> hand


def test_motion_by_hand_and_as_ctrgcn_computes_it(shared_data):
    t = np.arange(5, dtype=np.float32)
    x = np.broadcast_to((t ** 2)[None, :, None, None], (1, 5, 2, 3))
    np.testing.assert_array_equal(to_modality(x, None, "joint_motion")[0, :, 0, 0], [1, 3, 5, 7, 0])
    kp = ucla_keypoints(shared_data, "a01_s01_e00_v01")
    ref = np.zeros_like(kp)
    ref[:, :-1] = kp[:, 1:] - kp[:, :-1]  # CTR-GCN: vel / 'motion', last frame zero
    np.testing.assert_array_equal(to_modality(kp, None, "jm"), ref)
    layout = layout_from_pairs(CTRGCN_UCLA_PAIRS, "ucla_pairs")
    bone = ctrgcn_bone(kp, CTRGCN_UCLA_PAIRS)
    ref_bm = np.zeros_like(bone)
    ref_bm[:, :-1] = bone[:, 1:] - bone[:, :-1]  # CTR-GCN: bone first, then motion
    np.testing.assert_allclose(to_modality(kp, layout, "bone_motion"), ref_bm, atol=1e-6)
    np.testing.assert_array_equal(to_modality(kp, layout, "joint"), kp)


def test_modalities_work_on_a_batch():
    layout = layout_from_pairs(CTRGCN_UCLA_PAIRS, "ucla_pairs")
    batch = np.random.default_rng(1).normal(size=(4, 2, 6, 20, 3)).astype(np.float32)
    for name in MODALITIES:
        out = to_modality(batch, layout, name)
        assert out.shape == batch.shape and out.dtype == np.float32
        np.testing.assert_array_equal(out[2], to_modality(batch[2], layout, name))
    np.testing.assert_array_equal(motion(batch)[:, :, -1], 0)
    np.testing.assert_array_equal(bone_vectors(batch, layout)[..., 2, :], 0)


def test_modality_scores_by_hand():
    layout = Layout.from_dict({"joints": ["a", "b", "c"], "bones": [["b", "a"], ["c", "b"]], "center": "a"})
    s = np.array([[[1.0, 0.5, 0.0], [0.0, 1.0, 1.0]]])  # [M=1, T=2, V=3]
    np.testing.assert_allclose(modality_scores(s, layout, "bone"), [[[1.0, 0.75, 0.25], [0.0, 0.5, 1.0]]])
    np.testing.assert_allclose(modality_scores(s, layout, "joint_motion"), [[[0.5, 0.75, 0.5], [0, 0, 0]]])
    np.testing.assert_allclose(modality_scores(s, layout, "bone_motion"), [[[0.5, 0.625, 0.625], [0, 0, 0]]])
    np.testing.assert_array_equal(modality_scores(s, layout, "joint"), s)


def test_to_modality_transform_and_names(shared_data):
    layout = layout_from_pairs(CTRGCN_UCLA_PAIRS, "ucla_pairs")
    kp = ucla_keypoints(shared_data, "a12_s09_e04_v03")
    sample = {"keypoints": kp, "scores": np.ones(kp.shape[:3], np.float32), "layout": layout, "label": 9}
    out = build_transform({"type": "ToModality", "name": "b"})(sample, np.random.default_rng(0))
    assert out["modality"] == "bone" and out["label"] == 9
    np.testing.assert_array_equal(out["keypoints"], ctrgcn_bone(kp, CTRGCN_UCLA_PAIRS))
    np.testing.assert_array_equal(out["scores"], 1)
    assert sample["keypoints"] is kp and "modality" not in sample
    assert [modality_name(n) for n in ("j", "b", "jm", "bm", "joint-motion")] == \
        ["joint", "bone", "joint_motion", "bone_motion", "joint_motion"]
    with pytest.raises(ConfigError) as e:
        build_transform({"type": "ToModality", "name": "velocity"}, source="exp.yaml")
    assert e.value.field == "transform.name" and "velocity" in str(e.value)
    with pytest.raises(ConfigError) as e:
        to_modality(kp, None, "bone")
    assert e.value.field == "layout"
    with pytest.raises(ConfigError) as e:
        ToModality("bone_motion")({"keypoints": kp, "name": "a12"}, np.random.default_rng(0))
    assert e.value.path == "a12" and e.value.field == "layout"
    joint_only = ToModality("jm")({"keypoints": kp}, np.random.default_rng(0))  # no layout needed
    assert joint_only["keypoints"].shape == kp.shape
