"""The optimiser (SGD, Adam or AdamW) and the learning-rate schedule of the GCN papers, with the learning rate
scaled to the global batch size.

Optimisers (``optimizer.type``): ``sgd`` is momentum SGD with optional Nesterov momentum, the optimiser of ST-GCN
and CTR-GCN (and of SkeletonCLR / CrosSCLR); ``adam`` is Adam (Kingma and Ba, ICLR 2015) with L2 weight decay
added to the gradient; ``adamw`` is AdamW (Loshchilov and Hutter, ICLR 2019), weight decay decoupled from the
gradient, what masked-autoencoder pre-training (SkeletonMAE) uses. All three decay every parameter alike.

The schedule is a pure function of training progress (:meth:`LRSchedule.lr_at`), set on the optimiser before every
step, like CTR-GCN's ``adjust_learning_rate(epoch)`` in ``main.py``. Having no scheduler state makes resuming
trivially exact: the rate after a resume is the rate an uninterrupted run would use.

CTR-GCN's rule (Uason-Chen/CTR-GCN ``main.py``), with 0-based epoch ``e``::

    e <  warm_up_epoch:  lr = base_lr * (e + 1) / warm_up_epoch
    e >= warm_up_epoch:  lr = base_lr * lr_decay_rate ** (number of steps s with e >= s)

``interval: step`` evaluates the same formulas at the fractional epoch ``e + i / iterations_per_epoch``, the warm-up
as ``base_lr * (i_total + 1) / (warm_up_epoch * iterations_per_epoch)`` (a smooth ramp instead of a staircase).
``cosine`` replaces the step decay after warm-up by ``min_lr + (lr - min_lr) * (1 + cos(pi * progress)) / 2`` over
the remaining epochs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch


def scaled_lr(base_lr: float, reference_batch_size: int, global_batch_size: int, scale: bool = True) -> float:
    """The linear scaling rule (Goyal et al., "Accurate, Large Minibatch SGD", 2017): the rate is proportional to
    the global batch size; ``base_lr`` is the rate for ``reference_batch_size``."""
    if not scale:
        return float(base_lr)
    return float(base_lr) * float(global_batch_size) / float(reference_batch_size)


def lr_scaling_message(base_lr: float, reference_batch_size: int, global_batch_size: int, lr: float,
                       scale: bool = True) -> str:
    """The one line a run logs about its learning rate."""
    if not scale:
        return f"lr {base_lr:g} (not scaled; optimizer.scale_lr is false) for global batch {global_batch_size}"
    return f"lr {base_lr:g} for batch {reference_batch_size} -> {lr:g} for global batch {global_batch_size}"


@dataclass(frozen=True)
class LRSchedule:
    """Learning rate as a function of the (possibly fractional) 0-based epoch."""

    base_lr: float
    epochs: int
    type: str = "step"
    warmup_epochs: int = 0
    milestones: Sequence[int] = field(default_factory=tuple)
    gamma: float = 0.1
    min_lr: float = 0.0

    def lr_at(self, epoch: float, steps_per_epoch: int | None = None) -> float:
        """The rate at 0-based ``epoch``: a whole epoch (one rate per epoch), or ``epoch + i / steps_per_epoch``
        for step ``i`` of the epoch when ``steps_per_epoch`` is given (one rate per step)."""
        if epoch < self.warmup_epochs:
            # CTR-GCN: base_lr * (epoch + 1) / warm_up_epoch, so the first epoch already trains at base / W and the
            # last warm-up epoch at base. Per step: base * (steps done + 1) / (W * steps_per_epoch), the same ramp
            # in finer increments, reaching base at the last warm-up step.
            done = math.floor(epoch) + 1.0 if steps_per_epoch is None else epoch + 1.0 / steps_per_epoch
            return self.base_lr * done / self.warmup_epochs
        if self.type == "step":
            passed = sum(1 for m in self.milestones if epoch >= m)
            return self.base_lr * self.gamma ** passed
        if self.type == "cosine":
            span = max(self.epochs - self.warmup_epochs, 1)
            progress = min(max((epoch - self.warmup_epochs) / span, 0.0), 1.0)
            return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.base_lr


@dataclass(frozen=True)
class OptimizerSettings:
    """What ``optimizer.*`` says about the optimiser itself (the rate comes from the schedule)."""

    type: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def build_optimizer(parameters: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.9,
                    nesterov: bool = True, weight_decay: float = 1e-4,
                    settings: OptimizerSettings | None = None) -> torch.optim.Optimizer:
    """The optimiser of ``settings`` (default: momentum SGD with ``momentum``, ``nesterov`` and ``weight_decay``)
    over all parameters with one weight decay (CTR-GCN and ST-GCN decay biases and batch-norm parameters too)."""
    s = settings or OptimizerSettings(momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if s.type == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=s.momentum, nesterov=s.nesterov,
                               weight_decay=s.weight_decay)
    if s.type in ("adam", "adamw"):
        return OPTIMIZERS[s.type](parameters, lr=lr, betas=tuple(s.betas), eps=s.eps, weight_decay=s.weight_decay)
    raise ValueError(f"unknown optimizer {s.type!r}; known: {', '.join(OPTIMIZERS)}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
