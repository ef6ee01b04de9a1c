"""The reference's per-frame pose normalisation (issue 28): CenterOnJoint(frame='each'), AlignShoulders,
InterpolateFrames, checked against hand-computed values on real NW-UCLA clips and on small hand-made ones."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest

from skelact.config import load_config
from skelact.data.transforms import (
    AlignShoulders,
    CenterOnJoint,
    InterpolateFrames,
    UclaSample,
    build_pipeline,
    build_transform,
    motion,
)
from skelact.data.transforms.hold import hold_last_valid
from skelact.errors import ConfigError, DataError, LayoutError
from skelact.skeleton.layout import get_layout
from conftest import REPO

UCLA = get_layout("nw_ucla20")
CENTRE, LEFT, RIGHT, HEAD = (UCLA.index(j) for j in ("shoulder_center", "left_shoulder", "right_shoulder", "head"))
RNG = np.random.default_rng(0)


@lru_cache(maxsize=None)
def config(relative: str):
    """A config of the repository, merged from its bases (loaded once per test session)."""
    return load_config(REPO / "configs" / "nw_ucla" / relative).cfg


def read_clip(shared_data, name: str) -> dict:
    with open(shared_data / "nw_ucla" / "all_sqe" / f"{name}.json") as f:
        raw = json.load(f)
    kp = np.asarray(raw["skeletons"], dtype=np.float32)[None]  # [1, T, 20, 3]
    return {"keypoints": kp, "scores": np.ones(kp.shape[:3], np.float32), "layout": "nw_ucla20", "name": name}


def turn_about_y(points: np.ndarray, angle: float) -> np.ndarray:
    """The rotation written out by hand: x' = cos x + sin z, y' = y, z' = -sin x + cos z."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * x + s * z, y, -s * x + c * z], axis=-1)


# ------------------------------------------------------------------------------------------------------- holding


def test_hold_last_valid_fills_forward_and_the_leading_gap_from_the_first_measurement():
    values = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
    valid = np.array([False, True, False, False, True, False])
    assert hold_last_valid(values, valid).tolist() == [11.0, 11.0, 11.0, 11.0, 14.0, 14.0]
    with pytest.raises(ValueError):
        hold_last_valid(values, np.zeros(6, bool))


# ------------------------------------------------------------------------------------------------------ centring


def test_centring_each_frame_puts_the_joint_at_the_origin_and_keeps_missing_joints_missing(shared_data):
    sample = read_clip(shared_data, "a01_s01_e00_v01")
    kp = sample["keypoints"].astype(np.float64).copy()
    kp[0, 5, HEAD] = 0.0  # a missing head in frame 5
    kp[0, 7, CENTRE] = 0.0  # a missing centre joint in frame 7
    out = CenterOnJoint(joint="shoulder_center", frame="each")({**sample, "keypoints": kp.astype(np.float32)},
                                                               RNG)["keypoints"].astype(np.float64)
    assert np.all(out[0, :, CENTRE] == 0.0)
    frame = 3
    np.testing.assert_allclose(out[0, frame, LEFT], kp[0, frame, LEFT] - kp[0, frame, CENTRE], atol=1e-6)
    assert np.all(out[0, 5, HEAD] == 0.0)  # still missing, not moved to minus the centre
    # frame 7 has no centre joint: it is centred on frame 6's
    np.testing.assert_allclose(out[0, 7, HEAD], kp[0, 7, HEAD] - kp[0, 6, CENTRE], atol=1e-6)


def test_centring_refuses_a_person_who_never_shows_the_centre_joint(shared_data):
    sample = read_clip(shared_data, "a01_s01_e00_v01")
    kp = sample["keypoints"].copy()
    kp[0, :, CENTRE] = 0.0
    with pytest.raises(DataError, match="never shows joint"):
        CenterOnJoint(joint="shoulder_center", frame="each")({**sample, "keypoints": kp}, RNG)


# ----------------------------------------------------------------------------------------------------- alignment


