"""``skelact pretrain CONFIG [key=value ...]``: self-supervised pre-training (SkeletonCLR, CrosSCLR).

:func:`pretrain_command` trains the method of ``method.type`` (:mod:`skelact.methods.skeletonclr`,
:mod:`skelact.methods.crossclr`) on the engine of ``skelact train``: the same Lightning trainer
(:func:`~skelact.engine.trainer.build_trainer`: checkpoints, CSV/TensorBoard logs, devices, precision), the same
:class:`~skelact.engine.module.SkeletonLitModule` (the optimiser, the per-epoch learning-rate schedule, NaN guard,
RNG state in checkpoints) and the same run directory. Every sample is drawn twice (query and key augmentation) in
every view (:class:`~skelact.data.multiview.MultiViewDataset`). There is no labelled validation in pre-training
(``trainer.check_val_every_n_epoch`` must be 0); ``checkpoints/last.ckpt`` holds the query and key encoders, the
projectors and the queues, so ``--resume`` continues exactly where the run stopped. Judge the encoder with
``skelact evaluate`` (:mod:`skelact.commands.evaluate`).
"""

from __future__ import annotations

import argparse
import time
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

from skelact.commands.arguments import split_config_and_overrides
from skelact.commands.protocol_config import check_protocol_recipes
from skelact.config import LoadedConfig, load_config
from skelact.engine import require_lightning
from skelact.engine.precision import resolve_precision
from skelact.engine.multiview_run import method_epoch_callback, method_views, multiview_data_module, plain_pipeline
from skelact.engine.runs import (CONFIG_FILE, fit_run, hold_run_dir, is_launched_child, lit_module, resume_checkpoint,
                                 run_directory, schedule_and_lr, start_run)
from skelact.engine.threads import use_threads
from skelact.errors import ConfigError

NAME = "pretrain"
HELP = "self-supervised pre-training (SkeletonCLR, CrosSCLR, SkeletonMAE)"
DESCRIPTION = ("Pre-train an encoder with the method of CONFIG (key=value overrides as for train); judge it "
               "afterwards with skelact evaluate.")
OVERRIDES_FIELD = "items"
#: the share of one epoch's keys suggested as queue size when the configured one is too large: the reference's
#: NTU-60 ratio, 32768 negatives for 40,091 (x-sub) / 37,646 (x-view) training samples
SUGGESTED_QUEUE_SHARE = 0.8


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("items", nargs="*", metavar="CONFIG [key=value ...]")
    p.add_argument("--run-dir", default=None, metavar="DIR")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue RUN from its last checkpoint")


def run(args: argparse.Namespace) -> int:
    config, overrides = split_config_and_overrides(args.items, args.resume)
    run = pretrain_command(config, overrides, run_dir=args.run_dir, resume=args.resume)
    if not is_launched_child():
        print(f"run               {run}")
        print(f"next              skelact evaluate linear|knn|finetune|semi {run}")
    return 0



