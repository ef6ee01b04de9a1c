"""No data file or checkpoint can run code (issue 26, item 1).

Crafted pickles whose ``__reduce__`` would create a marker folder (``os.mkdir``, pickled as ``posix.mkdir``) or
touch a marker file through ``os.system`` are fed to every command that unpickles a data file; each must exit 2 with
one line naming the file and the forbidden global, and the marker must not exist. Real pickles (the mmaction2
sample, NTU's txt2npy ``.skeleton.npy`` files, one of them written by numpy 2) must read exactly as numpy's own
loaders read them, and ``--trust-pickle`` must read a trusted file the restricted loader refuses. Checkpoints: a
source scan keeps every ``torch.load`` at ``weights_only=True`` and every data unpickling in the safe module, and a
crafted checkpoint is refused by ``test``, ``predict``, ``export`` and ``train --resume`` without running its code.
"""

from __future__ import annotations

import ast
import datetime
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from skelact.cli import main
from skelact.data.safe_pickle import UnsafePickleError, load_npy, load_pickle, restricted_loads

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "skelact"
NTU_NPY = "S001C001P001R001A001.skeleton.npy"

pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:Checkpoint directory .* exists",
                                        "ignore:.*does not have many workers")


class MakesFolder:
    """Unpickled by the plain loader, this calls ``os.mkdir(path)``."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


class TouchesFile:
    """Unpickled by the plain loader, this runs ``touch <path>`` through ``os.system`` (``posix.system``)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return os.system, (f"touch '{self.path}'",)


HOSTILE = [pytest.param(MakesFolder, "posix.mkdir", id="mkdir"),
           pytest.param(TouchesFile, "posix.system", id="system")]


