"""Hostile input and faults in the data-reading commands (issue 26): undecodable file names, absurd sizes, missing
files, a second writer, a full disk, a killed earlier run.

Every case copies a small slice of the real data in ``../shared/data`` into ``tmp_path``, runs the command through
``skelact.cli.main`` and checks the exit code, the one line on stderr, the rejected list on stdout and in
``manifest.json``, and that what was there before is intact.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from skelact.cli import main
from skelact.data.store import SkeletonStore
from skelact.locking import lock_beside

UCLA = ["a01_s01_e00_v01", "a02_s02_e01_v02", "a03_s03_e02_v03"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``skelact ARGV`` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rejected(store: Path) -> dict[str, str]:
    """``{file name: reason}`` from the store's manifest."""
    manifest = json.loads((store / "manifest.json").read_text(encoding="utf-8"))
    return {Path(r["file"]).name: r["reason"] for r in manifest["rejected"]}


def beside(folder: Path) -> list[str]:
    """Everything in ``folder`` but the lock file, which stays by design (skelact.locking)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def copy_ucla(shared_data: Path, dst: Path, names=UCLA) -> Path:
    dst.mkdir(parents=True)
    for name in names:
        shutil.copy(shared_data / "nw_ucla" / "all_sqe" / f"{name}.json", dst)
    return dst


# -- file names that are not valid UTF-8 ---------------------------------------------------------------------------

# format -> (folder of the real data, two real files, the bad name's stem); each copy keeps a real file's content,
# so only its name is wrong
NAME_CASES = {
    "ntu": ("ntu_rgbd_samples/skeleton", ["S001C001P001R001A011.skeleton", "S002C001P003R001A003.skeleton"],
            b"S001C001P001R001A011\xff", ".skeleton"),
    "nw-ucla": ("nw_ucla/all_sqe", [f"{n}.json" for n in UCLA[:2]], b"a01_s01_e00_v01\xff", ".json"),
    "kinetics-json": ("kinetics_skeleton_json_sample/ntu_rgb_openpose_stgcn_format",
                      ["S004C002P003R001A055_rgb.json", "S004C003P003R001A007_rgb.json"], b"clip\xfe\xff", ".json"),
    "penn-action": ("penn_action_labels/labels", ["0001.mat", "0002.mat"], b"0003\xff", ".mat"),
}


@pytest.mark.parametrize("fmt", sorted(NAME_CASES))
def test_a_name_that_is_not_utf8_is_rejected_and_prepare_goes_on(shared_data, tmp_path, capsys, fmt):
    folder, files, bad_stem, suffix = NAME_CASES[fmt]
    src = tmp_path / "src"
    src.mkdir()
    for name in files:
        shutil.copy(shared_data / folder / name, src / name)
    bad = os.fsencode(src) + b"/" + bad_stem + suffix.encode()
    shutil.copyfile(os.fsencode(shared_data / folder / files[0]), bad)  # bytes paths: the name is no text
    out = tmp_path / "out"
    # two workers for NTU: the name also crosses a process boundary
    workers = "2" if fmt == "ntu" else "1"
    code, stdout, stderr = run(capsys, "prepare", fmt, str(src), str(out), "-q", "--workers", workers)
    assert code == 0
    shown = bad_stem.decode("utf-8", "backslashreplace") + suffix  # e.g. S001...A011\xff.skeleton
    assert rejected(out) == {shown: "file name is not valid UTF-8 (rename the file)"}
    assert f"{shown}: file name is not valid UTF-8" in stdout
    assert stderr.strip().splitlines() == [
        f"skelact: warning: 1 of 3 input item(s) were rejected and left out (listed above and under 'rejected' in "
        f"{out}/manifest.json)"]
    store = SkeletonStore(out)
    assert len(store) == 2 and sorted(store.names) == sorted(Path(f).name[:-len(suffix)] for f in files)


def test_a_source_folder_whose_name_is_not_utf8_is_one_line_naming_the_folder(shared_data, tmp_path, capsys):
    src = os.fsencode(tmp_path) + b"/ucla\xff"
    os.mkdir(src)
    for name in UCLA:
        shutil.copyfile(os.fsencode(shared_data / "nw_ucla" / "all_sqe" / f"{name}.json"),
                        src + f"/{name}.json".encode())
    code, stdout, stderr = run(capsys, "prepare", "nw-ucla", os.fsdecode(src), str(tmp_path / "out"), "-q",
                               "--workers", "1")
    assert code == 2 and stdout == "" and stderr.count("\n") == 1
    assert stderr.strip().endswith(f"{tmp_path}/ucla\\xff/{UCLA[0]}.json: folder name is not valid UTF-8 (rename "
                                   "the folder)")
    assert beside(tmp_path) == [os.fsdecode(src)[len(str(tmp_path)) + 1:]]


# -- absurd sizes ----------------------------------------------------------------------------------------------------


def _kinetics_with_index(shared_data: Path, dst: Path, index: int) -> Path:
    """The real 189-frame Kinetics clip with its last frame moved to ``frame_index``."""
    doc = json.loads((shared_data / "kinetics_skeleton_json_sample" / "--33Lscn6sk.json").read_text())
    doc["data"][-1]["frame_index"] = index
    dst.write_text(json.dumps(doc))
    return dst


def test_kinetics_frame_indices_beyond_the_cap_or_the_data_are_refused(shared_data, tmp_path, capsys):
    src = tmp_path / "kinetics"
    src.mkdir()
    shutil.copy(shared_data / "kinetics_skeleton_json_sample" / "--33Lscn6sk.json", src / "good.json")
    _kinetics_with_index(shared_data, src / "two_million.json", 2_000_000)   # 687 MB store before the cap
    _kinetics_with_index(shared_data, src / "billion.json", 10**9)           # raw MemoryError before the cap
    _kinetics_with_index(shared_data, src / "sparse.json", 50_000)           # under the cap, 265x the 189 frames
    # JSON text can hold what no UTF-8 file may: a lone surrogate escape, here in the label name
    doc = json.loads((src / "good.json").read_text())
    (src / "surrogate.json").write_text(json.dumps({**doc, "label": "flipping \udcff pancake"}))
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "prepare", "kinetics-json", str(src), str(out), "-q", "--workers", "1")
    assert code == 0 and "4 of 5 input item(s) were rejected" in stderr
    reasons = rejected(out)
    assert set(reasons) == {"two_million.json", "billion.json", "sparse.json", "surrogate.json"}
    assert reasons["surrogate.json"] == "meta: not valid UTF-8 text"
    # the span counts from the first index (1): 2000000 - 1 + 1 frames
    assert reasons["two_million.json"].startswith("data.frame_index: 2000000 frames is more than the cap of 100000")
    assert reasons["billion.json"].startswith(f"data.frame_index: {10**9} frames is more than the cap")
    assert reasons["sparse.json"] == ("data.frame_index: spans 50000 frames but holds data for only 189 (more than "
                                      "100x the data present: a corrupt frame index?)")
    store = SkeletonStore(out)
    assert store.names == ["good"] and store.frames.tolist() == [189]
    assert store.nbytes() < 200_000  # not hundreds of MB of zero frames
    # the cap is the user's: raised, the sparse clip is still refused (it is not a cap question), the others too
    code, _, _ = run(capsys, "prepare", "kinetics-json", str(src), str(tmp_path / "out2"), "-q", "--workers", "1",
                     "--max-frames", "3000000")
    assert code == 0 and set(rejected(tmp_path / "out2")) == {"billion.json", "sparse.json", "two_million.json",
                                                              "surrogate.json"}
    assert rejected(tmp_path / "out2")["two_million.json"].startswith("data.frame_index: spans 2000000 frames")


def test_max_frames_rejects_longer_samples_in_nw_ucla_and_penn_action(shared_data, tmp_path, capsys):
    import scipy.io

    src = copy_ucla(shared_data, tmp_path / "ucla")
    lengths = {n: len(json.loads((src / f"{n}.json").read_text())["skeletons"]) for n in UCLA}
    cap = sorted(lengths.values())[1]  # one sample is longer than the cap
    code, _, stderr = run(capsys, "prepare", "nw-ucla", str(src), str(tmp_path / "ucla_out"), "-q", "--workers", "1",
                          "--max-frames", str(cap))
    longer = {f"{n}.json" for n, t in lengths.items() if t > cap}
    assert code == 0 and len(longer) == 1 and set(rejected(tmp_path / "ucla_out")) == longer
    (name,) = longer
    assert rejected(tmp_path / "ucla_out")[name] == (
        f"skeletons: {lengths[name[:-5]]} frames is more than the cap of {cap} (a corrupt or hostile file? raise "
        "the cap with --max-frames if the data is real)")

    penn = tmp_path / "penn" / "labels"
    penn.mkdir(parents=True)
    frames = {}
    for name in ("0001", "0002", "0003"):
        shutil.copy(shared_data / "penn_action_labels" / "labels" / f"{name}.mat", penn)
        frames[name] = int(scipy.io.loadmat(str(penn / f"{name}.mat"))["nframes"].item())
    assert frames == {"0001": 151, "0002": 80, "0003": 85}
    code, _, _ = run(capsys, "prepare", "penn-action", str(penn.parent), str(tmp_path / "penn_out"), "-q",
                     "--workers", "1", "--max-frames", "100")
    assert code == 0 and rejected(tmp_path / "penn_out") == {
        "0001.mat": "x: 151 frames is more than the cap of 100 (a corrupt or hostile file? raise the cap with "
                    "--max-frames if the data is real)"}
    assert SkeletonStore(tmp_path / "penn_out").frames.tolist() == [80, 85]


def _npy_claiming(path: Path, shape: tuple[int, ...], data: np.ndarray) -> None:
    """An .npy file whose header claims ``shape`` but holds only ``data``'s bytes."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        f.write(np.ascontiguousarray(data, dtype="<f4").tobytes())


