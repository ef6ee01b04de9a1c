"""Standard splits against the published id lists, the NW-UCLA list file, and user split files."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from skelact.data.splits import (NTU60_XSUB_TRAIN_SUBJECTS, NTU120_XSUB_TRAIN_SUBJECTS, STANDARD_SPLITS,
                                 SplitBuilder, compute_split, read_split_file, resolve_named_splits, short_names,
                                 standard_split)
from skelact.errors import ConfigError, DataError

NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


def test_ntu_subject_lists_have_the_published_sizes_and_members():
    # NTU-60 (CVPR 2016): 40 subjects, half for training; NTU-120 (TPAMI 2020): 106 subjects, 53 for training
    assert len(NTU60_XSUB_TRAIN_SUBJECTS) == 20
    assert len(NTU120_XSUB_TRAIN_SUBJECTS) == 53
    assert {1, 2, 4, 5, 38} <= NTU60_XSUB_TRAIN_SUBJECTS
    assert not {3, 6, 7, 39, 40} & NTU60_XSUB_TRAIN_SUBJECTS
    # NTU-120 keeps NTU-60's training subjects and adds 33 of the new ones, up to subject 103
    assert NTU60_XSUB_TRAIN_SUBJECTS < NTU120_XSUB_TRAIN_SUBJECTS
    assert {45, 70, 100, 103} <= NTU120_XSUB_TRAIN_SUBJECTS
    assert not {41, 44, 104, 105, 106} & NTU120_XSUB_TRAIN_SUBJECTS
    assert max(NTU120_XSUB_TRAIN_SUBJECTS) == 103


@pytest.mark.parametrize("split, value, subset", [
    ("ntu60_xsub", 1, "train"), ("ntu60_xsub", 3, "test"), ("ntu60_xsub", 40, "test"), ("ntu60_xsub", 41, None),
    ("ntu60_xview", 1, "test"), ("ntu60_xview", 2, "train"), ("ntu60_xview", 3, "train"),
    ("ntu120_xsub", 45, "train"), ("ntu120_xsub", 44, "test"), ("ntu120_xsub", 106, "test"),
    ("ntu120_xsub", 107, None),
    ("ntu120_xset", 2, "train"), ("ntu120_xset", 32, "train"), ("ntu120_xset", 1, "test"),
    ("ntu120_xset", 17, "test"), ("ntu120_xset", 33, None),
    ("nw_ucla_cross_view", 1, "train"), ("nw_ucla_cross_view", 2, "train"), ("nw_ucla_cross_view", 3, "test"),
    ("penn_action_official", "train", "train"), ("penn_action_official", "test", "test"),
])
def test_rule_sends_an_id_to_the_published_subset(split, value, subset):
    rule = STANDARD_SPLITS[split]
    assert rule.assign({rule.key: value}) == subset


def test_ids_written_as_in_file_names_read_as_integers():
    assert standard_split("ntu60_xsub").assign({"subject": "P008"}) == "train"
    assert standard_split("nw_ucla_cross_view").assign({"view": "v03"}) == "test"
    assert standard_split("ntu60_xview").assign({"camera": np.int64(1)}) == "test"


def test_real_ntu_file_names_fall_into_the_expected_subsets(shared_data):
    # ids parsed here from the file names S<setup>C<camera>P<subject>R<rep>A<action>, independently of the reader
    names = sorted(p.name.split(".")[0] for p in (shared_data / "ntu_rgbd_samples" / "skeleton").iterdir())
    metas = []
    for n in names:
        s, c, p, r, a = map(int, NTU_NAME.match(n).groups())
        metas.append({"setup": s, "camera": c, "subject": p})
    xsub = compute_split("ntu60_xsub", metas)
    xview = compute_split("ntu60_xview", metas)
    xset = compute_split("ntu120_xset", metas)
    by_name = dict(zip(names, range(len(names))))
    # P001, P008 and P015 are NTU-60 x-sub training subjects, P003 a test subject
    assert {names[i] for i in xsub["train"]} == {"S001C001P001R001A011", "S001C003P008R002A058",
                                                 "S003C001P015R001A034"}
    assert {names[i] for i in xsub["test"]} == {"S002C001P003R001A003", "S004C002P003R001A017"}
    # camera 1 is the x-view test camera
    assert sorted(xview["test"].tolist()) == sorted(by_name[n] for n in names if "C001" in n)
    # setups 2 and 4 are even: x-set training
    assert {names[i] for i in xset["train"]} == {"S002C001P003R001A003", "S004C002P003R001A017"}


def test_nw_ucla_cross_view_matches_the_published_list_exactly(shared_data):
    root = shared_data / "nw_ucla"
    names = sorted(p.stem for p in (root / "all_sqe").glob("*.json"))
    metas = [{"view": int(re.search(r"_v(\d+)$", n).group(1))} for n in names]
    split = compute_split("nw_ucla_cross_view", metas, names)
    reference = json.loads((root / "split_cross_view.json").read_text())
    ref_train = {d["file_name"] for d in reference["train"]}
    ref_test = {d["file_name"] for d in reference["val" if "val" in reference else "test"]}
    assert (len(split["train"]), len(split["test"])) == (1020, 464)
    assert {names[i] for i in split["train"]} == ref_train
    assert {names[i] for i in split["test"]} == ref_test


def test_missing_meta_key_names_the_sample_and_field():
    with pytest.raises(DataError) as e:
        SplitBuilder(["ntu60_xsub"]).add(0, {"camera": 1}, "S001C001P001R001A001.skeleton")
    assert e.value.field == "meta.subject"
    assert e.value.path == "S001C001P001R001A001.skeleton"
    with pytest.raises(DataError, match="expected 'train' or 'test'"):
        standard_split("penn_action_official").assign({"subset": 1}, "0001.mat")


def test_unknown_standard_split_lists_the_known_ones():
    with pytest.raises(ConfigError, match="ntu60_xsub"):
        standard_split("ntu_xsub")


def test_short_names_and_clash():
    assert short_names(["ntu60_xsub", "ntu60_xview"]) == {"ntu60_xsub": "xsub", "ntu60_xview": "xview"}
    assert short_names(["ntu120_xsub", "ntu120_xset"]) == {"ntu120_xsub": "xsub", "ntu120_xset": "xset"}
    assert short_names(["nw_ucla_cross_view"]) == {"nw_ucla_cross_view": "cross_view"}
    assert short_names(["penn_action_official"]) == {"penn_action_official": "official"}
    assert short_names(["ntu60_xsub", "ntu120_xsub"]) == {"ntu60_xsub": "xsub", "ntu120_xsub": "ntu120_xsub"}


def test_split_file_json_and_csv_give_the_same_indices(tmp_path):
    as_json = tmp_path / "s.json"
    as_json.write_text(json.dumps({"mine": {"train": ["a", "c"], "test": ["b"]}}))
    as_csv = tmp_path / "s.csv"
    as_csv.write_text("name,split,subset\na,mine,train\nb,mine,test\nc,mine,train\n")
    index = {"a": 0, "b": 1, "c": 2}
    for f in (as_json, as_csv):
        resolved, unknown = resolve_named_splits(read_split_file(f), index, f)
        assert resolved["mine"]["train"].tolist() == [0, 2]
        assert resolved["mine"]["test"].tolist() == [1]
        assert unknown == []


def test_unknown_name_in_split_file_names_file_and_first_unknown(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("a,mine,train\nzz,mine,test\nyy,mine,test\n")
    with pytest.raises(DataError) as e:
        resolve_named_splits(read_split_file(f), {"a": 0}, f)
    assert e.value.path == str(f)
    assert "'zz'" in str(e.value) and "2 unknown" in str(e.value)
    resolved, unknown = resolve_named_splits(read_split_file(f), {"a": 0}, f, strict=False)
    assert unknown == ["zz", "yy"] and resolved["mine"]["test"].size == 0


@pytest.mark.parametrize("text, where", [
    ("a,mine\n", "line 1"),
    ("name,split,subset\na,mine,train\nb,,test\n", "line 3"),
])
def test_malformed_csv_row_names_the_line(tmp_path, text, where):
    f = tmp_path / "s.csv"
    f.write_text(text)
    with pytest.raises(DataError) as e:
        read_split_file(f)
    assert e.value.field == where


@pytest.mark.parametrize("text", ['{"mine": ["a"]}', '{"mine": {"train": [1, 2]}}', "{not json", "{}"])
def test_malformed_json_split_file_is_one_error(tmp_path, text):
    f = tmp_path / "s.json"
    f.write_text(text)
    with pytest.raises(DataError) as e:
        read_split_file(f)
    assert e.value.path == str(f)