def pretrain_command(config_path: str | PathLike | None, overrides: Sequence[str] = (),
                     run_dir: str | PathLike | None = None, resume: str | PathLike | None = None, *,
                     callbacks: Sequence[Any] = ()) -> Path:
    """Pre-train the experiment ``config_path`` (``method.type: skeletonclr`` or ``crossclr``) with ``key=value``
    ``overrides``; returns the run directory.

    ``run_dir`` and ``resume`` as in :func:`~skelact.commands.train.train_command`: a resumed run continues from
    its ``checkpoints/last.ckpt`` (weights, key encoders, queues, optimizer, epoch) with its own ``config.yaml``.
    The queue size is checked against the keys one epoch enqueues (``method.skeletonclr.queue_size``).
    """
    require_lightning()
    import lightning as L

    from skelact.engine.build import build_method, method_spec, open_dataset_store, subset_indices
    from skelact.engine.trainer import build_trainer
    from skelact.methods.registry import SELF_SUPERVISED

    child = is_launched_child()
    resume_ckpt = None
    if resume is not None:
        if config_path is not None:
            raise ConfigError("give either a config file or a run to resume, not both (a resumed run uses its "
                              "own config.yaml; change it with key=value overrides)", field="--resume")
        out, resume_ckpt = resume_checkpoint(resume, run_dir)
        loaded = load_config(out / CONFIG_FILE, overrides)
    else:
        if config_path is None:
            raise ConfigError("no config file given", field="CONFIG")
        loaded = load_config(config_path, overrides)
        out = run_directory(str(loaded.cfg.experiment), run_dir, child).resolve()
    cfg = loaded.cfg
    spec = method_spec(loaded, SELF_SUPERVISED)
    if cfg.trainer.check_val_every_n_epoch != 0:
        raise loaded.error("pre-training has no labelled validation: set it to 0 and judge the encoder with "
                           "`skelact evaluate` afterwards", "trainer.check_val_every_n_epoch")
    views = method_views(loaded)
    check_protocol_recipes(loaded)
    with hold_run_dir(out, child):
        log = start_run(loaded, out, child, resume_ckpt, overrides)

        from skelact.data.multiview import MultiViewDataset

        L.seed_everything(cfg.seed, workers=True, verbose=False)
        store = open_dataset_store(loaded, progress=cfg.trainer.progress_bar and not child, log=log)
        train_set = MultiViewDataset(store, subset_indices(loaded, store, "train"), plain_pipeline(loaded, "train"), views,
                                     draws=spec.draws, num_persons=cfg.data.num_persons, seed=cfg.seed)
        method = build_method(loaded, store=store, kind=SELF_SUPERVISED)

        trainer = build_trainer(cfg, out, callbacks=[method_epoch_callback(log), *callbacks])
        world = int(trainer.num_devices) * int(trainer.num_nodes)
        schedule, batches, global_batch = schedule_and_lr(loaded, len(train_set), world, log)
        queue = getattr(next(iter(method.views.values())), "queue", None)  # contrastive methods only
        if queue is not None:
            check_queue_size(loaded, queue.size, batches, global_batch)
        encoder = next(iter(method.views.values())).encoder
        log(f"data {store.path}: train {len(train_set)} ({cfg.data.split}/{cfg.data.train_subset}) x {spec.draws} "
            f"augmentations, "
            f"views {', '.join(views)}, layout {store.layout.name}")
        log(f"{cfg.method.type}: {len(views)} encoder(s) {type(encoder).__name__} of "
            f"{sum(p.numel() for p in encoder.parameters()):,} parameters"
            f"{f', queue {queue.size}' if queue is not None else ''}; {world} process(es), "
            f"precision {resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)}, "
            f"{cfg.epochs} epochs of {batches} steps")
        module = lit_module(loaded, method, schedule, store.num_classes, out)
        data = multiview_data_module(loaded, train_set, None)
        with use_threads(loaded.cfg.trainer.threads, int(trainer.num_devices), log):
            started = time.perf_counter()
            fit_run(trainer, module, data, out, resume_ckpt, child, log,
                 resume_hint=f"skelact pretrain --resume {out}")
        if trainer.is_global_zero:
            log(f"pre-training reached epoch {trainer.current_epoch} of {cfg.epochs} "
                f"({time.perf_counter() - started:.1f} s in this process); judge it with: skelact evaluate "
                f"linear|knn|finetune|semi {out}")
        return out


def check_queue_size(loaded: LoadedConfig, queue_size: int, batches: int, global_batch: int) -> None:
    """The queue must not hold more keys than one epoch enqueues: beyond that it keeps several keys of the same
    samples, so every query meets stale copies of its own key among its negatives (false negatives by
    construction), and on a small dataset the random initial rows would linger for epochs."""
    per_epoch = batches * global_batch
    if queue_size > per_epoch:
        share = max(global_batch, int(SUGGESTED_QUEUE_SHARE * per_epoch) // global_batch * global_batch)
        raise loaded.error(
            f"{queue_size} exceeds the {per_epoch} keys one epoch enqueues ({batches} steps x global batch "
            f"{global_batch}); a larger queue repeats samples among the negatives. Choose at most {per_epoch}, e.g. "
            f"{share} (about {SUGGESTED_QUEUE_SHARE:.0%} of an epoch, the reference's NTU-60 ratio)",
            "method.skeletonclr.queue_size")

