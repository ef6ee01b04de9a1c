"""SkeletonCLR: momentum contrast (MoCo v2) for skeleton sequences (Li et al., CVPR 2021, Sec. 3.2).

One *view* (a modality: joint, motion, bone) is learnt by instance discrimination:

* a query encoder ``f_q`` (the backbone's pooled embedding, :meth:`extract_features`; the paper's ST-GCN at a
  quarter width with a 256-wide last block) followed by a projector to ``feature_dim = 128`` (``mlp: true``:
  ``Linear(D, D) - ReLU - Linear(D, 128)``, MoCo v2's head; else one linear layer);
* a key encoder ``f_k`` (encoder + projector) of the same shape, never trained by gradients but moved towards the
  query encoder after each step, ``theta_k <- m * theta_k + (1 - m) * theta_q`` with ``m = 0.999``
  (:func:`momentum_update_`); it starts as an exact copy of the query encoder;
* a FIFO queue of the last ``queue_size`` keys (:class:`~skelact.methods.queue.MemoryQueue`), the negatives;
* the InfoNCE loss (Eq. 1 of the paper) of the L2-normalised query ``z`` against its key ``z_hat`` (the other
  augmentation of the same sample) and the queue ``M``, temperature ``tau = 0.07``::

      L = -log( exp(z . z_hat / tau) / (exp(z . z_hat / tau) + sum_i exp(z . m_i / tau)) )

One step (as MoCo's Algorithm 1 and the reference ``net/skeletonclr.py``): queries, momentum update, keys (no
gradient), logits against the queue as it was before this batch, loss, then the batch's keys are enqueued.

Differences from the reference (LinguoLi/CrosSCLR), all on purpose:

* the reference re-initialises every layer (``model.apply(weights_init)`` in ``processor/pretrain.py``) *after*
  copying the query encoder into the key encoder, so its two encoders start different; ours start equal, as MoCo
  intends (the backbone keeps skelact's initialisation, the reference's ``weights_init``; the projector is drawn
  the same way, N(0, 0.02) weights and zero biases);
* the backbone's classifier ``fc`` takes no part in pre-training (it is frozen, so data-parallel training has no
  unused trainable parameters); the reference turns it into the projector's last layer. The protocols replace it.
* queue updates work under multi-process data parallelism (:mod:`skelact.methods.queue`).

The batch holds two augmented draws, ``batch["query"][view]`` and ``batch["key"][view]``
(:class:`~skelact.data.multiview.MultiViewDataset` with ``draws=2``), so the same class serves one view
(:class:`SkeletonCLRMethod`) or several (CrosSCLR's single-view phase, :mod:`skelact.methods.crossclr`).

Config (``method.type: skeletonclr``, the view is ``data.modality``; settings under ``method.skeletonclr``, see
:class:`ContrastiveSettings`)::

    method:
      type: skeletonclr
      skeletonclr: {feature_dim: 128, queue_size: 800, momentum: 0.999, temperature: 0.07, mlp: true}
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from skelact.errors import ConfigError
from skelact.methods.queue import MemoryQueue
from skelact.methods.settings import MethodContext, settings_from_dict  # noqa: F401 - settings_from_dict: re-export

#: the prefix of view ``v``'s query encoder in a pre-training method's state dict (``SkeletonLitModule`` adds
#: ``method.``); what the evaluation protocols load
ENCODER_PREFIX = "views.{view}.encoder."
#: offset added to the run's seed for the projectors' and queues' generator
HEAD_SEED_OFFSET = 4099


@dataclass
class ContrastiveSettings:
    """``method.skeletonclr`` keys (defaults: the paper's, LinguoLi/CrosSCLR ``config/CrosSCLR/*.yaml``)."""

    #: width of the contrastive embedding (``feature_dim``)
    feature_dim: int = 128
    #: negatives kept in the queue (NTU: 32768); must not exceed the keys one epoch produces (checked at the start)
    queue_size: int = 32768
    #: momentum m of the key encoder
    momentum: float = 0.999
    #: InfoNCE temperature tau
    temperature: float = 0.07
    #: MoCo v2's two-layer projector (true) or a single linear layer (false)
    mlp: bool = True


def check_contrastive_settings(s: ContrastiveSettings, section: str, source: str | None = None) -> None:
    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(message, source, f"{section}.{key}")

    need(s.feature_dim >= 1, "feature_dim", f"must be at least 1, got {s.feature_dim}")
    need(s.queue_size >= 1, "queue_size", f"must be at least 1, got {s.queue_size}")
    need(0.0 <= s.momentum < 1.0, "momentum", f"must lie in [0, 1), got {s.momentum}")
    need(s.temperature > 0.0, "temperature", f"must be positive, got {s.temperature}")


@dataclass
class SkeletonCLRSettings:
    """The settings of ``method.type: skeletonclr``: its ``method.skeletonclr`` section."""

    skeletonclr: ContrastiveSettings = field(default_factory=ContrastiveSettings)


def check_skeletonclr_settings(settings: Any) -> None:
    """Values the dataclass types cannot check (``method.skeletonclr``)."""
    check_contrastive_settings(settings.skeletonclr, "skeletonclr")


# ----------------------------------------------------------------------------------------------------------------
# the pieces, as functions (what the tests check by hand)


def info_nce_logits(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """``[N, 1 + K]`` logits: column 0 is ``q_n . k_n``, columns 1.. are ``q_n . m_i``, all divided by ``tau``.

    ``query`` and ``key`` ``[N, D]`` and ``negatives`` ``[K, D]`` are expected L2-normalised (cosine similarity).
    """
    positive = (query * key).sum(dim=1, keepdim=True)
    negative = query @ negatives.t()
    return torch.cat([positive, negative], dim=1) / temperature


def info_nce_loss(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor,
                  temperature: float) -> torch.Tensor:
    """Mean InfoNCE loss (the paper's Eq. 1): cross-entropy of :func:`info_nce_logits` with target column 0."""
    logits = info_nce_logits(query, key, negatives, temperature)
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.int64, device=logits.device))