def test_alignment_puts_the_shoulders_along_plus_x_in_every_frame_of_a_real_clip(shared_data):
    centred = CenterOnJoint(joint="shoulder_center", frame="each")(read_clip(shared_data, "a01_s01_e00_v03"), RNG)
    before = centred["keypoints"].astype(np.float64)
    out = AlignShoulders()(centred, RNG)["keypoints"].astype(np.float64)
    s_before = before[0, :, RIGHT] - before[0, :, LEFT]
    s = out[0, :, RIGHT] - out[0, :, LEFT]
    assert np.abs(s_before[:, 2]).max() > 0.05  # the camera saw the shoulders turned: there was something to undo
    np.testing.assert_allclose(s[:, 2], 0.0, atol=1e-5)
    assert np.all(s[:, 0] > 0)
    np.testing.assert_allclose(s[:, 0], np.hypot(s_before[:, 0], s_before[:, 2]), atol=1e-5)
    np.testing.assert_allclose(out[..., 1], before[..., 1], atol=1e-6)  # heights unchanged
    # a rigid turn per frame: every joint's distance from the (centred) origin is kept
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(before, axis=-1), atol=1e-5)


def test_alignment_by_a_quarter_turn_matches_the_hand_computed_rotation():
    kp = np.zeros((1, 1, 20, 3), np.float32)
    kp[0, 0, LEFT] = [0.0, 0.5, -1.0]
    kp[0, 0, RIGHT] = [0.0, 0.5, 1.0]  # shoulders along +z: a quarter turn (a = 90 degrees) is needed
    kp[0, 0, HEAD] = [1.0, 2.0, 0.0]
    out = AlignShoulders(joints=["left_shoulder", "right_shoulder"])({"keypoints": kp, "layout": "nw_ucla20"},
                                                                    RNG)["keypoints"]
    np.testing.assert_allclose(out[0, 0, LEFT], [-1.0, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 0, RIGHT], [1.0, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 0, HEAD], [0.0, 2.0, -1.0], atol=1e-6)
    assert np.all(out[0, 0, CENTRE] == 0.0)  # missing (all-zero) joints stay missing


def test_a_frame_without_a_shoulder_holds_the_previous_frames_angle(shared_data):
    sample = CenterOnJoint(joint="shoulder_center", frame="each")(read_clip(shared_data, "a01_s01_e00_v01"), RNG)
    kp = sample["keypoints"].astype(np.float64).copy()
    kp[0, 4, LEFT] = 0.0
    out = AlignShoulders()({**sample, "keypoints": kp.astype(np.float32)}, RNG)["keypoints"].astype(np.float64)
    s3 = kp[0, 3, RIGHT] - kp[0, 3, LEFT]
    angle3 = np.arctan2(s3[2], s3[0])
    np.testing.assert_allclose(out[0, 4], turn_about_y(kp[0, 4], angle3), atol=1e-5)
    assert np.all(out[0, 4, LEFT] == 0.0)


def test_alignment_arguments_are_checked_and_joints_are_names_of_the_samples_layout(shared_data):
    with pytest.raises(ConfigError):
        build_transform({"type": "AlignShoulders", "joints": ["left_shoulder"]})
    with pytest.raises(ConfigError):
        build_transform({"type": "AlignShoulders", "joints": [4, 8]})
    sample = read_clip(shared_data, "a01_s01_e00_v01")
    with pytest.raises(LayoutError, match="nose"):
        AlignShoulders(joints=["nose", "right_shoulder"])(sample, RNG)
    with pytest.raises(DataError, match="3 coordinates"):
        AlignShoulders()({**sample, "keypoints": sample["keypoints"][..., :2]}, RNG)


# ------------------------------------------------------------------------------------------------- interpolation