def test_arrays_npy_headers_claiming_absurd_sizes_and_missing_files_are_rejected(shared_data, tmp_path, capsys):
    src = tmp_path / "arrays"
    src.mkdir()
    rows = ["name,label"]
    for k, name in enumerate(UCLA):
        joints = np.asarray(json.loads((shared_data / "nw_ucla" / "all_sqe" / f"{name}.json").read_text())
                            ["skeletons"], dtype=np.float32)
        np.save(src / f"{name}.npy", joints)
        rows.append(f"{name},{k}")
    real = np.load(src / f"{UCLA[0]}.npy")
    _npy_claiming(src / "billion.npy", (10**9, 20, 3), real)       # 240 GB claimed, 7 KB held
    _npy_claiming(src / "truncated.npy", (5000, 20, 3), real)      # under the cap, but the data is not there
    rows += ["billion,0", "truncated,1", "missing,2"]              # missing.npy does not exist
    (src / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "prepare", "arrays", str(src), str(out), "--layout", "nw_ucla20", "-q",
                               "--workers", "1")
    assert code == 0 and "3 of 6 input item(s) were rejected" in stderr
    reasons = rejected(out)
    assert reasons["billion.npy"].startswith(f"shape: {10**9} frames is more than the cap of 100000")
    nbytes = real.nbytes
    assert reasons["truncated.npy"] == (f"shape: truncated or corrupt header: it claims shape (5000, 20, 3) of "
                                        f"float32 ({5000 * 240} bytes) but the file is {128 + nbytes} bytes, "
                                        f"{nbytes} after the header")
    assert reasons["missing.npy"] == "name: no such file (named by line 7 of labels.csv; no stacked data.npy either)"
    assert f"{src / 'missing.npy'}: name: no such file" in stdout
    store = SkeletonStore(out)
    assert store.names == UCLA
    np.testing.assert_array_equal(store[0].keypoints[0], real)


