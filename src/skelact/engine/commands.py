"""``skelact train`` and ``skelact test``: the library side of the two commands (the CLI only parses arguments).

:func:`train_command` loads and checks the config, writes the run directory, prepares (or reuses) the dataset
store, trains with Lightning, then tests one checkpoint on the test subset and writes ``metrics.json`` with the
per-sample scores. :func:`test_command` re-evaluates a finished (or interrupted) run.

Multi-process training (``trainer.strategy=ddp``, ``trainer.devices=N``): Lightning starts processes 1..N-1 by
running the same command again with ``LOCAL_RANK`` set. They find the run directory through the
``SKELACT_RUN_DIR`` variable the first process sets before it starts them, so all write into one run. On several
nodes, give every node the same ``run_dir`` on a shared file system.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from skelact.config import LoadedConfig, load_config, to_yaml
from skelact.engine import require_lightning
from skelact.engine.errors import RunError
from skelact.errors import ConfigError

#: how processes started by Lightning's DDP launcher learn the run directory of the process that started them
RUN_DIR_ENV = "SKELACT_RUN_DIR"
CONFIG_FILE = "config.yaml"
LOG_FILE = "train.log"
CHECKPOINT_NAMES = ("best", "last")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train_command`: names the run directory and whether ``--resume`` can continue it (a
    ``checkpoints/last.ckpt`` exists). A ``KeyboardInterrupt``, so callers that only catch that still stop."""

    def __init__(self, run_dir: Path, resumable: bool):
        super().__init__(str(run_dir))
        self.run_dir = Path(run_dir)
        self.resumable = bool(resumable)


