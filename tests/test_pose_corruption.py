"""Test-time pose corruptions (skelact.data.transforms.corruption), on a real Penn Action clip: the jitter's spread
against the person's box, the dropped fraction, what zeroed confidences do to a heatmap, and seeding."""

from __future__ import annotations

import numpy as np
import pytest

from skelact.data.heatmaps import joint_heatmaps
from skelact.data.sources.penn_action import PennActionSource
from skelact.data.transforms import Compose, DropJoints, PoseJitter, ZeroConfidence, build_transform
from skelact.data.transforms.corruption import person_box_sizes
from skelact.errors import ConfigError


@pytest.fixture(scope="module")
def penn_sample(shared_data):
    """A whole real Penn Action clip in pixels, with its visibility scores."""
    source = PennActionSource(shared_data / "penn_action_labels")
    seq = source.read(source.items()[0])
    return {"keypoints": seq.keypoints, "scores": seq.scores, "layout": "penn13", "name": seq.name}


def test_box_size_is_the_longer_side_of_the_box_of_present_joints():
    kp = np.zeros((2, 2, 3, 2), np.float32)
    kp[0, 0] = [[10, 20], [40, 25], [0, 0]]  # the third joint is missing and must not pull the box to 0
    kp[0, 1] = [[15, 80], [12, 30], [20, 22]]
    assert person_box_sizes(kp).tolist() == [80 - 20, 0.0]  # x spans 10..40 (30), y 20..80 (60); person 2 absent


def test_jitter_std_is_the_fraction_of_the_box_size(penn_sample):
    kp = penn_sample["keypoints"]
    present = np.any(kp != 0, axis=-1)
    box = person_box_sizes(kp)[0]
    for fraction in (0.01, 0.1):
        out = PoseJitter(fraction)(penn_sample, np.random.default_rng(3))["keypoints"]
        noise = (out - kp)[present]
        # thousands of draws: the sample std is within 5 % of fraction * box, the mean near 0
        assert noise.size > 2000
        assert abs(noise.std() / (fraction * box) - 1) < 0.05
        assert abs(noise.mean()) < 0.1 * fraction * box
        # missing joints are not moved off 0, so they stay missing
        assert (out[~present] == 0).all()
    assert np.array_equal(PoseJitter(0.0)(penn_sample, np.random.default_rng(0))["keypoints"], kp)


def test_drop_makes_the_fraction_of_joints_missing_per_frame(penn_sample):
    kp = penn_sample["keypoints"].copy()
    kp[kp == 0] = 1.0  # every joint present, so each frame loses exactly round(fraction * 13)
    sample = dict(penn_sample, keypoints=kp)
    for fraction, count in ((0.1, 1), (0.3, 4), (0.5, 6)):
        out = DropJoints(fraction)(sample, np.random.default_rng(1))
        missing = ~np.any(out["keypoints"] != 0, axis=-1)
        assert (missing.sum(axis=-1) == count).all()
        assert (out["scores"][missing] == 0).all()
        kept = ~missing
        np.testing.assert_array_equal(out["keypoints"][kept], kp[kept])
        np.testing.assert_array_equal(out["scores"][kept], penn_sample["scores"][kept])
        # every joint is dropped about as often (uniform choice): 13 joints, ~T * count / 13 drops each
        per_joint = missing.sum(axis=(0, 1)) / missing.shape[1]
        assert np.abs(per_joint - count / 13).max() < 0.15


def test_drop_leaves_absent_persons_absent():
    kp = np.zeros((2, 5, 4, 2), np.float32)
    kp[0] = 1.0
    out = DropJoints(0.5)({"keypoints": kp}, np.random.default_rng(0))
    assert (out["keypoints"][1] == 0).all() and "scores" not in out
    assert (~np.any(out["keypoints"][0] != 0, axis=-1)).sum(axis=-1).tolist() == [2] * 5


def test_zero_confidence_empties_the_heatmap_but_keeps_the_keypoints(penn_sample):
    out = ZeroConfidence()(penn_sample, np.random.default_rng(0))
    np.testing.assert_array_equal(out["keypoints"], penn_sample["keypoints"])
    assert out["scores"].shape == penn_sample["keypoints"].shape[:3] and not out["scores"].any()
    small = out["keypoints"][:, :4] / 10  # the first frames, in a 64 x 64 image
    assert joint_heatmaps(small, out["scores"][:, :4], (64, 64)).max() == 0
    assert joint_heatmaps(small, penn_sample["scores"][:, :4], (64, 64)).max() > 0.9


def test_same_seed_same_corruption_and_another_seed_another(penn_sample):
    pipeline = Compose([{"type": "PoseJitter", "fraction": 0.05}, {"type": "DropJoints", "fraction": 0.3}])
    a = pipeline(penn_sample, np.random.default_rng([1, 0, 7]))
    b = pipeline(penn_sample, np.random.default_rng([1, 0, 7]))
    c = pipeline(penn_sample, np.random.default_rng([1, 0, 8]))
    np.testing.assert_array_equal(a["keypoints"], b["keypoints"])
    np.testing.assert_array_equal(a["scores"], b["scores"])
    assert not np.array_equal(a["keypoints"], c["keypoints"])
    # the input is never written into
    assert not np.shares_memory(a["keypoints"], penn_sample["keypoints"])


def test_bad_fractions_are_config_errors():
    with pytest.raises(ConfigError, match="fraction"):
        build_transform({"type": "DropJoints", "fraction": 1.5})
    with pytest.raises(ConfigError, match="fraction"):
        build_transform({"type": "PoseJitter", "fraction": -0.1})