@torch.no_grad()
def momentum_update_(key_parameters: Iterable[torch.Tensor], query_parameters: Iterable[torch.Tensor],
                     momentum: float) -> None:
    """``k <- m * k + (1 - m) * q`` in place for each pair of parameters (MoCo's Eq. 2)."""
    keys, queries = list(key_parameters), list(query_parameters)
    if len(keys) != len(queries):
        raise ValueError(f"{len(keys)} key parameters for {len(queries)} query parameters")
    for k, q in zip(keys, queries):
        k.mul_(momentum).add_(q.detach(), alpha=1.0 - momentum)


def build_projector(in_features: int, feature_dim: int, mlp: bool = True,
                    generator: torch.Generator | None = None) -> nn.Module:
    """MoCo v2's projector ``Linear(D, D) - ReLU - Linear(D, feature_dim)`` (``mlp``) or ``Linear(D, feature_dim)``,
    initialised as the reference's ``weights_init``: N(0, 0.02) weights, zero biases."""
    layers: list[nn.Module] = []
    if mlp:
        layers += [nn.Linear(in_features, in_features), nn.ReLU()]
    layers.append(nn.Linear(in_features, feature_dim))
    projector = nn.Sequential(*layers)
    reset_linear_(projector, generator)
    return projector


def reset_linear_(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """N(0, 0.02) weights and zero biases for every ``nn.Linear`` in ``module`` (the reference's initialisation)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.02, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()


def encoder_width(encoder: nn.Module) -> int:
    """Width of ``encoder.extract_features`` (the backbone's ``out_channels``)."""
    width = getattr(encoder, "out_channels", None)
    if isinstance(width, int) and width > 0:
        return width
    raise ConfigError(f"{type(encoder).__name__} does not say its embedding width (out_channels)", field="model")


# ----------------------------------------------------------------------------------------------------------------
# one view


class SkeletonCLR(nn.Module):
    """One view's query encoder + projector, momentum key encoder + projector, and queue.

    ``encoder``: a backbone with ``extract_features(x) -> [N, D]`` (every skelact GCN). Its classifier ``fc``, if
    any, is frozen (unused here). ``key_projector``: give one only to share layers between views (CrosSCLR's
    reference mode); by default it is a copy of ``projector``. The key side starts as an exact copy of the query
    side and has ``requires_grad = False``.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, *, queue_size: int, feature_dim: int,
                 momentum: float = 0.999, temperature: float = 0.07, key_projector: nn.Module | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"must lie in [0, 1), got {momentum}", field="momentum")
        if temperature <= 0:
            raise ConfigError(f"must be positive, got {temperature}", field="temperature")
        classifier = getattr(encoder, "fc", None)
        if isinstance(classifier, nn.Module):
            classifier.requires_grad_(False)
        self.encoder = encoder
        self.projector = projector
        self.key_encoder = copy.deepcopy(encoder)
        self.key_projector = copy.deepcopy(projector) if key_projector is None else key_projector
        self.momentum = float(momentum)
        self.temperature = float(temperature)
        self.queue = MemoryQueue(queue_size, feature_dim, generator)
        with torch.no_grad():
            for k, q in zip(self.key_parameters(), self.query_parameters()):
                if k.shape != q.shape:
                    raise ValueError(f"key parameter {tuple(k.shape)} does not match query {tuple(q.shape)}")
                k.copy_(q)
        for k in self.key_parameters():
            k.requires_grad_(False)

    def query_parameters(self) -> list[torch.Tensor]:
        """Query encoder then projector parameters, in the order :meth:`key_parameters` pairs them."""
        return [*self.encoder.parameters(), *self.projector.parameters()]

    def key_parameters(self) -> list[torch.Tensor]:
        return [*self.key_encoder.parameters(), *self.key_projector.parameters()]

    def query(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised query embeddings ``[N, feature_dim]`` (float32)."""
        return F.normalize(self.projector(self.encoder.extract_features(x)).float(), dim=1)

    @torch.no_grad()
    def key(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised key embeddings ``[N, feature_dim]`` (no gradient)."""
        return F.normalize(self.key_projector(self.key_encoder.extract_features(x)).float(), dim=1)

    @torch.no_grad()
    def momentum_update(self) -> None:
        momentum_update_(self.key_parameters(), self.query_parameters(), self.momentum)

    def negatives(self) -> torch.Tensor:
        """The queue as it is now, detached (the logits of a batch use the queue from before its enqueue)."""
        return self.queue.keys.clone().detach()


def instance_accuracy(logits: torch.Tensor) -> torch.Tensor:
    """Percent of queries whose own key (column 0) has the largest logit: the pretext task's accuracy."""
    return (logits.detach().argmax(dim=1) == 0).float().mean() * 100.0


class SkeletonCLRMethod(nn.Module):
    """SkeletonCLR on the views of ``views`` (one :class:`SkeletonCLR` per modality in an ``nn.ModuleDict``); the
    loss is the sum of the views' InfoNCE losses. With one view this is the paper's SkeletonCLR."""

    def __init__(self, views: Mapping[str, SkeletonCLR]):
        super().__init__()
        if not views:
            raise ConfigError("a contrastive method needs at least one view", field="views")
        sizes = {v.queue.size for v in views.values()}
        if len(sizes) != 1:
            raise ConfigError(f"every view's queue must have the same size, got {sorted(sizes)}", field="queue_size")
        self.views = nn.ModuleDict(dict(views))

    @property
    def view_names(self) -> list[str]:
        return list(self.views.keys())

    def forward(self, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The query encoders' pooled embeddings ``{view: [N, D]}`` (what the protocols build on)."""
        return {name: self.views[name].encoder.extract_features(x[name]) for name in self.view_names}

    def encoders(self) -> dict[str, nn.Module]:
        """The query encoders by view (the networks pre-training produces)."""
        return {name: clr.encoder for name, clr in self.views.items()}

    def _update_keys(self, names: Iterable[str]) -> None:
        for name in names:
            self.views[name].momentum_update()

    def single_view_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(sum over views of InfoNCE, parts)``; momentum-updates every key encoder and enqueues every key."""
        queries = {name: clr.query(batch["query"][name]) for name, clr in self.views.items()}
        self._update_keys(self.view_names)
        keys = {name: clr.key(batch["key"][name]) for name, clr in self.views.items()}
        total = 0.0
        parts: dict[str, torch.Tensor] = {}
        for name, clr in self.views.items():
            logits = info_nce_logits(queries[name], keys[name], clr.negatives(), clr.temperature)
            loss = F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.int64, device=logits.device))
            total = total + loss
            parts[f"loss_{name}"] = loss.detach()
            parts[f"instance_acc_{name}"] = instance_accuracy(logits)
        self._enqueue(keys)
        return total, parts

    def _enqueue(self, keys: Mapping[str, torch.Tensor]) -> None:
        # all views enqueue the same batch in the same order, so row i of every queue is one sample (CrosSCLR's
        # cross-view mining relies on it)
        for name, clr in self.views.items():
            clr.queue.enqueue(keys[name])

    def training_step(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, None, dict[str, torch.Tensor]]:
        """``(loss, None, parts)``: no class logits in pre-training; ``parts`` are logged as ``train/<name>``."""
        loss, parts = self.single_view_losses(batch)
        return loss, None, parts


def build_view(encoder: nn.Module, settings: ContrastiveSettings, generator: torch.Generator | None,
               projector: nn.Module | None = None, key_projector: nn.Module | None = None) -> SkeletonCLR:
    """One :class:`SkeletonCLR` around ``encoder`` with ``settings`` (a fresh projector unless given)."""
    if projector is None:
        projector = build_projector(encoder_width(encoder), settings.feature_dim, settings.mlp, generator)
    return SkeletonCLR(encoder, projector, queue_size=settings.queue_size, feature_dim=settings.feature_dim,
                       momentum=settings.momentum, temperature=settings.temperature, key_projector=key_projector,
                       generator=generator)


def build_skeletonclr_method(settings: SkeletonCLRSettings, context: MethodContext) -> SkeletonCLRMethod:
    """SkeletonCLR: one view, the run's modality, on the encoder ``context.make_model()`` builds."""
    from skelact.data.transforms import modality_name

    generator = torch.Generator().manual_seed(int(context.seed) + HEAD_SEED_OFFSET)
    view = modality_name(context.modality)
    return SkeletonCLRMethod({view: build_view(context.make_model(), settings.skeletonclr, generator)})
