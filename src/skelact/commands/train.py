"""``skelact train CONFIG [key=value ...]``: train an experiment config (or resume a run), then test it.

:func:`train_command` loads and checks the config, writes the run directory, prepares (or reuses) the dataset
store, trains with Lightning, then tests one checkpoint on the test subset and writes ``metrics.json`` with the
per-sample scores (:func:`skelact.commands.test.test_checkpoint`).

Multi-process training (``trainer.strategy=ddp``, ``trainer.devices=N``): Lightning starts processes 1..N-1 by
running the same command again with ``LOCAL_RANK`` set. They find the run directory through the
``SKELACT_RUN_DIR`` variable the first process sets before it starts them, so all write into one run. On several
nodes, give every node the same ``run_dir`` on a shared file system.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

from skelact.commands.arguments import split_config_and_overrides
from skelact.commands.report_lines import checkpoint_line, metrics_line, print_outputs
from skelact.commands.test import test_checkpoint
from skelact.config import LoadedConfig, load_config
from skelact.engine import require_lightning
from skelact.engine.precision import resolve_precision
from skelact.engine.runs import (CONFIG_FILE, RunLog, TrainingInterrupted, checkpoint_epochs_done, fit_run,
                                 hold_run_dir, is_launched_child, lit_module, resume_checkpoint, run_directory,
                                 schedule_and_lr, start_run)
from skelact.errors import ConfigError

NAME = "train"
HELP = "train an experiment config (or resume a run)"
DESCRIPTION = ("Train the experiment CONFIG with key=value overrides (e.g. epochs=1 optimizer.lr=0.05), test it, and "
               "write a run directory (runs/<experiment>-<time> under the current directory unless --run-dir is "
               "given).")
EXIT_INTERRUPTED = 130
#: key=value items given after options are collected into this argument
OVERRIDES_FIELD = "items"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("items", nargs="*", metavar="CONFIG [key=value ...]",
                   help="the config YAML, then overrides; with --resume only overrides (e.g. epochs=80)")
    p.add_argument("--run-dir", default=None, metavar="DIR", help="where to write the run")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue RUN from its last checkpoint")
    p.add_argument("--store", default=None, metavar="STORE",
                   help="train on this prepared store (skelact prepare) with CONFIG's model, pipelines and schedule: "
                        "the same as data.store=STORE; give data.split=NAME when the store's split is not CONFIG's")


def run(args: argparse.Namespace) -> int:
    from skelact.evaluation.report import METRICS_FILE

    config, overrides = split_config_and_overrides(args.items, args.resume)
    if args.store is not None:
        if args.resume is not None:
            raise ConfigError("a resumed run keeps its own store; --store is for a new run", field="--store")
        # first, so that the user's own key=value items still come after it
        overrides = [f"data.store={Path(args.store).expanduser().resolve()}", *overrides]
    try:
        out = train_command(config, overrides, run_dir=args.run_dir, resume=args.resume)
    except TrainingInterrupted as e:
        if e.resumable:
            print(f"skelact: interrupted; the run can be resumed with: skelact train --resume {e.run_dir}",
                  file=sys.stderr)
        else:
            print(f"skelact: interrupted before the first checkpoint of {e.run_dir} was written; nothing to resume, "
                  "start the run again", file=sys.stderr)
        return EXIT_INTERRUPTED
    if is_launched_child():  # a data-parallel worker Lightning started: the first process reports
        return 0
    metrics = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
    print(f"run               {out}")
    print(f"accuracy          {metrics_line(metrics)}   {checkpoint_line(metrics)}")
    print_outputs(out)
    return 0


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
    from skelact.engine.trainer import CHECKPOINT_DIR

    child = is_launched_child()
    resume_ckpt: Path | None = None
    if resume is not None:
        if config_path is not None:
            raise ConfigError("give either a config file or a run to resume, not both (a resumed run uses its "
                              "own config.yaml; change it with key=value overrides)", field="--resume")
        out, resume_ckpt = resume_checkpoint(resume, run_dir)
        loaded = load_config(out / CONFIG_FILE, overrides)
        done = checkpoint_epochs_done(resume_ckpt)
        if loaded.cfg.epochs < done:
            raise loaded.error(f"is {loaded.cfg.epochs} but the run's last checkpoint has already completed {done} "
                               "epochs; resume with epochs >= that", "epochs")
    else:
        if config_path is None:
            raise ConfigError("no config file given", field="CONFIG")
        loaded = load_config(config_path, overrides)
        out = run_directory(str(loaded.cfg.experiment), run_dir, child)
    _check_compatible(loaded)
    out = out.resolve()
    with hold_run_dir(out, child):
        log = start_run(loaded, out, child, resume_ckpt, overrides)
        try:
            return _fit_and_test(loaded, out, resume_ckpt, callbacks, child, log)
        except KeyboardInterrupt:
            raise TrainingInterrupted(out, resumable=(out / CHECKPOINT_DIR / "last.ckpt").is_file()) from None


def _fit_and_test(loaded: LoadedConfig, out: Path, resume_ckpt: Path | None, callbacks: Sequence[Any], child: bool,
                  log: "RunLog") -> Path:
    import lightning as L

    from skelact.engine.build import build_dataset, build_method, build_model, open_dataset_store
    from skelact.engine.datamodule import SkeletonDataModule
    from skelact.engine.initialise import init_from_run
    from skelact.engine.threads import use_threads
    from skelact.engine.trainer import build_trainer

    cfg = loaded.cfg
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    store = open_dataset_store(loaded, progress=cfg.trainer.progress_bar and not child, log=log)
    train_set = build_dataset(loaded, store, "train")
    test_set = build_dataset(loaded, store, "test")
    model = build_model(loaded, store)
    method = build_method(loaded, model)
    if resume_ckpt is None:  # a resumed run's checkpoint holds every weight already
        init_from_run(loaded, method, log)
    trainer = build_trainer(cfg, out, callbacks=callbacks)

    world = int(trainer.num_devices) * int(trainer.num_nodes)
    log(f"data {store.path}: train {len(train_set)} ({cfg.data.split}/{cfg.data.train_subset}), test "
        f"{len(test_set)} ({cfg.data.split}/{cfg.data.test_subset}), "
        f"{'layout ' + store.layout.name if store.has_keypoints else 'videos only'}, "
        f"modality {cfg.data.modality}")
    schedule, batches, _ = schedule_and_lr(loaded, len(train_set), world, log)
    log(f"model {type(model).__name__}: {sum(p.numel() for p in model.parameters()):,} parameters; "
        f"{world} process(es), precision {resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)}, {cfg.epochs} epochs of {batches} steps")
    module = lit_module(loaded, method, schedule, store.num_classes, out)
    data = SkeletonDataModule(train_set, test_set, batch_size=cfg.data.batch_size,
                              test_batch_size=cfg.data.test_batch_size, num_workers=cfg.data.num_workers,
                              seed=cfg.seed, drop_last=cfg.data.drop_last, num_frames=cfg.data.num_frames)

    with use_threads(cfg.trainer.threads, int(trainer.num_devices), log):
        started = time.perf_counter()
        fit_run(trainer, module, data, out, resume_ckpt, child, log, f"skelact train --resume {out}")
        if not trainer.is_global_zero:
            return out
        log(f"training reached epoch {trainer.current_epoch} of {cfg.epochs} ({time.perf_counter() - started:.1f} "
            "s in this process)")
        test_checkpoint(loaded, out, cfg.evaluate.checkpoint, store=store, test_set=test_set, model=model, log=log)
    return out


def _check_compatible(loaded: LoadedConfig) -> None:
    cfg = loaded.cfg
    if cfg.evaluate.checkpoint == "best" and cfg.trainer.check_val_every_n_epoch == 0:
        raise loaded.error("'best' needs validation during training; set trainer.check_val_every_n_epoch >= 1 or "
                           "evaluate.checkpoint=last", "evaluate.checkpoint")
    every = cfg.trainer.check_val_every_n_epoch
    if cfg.evaluate.checkpoint == "best" and 0 < cfg.epochs < every:
        raise loaded.error(f"'best' needs a test during training, but {cfg.epochs} epoch(s) end before the first "
                           f"one (trainer.check_val_every_n_epoch is {every}); train at least {every} epochs, set "
                           "trainer.check_val_every_n_epoch lower or evaluate.checkpoint=last", "evaluate.checkpoint")

