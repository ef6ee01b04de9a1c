"""Per-sample transforms against hand-computed values, the official recipes' formulas and real NW-UCLA samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skelact.data.transforms import (
    PRESETS,
    CenterOnJoint,
    Compose,
    Flip,
    MinMaxNormalize,
    PreNormalize3D,
    RandomBoneScale,
    RandomRotation,
    RandomScale,
    RandomViewRotation,
    Shear,
    TemporalCrop,
    TorsoNormalize,
    UclaSample,
    UniformSample,
    ValidCropResize,
    build_pipeline,
    build_transform,
    ctrgcn_rotation,
    flip_keypoints,
    preset_pipeline,
    resize_time_bilinear,
    sample_from_sequence,
    scale_bones,
    shear_matrix,
    temporal_crop_indices,
    ucla_test_indices,
    ucla_train_indices,
    ucla_view_matrix,
    uniform_sample_indices,
    uniform_sample_test_indices,
    valid_crop_window,
)
from skelact.data.transforms.rotation import axis_rotation, rotation_about, rotation_onto
from skelact.data.sequence import SkeletonSequence
from skelact.errors import ConfigError, DataError, LayoutError
from skelact.skeleton.layout import Layout

# Kinect v1 joint order of NW-UCLA (CTR-GCN all_sqe JSON); CTR-GCN's bone list (feeders/feeder_ucla.py, 1-based
# (child, parent)) gives the tree rooted at the shoulder centre.
UCLA_JOINTS = ["hip_center", "spine", "shoulder_center", "head", "shoulder_left", "elbow_left", "wrist_left",
               "hand_left", "shoulder_right", "elbow_right", "wrist_right", "hand_right", "hip_left", "knee_left",
               "ankle_left", "foot_left", "hip_right", "knee_right", "ankle_right", "foot_right"]
UCLA_PAIRS_1BASED = [(1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10),
                     (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)]


def ucla_layout() -> Layout:
    parents = [None] * 20
    for child, parent in UCLA_PAIRS_1BASED:
        parents[child - 1] = None if child == parent else UCLA_JOINTS[parent - 1]
    flips = [[f"{p}_left", f"{p}_right"] for p in ("shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle",
                                                  "foot")]
    return Layout.from_dict({"name": "ucla_test", "joints": UCLA_JOINTS, "parents": parents,
                             "center": "shoulder_center", "flip_pairs": flips})


def read_ucla(shared_data, name: str) -> dict:
    with open(shared_data / "nw_ucla" / "all_sqe" / f"{name}.json") as f:
        raw = json.load(f)
    kp = np.asarray(raw["skeletons"], dtype=np.float32)[None]  # [1, T, 20, 3]
    return {"keypoints": kp, "scores": np.ones(kp.shape[:3], np.float32), "label": raw["label"] - 1,
            "layout": ucla_layout(), "name": raw["file_name"]}


def bone_lengths(kp: np.ndarray, layout: Layout) -> np.ndarray:
    return np.linalg.norm(kp - kp[..., list(layout.parents), :], axis=-1)


def sample_of(kp, **extra) -> dict:
    return {"keypoints": np.asarray(kp, np.float32), **extra}


# --------------------------------------------------------------------------------------------------- registry


def test_build_transform_from_spec_and_errors_name_the_culprit():
    t = build_transform({"type": "ValidCropResize", "window": 32, "p_interval": [0.9]})
    assert isinstance(t, ValidCropResize) and t.window == 32 and t.p_interval == (0.9,)
    with pytest.raises(ConfigError) as e:
        build_transform({"type": "RandomRotaton"}, source="cfg.yaml", where="train.transforms[1]")
    assert "RandomRotaton" in str(e.value) and e.value.path == "cfg.yaml"
    assert e.value.field == "train.transforms[1].type"
    with pytest.raises(ConfigError) as e:
        build_transform({"type": "Shear", "amplitud": 0.5})
    assert e.value.field == "transform.amplitud" and "amplitude" in str(e.value)
    with pytest.raises(ConfigError) as e:
        build_transform({"type": "UniformSample"})
    assert e.value.field == "transform.clip_len"
    with pytest.raises(ConfigError) as e:
        build_pipeline([{"type": "Flip"}, {"type": "ValidCropResize", "p_interval": [1.0, 0.5]}], source="x.yaml")
    assert e.value.field == "transforms[1].p_interval" and e.value.path == "x.yaml"
    with pytest.raises(ConfigError):
        build_transform({"window": 3})


def test_build_from_omegaconf_yaml():
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create("pipeline:\n  - {type: ValidCropResize, p_interval: [0.5, 1]}\n"
                                     "  - {type: RandomRot, theta: 0.1}\n")
    pipe = build_pipeline(cfg.pipeline)
    assert isinstance(pipe.transforms[1], RandomRotation) and pipe.transforms[1].theta == 0.1
    assert pipe.transforms[0].p_interval == (0.5, 1.0)


def test_compose_applies_in_order_with_the_shared_generator():
    kp = np.random.default_rng(1).normal(size=(2, 80, 5, 3)).astype(np.float32)
    specs = [{"type": "ValidCropResize", "window": 16}, {"type": "Shear"}, {"type": "RandomRotation"}]
    out = build_pipeline(specs)(sample_of(kp), np.random.default_rng(7))
    rng = np.random.default_rng(7)
    s = sample_of(kp)
    for t in (ValidCropResize(window=16), Shear(), RandomRotation()):
        s = t(s, rng)
    np.testing.assert_array_equal(out["keypoints"], s["keypoints"])
    again = Compose(specs)(sample_of(kp), np.random.default_rng(7))
    np.testing.assert_array_equal(out["keypoints"], again["keypoints"])
    assert out["keypoints"].shape == (2, 16, 5, 3) and out["keypoints"].dtype == np.float32


def test_transforms_do_not_write_into_their_input():
    kp = np.random.default_rng(2).normal(size=(1, 30, 20, 3)).astype(np.float32)
    kp.setflags(write=False)
    sample = {"keypoints": kp, "scores": np.ones((1, 30, 20), np.float32), "layout": ucla_layout()}
    for t in (CenterOnJoint(), MinMaxNormalize(), RandomViewRotation(), Flip(p=1.0), RandomBoneScale(),
              PreNormalize3D(center=1), RandomScale(), TemporalCrop(), UclaSample()):
        t(sample, np.random.default_rng(0))
    assert sample["keypoints"] is kp


# --------------------------------------------------------------------------------------------------- temporal


def test_bilinear_resize_of_a_ramp_is_a_ramp():
    ramp = np.arange(4, dtype=np.float32).reshape(1, 4)
    # upsampling 4 -> 8: positions (i + 0.5) / 2 - 0.5, clamped to [0, 3]
    np.testing.assert_allclose(resize_time_bilinear(ramp, 8)[0], [0, .25, .75, 1.25, 1.75, 2.25, 2.75, 3])
    ramp8 = np.arange(8, dtype=np.float32).reshape(1, 8)
    np.testing.assert_allclose(resize_time_bilinear(ramp8, 4)[0], [0.5, 2.5, 4.5, 6.5])
    kp = np.random.default_rng(0).normal(size=(2, 64, 3, 3))
    np.testing.assert_array_equal(resize_time_bilinear(kp, 64), kp)


def test_bilinear_resize_matches_torch_interpolate_as_ctrgcn_calls_it():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for t, window in [(44, 64), (300, 64), (100, 52), (7, 64)]:
        kp = rng.normal(size=(2, t, 25, 3)).astype(np.float32)  # M, T, V, C
        ctv = torch.tensor(kp.transpose(3, 1, 2, 0))  # their C, T, V, M
        flat = ctv.permute(0, 2, 3, 1).reshape(3 * 25 * 2, t)[None, None]
        ref = torch.nn.functional.interpolate(flat, size=(3 * 25 * 2, window), mode="bilinear",
                                              align_corners=False)
        ref = ref.reshape(3, 25, 2, window).permute(2, 3, 1, 0).numpy()  # M, T, V, C
        np.testing.assert_allclose(resize_time_bilinear(kp, window), ref, atol=1e-6)


def test_valid_crop_window_test_mode_is_the_centre_crop():
    # CTR-GCN: bias = int((1 - 0.95) * 100 / 2) = 2 -> frames 2..97
    assert valid_crop_window(100, (0.95,), None) == (2, 96)
    assert valid_crop_window(30, (0.95,), None) == (0, 30)
    # (1 - 0.9) is 0.0999... in floating point, so CTR-GCN's int() gives 14, not 15
    assert valid_crop_window(300, (0.9,), None) == (14, 272)


def test_valid_crop_window_training_bounds_and_determinism():
    lengths = set()
    for seed in range(200):
        begin, length = valid_crop_window(200, (0.5, 1.0), np.random.default_rng(seed))
        assert 100 <= length <= 200 and 0 <= begin and begin + length <= 200
        lengths.add(length)
    assert min(lengths) < 110 and max(lengths) > 190
    # the lower bound of 64 frames, but never more than the valid frames
    assert all(valid_crop_window(80, (0.5, 1.0), np.random.default_rng(s))[1] >= 64 for s in range(50))
    assert all(valid_crop_window(50, (0.5, 1.0), np.random.default_rng(s)) == (0, 50) for s in range(20))
    a = valid_crop_window(500, (0.5, 1.0), np.random.default_rng(9))
    assert a == valid_crop_window(500, (0.5, 1.0), np.random.default_rng(9))


def test_valid_crop_resize_counts_non_zero_frames_and_resizes_scores():
    kp = np.zeros((2, 10, 3, 3), np.float32)
    kp[0, :6] = np.arange(6, dtype=np.float32)[:, None, None] + 1  # frames 6..9 are padding
    scores = np.zeros((2, 10, 3), np.float32)
    scores[0, :6] = 0.5
    out = ValidCropResize(window=12, p_interval=[1.0])({"keypoints": kp, "scores": scores}, None)
    np.testing.assert_allclose(out["keypoints"], resize_time_bilinear(kp[:, :6], 12), rtol=1e-6)
    np.testing.assert_allclose(out["scores"][0], 0.5)
    assert out["keypoints"].shape == (2, 12, 3, 3) and out["scores"].shape == (2, 12, 3)
    with pytest.raises(DataError) as e:
        ValidCropResize()({"keypoints": np.zeros((1, 5, 3, 3)), "name": "empty"}, None)
    assert e.value.path == "empty" and e.value.field == "keypoints"


def test_uniform_sample_test_mode_equals_pyskl_seeded_draws():
    # pyskl test mode re-seeds numpy with 255 and then draws: rand() for the ratio, randint(1) for the offset,
    # then one randint per segment of 10 frames.
    ref = np.random.RandomState(255)
    ref.rand()
    ref.randint(1)
    expected = np.arange(10) * 10 + ref.randint(np.full(10, 10))
    got = uniform_sample_test_indices(100, 10, 1, (1.0, 1.0), seed=255)
    np.testing.assert_array_equal(got, expected)
    t = UniformSample(clip_len=10, test_mode=True)
    np.testing.assert_array_equal(t.indices(100, np.random.default_rng(1)), t.indices(100, np.random.default_rng(2)))


def test_uniform_sample_short_video_test_mode_loops_from_spread_starts():
    # 5 frames, 2 clips of 8: clip i starts at i * 5 // 2 and loops (pyskl test branch, no random draw)
    got = uniform_sample_test_indices(5, 8, 2, (1.0, 1.0))
    np.testing.assert_array_equal(got, [0, 1, 2, 3, 4, 0, 1, 2, 2, 3, 4, 0, 1, 2, 3, 4])


def test_uniform_sample_training_branches():
    for seed in range(30):
        rng = np.random.default_rng(seed)
        long = uniform_sample_indices(100, 10, 1, (1.0, 1.0), rng)
        assert all(10 * i <= f < 10 * i + 10 for i, f in enumerate(long))  # one frame per segment
        mid = uniform_sample_indices(15, 10, 1, (1.0, 1.0), rng)
        steps = np.diff(mid)
        assert set(steps) <= {1, 2} and mid[0] >= 0 and mid[-1] <= 14 and (steps == 2).sum() <= 5
        short = uniform_sample_indices(4, 10, 1, (1.0, 1.0), rng)
        assert np.all(np.diff(short) % 4 == 1)  # consecutive frames, looping over the 4
    kp = np.random.default_rng(0).normal(size=(2, 37, 4, 3)).astype(np.float32)
    out = UniformSample(clip_len=20, num_clips=3)({"keypoints": kp, "scores": kp[..., 0]}, np.random.default_rng(4))
    assert out["keypoints"].shape == (2, 60, 4, 3) and out["num_clips"] == 3
    idx = UniformSample(clip_len=20, num_clips=3).indices(37, np.random.default_rng(4))
    np.testing.assert_array_equal(out["keypoints"], kp[:, idx])
    np.testing.assert_array_equal(out["scores"], kp[..., 0][:, idx])


def test_ucla_sampling_train_and_test():
    np.testing.assert_array_equal(ucla_test_indices(52, 52), np.arange(52))
    idx = ucla_test_indices(27, 52)  # linspace(0, 26, 52) truncated: step 26/51
    assert idx[0] == 0 and idx[1] == 0 and idx[2] == 1 and idx[-1] == 26 and len(idx) == 52
    assert set(np.bincount(idx)) <= {1, 2}
    for length in (1, 5, 44, 201):
        got = ucla_train_indices(length, 52, np.random.default_rng(length))
        assert len(got) == 52 and np.all(np.diff(got) >= 0) and got.min() >= 0 and got.max() < length
    np.testing.assert_array_equal(ucla_train_indices(1, 52, np.random.default_rng(0)), np.zeros(52))
    # 2 frames: the count of frame 0 among 52 draws from 100 + 100 slots is hypergeometric, mean 26
    zeros = [np.sum(ucla_train_indices(2, 52, np.random.default_rng(s)) == 0) for s in range(200)]
    assert abs(np.mean(zeros) - 26) < 1.0


def test_temporal_crop_windows_of_the_mirrored_padding():
    # T = 12, pad = 12 // 6 = 2: padded frames [1, 0, 0..11, 11, 10]; start uniform in 0..4
    padded = [1, 0] + list(range(12)) + [11, 10]
    windows = {tuple(temporal_crop_indices(12, 6, np.random.default_rng(s))) for s in range(100)}
    assert windows == {tuple(padded[s:s + 12]) for s in range(5)}
    np.testing.assert_array_equal(temporal_crop_indices(5, 6, np.random.default_rng(0)), np.arange(5))


# --------------------------------------------------------------------------------------------------- spatial


def test_ctrgcn_rotation_matches_their_matrices():
    a, b, g = 0.1, -0.2, 0.25
    # CTR-GCN feeders/tools.py _rot: rx, ry, rz as they write them, combined rz @ ry @ rx
    rx = np.array([[1, 0, 0], [0, np.cos(a), np.sin(a)], [0, -np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, -np.sin(b)], [0, 1, 0], [np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(g), np.sin(g), 0], [-np.sin(g), np.cos(g), 0], [0, 0, 1]])
    np.testing.assert_allclose(ctrgcn_rotation([a, b, g]), rz @ ry @ rx, atol=1e-12)
    np.testing.assert_allclose(ctrgcn_rotation([0, 0, np.pi / 2]) @ [1, 0, 0], [0, -1, 0], atol=1e-12)


def test_random_rotation_is_one_rigid_rotation_for_all_frames():
    frame = np.random.default_rng(0).normal(size=(1, 1, 6, 3))
    kp = np.repeat(frame, 5, axis=1).astype(np.float32)
    out = RandomRotation(theta=0.3)(sample_of(kp), np.random.default_rng(11))["keypoints"]
    angles = np.random.default_rng(11).uniform(-0.3, 0.3, size=3)
    np.testing.assert_allclose(out, kp @ ctrgcn_rotation(angles).T, atol=1e-6)
    assert np.all(np.abs(angles) <= 0.3)
    np.testing.assert_allclose(out, np.repeat(out[:, :1], 5, axis=1))  # the same rotation in every frame
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(kp, axis=-1), rtol=1e-5)


def test_ucla_view_matrix_matches_their_row_vector_formula():
    agx, agy, s = 37, -52, 1.3
    x, y = np.radians(agx), np.radians(agy)
    # CTR-GCN feeder_ucla.py rand_view_transform: rows @ (Ry @ Rx @ S)
    rx = np.array([[1, 0, 0], [0, np.cos(x), np.sin(x)], [0, -np.sin(x), np.cos(x)]])
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rows = np.random.default_rng(0).normal(size=(7, 3))
    np.testing.assert_allclose(rows @ ucla_view_matrix(agx, agy, s).T, rows @ (ry @ rx @ (s * np.eye(3))))
    np.testing.assert_allclose(ucla_view_matrix(90, 0, 1.0) @ [0, 1, 0], [0, 0, 1], atol=1e-12)


def test_random_view_rotation_scales_every_bone_by_the_same_factor(shared_data):
    sample = read_ucla(shared_data, "a01_s01_e00_v01")
    layout = sample["layout"]
    out = RandomViewRotation()(sample, np.random.default_rng(3))["keypoints"]
    ratio = bone_lengths(out, layout) / np.where(bone_lengths(sample["keypoints"], layout) > 0,
                                                 bone_lengths(sample["keypoints"], layout), 1)
    ratio = ratio[..., [v for v in range(20) if v != layout.center]]
    assert 0.5 <= ratio.mean() <= 1.5
    np.testing.assert_allclose(ratio, ratio.mean(), rtol=1e-4)


def test_shear_matrix_by_hand_and_as_crossclr_applies_it():
    s = shear_matrix([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    np.testing.assert_allclose(s, [[1, .1, .4], [.2, 1, .5], [.3, .6, 1]])
    np.testing.assert_allclose(s @ [1, 2, 3], [2.4, 3.7, 4.5])
    kp = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype(np.float32)
    out = Shear(0.5)(sample_of(kp), np.random.default_rng(5))["keypoints"]
    draws = np.random.default_rng(5).uniform(-0.5, 0.5, size=6)
    # CrosSCLR: data (C, T, V, M) -> (T, V, M, C) @ R.T
    np.testing.assert_allclose(out, kp @ shear_matrix(draws).T, atol=1e-6)


def test_random_scale_is_one_factor_per_axis():
    kp = np.random.default_rng(0).uniform(1, 2, size=(1, 6, 4, 3)).astype(np.float32)
    out = RandomScale(0.2)(sample_of(kp), np.random.default_rng(1))["keypoints"]
    ratio = out / kp
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[0, 0, 0], ratio.shape), rtol=1e-6)
    assert np.all((ratio[0, 0, 0] >= 0.8) & (ratio[0, 0, 0] <= 1.2))
    with pytest.raises(ConfigError):
        RandomScale(scale=[0.1, 0.2])(sample_of(kp), np.random.default_rng(0))


def chain_layout() -> Layout:
    return Layout.from_dict({"joints": ["root", "a", "b", "c"], "bones": [["a", "root"], ["b", "a"], ["c", "root"]],
                             "center": "root", "flip_pairs": [["b", "c"]]})


def test_scale_bones_by_hand():
    kp = np.array([[[[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 2]]]], np.float32)
    out = scale_bones(kp, chain_layout(), np.array([5.0, 2.0, 1.0, 0.5]))
    # a's bone doubles (a -> (2, 0, 0)); b keeps its bone but moves with a; c's bone halves
    np.testing.assert_allclose(out[0, 0], [[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 0, 1]])


def test_bone_scale_factor_one_returns_the_input_exactly(shared_data):
    sample = read_ucla(shared_data, "a03_s02_e01_v02")
    kp = sample["keypoints"]
    np.testing.assert_array_equal(scale_bones(kp, sample["layout"], np.ones(20)), kp)
    np.testing.assert_array_equal(RandomBoneScale(scale=0.0)(sample, np.random.default_rng(0))["keypoints"], kp)
    out = RandomBoneScale(scale=0.2)(sample, np.random.default_rng(0))["keypoints"]
    ratio = bone_lengths(out, sample["layout"]) / bone_lengths(kp, sample["layout"]).clip(1e-9)
    ratio = np.delete(ratio, sample["layout"].center, axis=-1)
    assert np.all((ratio > 0.8 - 1e-4) & (ratio < 1.2 + 1e-4))
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-3)  # per bone, all frames


def test_flip_by_hand_and_twice_is_identity(shared_data):
    kp = np.array([[[[0, 0, 0], [1, 2, 3], [4, 5, 6], [-1, 5, 6]]]], np.float32)
    np.testing.assert_allclose(flip_keypoints(kp, chain_layout())[0, 0],
                               [[0, 0, 0], [-1, 2, 3], [1, 5, 6], [-4, 5, 6]])
    sample = read_ucla(shared_data, "a12_s09_e04_v03")
    sample["scores"] = np.random.default_rng(0).uniform(size=sample["scores"].shape).astype(np.float32)
    once = Flip(p=1.0)(sample, np.random.default_rng(0))
    assert not np.allclose(once["keypoints"], sample["keypoints"])
    np.testing.assert_array_equal(once["scores"][..., 4], sample["scores"][..., 8])  # shoulders swapped
    twice = Flip(p=1.0)(once, np.random.default_rng(0))
    np.testing.assert_array_equal(twice["keypoints"], sample["keypoints"])
    np.testing.assert_array_equal(twice["scores"], sample["scores"])
    assert Flip(p=0.0)(sample, np.random.default_rng(0)) is sample
    with pytest.raises(ConfigError) as e:
        Flip(p=1.0)({"keypoints": sample["keypoints"], "name": "x"}, np.random.default_rng(0))
    assert e.value.field == "layout"
    with pytest.raises(LayoutError):
        Flip(p=1.0)({"keypoints": sample["keypoints"], "layout": chain_layout()}, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------------- view


def test_center_on_joint_and_min_max_by_hand():
    kp = np.array([[[[1, 1, 1], [3, 5, 2], [2, 3, 1.5]], [[2, 2, 2], [4, 4, 4], [0, 0, 0]]],
                   [[[0, 0, 0], [0, 0, 0], [0, 0, 0]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]]]], np.float32)
    centred = CenterOnJoint(joint=1)(sample_of(kp), None)["keypoints"]  # centre: person 0, frame 0, joint 1
    np.testing.assert_allclose(centred[0, 0], [[-2, -4, -1], [0, 0, 0], [-1, -2, -.5]])
    np.testing.assert_allclose(centred[0, 1], [[-1, -3, 0], [1, -1, 2], [-3, -5, -2]])  # a zero joint is present
    np.testing.assert_array_equal(centred[1, 0], 0)  # an absent person stays absent
    np.testing.assert_allclose(centred[1, 1], [[-2, -5, -2], [-3, -4, -2], [-3, -5, -1]])
    each = CenterOnJoint(joint=0, frame="each")(sample_of(kp), None)["keypoints"]
    # per frame, a missing (all-zero) joint stays missing instead of landing at minus the centre (issue 28)
    np.testing.assert_allclose(each[0, 1], [[0, 0, 0], [2, 2, 2], [0, 0, 0]])
    np.testing.assert_array_equal(each[1, 0], 0)
    one = np.array([[[[1, 1, 1], [3, 5, 2], [2, 3, 1.5]]]], np.float32)
    np.testing.assert_allclose(MinMaxNormalize()(sample_of(one), None)["keypoints"][0, 0],
                               [[-1, -1, -1], [1, 1, 1], [0, 0, 0]])
    two = np.concatenate([one, np.zeros_like(one)])  # an absent second person neither counts nor moves
    np.testing.assert_array_equal(MinMaxNormalize()(sample_of(two), None)["keypoints"],
                                  np.concatenate([MinMaxNormalize()(sample_of(one), None)["keypoints"], 0 * one]))
    flat = np.array([[[[1, 1, 7], [3, 5, 7]]]], np.float32)  # z has no spread
    np.testing.assert_allclose(MinMaxNormalize()(sample_of(flat), None)["keypoints"][0, 0, :, 2], [0, 0])


def torso_layout() -> Layout:
    joints = ["head", "left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    return Layout.from_dict({"name": "torso5", "joints": joints,
                             "parents": [None, "head", "head", "left_shoulder", "right_shoulder"], "center": "head"})


def test_torso_normalize_by_hand():
    # frame 0: hips at (0, 10), (4, 10) -> midpoint (2, 10); shoulders (0, 4), (4, 4) -> torso 6
    # frame 1: everything moved by (+2, 0) and the torso foreshortened to 2; median torso of (6, 2, 6) = 6
    f0 = [[2, 0], [0, 4], [4, 4], [0, 10], [4, 10]]
    f1 = [[4, 6], [2, 8], [6, 8], [2, 10], [6, 10]]
    kp = np.array([[f0, f1, f0]], np.float32)
    out = TorsoNormalize()(sample_of(kp, layout=torso_layout()), None)["keypoints"]
    centre = np.array([(2 + 4 + 2) / 3, 10.0])
    np.testing.assert_allclose(out[0, 0], (np.array(f0) - centre) / 6, atol=1e-6)
    np.testing.assert_allclose(out[0, 1], (np.array(f1) - centre) / 6, atol=1e-6)
    # an absent second person stays absent; indices work without a layout
    two = np.concatenate([kp, np.zeros_like(kp)])
    by_index = TorsoNormalize(center=[3, 4], bottom=[3, 4], top=[1, 2])(sample_of(two), None)["keypoints"]
    np.testing.assert_allclose(by_index[0], out[0], atol=1e-6)
    np.testing.assert_array_equal(by_index[1], 0)
    with pytest.raises(DataError):
        TorsoNormalize(center=[3, 4], bottom=[3, 4], top=[1, 2])(sample_of(np.zeros_like(kp), name="z"), None)
    with pytest.raises(ConfigError):
        TorsoNormalize(center=[])


def test_torso_normalize_skips_missing_joints():
    f0 = [[2, 0], [0, 4], [4, 4], [0, 10], [4, 10]]
    f1 = [[2, 0], [0, 4], [4, 4], [0, 0], [4, 12]]  # left hip missing: this frame measures nothing
    out = TorsoNormalize()(sample_of(np.array([[f0, f1]], np.float32), layout=torso_layout()), None)["keypoints"]
    np.testing.assert_allclose(out[0, 1, 4], (np.array([4, 12]) - [2, 10]) / 6, atol=1e-6)
    np.testing.assert_array_equal(out[0, 1, 3], 0)  # still missing
    # no frame with both hips: centre = mean of the present joints, scale = their RMS distance from it
    legless = np.array([[[[2, 0], [0, 4], [4, 4], [0, 0], [0, 0]]]], np.float32)
    got = TorsoNormalize()(sample_of(legless, layout=torso_layout()), None)["keypoints"][0, 0]
    pts = np.array([[2, 0], [0, 4], [4, 4]], float)
    centre = pts.mean(axis=0)
    rms = np.sqrt(np.mean(np.sum((pts - centre) ** 2, axis=1)))
    np.testing.assert_allclose(got[:3], (pts - centre) / rms, atol=1e-6)
    np.testing.assert_array_equal(got[3:], 0)


def test_torso_normalize_removes_camera_scale_and_position(shared_data):
    """What makes Penn's hand-clicked pixels comparable to an estimator's on other videos: the same pose filmed
    closer (x 2.5) and elsewhere in the frame normalises to the same numbers."""
    from skelact.data.sources.penn_action import PennActionSource

    seq = PennActionSource(shared_data / "penn_action_labels").read(shared_data / "penn_action_labels" / "labels"
                                                                     / "0001.mat")
    base = {"keypoints": seq.keypoints, "layout": seq.layout, "name": seq.name}
    moved = dict(base, keypoints=seq.keypoints * 2.5 + np.array([300.0, -40.0], np.float32))
    a = TorsoNormalize()(base, None)["keypoints"]
    b = TorsoNormalize()(moved, None)["keypoints"]
    np.testing.assert_allclose(a, b, atol=1e-4)
    from skelact.skeleton.layout import get_layout

    layout = get_layout(seq.layout)
    hips = a[0][:, [layout.index("left_hip"), layout.index("right_hip")]].mean(axis=1)
    shoulders = a[0][:, [layout.index("left_shoulder"), layout.index("right_shoulder")]].mean(axis=1)
    np.testing.assert_allclose(hips.mean(axis=0), 0, atol=1e-5)
    assert np.median(np.linalg.norm(shoulders - hips, axis=-1)) == pytest.approx(1, abs=1e-5)


def test_rotation_helpers():
    np.testing.assert_allclose(axis_rotation(2, np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation_onto([1, 0, 0], [0, 1, 0]), axis_rotation(2, np.pi / 2), atol=1e-12)
    v = np.array([0.3, -1.2, 0.7])
    r = rotation_onto(v, [0, 0, 1])
    np.testing.assert_allclose(r @ v, [0, 0, np.linalg.norm(v)], atol=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(r), 1.0)
    # Rodrigues agrees with the Euler-Rodrigues parameters (a, b, c, d) = (cos t/2, k sin t/2)
    k, t = np.array([2.0, -1.0, 0.5]) / np.linalg.norm([2.0, -1.0, 0.5]), 0.9
    a, (b, c, d) = np.cos(t / 2), k * np.sin(t / 2)
    er = np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                   [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                   [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - b * b - c * c]])
    np.testing.assert_allclose(rotation_about(k, t), er, atol=1e-12)
    np.testing.assert_array_equal(rotation_onto([0, 0, -1], [0, 0, 1]), np.eye(3))  # pyskl's degenerate case


def test_prenormalize3d_drops_empty_frames_picks_the_main_person_and_aligns():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(2, 6, 25, 3)).astype(np.float32)
    kp[0, [0, 3]] = 0  # person 0 present in 4 frames, person 1 in 5
    kp[1, 5] = 0
    scores = rng.uniform(size=(2, 6, 25)).astype(np.float32)
    out = PreNormalize3D()({"keypoints": kp, "scores": scores}, None)
    x = out["keypoints"]
    assert x.shape == (2, 5, 25, 3)  # person 1's frames 0..4, person 1 first
    np.testing.assert_array_equal(out["scores"], scores[[1, 0]][:, :5])
    np.testing.assert_array_equal(x[1, 0], 0)  # person 0 is missing in frame 0 and stays zero
    np.testing.assert_allclose(x[0, 0, 1], 0, atol=1e-6)  # centred on joint 1 of the first frame
    shoulders = x[0, 0, 8] - x[0, 0, 4]
    np.testing.assert_allclose(shoulders[1:], 0, atol=1e-5)
    assert shoulders[0] > 0
    src = kp[1, :5] - kp[1, 0, 1]
    np.testing.assert_allclose(np.linalg.norm(x[0], axis=-1), np.linalg.norm(src, axis=-1), rtol=1e-4, atol=1e-5)
    only_spine = PreNormalize3D(shoulders=(1, 1))({"keypoints": kp}, None)["keypoints"]  # no second turn
    spine = only_spine[0, 0, 1] - only_spine[0, 0, 0]
    np.testing.assert_allclose(spine[:2], 0, atol=1e-5)
    assert spine[2] > 0


def test_prenormalize3d_on_a_real_ucla_sample(shared_data):
    sample = read_ucla(shared_data, "a05_s04_e02_v03")
    out = PreNormalize3D(spine=("hip_center", "spine"), shoulders=("shoulder_right", "shoulder_left"),
                         center="spine")(sample, None)["keypoints"]
    assert out.shape == sample["keypoints"].shape == (1, 21, 20, 3)  # CTR-GCN lists this clip with length 21
    np.testing.assert_allclose(out[0, 0, 1], 0, atol=1e-6)
    np.testing.assert_allclose((out[0, 0, 8] - out[0, 0, 4])[1:], 0, atol=1e-5)
    np.testing.assert_allclose(bone_lengths(out, sample["layout"]), bone_lengths(sample["keypoints"],
                               sample["layout"]), atol=1e-5)


# --------------------------------------------------------------------------------------------------- real data


def test_ctrgcn_ucla_test_pipeline_equals_their_formula(shared_data):
    sample = read_ucla(shared_data, "a01_s01_e00_v01")
    raw = sample["keypoints"][0].astype(np.float64)  # T, V, C
    assert raw.shape == (44, 20, 3)
    out = preset_pipeline("ctrgcn_ucla_test")(sample, np.random.default_rng(0))
    # CTR-GCN test branch: centre on frame 0 joint 1, per-axis min-max to [-1, 1], linspace(0, T-1, 52) frames
    centred = raw - raw[0, 1]
    flat = centred.reshape(-1, 3)
    scaled = ((flat - flat.min(0)) / (flat.max(0) - flat.min(0)) * 2 - 1).reshape(raw.shape)
    expected = scaled[np.linspace(0, 43, 52).astype(int)]
    assert out["keypoints"].shape == (1, 52, 20, 3)
    np.testing.assert_allclose(out["keypoints"][0], expected, atol=1e-6)
    assert out["scores"].shape == (1, 52, 20)


def test_ctrgcn_ucla_train_pipeline_is_seeded_and_bounded(shared_data):
    sample = read_ucla(shared_data, "a08_s02_e01_v03")  # 101 frames in CTR-GCN's list
    assert sample["keypoints"].shape[1] == 101
    pipe = preset_pipeline("ctrgcn_ucla_train", modality="joint")
    a = pipe(sample, np.random.default_rng(42))["keypoints"]
    b = pipe(sample, np.random.default_rng(42))["keypoints"]
    c = pipe(sample, np.random.default_rng(43))["keypoints"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.shape == (1, 52, 20, 3) and a.min() >= -1 - 1e-6 and a.max() <= 1 + 1e-6
    # the view scale is cancelled by the min-max step: dropping it changes nothing
    no_scale = build_pipeline([dict(s, scale_range=[1.0, 1.0]) if s["type"] == "RandomViewRotation" else s
                               for s in PRESETS["ctrgcn_ucla_train"]])
    np.testing.assert_allclose(no_scale(sample, np.random.default_rng(42))["keypoints"], a, atol=1e-5)


def test_ctrgcn_ntu_pipeline_on_a_real_sample(shared_data):
    sample = read_ucla(shared_data, "a09_s03_e00_v03")  # 81 frames
    out = preset_pipeline("ctrgcn_ntu_test")(sample, None)
    assert out["keypoints"].shape == (1, 64, 20, 3)
    # centre crop: int(0.05 * 81 / 2) = 2 frames off each end, then 77 -> 64 frames
    np.testing.assert_allclose(out["keypoints"], resize_time_bilinear(sample["keypoints"][:, 2:79], 64), atol=1e-6)
    train = preset_pipeline("ctrgcn_ntu_train")(sample, np.random.default_rng(0))
    assert train["keypoints"].shape == (1, 64, 20, 3)


def test_every_preset_runs_on_a_real_sample(shared_data):
    sample = read_ucla(shared_data, "a02_s07_e03_v03")  # 9 frames: shorter than every window
    sample["layout"] = ucla_layout()
    for name in PRESETS:
        if name.startswith("pyskl"):
            specs = [{"type": "PreNormalize3D", "spine": [0, 1], "shoulders": [8, 4], "center": 1}] + \
                [s for s in PRESETS[name] if s["type"] != "PreNormalize3D"]
            out = build_pipeline(specs)(sample, np.random.default_rng(0))
        else:
            out = preset_pipeline(name, modality="bone")(sample, np.random.default_rng(0))
        kp = out["keypoints"]
        assert kp.dtype == np.float32 and kp.ndim == 4 and np.isfinite(kp).all(), name
        assert out["scores"].shape == kp.shape[:3], name
    with pytest.raises(ConfigError):
        preset_pipeline("ctrgcn_kinetics")


def test_sample_from_a_sequence_runs_through_a_pipeline(shared_data):
    raw = read_ucla(shared_data, "a05_s04_e02_v03")
    seq = SkeletonSequence(keypoints=raw["keypoints"], scores=raw["scores"], label=4, name=raw["name"],
                           layout="nw_ucla20", meta={"view": 3}).validate()
    sample = sample_from_sequence(seq)
    assert sample["name"] == "a05_s04_e02_v03" and sample["label"] == 4 and sample["meta"] == {"view": 3}
    out = preset_pipeline("ctrgcn_ucla_test", modality="bone")(sample, np.random.default_rng(0))
    assert out["keypoints"].shape == (1, 52, 20, 3) and out["modality"] == "bone"
    with pytest.raises(DataError) as e:
        ValidCropResize()({"keypoints": np.zeros((5, 3)), "name": seq.name}, np.random.default_rng(0))
    assert e.value.path == seq.name and e.value.field == "keypoints"
