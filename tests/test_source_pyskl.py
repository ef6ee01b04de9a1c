"""pyskl / mmaction2 annotation pickles: the real mmaction2 sample, keypoint files, and a writer round trip."""

from __future__ import annotations

import json
import pickle
import pickletools

import numpy as np
import pytest

from skelact.data.sequence import SkeletonSequence
from skelact.data.sources import open_source
from skelact.data.sources.pyskl import (PysklPickleSource, flatten_split_names, group_split_names,
                                        write_pyskl_pickle)
from skelact.errors import DataError, LayoutError
from skelact.skeleton.layout import get_layout

UCLA = ["a01_s01_e00_v01", "a01_s02_e01_v02", "a02_s01_e00_v03", "a03_s03_e02_v01", "a05_s04_e00_v02",
        "a06_s01_e01_v03"]


@pytest.fixture(scope="module")
def sample_pkl(shared_data):
    return shared_data / "mmaction2_pose_pkl_sample" / "sample.pkl"


@pytest.fixture(scope="module")
def sample_content(sample_pkl):
    with open(sample_pkl, "rb") as f:
        return pickle.load(f)


def pyskl_decompress_reference(frame_inds, rows, max_person):
    """pyskl ``DecompressPose(squeeze=True)`` written as its per-row loop (the original's structure)."""
    uniq = sorted(set(int(i) for i in frame_inds))
    new_index = {f: i for i, f in enumerate(uniq)}
    t_of = [new_index[int(i)] for i in frame_inds]
    total = len(uniq)
    num_person = max(t_of.count(t) for t in set(t_of))
    kp = np.zeros((num_person, total, rows.shape[1], 2), dtype=np.float32)
    sc = np.zeros((num_person, total, rows.shape[1]), dtype=np.float32)
    count = [0] * total
    for t, row in zip(t_of, rows):
        kp[count[t], t] = row[:, :2]
        sc[count[t], t] = row[:, 2]
        count[t] += 1
    if num_person > max_person:
        for t in range(total):
            n = count[t]
            sums = sc[:n, t].sum(-1)
            order = sorted(range(n), key=lambda p: -sums[p])
            kp[:n, t] = kp[order, t]
            sc[:n, t] = sc[order, t]
        num_person = max_person
    return kp[:num_person], sc[:num_person]


# ------------------------------------------------------------------------------------------------ the real sample


def test_real_sample_index_labels_and_split(sample_pkl, sample_content):
    source = open_source("pyskl", sample_pkl)
    items = source.items()
    assert len(items) == 100 and items[0] == "jf7RDuUTrsQ" and items[1] == "JTlatknwOrY"
    labels = source.labels()
    assert labels["jf7RDuUTrsQ"] == 325 and labels["JTlatknwOrY"] == 233
    assert labels == {a["frame_dir"]: a["label"] for a in sample_content["annotations"]}
    # the pickle's split {'train': [100 ids]}: a bare subset word goes to the split 'default'
    splits = source.splits_from_file()
    assert list(splits) == ["default"] and list(splits["default"]) == ["train"]
    assert splits["default"]["train"] == list(sample_content["split"]["train"])
    assert len(splits["default"]["train"]) == 100
    assert source.class_names() is None


def test_real_sample_missing_keypoint_file(sample_pkl):
    source = PysklPickleSource(sample_pkl)
    with pytest.raises(DataError, match="missing") as err:
        source.read("jf7RDuUTrsQ")
    assert err.value.path == str(sample_pkl.parent / "jf7RDuUTrsQ.pkl")
    assert err.value.field == "keypoint"
    assert "jf7RDuUTrsQ" in str(err.value) and "keypoint_dir" in str(err.value)
    with pytest.raises(LayoutError, match="--layout"):
        source.layout  # noqa: B018 - nothing to infer it from


def _rows_for(ann, seed):
    """Plausible [N, 17, 3] rows (x, y, score) for an annotation of the real sample."""
    rng = np.random.default_rng(seed)
    n = len(ann["frame_inds"])
    h, w = ann["img_shape"]
    xy = rng.uniform(0, 1, size=(n, 17, 2)) * np.array([w, h])
    score = rng.uniform(0.05, 1.0, size=(n, 17, 1))
    return np.concatenate([xy, score], axis=-1).astype(np.float16)


