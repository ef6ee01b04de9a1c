"""Cached stores are keyed by content (issue 27, item 8): an edited labels.csv or layout YAML gives a new store with
the new content, an untouched source the same store, and a reused store is named with the time it was made."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np

from skelact.data.cache import open_or_prepare

CLIPS = ["a01_s01_e00_v01", "a02_s01_e00_v03", "a03_s03_e02_v01"]
LAYOUT = Path(__file__).resolve().parents[1] / "src" / "skelact" / "skeleton" / "layouts" / "nw_ucla20.yaml"


def write_labels(path: Path, labels: list[str]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["name", "label"], *zip(CLIPS, labels)])


def test_edits_to_labels_and_layout_make_a_new_store(shared_data, tmp_path, monkeypatch):
    root = tmp_path / "data"
    src = root / "mine"
    src.mkdir(parents=True)
    for name in CLIPS:  # real NW-UCLA clips, 8 frames each, as plain arrays
        doc = json.loads((shared_data / "nw_ucla" / "all_sqe" / f"{name}.json").read_text())
        np.save(src / f"{name}.npy", np.asarray(doc["skeletons"], dtype=np.float32)[:8])
    write_labels(src / "labels.csv", ["wave", "sit", "wave"])
    layout = tmp_path / "my_layout.yaml"
    shutil.copy(LAYOUT, layout)
    monkeypatch.setenv("SKELACT_DATA", str(root))
    monkeypatch.setenv("SKELACT_CACHE", str(tmp_path / "cache"))
    options = {"layout": str(layout)}
    said: list[str] = []

    def open_it():
        said.clear()
        return open_or_prepare("arrays", "mine", options, progress=False, log=said.append)

    first = open_it()
    assert [first.class_names[int(k)] for k in first.labels] == ["wave", "sit", "wave"]
    assert any("first use" in line for line in said)

    again = open_it()
    assert again.path == first.path
    assert said == [f"using the cached store {first.path} (made {first.manifest['created']} from arrays "
                    f"{src.resolve()}; a changed source file, layout or reader makes a new one)"]

    # the user fixes a label: same size, so only the modification time tells (set a second later to be sure)
    write_labels(src / "labels.csv", ["wave", "sit", "sit"])
    stat = (src / "labels.csv").stat()
    os.utime(src / "labels.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    edited = open_it()
    assert edited.path != first.path and any("first use" in line for line in said)
    assert [edited.class_names[int(k)] for k in edited.labels] == ["wave", "sit", "sit"]

    # an edited layout file (its bytes, whatever its time) is a new store too
    layout.write_text(layout.read_text() + "# my edit\n")
    relaid = open_it()
    assert relaid.path not in (first.path, edited.path)
    assert len(list((tmp_path / "cache").glob("arrays-mine-*"))) == 3
