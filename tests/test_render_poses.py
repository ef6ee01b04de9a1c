"""The penn-action-rendered store: real Penn Action poses drawn into small synthetic videos, keypoints aligned.

Four real clips at 64 px (0346 and 0371 have unannotated joints, 0501 has none, 1201 is a pull-up) and one
truncated label file. Checks are against things the renderer does not compute itself: the .mat files read with
scipy directly, decoded video pixels, and plain segment geometry.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from skelact.data.prepare import prepare
from skelact.data.render_poses import HEAD_RADIUS, LIMB_RADIUS, render_clip
from skelact.data.sources.penn_action import PENN_ACTION_CLASSES
from skelact.data.store import SkeletonStore
from skelact.skeleton.layout import get_layout

pytest.importorskip("av")
scipy_io = pytest.importorskip("scipy.io")

CLIPS = ("0346", "0371", "0501", "1201")
SIZE = 64


@pytest.fixture(scope="module")
def labels(penn_labels, shared_data) -> Path:
    folder = penn_labels(CLIPS)
    source = shared_data / "penn_action_labels" / "labels"
    (folder / "0002.mat").write_bytes((source / "0002.mat").read_bytes()[:3000])  # truncated
    return folder


@pytest.fixture(scope="module")
def store(labels, tmp_path_factory) -> SkeletonStore:
    out = tmp_path_factory.mktemp("stores") / "rendered"
    prepare("penn-action-rendered", labels, out, workers=1, progress=False, size=SIZE)
    return SkeletonStore(out)


def decode(path: Path) -> np.ndarray:
    from skelact.video.reader import VideoReader

    with VideoReader(path) as reader:
        return np.stack(list(reader))


def test_store_round_trips_labels_split_and_frames(store, labels):
    assert store.names == sorted(CLIPS)
    train = set(store.split("official", "train").tolist())
    for i, name in enumerate(store.names):
        mat = scipy_io.loadmat(str(labels / f"{name}.mat"), squeeze_me=True)
        assert store.class_names[store[i].label] == str(mat["action"])
        assert PENN_ACTION_CLASSES.index(str(mat["action"])) == store[i].label
        assert (i in train) == (int(mat["train"]) == 1)
        seq = store[i]
        assert seq.num_frames == int(mat["nframes"])
        ref = store.video(i)
        assert (ref.frames, ref.width, ref.height) == (seq.num_frames, SIZE, SIZE)
        frames = decode(store.video_path(i))
        assert frames.shape == (seq.num_frames, SIZE, SIZE, 3)
        # visibility is Penn's, unchanged
        np.testing.assert_array_equal(seq.scores[0], np.asarray(mat["visibility"], np.float32))


def test_truncated_label_file_is_rejected_and_leaves_no_video(store):
    rejected = store.rejected
    assert [Path(r["file"]).name for r in rejected] == ["0002.mat"]
    assert "MATLAB" in rejected[0]["reason"]
    assert sorted(p.stem for p in (store.path / "videos").iterdir()) == sorted(CLIPS)


def test_rendering_is_deterministic(store, labels, tmp_path):
    again = tmp_path / "again"
    prepare("penn-action-rendered", labels, again, workers=2, progress=False, size=SIZE)
    other = SkeletonStore(again)
    for i in range(len(store)):
        assert decode(store.video_path(i)).tobytes() == decode(other.video_path(i)).tobytes()
        np.testing.assert_array_equal(store[i].keypoints, other[i].keypoints)


def test_keypoints_land_on_drawn_pixels(store, labels):
    """At every present joint inside the frame the renderer drew the person (its frame differs from the bare
    background there), and in the decoded video (H.264, 4:2:0 chroma at 64 px blurs thin limbs' edges) the pixel
    is nearer the drawn colour than the background's for nearly all of them."""
    layout = get_layout("penn13")
    checked = nearer = 0
    for i, name in enumerate(store.names):
        mat = scipy_io.loadmat(str(labels / f"{name}.mat"), squeeze_me=True)
        source = np.stack([mat["x"], mat["y"]], -1).astype(np.float64)
        source[(mat["visibility"] == 0) & (mat["x"] <= 2.5) & (mat["y"] <= 2.5)] = 0  # Penn's unannotated joints
        clip = render_clip(name, source, layout, SIZE)
        frames = decode(store.video_path(i)).astype(int)
        kp = store[i].keypoints[0]
        for t in range(0, kp.shape[0], 3):
            background = clip.frame(t, person=False).astype(int)
            drawn = clip.frame(t).astype(int)
            for v in range(kp.shape[1]):
                x, y = np.rint(kp[t, v]).astype(int)
                if (kp[t, v] == 0).all() or not (1 <= x < SIZE - 1 and 1 <= y < SIZE - 1):
                    continue
                assert (drawn[y, x] != background[y, x]).any(), (name, t, v)
                decoded = frames[t, y, x]
                nearer += np.abs(decoded - drawn[y, x]).sum() < np.abs(decoded - background[y, x]).sum()
                checked += 1
    assert checked > 500
    assert nearer / checked > 0.97, (nearer, checked)


def _distance_to_segments(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[P] distance from each (x, y) point to the nearest of the segments a[k]-b[k]."""
    d = b - a
    rel = points[:, None, :] - a[None]
    t = np.clip((rel * d[None]).sum(-1) / np.maximum((d * d).sum(-1), 1e-12)[None], 0, 1)
    return np.linalg.norm(rel - t[..., None] * d[None], axis=-1).min(1)


def test_missing_joints_are_not_drawn(store, labels):
    """In frames with unannotated joints, every drawn pixel is near a bone whose two joints are present (or a
    present joint), and the missing joints are stored as exactly (0, 0)."""
    layout = get_layout("penn13")
    limb, head = LIMB_RADIUS * SIZE * 1.15, HEAD_RADIUS * SIZE
    seen = 0
    for name in ("0346", "0371"):
        i = store.names.index(name)
        mat = scipy_io.loadmat(str(labels / f"{name}.mat"), squeeze_me=True)
        unannotated = (mat["visibility"] == 0) & (mat["x"] <= 2.5) & (mat["y"] <= 2.5)
        source = np.stack([mat["x"], mat["y"]], -1).astype(np.float64)
        source[unannotated] = 0
        kp = store[i].keypoints[0]
        assert (kp[unannotated] == 0).all() and (kp[~unannotated] != 0).any(-1).all()
        clip = render_clip(name, source, layout, SIZE)
        for t in np.flatnonzero(unannotated.any(-1))[:10]:
            drawn = (clip.frame(t) != clip.frame(t, person=False)).any(-1)
            ys, xs = np.nonzero(drawn)
            pts = np.stack([xs, ys], -1).astype(np.float64)
            present = ~unannotated[t]
            bones = [(c, p) for c, p in layout.edges if present[c] and present[p]]
            ends = np.array([kp[t, c] for c, _ in bones] + list(kp[t, present]))
            starts = np.array([kp[t, p] for _, p in bones] + list(kp[t, present]))
            near = _distance_to_segments(pts, starts, ends) <= limb + 0.5
            near |= np.hypot(*(pts - kp[t, layout.center]).T) <= head + 0.5
            assert near.all(), (name, t, pts[~near][:5])
            seen += 1
    assert seen >= 10


def test_store_moves_with_its_videos(store, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(store.path, moved)
    copy = SkeletonStore(moved)
    assert copy.video_path(0) == moved / "videos" / f"{copy.names[0]}.mp4"
    assert copy.video_path(0).is_file()


def test_a_config_prepares_the_rendered_store_on_first_use(labels, tmp_path, monkeypatch):
    """data: {format: penn-action-rendered, source: ..., options: {size: 32}} goes through the store cache."""
    from skelact.data.cache import open_or_prepare

    root = tmp_path / "data"
    shutil.copytree(labels, root / "penn" / "labels")
    (root / "penn" / "labels" / "0002.mat").unlink()
    for name in CLIPS[2:]:
        (root / "penn" / "labels" / f"{name}.mat").unlink()
    monkeypatch.setenv("SKELACT_DATA", str(root))
    monkeypatch.setenv("SKELACT_CACHE", str(tmp_path / "cache"))
    messages: list[str] = []
    first = open_or_prepare("penn-action-rendered", "penn", {"size": 32}, progress=False, log=messages.append)
    assert first.names == list(CLIPS[:2]) and first.video(0).width == 32
    assert first.path.parent == tmp_path / "cache" and any("first use" in m for m in messages)
    again = open_or_prepare("penn-action-rendered", "penn", {"size": 32}, progress=False, log=messages.append)
    assert again.path == first.path and len(messages) == 3  # reused: nothing prepared, one line says which
    assert messages[-1].startswith(f"using the cached store {first.path} (made {first.manifest['created']}")
    assert decode(again.video_path(1)).shape == (first[1].num_frames, 32, 32, 3)


def test_cli_prepare_and_a_bad_size_is_one_line(labels, tmp_path, capsys):
    from skelact.cli import main

    src = tmp_path / "src" / "labels"
    src.mkdir(parents=True)
    shutil.copy(labels / "0346.mat", src)
    assert main(["prepare", "penn-action-rendered", str(src.parent), str(tmp_path / "out"), "--option", "size=32",
                 "-q"]) == 0
    assert "wrote 1 samples (28 frames)" in capsys.readouterr().out
    assert SkeletonStore(tmp_path / "out").video(0).width == 32
    assert main(["prepare", "penn-action-rendered", str(src.parent), str(tmp_path / "bad"), "--option", "size=8",
                 "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "size" in err[0] and "between 16 and 1024" in err[0]
    assert not (tmp_path / "bad").exists()