@pytest.mark.parametrize("max_persons", [10, 1])
def test_per_sample_keypoint_files_decompress_like_pyskl(sample_pkl, sample_content, tmp_path, max_persons):
    annotations = sample_content["annotations"][:3]
    for k, ann in enumerate(annotations):
        with open(tmp_path / f"{ann['frame_dir']}.pkl", "wb") as f:
            pickle.dump({"keypoint": _rows_for(ann, k)}, f)
    source = PysklPickleSource(sample_pkl, keypoint_dir=tmp_path, max_persons=max_persons)
    for k, ann in enumerate(annotations):
        seq = source.read(ann["frame_dir"])
        ref_kp, ref_sc = pyskl_decompress_reference(ann["frame_inds"], _rows_for(ann, k).astype(np.float32),
                                                    max_persons)
        np.testing.assert_array_equal(seq.keypoints, ref_kp)
        np.testing.assert_array_equal(seq.scores, ref_sc)
        assert seq.num_frames == len(np.unique(ann["frame_inds"]))  # frames without a skeleton are squeezed out
        assert seq.label == ann["label"] and seq.layout == "coco17"
        assert seq.meta["img_shape"] == ann["img_shape"] and seq.meta["total_frames"] == ann["total_frames"]
    # jf7RDuUTrsQ lists two skeletons in its first frames: with max_persons=1 the sort by score decides
    assert annotations[0]["frame_inds"][0] == annotations[0]["frame_inds"][1]


def test_raw_file_shards_and_box_threshold(sample_content, tmp_path):
    annotations = [dict(a) for a in sample_content["annotations"][:4]]
    shard = {a["frame_dir"]: {"keypoint": _rows_for(a, 10 + k)} for k, a in enumerate(annotations)}
    with open(tmp_path / "part_0.pkl", "wb") as f:
        pickle.dump(shard, f)
    for a in annotations:
        a["raw_file"] = "part_0.pkl"
    with open(tmp_path / "k400.pkl", "wb") as f:
        pickle.dump({"split": {"val": [a["frame_dir"] for a in annotations]}, "annotations": annotations}, f)
    source = PysklPickleSource(tmp_path / "k400.pkl", box_thr=0.9)
    for k, a in enumerate(annotations):
        keep = a["box_score"].astype(np.float64) >= 0.9
        if not keep.any():
            with pytest.raises(DataError, match="no skeleton"):
                source.read(a["frame_dir"])
            continue
        seq = source.read(a["frame_dir"])
        ref_kp, ref_sc = pyskl_decompress_reference(a["frame_inds"][keep],
                                                    _rows_for(a, 10 + k)[keep].astype(np.float32), 10)
        np.testing.assert_array_equal(seq.keypoints, ref_kp)
        np.testing.assert_array_equal(seq.scores, ref_sc)
    assert PysklPickleSource(tmp_path / "k400.pkl").splits_from_file() == {
        "default": {"val": [a["frame_dir"] for a in annotations]}}

    del shard[annotations[1]["frame_dir"]]
    with open(tmp_path / "part_0.pkl", "wb") as f:
        pickle.dump(shard, f)
    with pytest.raises(DataError, match="no entry") as err:
        PysklPickleSource(tmp_path / "k400.pkl").read(annotations[1]["frame_dir"])
    assert err.value.path == str(tmp_path / "part_0.pkl")


# ------------------------------------------------------------------------------------------------ splits


