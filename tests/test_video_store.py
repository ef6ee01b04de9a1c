"""Video as a data source: ``prepare video-folder`` (class folders, a CSV list, UCF101's split lists) on the real
NTU RGB+D clips, rejected files, the keypoint-free store and stores whose samples refer to videos, extract-poses on
a video store, the frame cache, and a store written by the format-1 code.

The NTU clips' labels come from their names (``A006`` is class 6 of ``label_map_ntu60.txt``, 1-based), which is
what the stores are checked against. Clips are linked into folders the tests build, never copied.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skelact.cli import main
from skelact.data.sequence import SkeletonSequence
from skelact.data.store import SkeletonStore, StoreWriter
from skelact.data.video_sample import VideoRef
from skelact.errors import DataError, StoreError
from skelact.pose.base import FramePoses, PoseEstimator
from skelact.skeleton.layout import get_layout

FIXTURE_V1 = Path(__file__).parent / "data" / "store_v1"
#: the four S004 clips and A001 (README.txt of shared/data/videos): name -> NTU action number
CLIPS = {"S001C001P001R001A001_rgb.avi": 1, "S004C002P003R002A046_rgb.avi": 46, "S004C003P003R001A006_rgb.avi": 6,
         "S004C003P003R001A007_rgb.avi": 7}


def need(module: str) -> Any:
    """An optional dependency: skip without it, fail under CI (where every extra is installed)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip(f"{module} not installed")


@pytest.fixture(scope="module")
def videos(shared_data: Path) -> Path:
    need("av")
    return shared_data / "videos"


@pytest.fixture(scope="module")
def ntu_names(videos: Path) -> list[str]:
    return [line.strip() for line in (videos / "label_map_ntu60.txt").read_text().splitlines() if line.strip()]


def _action(name: str) -> int:
    return int(name.split("A")[-1][:3])