def test_ntu_frame_counts_beyond_the_cap_or_the_file_are_refused(shared_data, tmp_path, capsys):
    src = tmp_path / "ntu"
    src.mkdir()
    real = (shared_data / "ntu_rgbd_samples" / "skeleton" / "S001C001P001R001A011.skeleton").read_bytes()
    first, rest = real.split(b"\n", 1)
    lines = real.count(b"\n") + 1
    (src / "S001C001P001R001A011.skeleton").write_bytes(real)
    (src / "S001C001P001R002A011.skeleton").write_bytes(b"1000000000\n" + rest)
    (src / "S001C001P001R003A011.skeleton").write_bytes(f"{lines + 1}\n".encode() + rest)
    code, _, _ = run(capsys, "prepare", "ntu", str(src), str(tmp_path / "out"), "-q", "--workers", "1")
    assert code == 0
    assert rejected(tmp_path / "out") == {
        "S001C001P001R002A011.skeleton": "frame count: 1000000000 frames is more than the cap of 100000 (a corrupt "
                                         "or hostile file? raise the cap with --max-frames if the data is real)",
        "S001C001P001R003A011.skeleton": f"frame count: declares {lines + 1} frames but the file has only {lines} "
                                         "lines (at least one per frame)"}
    assert SkeletonStore(tmp_path / "out").frames.tolist() == [int(first)]


