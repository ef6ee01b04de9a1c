"""One training run's life, shared by ``skelact train``, ``skelact pretrain`` and the training protocols of
``skelact evaluate``: its directory (new, given, or resumed), the resolved config and log written there, the
learning rate scaled to the global batch, the Lightning module, and ``trainer.fit`` with Ctrl-C turned into a
resumable stop.

Multi-process runs: Lightning starts processes 1..N-1 by running the same command again with ``LOCAL_RANK`` set;
they find the run directory through ``SKELACT_RUN_DIR``, which the first process sets before it starts them.

One writer per run directory (:func:`hold_run_dir`): the first process of a command that writes a run (``train``,
``pretrain``, ``evaluate``, ``test``, and their ``--resume``) holds the directory's lock until it ends; a second one
fails at once naming the holder. Under the lock, temporaries a killed writer left there are removed.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any, Iterator, Sequence

from skelact.atomic import remove_leftover_temporaries, write_text_atomic
from skelact.config import LoadedConfig, to_yaml
from skelact.errors import RunError
from skelact.errors import ConfigError, disk_full_error, is_disk_full
from skelact.locking import LOCK_FILE, lock_dir

#: how processes started by Lightning's DDP launcher learn the run directory of the process that started them
RUN_DIR_ENV = "SKELACT_RUN_DIR"
CONFIG_FILE = "config.yaml"
LOG_FILE = "train.log"
CHECKPOINT_NAMES = ("best", "last")
#: the checkpoint ``test``, ``export``, ``predict`` and ``plot-features`` use unless asked: the last epoch's, the
#: only one chosen without looking at the test set (issue 27, item 10)
DEFAULT_CHECKPOINT = "last"
#: said wherever a figure comes from the ``best`` checkpoint: it is the epoch with the best *test* accuracy, so the
#: figure is selected on the test set (the paper protocol of some references), not a held-out estimate
TEST_SELECTED_NOTE = "best = the epoch with the best test accuracy: selected on the test set, an optimistic figure"


def checkpoint_note(which: str) -> str:
    """``"; "`` + :data:`TEST_SELECTED_NOTE` for the ``best`` checkpoint, ``""`` for ``last``."""
    return f"; {TEST_SELECTED_NOTE}" if which == "best" else ""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train_command`: names the run directory and whether ``--resume`` can continue it (a
    ``checkpoints/last.ckpt`` exists). A ``KeyboardInterrupt``, so callers that only catch that still stop."""

    def __init__(self, run_dir: Path, resumable: bool):
        super().__init__(str(run_dir))
        self.run_dir = Path(run_dir)
        self.resumable = bool(resumable)


def is_launched_child() -> bool:
    """True in a process Lightning's subprocess launcher started (local rank > 0)."""
    try:
        return int(os.environ.get("LOCAL_RANK", "0")) > 0
    except ValueError:
        return False


def write_run_text(path: Path, text: str) -> None:
    write_text_atomic(path, text, fsync=True)


class RunLog:
    """Prints a line and appends it to the run's ``train.log`` (only in the first process)."""

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.path = run_dir / LOG_FILE
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        print(message, flush=True)
        stamp = datetime.now().isoformat(timespec="seconds")
        with open(self.path, "a", encoding="utf-8") as f:
            for line in str(message).splitlines():
                f.write(f"[{stamp}] {line}\n")