def test_group_split_names_rule():
    flat = {"xsub_train": ["a"], "xsub_val": ["b"], "xview_train": ["c"], "train1": ["d"], "test1": ["e"],
            "train": ["f"], "val": ["g"], "all": ["h"], "cross_view_test": ["i"]}
    assert group_split_names(flat) == {
        "xsub": {"train": ["a"], "val": ["b"]}, "xview": {"train": ["c"]},
        "split1": {"train": ["d"], "test": ["e"]}, "default": {"train": ["f"], "val": ["g"]},
        "all": {"all": ["h"]}, "cross_view": {"test": ["i"]}}
    assert flatten_split_names(group_split_names(flat)) == flat
    with pytest.raises(DataError, match="both mean"):
        group_split_names({"train1": ["a"], "split1_train": ["b"]})
    with pytest.raises(DataError, match="cannot be written") as err:
        flatten_split_names({"train": {"train": ["a"]}})
    assert err.value.field == "splits.train.train"
    with pytest.raises(DataError, match="cannot be written"):
        flatten_split_names({"xsub": {"few_shot": ["a"]}})


# ------------------------------------------------------------------------------------------------ writer


@pytest.fixture(scope="module")
def ucla_sequences(shared_data):
    seqs = []
    for name in UCLA:
        doc = json.loads((shared_data / "nw_ucla" / "all_sqe" / f"{name}.json").read_text())
        kp = np.asarray(doc["skeletons"], dtype=np.float32)[None]
        rng = np.random.default_rng(len(seqs))
        seqs.append(SkeletonSequence(keypoints=kp, scores=rng.uniform(size=kp.shape[:3]).astype(np.float32),
                                     label=doc["label"] - 1, name=name, layout="nw_ucla20",
                                     meta={"subject": int(name[5:7]), "view": int(name[-2:]),
                                           "label_name": name[:3]}))
    # a two-person sample: two real clips side by side
    a, b = seqs[0].keypoints[0], seqs[2].keypoints[0]
    t = min(len(a), len(b))
    seqs.append(SkeletonSequence(keypoints=np.stack([a[:t], b[:t]]), scores=np.ones((2, t, 20), np.float32),
                                 label=9, name="pair", layout="nw_ucla20", meta={"img_shape": (480, 640)}))
    return seqs


def test_writer_round_trip(tmp_path, ucla_sequences):
    splits = {"xview": {"train": [s.name for s in ucla_sequences if s.name.endswith(("v01", "v02"))],
                        "val": [s.name for s in ucla_sequences if s.name.endswith("v03")]},
              "default": {"train": ["pair", UCLA[0]]}, "split2": {"test": [UCLA[1]]}}
    out = write_pyskl_pickle(tmp_path / "ucla.pkl", iter(ucla_sequences), splits)
    assert out == tmp_path / "ucla.pkl" and [p.name for p in tmp_path.iterdir()] == ["ucla.pkl"]

    with open(out, "rb") as f:
        raw = pickle.load(f)
    assert raw["split"] == {"xview_train": splits["xview"]["train"], "xview_val": splits["xview"]["val"],
                            "train": ["pair", UCLA[0]], "test2": [UCLA[1]]}
    assert raw["annotations"][0]["total_frames"] == ucla_sequences[0].num_frames
    assert raw["annotations"][-1]["img_shape"] == (480, 640)

    source = PysklPickleSource(out)
    assert source.items() == [s.name for s in ucla_sequences]
    assert source.splits_from_file() == splits
    assert source.layout == "nw_ucla20"
    for seq in ucla_sequences:
        back = source.read(seq.name)
        np.testing.assert_array_equal(back.keypoints, seq.keypoints)
        np.testing.assert_array_equal(back.scores, seq.scores)
        assert back.label == seq.label and back.layout == "nw_ucla20" and back.meta == seq.meta


def test_written_pickle_is_portable_across_numpy_versions(tmp_path, ucla_sequences):
    out = write_pyskl_pickle(tmp_path / "p.pkl", ucla_sequences[:2], {})
    globals_used = {arg for op, arg, _ in pickletools.genops(out.read_bytes()) if isinstance(arg, str)}
    assert not any(g.startswith(("numpy._core", "numpy.core")) for g in globals_used)
    with open(out, "rb") as f:
        ann = pickle.load(f)["annotations"][0]
    assert ann["keypoint"].flags.writeable and ann["keypoint"].dtype == np.float32  # pyskl edits in place