def test_a_memory_error_in_a_reader_rejects_that_item_only(shared_data, tmp_path, capsys, monkeypatch):
    from skelact.data.sources import nw_ucla

    src = copy_ucla(shared_data, tmp_path / "ucla")
    real = nw_ucla._skeletons

    def greedy(value, path, *args):
        if Path(path).stem == UCLA[1]:
            raise MemoryError  # what numpy raises for an allocation the machine cannot give
        return real(value, path, *args)

    monkeypatch.setattr(nw_ucla, "_skeletons", greedy)
    code, _, stderr = run(capsys, "prepare", "nw-ucla", str(src), str(tmp_path / "out"), "-q", "--workers", "1")
    assert code == 0 and "Traceback" not in stderr
    assert rejected(tmp_path / "out") == {
        f"{UCLA[1]}.json": "out of memory reading this item (it claims sizes far beyond this machine's memory)"}
    assert SkeletonStore(tmp_path / "out").names == [UCLA[0], UCLA[2]]


class _TooBigToSend:
    """Stands for a record a worker runs out of memory pickling back to the parent."""

    def __reduce__(self):
        raise MemoryError


def test_a_worker_that_cannot_send_a_record_back_rejects_that_item_only(shared_data, tmp_path, capsys,
                                                                        monkeypatch):
    from skelact.data.sources import nw_ucla

    src = copy_ucla(shared_data, tmp_path / "ucla")
    real = nw_ucla.parse_nw_ucla_name

    def with_blob(name, source=None):
        meta = real(name, source)
        return {**meta, "blob": _TooBigToSend()} if name == UCLA[1] else meta

    monkeypatch.setattr(nw_ucla, "parse_nw_ucla_name", with_blob)  # forked workers inherit it
    code, _, stderr = run(capsys, "prepare", "nw-ucla", str(src), str(tmp_path / "out"), "-q", "--workers", "2")
    assert code == 0 and "Traceback" not in stderr
    assert rejected(tmp_path / "out") == {
        f"{UCLA[1]}.json": "out of memory reading this item (it claims sizes far beyond this machine's memory)"}
    assert SkeletonStore(tmp_path / "out").names == [UCLA[0], UCLA[2]]


# -- one writer per store and per pose-extraction output -----------------------------------------------------------


def test_a_second_prepare_of_the_same_store_exits_2_naming_the_holder(shared_data, tmp_path, capsys):
    src = copy_ucla(shared_data, tmp_path / "ucla")
    out = tmp_path / "out"
    # the first writer: a flock held through another open file, as another process holds it
    with lock_beside(out, "store"):
        code, stdout, stderr = run(capsys, "prepare", "nw-ucla", str(src), str(out), "-q", "--workers", "1")
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1
    assert stderr.startswith(f"skelact: error: {out}: store: in use by process {os.getpid()} on ")
    assert beside(tmp_path) == ["ucla"]  # nothing written, nothing half-written
    # once the holder is gone the same command works
    assert run(capsys, "prepare", "nw-ucla", str(src), str(out), "-q", "--workers", "1")[0] == 0
    assert SkeletonStore(out).names == UCLA


def test_the_store_cache_waits_for_the_process_preparing_it_and_uses_its_store(shared_data, tmp_path,
                                                                            monkeypatch):
    from skelact.data import cache
    from skelact.data.prepare import prepare

    src = copy_ucla(shared_data, tmp_path / "ucla")
    monkeypatch.setenv("SKELACT_CACHE", str(tmp_path / "cache"))
    path = cache.cached_store_path("nw-ucla", src)
    path.parent.mkdir(parents=True)
    # the other training's prepare, already holding the lock: its store appears, then it lets go
    lock = lock_beside(path, "store").acquire()
    prepare("nw-ucla", src, tmp_path / "elsewhere", workers=1, progress=False)

    def finish_first_writer() -> None:
        time.sleep(0.5)
        os.replace(tmp_path / "elsewhere", path)
        lock.release()

    messages: list[str] = []
    first = threading.Thread(target=finish_first_writer)
    first.start()
    started = time.perf_counter()
    try:
        store = cache.open_or_prepare("nw-ucla", src, progress=False, log=messages.append)
    finally:
        first.join()
    assert time.perf_counter() - started >= 0.4  # it waited for the holder instead of failing or writing too
    assert messages[0].startswith(f"waiting: {path}: store: in use by process {os.getpid()}")
    assert not any(m.startswith("preparing") for m in messages)  # it did not prepare a second copy
    assert store.path == path and store.names == UCLA


