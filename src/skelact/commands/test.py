"""``skelact test RUN``: re-evaluate a run's best or last checkpoint on its test subset.

:func:`test_checkpoint` is also the test at the end of ``skelact train``: it writes ``metrics.json``, the per-sample
scores and the evaluation report into the run.
"""

from __future__ import annotations

import argparse
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.commands.report_lines import checkpoint_line, metrics_line, print_outputs
from skelact.config import LoadedConfig, load_config
from skelact.engine import require_lightning
from skelact.engine.runs import (CHECKPOINT_NAMES, CONFIG_FILE, DEFAULT_CHECKPOINT, TEST_SELECTED_NOTE, RunLog,
                                 checkpoint_note, checked_run_dir, disk_full_as_error, evaluation_output_size,
                                 hold_run_dir, run_checkpoint_path)
from skelact.errors import RunError

NAME = "test"
HELP = "re-evaluate a run's best or last checkpoint"
DESCRIPTION = ("Test a run's checkpoint on its test subset; writes metrics.json, per-sample scores, per-class "
               "accuracy and the confusion matrix into the run.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN")
    p.add_argument("--checkpoint", choices=CHECKPOINT_NAMES, default=DEFAULT_CHECKPOINT,
                   help=f"default: {DEFAULT_CHECKPOINT} ({TEST_SELECTED_NOTE})")


def run(args: argparse.Namespace) -> int:
    metrics = test_command(args.run, args.checkpoint)
    print(f"accuracy          {metrics_line(metrics)}   {checkpoint_line(metrics)}")
    print_outputs(args.run)
    return 0



def test_command(run_dir: str | PathLike, checkpoint: str = DEFAULT_CHECKPOINT) -> dict[str, Any]:
    """Re-evaluate the ``best`` or ``last`` checkpoint of a run on its test subset.

    Writes into the run directory ``metrics.json`` (``top1``, ``top5``, ``mean_class_acc`` in percent, ``epoch``
    = epochs trained when the checkpoint was written, ``num_test_samples``, ``checkpoint``), the per-sample scores
    (``scores.npy`` logits, ``labels.npy``, ``names.json``, for ensembles) and the evaluation report (per-class
    accuracy, confusion matrix). Returns the metrics dict.
    """
    from skelact.engine.threads import use_threads

    require_lightning()
    run = checked_run_dir(run_dir).resolve()
    run_checkpoint_path(run, checkpoint)
    loaded = load_config(run / CONFIG_FILE)
    log = RunLog(run)
    with hold_run_dir(run, False), use_threads(loaded.cfg.trainer.threads, 1, log):
        return test_checkpoint(loaded, run, checkpoint, log=log)


def test_checkpoint(loaded: LoadedConfig, run: Path, which: str, *, store: Any = None, test_set: Any = None,
                    model: Any = None, log: Any = print) -> dict[str, Any]:
    """Test the ``which`` checkpoint of ``run`` and write its results there (see :func:`test_command`); ``store``,
    ``test_set`` and ``model`` are reused when the caller (``train``) has them already."""
    import torch

    from skelact.engine.build import build_dataset, build_method, build_model, open_dataset_store
    from skelact.engine.datamodule import SkeletonDataModule
    from skelact.engine.module import SkeletonLitModule
    from skelact.engine.optim import LRSchedule
    from skelact.engine.trainer import build_eval_trainer
    from skelact.evaluation.report import write_report
    from skelact.evaluation.run_scores import save_run_scores

    cfg = loaded.cfg
    ckpt_path = run_checkpoint_path(run, which)
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
            "selected_on_test_set": which == "best",
            "checkpoint_path": str(ckpt_path),
            "global_step": int(checkpoint.get("global_step", 0)),
            "experiment": cfg.experiment,
            "split": cfg.data.split,
            "subset": cfg.data.test_subset,
            "modality": cfg.data.modality,
        }
        metrics = write_report(run, scores, labels, store.class_names, names, extra=extra)
    log(f"test ({which} checkpoint, epoch {epoch}, {len(labels)} samples): top1 {metrics['top1']:.2f} %, "
        f"top5 {metrics['top5']:.2f} %, mean class {metrics['mean_class_acc']:.2f} %{checkpoint_note(which)}; "
        f"wrote {run / 'metrics.json'}")
    return metrics

