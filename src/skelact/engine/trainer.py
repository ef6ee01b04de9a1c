"""The Lightning ``Trainer`` of a run: checkpoints, logs, progress, precision, devices and strategy from the config.

Run directory layout (written here and by :mod:`skelact.commands.train`)::

    config.yaml               the resolved config
    train.log                 the run's own log lines (store, learning-rate scaling, devices, final metrics)
    checkpoints/last.ckpt     after every epoch (what --resume continues from)
    checkpoints/best.ckpt     the epoch with the best test top-1 so far (when validation runs)
    tensorboard/              TensorBoard event files
    csv/metrics.csv           per-epoch metrics (train/loss, train/top1, lr, val/*)
    metrics.json, scores.npy, labels.npy, names.json, per_class.*, confusion.*   the final test

Checkpoints are written atomically by :class:`AtomicCheckpointIO`: Lightning's default writer goes through an
fsspec transaction that, for local files, stages the bytes in the system temp directory and moves them over,
which is a copy (not a rename) when the temp directory is on another file system, and is never fsynced. Ours
writes beside the target, fsyncs and renames, so a crash leaves the previous checkpoint or the new one.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from skelact.atomic import write_atomic, write_text_atomic
from skelact.errors import disk_full_error, is_disk_full
from skelact.engine.precision import resolve_precision

CHECKPOINT_DIR = "checkpoints"
LAST = "last"
BEST = "best"
MONITOR = "val/top1"
CSV_DIR = "csv"

# Lightning's advice for production data pipelines, irrelevant or wrong for small skeleton datasets and tests
for _pattern in (r".*does not have many workers.*", r".*smaller than the logging interval.*",
                 r".*Checkpoint directory .* exists and is not empty.*",
                 r".*Experiment logs directory .* exists and is not empty.*",
                 r".*It is recommended to use .*sync_dist=True.*",
                 r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*",
                 # the summary's size estimate under bf16-mixed autocast (the fast CPU recipe): parameters stay float32
                 r".*Precision bf16-mixed is not supported by the model summary.*"):
    warnings.filterwarnings("ignore", message=_pattern)




class _DropAdverts(logging.Filter):
    """Lightning logs a product advert ("Tip: ... litlogger") with every Trainer; keep the run log about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropAdverts())


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file beside the target, fsync, then ``os.replace`` (atomic on POSIX).

    A full disk is a :class:`~skelact.errors.DiskFullError` naming the checkpoint and its size; the temporary is
    gone and the previous checkpoint of that name is untouched, so ``--resume`` continues from it."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        target = Path(path)
        writers: list[_ErrorKeepingWriter] = []

        def save(handle: Any) -> None:
            writers.append(_ErrorKeepingWriter(handle))
            torch.save(checkpoint, writers[-1])

        try:
            write_atomic(target, save)
        except Exception as error:
            cause = writers[-1].error if writers and writers[-1].error is not None else error
            if not is_disk_full(cause):
                raise
            raise disk_full_error(target, _serialized_size(checkpoint)) from None
        _fsync_directory(target.parent)


class _ErrorKeepingWriter:
    """Passes writes on to a file and keeps the ``OSError`` one raised: ``torch.save`` replaces it with a
    ``RuntimeError`` ("unexpected pos ...") that no longer says the disk was full."""

    def __init__(self, handle: Any):
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.handle.flush()


