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

import time
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from skelact.config import LoadedConfig, load_config
from skelact.engine import require_lightning
from skelact.engine.errors import RunError
from skelact.engine.runs import (CONFIG_FILE, RunLog, TrainingInterrupted, _checked_run_dir, _checkpoint_path,
                                 _epochs_done, _fit, _is_launched_child, _lit_module, _resume_checkpoint,
                                 _run_directory, _schedule_and_lr, _start, disk_full_as_error,
                                 evaluation_output_size, hold_run_dir)
from skelact.errors import ConfigError

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
    from skelact.engine.trainer import CHECKPOINT_DIR

    child = _is_launched_child()
    resume_ckpt: Path | None = None
    if resume is not None:
        if config_path is not None:
            raise ConfigError("give either a config file or a run to resume, not both (a resumed run uses its "
                              "own config.yaml; change it with key=value overrides)", field="--resume")
        out, resume_ckpt = _resume_checkpoint(resume, run_dir)
        loaded = load_config(out / CONFIG_FILE, overrides)
        done = _epochs_done(resume_ckpt)
        if loaded.cfg.epochs < done:
            raise loaded.error(f"is {loaded.cfg.epochs} but the run's last checkpoint has already completed {done} "
                               "epochs; resume with epochs >= that", "epochs")
    else:
        if config_path is None:
            raise ConfigError("no config file given", field="CONFIG")
        loaded = load_config(config_path, overrides)
        out = _run_directory(str(loaded.cfg.experiment), run_dir, child)
    _check_compatible(loaded)
    out = out.resolve()
    with hold_run_dir(out, child):
        log = _start(loaded, out, child, resume_ckpt, overrides)
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
    schedule, batches, _ = _schedule_and_lr(loaded, len(train_set), world, log)
    log(f"model {type(model).__name__}: {sum(p.numel() for p in model.parameters()):,} parameters; "
        f"{world} process(es), precision {cfg.trainer.precision}, {cfg.epochs} epochs of {batches} steps")
    module = _lit_module(loaded, method, schedule, store.num_classes, out)
    data = SkeletonDataModule(train_set, test_set, batch_size=cfg.data.batch_size,
                              test_batch_size=cfg.data.test_batch_size, num_workers=cfg.data.num_workers,
                              seed=cfg.seed, drop_last=cfg.data.drop_last, num_frames=cfg.data.num_frames)

    with use_threads(cfg.trainer.threads, int(trainer.num_devices), log):
        started = time.perf_counter()
        _fit(trainer, module, data, out, resume_ckpt, child, log, f"skelact train --resume {out}")
        if not trainer.is_global_zero:
            return out
        log(f"training reached epoch {trainer.current_epoch} of {cfg.epochs} ({time.perf_counter() - started:.1f} "
            "s in this process)")
        _evaluate(loaded, out, cfg.evaluate.checkpoint, store=store, test_set=test_set, model=model, log=log)
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
    with hold_run_dir(run, False), use_threads(loaded.cfg.trainer.threads, 1, log):
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
    with disk_full_as_error(run, evaluation_output_size(scores, labels, names)):
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