def test_two_processes_on_a_cold_cache_prepare_the_store_once_and_both_use_it(shared_data, tmp_path):
    import subprocess
    import sys

    import skelact

    names = sorted(p.stem for p in (shared_data / "nw_ucla" / "all_sqe").glob("*.json"))[:150]
    src = copy_ucla(shared_data, tmp_path / "ucla", names)
    env = {**os.environ, "SKELACT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(skelact.__file__).parents[1])}
    script = ("import sys; from skelact.data.cache import open_or_prepare; "
              "s = open_or_prepare('nw-ucla', sys.argv[1], progress=False, log=print); print('samples', len(s))")
    runs = [subprocess.Popen([sys.executable, "-c", script, str(src)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=120) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    stdouts = [o for o, _ in outputs]
    assert all(o.strip().endswith("samples 150") for o in stdouts)
    assert sum(o.count("preparing the nw-ucla dataset") for o in stdouts) == 1  # one wrote, the other used it
    (store,) = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert SkeletonStore(store).names == names
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([store.name, f".{store.name}.lock"])


def test_a_second_extract_poses_into_the_same_output_exits_2(shared_data, tmp_path, capsys):
    out = tmp_path / "poses"
    video = shared_data / "videos" / "S001C001P001R001A001_rgb.avi"
    with lock_beside(out, "pose-extraction output"):
        code, stdout, stderr = run(capsys, "extract-poses", str(video), str(out), "-q")
    assert code == 2 and stdout == "" and stderr.count("\n") == 1
    assert stderr.startswith(f"skelact: error: {out}: pose-extraction output: in use by process {os.getpid()}")
    assert beside(tmp_path) == []  # no store, no work folder


# -- a full disk, and what a killed run left ------------------------------------------------------------------------


class _FullDisk:
    """A file on a disk with ``room`` bytes left: writes beyond it, and the flush when closing, fail with ENOSPC."""

    def __init__(self, handle, room: int):
        self._handle, self._room = handle, room

    def _full(self) -> OSError:
        return OSError(errno.ENOSPC, "No space left on device", self._handle.name)

    def write(self, data) -> int:
        n = len(memoryview(data).cast("B"))
        if n > self._room:
            self._room = 0
            raise self._full()
        self._room -= n
        return self._handle.write(data)

    def flush(self) -> None:
        if self._room == 0:
            raise self._full()
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
        if self._room == 0:
            raise self._full()  # the buffered bytes could not be written: this is what broke the old clean-up

    def __getattr__(self, name):
        return getattr(self._handle, name)


def _disk_full_after(monkeypatch, room: int, file_name: str = "keypoints.npy") -> None:
    from skelact.data import store as store_module

    def fake_open(path, mode="r", *args, **kwargs):
        handle = builtins.open(path, mode, *args, **kwargs)
        return _FullDisk(handle, room) if Path(path).name == file_name and "w" in mode else handle

    monkeypatch.setattr(store_module, "open", fake_open, raising=False)


def test_a_full_disk_during_prepare_leaves_the_previous_store_and_no_partial_folder(shared_data, tmp_path, capsys,
                                                                                  monkeypatch):
    # 120 clips: a store of about 1.3 MB, so the space needed shows in the message's MB
    names = sorted(p.stem for p in (shared_data / "nw_ucla" / "all_sqe").glob("*.json"))[:120]
    src = copy_ucla(shared_data, tmp_path / "ucla", names)
    out = tmp_path / "out"
    assert run(capsys, "prepare", "nw-ucla", str(src), str(out), "-q", "--workers", "1")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    _disk_full_after(monkeypatch, room=400_000)  # about a third of the keypoints fit
    code, stdout, stderr = run(capsys, "prepare", "nw-ucla", str(src), str(out), "-q", "--workers", "1",
                               "--overwrite")
    assert code == 2 and stdout == "" and stderr.count("\n") == 1
    assert stderr.startswith(f"skelact: error: {out}: keypoints.npy: no space left on the device (")
    # the space needed is extrapolated from the samples written before the disk filled: about the store's size
    needed_mb = float(stderr.split("about ")[1].split(" MB needed")[0])
    store_mb = sum(len(b) for b in before.values()) / 1e6
    assert 0.7 * store_mb < needed_mb < 1.3 * store_mb
    assert beside(tmp_path) == ["out", "ucla"]  # the hidden .out.partial-* folder is gone
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous store, byte for byte
    assert SkeletonStore(out).names == names


def test_the_leftovers_of_a_killed_prepare_are_cleaned_on_the_next_run(shared_data, tmp_path, capsys):
    src = copy_ucla(shared_data, tmp_path / "ucla")
    out = tmp_path / "out"
    # what `kill -9` leaves: a half store, a half atomic write; and beside it someone else's store's files
    partial = tmp_path / ".out.partial-4242-0123abcd"
    partial.mkdir()
    (partial / "keypoints.npy").write_bytes(b"\0" * 1000)
    (tmp_path / ".out.manifest.json.x1y2.tmp").write_bytes(b"{")
    (tmp_path / ".other.partial-4242-0123abcd").mkdir()
    assert run(capsys, "prepare", "nw-ucla", str(src), str(out), "-q", "--workers", "1")[0] == 0
    assert beside(tmp_path) == [".other.partial-4242-0123abcd", "out", "ucla"]

    # killed between the two renames of --overwrite: OUT is missing and the complete old store is set aside
    os.replace(out, tmp_path / ".out.old-4242-0123abcd")
    code, _, stderr = run(capsys, "prepare", "nw-ucla", str(src), str(out), "-q", "--workers", "1")
    assert code == 2 and "already exists" in stderr  # the old store was put back, and is not overwritten
    assert beside(tmp_path) == [".other.partial-4242-0123abcd", "out", "ucla"]
    assert SkeletonStore(out).names == UCLA


def test_a_full_disk_during_extract_poses_gives_one_line_and_no_partial_store(shared_data, tmp_path, capsys,
                                                                             monkeypatch):
    pytest.importorskip("av")
    from skelact.pose import extract
    from skelact.pose.base import ESTIMATORS, FramePoses, PoseEstimator
    from skelact.skeleton.layout import get_layout

    class Centre(PoseEstimator):
        """One person whose 17 joints sit at the frame's centre: enough to write a store."""

        name = "centre"

        def __init__(self):
            self.layout, self.coords = get_layout("coco17"), 2

        def estimate(self, frame):
            h, w = frame.shape[:2]
            return FramePoses(np.full((1, 17, 2), (w / 2, h / 2), np.float32), np.ones((1, 17), np.float32))

    # `--estimator centre` names this stand-in: the command builds it (to check options) and the in-process
    # worker takes the ready object, so no pose model is needed
    monkeypatch.setattr(extract, "create_estimator", lambda name, **options: Centre())
    monkeypatch.setattr(extract, "ESTIMATORS", {**ESTIMATORS, "centre": Centre()})
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(shared_data / "videos" / "S001C001P001R001A001_rgb.avi", videos)
    out = tmp_path / "poses"
    work = extract.work_dir_for(out)
    (work / "cache").mkdir(parents=True)
    (work / "cache" / "0123.npz.partial-4242.npz").write_bytes(b"\0" * 100)  # a killed run's half cache file
    _disk_full_after(monkeypatch, room=200)
    code, stdout, stderr = run(capsys, "extract-poses", str(videos), str(out), "--estimator", "centre",
                               "--workers", "1", "--max-side", "160", "-q")
    assert code == 2 and stdout == "" and stderr.count("\n") == 1
    assert stderr.startswith(f"skelact: error: {out}: keypoints.npy: no space left on the device (")
    assert re.search(r"about [0-9.]+ (bytes|KB|MB|GB) needed", stderr)
    assert beside(tmp_path) == [".poses.work", "videos"]  # no .poses.partial-*; finished videos kept to resume
    cached = sorted(p.name for p in (work / "cache").iterdir())
    assert len(cached) == 1 and cached[0].endswith(".npz") and "partial" not in cached[0]
