"""The Penn Action reader on the 2326 real label files, and on broken copies written with scipy."""

from __future__ import annotations

import collections
import pickle
import time

import numpy as np
import pytest
import scipy.io

from skelact.data.sources import open_source
from skelact.data.sources.penn_action import PENN_ACTION_CLASSES, PennActionSource
from skelact.errors import DataError


@pytest.fixture(scope="module")
def penn_root(shared_data):
    return shared_data / "penn_action_labels"


@pytest.fixture(scope="module")
def all_records(penn_root):
    source = PennActionSource(penn_root)
    started = time.perf_counter()
    records = [source.read(item) for item in source.items()]
    return records, time.perf_counter() - started


def test_counts_and_official_split(all_records):
    records, seconds = all_records
    # README / Zhang et al. ICCV 2013: 2326 clips, official split 1258 train / 1068 test
    assert len(records) == 2326
    assert collections.Counter(r.meta["subset"] for r in records) == {"train": 1258, "test": 1068}
    assert {r.label for r in records} == set(range(15))
    assert all(r.keypoints.shape[0] == 1 and r.keypoints.shape[2:] == (13, 2) for r in records)
    frames = [r.num_frames for r in records]
    assert (min(frames), max(frames)) == (18, 663)  # README: nframes 18..663
    assert seconds < 30, f"reading all Penn Action files took {seconds:.1f} s"


def test_first_file_by_hand(penn_root):
    source = open_source("penn-action", penn_root)
    items = source.items()
    assert items[0].name == "0001.mat"
    seq = source.read(items[0])
    mat = scipy.io.loadmat(str(items[0]), squeeze_me=True)
    assert seq.meta["label_name"] == "baseball_pitch" and seq.label == 0
    assert seq.num_frames == 151 and seq.keypoints.shape == (1, 151, 13, 2)
    np.testing.assert_array_equal(seq.keypoints[0, :, :, 0], mat["x"].astype(np.float32))
    np.testing.assert_array_equal(seq.keypoints[0, :, :, 1], mat["y"].astype(np.float32))
    np.testing.assert_array_equal(seq.scores[0], mat["visibility"].astype(np.float32))
    assert seq.keypoints[0, 0, 0, 0] == pytest.approx(136.5)  # x of joint 0 in frame 0, read off the file
    assert seq.meta["subset"] == ("train" if int(mat["train"]) == 1 else "test")
    assert seq.meta["view"] == mat["pose"] and seq.meta["img_shape"] == (360, 480)
    assert seq.name == "0001" and seq.layout == "penn13"


def test_unannotated_joints_become_missing(penn_root, all_records):
    """Clip 1292 (a pull-up filmed from the front, 204 x 480): the legs are out of the picture, and Penn stores
    those six joints at (0.75, 0.75) with visibility 0; they become exactly (0, 0), the annotated ones stay."""
    seq = PennActionSource(penn_root).read(penn_root / "labels" / "1292.mat")
    mat = scipy.io.loadmat(str(penn_root / "labels" / "1292.mat"), squeeze_me=True)
    assert mat["x"][0, 7] == pytest.approx(0.75) and mat["visibility"][0, 7] == 0
    np.testing.assert_array_equal(seq.keypoints[0, :, 7:], 0)
    np.testing.assert_array_equal(seq.scores[0, :, 7:], 0)
    np.testing.assert_array_equal(seq.keypoints[0, :, :7, 0], mat["x"][:, :7].astype(np.float32))
    # over all files: 187,352 joints (8.3 %) are unannotated, every one invisible
    records, _ = all_records
    missing = sum(int((r.keypoints == 0).all(axis=-1).sum()) for r in records)
    assert missing == 187352
    assert all(((r.keypoints == 0).all(axis=-1) <= (r.scores == 0)).all() for r in records)


def test_class_names_and_split_names(penn_root):
    source = PennActionSource(penn_root)
    assert source.class_names() == sorted(PENN_ACTION_CLASSES) and len(PENN_ACTION_CLASSES) == 15
    assert source.class_names()[0] == "baseball_pitch" and source.class_names()[-1] == "tennis_serve"
    assert source.split_names() == ["penn_action_official"]


def test_root_may_be_the_labels_folder(penn_root):
    assert len(PennActionSource(penn_root / "labels").items()) == 2326
    clone = pickle.loads(pickle.dumps(PennActionSource(penn_root)))
    assert clone.read(clone.items()[1]).name == "0002"


def _copy_with(penn_root, tmp_path, **changes):
    mat = scipy.io.loadmat(str(penn_root / "labels" / "0001.mat"), squeeze_me=True)
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    for key, value in changes.items():
        if value is None:
            del mat[key]
        else:
            mat[key] = value
    path = tmp_path / "9999.mat"
    scipy.io.savemat(str(path), mat)
    return path


def test_unchanged_copy_reads_back(penn_root, tmp_path):
    path = _copy_with(penn_root, tmp_path)
    seq = PennActionSource(tmp_path).read(path)
    ref = PennActionSource(penn_root).read(penn_root / "labels" / "0001.mat")
    np.testing.assert_array_equal(seq.keypoints, ref.keypoints)
    assert seq.label == ref.label and seq.meta == ref.meta


def test_bad_inputs_name_file_and_field(penn_root, tmp_path):
    mat = scipy.io.loadmat(str(penn_root / "labels" / "0001.mat"), squeeze_me=True)
    x, y, vis = mat["x"], mat["y"], mat["visibility"]
    nan_x = x.copy()
    nan_x[10, 3] = np.nan
    cases = [
        ({"x": x[:, :12]}, "x", "13 joints"),
        ({"y": y[:-1]}, "y", "shape"),
        ({"visibility": vis[:, :12]}, "visibility", "13 joints"),
        ({"x": x[:-1], "y": y[:-1], "visibility": vis[:-1]}, "nframes", "151"),
        ({"x": nan_x}, "x", "NaN"),
        ({"visibility": None}, "visibility", "missing"),
        ({"action": "juggling"}, "action", "unknown action"),
        ({"train": 0}, "train", "1 \\(train\\) or -1"),
    ]
    for changes, field, message in cases:
        path = _copy_with(penn_root, tmp_path, **changes)
        with pytest.raises(DataError, match=message) as err:
            PennActionSource(tmp_path).read(path)
        assert err.value.field == field, (changes.keys(), err.value)
        assert err.value.path == str(path)


def test_not_a_mat_file(penn_root, tmp_path):
    (tmp_path / "labels").mkdir()
    bogus = tmp_path / "labels" / "0001.mat"
    bogus.write_text("this is not MATLAB")
    truncated = tmp_path / "labels" / "0002.mat"
    truncated.write_bytes((penn_root / "labels" / "0002.mat").read_bytes()[:300])
    source = PennActionSource(tmp_path)
    assert source.items() == [bogus, truncated]
    for path in (bogus, truncated):
        with pytest.raises(DataError, match="MATLAB") as err:
            source.read(path)
        assert err.value.path == str(path)


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no .mat"):
        PennActionSource(tmp_path).items()