def new_run_dir(experiment: str, parent: str | PathLike = "runs") -> Path:
    """``runs/<experiment>-<YYYYmmdd-HHMMSS>`` under the current directory (a numeric suffix if taken), created here.

    Created, not only named: two commands started in the same second (two protocols on one pre-training run, say)
    would otherwise both pick the free name, and the second would then find it locked by the first. ``mkdir``
    without ``exist_ok`` is atomic, so exactly one process claims each name."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{experiment}-{stamp}"
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, k = base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            k += 1
            candidate = base.with_name(f"{base.name}-{k}")


def checked_run_dir(run_dir: str | PathLike) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError("run directory not found", path)
    if not (path / CONFIG_FILE).is_file():
        raise RunError(f"not a skelact run directory (no {CONFIG_FILE})", path)
    return path


def run_checkpoint_path(run_dir: Path, which: str) -> Path:
    from skelact.engine.trainer import CHECKPOINT_DIR

    if which not in CHECKPOINT_NAMES:
        raise ConfigError(f"expected 'best' or 'last', got {which!r}", field="checkpoint")
    path = run_dir / CHECKPOINT_DIR / f"{which}.ckpt"
    if not path.is_file():
        present = sorted(p.stem for p in (run_dir / CHECKPOINT_DIR).glob("*.ckpt")) if (
            run_dir / CHECKPOINT_DIR).is_dir() else []
        hint = (f"it has: {', '.join(present)}" if present
                else "the run has no checkpoints (did its first epoch finish?)")
        raise RunError(f"no {which} checkpoint; {hint}", path)
    return path


def checkpoint_epochs_done(checkpoint_path: Path) -> int:
    """Epochs a checkpoint written at the end of an epoch has completed."""
    import torch

    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        return int(checkpoint["epoch"]) + 1
    except Exception as e:  # noqa: BLE001
        raise RunError(f"unreadable checkpoint ({type(e).__name__})", checkpoint_path) from None


def run_directory(experiment: str, run_dir: str | PathLike | None, child: bool) -> Path:
    from skelact.engine.trainer import CHECKPOINT_DIR

    if child and os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    if run_dir is not None:
        out = Path(run_dir)
        if (out / CHECKPOINT_DIR).is_dir() and any((out / CHECKPOINT_DIR).glob("*.ckpt")) and not child:
            with lock_dir(out, "run directory"):  # a run still being written: name its writer instead
                pass
            raise RunError("already holds a run with checkpoints; resume it or choose another directory", out)
        return out
    return new_run_dir(experiment)


@contextmanager
def hold_run_dir(out: Path, child: bool) -> Iterator[None]:
    """Hold the writer lock of run directory ``out`` (raises :class:`~skelact.locking.LockedError` naming the
    holder), then remove the temporaries of interrupted atomic writes in it and its own subfolders (safe: nobody
    else writes there now). Processes started by Lightning's DDP launcher run under their first process's lock."""
    if child:
        yield
        return
    with lock_dir(out, "run directory"):
        folders = [out, *(p for p in sorted(out.iterdir()) if p.is_dir() and not (p / LOCK_FILE).exists())]
        removed = [path for folder in folders for path in remove_leftover_temporaries(folder)]
        if removed:
            RunLog(out)(f"removed {len(removed)} temporary file(s) left by an interrupted write: "
                        f"{', '.join(str(p.relative_to(out)) for p in removed)}")
        yield


@contextmanager
def disk_full_as_error(place: Path, needed_bytes: int | None = None) -> Iterator[None]:
    """A full disk inside the block becomes one :class:`~skelact.errors.DiskFullError` naming the file (or
    ``place``) and ``needed_bytes``."""
    try:
        yield
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise disk_full_error(error.filename or place, needed_bytes) from None


def evaluation_output_size(scores: Any, labels: Any, names: Sequence[str]) -> int:
    """About the bytes a test writes into a run (score and label arrays, names, and at most 1 MB of report: tables,
    confusion matrix and its plot), for the message of a full disk."""
    import numpy as np

    return int(np.asarray(scores).nbytes + np.asarray(labels).nbytes + sum(len(n) + 4 for n in names) + 1_000_000)


def start_run(loaded: LoadedConfig, out: Path, child: bool, resume_ckpt: Path | None, overrides: Sequence[str],
           extra_files: dict[str, str] | None = None) -> RunLog:
    """Write the run's config (first process only) and log how the run starts."""
    from skelact.engine.trainer import trim_csv_log

    if not child:
        out.mkdir(parents=True, exist_ok=True)
        write_run_text(out / CONFIG_FILE, to_yaml(loaded.cfg))
        for name, text in (extra_files or {}).items():
            write_run_text(out / name, text)
    log = RunLog(out, enabled=not child)
    if resume_ckpt is not None:
        extra = f" with overrides {' '.join(overrides)}" if overrides else ""
        log(f"resuming {out} from {resume_ckpt}{extra}")
        if not child:
            trim_csv_log(out, checkpoint_epochs_done(resume_ckpt))
    else:
        log(f"run {out}")
    return log


