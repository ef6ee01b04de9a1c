"""CrosSCLR: cross-view consistent knowledge mining on top of per-view SkeletonCLR (Li et al., CVPR 2021, Sec. 3.3).

Views are modalities of the same augmented clips (default joint, joint_motion, bone: the paper's 3-view CrosSCLR),
one :class:`~skelact.methods.skeletonclr.SkeletonCLR` each, held in one ``nn.ModuleDict`` keyed by view. The
queues of all views are filled by the same batches in the same order, so row ``i`` of every queue belongs to one
training sample; that is what lets one view's neighbours be looked up in another view.

Training has two phases (``single_view_epochs``; the paper trains 300 epochs, the first 150 single-view):

1. **single-view**: the sum over views of each view's InfoNCE loss (SkeletonCLR per view);
2. **cross-view**: for an ordered pair of views ``(u, v)``, with cosine similarities of view ``u``'s query to its
   own key ``p^u = z^u . z_hat^u`` and to its queue ``s^u = [z^u . m_i^u]_i`` (likewise ``s^v``):

   * *knowledge mining*: the ``topk`` most similar queue entries **in view v**, ``N_+^v = Gamma_k(s^v)``, become
     positives of view ``u`` besides its own key (:func:`topk_positive_mask`);
   * *contrastive context*: with ``context: true`` the logits of view ``u`` are extended by ``s^u * s^v``
     (elementwise), view ``v``'s similarity distribution weighting view ``u``'s, with the same positives;
   * the loss is the multi-positive InfoNCE of view ``u`` (:func:`cross_view_loss`)::

       logits = [p^u, s^u, (s^u * s^v)] / tau,   P = {0} + N_+^v (+ the same entries of the context block)
       L^{u|v} = -1/|P| * sum_{j in P} log softmax(logits)_j

   and ``L_cross = sum over ordered pairs (u, v), u != v`` of ``L^{u|v}`` (paper Eq. 2-4, the issue's reading).
   Gradients flow into both views through the context term; the mined indices are discrete.

The reference implementation (LinguoLi/CrosSCLR ``net/crossclr_3views.py``, ``processor/pretrain_crossclr_3views
.py``) differs in three places; each is a switch here, off by default:

* ``pair_reduction: mean``: the reference averages each view's losses over its guiding views before summing over
  views (``(L_jm + L_jb) / 2 + ...``), half our sum with three views (equal with two);
* ``shared_projector: true``: in MLP mode the reference builds the motion and bone projectors as
  ``Linear - ReLU - (the joint view's whole projector)``, so the joint projector is shared by all views (query and
  key side alike) and the momentum update of each view moves the shared key layers again;
* ``cross_key_updates: [joint_motion]``: in the cross-view phase the reference momentum-updates only the motion
  key encoder; the joint and bone key encoders stay frozen. Default (``null``): every view's key encoder is updated
  in both phases, as in the paper.

Phase switch: the reference counts epochs from 1 and runs the single-view phase while ``epoch <= cross_epoch``, i.e.
exactly 150 single-view epochs for ``cross_epoch: 150``, then 150 cross-view epochs; ``single_view_epochs: 150``
here (0-based epochs 0-149) runs the same 150 + 150.

Config (``method.type: crossclr``; per-view settings under ``method.skeletonclr``, cross-view ones under
``method.crossclr``, see :class:`CrossViewSettings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from skelact.errors import ConfigError
from skelact.methods.settings import MethodContext
from skelact.methods.skeletonclr import (HEAD_SEED_OFFSET, ContrastiveSettings, SkeletonCLR, SkeletonCLRMethod,
                                         build_projector, build_view, check_contrastive_settings, encoder_width,
                                         instance_accuracy, reset_linear_)

PAIR_REDUCTIONS = ("sum", "mean")


@dataclass
class CrossViewSettings:
    """``method.crossclr`` keys (defaults: the paper's 3-view CrosSCLR)."""

    #: the modalities, one SkeletonCLR each (``joint``, ``joint_motion``, ``bone``, ``bone_motion``)
    views: list = field(default_factory=lambda: ["joint", "joint_motion", "bone"])
    #: epochs of the single-view phase before cross-view mining starts (paper: 150 of 300)
    single_view_epochs: int = 150
    #: queue entries mined as extra positives per query (reference ``topk: 1``)
    topk: int = 1
    #: add the similarity-context block ``s^u * s^v`` to the logits (reference ``context: True``)
    context: bool = True
    #: ``sum`` over ordered view pairs (paper) or ``mean`` over each view's guides, then sum (reference)
    pair_reduction: str = "sum"
    #: the reference's MLP-mode projector sharing (see the module docstring)
    shared_projector: bool = False
    #: views whose key encoders are momentum-updated in the cross-view phase; null = all (reference: [joint_motion])
    cross_key_updates: Optional[list] = None


@dataclass
class CrosSCLRSettings:
    """The settings of ``method.type: crossclr``: per-view ``method.skeletonclr``, cross-view ``method.crossclr``."""

    skeletonclr: ContrastiveSettings = field(default_factory=ContrastiveSettings)
    crossclr: CrossViewSettings = field(default_factory=CrossViewSettings)


def check_cross_view_settings(s: CrossViewSettings) -> None:
    """Check ``method.crossclr`` and put its view names in canonical form (``jm`` -> ``joint_motion``)."""
    from skelact.data.transforms import modality_name

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, field=f"crossclr.{key}")

    if not isinstance(s.views, list) or len(s.views) < 2:
        raise fail("views", f"expected a list of at least two modalities, got {s.views!r}")
    try:
        s.views = [modality_name(v) for v in s.views]
    except ConfigError as e:
        raise fail("views", e.message) from None
    if len(set(s.views)) != len(s.views):
        raise fail("views", f"a view is listed twice: {s.views}")
    if s.single_view_epochs < 0:
        raise fail("single_view_epochs", f"must be 0 or more, got {s.single_view_epochs}")
    if s.topk < 1:
        raise fail("topk", f"must be at least 1, got {s.topk}")
    if s.pair_reduction not in PAIR_REDUCTIONS:
        raise fail("pair_reduction", f"must be one of {', '.join(PAIR_REDUCTIONS)}, got {s.pair_reduction!r}")
    if s.cross_key_updates is not None:
        if not isinstance(s.cross_key_updates, list):
            raise fail("cross_key_updates", f"expected a list of views or null, got {s.cross_key_updates!r}")
        try:
            s.cross_key_updates = [modality_name(v) for v in s.cross_key_updates]
        except ConfigError as e:
            raise fail("cross_key_updates", e.message) from None
        unknown = [v for v in s.cross_key_updates if v not in s.views]
        if unknown:
            raise fail("cross_key_updates", f"{unknown} not among the views {s.views}")