def test_writer_rejects_bad_input_and_leaves_nothing(tmp_path, ucla_sequences):
    with pytest.raises(DataError, match="not among the written sequences") as err:
        write_pyskl_pickle(tmp_path / "x.pkl", ucla_sequences, {"xsub": {"train": ["ghost"]}})
    assert err.value.field == "split.xsub_train"
    with pytest.raises(DataError, match="appears twice"):
        write_pyskl_pickle(tmp_path / "x.pkl", [ucla_sequences[0], ucla_sequences[0]], {})
    assert list(tmp_path.iterdir()) == []


def test_layout_inference_from_joint_count(tmp_path, shared_data, ucla_sequences):
    ntu = np.load(shared_data / "ntu_rgbd_samples" / "npy" / "S001C001P001R001A001.skeleton.npy",
                  allow_pickle=True).item()
    body = np.asarray(ntu["skel_body0"], dtype=np.float32)[None]  # [1, 103, 25, 3]
    ann_ntu = {"frame_dir": "S001C001P001R001A001", "label": 0, "total_frames": body.shape[1], "keypoint": body}
    ann_ucla = {"frame_dir": "ucla", "label": 0, "total_frames": ucla_sequences[0].num_frames,
                "keypoint": ucla_sequences[0].keypoints}
    with open(tmp_path / "ntu.pkl", "wb") as f:
        pickle.dump({"split": {"xsub_train": ["S001C001P001R001A001"]}, "annotations": [ann_ntu, ann_ucla]}, f)
    source = PysklPickleSource(tmp_path / "ntu.pkl")
    seq = source.read("S001C001P001R001A001")
    assert seq.layout == "ntu25" and source.layout == "ntu25"
    np.testing.assert_array_equal(seq.keypoints, body)
    # 3D pickles carry no keypoint_score: present joints score 1
    assert seq.scores.shape == (1, 103, 25) and seq.scores.min() == 1.0
    with pytest.raises(LayoutError, match="20 joints.*--layout"):
        source.read("ucla")
    assert PysklPickleSource(tmp_path / "ntu.pkl", layout="nw_ucla20").read("ucla").layout == "nw_ucla20"
    assert PysklPickleSource(tmp_path / "ntu.pkl", layout=get_layout("nw_ucla20")).read("ucla").layout == "nw_ucla20"
    with pytest.raises(LayoutError, match="25 joints but layout 'nw_ucla20' has 20") as err:
        PysklPickleSource(tmp_path / "ntu.pkl", layout="nw_ucla20").read("S001C001P001R001A001")
    assert err.value.field == "annotations[0].keypoint"


def test_bad_pickles(tmp_path, sample_pkl):
    (tmp_path / "cut.pkl").write_bytes(sample_pkl.read_bytes()[:5000])
    with pytest.raises(DataError, match="not a readable pickle") as err:
        PysklPickleSource(tmp_path / "cut.pkl").items()
    assert err.value.path == str(tmp_path / "cut.pkl")
    with open(tmp_path / "odd.pkl", "wb") as f:
        pickle.dump({"annotations": [{"label": 1}]}, f)
    with pytest.raises(DataError, match="frame_dir") as err:
        PysklPickleSource(tmp_path / "odd.pkl").items()
    assert err.value.field == "annotations[0].frame_dir"
    with open(tmp_path / "odd.pkl", "wb") as f:
        pickle.dump({"annotations": [{"frame_dir": "a", "label": 1,
                                      "keypoint": np.zeros((1, 4, 17, 2)),
                                      "keypoint_score": np.zeros((1, 3, 17))}]}, f)
    with pytest.raises(DataError, match="expected shape") as err:
        PysklPickleSource(tmp_path / "odd.pkl").read("a")
    assert err.value.field == "annotations[0].keypoint_score"
    with pytest.raises(DataError, match="no such file"):
        PysklPickleSource(tmp_path / "absent.pkl").items()


def test_source_is_picklable_without_its_cache(tmp_path, ucla_sequences):
    out = write_pyskl_pickle(tmp_path / "u.pkl", ucla_sequences, {})
    source = PysklPickleSource(out)
    source.items()
    blob = pickle.dumps(source)
    assert len(blob) < 2000  # the annotations stay behind; a worker reloads them
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone.read(UCLA[3]).keypoints, ucla_sequences[3].keypoints)
