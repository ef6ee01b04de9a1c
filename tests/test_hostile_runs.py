"""Run directories under hostile conditions (issue 26): ``kill -9`` at a random step then ``--resume`` (with and
without data workers), two writers racing for one run directory, a full disk while writing checkpoints and
evaluation outputs, and the temporary files a killed write leaves behind.

Real NW-UCLA clips, a 2-block CTR-GCN of width 8, 32 training clips in batches of 8 (4 steps per epoch)."""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning", reason="training needs the train extra (lightning)")

from skelact.cli import main  # noqa: E402
from skelact.locking import LOCK_FILE, lock_dir  # noqa: E402
from cli_run import real_data_env  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:Checkpoint directory .* exists",
                                        "ignore:.*does not have many workers")

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "nw_ucla" / "ctrgcn_joint.yaml"
STEPS_PER_EPOCH = 4  # 32 clips / batch 8, drop_last


def tiny(num_workers: int = 0) -> list[str]:
    """Augmentation (random view rotation) and dropout on: a resumed epoch that saw another epoch's order, samples
    or RNG state would end with other weights."""
    return ["model.base_channels=8", "model.num_blocks=2", "model.dropout=0.5", "data.max_train_samples=32",
            "data.max_test_samples=16", "data.batch_size=8", f"data.num_workers={num_workers}",
            "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.threads=1",
            "evaluate.checkpoint=last",
            "data.train_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, "
            "{type: RandomViewRotation, max_degrees: 60, scale_range: [0.5, 1.5]}, {type: MinMaxNormalize}, "
            "{type: UclaSample, window_size: 16}]",
            "data.test_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, {type: MinMaxNormalize}, "
            "{type: UclaSample, window_size: 16, test_mode: true}]"]


@pytest.fixture(scope="module", autouse=True)
def data_env(shared_data: Path, tmp_path_factory):
    """Real data root, the session's store cache (shared with test_cli_train.py), one OpenMP thread for the
    subprocesses."""
    with real_data_env(tmp_path_factory, shared_data, OMP_NUM_THREADS="1"):
        yield


def cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("skelact: error: "), err
    return lines[0]


def checkpoint(run: Path, which: str = "last") -> dict:
    return torch.load(run / "checkpoints" / f"{which}.ckpt", map_location="cpu", weights_only=True)


