"""No data file or checkpoint can run code (issue 26, item 1).

Crafted pickles whose ``__reduce__`` would create a marker folder (``os.mkdir``, pickled as ``posix.mkdir``) or
touch a marker file through ``os.system`` are fed to every command that unpickles a data file; each must exit 2 with
one line naming the file and the forbidden global, and the marker must not exist. Real pickles (the mmaction2
sample, NTU's txt2npy ``.skeleton.npy`` files, one of them written by numpy 2) must read exactly as numpy's own
loaders read them, and ``--trust-pickle`` must read a trusted file the restricted loader refuses. Checkpoints: a
source scan keeps every ``torch.load`` at ``weights_only=True`` and every data unpickling in the safe module, and a
crafted checkpoint is refused by ``test``, ``predict``, ``export`` and ``train --resume`` without running its code.

Absurd sizes (issue 26, item 4): an ``.npy`` header claiming 300 GB in a 228-byte file, tiny pickles claiming
gigabyte arrays or buffers, object arrays whose element list is shorter than their shape (numpy 1.26 reads past
it) and pyskl annotations claiming 10^9 frames beside 20 are refused in one line or as a rejected item; the
commands run in a child process whose address space is capped, so an allocation attempt fails loudly.
"""

from __future__ import annotations

import ast
import datetime
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skelact.cli import main
from skelact.data.safe_pickle import UnsafePickleError, load_npy, load_pickle, restricted_loads
from skelact.errors import DataError
from cli_run import one_line_error

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


# ---------------------------------------------------------------------- absurd sizes (issue 26, item 4)

#: run ``skelact`` (or, with ``--load``, load_pickle on each file) in a child process whose address space is capped
#: at what it has mapped after its imports plus 1 GiB: an attempt to allocate what a file claims fails loudly there
#: (and a numpy crash kills only the child) instead of quietly succeeding on an overcommitting machine
CAPPED_CHILD = r"""
import json, re, resource, sys
import numpy
from skelact.cli import main
from skelact.data.safe_pickle import load_pickle
from skelact.errors import SkelactError
if sys.argv[1] == "predict":
    import torch, skelact.inference.predictor  # noqa: F401 - mapped before the cap, as a real run has them
mapped = int(re.search(r"VmSize:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_AS, (mapped + (1 << 30), mapped + (1 << 30)))
if sys.argv[1] == "--load":
    out = {}
    for path in sys.argv[2:]:
        try:
            out[path] = "loaded " + type(load_pickle(path)).__name__
        except SkelactError as e:
            out[path] = f"{type(e).__name__}: {e}"
        except BaseException as e:
            out[path] = f"ESCAPED {type(e).__name__}: {e}"
    print(json.dumps(out))
    sys.exit(0)
sys.exit(main(sys.argv[1:]))
"""


def run_capped(*argv, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC.parent), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", CAPPED_CHILD, *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def one_line_from(child: subprocess.CompletedProcess) -> str:
    lines = child.stderr.strip().splitlines()
    assert child.returncode == 2, (child.returncode, child.stdout, child.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("skelact: error: "), child.stderr[-3000:]
    return lines[0]


def lying_npy(path: Path, shape=(10**9, 25, 3), descr="<f4", payload: bytes = b"\0" * 100) -> Path:
    """An .npy whose header claims ``shape`` of ``descr`` and whose data is ``payload``."""
    from numpy.lib import format as npy_format

    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
        f.write(payload)
    return path


class ObjectArray:
    """Pickles as numpy pickles an object array (``_reconstruct`` then ``BUILD``), but with a ``shape`` and
    ``elements`` of our choosing."""

    def __init__(self, shape, elements, dtype=np.dtype(object)):
        self.shape, self.elements, self.dtype = shape, elements, dtype

    def __reduce__(self):
        reconstruct = np.zeros(1).__reduce__()[0]
        return reconstruct, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.elements)


