"""PoseConv3D's NW-UCLA configs on real NW-UCLA clips: heatmaps drawn from the x, y of Kinect joints in metres.
SubjectCrop's per-clip box is what turns metres into heatmap pixels, so the volume must not depend on the unit or
on where the subject stands, every joint must land inside the map, and the 3D view augmentation of training must
keep a centred-free skeleton's joints present (a joint at exactly (0, 0) would read as missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skelact.config import load_config
from skelact.data.sources.nw_ucla import NWUCLASource
from skelact.data.transforms import sample_from_sequence
from skelact.engine.build import build_pipeline_of

UCLA = Path(__file__).resolve().parents[1] / "configs" / "nw_ucla"


@pytest.fixture(scope="module")
def ucla_sample(shared_data: Path) -> dict:
    source = NWUCLASource(shared_data / "nw_ucla")
    seq = source.read(source.items()[0])
    sample = sample_from_sequence(seq)
    sample["layout"] = seq.layout
    return sample


def keypoints_inside(sample: dict, loaded, which: str) -> np.ndarray:
    """The keypoints the heatmaps are drawn from: the pipeline up to (not including) GenerateHeatmap."""
    steps = build_pipeline_of(loaded, which).transforms
    cut = [type(s).__name__ for s in steps].index("GenerateHeatmap")
    rng = np.random.default_rng(0)
    for step in steps[:cut]:
        sample = step(sample, rng)
    return sample["keypoints"]


@pytest.mark.parametrize("stream, channels", [("joint", 20), ("limb", 19)])  # nw_ucla20: 20 joints, 19 bones
def test_cpu_test_volume_does_not_depend_on_units_or_place(stream: str, channels: int, ucla_sample: dict):
    loaded = load_config(UCLA / f"poseconv3d_{stream}_cpu.yaml")
    pipeline = build_pipeline_of(loaded, "test")
    metres = pipeline(ucla_sample, np.random.default_rng(0))["heatmap"]
    assert metres.shape == (2, channels, 24, 32, 32)
    # the same clip in millimetres, the subject 3 m further right: the same volume
    kp = ucla_sample["keypoints"].astype(np.float64)
    moved = dict(ucla_sample, keypoints=((kp + np.array([3.0, 0.5, 1.0])) * 1000).astype(np.float32))
    millimetres = pipeline(moved, np.random.default_rng(0))["heatmap"]
    np.testing.assert_allclose(millimetres, metres, atol=1e-4)
    # each channel peaks somewhere (a joint or limb drawn) and the mirror volume holds the same mass
    assert (metres[0].max(axis=(1, 2, 3)) > 0.5).all()
    np.testing.assert_allclose(metres[1].sum(), metres[0].sum(), rtol=1e-4)


def test_every_joint_lands_inside_the_map_in_training_and_test(ucla_sample: dict):
    loaded = load_config(UCLA / "poseconv3d_joint_cpu.yaml")
    for which in ("train", "test"):
        kp = keypoints_inside(ucla_sample, loaded, which)
        assert kp.shape[-1] == 2 and np.isfinite(kp).all()
        # no joint lost to (0, 0) by the 3D turn or the crop; all inside the 32 x 32 map (training's random
        # resized crop may cut the subject, as in pyskl, but keeps the joints' spread on the map's scale)
        assert np.any(kp != 0, axis=-1).all()
        if which == "test":
            assert kp.min() >= 0 and kp.max() <= 32
            # the square box of the whole clip with a 25 % margin: the subject's longer side spans 32 / 1.25
            # pixels over the clip, a little less over the 24 frames sampled from it
            span = (kp.reshape(-1, 2).max(axis=0) - kp.reshape(-1, 2).min(axis=0)).max()
            assert 0.9 * 32 / 1.25 < span <= 32 / 1.25 + 1e-4


def test_gpu_recipe_is_pyskls_on_nw_ucla(ucla_sample: dict):
    for stream in ("joint", "limb"):
        loaded = load_config(UCLA / f"poseconv3d_{stream}.yaml")
        cfg = loaded.cfg
        assert cfg.model.backbone == "slowonly" and cfg.epochs == 240 and cfg.trainer.gradient_clip_val == 40
        assert cfg.optimizer.lr * cfg.data.batch_size / cfg.optimizer.reference_batch_size == pytest.approx(0.05)
        assert (cfg.data.format, cfg.data.split) == ("nw-ucla", "cross_view")
    volume = build_pipeline_of(loaded, "test")(ucla_sample, np.random.default_rng(0))["heatmap"]
    assert volume.shape == (20, 19, 48, 56, 56)