def assert_same_run(a: Path, b: Path) -> None:
    """Weights, optimiser state, scores and metrics bit for bit (the metrics differ only in the run's own path)."""
    ca, cb = checkpoint(a), checkpoint(b)
    assert (ca["epoch"], ca["global_step"]) == (cb["epoch"], cb["global_step"])
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for key in ca["state_dict"]:
        assert torch.equal(ca["state_dict"][key], cb["state_dict"][key]), key
    for sa, sb in zip(ca["optimizer_states"][0]["state"].values(), cb["optimizer_states"][0]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert (a / "scores.npy").read_bytes() == (b / "scores.npy").read_bytes()
    ma, mb = (json.loads((run / "metrics.json").read_text()) for run in (a, b))
    assert ma.pop("checkpoint_path") == str(a / "checkpoints" / "last.ckpt")
    assert mb.pop("checkpoint_path") == str(b / "checkpoints" / "last.ckpt")
    assert ma == mb


def cli_with_callback(callback: str) -> str:
    """A ``python -c`` script that runs the real `skelact` command line with the Lightning callback class ``Hook``
    (defined in ``callback``) added to the run's Trainer: the hook is the test's own, nothing in skelact knows it."""
    return f"""
import os, signal, sys, time
from pathlib import Path
import lightning as L
import skelact.engine.trainer as trainer_module
from skelact.cli import main
{callback}
real = trainer_module.build_trainer
trainer_module.build_trainer = lambda cfg, run_dir, *, callbacks=(), **kw: real(
    cfg, run_dir, callbacks=[*callbacks, Hook()], **kw)
sys.exit(main(sys.argv[1:]))
"""


# SIGKILLs its own process when training step KILL_AT_STEP has ended
KILLED_AT_STEP = cli_with_callback("""
class Hook(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == int(os.environ["KILL_AT_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)
""")

# pauses after the first training step (holding its run directory) until the file GO_FILE exists, announcing the
# pause by creating PAUSED_FILE: a second writer then meets a training in progress every time, however slowly
# either process starts
PAUSED_AFTER_FIRST_STEP = cli_with_callback("""
class Hook(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 1:
            Path(os.environ["PAUSED_FILE"]).touch()
            deadline = time.monotonic() + 150
            while not Path(os.environ["GO_FILE"]).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
""")


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The uninterrupted 3-epoch run, without workers: samples are seeded by (seed, epoch, index), so a run with
    workers must match it too."""
    run = tmp_path_factory.mktemp("straight") / "run"
    assert main(["train", str(CONFIG), "epochs=3", *tiny(0), "--run-dir", str(run)]) == 0
    return run


@pytest.mark.parametrize("num_workers", [0, 1])
def test_kill_9_at_a_random_step_then_resume_is_bit_exact(num_workers, straight, capsys, tmp_path):
    # a step after the first checkpoint, mid-epoch or at an epoch's end before its checkpoint; seeded, so a failure
    # names a step that can be rerun
    step = random.Random(2600 + num_workers).randrange(STEPS_PER_EPOCH + 1, 3 * STEPS_PER_EPOCH)
    killed = tmp_path / "killed"

    # output to a file, not a pipe: a data worker keeps a pipe open until it notices its parent is gone
    with open(tmp_path / "killed.err", "w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", KILLED_AT_STEP, "train", str(CONFIG), "epochs=3",
                                    *tiny(num_workers), "--run-dir", str(killed)],
                                   env={**os.environ, "KILL_AT_STEP": str(step)}, stdout=subprocess.DEVNULL,
                                   stderr=stderr)
        process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, (tmp_path / "killed.err").read_text()[-2000:]
    epochs_saved = checkpoint(killed)["epoch"] + 1
    assert epochs_saved == (step - 1) // STEPS_PER_EPOCH  # the last checkpoint before the step
    assert not (killed / "metrics.json").exists()
    # the dead process's lock file names it, but the lock is free at once (a data worker still winding down for up
    # to 5 s does not hold it), so the resume takes it over
    assert json.loads((killed / LOCK_FILE).read_text())["pid"] == process.pid
    with lock_dir(killed, "run directory") as lock:
        assert lock.held
    code, err = cli(capsys, "train", "--resume", killed)
    assert code == 0, err
    assert_same_run(straight, killed)
    rows = (killed / "csv" / "metrics.csv").read_text().splitlines()
    assert rows == (straight / "csv" / "metrics.csv").read_text().splitlines()  # no epoch logged twice


# ------------------------------------------------------------------------------------------- one writer per run


def test_two_trainings_into_one_run_directory(tmp_path):
    run = tmp_path / "run"
    args = ["train", str(CONFIG), "epochs=1", *tiny(), "--run-dir", str(run)]
    paused, go, winner_log = tmp_path / "paused", tmp_path / "go", tmp_path / "winner.err"
    # the first writer's output goes to a file: a pipe nobody reads while it waits could fill and stall it
    with open(winner_log, "w") as stderr:
        winner = subprocess.Popen([sys.executable, "-c", PAUSED_AFTER_FIRST_STEP, *args, "seed=11"],
                                  env={**os.environ, "PAUSED_FILE": str(paused), "GO_FILE": str(go)},
                                  stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 180
        while not paused.exists():  # wait until the first writer is mid-epoch, its run directory held
            assert winner.poll() is None and time.monotonic() < deadline, winner_log.read_text()[-1500:]
            time.sleep(0.05)
        loser = subprocess.run([sys.executable, "-m", "skelact", *args, "seed=12"], capture_output=True, text=True,
                               timeout=180)
    finally:
        go.touch()
        winner.wait(timeout=180)
    assert (winner.returncode, loser.returncode) == (0, 2), (winner_log.read_text()[-1500:], loser.stderr[-1500:])
    assert "Traceback" not in loser.stderr
    line = loser.stderr.strip().splitlines()[-1]
    assert line.startswith(f"skelact: error: {run}: run directory: in use by process {winner.pid} "), line
    # the directory is the winner's alone: its config, one start in the log, one epoch of metrics, its checkpoint
    assert "\nseed: 11\n" in "\n" + (run / "config.yaml").read_text()
    log = (run / "train.log").read_text()
    assert log.count(f"] run {run}") == 1 and log.count("test (last checkpoint") == 1
    rows = (run / "csv" / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["0", "0"]  # one epoch's test row and training row, nobody else's
    assert checkpoint(run)["epoch"] == 0 and checkpoint(run)["global_step"] == STEPS_PER_EPOCH
    assert json.loads((run / "metrics.json").read_text())["epoch"] == 1


def test_commands_started_in_the_same_second_get_different_default_run_directories(tmp_path, monkeypatch):
    """Two evaluations of one pre-training run started together used to pick the same default name (the second then
    failed on the first's lock): each call must now claim its own directory, also from threads racing."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import datetime

    import skelact.engine.runs as runs

    class FrozenClock:
        @staticmethod
        def now():
            return datetime(2026, 12, 7, 18, 18, 30)

    monkeypatch.setattr(runs, "datetime", FrozenClock)
    first, second = runs.new_run_dir("exp", tmp_path), runs.new_run_dir("exp", tmp_path)
    assert (first.name, second.name) == ("exp-20261207-181830", "exp-20261207-181830-2")
    assert first.is_dir() and second.is_dir()
    with ThreadPoolExecutor(8) as pool:
        raced = list(pool.map(lambda _: runs.new_run_dir("exp", tmp_path), range(16)))
    assert len(set(raced)) == 16 and all(p.is_dir() for p in raced)
    assert {p.name for p in raced} == {f"exp-20261207-181830-{k}" for k in range(3, 19)}


def test_test_resume_and_pretrain_are_refused_while_a_run_directory_is_held(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(CONFIG), "epochs=1", *tiny(), "--run-dir", str(run)]) == 0
    capsys.readouterr()
    before = (run / "metrics.json").read_bytes()
    with lock_dir(run, "run directory"):  # what a training in progress holds
        for argv in (["test", run, "--checkpoint", "last"], ["train", "--resume", run, "epochs=2"],
                     ["train", CONFIG, *tiny(), "--run-dir", run]):
            line = one_line_error(*cli(capsys, *argv))
            assert f"{run}: run directory: in use by process {os.getpid()} " in line, line
    assert (run / "metrics.json").read_bytes() == before
    assert checkpoint(run)["epoch"] == 0
    # pre-training takes the same lock before it writes anything
    other = tmp_path / "pretraining"
    with lock_dir(other, "run directory"):
        line = one_line_error(*cli(capsys, "pretrain", REPO / "configs" / "nw_ucla" / "skeletonclr_joint.yaml",
                                   "--run-dir", other))
        assert f"{other}: run directory: in use by process {os.getpid()} " in line, line
    assert [p.name for p in other.iterdir()] == [LOCK_FILE]


def test_a_lock_is_free_at_once_when_its_holder_is_killed_even_if_its_forked_child_lives_on(tmp_path):
    """A forked child (a DataLoader worker, a pool process) shares the holder's lock descriptor; flock stays held
    while any copy is open, so the child must not keep a dead parent's run directory locked."""
    holder = ("import os, signal, sys, time\n"
              "from skelact.locking import lock_dir\n"
              "lock = lock_dir(sys.argv[1], 'run directory').acquire()\n"
              "child = os.fork()\n"
              "if child == 0:\n"
              "    devnull = os.open(os.devnull, os.O_RDWR)\n"  # let the test read the holder's output to its end
              "    os.dup2(devnull, 1), os.dup2(devnull, 2)\n"
              "    time.sleep(60)\n"
              "    os._exit(0)\n"
              "print(child, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    process = subprocess.run([sys.executable, "-c", holder, str(tmp_path)], capture_output=True, text=True,
                             timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr
    child = int(process.stdout.strip())
    try:
        os.kill(child, 0)  # the child is alive
        with lock_dir(tmp_path, "run directory") as lock:
            assert lock.held
    finally:
        os.kill(child, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------------- full disk


class FillingFile:
    """A file of a disk with ``room`` bytes left: the write that does not fit raises ENOSPC, as write(2) does."""

    def __init__(self, handle, room: int):
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if size > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= size
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def fill_disk_for(monkeypatch, name: str, after_writes: int = 0, room: int = 4096) -> None:
    """From the ``after_writes + 1``-th atomic write of a file called ``name`` on, the disk is full after ``room``
    bytes of it (skelact.atomic opens its temporary ``.<name>.XXXXXXXX.tmp`` with os.fdopen)."""
    real_fdopen = os.fdopen
    seen = []

    def fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        if isinstance(fd, int) and os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f".{name}."):
            seen.append(fd)
            if len(seen) > after_writes:
                return FillingFile(handle, room)
        return handle

    monkeypatch.setattr(os, "fdopen", fdopen)


def leftover_temporaries(run: Path) -> list[Path]:
    return [p for p in run.rglob(".*.tmp")]


#: a size as disk_full_error writes it: "640 bytes", "94.5 KB", "1.2 MB", "3.0 GB"
SIZE = r"[\d.]+ (?:bytes|KB|MB|GB)"


def size_in_bytes(text: str) -> float:
    number, unit = text.split()
    return float(number) * {"bytes": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9}[unit]


def test_full_disk_while_writing_a_checkpoint(capsys, tmp_path, monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as mp:
        fill_disk_for(mp, "last.ckpt", after_writes=1)  # epoch 1's checkpoint is written, epoch 2's is not
        line = one_line_error(*cli(capsys, "train", CONFIG, "epochs=3", *tiny(), "--run-dir", run))
    assert re.fullmatch(rf"skelact: error: {re.escape(str(run))}/checkpoints/last\.ckpt: no space left on the device "
                        rf"\({SIZE} free there; about {SIZE} needed\); free some space and run again", line), line
    needed = size_in_bytes(re.search(rf"about ({SIZE}) needed", line).group(1))
    assert needed == pytest.approx((run / "checkpoints" / "last.ckpt").stat().st_size, rel=0.05)
    assert leftover_temporaries(run) == []
    assert checkpoint(run)["epoch"] == 0  # the previous complete checkpoint, readable
    # had the process been killed in the middle of that write instead, its temporary would be there
    killed_write = Path(tempfile.mkstemp(prefix=".last.ckpt.", suffix=".tmp", dir=run / "checkpoints")[1])
    code, err = cli(capsys, "train", "--resume", run)
    assert code == 0, err
    assert not killed_write.exists()
    assert checkpoint(run)["epoch"] == 2 and json.loads((run / "metrics.json").read_text())["epoch"] == 3


def test_full_disk_while_writing_test_outputs_and_leftovers_of_a_killed_write(capsys, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", str(CONFIG), "epochs=1", *tiny(), "--run-dir", str(run)]) == 0
    capsys.readouterr()
    scores = (run / "scores.npy").read_bytes()
    with monkeypatch.context() as mp:
        fill_disk_for(mp, "scores.npy", room=100)
        line = one_line_error(*cli(capsys, "test", run, "--checkpoint", "last"))
    assert line.startswith(f"skelact: error: {run / 'scores.npy'}: no space left on the device ("), line
    assert re.search(rf"about {SIZE} needed", line), line
    assert leftover_temporaries(run) == [] and (run / "scores.npy").read_bytes() == scores

    # what `kill -9` during atomic writes leaves: the next command that holds the run directory removes it
    killed_writes = [Path(tempfile.mkstemp(prefix=".last.ckpt.", suffix=".tmp", dir=run / "checkpoints")[1]),
                     Path(tempfile.mkstemp(prefix=".metrics.json.", suffix=".tmp", dir=run)[1])]
    users_file = run / ".notes.tmp"
    users_file.write_text("not ours")
    code, err = cli(capsys, "test", run, "--checkpoint", "last")
    assert code == 0, err
    assert not any(p.exists() for p in killed_writes) and users_file.exists()
    log = (run / "train.log").read_text()
    assert "removed 2 temporary file(s) left by an interrupted write: " in log
    assert f"checkpoints/{killed_writes[0].name}" in log and killed_writes[1].name in log
    assert (run / "scores.npy").read_bytes() == scores  # the same checkpoint scores the same
