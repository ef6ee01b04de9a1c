"""``skelact info`` counts missing joints and empty frames (issue 27, item 11): real NW-UCLA clips written as plain
arrays with known holes punched in them, prepared into a store and counted back."""

from __future__ import annotations

import csv
import json

import numpy as np

from skelact.cli import main
from skelact.data.prepare import prepare
from skelact.data.store import SkeletonStore

CLIPS = ["a01_s01_e00_v01", "a02_s01_e00_v03"]


def test_info_counts_the_holes_punched_in_real_clips(shared_data, tmp_path, capsys):
    src = tmp_path / "arrays"
    src.mkdir()
    clips = {}
    for name in CLIPS:
        doc = json.loads((shared_data / "nw_ucla" / "all_sqe" / f"{name}.json").read_text())
        clips[name] = np.asarray(doc["skeletons"], dtype=np.float32)[:12]  # a 12-frame slice, (12, 20, 3)
    first, second = clips[CLIPS[0]], clips[CLIPS[1]]
    # the real clips have no exact zeros of their own, so every hole below is one we made
    assert not (first == 0).all(-1).any() and not (second == 0).all(-1).any()
    first[0:5, [3, 5]] = 0.0  # 2 joints in 5 frames: 10 missing joints, no empty frame
    second[[2, 3, 7]] = 0.0  # 3 whole frames: 60 missing joints, 3 empty frames
    for name, arr in clips.items():
        np.save(src / f"{name}.npy", arr)
    with open(src / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["name", "label"], [CLIPS[0], "a01"], [CLIPS[1], "a02"]])
    store_dir = tmp_path / "store"
    prepare("arrays", src, store_dir, workers=1, progress=False, layout="nw_ucla20")

    gaps = SkeletonStore(store_dir).missing(rows_per_chunk=7)  # chunks that straddle the samples
    assert gaps == {"missing_joints": 70, "joint_slots": 2 * 12 * 20, "empty_frames": 3, "frames": 24,
                    "samples_with_empty_frames": 1}

    assert main(["info", str(store_dir)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("missing "))
    assert "70 of 480 joints (14.58 %" in line and "3 of 24 frames empty (12.50 %, in 1 samples)" in line
    assert main(["info", str(store_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["missing"] == gaps
