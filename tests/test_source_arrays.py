"""The bring-your-own-arrays reader: real NW-UCLA skeletons written as arrays in both forms, read back identical."""

from __future__ import annotations

import csv
import json
import pickle

import numpy as np
import pytest

from skelact.data.sources import open_source
from skelact.data.sources.arrays import ArraySource, presence_scores
from skelact.errors import DataError, LayoutError
from skelact.skeleton.layout import get_layout

SAMPLES = ["a01_s01_e00_v01", "a01_s02_e01_v02", "a02_s01_e00_v03", "a03_s03_e02_v01", "a05_s04_e00_v02",
           "a06_s01_e01_v03"]


@pytest.fixture(scope="module")
def ucla(shared_data):
    """name -> (T, 20, 3) float32 array, straight from CTR-GCN's all_sqe JSON."""
    out = {}
    for name in SAMPLES:
        doc = json.loads((shared_data / "nw_ucla" / "all_sqe" / f"{name}.json").read_text())
        out[name] = np.asarray(doc["skeletons"], dtype=np.float32)
    return out


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def label_rows(ucla, with_split=True):
    rows = []
    for name in ucla:
        action, subject, _, view = name.split("_")
        row = [name, action, int(subject[1:]), int(view[1:])]
        if with_split:
            row.append("train" if view in ("v01", "v02") else "test")
        rows.append(row)
    header = ["name", "label", "subject", "view"] + (["split"] if with_split else [])
    return header, rows


@pytest.fixture
def per_file_root(tmp_path, ucla):
    for name, arr in ucla.items():
        np.save(tmp_path / f"{name}.npy", arr)
    write_csv(tmp_path / "labels.csv", *label_rows(ucla))
    return tmp_path


def test_per_sample_files_round_trip(per_file_root, ucla):
    source = open_source("arrays", per_file_root, layout="nw_ucla20")
    assert source.items() == SAMPLES
    # class names sorted: a01 a02 a03 a05 a06
    assert source.class_names() == ["a01", "a02", "a03", "a05", "a06"]
    for name in SAMPLES:
        seq = source.read(name)
        np.testing.assert_array_equal(seq.keypoints, ucla[name][None])
        assert seq.keypoints.dtype == np.float32 and seq.scores.shape == (1, len(ucla[name]), 20)
        assert seq.meta["label_name"] == name[:3]
        assert seq.label == source.class_names().index(name[:3])
        assert seq.meta["subject"] == int(name[5:7]) and isinstance(seq.meta["subject"], int)
        assert seq.meta["view"] == int(name[-2:])
        assert seq.layout == "nw_ucla20"
    assert source.read("a06_s01_e01_v03").label == 4


def test_scores_files_and_two_persons(per_file_root, ucla):
    a, b = ucla["a01_s01_e00_v01"], ucla["a02_s01_e00_v03"]
    t = min(len(a), len(b))
    two = np.stack([a[:t], b[:t]])
    np.save(per_file_root / "a01_s01_e00_v01.npy", two)
    scores = np.random.default_rng(0).uniform(size=(2, t, 20)).astype(np.float32)
    np.save(per_file_root / "a01_s01_e00_v01.scores.npy", scores)
    single_scores = np.full((len(ucla["a05_s04_e00_v02"]), 20), 0.5, dtype=np.float32)
    np.save(per_file_root / "a05_s04_e00_v02.scores.npy", single_scores)
    source = ArraySource(per_file_root, layout="nw_ucla20")
    seq = source.read("a01_s01_e00_v01")
    np.testing.assert_array_equal(seq.keypoints, two)
    np.testing.assert_array_equal(seq.scores, scores)
    np.testing.assert_array_equal(source.read("a05_s04_e00_v02").scores, single_scores[None])

    np.save(per_file_root / "a05_s04_e00_v02.scores.npy", single_scores[:-1])
    with pytest.raises(DataError, match="expected shape") as err:
        ArraySource(per_file_root, layout="nw_ucla20").read("a05_s04_e00_v02")
    assert err.value.path.endswith("a05_s04_e00_v02.scores.npy") and err.value.field == "scores"