class Calls:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_lying_npy_header_is_refused_before_allocating(tmp_path):
    folder = tmp_path / "npy"
    folder.mkdir()
    npy = lying_npy(folder / NTU_NPY)  # 228 bytes claiming 300 GB
    line = one_line_from(run_capped("prepare", "ntu-npy", folder, tmp_path / "store", "-q", "--workers", "1"))
    assert str(npy) in line and "truncated or corrupt header" in line
    assert "(1000000000, 25, 3)" in line and f"file is {npy.stat().st_size} bytes" in line
    assert not (tmp_path / "store").exists()
    # a claim a machine could satisfy is refused as well: the header, not the allocator, decides
    small = lying_npy(tmp_path / "small.npy", shape=(2000, 25, 3))
    with pytest.raises(DataError, match=r"truncated or corrupt header: it claims shape \(2000, 25, 3\) of float32 "
                                        r"\(600000 bytes\)"):
        load_npy(small)
    # exactly the claimed bytes (a real array) is read, trusted or not
    exact = lying_npy(tmp_path / "exact.npy", shape=(2, 3), descr="<i2", payload=np.arange(6, dtype="<i2").tobytes())
    for trust in (False, True):
        assert_equal_content(load_npy(exact, trust=trust), np.arange(6, dtype=np.int16).reshape(2, 3))


def test_predict_refuses_a_lying_npy_header(run, tmp_path):
    npy = lying_npy(tmp_path / NTU_NPY)
    line = one_line_from(run_capped("predict", run, npy))
    assert str(npy) in line and "truncated or corrupt header" in line and "(1000000000, 25, 3)" in line