def one_line_error(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("skelact: error: "), err
    return lines[0]


def dense_annotation(name: str, **extra) -> dict:
    rng = np.random.default_rng(0)
    return {"frame_dir": name, "label": 1, "total_frames": 6,
            "keypoint": rng.random((1, 6, 17, 2), dtype=np.float32),
            "keypoint_score": np.ones((1, 6, 17), np.float32), **extra}


def write_pickle(path: Path, content) -> Path:
    path.write_bytes(pickle.dumps(content, protocol=4))
    return path


def save_object_npy(path: Path, content: dict) -> Path:
    holder = np.empty((), dtype=object)
    holder[()] = content
    np.save(path, holder, allow_pickle=True)  # what NTU's txt2npy.py writes: np.save of a dict
    return path


def ntu_npy_dict(extra) -> dict:
    real = np.load(Path(os.environ.get("SKELACT_DATA", REPO.parent / "shared" / "data")) / "ntu_rgbd_samples" /
                   "npy" / NTU_NPY, allow_pickle=True).item()
    return {**real, "extra": extra}


def assert_equal_content(ours, theirs, where="content"):
    """Deep equality, arrays by dtype, shape and values (NaN equal to NaN)."""
    assert type(ours) is type(theirs), where
    if isinstance(theirs, np.ndarray):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        if theirs.dtype == object:
            for i, (a, b) in enumerate(zip(ours.reshape(-1), theirs.reshape(-1))):
                assert_equal_content(a, b, f"{where}[{i}]")
        else:
            assert np.array_equal(ours, theirs, equal_nan=theirs.dtype.kind in "fc"), where
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert_equal_content(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_equal_content(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs, where


# --------------------------------------------------------------------------------------- hostile data files


@pytest.mark.parametrize("hostile, forbidden", HOSTILE)
def test_prepare_pyskl_refuses_a_hostile_annotation_pickle(tmp_path, capsys, hostile, forbidden):
    marker = tmp_path / "marker"
    pkl = write_pickle(tmp_path / "ann.pkl", {"split": {"train": ["a"]},
                                              "annotations": [dense_annotation("a", note=hostile(marker))]})
    line = one_line_error(capsys, "prepare", "pyskl", pkl, tmp_path / "store", "-q", "--workers", "1")
    assert str(pkl) in line and forbidden in line and "--trust-pickle" in line
    assert not marker.exists()
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("hostile, forbidden", HOSTILE)
def test_prepare_pyskl_refuses_a_hostile_keypoint_pickle(tmp_path, capsys, hostile, forbidden):
    marker = tmp_path / "marker"
    kpfile = write_pickle(tmp_path / "kp.pkl", {"a": {"keypoint": hostile(marker)}})
    ann = {"frame_dir": "a", "label": 0, "total_frames": 3, "raw_file": "kp.pkl",
           "frame_inds": np.array([0, 1, 2]), "box_score": np.ones(3, np.float32)}
    pkl = write_pickle(tmp_path / "ann.pkl", {"split": {}, "annotations": [ann]})
    line = one_line_error(capsys, "prepare", "pyskl", pkl, tmp_path / "store", "-q", "--workers", "1",
                          "--layout", "coco17")
    assert str(kpfile) in line and forbidden in line
    assert not marker.exists()


@pytest.mark.parametrize("hostile, forbidden", HOSTILE)
def test_prepare_ntu_npy_refuses_a_hostile_dict(tmp_path, capsys, hostile, forbidden, shared_data):
    marker = tmp_path / "marker"
    folder = tmp_path / "npy"
    folder.mkdir()
    npy = save_object_npy(folder / NTU_NPY, ntu_npy_dict(hostile(marker)))
    line = one_line_error(capsys, "prepare", "ntu-npy", folder, tmp_path / "store", "-q", "--workers", "1")
    assert str(npy) in line and forbidden in line
    assert not marker.exists()


def test_a_hostile_file_among_good_ones_is_listed_as_rejected(tmp_path, capsys, shared_data):
    # one refused file does not stop the rest of the folder: it is rejected with its reason, as any bad file is
    marker = tmp_path / "marker"
    folder = tmp_path / "npy"
    shutil.copytree(shared_data / "ntu_rgbd_samples" / "npy", folder)
    hostile = save_object_npy(folder / "S001C001P001R001A002.skeleton.npy", ntu_npy_dict(MakesFolder(marker)))
    assert main(["prepare", "ntu-npy", str(folder), str(tmp_path / "store"), "-q", "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert "wrote 2 samples" in out and f"{hostile}: content: refused to unpickle posix.mkdir" in out
    assert not marker.exists()


def test_a_bare_pickle_named_npy_is_refused_too(tmp_path, shared_data):
    # np.load(allow_pickle=True) unpickles a file without the .npy magic, so load_npy must not skip the check
    marker = tmp_path / "marker"
    npy = write_pickle(tmp_path / NTU_NPY, ntu_npy_dict(MakesFolder(marker)))
    with pytest.raises(UnsafePickleError) as e:
        load_npy(npy)
    assert "posix.mkdir" in str(e.value) and str(npy) in str(e.value)
    assert not marker.exists()


def test_plain_loaders_would_have_run_the_code(tmp_path):
    """The crafted payloads are real: the plain loader does create the marker (so the tests above can fail)."""
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(TouchesFile(marker)))
    assert marker.exists()


# ------------------------------------------------------------------------------------- real files still read


def test_real_mmaction2_pickle_reads_as_pickle_load_reads_it(shared_data):
    path = shared_data / "mmaction2_pose_pkl_sample" / "sample.pkl"
    with open(path, "rb") as f:
        theirs = pickle.load(f)
    ours = load_pickle(path)
    assert len(ours["annotations"]) == 100  # the file's known size (its README)
    assert_equal_content(ours, theirs)


def test_real_ntu_npy_files_read_as_np_load_reads_them(shared_data):
    files = sorted((shared_data / "ntu_rgbd_samples" / "npy").glob("*.npy"))
    assert len(files) == 2
    # one of the two real files was written by numpy 2: it names numpy._core.multiarray._reconstruct
    assert [b"numpy._core.multiarray" in p.read_bytes() for p in files] == [False, True]
    for path in files:
        ours, theirs = load_npy(path), np.load(path, allow_pickle=True)
        assert ours.dtype == object and ours.shape == ()
        assert_equal_content(ours.item(), theirs.item(), path.name)


def test_plain_npy_is_read_without_unpickling(tmp_path):
    path = tmp_path / "plain.npy"
    np.save(path, np.arange(12, dtype=np.int16).reshape(3, 4))
    assert_equal_content(load_npy(path), np.arange(12, dtype=np.int16).reshape(3, 4))


def as_numpy2(data: bytes) -> bytes:
    """A protocol <= 3 pickle (text GLOBAL opcodes) with numpy 1's module names changed to numpy 2's."""
    assert b"numpy.core." in data
    return data.replace(b"numpy.core.", b"numpy._core.")


@pytest.mark.parametrize("protocol", [0, 2, 3])
def test_numpy2_module_names_are_admitted(protocol):
    content = {"keypoint": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "fortran": np.asfortranarray(
        np.eye(3)), "score": np.float16(0.5), "count": np.int64(7), "flag": np.bool_(True), "name": np.str_("a"),
        "names": np.array(["x", "yz"]), "raw": b"\x00\xff", "shape": (1, 2), "empty": np.zeros((0, 17, 3))}
    data = as_numpy2(pickle.dumps(content, protocol=protocol))
    assert_equal_content(restricted_loads(data), content)
    # the protocol-5 reconstructor (numpy._core.numeric._frombuffer), reached through a text GLOBAL opcode
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]

    class Protocol5Array:
        def __reduce__(self):
            return frombuffer, (bytearray(content["keypoint"].tobytes()), np.dtype(np.float32), (2, 3, 4), "C")

    rebuilt = restricted_loads(as_numpy2(pickle.dumps(Protocol5Array(), protocol=3)))
    assert_equal_content(rebuilt, content["keypoint"])


#: pickle.dumps({"keypoint": np.arange(6, dtype=np.float32).reshape(2, 3), "score": np.float16(1.5)}, protocol=5)
#: as numpy 2.4.6 wrote it (STACK_GLOBAL numpy._core.numeric._frombuffer and numpy._core.multiarray.scalar, in a
#: frame); plain pickle.load under numpy 1.26 cannot even read it (1.26 has no numpy._core.numeric)
NUMPY2_PROTOCOL5 = bytes.fromhex(
    "800595f6000000000000007d94288c086b6579706f696e74948c136e756d70792e5f636f72652e6e756d65726963948c0b5f6672"
    "6f6d62756666657294939428961800000000000000000000000000803f0000004000004040000080400000a040948c056e756d70"
    "79948c0564747970659493948c02663494898887945294284b038c013c944e4e4e4affffffff4affffffff4b007494624b024b03"
    "86948c014394749452948c0573636f7265948c166e756d70792e5f636f72652e6d756c74696172726179948c067363616c617294"
    "939468088c02663294898887945294284b03680c4e4e4e4affffffff4affffffff4b007494624302003e9486945294752e")


def test_a_pickle_written_by_numpy2_is_admitted():
    content = restricted_loads(NUMPY2_PROTOCOL5)
    assert_equal_content(content, {"keypoint": np.arange(6, dtype=np.float32).reshape(2, 3),
                                   "score": np.float16(1.5)})


def test_object_arrays_and_the_portable_writer_round_trip(tmp_path):
    from skelact.data.sources.pyskl import _PortablePickler

    content = {"objects": np.array([{"a": 1}, [2, 3]], dtype=object), "dense": np.ones((2, 2), np.float32)}
    for protocol in (2, 4, 5):
        assert_equal_content(restricted_loads(pickle.dumps(content, protocol=protocol)), content)
    path = tmp_path / "portable.pkl"
    with open(path, "wb") as f:  # what export-pyskl writes: numpy.frombuffer / numpy.reshape, builtins
        _PortablePickler(f, protocol=4).dump({"dense": content["dense"], "score": np.float32(0.25)})
    assert_equal_content(load_pickle(path), {"dense": content["dense"], "score": 0.25})


@pytest.mark.parametrize("crafted, forbidden", [
    (b"c_codecs\nencode\n(Vx\nVrot13\ntR.", "rot13"),  # _codecs.encode is admitted for latin-1 only
    (b"cbuiltins\ngetattr\n(cbuiltins\nstr\nVjoin\ntR.", "builtins.getattr"),
    (b"cnumpy\nload\n(Vx\ntR.", "numpy.load"),
])
def test_admitted_modules_do_not_admit_their_other_names(crafted, forbidden):
    with pytest.raises(Exception) as e:
        restricted_loads(crafted, "crafted.pkl")
    assert forbidden in str(e.value)


def test_trust_pickle_option_must_be_a_boolean(tmp_path, capsys, shared_data):
    line = one_line_error(capsys, "prepare", "ntu-npy", shared_data / "ntu_rgbd_samples" / "npy", tmp_path / "s",
                          "-q", "--option", "trust_pickle=maybe")
    assert "trust_pickle" in line and "expected true or false" in line


def test_trust_pickle_reads_a_trusted_file(tmp_path, capsys):
    recorded = datetime.date(2024, 5, 17)  # an ordinary class the restricted loader does not admit
    pkl = write_pickle(tmp_path / "ann.pkl", {"split": {"train": ["a"]},
                                              "annotations": [dense_annotation("a", recorded=recorded)]})
    line = one_line_error(capsys, "prepare", "pyskl", pkl, tmp_path / "refused", "-q", "--workers", "1")
    assert "datetime.date" in line
    assert main(["prepare", "pyskl", str(pkl), str(tmp_path / "store"), "-q", "--workers", "1",
                 "--trust-pickle"]) == 0
    from skelact.data.store import SkeletonStore

    store = SkeletonStore(tmp_path / "store")
    assert len(store) == 1
    assert np.array_equal(store[0].keypoints, dense_annotation("a")["keypoint"])


# ----------------------------------------------------------------------------------- predict and checkpoints


@pytest.fixture(scope="module")
def run(shared_data: Path, tmp_path_factory) -> Path:
    """A one-epoch, very small CTR-GCN trained on 10 real NW-UCLA clips (views 1 and 3)."""
    pytest.importorskip("lightning", reason="training needs the train extra (lightning)")
    base = tmp_path_factory.mktemp("hostile")
    clips = base / "nw_ucla" / "all_sqe"
    clips.mkdir(parents=True)
    for name in ["a01_s01_e00_v01", "a01_s01_e01_v01", "a02_s01_e00_v01", "a03_s01_e00_v01", "a04_s01_e00_v01",
                 "a05_s01_e00_v01", "a01_s01_e00_v03", "a02_s01_e00_v03", "a03_s01_e00_v03", "a04_s01_e00_v03"]:
        shutil.copy(shared_data / "nw_ucla" / "all_sqe" / f"{name}.json", clips)
    out = base / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKELACT_CACHE", str(base / "cache"))
        assert main([
            "train", str(REPO / "configs" / "nw_ucla" / "ctrgcn_joint.yaml"), "epochs=1", "model.base_channels=4",
            "model.num_blocks=1", f"data.source={clips.parent}", "data.batch_size=2", "data.num_workers=0",
            "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.threads=1",
            "data.train_pipeline=[{type: UclaSample, window_size: 8}]",
            "data.test_pipeline=[{type: UclaSample, window_size: 8, test_mode: true}]",
            "--run-dir", str(out)]) == 0
        yield out


@pytest.mark.parametrize("hostile, forbidden", HOSTILE)
def test_predict_refuses_a_hostile_npy(run, tmp_path, capsys, hostile, forbidden, shared_data):
    marker = tmp_path / "marker"
    npy = save_object_npy(tmp_path / NTU_NPY, ntu_npy_dict(hostile(marker)))
    line = one_line_error(capsys, "predict", run, npy)
    assert str(npy) in line and forbidden in line and "--trust-pickle" in line
    assert not marker.exists()


def test_predict_trust_pickle_reads_a_trusted_npy(run, tmp_path, capsys, shared_data):
    npy = save_object_npy(tmp_path / NTU_NPY, ntu_npy_dict(datetime.date(2024, 5, 17)))
    assert "datetime.date" in one_line_error(capsys, "predict", run, npy)
    # trusted, the file is read and only then found to be NTU's 25 joints, not the model's 20
    line = one_line_error(capsys, "predict", run, npy, "--trust-pickle")
    assert "'ntu25' (25 joints)" in line and "'nw_ucla20' (20 joints)" in line


def test_torch_load_is_weights_only_and_data_unpickling_is_in_the_safe_module():
    """A source scan: every ``torch.load(...)`` passes ``weights_only=True``; no ``pickle.load(s)``,
    ``Unpickler`` or ``allow_pickle=True`` outside :mod:`skelact.data.safe_pickle`."""
    torch_loads, offending = 0, []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        safe_module = path == SRC / "data" / "safe_pickle.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = ast.unparse(node.func)
            where = f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)[:80]}"
            keywords = {k.arg: k.value for k in node.keywords}
            if func == "torch.load":
                torch_loads += 1
                value = keywords.get("weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    offending.append(where)
            if safe_module:
                continue
            if func.endswith(("pickle.load", "pickle.loads", "Unpickler")):
                offending.append(where)
            value = keywords.get("allow_pickle")
            if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                offending.append(where)
    assert torch_loads >= 5  # the scan does see the loaders (run, test, export, ssl, feature plot)
    assert offending == []


@pytest.fixture()
def hostile_run(run, tmp_path) -> tuple[Path, Path]:
    """A copy of ``run`` whose checkpoints hold, beside the real weights, an object that would make a folder."""
    import torch

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    marker = tmp_path / "marker"
    for ckpt in (copy / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
        checkpoint["hostile"] = MakesFolder(marker)
        torch.save(checkpoint, ckpt)
    return copy, marker


def test_crafted_checkpoint_is_refused_by_every_command(hostile_run, tmp_path, capsys, shared_data):
    run_copy, marker = hostile_run
    clip = shared_data / "nw_ucla" / "all_sqe" / "a01_s01_e00_v03.json"
    for argv in (["test", run_copy], ["predict", run_copy, clip], ["export", run_copy, "--onnx", tmp_path / "m.onnx"],
                 ["train", "--resume", run_copy, "epochs=2"]):
        line = one_line_error(capsys, *argv)
        assert "checkpoints" in line and "unreadable checkpoint" in line, argv
        assert not marker.exists(), argv
    assert not (tmp_path / "m.onnx").exists()