def test_stacked_with_frames_column(tmp_path, ucla):
    longest = max(len(a) for a in ucla.values())
    stack = np.zeros((len(ucla), 2, longest, 20, 3), dtype=np.float32)
    for i, arr in enumerate(ucla.values()):
        stack[i, 0, : len(arr)] = arr
    np.save(tmp_path / "data.npy", stack)
    header, rows = label_rows(ucla)
    write_csv(tmp_path / "labels.csv", header + ["frames"], [r + [len(ucla[r[0]])] for r in rows])
    source = ArraySource(tmp_path, layout="nw_ucla20")
    for name, arr in ucla.items():
        seq = source.read(name)
        # the padding frames after `frames` and the all-zero second person are dropped
        np.testing.assert_array_equal(seq.keypoints, arr[None])
        np.testing.assert_array_equal(seq.scores, presence_scores(arr[None]))
    assert "data.npy[3]" in source.describe(SAMPLES[3])


def test_stacked_without_frames_trims_zero_padding(tmp_path, ucla):
    longest = max(len(a) for a in ucla.values())
    stack = np.zeros((len(ucla), longest + 7, 20, 3), dtype=np.float32)
    scores = np.zeros(stack.shape[:-1], dtype=np.float32)
    for i, arr in enumerate(ucla.values()):
        stack[i, : len(arr)] = arr
        scores[i, : len(arr)] = 0.25 + i / 10
    np.save(tmp_path / "data.npy", stack)
    np.save(tmp_path / "scores.npy", scores)
    write_csv(tmp_path / "labels.csv", *label_rows(ucla, with_split=False))
    source = ArraySource(tmp_path, layout="nw_ucla20")
    for i, (name, arr) in enumerate(ucla.items()):
        seq = source.read(name)
        np.testing.assert_array_equal(seq.keypoints, arr[None])
        np.testing.assert_allclose(seq.scores, np.full((1, len(arr), 20), 0.25 + i / 10), rtol=1e-6)
    # the reader is shipped to worker processes: the memory map must not travel, the result must not change
    clone = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(clone.read(SAMPLES[2]).keypoints, ucla[SAMPLES[2]][None])


def test_integer_labels_and_class_list(per_file_root, ucla):
    header, rows = label_rows(ucla)
    order = ["a06", "a05", "a03", "a02", "a01"]
    (per_file_root / "classes.txt").write_text("\n".join(order) + "\n")
    write_csv(per_file_root / "labels.csv", header, rows)
    source = ArraySource(per_file_root, layout="nw_ucla20")
    assert source.class_names() == order
    assert source.read("a01_s01_e00_v01").label == 4  # position in classes.txt, not sorted order

    int_rows = [[r[0], order.index(r[1])] + r[2:] for r in rows]
    write_csv(per_file_root / "labels.csv", header, int_rows)
    source = ArraySource(per_file_root, layout="nw_ucla20")
    assert [source.read(n).label for n in SAMPLES] == [4, 4, 3, 2, 1, 0]
    assert source.read("a02_s01_e00_v03").meta["label_name"] == "a02"

    int_rows[2][1] = 5  # 5 classes: indices 0..4
    write_csv(per_file_root / "labels.csv", header, int_rows)
    with pytest.raises(DataError, match="out of range") as err:
        ArraySource(per_file_root, layout="nw_ucla20").items()
    assert err.value.field == "line 4, column label" and err.value.path.endswith("labels.csv")

    write_csv(per_file_root / "labels.csv", header, [[r[0], "a09" if i == 2 else order[0]] + r[2:]
                                                     for i, r in enumerate(rows)])
    with pytest.raises(DataError, match="'a09' is not in the class list") as err:
        ArraySource(per_file_root, layout="nw_ucla20").items()
    assert err.value.field == "line 4, column label"