def crafted_pickles(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Tiny pickles claiming gigabytes, each with the words its refusal must contain."""
    reconstruct = np.zeros(1).__reduce__()[0]
    crafted = {
        "short_object_list": (pickle.dumps(ObjectArray((5,), [1, 2]), 2), r"shape \(5,\) \(5 elements\) but its "
                                                                           "pickle holds 2 elements"),
        "huge_object_array": (pickle.dumps(ObjectArray((10**9,), []), 2), "claims shape (1000000000,)"),
        "huge_float_array": (pickle.dumps(ObjectArray((10**9,), b"\0" * 8, np.dtype("f8")), 2),
                             "(8000000000 bytes) but its pickle holds 8 bytes"),
        "object_subarray": (pickle.dumps(ObjectArray((1,), [None], np.dtype(("O", (2 * 10**8,)))), 2),
                            "would take 1600000000 bytes"),
        "reconstruct_shape": (pickle.dumps(Calls(reconstruct, np.ndarray, (10**9,), "O"), 2),
                              "initial array of shape (1000000000,)"),
        "ndarray_call": (pickle.dumps(Calls(np.ndarray, (10**9,), "O"), 2), "calls numpy.ndarray directly"),
        "bytes_count": (pickle.dumps(Calls(bytes, 10**10), 2), "bytes(10000000000)"),
        "binbytes8": (b"\x80\x04\x8e" + (10**10).to_bytes(8, "little") + b"abc.",
                      "claims a 10000000000-byte item where only 4 bytes are left"),
        "bytearray8": (b"\x80\x05\x96" + (10**10).to_bytes(8, "little") + b"abc.",
                       "10000000000-byte bytearray in a 15-byte file"),
    }
    files = {}
    for name, (data, words) in crafted.items():
        assert len(data) < 300, name
        files[name] = (write_bytes(tmp_path / f"{name}.pkl", data), words)
    return files


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_tiny_pickles_claiming_huge_arrays_are_refused(tmp_path):
    files = crafted_pickles(tmp_path)
    child = run_capped("--load", *(path for path, _ in files.values()))
    assert child.returncode == 0, child.stderr[-3000:]
    results = json.loads(child.stdout)
    for name, (path, words) in files.items():
        result = results[str(path)]
        assert result.startswith(f"DataError: {path}: content: "), (name, result)
        assert re.search(words, result) if name == "short_object_list" else words in result, (name, result)


def test_the_crafted_sizes_are_real(tmp_path):
    """Through the plain unpickler the short list makes numpy 1.26 read past the list's end (an array of 5 whose
    last 3 are whatever objects lie there, or a segmentation fault), and the huge object array asks the allocator
    for 8 GB: the refusals above are of real hazards, so their tests can fail."""
    files = crafted_pickles(tmp_path)
    probe = ("import pickle, resource, sys\nimport numpy\n"
             "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
             "try:\n    array = pickle.load(open(sys.argv[1], 'rb'))\nexcept MemoryError:\n    sys.exit(3)\n"
             "except Exception:\n    sys.exit(4)\n"
             "sys.exit(5 if array.shape == (5,) else 0)\n")
    short = subprocess.run([sys.executable, "-c", probe, str(files["short_object_list"][0])], capture_output=True)
    assert short.returncode in (-signal.SIGSEGV, 5)  # 5 elements read from a 2-element list
    huge = subprocess.run([sys.executable, "-c", probe, str(files["huge_object_array"][0])], capture_output=True)
    assert huge.returncode == 3


def test_crafted_object_npy_is_a_rejected_item(tmp_path, shared_data):
    # an NTU .skeleton.npy whose object payload claims a billion elements, beside the two real files; in a capped
    # child, since numpy given this state without the check zero-fills 8 GB or crashes (reading past the list)
    from numpy.lib import format as npy_format

    folder = tmp_path / "npy"
    shutil.copytree(shared_data / "ntu_rgbd_samples" / "npy", folder)
    crafted = folder / "S001C001P001R001A002.skeleton.npy"
    with open(crafted, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        f.write(pickle.dumps(ObjectArray((10**9,), []), 2))
    child = run_capped("prepare", "ntu-npy", folder, tmp_path / "store", "-q", "--workers", "1")
    assert child.returncode == 0, (child.returncode, child.stderr[-3000:])
    assert "wrote 2 samples" in child.stdout
    assert f"{crafted}: content: an array of Python objects claims shape (1000000000,)" in child.stdout


def real_kinetics_annotation(shared_data: Path, frames: int) -> dict:
    """The first annotation of the real mmaction2 sample cut to its first ``frames`` frames with skeletons, with
    keypoint rows [N, 17, 3] added (the sample ships without them)."""
    with open(shared_data / "mmaction2_pose_pkl_sample" / "sample.pkl", "rb") as f:
        ann = dict(pickle.load(f)["annotations"][0])
    keep = ann["frame_inds"] < np.unique(ann["frame_inds"])[frames]
    ann["frame_inds"], ann["box_score"] = ann["frame_inds"][keep], ann["box_score"][keep]
    rng = np.random.default_rng(1)
    ann["keypoint"] = np.concatenate([rng.random((keep.sum(), 17, 2), dtype=np.float32) * 300,
                                      np.ones((keep.sum(), 17, 1), np.float32)], axis=2)
    return ann


def prepare_pyskl(tmp_path, capsys, annotations, *extra) -> tuple[int, str]:
    pkl = write_pickle(tmp_path / "ann.pkl", {"split": {}, "annotations": annotations})
    code = main(["prepare", "pyskl", str(pkl), str(tmp_path / "store"), "-q", "--workers", "1", "--overwrite",
                 *map(str, extra)])
    out, err = capsys.readouterr()
    return code, out + err


def test_pyskl_total_frames_must_agree_with_the_keypoints(tmp_path, capsys, shared_data):
    from skelact.data.store import SkeletonStore

    ann = real_kinetics_annotation(shared_data, 20)
    assert ann["total_frames"] == 300 and len(np.unique(ann["frame_inds"])) == 20
    name = ann["frame_dir"]
    dense = {"frame_dir": "dense", "label": 3, "total_frames": 20,
             "keypoint": np.random.default_rng(2).random((1, 20, 17, 2), dtype=np.float32),
             "keypoint_score": np.ones((1, 20, 17), np.float32)}
    # as recorded: the compressed clip keeps its 20 frames with skeletons and the video's 300 in meta
    code, text = prepare_pyskl(tmp_path, capsys, [ann, dense])
    assert code == 0 and "wrote 2 samples (40 frames)" in text, text
    store = SkeletonStore(tmp_path / "store")
    kept = {store[i].name: store[i] for i in range(len(store))}
    assert kept[name].num_frames == 20 and kept[name].meta["total_frames"] == 300
    # 10**9 frames claimed next to 20 frames of data: rejected with the reason, nothing allocated for them
    code, text = prepare_pyskl(tmp_path, capsys, [{**ann, "total_frames": 10**9}, {**dense, "total_frames": 10**9},
                                                  {**dense, "frame_dir": "ok"}])
    assert code == 0 and "wrote 1 samples" in text and "rejected 2 item(s)" in text, text
    assert text.count("annotations[0].total_frames: 1000000000 frames is more than the cap of 100000") == 1
    assert text.count("annotations[1].total_frames: 1000000000 frames is more than the cap of 100000") == 1
    # a dense count off by one either way, a frame index past the count, a count that is no count
    frame_inds = ann["frame_inds"].copy()
    frame_inds[-1] = 301
    code, text = prepare_pyskl(tmp_path, capsys, [{**dense, "frame_dir": "d21", "total_frames": 21},
                                                  {**dense, "frame_dir": "d19", "total_frames": 19},
                                                  {**ann, "frame_inds": frame_inds},
                                                  {**dense, "frame_dir": "text", "total_frames": "20"},
                                                  {**dense, "frame_dir": "ok"}])
    assert code == 0 and "rejected 4 item(s)" in text, text
    assert "total_frames is 21 but keypoint holds 20 frames" in text
    assert "total_frames is 19 but keypoint holds 20 frames" in text
    assert "frame index 301 is beyond total_frames 300" in text
    assert "expected a frame count (an integer >= 0), got '20'" in text
    # the real sample numbers some clips' frames from 1: the last index may equal total_frames
    frame_inds[-1] = 300
    code, text = prepare_pyskl(tmp_path, capsys, [{**ann, "frame_inds": frame_inds}])
    assert code == 0 and "rejected" not in text, text
    # the cap is an option
    code, text = prepare_pyskl(tmp_path, capsys, [ann, dense], "--max-frames", "250")
    assert code == 0 and "rejected 1 item(s)" in text and "300 frames is more than the cap of 250" in text, text


def test_pyskl_keypoint_files_get_the_same_checks(tmp_path, capsys, shared_data):
    ann = real_kinetics_annotation(shared_data, 20)
    rows = ann.pop("keypoint")
    name = ann["frame_dir"]
    # pyskl's kpfile ({frame_dir: {'keypoint': rows}}) beside an annotation claiming 10**9 frames
    write_pickle(tmp_path / "kp.pkl", {name: {"keypoint": rows}})
    code, text = prepare_pyskl(tmp_path, capsys, [{**ann, "raw_file": "kp.pkl", "total_frames": 10**9}],
                               "--layout", "coco17")
    assert code == 2 and "1000000000 frames is more than the cap of 100000" in text, text
    # mmaction2 1.x: <frame_dir>.pkl merged into the annotation, here carrying its own absurd total_frames
    write_pickle(tmp_path / f"{name}.pkl", {"keypoint": rows, "total_frames": 10**9})
    code, text = prepare_pyskl(tmp_path, capsys, [ann], "--layout", "coco17")
    assert code == 2 and "1000000000 frames is more than the cap of 100000" in text, text
    # a keypoint file that is itself a tiny pickle claiming a huge array
    write_bytes(tmp_path / f"{name}.pkl", pickle.dumps({"keypoint": ObjectArray((10**9, 17, 3), b"\0" * 12,
                                                                                np.dtype("f4"))}, 2))
    code, text = prepare_pyskl(tmp_path, capsys, [ann], "--layout", "coco17")
    assert code == 2 and f"{tmp_path / name}.pkl: content: an array claims shape (1000000000, 17, 3)" in text, text


def test_memory_error_while_reading_is_one_line_or_a_rejected_item(tmp_path, capsys, monkeypatch):
    from skelact.data import safe_pickle
    from skelact.data.sources.pyskl import PysklPickleSource

    pkl = write_pickle(tmp_path / "ann.pkl", {"split": {}, "annotations": [dense_annotation("a"),
                                                                          dense_annotation("b")]})
    real_read = PysklPickleSource._read_annotation

    def runs_out_on_b(self, ann, item, where):
        if item == "b":
            raise MemoryError()
        return real_read(self, ann, item, where)

    with monkeypatch.context() as m:
        m.setattr(PysklPickleSource, "_read_annotation", runs_out_on_b)
        code, text = prepare_pyskl(tmp_path, capsys, [dense_annotation("a"), dense_annotation("b")])
    assert code == 0 and "rejected 1 item(s)" in text
    assert "annotations[1], b: out of memory reading this sample" in text, text

    def out_of_memory(self):
        raise MemoryError()

    monkeypatch.setattr(safe_pickle.RestrictedUnpickler, "load", out_of_memory)
    line = one_line_error(capsys, "prepare", "pyskl", pkl, tmp_path / "other", "-q")
    assert line == f"skelact: error: {pkl}: out of memory while reading the file (it claims more data than this " \
                   "machine can hold: corrupt or hostile?)"
