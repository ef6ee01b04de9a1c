"""The fast CPU recipe (issue 25): the presets share one schedule and one model base, the own-data preset trains on
a user's arrays with a custom layout (2D, another joint set), and the time-to-accuracy benchmark's MiniRocket input
is what its docstring says."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from skelact.config import load_config
from skelact.errors import ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from skelact.cli import main  # noqa: E402
from skelact.engine.optim import LRSchedule  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
NW_UCLA_FAST = CONFIGS / "nw_ucla" / "stgcn_joint_fast.yaml"
OWN_FAST = CONFIGS / "own_data" / "stgcn_joint_fast.yaml"
SCHEDULE_BASE = CONFIGS / "_base_" / "schedules" / "fast_cpu.yaml"
MODEL_BASE = CONFIGS / "_base_" / "models" / "stgcn_small.yaml"
_spec = importlib.util.spec_from_file_location("bench_tta", REPO / "benchmarks" / "bench_time_to_accuracy.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_fast_presets_share_the_schedule_and_model_bases():
    schedule = yaml.safe_load(SCHEDULE_BASE.read_text())
    model = yaml.safe_load(MODEL_BASE.read_text())["model"]
    # the own-data preset names no data of its own: without data.source (or --store) it is one line naming the key
    with pytest.raises(ConfigError) as missing:
        load_config(OWN_FAST)
    assert missing.value.field == "data.source"
    for path, overrides in ((NW_UCLA_FAST, []), (OWN_FAST, ["data.source=my_clips"])):
        cfg = load_config(path, overrides).cfg
        for section in ("optimizer", "schedule", "trainer", "evaluate"):
            for key, value in schedule[section].items():
                assert cfg[section][key] == value, (path, section, key)
        assert cfg.method.label_smoothing == schedule["method"]["label_smoothing"]
        assert {k: cfg.model[k] for k in model if k != "_replace_"} == {k: v for k, v in model.items()
                                                                          if k != "_replace_"}
        # the one-cycle shape: base rate right after the one-pass warm-up, nothing left at the end; no test during
        # training and the last checkpoint tested, so nothing is selected on the test set
        s = cfg.schedule
        lr = LRSchedule(base_lr=cfg.optimizer.lr, epochs=cfg.epochs, type=s.type, warmup_epochs=s.warmup_epochs,
                        min_lr=s.min_lr)
        assert lr.lr_at(1.0) == pytest.approx(cfg.optimizer.lr) and lr.lr_at(cfg.epochs) == pytest.approx(0.0)
        assert cfg.trainer.check_val_every_n_epoch == 0 and cfg.evaluate.checkpoint == "last"
    # a bar redrawn every 0 steps is no bar: the key says how to ask for that
    with pytest.raises(ConfigError) as bad:
        load_config(NW_UCLA_FAST, ["trainer.progress_bar_refresh=0"])
    assert bad.value.field == "trainer.progress_bar_refresh" and "progress_bar=false" in bad.value.message
    # the official schedule is untouched by the fast presets
    assert load_config(CONFIGS / "nw_ucla" / "ctrgcn_joint.yaml").cfg.epochs == 325


def test_the_bone_stream_preset_differs_from_the_joint_one_only_in_its_modality():
    from omegaconf import OmegaConf

    joint = OmegaConf.to_container(load_config(NW_UCLA_FAST).cfg)
    bone = OmegaConf.to_container(load_config(CONFIGS / "nw_ucla" / "stgcn_bone_fast.yaml").cfg)
    assert joint.pop("experiment") != bone.pop("experiment")
    assert (joint["data"].pop("modality"), bone["data"].pop("modality")) == ("joint", "bone")
    assert joint["data"].pop("input_pipeline") == bone["data"].pop("input_pipeline")  # both follow data.modality
    assert joint == bone


UPPER_BODY = """\
name: upper_body12
joints: [pelvis, mid_back, neck, skull, l_shoulder, l_elbow, l_wrist, l_hand, r_shoulder, r_elbow, r_wrist, r_hand]
bones:
  - [pelvis, mid_back]
  - [mid_back, neck]
  - [skull, neck]
  - [l_shoulder, neck]
  - [l_elbow, l_shoulder]
  - [l_wrist, l_elbow]
  - [l_hand, l_wrist]
  - [r_shoulder, neck]
  - [r_elbow, r_shoulder]
  - [r_wrist, r_elbow]
  - [r_hand, r_wrist]
center: neck
"""
CLIPS = ["a01_s01_e00_v01", "a01_s02_e01_v02", "a01_s03_e00_v03", "a06_s01_e00_v01", "a06_s02_e01_v02",
         "a06_s03_e00_v03"]


def test_own_data_preset_trains_on_2d_arrays_with_a_custom_layout(shared_data, tmp_path, capsys):
    """A user's clips: the first 12 NW-UCLA joints seen from the front (x, y only), under joint names of their own.
    The preset must not assume 3D (CTR-GCN's view turns), Kinect joint names or NW-UCLA's frame sampler."""
    src = tmp_path / "clips"
    src.mkdir()
    rows = []
    for name in CLIPS:
        doc = json.loads((shared_data / "nw_ucla" / "all_sqe" / f"{name}.json").read_text())
        np.save(src / f"{name}.npy", np.asarray(doc["skeletons"], dtype=np.float32)[:, :12, :2])
        rows.append([name, name[:3], "test" if name.endswith("v03") else "train"])
    with open(src / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["name", "label", "split"], *rows])
    layout = tmp_path / "upper_body12.yaml"
    layout.write_text(UPPER_BODY)
    run = tmp_path / "run"
    assert main(["train", str(OWN_FAST), f"data.source={src}", f"data.options.layout={layout}", "epochs=2",
                 "data.batch_size=2", "data.num_workers=0", "trainer.progress_bar=false", "trainer.accelerator=cpu",
                 "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test_samples"] == 2 and "(last checkpoint, epoch 2, 2 samples)" in out
    scores = np.load(run / "scores.npy")
    assert scores.shape == (2, 2) and np.isfinite(scores).all()


def test_minirocket_input_is_resampled_and_centred():
    """A clip moving linearly in time stays linear after resampling, from its first to its last frame, and loses
    its mean position; a 1-frame clip is held still."""
    t, v, c = 5, 2, 3
    start = np.arange(v * c, dtype=np.float32).reshape(v, c)
    clip = np.stack([start + 2.0 * k for k in range(t)])  # every coordinate rises by 2 per frame
    out = bench.resample_centred(clip, 9)
    assert out.shape == (v * c, 9) and out.dtype == np.float32
    # 5 frames over 9 samples: steps of (5 - 1) / (9 - 1) = 0.5 frame, i.e. 1.0 per sample
    np.testing.assert_allclose(np.diff(out, axis=1), 1.0, atol=1e-6)
    # centred on the mean position over frames and joints, per coordinate (x, y, z rows interleave per joint)
    per_coord = out.reshape(v, c, 9).mean(axis=(0, 2))
    np.testing.assert_allclose(per_coord, 0.0, atol=1e-6)
    # joint 1 sits 3 units above joint 0 in every coordinate, before and after
    np.testing.assert_allclose(out.reshape(v, c, 9)[1] - out.reshape(v, c, 9)[0], 3.0, atol=1e-6)
    # a 1-frame clip is held still: joint 0 at (0, 1, 2) and joint 1 at (3, 4, 5) lie 1.5 either side of their mean
    still = bench.resample_centred(clip[:1], 4)
    np.testing.assert_allclose(still, np.repeat([[-1.5]] * 3 + [[1.5]] * 3, 4, axis=1))