def check_crossclr_settings(settings: CrosSCLRSettings) -> None:
    check_contrastive_settings(settings.skeletonclr, "skeletonclr")
    check_cross_view_settings(settings.crossclr)
    if settings.crossclr.shared_projector and not settings.skeletonclr.mlp:
        raise ConfigError("reproduces the reference's MLP-mode sharing; it needs method.skeletonclr.mlp: true",
                          field="crossclr.shared_projector")


# ----------------------------------------------------------------------------------------------------------------
# the mining and the loss, as functions


def topk_positive_mask(similarity: torch.Tensor, topk: int) -> torch.Tensor:
    """``[N, K]`` float mask with 1 at the ``topk`` largest entries of each row of ``similarity`` (ties: torch's
    ``topk`` order), 0 elsewhere: ``Gamma_k(s)``, the mined positives."""
    if topk > similarity.shape[1]:
        raise ConfigError(f"cannot mine {topk} positives from a queue of {similarity.shape[1]}", field="topk")
    mask = torch.zeros_like(similarity, dtype=torch.float32)
    mask.scatter_(1, similarity.detach().topk(topk, dim=1).indices, 1.0)
    return mask


def cross_view_loss(positive: torch.Tensor, similarity: torch.Tensor, guide_similarity: torch.Tensor, *,
                    topk: int, temperature: float, context: bool = True) -> torch.Tensor:
    """``L^{u|v}``: view ``u``'s multi-positive InfoNCE with positives mined in view ``v`` (module docstring).

    ``positive`` ``[N]`` = ``z^u . z_hat^u``; ``similarity`` ``[N, K]`` = ``s^u``; ``guide_similarity`` = ``s^v``
    (same queue rows). Returns the batch mean.
    """
    mined = topk_positive_mask(guide_similarity, topk).to(similarity.dtype)
    blocks = [positive.unsqueeze(1), similarity]
    masks = [torch.ones_like(positive).unsqueeze(1), mined]
    if context:
        blocks.append(similarity * guide_similarity)
        masks.append(mined)
    logits = torch.cat(blocks, dim=1) / temperature
    mask = torch.cat(masks, dim=1)
    log_prob = F.log_softmax(logits, dim=1)
    return (-(mask * log_prob).sum(dim=1) / mask.sum(dim=1)).mean()


