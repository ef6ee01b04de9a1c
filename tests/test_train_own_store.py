"""Training on one's own store (issue 27, items 3-4): ``skelact train --store STORE CONFIG`` with a shipped config,
no pipeline copied; relative paths in a config follow the file that set them; the run's config.yaml records the
store it read, not the base's dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import yaml

from skelact.cli import main
from skelact.config import COMMAND_LINE, load_config, to_container

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "configs" / "nw_ucla" / "ctrgcn_joint_quick.yaml"
CLIPS = ["a01_s01_e00_v01", "a01_s02_e01_v02", "a02_s01_e00_v03", "a02_s02_e01_v01", "a03_s03_e02_v01",
         "a03_s01_e00_v02", "a05_s04_e00_v02", "a05_s02_e01_v01"]
TINY = ["epochs=1", "model.base_channels=4", "model.num_blocks=2", "data.batch_size=4", "data.num_workers=0",
        "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.threads=1"]


def test_relative_paths_follow_the_file_that_set_them(tmp_path, monkeypatch):
    mine = tmp_path / "configs" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text(f"_base_: {QUICK}\ndata: {{store: ../stores/mine, split: split}}\n"
                    "init: {from_run: ../runs/pretrained}\n")
    loaded = load_config(mine)
    d = loaded.cfg.data
    assert d.store == str(tmp_path / "stores" / "mine")  # beside the config file, wherever we stand
    assert loaded.cfg.init.from_run == str(tmp_path / "runs" / "pretrained")
    # the store is what the run reads, so the base's dataset is gone from the resolved config
    assert (d.format, d.source, dict(d.options)) == (None, None, {})
    assert load_config(QUICK).cfg.data.format == "nw-ucla"  # (it was there)

    monkeypatch.chdir(tmp_path / "configs")
    again = load_config(mine, ["data.store=elsewhere"])  # the command line: the current directory
    assert again.source_of("data.store") == COMMAND_LINE
    assert again.cfg.data.store == str(tmp_path / "configs" / "elsewhere")
    layout = load_config(QUICK, ["data.options.layout=my_layout.yaml"]).cfg.data.options.layout
    assert layout == str(tmp_path / "configs" / "my_layout.yaml")
    assert load_config(QUICK, ["data.options.layout=ntu25"]).cfg.data.options.layout == "ntu25"  # a built-in


def test_train_store_with_a_shipped_config(shared_data, tmp_path, capsys):
    src = tmp_path / "clips"
    src.mkdir()
    rows = []
    for name in CLIPS:  # real NW-UCLA joints as the user's own json-free arrays
        doc = json.loads((shared_data / "nw_ucla" / "all_sqe" / f"{name}.json").read_text())
        np.save(src / f"{name}.npy", np.asarray(doc["skeletons"], dtype=np.float32))
        rows.append([name, name[:3], "test" if name.endswith("v02") else "train"])
    with open(src / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["name", "label", "split"], *rows])
    store = tmp_path / "store"
    assert main(["prepare", "arrays", str(src), str(store), "--layout", "nw_ucla20", "--quiet",
                 "--workers", "1"]) == 0
    capsys.readouterr()
    run = tmp_path / "run"
    assert main(["train", "--store", str(store), str(QUICK), "data.split=split", *TINY,
                 "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["store"] == str(store.resolve()) and saved["data"]["split"] == "split"
    assert (saved["data"]["format"], saved["data"]["source"], saved["data"]["options"]) == (None, None, {})
    # the shipped pipelines came along untouched
    assert saved["data"]["test_pipeline"] == to_container(load_config(QUICK).cfg.data.test_pipeline)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test_samples"] == 3 and "(last checkpoint, epoch 1, 3 samples)" in out


def test_shipped_pipelines_name_joints_never_by_index():
    """issue 27, item 5: `CenterOnJoint joint: 1` was the spine only in Kinect v1 order, and silently another joint
    in a user's order; the shipped configs name it."""
    configs = sorted((REPO / "configs").rglob("*.yaml"))
    steps = []
    for path in configs:
        if "_base_" in path.parts and "datasets" not in path.parts:
            continue
        data = yaml.safe_load(path.read_text()).get("data") or {}
        for key in ("train_pipeline", "test_pipeline"):
            steps.extend(s for s in data.get(key) or [] if isinstance(s, dict) and "joint" in s)
    assert steps and all(isinstance(s["joint"], str) for s in steps), steps