def test_two_real_frames_interpolated_to_five_give_the_hand_computed_linear_values(shared_data):
    sample = read_clip(shared_data, "a01_s01_e00_v01")
    two = sample["keypoints"][:, :2].astype(np.float64).copy()
    two[0, 1, HEAD] = 0.0  # the head goes missing in the second frame
    out = InterpolateFrames(length=5)({**sample, "keypoints": two.astype(np.float32),
                                       "scores": np.array([[[1.0] * 20, [0.0] * 20]], np.float32)}, RNG)
    kp, scores = out["keypoints"].astype(np.float64), out["scores"]
    a, b = two[0, 0, LEFT], two[0, 1, LEFT]
    for k, expected in enumerate([a, 0.75 * a + 0.25 * b, 0.5 * a + 0.5 * b, 0.25 * a + 0.75 * b, b]):
        np.testing.assert_allclose(kp[0, k, LEFT], expected, atol=1e-6)
    np.testing.assert_allclose(scores[0, :, LEFT], [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-6)
    np.testing.assert_allclose(kp[0, 0, HEAD], two[0, 0, HEAD], atol=1e-6)  # weight 1 on the frame that has it
    assert np.all(kp[0, 1:, HEAD] == 0.0)  # any weight on the missing frame: missing


def test_interpolating_a_short_real_clip_keeps_its_ends_and_leaves_no_frame_without_motion(shared_data):
    sample = read_clip(shared_data, "a01_s06_e04_v02")  # 17 frames
    kp = sample["keypoints"]
    padded = np.concatenate([kp, np.zeros((1, 5, 20, 3), np.float32)], axis=1)  # padding frames are dropped
    out = InterpolateFrames(length=50)({**sample, "keypoints": padded, "scores": None}, RNG)["keypoints"]
    assert out.shape == (1, 50, 20, 3)
    np.testing.assert_allclose(out[0, 0], kp[0, 0], atol=1e-6)
    np.testing.assert_allclose(out[0, -1], kp[0, -1], atol=1e-6)
    # output frame k sits at 16 k / 49 on the 17 input frames; k = 3 at 48 / 49, between input frames 0 and 1
    w = 48 / 49
    np.testing.assert_allclose(out[0, 3], (1 - w) * kp[0, 0] + w * kp[0, 1], atol=1e-5)
    moving = np.abs(motion(out)[0, :-1]).sum(axis=(-1, -2)) > 0
    picked = UclaSample(window_size=50, test_mode=True)({**sample, "scores": None}, RNG)["keypoints"]
    still = np.abs(motion(picked)[0, :-1]).sum(axis=(-1, -2)) == 0
    assert moving.all() and still.sum() >= 50 - 17  # picking repeats frames; interpolation never stands still


# ------------------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", ["skeletonclr_joint", "crossclr_3view"])
def test_the_ssl_configs_test_pipeline_normalises_a_real_clip_as_the_reference(shared_data, name):
    cfg = config(f"{name}.yaml")
    steps = [s["type"] for s in cfg.data.train_pipeline]
    assert steps == ["CenterOnJoint", "AlignShoulders", "InterpolateFrames", "TemporalCrop", "Shear"]
    out = build_pipeline(cfg.data.test_pipeline)(read_clip(shared_data, "a02_s02_e01_v03"), RNG)["keypoints"]
    assert out.shape == (1, 50, 20, 3)
    assert np.all(out[0, :, CENTRE] == 0.0)
    s = out[0, :, RIGHT] - out[0, :, LEFT]
    assert np.abs(s[:, 2]).max() < 1e-5 and np.all(s[:, 0] > 0)


@pytest.mark.parametrize("variant,steps", [
    ("minmax", ["CenterOnJoint", "MinMaxNormalize", "UclaSample"]),
    ("align_only", ["CenterOnJoint", "AlignShoulders", "UclaSample"]),
    ("interpolate_only", ["CenterOnJoint", "MinMaxNormalize", "InterpolateFrames"]),
])
@pytest.mark.parametrize("name", ["skeletonclr_joint", "crossclr_3view"])
def test_the_ablation_configs_keep_the_method_and_change_only_the_pipeline(name, variant, steps):
    ablation, main = config(f"ablation/{name}_{variant}.yaml"), config(f"{name}.yaml")
    assert [s["type"] for s in ablation.data.test_pipeline] == steps
    assert [s["type"] for s in ablation.data.train_pipeline] == steps + ["TemporalCrop", "Shear"]
    assert ablation.method == main.method and ablation.epochs == main.epochs
