"""Supervised classification: cross-entropy on the model's logits (ST-GCN, CTR-GCN and their multi-stream runs).

A model with a head per pathway (RGBPose-Conv3D) names them in its ``loss_weights``: the loss is the weighted sum of
each head's cross-entropy (pyskl's ``MMRecognizer3D``), not one loss on the fused scores, which the PoseConv3D paper
reports over-fits.

Both reference implementations optimise plain ``nn.CrossEntropyLoss`` on the logits (CTR-GCN ``main.py``, ST-GCN
``processor/recognition.py``). ``label_smoothing`` (Szegedy et al., 2016) is an option, off by default; with it
the target puts ``1 - eps + eps / K`` on the true class and ``eps / K`` on every other one (PyTorch's definition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from skelact.data.batch import model_inputs
from skelact.errors import ConfigError
from skelact.methods.settings import MethodContext


@dataclass
class SupervisedSettings:
    """The settings of ``method.type: supervised``."""

    #: label smoothing epsilon (0: plain cross-entropy)
    label_smoothing: float = 0.0


def check_label_smoothing(settings: Any) -> None:
    if not 0.0 <= float(settings.label_smoothing) < 1.0:
        raise ConfigError(f"must lie in [0, 1), got {settings.label_smoothing}", field="label_smoothing")


class SupervisedMethod(nn.Module):
    """A classifier ``model`` (the batch's named inputs -> logits ``[N, K]``) trained with cross-entropy."""

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.model = model
        self.label_smoothing = float(label_smoothing)

    def forward(self, *args: Any, **inputs: Any) -> torch.Tensor:
        """Logits for a batch's inputs (what evaluation and export use)."""
        return self.model(*args, **inputs)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # float32 loss under mixed precision: log-softmax in half precision loses the small probabilities
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)

    def training_step(self, batch: dict[str, Any]) -> tuple:
        """``(loss, logits)`` for one training batch (plus the loss parts when the model has an auxiliary
        classifier whose ``aux_weight`` is above 0, or a head per pathway with ``loss_weights``)."""
        loss_weights = getattr(self.model, "loss_weights", None)
        if isinstance(loss_weights, dict) and loss_weights:
            # a head per pathway, a loss per head (RGBPose-Conv3D, pyskl's loss_components): each head's
            # cross-entropy on its own logits, weighted; the fused output is only what accuracy is measured on
            fused, pathway_logits = self.model(**model_inputs(batch), return_pathways=True)
            parts = {name: self.loss(pathway_logits[name], batch["label"]) for name in loss_weights}
            total = sum(loss_weights[name] * part for name, part in parts.items())
            return total, fused, {f"ce_{name}": part.detach() for name, part in parts.items()}
        aux_weight = float(getattr(self.model, "aux_weight", 0.0))
        if aux_weight > 0:
            # a model with an auxiliary classifier on its lower layers (FstCN) adds its weighted cross-entropy
            logits, aux_logits = self.model(**model_inputs(batch), return_aux=True)
            main, aux = self.loss(logits, batch["label"]), self.loss(aux_logits, batch["label"])
            return main + aux_weight * aux, logits, {"ce": main.detach(), "aux_ce": aux.detach()}
        logits = self.model(**model_inputs(batch))
        return self.loss(logits, batch["label"]), logits


def build_supervised_method(settings: SupervisedSettings, context: MethodContext) -> SupervisedMethod:
    return SupervisedMethod(context.make_model(), label_smoothing=settings.label_smoothing)