def test_bad_csv(per_file_root, ucla):
    header, rows = label_rows(ucla)
    write_csv(per_file_root / "labels.csv", ["name", "class"], [[r[0], r[1]] for r in rows])
    with pytest.raises(DataError, match="missing column 'label'") as err:
        ArraySource(per_file_root, layout="nw_ucla20").items()
    assert err.value.field == "label"

    # a row without its .npy is that sample's problem only: listed, readable rows still read
    write_csv(per_file_root / "labels.csv", header, rows + [["a99_s01_e00_v01", "a01", 1, 1, "train"]])
    source = ArraySource(per_file_root, layout="nw_ucla20")
    assert source.items()[-1] == "a99_s01_e00_v01"
    with pytest.raises(DataError, match="no such file .named by line 8 of labels.csv") as err:
        source.read("a99_s01_e00_v01")
    assert err.value.path.endswith("a99_s01_e00_v01.npy")
    assert source.read(rows[0][0]).name == rows[0][0]

    write_csv(per_file_root / "labels.csv", header, rows + [rows[0]])
    with pytest.raises(DataError, match="repeats line 2"):
        ArraySource(per_file_root, layout="nw_ucla20").items()

    (per_file_root / "labels.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        ArraySource(per_file_root, layout="nw_ucla20").items()


def test_layout_required_and_checked(per_file_root, tmp_path, ucla):
    with pytest.raises(LayoutError, match="needs a layout"):
        ArraySource(per_file_root)
    with pytest.raises(LayoutError, match="unknown layout"):
        ArraySource(per_file_root, layout="kinect_v9")
    source = ArraySource(per_file_root, layout="coco17")
    with pytest.raises(LayoutError, match="has 20 joints but layout 'coco17' expects 17") as err:
        source.read(SAMPLES[0])
    assert err.value.path.endswith(f"{SAMPLES[0]}.npy")
    # the file's own [T, V, C] shape, not the [M, T, V, C] the reader makes of it (issue 27, item 11)
    assert f"array of shape {ucla[SAMPLES[0]].shape} has" in str(err.value)

    stacked = tmp_path / "stacked"
    stacked.mkdir()
    np.save(stacked / "data.npy", np.stack([ucla[SAMPLES[0]][:10]] * 2))
    write_csv(stacked / "labels.csv", ["name", "label"], [["x", 0], ["y", 1]])
    with pytest.raises(LayoutError, match="expects 25") as err:
        ArraySource(stacked, layout="ntu25").items()
    assert err.value.path.endswith("data.npy")


def test_layout_object_as_prepare_forwards_it(per_file_root, ucla):
    source = ArraySource(per_file_root, layout=get_layout("nw_ucla20"))
    seq = source.read(SAMPLES[0])
    assert seq.layout == "nw_ucla20" == source.layout
    np.testing.assert_array_equal(seq.keypoints, ucla[SAMPLES[0]][None])


def test_user_layout_yaml(per_file_root, tmp_path, ucla):
    yaml_path = tmp_path / "chain20.yaml"
    joints = [f"j{i}" for i in range(20)]
    yaml_path.write_text("name: chain20\njoints: [" + ", ".join(joints) + "]\n"
                         "parents: [null, " + ", ".join(joints[:-1]) + "]\ncenter: j0\n")
    source = ArraySource(per_file_root, layout=str(yaml_path))
    seq = source.read(SAMPLES[1])
    assert seq.layout == str(yaml_path.resolve())
    np.testing.assert_array_equal(seq.keypoints, ucla[SAMPLES[1]][None])


def test_splits_from_columns(tmp_path, ucla):
    for name, arr in ucla.items():
        np.save(tmp_path / f"{name}.npy", arr)
    header, rows = label_rows(ucla)
    header.append("split_odd_subject")
    for r in rows:
        r.append("train" if r[2] % 2 else "")
    write_csv(tmp_path / "labels.csv", header, rows)
    splits = ArraySource(tmp_path, layout="nw_ucla20").splits_from_file()
    assert splits == {
        "split": {"train": ["a01_s01_e00_v01", "a01_s02_e01_v02", "a03_s03_e02_v01", "a05_s04_e00_v02"],
                    "test": ["a02_s01_e00_v03", "a06_s01_e01_v03"]},
        "odd_subject": {"train": ["a01_s01_e00_v01", "a02_s01_e00_v03", "a03_s03_e02_v01", "a06_s01_e01_v03"]},
    }
    # split columns are not meta
    assert "split" not in ArraySource(tmp_path, layout="nw_ucla20").read(SAMPLES[0]).meta


def test_split_file_json_and_csv(per_file_root):
    split = {"cross_view": {"train": SAMPLES[:2], "test": [SAMPLES[2]]}}
    (per_file_root / "split.json").write_text(json.dumps(split))
    source = ArraySource(per_file_root, layout="nw_ucla20", split_file="split.json")
    assert source.splits_from_file() == split

    (per_file_root / "split.csv").write_text("name,split,subset\n" + "".join(
        f"{n},cross_view,{'train' if n.endswith(('v01', 'v02')) else 'test'}\n" for n in SAMPLES))
    splits = ArraySource(per_file_root, layout="nw_ucla20", split_file="split.csv").splits_from_file()
    assert splits["cross_view"]["test"] == ["a02_s01_e00_v03", "a06_s01_e01_v03"]

    (per_file_root / "split.json").write_text(json.dumps({"cv": {"train": ["a01_s01_e00_v01", "nobody"]}}))
    with pytest.raises(DataError, match="'nobody'") as err:
        ArraySource(per_file_root, layout="nw_ucla20", split_file="split.json").splits_from_file()
    assert err.value.field == "cv.train" and err.value.path.endswith("split.json")


def test_bad_arrays(tmp_path, ucla):
    arr = ucla[SAMPLES[0]]
    write_csv(tmp_path / "labels.csv", ["name", "label"], [["s", 0]])
    np.save(tmp_path / "s.npy", arr[:, :, :1])
    with pytest.raises(DataError, match="2 or 3 coordinates"):
        ArraySource(tmp_path, layout="nw_ucla20").read("s")
    np.save(tmp_path / "s.npy", arr.reshape(-1))
    with pytest.raises(DataError, match=r"\[T, V, C\]"):
        ArraySource(tmp_path, layout="nw_ucla20").read("s")
    bad = arr.copy()
    bad[4, 2, 1] = np.nan
    np.save(tmp_path / "s.npy", bad)
    with pytest.raises(DataError, match="NaN") as err:
        ArraySource(tmp_path, layout="nw_ucla20").read("s")
    assert err.value.path.endswith("s.npy")
    (tmp_path / "s.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="not a readable .npy"):
        ArraySource(tmp_path, layout="nw_ucla20").read("s")

    stacked = tmp_path / "stacked"
    stacked.mkdir()
    np.save(stacked / "data.npy", np.zeros((2, 5, 20, 3), dtype=np.float32))
    write_csv(stacked / "labels.csv", ["name", "label"], [["x", 0]])
    with pytest.raises(DataError, match="2 samples but labels.csv has 1 rows"):
        ArraySource(stacked, layout="nw_ucla20").items()
    write_csv(stacked / "labels.csv", ["name", "label"], [["x", 0], ["y", 0]])
    with pytest.raises(DataError, match="all zeros"):
        ArraySource(stacked, layout="nw_ucla20").read("y")
    write_csv(stacked / "labels.csv", ["name", "label", "frames"], [["x", 0, 3], ["y", 0, 9]])
    with pytest.raises(DataError, match="9 frames but data.npy holds 5") as err:
        ArraySource(stacked, layout="nw_ucla20").items()
    assert err.value.field == "line 3, column frames"


def test_integer_labels_without_class_list(per_file_root, ucla):
    header, rows = label_rows(ucla)
    labels = ["3", "3", "", "-1", "0", "7"]  # empty and -1: unknown
    write_csv(per_file_root / "labels.csv", header, [[r[0], k] + r[2:] for r, k in zip(rows, labels)])
    source = ArraySource(per_file_root, layout="nw_ucla20")
    assert source.class_names() is None
    assert [source.read(n).label for n in SAMPLES] == [3, 3, -1, -1, 0, 7]
    assert "label_name" not in source.read(SAMPLES[0]).meta
    write_csv(per_file_root / "labels.csv", header, [[r[0], "-2"] + r[2:] for r in rows])
    with pytest.raises(DataError, match="out of range") as err:
        ArraySource(per_file_root, layout="nw_ucla20").items()
    assert err.value.field == "line 2, column label"