def resume_checkpoint(resume: str | PathLike, run_dir: str | PathLike | None) -> tuple[Path, Path]:
    resumed = checked_run_dir(resume).resolve()
    ckpt = run_checkpoint_path(resumed, "last")
    if run_dir is not None and Path(run_dir).resolve() != resumed:
        raise ConfigError("a resumed run continues in its own directory; leave out the run directory",
                          str(run_dir), "run_dir")
    return resumed, ckpt


def schedule_and_lr(loaded: LoadedConfig, train_size: int, world: int, log: RunLog):
    """``(LRSchedule, batches per epoch, global batch)`` with the learning rate scaled to the global batch."""
    from skelact.engine.optim import LRSchedule, lr_scaling_message, scaled_lr

    cfg = loaded.cfg
    global_batch = cfg.data.batch_size * world
    o = cfg.optimizer
    lr = scaled_lr(o.lr, o.reference_batch_size, global_batch, o.scale_lr)
    batches = train_size // global_batch if cfg.data.drop_last else -(-train_size // global_batch)
    if batches < 1:
        raise loaded.error(f"the training subset has {train_size} samples, fewer than one global batch of "
                           f"{global_batch} ({world} process(es) x data.batch_size); lower data.batch_size or set "
                           "data.drop_last=false", "data.batch_size")
    log(lr_scaling_message(o.lr, o.reference_batch_size, global_batch, lr, o.scale_lr))
    s = cfg.schedule
    schedule = LRSchedule(base_lr=lr, epochs=cfg.epochs, type=s.type, warmup_epochs=s.warmup_epochs,
                          milestones=tuple(s.milestones), gamma=s.gamma, min_lr=s.min_lr)
    return schedule, batches, global_batch


def lit_module(loaded: LoadedConfig, method: Any, schedule: Any, num_classes: int, out: Path | None):
    from skelact.engine.module import SkeletonLitModule
    from skelact.engine.optim import OptimizerSettings
    from skelact.engine.trainer import CHECKPOINT_DIR

    cfg = loaded.cfg
    o = cfg.optimizer
    settings = OptimizerSettings(type=o.type, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay,
                                 betas=tuple(o.betas), eps=o.eps)
    return SkeletonLitModule(method, schedule, num_classes=num_classes, interval=cfg.schedule.interval,
                             momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay,
                             checkpoint_dir=None if out is None else out / CHECKPOINT_DIR, optimizer=settings)


@contextmanager
def _run_environment(out: Path, child: bool) -> Iterator[None]:
    """Tell data-parallel children the run directory, and give the caller back its Ctrl-C handler (Lightning
    ignores SIGINT for good after one)."""
    previous = os.environ.get(RUN_DIR_ENV)
    if not child:
        os.environ[RUN_DIR_ENV] = str(out)
    sigint = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    try:
        yield
    finally:
        if sigint is not None:
            signal.signal(signal.SIGINT, sigint)
        if not child:
            if previous is None:
                os.environ.pop(RUN_DIR_ENV, None)
            else:
                os.environ[RUN_DIR_ENV] = previous


def fit_run(trainer: Any, module: Any, data: Any, out: Path, resume_ckpt: Path | None, child: bool, log: RunLog,
         resume_hint: str) -> None:
    from skelact.engine.trainer import CHECKPOINT_DIR

    with _run_environment(out, child), disk_full_as_error(out):
        try:
            trainer.fit(module, datamodule=data, ckpt_path=None if resume_ckpt is None else str(resume_ckpt))
        except SystemExit:
            # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1)
            if trainer.interrupted:
                if (out / CHECKPOINT_DIR / "last.ckpt").is_file():
                    log(f"interrupted; continue with: {resume_hint}")
                else:
                    log(f"interrupted during epoch {trainer.current_epoch + 1}, before any checkpoint was written")
                raise KeyboardInterrupt from None
            raise