def _add_bad_files(folder: Path, videos: Path) -> dict[str, str]:
    """A truncated copy of a real clip and a text file named like a video; returns file name -> expected reason."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cut.avi").write_bytes((videos / "S001C001P001R001A001_rgb.avi").read_bytes()[:400_000])
    (folder / "notes.avi").write_text("this is a text file, not a video\n" * 10)
    return {"cut.avi": "truncated: the container declares 103 frames but only 22 are present",
            "notes.avi": "not a video file FFmpeg can read"}


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------------------------------------------
# prepare video-folder


def test_class_folders_give_labels_from_folder_names_and_list_every_rejected_file(tmp_path, videos, ntu_names,
                                                                                  capsys):
    src = tmp_path / "ntu"
    for clip, action in CLIPS.items():
        (src / ntu_names[action - 1]).mkdir(parents=True, exist_ok=True)
        (src / ntu_names[action - 1] / clip).symlink_to(videos / clip)
    bad = _add_bad_files(src / ntu_names[6 - 1], videos)

    rc, out, err = _run(["prepare", "video-folder", str(src), str(tmp_path / "store"), "--workers", "1", "-q"],
                        capsys)
    assert rc == 0, err
    store = SkeletonStore(tmp_path / "store")
    assert store.kind == "video" and not store.has_keypoints and store.manifest["format_version"] == 2
    assert store.class_names == sorted(ntu_names[a - 1] for a in CLIPS.values())
    for i in range(len(store)):
        clip = Path(store.video(i).path).name
        assert store.class_names[store.labels[i]] == ntu_names[CLIPS[clip] - 1]
        assert store.video_path(i).resolve() == (videos / clip).resolve()
    # never silently dropped: every video file is either stored or rejected with its reason
    reasons = {Path(r["file"]).name: r["reason"] for r in store.rejected}
    assert len(store) + len(reasons) == len(CLIPS) + len(bad)
    for name, reason in bad.items():
        assert reason in reasons[name]
        assert name in out  # the report lists it
    assert "2 of 6 input item(s) were rejected" in err
    # the probe's count is the decoder's: A046 has 67 frames (README), and decoding it gives as many
    from skelact.video.reader import VideoReader

    i46 = store.names.index(f"{ntu_names[45]}/S004C002P003R002A046_rgb")
    with VideoReader(videos / "S004C002P003R002A046_rgb.avi", max_side=64, threads=1) as reader:
        decoded = sum(1 for _ in reader)
    ref = store.video(i46)
    assert ref.frames == decoded == 67 and (ref.width, ref.height, ref.fps) == (1920, 1080, 30.0)
    with pytest.raises(StoreError, match="holds no keypoints"):
        store[0]
    rc, out, _ = _run(["info", str(tmp_path / "store")], capsys)
    assert rc == 0 and "videos    4 under" in out and "rejected  2 input item(s)" in out


def test_a_csv_list_gives_labels_and_its_split_column(tmp_path, videos, ntu_names, capsys):
    src = tmp_path / "clips"
    (src / "s004").mkdir(parents=True)
    rows = ["path,label,split"]
    for clip, action in CLIPS.items():
        (src / "s004" / clip).symlink_to(videos / clip)
        subset = "train" if "C003" in clip else "test"  # cross-view style: camera 3 trains
        rows.append(f"s004/{clip},{ntu_names[action - 1]},{subset}")
    _add_bad_files(src / "bad", videos)
    rows += [f"bad/cut.avi,{ntu_names[0]},train", f"bad/notes.avi,{ntu_names[0]},test"]
    (src / "videos.csv").write_text("\n".join(rows) + "\n")

    rc, out, err = _run(["prepare", "video-folder", str(src / "videos.csv"), str(tmp_path / "store"), "-q",
                         "--workers", "2"], capsys)
    assert rc == 0, err
    store = SkeletonStore(tmp_path / "store")
    assert len(store) == 4 and len(store.rejected) == 2
    for i, name in enumerate(store.names):
        assert store.class_names[store.labels[i]] == ntu_names[_action(name) - 1]
    train = sorted(store.names[i] for i in store.split("list", "train"))
    test = sorted(store.names[i] for i in store.split("list", "test"))
    assert train == ["s004/S004C003P003R001A006_rgb", "s004/S004C003P003R001A007_rgb"]
    assert test == ["s004/S001C001P001R001A001_rgb", "s004/S004C002P003R002A046_rgb"]  # cut.avi was rejected
    assert "split list: test 2, train 2" in out  # subsets in the order the list first names them


def test_ucf101_style_split_lists_number_classes_by_class_index(tmp_path, videos, capsys):
    src = tmp_path / "UCF-101"
    classes = {1: "DrinkWater", 6: "PickUp", 7: "Throw", 46: "TouchBack"}
    for clip, action in CLIPS.items():
        (src / classes[action]).mkdir(parents=True)
        (src / classes[action] / clip).symlink_to(videos / clip)
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    # classInd's order is not the alphabetical one, so a reader that sorted folder names would fail here
    order = ["Throw", "DrinkWater", "TouchBack", "PickUp"]
    (lists / "classInd.txt").write_text("".join(f"{k + 1} {name}\n" for k, name in enumerate(order)))
    train = [c for c in CLIPS if "C003" not in c]
    test = [c for c in CLIPS if "C003" in c]
    (lists / "trainlist01.txt").write_text("".join(
        f"{classes[CLIPS[c]]}/{c} {order.index(classes[CLIPS[c]]) + 1}\r\n" for c in train))
    (lists / "testlist01.txt").write_text("".join(f"{classes[CLIPS[c]]}/{c}\r\n" for c in test))

    rc, out, err = _run(["prepare", "video-folder", str(src), str(tmp_path / "store"), "-q", "--workers", "1",
                         "--split-file", str(lists / "testlist01.txt")], capsys)
    assert rc == 0, err
    store = SkeletonStore(tmp_path / "store")
    assert store.class_names == order
    for i, name in enumerate(store.names):
        assert store.labels[i] == order.index(classes[_action(name)])
    assert sorted(Path(store.names[i]).name + ".avi" for i in store.split("split01", "train")) == sorted(train)
    assert sorted(Path(store.names[i]).name + ".avi" for i in store.split("split01", "test")) == sorted(test)


def test_prepare_video_folder_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, _, err = _run(["prepare", "video-folder", str(tmp_path / "empty"), str(tmp_path / "s"), "-q"], capsys)
    assert rc == 2 and err.count("\n") == 1 and "no video files" in err
    (tmp_path / "list.csv").write_text("path,label\n../outside.avi,a\n")
    rc, _, err = _run(["prepare", "video-folder", str(tmp_path / "list.csv"), str(tmp_path / "s"), "-q"], capsys)
    assert rc == 2 and "line 2" in err and "relative to" in err
    rc, _, err = _run(["prepare", "video-folder", str(tmp_path / "list.csv"), str(tmp_path / "s"), "-q",
                       "--layout", "coco17"], capsys)
    assert rc == 2 and "extract-poses" in err


# ----------------------------------------------------------------------------------------------------------------
# the store format


def test_a_store_written_by_the_format_1_code_still_opens_and_new_skeleton_stores_stay_format_1(tmp_path):
    old = SkeletonStore(FIXTURE_V1)
    assert old.manifest["format_version"] == 1 and "kind" not in old.manifest
    assert old.kind == "skeleton" and old.video(0) is None and old.video_root is None
    seq = old[1]  # written as arange over [M=2, T=3, V=17, C=2] plus 1000 x the sample index
    assert seq.keypoints.shape == (2, 3, 17, 2) and seq.keypoints[1, 2, 16, 1] == 1000 + 2 * 3 * 17 * 2 - 1
    assert old.labels.tolist() == [0, 1, 0] and old.split("demo", "test").tolist() == [2]
    # the same samples written now: still version 1, with byte-identical arrays and records
    writer = StoreWriter(tmp_path / "new", get_layout("coco17"))
    for i in range(len(old)):
        writer.add(old[i], file=old.file(i))
    manifest = writer.close(class_names=old.class_names, splits=old.splits, source=old.manifest["source"])
    assert manifest["format_version"] == 1 and "kind" not in manifest
    for name in ("keypoints.npy", "scores.npy", "samples.jsonl", "splits.json"):
        assert (tmp_path / "new" / name).read_bytes() == (FIXTURE_V1 / name).read_bytes(), name


def test_video_references_must_align_with_the_keypoints(tmp_path):
    layout = get_layout("coco17")
    seq = SkeletonSequence(np.ones((1, 5, 17, 2), np.float32), np.ones((1, 5, 17), np.float32), 0, "a", "coco17")
    writer = StoreWriter(tmp_path / "s", layout, video_root=tmp_path)
    with pytest.raises(DataError, match="the video has 6 frames but the keypoints 5"):
        writer.add(seq, video=VideoRef("a.mp4", 6, 25.0, 64, 48))
    writer.add(seq, video=VideoRef("a.mp4", 5, 25.0, 64, 48))
    assert writer.close(class_names=["x"], splits={}, source={})["format_version"] == 2
    store = SkeletonStore(tmp_path / "s")
    assert store.video(0) == VideoRef("a.mp4", 5, 25.0, 64, 48) and store.video_path(0) == tmp_path / "a.mp4"
    assert SkeletonStore(tmp_path / "s", video_root="/moved").video_path(0) == Path("/moved/a.mp4")
    with pytest.raises(DataError, match="inside the source root"):
        VideoRef("../a.mp4", 5, 25.0, 64, 48)
    video_store = StoreWriter(tmp_path / "v", None, video_root=tmp_path)
    with pytest.raises(StoreError, match="add_video"):
        video_store.add(seq)
    video_store.abort()
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    manifest["format_version"] = 3
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="store format version 3; this skelact reads versions 1, 2"):
        SkeletonStore(tmp_path / "s")


# ----------------------------------------------------------------------------------------------------------------
# extract-poses on a video store


class BrightnessPose(PoseEstimator):
    """A stand-in model: one person whose first joint's y is the frame's mean brightness. Keypoint frame t then
    says which video frame it was estimated on."""

    name = "brightness"

    def __init__(self) -> None:
        self.layout = get_layout("coco17")
        self.coords = 2

    def estimate(self, frame: np.ndarray) -> FramePoses:
        height = np.linspace(0, frame.shape[0] / 2, 17)  # a body with a size, so the tracker can follow it
        kp = np.stack([np.linspace(1, frame.shape[1] - 1, 17), frame.mean() + height], -1).astype(np.float32)
        return FramePoses(kp[None], np.ones((1, 17), np.float32))


def _short_clip(videos: Path, out: Path, start: int, frames: int = 10) -> Path:
    """``frames`` frames of the real mmaction2 demo from frame ``start``, scaled to 96 px, as an MP4."""
    from skelact.video.reader import VideoReader
    from skelact.video.writer import write_video

    with VideoReader(videos / "mmaction2_demo.mp4", max_side=96, threads=1) as reader:
        clip = [f for t, f in zip(range(start + frames), reader) if t >= start]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video(out, clip, fps=28.0)
    return out


def test_extract_poses_on_a_video_store_adds_keypoints_aligned_frame_by_frame(tmp_path, videos):
    from skelact.pose.extract import extract_poses
    from skelact.video.reader import VideoReader

    src = tmp_path / "clips"
    _short_clip(videos, src / "walk" / "a.mp4", 0)
    _short_clip(videos, src / "talk" / "b.mp4", 100, frames=7)
    (src / "list.csv").write_text("path,label,split\nwalk/a.mp4,walk,train\ntalk/b.mp4,talk,test\n"
                                  "talk/missing.mp4,talk,test\n")
    main(["prepare", "video-folder", str(src / "list.csv"), str(tmp_path / "videos"), "-q", "--workers", "1"])
    report = extract_poses(tmp_path / "videos", tmp_path / "poses", estimator=BrightnessPose(), progress=False)
    assert report.num_samples == 2 and [Path(r["file"]).name for r in report.rejected] == ["missing.mp4"]
    store, source = SkeletonStore(tmp_path / "poses"), SkeletonStore(tmp_path / "videos")
    assert store.kind == "skeleton" and store.manifest["format_version"] == 2
    assert store.names == source.names and store.labels.tolist() == source.labels.tolist()
    assert store.class_names == ["talk", "walk"] and store.split("list", "test").tolist() == [1]
    for i in range(len(store)):
        assert store.video(i) == source.video(i)
        with VideoReader(store.video_path(i), threads=1) as reader:
            means = np.array([f.mean() for f in reader], np.float32)
        seq = store[i]
        assert seq.num_frames == store.video(i).frames == len(means) == (10, 7)[i]
        np.testing.assert_allclose(seq.keypoints[0, :, 0, 1], means, rtol=1e-5)
    assert not (tmp_path / ".poses.work").exists()


def test_mediapipe_finds_the_person_in_a_real_clip_of_a_video_store(tmp_path, videos):
    need("mediapipe")
    from skelact.pose.extract import extract_poses
    from skelact.video.reader import VideoReader
    from skelact.video.writer import write_video

    # NTU A001 (drink water): 8 frames at 480x270 keep MediaPipe's run to a few seconds
    with VideoReader(videos / "S001C001P001R001A001_rgb.avi", max_side=480, threads=1) as reader:
        clip = [f for _, f in zip(range(8), reader)]
    (tmp_path / "src" / "drink").mkdir(parents=True)
    write_video(tmp_path / "src" / "drink" / "a001.mp4", clip, fps=30.0)
    main(["prepare", "video-folder", str(tmp_path / "src"), str(tmp_path / "videos"), "-q", "--workers", "1"])
    extract_poses(tmp_path / "videos", tmp_path / "poses", estimator="mediapipe", workers=1, progress=False)
    seq = SkeletonStore(tmp_path / "poses")[0]
    assert seq.num_frames == 8 and (seq.scores[0] > 0.5).mean() > 0.5
    # the person stands in the picture: detected joints lie inside the 480x270 frame
    seen = seq.scores[0] > 0.5
    assert (seq.keypoints[0][seen] >= 0).all() and (seq.keypoints[0][seen][:, 0] < 480).all()


# ----------------------------------------------------------------------------------------------------------------
# the frame cache


def test_the_frame_cache_returns_exactly_the_decoded_frames_and_notices_a_changed_video(tmp_path, videos):
    from skelact.video.frame_cache import FrameCache
    from skelact.video.reader import VideoReader

    clip = tmp_path / "a046.avi"
    shutil.copy(videos / "S004C002P003R002A046_rgb.avi", clip)
    cache = FrameCache(tmp_path / "cache", max_side=64, max_frames=6)
    first = cache.frames(clip)
    with VideoReader(clip, max_side=64, threads=1) as reader:
        expected = np.stack([f for _, f in zip(range(6), reader)])
    assert first.shape == (6, 36, 64, 3) and first.dtype == np.uint8 and isinstance(first, np.memmap)
    assert np.array_equal(first, expected)
    entry = cache.entry(clip)
    assert entry.stat().st_size == 128 + 6 * 36 * 64 * 3  # .npy header + the frames, nothing else
    written = entry.stat().st_mtime_ns
    assert np.array_equal(cache.frames(clip), expected) and entry.stat().st_mtime_ns == written  # a hit
    assert FrameCache(tmp_path / "cache", max_side=32, max_frames=6).entry(clip) != entry
    modified = clip.stat().st_mtime_ns
    os.utime(clip, ns=(modified + 10**9, modified + 10**9))  # the video changed: another entry
    assert cache.entry(clip) != entry
    os.utime(clip, ns=(modified, modified))
    entry.write_bytes(entry.read_bytes()[:1000])  # a cut-short entry is decoded again, not served
    assert cache.entry(clip) == entry and np.array_equal(cache.frames(clip), expected)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [entry.name]  # no temporary files left
