"""The dataset store: exact round trips, the documented file layout read back with plain numpy, and damage
detection when a store is truncated, half-deleted or edited."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from skelact.data.sequence import SkeletonSequence
from skelact.data.store import (KEYPOINTS, SCORES, SkeletonStore, StoreWriter, commit_directory,
                                temporary_sibling)
from skelact.errors import DataError, StoreError
from skelact.skeleton.layout import Layout

# a user-defined 4-joint layout, to check that it travels with the store
TOY_LAYOUT = Layout.from_dict({
    "name": "toy4", "joints": ["hip", "neck", "l_hand", "r_hand"],
    "bones": [["neck", "hip"], ["l_hand", "neck"], ["r_hand", "neck"]], "center": "neck",
    "flip_pairs": [["l_hand", "r_hand"]], "parts": {"arms": ["l_hand", "r_hand"]},
})


def make_sequences(rng: np.random.Generator, shapes: list[tuple[int, int]], coords: int = 3):
    seqs = []
    for k, (m, t) in enumerate(shapes):
        seqs.append(SkeletonSequence(
            keypoints=rng.normal(size=(m, t, 4, coords)).astype(np.float32),
            # multiples of 1/1024 in [0, 1] are exact in float16, so the round trip can be compared exactly
            scores=(rng.integers(0, 1025, size=(m, t, 4)) / 1024).astype(np.float32),
            label=k % 3, name=f"clip{k:02d}", layout="toy4",
            meta={"subject": int(k + 1), "view": np.int64(k % 3 + 1), "fps": 30.0}))
    return seqs


def write_store(path, seqs, splits=None, class_names=("a", "b", "c")):
    writer = StoreWriter(path, TOY_LAYOUT)
    for s in seqs:
        writer.add(s, file=f"/data/{s.name}.txt")
    writer.close(class_names=list(class_names), splits=splits or {}, source={"format": "test", "path": "/data"})
    return SkeletonStore(path)


SHAPES = [(1, 5), (2, 3), (1, 1), (3, 7), (1, 12)]


@pytest.fixture
def seqs():
    return make_sequences(np.random.default_rng(0), SHAPES)


@pytest.fixture
def store(tmp_path, seqs):
    return write_store(tmp_path / "store", seqs, splits={"mine": {"train": np.array([0, 3]),
                                                                  "test": np.array([1, 2, 4])}})


def test_round_trip_is_exact(store, seqs):
    assert len(store) == len(seqs)
    for i, s in enumerate(seqs):
        got = store[i]
        assert got.keypoints.dtype == np.float32 and got.scores.dtype == np.float32
        np.testing.assert_array_equal(got.keypoints, s.keypoints)
        np.testing.assert_array_equal(got.scores, s.scores)
        assert (got.label, got.name, got.layout) == (s.label, s.name, "toy4")
        assert got.meta == {"subject": i + 1, "view": i % 3 + 1, "fps": 30.0}
        assert store.name(i) == s.name and store.file(i) == f"/data/{s.name}.txt"
    assert store[-1].name == "clip04"
    with pytest.raises(IndexError):
        store[len(seqs)]


def test_index_arrays_and_counts(store):
    np.testing.assert_array_equal(store.frames, [t for _, t in SHAPES])
    np.testing.assert_array_equal(store.persons, [m for m, _ in SHAPES])
    np.testing.assert_array_equal(store.labels, [0, 1, 2, 0, 1])
    # offsets are the running sum of M*T (hand-computed: 5, 6, 1, 21, 12)
    np.testing.assert_array_equal(store.offsets, [0, 5, 11, 12, 33])
    assert store.max_persons == 3
    assert store.class_names == ["a", "b", "c"] and store.num_classes == 3
    assert store.names == [f"clip{k:02d}" for k in range(5)]


def test_files_follow_the_documented_layout_with_plain_numpy(store, seqs):
    # someone without skelact: np.load + json, rows person-major at offset + p*T + t
    kp = np.load(store.path / KEYPOINTS)
    sc = np.load(store.path / SCORES)
    assert kp.shape == (45, 4, 3) and kp.dtype == np.float32
    assert sc.shape == (45, 4) and sc.dtype == np.float16
    with np.load(store.path / "index.npz") as z:
        offsets, persons, frames = z["offset"], z["persons"], z["frames"]
    s = seqs[3]  # 3 persons x 7 frames
    for p in range(3):
        for t in (0, 6):
            np.testing.assert_array_equal(kp[offsets[3] + p * frames[3] + t], s.keypoints[p, t])
    assert persons[3] == 3
    # the fixed 128-byte header keeps data aligned and the file exactly header + rows
    assert (store.path / KEYPOINTS).stat().st_size == 128 + 45 * 4 * 3 * 4
    assert (store.path / SCORES).stat().st_size == 128 + 45 * 4 * 2
    lines = (store.path / "samples.jsonl").read_text().splitlines()
    assert json.loads(lines[2])["name"] == "clip02"
    splits = json.loads((store.path / "splits.json").read_text())
    assert splits == {"mine": {"train": [0, 3], "test": [1, 2, 4]}}


def test_memory_mapped_on_read(store):
    store[0]
    kp, sc = store._arrays()
    assert isinstance(kp, np.memmap) and isinstance(sc, np.memmap)


def test_manifest_carries_the_layout_and_facts(store):
    manifest = json.loads((store.path / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert (manifest["num_joints"], manifest["coords"], manifest["num_samples"]) == (4, 3, 5)
    assert manifest["source"] == {"format": "test", "path": "/data"}
    assert manifest["rejected"] == [] and manifest["max_persons"] == 3
    assert store.layout == TOY_LAYOUT


def test_splits_and_unknown_split(store):
    assert store.split("mine", "train").tolist() == [0, 3]
    assert set(store.splits) == {"mine"}
    with pytest.raises(StoreError, match="no split 'xsub'.*mine"):
        store.split("xsub", "train")
    with pytest.raises(StoreError, match="no subset 'val'"):
        store.split("mine", "val")


def test_info_summary(store):
    info = store.info()
    assert info["num_samples"] == 5 and info["num_classes"] == 3
    assert info["frames"] == {"min": 1, "mean": pytest.approx(28 / 5), "max": 12, "total": 28}
    assert info["persons"] == {"1": 3, "2": 1, "3": 1}
    assert info["splits"] == {"mine": {"train": 2, "test": 3}}
    assert info["bytes"] == sum(p.stat().st_size for p in store.path.iterdir())
    json.dumps(info)


def test_pickles_without_its_arrays(store, seqs):
    store[0]
    blob = pickle.dumps(store)
    assert len(blob) < 10_000
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again[3].keypoints, seqs[3].keypoints)


def test_writer_rejects_samples_that_do_not_fit(tmp_path, seqs):
    writer = StoreWriter(tmp_path / "s", TOY_LAYOUT)
    writer.add(seqs[0])
    wrong_coords = SkeletonSequence(np.zeros((1, 2, 4, 2), np.float32), np.zeros((1, 2, 4), np.float32), 0, "x",
                                    "toy4")
    with pytest.raises(DataError, match="2 coordinates.*earlier samples have 3"):
        writer.add(wrong_coords)
    wrong_joints = SkeletonSequence(np.zeros((1, 2, 5, 3), np.float32), np.zeros((1, 2, 5), np.float32), 0, "y",
                                    "toy4")
    with pytest.raises(DataError, match="5 joints"):
        writer.add(wrong_joints)
    with pytest.raises(DataError, match="duplicate sample name 'clip00'"):
        writer.add(seqs[0])
    huge = SkeletonSequence(np.zeros((1, 2, 4, 3), np.float32), np.full((1, 2, 4), 1e6, np.float32), 0, "z",
                            "toy4")
    with pytest.raises(DataError, match="float16") as e:
        writer.add(huge)
    assert e.value.field == "scores"
    # the failed adds left no trace: the store holds exactly the one good sample
    writer.add(seqs[1])
    writer.close(class_names=["a", "b"], splits={}, source={})
    store = SkeletonStore(tmp_path / "s")
    assert store.names == ["clip00", "clip01"]
    np.testing.assert_array_equal(store[1].keypoints, seqs[1].keypoints)


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("victim", ["keypoints.npy", "scores.npy", "index.npz", "samples.jsonl", "splits.json"])
def test_deleted_file_is_named(store, victim):
    (store.path / victim).unlink()
    with pytest.raises(StoreError) as e:
        SkeletonStore(store.path)
    assert e.value.path.endswith(victim)
    assert "missing file" in one_line(e.value)


@pytest.mark.parametrize("victim", ["keypoints.npy", "scores.npy", "samples.jsonl", "index.npz"])
def test_truncated_file_is_named(store, victim):
    p = store.path / victim
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError) as e:
        SkeletonStore(store.path)
    assert e.value.path.endswith(victim)
    assert "truncated" in one_line(e.value)


def test_missing_or_broken_manifest(store, tmp_path):
    with pytest.raises(StoreError, match="no such store directory"):
        SkeletonStore(tmp_path / "nowhere")
    m = store.path / "manifest.json"
    text = m.read_text()
    m.write_text(text[:100])
    with pytest.raises(StoreError, match="truncated") as e:
        SkeletonStore(store.path)
    assert e.value.path.endswith("manifest.json")
    m.unlink()
    with pytest.raises(StoreError, match="not a skelact store"):
        SkeletonStore(store.path)


def test_inconsistent_but_same_size_files_are_caught(store):
    # a manifest edited to claim a different joint count: the .npy header disagrees
    m = store.path / "manifest.json"
    manifest = json.loads(m.read_text())
    manifest["num_joints"] = 5
    m.write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="disagrees with the manifest") as e:
        SkeletonStore(store.path)
    assert e.value.path.endswith("keypoints.npy")


def test_edited_index_is_caught(store):
    p = store.path / "index.npz"
    with np.load(p) as z:
        arrays = dict(z)
    arrays["frames"] = arrays["frames"].copy()
    arrays["frames"][0] += 1
    np.savez(p, **arrays)
    manifest = json.loads((store.path / "manifest.json").read_text())
    manifest["files"]["index.npz"] = p.stat().st_size
    (store.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="offsets do not match") as e:
        SkeletonStore(store.path)
    assert e.value.path.endswith("index.npz")


def test_commit_is_atomic_and_overwrite_replaces(tmp_path, seqs):
    out = tmp_path / "out"
    tmp = temporary_sibling(out)
    write_store(tmp, seqs[:2])
    commit_directory(tmp, out)
    assert len(SkeletonStore(out)) == 2 and not tmp.exists()
    tmp2 = temporary_sibling(out)
    write_store(tmp2, seqs)
    with pytest.raises(StoreError, match="already exists"):
        commit_directory(tmp2, out)
    assert len(SkeletonStore(out)) == 2
    commit_directory(tmp2, out, overwrite=True)
    assert len(SkeletonStore(out)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_abort_removes_the_directory(tmp_path, seqs):
    writer = StoreWriter(tmp_path / "s", TOY_LAYOUT)
    writer.add(seqs[0])
    writer.abort()
    assert not (tmp_path / "s").exists()
