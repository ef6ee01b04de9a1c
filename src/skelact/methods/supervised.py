"""Supervised classification: cross-entropy on the model's logits (ST-GCN, CTR-GCN and their multi-stream runs).

Both reference implementations optimise plain ``nn.CrossEntropyLoss`` on the logits (CTR-GCN ``main.py``, ST-GCN
``processor/recognition.py``). ``label_smoothing`` (Szegedy et al., 2016) is an option, off by default; with it
the target puts ``1 - eps + eps / K`` on the true class and ``eps / K`` on every other one (PyTorch's definition).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class SupervisedMethod(nn.Module):
    """A classifier ``model`` (batch ``[N, M, T, V, C]`` -> logits ``[N, K]``) trained with cross-entropy."""

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.model = model
        self.label_smoothing = float(label_smoothing)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch (what evaluation and export use)."""
        return self.model(x)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # float32 loss under mixed precision: log-softmax in half precision loses the small probabilities
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)

    def training_step(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, logits)`` for one training batch."""
        logits = self.model(batch["x"])
        return self.loss(logits, batch["label"]), logits