# ----------------------------------------------------------------------------------------------------------------
# the method


class CrosSCLRMethod(SkeletonCLRMethod):
    """CrosSCLR over the views of ``views``; :meth:`set_epoch` (called by the engine at each epoch start) selects
    the phase."""

    def __init__(self, views: Mapping[str, SkeletonCLR], *, single_view_epochs: int = 150, topk: int = 1,
                 context: bool = True, pair_reduction: str = "sum", cross_key_updates: list | None = None):
        super().__init__(views)
        if len(self.views) < 2:
            raise ConfigError("CrosSCLR needs at least two views", field="views")
        if pair_reduction not in PAIR_REDUCTIONS:
            raise ConfigError(f"must be one of {PAIR_REDUCTIONS}, got {pair_reduction!r}", field="pair_reduction")
        queue_size = next(iter(self.views.values())).queue.size
        if topk > queue_size:
            raise ConfigError(f"topk {topk} exceeds the queue size {queue_size}", field="topk")
        self.single_view_epochs = int(single_view_epochs)
        self.topk = int(topk)
        self.context = bool(context)
        self.pair_reduction = pair_reduction
        self.cross_key_updates = list(self.views) if cross_key_updates is None else list(cross_key_updates)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def cross_phase(self) -> bool:
        return self.epoch >= self.single_view_epochs

    def cross_view_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        names = self.view_names
        queries = {name: self.views[name].query(batch["query"][name]) for name in names}
        self._update_keys(self.cross_key_updates)
        keys = {name: self.views[name].key(batch["key"][name]) for name in names}
        positive = {name: (queries[name] * keys[name]).sum(dim=1) for name in names}
        similarity = {name: queries[name] @ self.views[name].negatives().t() for name in names}
        temperature = {name: self.views[name].temperature for name in names}
        total = 0.0
        parts: dict[str, torch.Tensor] = {}
        for u in names:
            pair_losses = [cross_view_loss(positive[u], similarity[u], similarity[v], topk=self.topk,
                                           temperature=temperature[u], context=self.context)
                           for v in names if v != u]
            view_loss = torch.stack(pair_losses).sum()
            if self.pair_reduction == "mean":
                view_loss = view_loss / len(pair_losses)
            total = total + view_loss
            parts[f"loss_{u}"] = view_loss.detach()
            plain = torch.cat([positive[u].unsqueeze(1), similarity[u]], dim=1)
            parts[f"instance_acc_{u}"] = instance_accuracy(plain)
        self._enqueue(keys)
        return total, parts

    def training_step(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, None, dict[str, torch.Tensor]]:
        if self.cross_phase:
            loss, parts = self.cross_view_losses(batch)
        else:
            loss, parts = self.single_view_losses(batch)
        parts["cross_phase"] = torch.tensor(float(self.cross_phase), device=loss.device)
        return loss, None, parts


def build_crossclr_method(settings: CrosSCLRSettings, context: MethodContext) -> CrosSCLRMethod:
    """CrosSCLR: one encoder (``context.make_model()``) per ``crossclr.views``, per-view settings from
    ``skeletonclr``."""
    clr, cross = settings.skeletonclr, settings.crossclr
    generator = torch.Generator().manual_seed(int(context.seed) + HEAD_SEED_OFFSET)
    views: dict[str, SkeletonCLR] = {}
    first: SkeletonCLR | None = None
    for name in cross.views:
        encoder = context.make_model()
        if cross.shared_projector and first is not None:
            width = encoder_width(encoder)
            own = nn.Sequential(nn.Linear(width, width), nn.ReLU())
            reset_linear_(own, generator)
            key_own = nn.Sequential(nn.Linear(width, width), nn.ReLU())
            views[name] = build_view(encoder, clr, generator, projector=nn.Sequential(*own, first.projector),
                                     key_projector=nn.Sequential(*key_own, first.key_projector))
        else:
            views[name] = build_view(encoder, clr, generator)
        if first is None:
            first = views[name]
    return CrosSCLRMethod(views, single_view_epochs=cross.single_view_epochs, topk=cross.topk,
                          context=cross.context, pair_reduction=cross.pair_reduction,
                          cross_key_updates=cross.cross_key_updates)


__all__ = ["CrosSCLRMethod", "CrosSCLRSettings", "CrossViewSettings", "build_crossclr_method", "build_projector",
           "check_cross_view_settings", "check_crossclr_settings", "cross_view_loss", "topk_positive_mask"]
