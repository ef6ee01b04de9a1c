"""The LightningModule that runs a method: optimiser, per-epoch learning rate, metrics, NaN guard, RNG state.

What it adds to Lightning's loop:

* the learning rate of :class:`~skelact.engine.optim.LRSchedule` is set before every training step from the epoch
  (and the step within it when ``interval='step'``), so a resumed run uses exactly the rates of an uninterrupted one;
* a NaN or infinite loss stops training with :class:`~skelact.errors.TrainingDiverged`, naming the epoch and
  step, before the optimiser touches the weights; the checkpoints written so far are kept (in multi-process runs
  every process learns of it, so none is left waiting in a collective);
* test-subset metrics each validation epoch: ``val/top1``, ``val/top5``, ``val/mean_class_acc`` (percent) and
  ``val/loss``, summed over processes before they are computed;
* torch, numpy and Python RNG states travel in the checkpoint, so stochastic layers (dropout) continue where they
  were; data augmentation does not depend on them (see :mod:`skelact.data.dataset`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from skelact.errors import TrainingDiverged
from skelact.data.batch import clip_averaged_scores
from skelact.engine.optim import LRSchedule, OptimizerSettings, build_optimizer, set_lr


class SkeletonLitModule(L.LightningModule):
    """Runs ``method`` (an ``nn.Module`` with ``forward(**inputs) -> logits``, the batch's named inputs as keyword
    arguments, and ``training_step(batch) -> (loss, logits)`` or ``(loss, logits, {name: scalar to log})``;
    ``logits`` may be None for a method without class logits, e.g. contrastive pre-training) with the optimiser of
    ``optimizer`` (default: momentum SGD with ``momentum``, ``nesterov``, ``weight_decay``) under ``schedule``."""

    def __init__(self, method: torch.nn.Module, schedule: LRSchedule, *, num_classes: int,
                 interval: str = "epoch", momentum: float = 0.9, nesterov: bool = True,
                 weight_decay: float = 1e-4, checkpoint_dir: str | Path | None = None,
                 optimizer: OptimizerSettings | None = None):
        super().__init__()
        self.method = method
        self.schedule = schedule
        self.num_classes = int(num_classes)
        self.interval = interval
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.optimizer_settings = optimizer
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self._epoch_lr = schedule.lr_at(0)
        self._reset_eval_sums()

    # -- optimisation ---------------------------------------------------------------------------------------------

    def configure_optimizers(self):
        return build_optimizer(self.method.parameters(), lr=self.schedule.lr_at(0), momentum=self.momentum,
                               nesterov=self.nesterov, weight_decay=self.weight_decay,
                               settings=self.optimizer_settings)

    def forward(self, *args: Any, **inputs: Any) -> torch.Tensor:
        return self.method(*args, **inputs)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.interval == "step":
            steps = max(int(self.trainer.num_training_batches), 1)
            lr = self.schedule.lr_at(self.current_epoch + batch_idx / steps, steps_per_epoch=steps)
        else:
            lr = self.schedule.lr_at(self.current_epoch)
        for optimizer in self.trainer.optimizers:
            set_lr(optimizer, lr)
        if batch_idx == 0:
            self._epoch_lr = lr

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        # a method may return a third item, {name: scalar}, of loss parts to log as train/<name> (FR-Head's CE and CL)
        loss, logits, *parts = self.method.training_step(batch)
        diverged = not bool(torch.isfinite(loss.detach()).item())
        if self.trainer.world_size > 1:
            diverged = self.trainer.strategy.reduce_boolean_decision(diverged, all=False)
        if diverged:
            raise TrainingDiverged(self._divergence_message(loss, batch_idx), field="loss")
        n = batch["label"].shape[0]
        self.log("train/loss", loss.detach(), on_step=False, on_epoch=True, sync_dist=True, batch_size=n)
        if logits is not None:  # self-supervised pre-training has no class logits (skelact.methods.skeletonclr)
            correct = (logits.detach().argmax(dim=1) == batch["label"]).float().mean() * 100.0
            self.log("train/top1", correct, on_step=False, on_epoch=True, sync_dist=True, batch_size=n,
                     prog_bar=True)
        for name, value in (parts[0] if parts else {}).items():
            self.log(f"train/{name}", value.detach(), on_step=False, on_epoch=True, sync_dist=True, batch_size=n)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log("lr", self._epoch_lr, on_step=False, on_epoch=True, rank_zero_only=True)

    def _divergence_message(self, loss: torch.Tensor, batch_idx: int) -> str:
        value = float(loss.detach().float().item())
        what = "NaN" if np.isnan(value) else ("infinite" if np.isinf(value) else "NaN or infinite on another process")
        epoch = self.current_epoch + 1
        where = (f"loss is {what} at epoch {epoch}, step {batch_idx + 1} of "
                 f"{self.trainer.num_training_batches} (global step {self.global_step + 1}); training stopped")
        last = self.checkpoint_dir / "last.ckpt" if self.checkpoint_dir is not None else None
        if last is not None and last.is_file():
            kept = f"the last good checkpoint {last} (end of epoch {epoch - 1}) is kept"
        else:
            kept = "no checkpoint had been written yet"
        return (f"{where}; {kept}. Lower optimizer.lr (now {self._epoch_lr:g} in this epoch) or check the data, "
                "then resume or start again")

    # -- evaluation -----------------------------------------------------------------------------------------------

    def _reset_eval_sums(self) -> None:
        self._eval_loss = 0.0
        self._eval_count = 0
        self._eval_top5 = 0
        self._confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def on_validation_epoch_start(self) -> None:
        self._reset_eval_sums()
        self._confusion = self._confusion.to(self.device)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = clip_averaged_scores(self.method, batch).float()
        labels = batch["label"]
        loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
        k = min(5, self.num_classes)
        top5 = (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum()
        flat = labels * self.num_classes + logits.argmax(dim=1)
        self._confusion += torch.bincount(flat, minlength=self.num_classes ** 2).view(self.num_classes, -1)
        self._eval_loss += float(loss)
        self._eval_top5 += int(top5)
        self._eval_count += int(labels.shape[0])

    def on_validation_epoch_end(self) -> None:
        sums = torch.tensor([self._eval_loss, self._eval_top5, self._eval_count], dtype=torch.float64,
                            device=self.device)
        confusion = self._confusion
        if self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
            confusion = self.trainer.strategy.reduce(confusion, reduce_op="sum")
        count = float(sums[2])
        if count == 0:
            return
        confusion = confusion.double()
        support = confusion.sum(dim=1)
        present = support > 0
        per_class = torch.diag(confusion)[present] / support[present]
        metrics = {
            "val/loss": float(sums[0]) / count,
            "val/top1": 100.0 * float(torch.diag(confusion).sum()) / count,
            "val/top5": 100.0 * float(sums[1]) / count,
            "val/mean_class_acc": 100.0 * float(per_class.mean()),
        }
        # already reduced over processes above, hence no sync_dist
        top1 = metrics.pop("val/top1")
        self.log("val/top1", top1, on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(metrics, on_step=False, on_epoch=True)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return {"logits": clip_averaged_scores(self.method, batch).float(), "index": batch["index"]}

    # -- checkpoint extras ----------------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        np_state = np.random.get_state()
        checkpoint["skelact_rng"] = {
            "torch": torch.get_rng_state(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                      int(np_state[3]), float(np_state[4])],
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("skelact_rng")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
