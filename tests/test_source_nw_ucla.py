"""NW-UCLA all_sqe JSON reader on the 1484 real files; bad files are edited copies of real ones."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from skelact.data.class_names import NW_UCLA_CLASS_NAMES
from skelact.data.sources import open_source
from skelact.data.sources.nw_ucla import ACTION_IDS, NWUCLASource, parse_nw_ucla_name
from skelact.errors import DataError
from skelact.skeleton.layout import get_layout


@pytest.fixture(scope="module")
def ucla_root(shared_data: Path) -> Path:
    return shared_data / "nw_ucla"


@pytest.fixture(scope="module")
def all_samples(ucla_root: Path):
    src = NWUCLASource(ucla_root)
    return {seq.name: seq for seq in map(src.read, src.items())}


def test_items_and_registry(ucla_root: Path):
    src = open_source("nw-ucla", ucla_root)
    assert isinstance(src, NWUCLASource)
    items = src.items()
    assert len(items) == 1484
    assert items[0].name == "a01_s01_e00_v01.json" and items == sorted(items)
    assert NWUCLASource(ucla_root / "all_sqe").items() == items  # all_sqe itself works as root too
    assert NWUCLASource(items[5]).items() == [items[5]]
    assert src.split_names() == ["nw_ucla_cross_view"]
    assert get_layout(src.layout).num_joints == 20


def test_every_sample_matches_ctr_gcn_lists(ucla_root: Path, all_samples: dict):
    # split_cross_view.json holds CTR-GCN's train/val lists with each sample's length and 1-based label
    lists = json.loads((ucla_root / "split_cross_view.json").read_text())
    listed = [entry for subset in lists.values() for entry in subset]
    assert len(listed) == len(all_samples) == 1484
    for entry in listed:
        seq = all_samples[entry["file_name"]]
        assert seq.keypoints.shape == (1, entry["length"], 20, 3), entry
        assert seq.label == entry["label"] - 1, entry
        assert (seq.scores == 1).all()
    views = Counter(seq.meta["view"] for seq in all_samples.values())
    assert views == {1: 516, 2: 504, 3: 464}  # cross-view: train views 1 + 2 = 1020, test view 3 = 464
    assert {entry["file_name"][-3:] for entry in lists["val"]} == {"v03"}


@pytest.mark.parametrize("name, frames, label, meta", [
    ("a01_s01_e00_v01", 44, 0, {"action": 1, "subject": 1, "repetition": 0, "view": 1}),
    ("a08_s05_e02_v02", 51, 6, {"action": 8, "subject": 5, "repetition": 2, "view": 2}),
    ("a12_s10_e04_v03", 21, 9, {"action": 12, "subject": 10, "repetition": 4, "view": 3}),
    ("a02_s09_e04_v02", 1, 1, {"action": 2, "subject": 9, "repetition": 4, "view": 2}),
    ("a01_s08_e02_v01", 201, 0, {"action": 1, "subject": 8, "repetition": 2, "view": 1}),
])
def test_known_samples(all_samples: dict, name: str, frames: int, label: int, meta: dict):
    seq = all_samples[name]
    assert seq.num_frames == frames and seq.num_persons == 1 and seq.label == label
    assert seq.meta == meta and seq.layout == "nw_ucla20"


def test_values_and_class_names(ucla_root: Path, all_samples: dict):
    text = (ucla_root / "all_sqe" / "a01_s01_e00_v01.json").read_text()
    assert text.startswith('{"file_name": "a01_s01_e00_v01", "skeletons": [[[-0.619699, 0.328046, 3.18186], ')
    np.testing.assert_array_equal(all_samples["a01_s01_e00_v01"].keypoints[0, 0, 0],
                                  np.float32([-0.619699, 0.328046, 3.18186]))
    names = NWUCLASource(ucla_root).class_names()
    assert names == list(NW_UCLA_CLASS_NAMES) and len(names) == 10
    assert names[all_samples["a11_s01_e00_v01"].label] == "throw"
    assert names[all_samples["a09_s01_e00_v01"].label] == "doffing"
    assert {seq.meta["action"] for seq in all_samples.values()} == set(ACTION_IDS)


def test_name_parsing():
    assert parse_nw_ucla_name("a11_s03_e01_v02") == {"action": 11, "subject": 3, "repetition": 1, "view": 2}
    for bad in ("a07_s01_e00_v01", "a1_s01_e00_v01", "sample"):
        with pytest.raises(DataError) as e:
            parse_nw_ucla_name(bad)
        assert e.value.field == "name"


# ---- bad input ---------------------------------------------------------------------------------------------------

def copy_with(ucla_root: Path, tmp_path: Path, name: str, edit=None, text: str | None = None) -> Path:
    path = tmp_path / f"{name}.json"
    if text is None:
        doc = json.loads((ucla_root / "all_sqe" / f"{name}.json").read_text())
        edit(doc)
        text = json.dumps(doc)
    path.write_text(text)
    return path


def expect_error(path: Path, field: str, fragment: str = "") -> None:
    with pytest.raises(DataError) as e:
        NWUCLASource(path.parent).read(path)
    assert e.value.path == str(path) and e.value.field == field, str(e.value)
    assert fragment in str(e.value), str(e.value)


def test_label_must_agree_with_the_name(ucla_root: Path, tmp_path: Path):
    path = copy_with(ucla_root, tmp_path, "a11_s01_e00_v01", lambda d: d.update(label=10))
    expect_error(path, "label", "label 10 means action a12, but the file name says a11")
    path = copy_with(ucla_root, tmp_path, "a11_s01_e00_v01", lambda d: d.update(label=9))
    assert NWUCLASource(tmp_path).read(path).label == 8  # the unedited value reads fine
    for bad in (0, 11, "9", True, 9.0):
        path = copy_with(ucla_root, tmp_path, "a11_s01_e00_v01", lambda d: d.update(label=bad))
        expect_error(path, "label", "expected an integer 1..10")


def test_bad_files(ucla_root: Path, tmp_path: Path):
    name = "a03_s02_e01_v03"
    expect_error(copy_with(ucla_root, tmp_path, name, text=""), "json", "empty file")
    expect_error(copy_with(ucla_root, tmp_path, name, text="{}"), "file_name", "empty JSON object")
    expect_error(copy_with(ucla_root, tmp_path, name, text='{"file_name": "a03_s02_e01_v03", "skeletons": [[['),
                 "json", "not valid JSON")
    expect_error(copy_with(ucla_root, tmp_path, name, text="[1, 2]"), "json", "got a list")
    expect_error(copy_with(ucla_root, tmp_path, name, lambda d: d.pop("label")), "label", "missing key(s) 'label'")
    expect_error(copy_with(ucla_root, tmp_path, name, lambda d: d.pop("skeletons")), "skeletons", "missing")
    expect_error(copy_with(ucla_root, tmp_path, name, lambda d: d.update(file_name="a03_s02_e01_v01")),
                 "file_name", "a03_s02_e01_v01")


def test_bad_skeletons(ucla_root: Path, tmp_path: Path):
    name = "a03_s02_e01_v03"

    def set_nan(doc):
        doc["skeletons"][2][5][1] = float("nan")

    path = copy_with(ucla_root, tmp_path, name, set_nan)
    assert "NaN" in path.read_text()  # Python's json writes the NaN literal, and reads it back
    expect_error(path, "skeletons", "frame 2 joint 5 is not a finite number")
    expect_error(copy_with(ucla_root, tmp_path, name, lambda d: d.update(skeletons=[f[:19] for f in d["skeletons"]])),
                 "skeletons", "expected shape [T, 20, 3], got [")
    expect_error(copy_with(ucla_root, tmp_path, name, lambda d: d["skeletons"][0].pop()), "skeletons",
                 "different shapes")
    expect_error(copy_with(ucla_root, tmp_path, name, lambda d: d["skeletons"][1][0].__setitem__(0, "x")),
                 "skeletons", "non-numbers")
    expect_error(copy_with(ucla_root, tmp_path, name, lambda d: d.update(skeletons=[])), "skeletons", "no frames")
    expect_error(copy_with(ucla_root, tmp_path, name, lambda d: d.update(skeletons={"a": 1})), "skeletons", "dict")


def test_missing_root(tmp_path: Path):
    with pytest.raises(DataError):
        NWUCLASource(tmp_path / "nowhere").items()
    with pytest.raises(DataError):
        NWUCLASource(tmp_path).items()
