"""The ST-GCN Kinetics-skeleton / OpenPose JSON reader, on the real release sample and the OpenPose-on-NTU files."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest

from skelact.data.sources import open_source, source_class
from skelact.data.sources.openpose_json import OpenPoseJSONSource
from skelact.errors import ConfigError, DataError

KINETICS_FILE = "--33Lscn6sk.json"


@pytest.fixture(scope="module")
def kinetics_dir(shared_data):
    return shared_data / "kinetics_skeleton_json_sample"


@pytest.fixture(scope="module")
def ntu_openpose_dir(kinetics_dir):
    return kinetics_dir / "ntu_rgb_openpose_stgcn_format"


def stgcn_feeder_reference(doc: dict, num_person_in: int = 5, num_person_out: int = 2):
    """ST-GCN ``feeder_kinetics.__getitem__`` before its centring, on a [C, T, V, M] buffer as the original does.

    Slot ``frame_index - first index`` instead of ``frame_index`` (our documented shift); all else as the original:
    the first ``num_person_in`` skeletons per frame, then per frame a sort by the summed score, top
    ``num_person_out``.
    """
    first = min(f["frame_index"] for f in doc["data"])
    num_frames = max(f["frame_index"] for f in doc["data"]) - first + 1
    data = np.zeros((3, num_frames, 18, num_person_in))
    for frame in doc["data"]:
        t = frame["frame_index"] - first
        for m, person in enumerate(frame["skeleton"]):
            if m >= num_person_in:
                break
            data[0, t, :, m] = person["pose"][0::2]
            data[1, t, :, m] = person["pose"][1::2]
            data[2, t, :, m] = person["score"]
    order = (-data[2].sum(axis=1)).argsort(axis=1, kind="stable")
    for t, s in enumerate(order):
        data[:, t, :, :] = data[:, t, :, s].transpose((1, 2, 0))
    return data[:, :, :, :num_person_out]


def test_registry_maps_both_format_keys():
    assert source_class("openpose-json") is OpenPoseJSONSource
    assert source_class("kinetics-json") is OpenPoseJSONSource


def test_kinetics_release_sample(kinetics_dir):
    source = open_source("kinetics-json", kinetics_dir)
    items = source.items()
    assert [p.name for p in items] == [KINETICS_FILE]
    seq = source.read(items[0])
    # figures from the file itself (README: 189 frames, "flipping pancake" = 129, up to 2 people kept)
    assert seq.keypoints.shape == (2, 189, 18, 2) and seq.scores.shape == (2, 189, 18)
    assert seq.keypoints.dtype == np.float32
    assert seq.label == 129 and seq.meta["label_name"] == "flipping pancake"
    assert seq.name == "--33Lscn6sk" and seq.layout == "openpose18"
    assert source.class_names() is None


def test_kinetics_sample_matches_stgcn_feeder(kinetics_dir):
    doc = json.loads((kinetics_dir / KINETICS_FILE).read_text())
    # the sample has frames with 0 and with 3 skeletons, so both the sort and the cut to 2 are exercised
    counts = [len(f["skeleton"]) for f in doc["data"]]
    assert min(counts) == 0 and max(counts) == 3
    ref = stgcn_feeder_reference(doc)
    seq = OpenPoseJSONSource(kinetics_dir).read(kinetics_dir / KINETICS_FILE)
    np.testing.assert_allclose(seq.keypoints, ref[:2].transpose(3, 1, 2, 0), atol=1e-6)
    np.testing.assert_allclose(seq.scores, ref[2].transpose(2, 0, 1), atol=1e-6)


def test_first_frame_by_hand(kinetics_dir):
    doc = json.loads((kinetics_dir / KINETICS_FILE).read_text())
    first = doc["data"][0]
    assert first["frame_index"] == 1
    people = first["skeleton"]
    best = max(range(len(people)), key=lambda j: sum(people[j]["score"]))
    seq = OpenPoseJSONSource(kinetics_dir).read(kinetics_dir / KINETICS_FILE)
    # joint 0 of the best-scoring person of frame 1 is pose[0:2]
    assert tuple(seq.keypoints[0, 0, 0]) == pytest.approx(tuple(people[best]["pose"][0:2]), abs=1e-6)
    assert seq.scores[0, 0, 0] == pytest.approx(people[best]["score"][0], abs=1e-6)


def test_ntu_openpose_files_with_zero_scores(ntu_openpose_dir):
    source = OpenPoseJSONSource(ntu_openpose_dir)
    seqs = {p.name: source.read(p) for p in source.items()}
    throw = seqs["S004C003P003R001A007_rgb.json"]
    hug = seqs["S004C002P003R001A055_rgb.json"]
    assert (throw.label, throw.meta["label_name"]) == (7, "throw")
    assert hug.label == 55 and hug.meta["label_name"].startswith("hugging")
    # all scores are 0 (the converter wrote none), yet the poses are real: nothing may be zeroed
    assert throw.scores.max() == 0 and hug.scores.max() == 0
    assert throw.num_frames == 77 and hug.num_frames == 76
    assert throw.num_persons == 2 and hug.num_persons == 2  # hug has up to 4 skeletons per frame: cut to 2
    # equal (zero) score sums keep file order: slot 0 is the first skeleton listed in every frame
    doc = json.loads((ntu_openpose_dir / "S004C003P003R001A007_rgb.json").read_text())
    for frame in doc["data"]:
        t = frame["frame_index"] - 1
        pose = np.asarray(frame["skeleton"][0]["pose"], dtype=np.float32).reshape(18, 2)
        np.testing.assert_array_equal(throw.keypoints[0, t], pose)
        if len(frame["skeleton"]) == 1:
            assert not throw.keypoints[1, t].any()


def test_max_persons_option(kinetics_dir):
    seq = OpenPoseJSONSource(kinetics_dir, max_persons=1).read(kinetics_dir / KINETICS_FILE)
    ref = stgcn_feeder_reference(json.loads((kinetics_dir / KINETICS_FILE).read_text()), num_person_out=1)
    assert seq.num_persons == 1
    np.testing.assert_allclose(seq.keypoints[0], ref[:2, :, :, 0].transpose(1, 2, 0), atol=1e-6)
    with pytest.raises(ConfigError, match="max_persons"):
        OpenPoseJSONSource(kinetics_dir, max_persons=0)


def test_frame_gaps_are_placed_by_frame_index(kinetics_dir, tmp_path):
    doc = json.loads((kinetics_dir / KINETICS_FILE).read_text())
    frames = doc["data"][:10]
    kept = [frames[0], frames[4], frames[9]]  # frame_index 1, 5, 10
    doc["data"] = kept
    (tmp_path / "gaps.json").write_text(json.dumps(doc))
    seq = OpenPoseJSONSource(tmp_path).read(tmp_path / "gaps.json")
    assert seq.num_frames == 10
    present = np.flatnonzero(seq.scores.sum(axis=(0, 2)) > 0)
    assert present.tolist() == [0, 4, 9]


def test_label_file_as_in_the_release(kinetics_dir, tmp_path):
    shutil.copy(kinetics_dir / KINETICS_FILE, tmp_path / KINETICS_FILE)
    doc = json.loads((kinetics_dir / KINETICS_FILE).read_text())
    doc["data"] = [{"frame_index": 1, "skeleton": []}]
    (tmp_path / "empty_clip.json").write_text(json.dumps(doc))
    labels = {"--33Lscn6sk": {"has_skeleton": True, "label": "flipping pancake", "label_index": 129},
              "empty_clip": {"has_skeleton": False, "label": "flipping pancake", "label_index": 129}}
    (tmp_path / "kinetics_val_label.json").write_text(json.dumps(labels))
    source = OpenPoseJSONSource(tmp_path, label_file="kinetics_val_label.json")
    # ST-GCN's ignore_empty_sample: has_skeleton false is skipped; the label file is not a sample
    assert [p.name for p in source.items()] == [KINETICS_FILE]
    assert source.read(source.items()[0]).label == 129

    labels["--33Lscn6sk"]["label_index"] = 3
    (tmp_path / "kinetics_val_label.json").write_text(json.dumps(labels))
    with pytest.raises(DataError, match="disagrees") as err:
        OpenPoseJSONSource(tmp_path, label_file="kinetics_val_label.json").read(tmp_path / KINETICS_FILE)
    assert err.value.field == "label_index"

    del labels["--33Lscn6sk"]
    (tmp_path / "kinetics_val_label.json").write_text(json.dumps(labels))
    with pytest.raises(DataError, match="not listed") as err:
        OpenPoseJSONSource(tmp_path, label_file="kinetics_val_label.json").read(tmp_path / KINETICS_FILE)
    assert err.value.path.endswith("kinetics_val_label.json")


def test_sample_without_any_skeleton(kinetics_dir, tmp_path):
    doc = json.loads((kinetics_dir / KINETICS_FILE).read_text())
    for frame in doc["data"]:
        frame["skeleton"] = []
    (tmp_path / "none.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="no skeleton") as err:
        OpenPoseJSONSource(tmp_path).read(tmp_path / "none.json")
    assert err.value.field == "data" and err.value.path.endswith("none.json")


@pytest.mark.parametrize("edit, field, message", [
    (lambda d: d["data"][3]["skeleton"][0].update(pose=d["data"][3]["skeleton"][0]["pose"][:34]),
     "data[3].skeleton[0].pose", "36 numbers"),
    (lambda d: d["data"][3]["skeleton"][0].update(score=[0.5] * 17), "data[3].skeleton[0].score", "18 joint"),
    (lambda d: d["data"][2].update(frame_index="3"), "data[2].frame_index", "integer"),
    (lambda d: d["data"][2].update(frame_index=2), "data[2].frame_index", "twice"),
    (lambda d: d.pop("data"), "data", "missing"),
    (lambda d: d.update(label_index="x"), "label_index", "class index"),
])
def test_malformed_files(kinetics_dir, tmp_path, edit, field, message):
    doc = json.loads((kinetics_dir / KINETICS_FILE).read_text())
    edit(doc)
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=message) as err:
        OpenPoseJSONSource(tmp_path).read(tmp_path / "bad.json")
    assert err.value.field == field and err.value.path.endswith("bad.json")


def test_nan_and_truncated_files(kinetics_dir, tmp_path):
    text = (kinetics_dir / KINETICS_FILE).read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match="not valid JSON"):
        OpenPoseJSONSource(tmp_path).read(tmp_path / "cut.json")
    doc = json.loads(text)
    doc["data"][5]["skeleton"][0]["pose"][3] = float("nan")
    (tmp_path / "nan.json").write_text(json.dumps(doc))  # Python writes NaN, which its reader accepts
    with pytest.raises(DataError, match="NaN") as err:
        OpenPoseJSONSource(tmp_path).read(tmp_path / "nan.json")
    assert err.value.field == "data[5].skeleton[0].pose"


def test_source_is_picklable(kinetics_dir):
    source = OpenPoseJSONSource(kinetics_dir)
    clone = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(clone.read(clone.items()[0]).keypoints,
                                  source.read(source.items()[0]).keypoints)