class _ByteCounter:
    """A write-only sink that counts bytes: the size ``torch.save`` needs, without holding a copy."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.size += n
        return n

    def flush(self) -> None:
        pass


def _serialized_size(checkpoint: dict[str, Any]) -> int | None:
    counter = _ByteCounter()
    try:
        torch.save(checkpoint, counter)
    except Exception:  # noqa: BLE001 - the size only improves the message
        return None
    return counter.size


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def checkpoint_callbacks(run_dir: Path, validate: bool) -> list[ModelCheckpoint]:
    """``best.ckpt`` on the best test top-1 (strictly better replaces, as CTR-GCN's ``accuracy > best_acc``), then
    ``last.ckpt`` after every epoch.

    The order matters for resuming: both save at the end of the epoch, and a checkpoint holds the callbacks' state
    as it is when written, so ``last.ckpt`` must be written after the best-model tracker has seen the epoch.
    """
    directory = run_dir / CHECKPOINT_DIR
    callbacks = []
    if validate:
        callbacks.append(ModelCheckpoint(dirpath=directory, filename=BEST, monitor=MONITOR, mode="max",
                                         save_top_k=1, auto_insert_metric_name=False,
                                         enable_version_counter=False))
    callbacks.append(ModelCheckpoint(dirpath=directory, filename=LAST, monitor=None, save_top_k=1,
                                     every_n_epochs=1, save_on_train_epoch_end=True, enable_version_counter=False))
    return callbacks


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing metrics.csv when it starts; a resumed run appends to it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(header)


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` whose metrics.csv survives a resume (see :func:`trim_csv_log`)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def csv_log_path(run_dir: Path) -> Path:
    return run_dir / CSV_DIR / ExperimentWriter.NAME_METRICS_FILE


def trim_csv_log(run_dir: Path, epochs_done: int) -> None:
    """Drop the rows of epochs at or after ``epochs_done`` (logged after the checkpoint a run resumes from), so the
    resumed run's rows follow without duplicates."""
    path = csv_log_path(run_dir)
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = [r for r in reader if r.get("epoch", "") == "" or int(float(r["epoch"])) < epochs_done]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def build_trainer(cfg: Any, run_dir: Path, *, callbacks: Sequence[Any] = (), loggers: bool = True) -> L.Trainer:
    """A Trainer for ``cfg`` (an :class:`~skelact.config.ExperimentConfig`) writing into ``run_dir``."""
    t = cfg.trainer
    validate = t.check_val_every_n_epoch > 0
    logger: Any = False
    if loggers:
        logger = [ResumableCSVLogger(save_dir=str(run_dir), name=CSV_DIR, version="")]
        try:
            logger.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="",
                                            default_hp_metric=False))
        except ModuleNotFoundError:  # tensorboard is part of the train extra, but CSV logs suffice
            pass
    devices = list(t.devices) if not isinstance(t.devices, (int, str)) else t.devices
    if t.float32_matmul_precision is not None:
        torch.set_float32_matmul_precision(t.float32_matmul_precision)
    all_callbacks = [*checkpoint_callbacks(run_dir, validate), *callbacks]
    if t.progress_bar:
        all_callbacks.append(TQDMProgressBar(refresh_rate=t.progress_bar_refresh))
    return L.Trainer(
        accelerator=t.accelerator,
        devices=devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=resolve_precision(t.precision, t.accelerator),
        max_epochs=cfg.epochs,
        check_val_every_n_epoch=max(t.check_val_every_n_epoch, 1),
        limit_val_batches=None if validate else 0,
        num_sanity_val_steps=2 if validate else 0,
        log_every_n_steps=t.log_every_n_steps,
        gradient_clip_val=t.gradient_clip_val,
        deterministic=t.deterministic,
        benchmark=t.cudnn_benchmark,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=True,
        logger=logger,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
        # the EpochSampler splits data over processes itself, seeded per (seed, epoch)
        use_distributed_sampler=False,
        default_root_dir=str(run_dir),
    )


def build_eval_trainer(cfg: Any) -> L.Trainer:
    """A single-device Trainer for prediction (the final test never runs split over processes, so every test
    sample is scored exactly once).

    Lightning's "GPU available / TPU available" banner is kept out of the log here: a protocol run builds several
    of these (embeddings, scores) besides its training Trainer, which prints the banner once."""
    t = cfg.trainer
    banner = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = banner.level
    banner.setLevel(logging.WARNING)
    try:
        return L.Trainer(accelerator=t.accelerator, devices=1, num_nodes=1, strategy="auto",
                         precision=resolve_precision(t.precision, t.accelerator), logger=False, enable_checkpointing=False,
                         enable_progress_bar=t.progress_bar, enable_model_summary=False,
                         use_distributed_sampler=False)
    finally:
        banner.setLevel(level)