def _is_launched_child() -> bool:
    """True in a process Lightning's subprocess launcher started (local rank > 0)."""
    try:
        return int(os.environ.get("LOCAL_RANK", "0")) > 0
    except ValueError:
        return False


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    """``runs/<experiment>-<YYYYmmdd-HHMMSS>`` under the current directory (a numeric suffix if taken)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{experiment}-{stamp}"
    candidate, k = base, 1
    while candidate.exists():
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def _checked_run_dir(run_dir: str | PathLike) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError("run directory not found", path)
    if not (path / CONFIG_FILE).is_file():
        raise RunError(f"not a skelact run directory (no {CONFIG_FILE})", path)
    return path


def _checkpoint_path(run_dir: Path, which: str) -> Path:
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


# ----------------------------------------------------------------------------------------------------------------
# train


def train_command(config_path: str | PathLike | None, overrides: Sequence[str] = (),
                  run_dir: str | PathLike | None = None, resume: str | PathLike | None = None, *,
                  callbacks: Sequence[Any] = ()) -> Path:
    """Train the experiment ``config_path`` with ``key=value`` ``overrides``; returns the run directory.

    ``run_dir``: where to write (default ``runs/<experiment>-<timestamp>`` under the current directory).
    ``resume``: a run directory to continue from its ``checkpoints/last.ckpt`` with its saved ``config.yaml``
    (``config_path`` must then be None; ``overrides`` still apply, e.g. ``epochs=`` to extend a run). The
    continuation is exact: the same weights and metrics as a run that was never interrupted (on the same
    hardware). ``callbacks``: extra Lightning callbacks (for tools and tests). Ctrl-C raises
    :class:`TrainingInterrupted` naming the run directory once it is known.

    After training, the checkpoint named by ``evaluate.checkpoint`` is tested and ``metrics.json`` plus the
    per-sample scores are written (see :func:`test_command`). In multi-process runs only the first process tests.
    """
    require_lightning()
    from skelact.engine.trainer import CHECKPOINT_DIR, trim_csv_log

    child = _is_launched_child()
    resume_ckpt: Path | None = None
    done = 0  # epochs the resumed checkpoint has completed
    if resume is not None:
        if config_path is not None:
            raise ConfigError("give either a config file or a run to resume, not both (a resumed run uses its "
                              "own config.yaml; change it with key=value overrides)", field="--resume")
        resumed = _checked_run_dir(resume)
        resume_ckpt = _checkpoint_path(resumed, "last")
        if run_dir is not None and Path(run_dir).resolve() != resumed.resolve():
            raise ConfigError("a resumed run continues in its own directory; leave out the run directory",
                              str(run_dir), "run_dir")
        loaded = load_config(resumed / CONFIG_FILE, overrides)
        done = _epochs_done(resume_ckpt)
        if loaded.cfg.epochs < done:
            raise loaded.error(f"is {loaded.cfg.epochs} but the run's last checkpoint has already completed {done} "
                               "epochs; resume with epochs >= that", "epochs")
        out = resumed
    else:
        if config_path is None:
            raise ConfigError("no config file given", field="CONFIG")
        loaded = load_config(config_path, overrides)
        if child and os.environ.get(RUN_DIR_ENV):
            out = Path(os.environ[RUN_DIR_ENV])
        elif run_dir is not None:
            out = Path(run_dir)
            if (out / CHECKPOINT_DIR).is_dir() and any((out / CHECKPOINT_DIR).glob("*.ckpt")) and not child:
                raise RunError("already holds a run with checkpoints; resume it or choose another directory",
                               out)
        else:
            out = new_run_dir(str(loaded.cfg.experiment))
    cfg = loaded.cfg
    _check_compatible(loaded)
    out = out.resolve()
    if not child:
        out.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(out / CONFIG_FILE, to_yaml(cfg))
    log = RunLog(out, enabled=not child)
    if resume_ckpt is not None:
        extra = f" with overrides {' '.join(overrides)}" if overrides else ""
        log(f"resuming {out} from {resume_ckpt}{extra}")
        if not child:
            trim_csv_log(out, done)
    else:
        log(f"run {out}")

    try:
        return _fit_and_test(loaded, out, resume_ckpt, callbacks, child, log)
    except KeyboardInterrupt:
        raise TrainingInterrupted(out, resumable=(out / CHECKPOINT_DIR / "last.ckpt").is_file()) from None


def _fit_and_test(loaded: LoadedConfig, out: Path, resume_ckpt: Path | None, callbacks: Sequence[Any], child: bool,
                  log: "RunLog") -> Path:
    import lightning as L

    from skelact.engine.build import build_dataset, build_method, build_model, open_dataset_store
    from skelact.engine.datamodule import SkeletonDataModule
    from skelact.engine.module import SkeletonLitModule
    from skelact.engine.optim import LRSchedule, lr_scaling_message, scaled_lr
    from skelact.engine.threads import use_threads
    from skelact.engine.trainer import CHECKPOINT_DIR, build_trainer

    cfg = loaded.cfg
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    store = open_dataset_store(loaded, progress=cfg.trainer.progress_bar and not child, log=log)
    train_set = build_dataset(loaded, store, "train")
    test_set = build_dataset(loaded, store, "test")
    model = build_model(loaded, store)
    method = build_method(loaded, model)
    trainer = build_trainer(cfg, out, callbacks=callbacks)

    world = int(trainer.num_devices) * int(trainer.num_nodes)
    global_batch = cfg.data.batch_size * world
    o = cfg.optimizer
    lr = scaled_lr(o.lr, o.reference_batch_size, global_batch, o.scale_lr)
    batches = len(train_set) // global_batch if cfg.data.drop_last else -(-len(train_set) // global_batch)
    if batches < 1:
        raise loaded.error(f"the training subset has {len(train_set)} samples, fewer than one global batch of "
                           f"{global_batch} ({world} process(es) x data.batch_size); lower data.batch_size or set "
                           "data.drop_last=false", "data.batch_size")
    log(f"data {store.path}: train {len(train_set)} ({cfg.data.split}/{cfg.data.train_subset}), test "
        f"{len(test_set)} ({cfg.data.split}/{cfg.data.test_subset}), layout {store.layout.name}, "
        f"modality {cfg.data.modality}")
    log(f"model {type(model).__name__}: {sum(p.numel() for p in model.parameters()):,} parameters; "
        f"{world} process(es), precision {cfg.trainer.precision}, {cfg.epochs} epochs of {batches} steps")
    log(lr_scaling_message(o.lr, o.reference_batch_size, global_batch, lr, o.scale_lr))

    s = cfg.schedule
    schedule = LRSchedule(base_lr=lr, epochs=cfg.epochs, type=s.type, warmup_epochs=s.warmup_epochs,
                          milestones=tuple(s.milestones), gamma=s.gamma, min_lr=s.min_lr)
    module = SkeletonLitModule(method, schedule, num_classes=store.num_classes, interval=s.interval,
                               momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay,
                               checkpoint_dir=out / CHECKPOINT_DIR)
    data = SkeletonDataModule(train_set, test_set, batch_size=cfg.data.batch_size,
                              test_batch_size=cfg.data.test_batch_size, num_workers=cfg.data.num_workers,
                              seed=cfg.seed, drop_last=cfg.data.drop_last, num_frames=cfg.data.num_frames)

    previous = os.environ.get(RUN_DIR_ENV)
    if not child:
        os.environ[RUN_DIR_ENV] = str(out)
    # Lightning ignores SIGINT for good after a Ctrl-C; a library call must leave the caller's handler in place
    sigint = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    with use_threads(cfg.trainer.threads, int(trainer.num_devices), log):
        started = time.perf_counter()
        try:
            trainer.fit(module, datamodule=data, ckpt_path=None if resume_ckpt is None else str(resume_ckpt))
        except SystemExit:
            # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1)
            if trainer.interrupted:
                if (out / CHECKPOINT_DIR / "last.ckpt").is_file():
                    log(f"interrupted; continue with: skelact train --resume {out}")
                else:
                    log(f"interrupted during epoch {trainer.current_epoch + 1}, before any checkpoint was written")
                raise KeyboardInterrupt from None
            raise
        finally:
            if sigint is not None:
                signal.signal(signal.SIGINT, sigint)
            if not child:
                if previous is None:
                    os.environ.pop(RUN_DIR_ENV, None)
                else:
                    os.environ[RUN_DIR_ENV] = previous
        if not trainer.is_global_zero:
            return out
        log(f"training reached epoch {trainer.current_epoch} of {cfg.epochs} ({time.perf_counter() - started:.1f} "
            "s in this process)")
        _evaluate(loaded, out, cfg.evaluate.checkpoint, store=store, test_set=test_set, model=model, log=log)
    return out


def _epochs_done(checkpoint_path: Path) -> int:
    """Epochs a checkpoint written at the end of an epoch has completed."""
    import torch

    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        return int(checkpoint["epoch"]) + 1
    except Exception as e:  # noqa: BLE001
        raise RunError(f"unreadable checkpoint ({type(e).__name__})", checkpoint_path) from None


def _check_compatible(loaded: LoadedConfig) -> None:
    cfg = loaded.cfg
    if cfg.evaluate.checkpoint == "best" and cfg.trainer.check_val_every_n_epoch == 0:
        raise loaded.error("'best' needs validation during training; set trainer.check_val_every_n_epoch >= 1 or "
                           "evaluate.checkpoint=last", "evaluate.checkpoint")


# ----------------------------------------------------------------------------------------------------------------
# test


def test_command(run_dir: str | PathLike, checkpoint: str = "best") -> dict[str, Any]:
    """Re-evaluate the ``best`` or ``last`` checkpoint of a run on its test subset.

    Writes into the run directory ``metrics.json`` (``top1``, ``top5``, ``mean_class_acc`` in percent, ``epoch``
    = epochs trained when the checkpoint was written, ``num_test_samples``, ``checkpoint``), the per-sample scores
    (``scores.npy`` logits, ``labels.npy``, ``names.json``, for ensembles) and the evaluation report (per-class
    accuracy, confusion matrix). Returns the metrics dict.
    """
    from skelact.engine.threads import use_threads

    require_lightning()
    run = _checked_run_dir(run_dir).resolve()
    _checkpoint_path(run, checkpoint)
    loaded = load_config(run / CONFIG_FILE)
    log = RunLog(run)
    with use_threads(loaded.cfg.trainer.threads, 1, log):
        return _evaluate(loaded, run, checkpoint, log=log)


def _evaluate(loaded: LoadedConfig, run: Path, which: str, *, store: Any = None, test_set: Any = None,
              model: Any = None, log: Any = print) -> dict[str, Any]:
    import torch

    from skelact.engine.build import build_dataset, build_method, build_model, open_dataset_store
    from skelact.engine.datamodule import SkeletonDataModule
    from skelact.engine.module import SkeletonLitModule
    from skelact.engine.optim import LRSchedule
    from skelact.engine.trainer import build_eval_trainer
    from skelact.evaluation.report import write_report
    from skelact.evaluation.run_scores import save_run_scores

    cfg = loaded.cfg
    ckpt_path = _checkpoint_path(run, which)
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        state = checkpoint["state_dict"]
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one user-facing line
        raise RunError(f"unreadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})",
                       ckpt_path) from None
    if store is None:
        store = open_dataset_store(loaded, progress=cfg.trainer.progress_bar, log=log)
    if test_set is None:
        test_set = build_dataset(loaded, store, "test")
    if model is None:
        model = build_model(loaded, store)
    module = SkeletonLitModule(build_method(loaded, model), LRSchedule(base_lr=cfg.optimizer.lr, epochs=cfg.epochs),
                               num_classes=store.num_classes)
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise RunError(f"the checkpoint does not fit the model of {run / CONFIG_FILE} "
                       f"({str(e).splitlines()[0]})", ckpt_path) from None
    data = SkeletonDataModule(None, test_set, batch_size=cfg.data.batch_size,
                              test_batch_size=cfg.data.test_batch_size, num_workers=cfg.data.num_workers,
                              seed=cfg.seed, num_frames=cfg.data.num_frames)
    outputs = build_eval_trainer(cfg).predict(module, datamodule=data)
    logits = torch.cat([o["logits"] for o in outputs]).cpu().numpy().astype(np.float32)
    index = torch.cat([o["index"] for o in outputs]).cpu().numpy()
    scores = np.empty_like(logits)
    scores[index] = logits
    labels = test_set.labels
    names = test_set.names
    save_run_scores(run, scores, labels, names)
    epoch = int(checkpoint.get("epoch", -1)) + 1
    extra = {
        "epoch": epoch,
        "checkpoint": which,
        "checkpoint_path": str(ckpt_path),
        "global_step": int(checkpoint.get("global_step", 0)),
        "experiment": cfg.experiment,
        "split": cfg.data.split,
        "subset": cfg.data.test_subset,
        "modality": cfg.data.modality,
    }
    metrics = write_report(run, scores, labels, store.class_names, names, extra=extra)
    log(f"test ({which} checkpoint, epoch {epoch}, {len(labels)} samples): top1 {metrics['top1']:.2f} %, "
        f"top5 {metrics['top5']:.2f} %, mean class {metrics['mean_class_acc']:.2f} %; wrote {run / 'metrics.json'}")
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m skelact.engine.commands train CONFIG [key=value ...]`` / ``test RUN [best|last]`` (a stand-in
    until the ``skelact`` CLI exposes these commands; also what multi-process children re-run)."""
    from skelact.errors import SkelactError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) >= 2 and args[0] == "train":
            if args[1] == "--resume":
                train_command(None, args[3:], resume=args[2])
            else:
                train_command(args[1], args[2:])
        elif len(args) >= 2 and args[0] == "test":
            test_command(args[1], args[2] if len(args) > 2 else "best")
        else:
            print("usage: python -m skelact.engine.commands train CONFIG [key=value ...] | "
                  "train --resume RUN [key=value ...] | test RUN [best|last]", file=sys.stderr)
            return 2
    except SkelactError as e:
        print(f"skelact: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
