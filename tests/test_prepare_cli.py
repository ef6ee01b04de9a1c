"""``prepare`` and the ``skelact`` command: logic on a tiny in-test reader, then the real datasets through the
real readers, in-process (``main(argv)``) and as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skelact.cli import main
from skelact.data import prepare as prepare_module
from skelact.data.prepare import prepare
from skelact.data.sequence import SkeletonSequence
from skelact.data.sources import FORMATS
from skelact.data.sources.base import Source
from skelact.data.store import SkeletonStore
from skelact.errors import DiskFullError, DataError, StoreError

REPO = Path(__file__).resolve().parents[1]


class ToySource(Source):
    """Items are integers; item k has (k % 3) + 1 persons and k + 2 frames of the 25-joint NTU layout.

    Options: ``bad`` (items raising DataError), ``buggy`` (items raising a plain exception, like a reader bug),
    ``named`` (take class names from meta instead of class_names()).
    """

    format = "toy"
    layout = "ntu25"

    def items(self) -> list[Any]:
        return list(range(int(self.options.get("count", 12))))

    def describe(self, item: Any) -> str:
        return f"{self.root}/item{item:03d}.txt"

    def read(self, item: Any) -> SkeletonSequence:
        if item in self.options.get("bad", ()):
            raise DataError("line 3: expected 25 joints, got 24", self.describe(item), "joints")
        if item in self.options.get("buggy", ()):
            raise IndexError("list index out of range")
        rng = np.random.default_rng(item)
        m, t = item % 3 + 1, item + 2
        label = item % 4
        return SkeletonSequence(
            keypoints=rng.normal(size=(m, t, 25, 3)).astype(np.float32),
            scores=np.ones((m, t, 25), np.float32), label=label, name=f"toy{item:03d}", layout="ntu25",
            meta={"subject": item + 1, "camera": item % 3 + 1, "label_name": f"action{label}"})

    def class_names(self) -> list[str] | None:
        return None if self.options.get("named") else ["zero", "one", "two", "three"]

    def split_names(self) -> list[str]:
        return ["ntu60_xsub", "ntu60_xview"]


@pytest.fixture
def toy_format(monkeypatch):
    monkeypatch.setitem(FORMATS, "toy", f"{__name__}:ToySource")
    return "toy"


def leftovers(folder: Path) -> list[str]:
    """What a run left in ``folder``, besides the writer lock file ``.OUT.lock`` that stays by design (deleting it
    would let a third writer lock a fresh file while a second waits on the old one; see skelact.locking)."""
    return sorted(p.name for p in folder.iterdir() if not (p.name.startswith(".") and p.name.endswith(".lock")))


# -- prepare logic -------------------------------------------------------------------------------------------------


def test_store_holds_what_the_reader_returned(tmp_path, toy_format):
    report = prepare(toy_format, tmp_path / "src", tmp_path / "out", workers=1, progress=False)
    store = SkeletonStore(tmp_path / "out")
    source = ToySource(tmp_path / "src")
    assert len(store) == report.num_samples == 12
    for i in (0, 4, 11):
        expected = source.read(i)
        got = store[i]
        np.testing.assert_array_equal(got.keypoints, expected.keypoints)
        assert got.name == expected.name and got.label == expected.label
    assert store.class_names == ["zero", "one", "two", "three"]
    assert report.total_frames == sum(k + 2 for k in range(12))
    # x-sub: subjects 1..12, of which 1, 2, 4, 5, 8, 9 are NTU-60 training subjects (item = subject - 1)
    assert store.split("xsub", "train").tolist() == [0, 1, 3, 4, 7, 8]
    assert store.split("xview", "test").tolist() == [0, 3, 6, 9]
    assert store.info()["splits"] == report.splits == {"xsub": {"train": 6, "test": 6},
                                                      "xview": {"train": 8, "test": 4}}


def test_two_workers_write_the_same_store_as_one(tmp_path, toy_format):
    prepare(toy_format, tmp_path / "src", tmp_path / "one", workers=1, progress=False, count=40)
    prepare(toy_format, tmp_path / "src", tmp_path / "two", workers=2, progress=False, count=40)
    for f in ("keypoints.npy", "scores.npy", "index.npz", "samples.jsonl", "splits.json"):
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes(), f


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_items_are_skipped_and_reported(tmp_path, toy_format, workers):
    report = prepare(toy_format, tmp_path / "src", tmp_path / "out", workers=workers, progress=False,
                     bad=(2, 5), buggy=(7,))
    assert report.num_samples == 9 and report.num_items == 12
    assert [r["file"] for r in report.rejected] == [f"{tmp_path / 'src'}/item{k:03d}.txt" for k in (2, 5, 7)]
    assert report.rejected[0]["reason"] == "joints: line 3: expected 25 joints, got 24"
    assert report.rejected[2]["reason"] == "IndexError: list index out of range"
    store = SkeletonStore(tmp_path / "out")
    assert store.rejected == report.rejected
    assert "toy002" not in store.names and len(store) == 9
    summary = report.summary()
    assert "rejected 3 item(s)" in summary and "item005.txt: joints:" in summary


def test_every_item_failing_is_an_error_and_writes_nothing(tmp_path, toy_format):
    with pytest.raises(DataError, match=r"all 3 item\(s\) failed; first: .*item000.txt: joints"):
        prepare(toy_format, tmp_path / "src", tmp_path / "out", workers=1, progress=False, count=3,
                bad=(0, 1, 2))
    assert leftovers(tmp_path) == []


def test_existing_out_needs_overwrite(tmp_path, toy_format):
    out = tmp_path / "out"
    prepare(toy_format, tmp_path / "src", out, workers=1, progress=False, count=3)
    with pytest.raises(StoreError, match="already exists; pass --overwrite"):
        prepare(toy_format, tmp_path / "src", out, workers=1, progress=False, count=5)
    assert len(SkeletonStore(out)) == 3
    prepare(toy_format, tmp_path / "src", out, workers=1, progress=False, count=5, overwrite=True)
    assert len(SkeletonStore(out)) == 5
    assert leftovers(tmp_path) == ["out"]


def test_overwrite_never_replaces_a_folder_that_is_not_a_store(tmp_path, toy_format):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(StoreError, match="not a skelact store; refusing"):
        prepare(toy_format, tmp_path / "src", precious, workers=1, progress=False, overwrite=True)
    assert (precious / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupt_leaves_no_partial_store(tmp_path, toy_format, monkeypatch, workers):
    calls = []
    real_add = prepare_module.StoreWriter.add

    def add_then_interrupt(self, seq, file=None):
        calls.append(seq.name)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_add(self, seq, file)

    monkeypatch.setattr(prepare_module.StoreWriter, "add", add_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare(toy_format, tmp_path / "src", tmp_path / "out", workers=workers, progress=False, count=30)
    assert leftovers(tmp_path) == []


def test_class_names_from_meta_when_the_source_has_none(tmp_path, toy_format):
    # labels 0..3 occur; items 0, 4, 8 carry label 0; drop them so class 0 is never seen
    prepare(toy_format, tmp_path / "src", tmp_path / "out", workers=1, progress=False, named=True,
            bad=(0, 4, 8))
    assert SkeletonStore(tmp_path / "out").class_names == ["class_0", "action1", "action2", "action3"]


def test_max_persons_keeps_the_first_persons(tmp_path, toy_format):
    prepare(toy_format, tmp_path / "src", tmp_path / "out", workers=1, progress=False, max_persons=1, count=3)
    store = SkeletonStore(tmp_path / "out")
    assert store.persons.tolist() == [1, 1, 1] and store.max_persons == 1
    np.testing.assert_array_equal(store[2].keypoints[0], ToySource(".").read(2).keypoints[0])


def test_user_split_file(tmp_path, toy_format):
    f = tmp_path / "mine.csv"
    f.write_text("toy001,fold1,train\ntoy002,fold1,val\ntoy000,fold1,train\n")
    prepare(toy_format, tmp_path / "src", tmp_path / "out", workers=1, progress=False, count=4, split_file=f)
    store = SkeletonStore(tmp_path / "out")
    assert store.split("fold1", "train").tolist() == [1, 0]
    assert store.split("fold1", "val").tolist() == [2]
    assert set(store.splits) == {"xsub", "xview", "fold1"}


def test_unknown_name_in_split_file_fails_without_output(tmp_path, toy_format):
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"fold1": {"train": ["toy001", "toy999"]}}))
    with pytest.raises(DataError, match="unknown sample name 'toy999'") as e:
        prepare(toy_format, tmp_path / "src", tmp_path / "out", workers=1, progress=False, count=4,
                split_file=f)
    assert e.value.path == str(f)
    assert leftovers(tmp_path) == ["mine.json"]


def test_unknown_format_is_one_line():
    with pytest.raises(DataError, match="unknown format 'ntu-rgbd'; known formats: .*nw-ucla"):
        prepare("ntu-rgbd", ".", "/tmp/never", progress=False)


# -- the command line ------------------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    exe = REPO / ".venv" / "bin" / "skelact"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "skelact"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.fixture(scope="module")
def ucla_store(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("ucla") / "store"
    result = run_cli("prepare", "nw-ucla", str(shared_data / "nw_ucla"), str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    return out, result


def test_cli_prepares_nw_ucla(ucla_store, shared_data):
    out, result = ucla_store
    assert "wrote 1484 samples" in result.stdout
    info = json.loads(run_cli("info", str(out), "--json").stdout)
    assert (info["num_samples"], info["num_classes"], info["num_joints"], info["coords"]) == (1484, 10, 20, 3)
    assert info["layout"] == "nw_ucla20"
    assert info["splits"] == {"cross_view": {"train": 1020, "test": 464}}
    assert info["rejected"] == 0 and info["max_persons"] == 1
    # frame counts: the README gives T = 1..201
    assert (info["frames"]["min"], info["frames"]["max"]) == (1, 201)
    reference = json.loads((shared_data / "nw_ucla" / "split_cross_view.json").read_text())
    store = SkeletonStore(out)
    names = store.names
    assert {names[i] for i in store.split("cross_view", "test")} == {d["file_name"] for d in reference["val"]}
    # labels: the file's 1-based "label" field, 0-based in the store; lengths as listed in the split file
    by_name = {d["file_name"]: d for d in reference["train"] + reference["val"]}
    for i in (0, 700, 1483):
        assert store.labels[i] == by_name[names[i]]["label"] - 1
        assert store.frames[i] == by_name[names[i]]["length"]


def test_nw_ucla_store_equals_the_reader(ucla_store, shared_data):
    from skelact.data.sources import open_source

    out, _ = ucla_store
    store = SkeletonStore(out)
    source = open_source("nw-ucla", shared_data / "nw_ucla")
    items = source.items()
    for i in (0, 1483):
        expected = source.read(items[i])
        got = store[i]
        np.testing.assert_array_equal(got.keypoints, expected.keypoints)
        assert got.name == expected.name and got.label == expected.label


def test_cli_prepares_penn_action(tmp_path, shared_data):
    out = tmp_path / "penn"
    assert main(["prepare", "penn-action", str(shared_data / "penn_action_labels"), str(out), "--quiet"]) == 0
    info = SkeletonStore(out).info()
    assert (info["num_samples"], info["num_classes"], info["num_joints"], info["coords"]) == (2326, 15, 13, 2)
    assert info["splits"] == {"official": {"train": 1258, "test": 1068}}
    # README: nframes 18..663
    assert (info["frames"]["min"], info["frames"]["max"]) == (18, 663)


NTU_LABELS = {"S001C001P001R001A011": 10, "S001C003P008R002A058": 57, "S002C001P003R001A003": 2,
              "S003C001P015R001A034": 33, "S004C002P003R001A017": 16}
NTU_FRAMES = {"S001C001P001R001A011": 82, "S001C003P008R002A058": 70, "S002C001P003R001A003": 100,
              "S003C001P015R001A034": 71, "S004C002P003R001A017": 124}


@pytest.fixture
def ntu_src(shared_data, tmp_path):
    pytest.importorskip("skelact.data.sources.ntu")
    return shared_data / "ntu_rgbd_samples" / "skeleton"


def test_cli_prepares_ntu_in_process(tmp_path, ntu_src, capsys):
    out = tmp_path / "ntu"
    assert main(["prepare", "ntu", str(ntu_src), str(out), "--quiet", "--workers", "2"]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_samples"] == 5 and info["num_joints"] == 25 and info["coords"] == 3
    store = SkeletonStore(out)
    for i, name in enumerate(store.names):
        assert store.labels[i] == NTU_LABELS[name], name
        assert store.frames[i] == NTU_FRAMES[name], name
        # only the shaking-hands sample has two people
        assert store.persons[i] == (2 if name == "S001C003P008R002A058" else 1), name
    assert info["max_persons"] == 2


def test_half_deleted_store_is_a_one_line_error(tmp_path, ntu_src):
    out = tmp_path / "ntu"
    assert main(["prepare", "ntu", str(ntu_src), str(out), "--quiet", "--workers", "1"]) == 0
    (out / "scores.npy").unlink()
    result = run_cli("info", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("skelact: error: ") and "scores.npy" in result.stderr


def test_bad_files_are_listed_and_the_rest_kept(tmp_path, ntu_src):
    src = tmp_path / "skeleton"
    shutil.copytree(ntu_src, src)
    good = (src / "S001C001P001R001A011.skeleton").read_text()
    (src / "S009C001P001R001A001.skeleton").write_text(good[: len(good) // 3])
    (src / "S009C001P001R001A002.skeleton").write_text("")
    result = run_cli("prepare", "ntu", str(src), str(tmp_path / "out"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "wrote 5 samples" in result.stdout
    assert "S009C001P001R001A001.skeleton" in result.stdout and "S009C001P001R001A002.skeleton" in result.stdout
    warning = [line for line in result.stderr.splitlines() if line.startswith("skelact: warning:")]
    assert len(warning) == 1 and "2 of 7" in warning[0]
    info = json.loads(run_cli("info", str(tmp_path / "out"), "--json").stdout)
    assert info["num_samples"] == 5 and info["rejected"] == 2


def test_cli_errors_are_one_line_with_status_2(tmp_path):
    result = run_cli("info", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert result.stderr == f"skelact: error: {tmp_path / 'missing'}: no such store directory\n"
    result = run_cli("prepare", "penn-action", str(tmp_path / "nothing-here"), str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_cli_version_and_layouts(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    from skelact import __version__

    assert capsys.readouterr().out.strip() == f"skelact {__version__}"
    assert main(["layouts"]) == 0
    rows = {line.split()[0]: int(line.split()[1]) for line in capsys.readouterr().out.splitlines()}
    assert rows["ntu25"] == 25 and rows["nw_ucla20"] == 20 and rows["penn13"] == 13 and rows["coco17"] == 17


def test_bad_option_syntax_is_a_config_error(capsys, tmp_path):
    assert main(["prepare", "nw-ucla", str(tmp_path), str(tmp_path / "o"), "--option", "novalue"]) == 2
    assert "skelact: error: --option: expected key=value" in capsys.readouterr().err


def test_option_may_not_shadow_a_prepare_setting(capsys, tmp_path):
    assert main(["prepare", "ntu", str(tmp_path), str(tmp_path / "o"), "--option", "max_persons=1"]) == 2
    assert "use --max-persons" in capsys.readouterr().err


def test_max_persons_reaches_the_ntu_reader(tmp_path, ntu_src):
    out = tmp_path / "ntu1"
    assert main(["prepare", "ntu", str(ntu_src), str(out), "--quiet", "--workers", "1", "--max-persons", "1"]) == 0
    store = SkeletonStore(out)
    assert store.persons.tolist() == [1] * 5
    assert json.loads((out / "manifest.json").read_text())["source"]["options"] == {"max_persons": 1}


class _RecordingPool:
    """Stands in for multiprocessing.Pool: runs chunks when asked and records how many were in flight."""

    def __init__(self):
        self.submitted = 0
        self.fetched = 0
        self.max_in_flight = 0

    def apply_async(self, fn, args):
        self.submitted += 1
        self.max_in_flight = max(self.max_in_flight, self.submitted - self.fetched)
        pool = self

        class Result:
            def get(self):
                pool.fetched += 1
                return fn(*args)

        return Result()


def test_parallel_reading_keeps_a_bounded_window_in_order(tmp_path):
    prepare_module._init_worker(ToySource(tmp_path), 25, None, in_process=True)
    pool = _RecordingPool()
    names = [seq.name for _, seq, _ in prepare_module.ordered_results(pool, list(range(100)), chunk=3, window=4)]
    assert names == [f"toy{k:03d}" for k in range(100)]
    assert pool.submitted == 34 and pool.max_in_flight == 4


def test_export_pyskl_round_trips_through_the_pyskl_reader(tmp_path, ntu_src, capsys):
    pytest.importorskip("skelact.data.sources.pyskl")
    import pickle

    out = tmp_path / "ntu"
    assert main(["prepare", "ntu", str(ntu_src), str(out), "--quiet", "--workers", "1"]) == 0
    pkl = tmp_path / "ntu.pkl"
    assert main(["export-pyskl", str(out), str(pkl)]) == 0
    assert main(["export-pyskl", str(out), str(pkl)]) == 2
    assert "already exists" in capsys.readouterr().err
    with open(pkl, "rb") as f:
        data = pickle.load(f)
    store = SkeletonStore(out)
    # pyskl's flat split names: <split>_<subset>
    assert sorted(data["split"]) == ["xsub_test", "xsub_train", "xview_test", "xview_train"]
    assert data["split"]["xsub_test"] == [store.name(i) for i in store.split("xsub", "test")]
    two = next(a for a in data["annotations"] if a["frame_dir"] == "S001C003P008R002A058")
    assert two["keypoint"].shape == (2, 70, 25, 3) and two["label"] == 57
    # and back: the pickle read by the pyskl reader gives the same store content
    again = tmp_path / "again"
    assert main(["prepare", "pyskl", str(pkl), str(again), "--quiet", "--workers", "1"]) == 0
    back = SkeletonStore(again)
    assert back.names == store.names and back.splits.keys() == store.splits.keys()
    for i in range(len(store)):
        np.testing.assert_array_equal(back[i].keypoints, store[i].keypoints)
        assert back.labels[i] == store.labels[i]


def test_disk_full_is_a_store_error_and_leaves_nothing(tmp_path, toy_format, monkeypatch):
    def full(self, seq, file=None):
        raise OSError(28, "No space left on device", str(self.directory / "keypoints.npy"))

    monkeypatch.setattr(prepare_module.StoreWriter, "add", full)
    with pytest.raises(DiskFullError, match="keypoints.npy: no space left on the device") as e:
        prepare(toy_format, tmp_path / "src", tmp_path / "out", workers=1, progress=False, count=3)
    assert e.value.path == str(tmp_path / "out")  # the store asked for, not the deleted temporary folder
    assert leftovers(tmp_path) == []


def test_layout_and_source_splits_reach_the_arrays_reader(tmp_path):
    pytest.importorskip("skelact.data.sources.arrays")
    src = tmp_path / "arrays"
    src.mkdir()
    rng = np.random.default_rng(3)
    rows = ["name,label,split"]
    for k in range(4):
        np.save(src / f"clip{k}.npy", rng.normal(size=(10 + k, 17, 2)).astype(np.float32))
        rows.append(f"clip{k},{k % 2},{'train' if k < 3 else 'test'}")
    (src / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert main(["prepare", "arrays", str(src), str(out), "--layout", "coco17", "--quiet", "--workers", "1"]) == 0
    store = SkeletonStore(out)
    assert store.layout.name == "coco17" and store.num_joints == 17 and store.coords == 2
    assert store.frames.tolist() == [10, 11, 12, 13]
    assert store.split("split", "train").tolist() == [0, 1, 2]  # named after its column (issue 27, item 2)
    assert store.split("split", "test").tolist() == [3]
    np.testing.assert_array_equal(store[2].keypoints[0], np.load(src / "clip2.npy"))


def test_ctrl_c_in_a_real_run_leaves_no_partial_store(tmp_path, shared_data):
    import signal

    exe = REPO / ".venv" / "bin" / "skelact"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "skelact"]
    # 300 real Penn Action files and, sorted last, a named pipe nobody writes to: reading it blocks, so the run is
    # certainly still going when Ctrl-C comes (real files alone prepare in about a second, and on a loaded
    # machine the signal could land after the end)
    src = tmp_path / "labels"
    src.mkdir()
    for path in sorted((shared_data / "penn_action_labels" / "labels").glob("*.mat"))[:300]:
        shutil.copy(path, src / path.name)
    os.mkfifo(src / "9999.mat")
    out = tmp_path / "penn"
    # as in a terminal, Ctrl-C must reach the run: a test runner started in the background (non-interactive shells
    # ignore SIGINT for background jobs) would otherwise hand its ignored SIGINT down to the child
    proc = subprocess.Popen(cmd + ["prepare", "penn-action", str(src), str(out), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # wait for the progress bar, i.e. the workers are parsing, then Ctrl-C the whole process group as a terminal does
    seen = ""
    while "file/s" not in seen and proc.poll() is None:
        seen += proc.stderr.read(1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-500:]
    assert err.rstrip().endswith("skelact: interrupted; nothing was written")
    assert leftovers(tmp_path) == ["labels"]  # no store, no temporary folder beside it


def test_python_dash_m_runs_the_same_command():
    from skelact import __version__

    result = subprocess.run([sys.executable, "-m", "skelact", "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"skelact {__version__}"
