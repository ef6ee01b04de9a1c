"""FR-Head training (Zhou, Liu and Wang, CVPR 2023): cross-entropy plus multi-level contrastive feature refinement.

``loss = CE(logits, y) + w_cl * sum_i lambda_i * L_CL^i``, with ``w_cl = 0.1`` and ``lambda = (0.1, 0.2, 0.5, 1.0)``
for the heads on the features after blocks 1, 5, 8 and 10 (reference ``main.py``: ``full_loss += w_cl_loss *
cl_loss``; ``model/ctrgcn.py``: ``cl_low * w[0] + ... + cl_fin * w[3]``). The heads and their losses are
:mod:`skelact.models.frhead`; its docstring lists every choice the paper leaves open.

The heads are training-only: :meth:`FRHeadMethod.forward` (what validation, testing, prediction and export call)
is the backbone's forward, so the deployed network has exactly the backbone's parameters and FLOPs.
:meth:`FRHeadMethod.inference_model` and :func:`inference_state_dict` give that network and its weights.

Config (``method.type: frhead``, settings under ``method.frhead``, see :class:`FRHeadSettings`)::

    method:
      type: frhead
      frhead: {w_cl: 0.1, stage_weights: [0.1, 0.2, 0.5, 1.0], multi_level: true, decouple: true}

Ablations of the paper's Table (switches): ``multi_level: false, decouple: false`` = the CL loss alone on the last
stage's pooled feature; ``multi_level: false, decouple: true`` = + spatial-temporal decoupling; both true = +
multi-level (the full method).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from skelact.data.batch import model_inputs
from skelact.errors import ConfigError
from skelact.methods.settings import MethodContext
from skelact.models.frhead import (ANCHORS, CALIBRATION_SCALE, HIDDEN_FEATURES, MOMENTUM, STAGE_WEIGHTS, TEMPERATURE,
                                   MultiLevelFRHead, stage_shapes)

#: the prefix of the backbone's weights in a method's state dict (``SkeletonLitModule`` adds ``method.``)
MODEL_PREFIX = "model."
#: offset added to the run's seed for the heads' generator, so their draws differ from a backbone seeded the same
HEAD_SEED_OFFSET = 7919


@dataclass
class FRHeadSettings:
    """``method.frhead`` keys (defaults: the paper's and the reference's NW-UCLA / NTU settings)."""

    #: weight of the summed contrastive losses (reference ``w_cl_loss``)
    w_cl: float = 0.1
    #: lambda_i per tap (reference ``w_multi_cl_loss``); with ``multi_level: false`` only the last one is used
    stage_weights: list = field(default_factory=lambda: list(STAGE_WEIGHTS))
    #: heads on every tap of the backbone (``model.feature_blocks``, default 1, 5, 8, 10) or only on the last one
    multi_level: bool = True
    #: spatial-temporal decoupling (``false``: one refinement of the pooled feature, the "CL only" ablation)
    decouple: bool = True
    #: width H of the contrastive space (reference ``h_channel``)
    hidden_features: int = HIDDEN_FEATURES
    temperature: float = TEMPERATURE
    momentum: float = MOMENTUM
    #: alpha: phi and psi are scaled by alpha * (1 - p_ik) (reference ``alp``)
    calibration_scale: float = CALIBRATION_SCALE
    #: scale by (1 - p_ik) (reference ``use_p_map``)
    confidence_weight: bool = True
    #: a true positive is confident when p_ik exceeds this (reference ``pred_threshold``)
    confidence_threshold: float = 0.0
    #: ``all`` (reference default V0) or ``confident`` (V1): which anchors get the compensation / penalty
    anchors: str = "all"
    #: gradient through the batch-mean part of the prototypes (reference: yes)
    prototype_grad: bool = True
    #: all-reduce class statistics over processes (the reference does not)
    sync_prototypes: bool = True
    #: training clip length T; default: ``data.num_frames`` or the train pipeline's sampler
    num_frames: Any = None


class FRHeadMethod(nn.Module):
    """A backbone (``forward(x, return_features=True) -> (logits, stage features)``) trained with cross-entropy
    plus ``w_cl`` times the weighted FR-Head losses of ``heads``."""

    def __init__(self, model: nn.Module, heads: MultiLevelFRHead, w_cl: float = 0.1, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        if float(w_cl) < 0:
            raise ConfigError(f"must be 0 or more, got {w_cl}", field="w_cl")
        self.model = model
        self.heads = heads
        self.w_cl = float(w_cl)
        self.label_smoothing = float(label_smoothing)

    def forward(self, *args: Any, **inputs: Any) -> torch.Tensor:
        """Logits of the backbone alone: the heads take no part in inference."""
        return self.model(*args, **inputs)

    def inference_model(self) -> nn.Module:
        """The network to evaluate and deploy: the backbone, without the heads."""
        return self.model

    def losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``(total loss, logits, parts)``; ``parts`` holds ``loss_ce``, ``loss_cl`` (the weighted sum before
        ``w_cl``) and ``loss_cl_block<b>`` per head (unweighted)."""
        labels = batch["label"]
        logits, taps = self.model(**model_inputs(batch), return_features=True)
        ce = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        cl, per_stage = self.heads(taps, labels, logits.detach())
        parts = {"loss_ce": ce, "loss_cl": cl}
        blocks = getattr(self.model, "feature_blocks", None)
        for tap, loss in zip(self.heads.taps, per_stage):
            name = f"block{blocks[tap]}" if blocks is not None and tap < len(blocks) else f"tap{tap}"
            parts[f"loss_cl_{name}"] = loss
        return ce + self.w_cl * cl, logits, parts

    def training_step(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, logits, {name: detached scalar})`` for one training batch (the engine logs the dict)."""
        loss, logits, parts = self.losses(batch)
        return loss, logits, {name: value.detach() for name, value in parts.items()}


def build_frhead(model: nn.Module, num_classes: int, settings: FRHeadSettings, num_frames: int,
                 seed: int | None = None) -> MultiLevelFRHead:
    """The heads for ``model``'s stage taps on clips of ``num_frames`` frames, as ``settings`` say."""
    shapes = stage_shapes(model, num_frames)
    weights = [float(w) for w in settings.stage_weights]
    if len(weights) != len(shapes):
        raise ConfigError(f"expected {len(shapes)} stage weights, one per tap of the backbone (model.feature_blocks), "
                          f"got {weights}", field="stage_weights")
    taps = list(range(len(shapes))) if settings.multi_level else [len(shapes) - 1]
    generator = None
    if seed is not None:
        generator = torch.Generator().manual_seed(int(seed) + HEAD_SEED_OFFSET)
    return MultiLevelFRHead(shapes, model.num_joints, num_classes, [weights[i] for i in taps], taps=taps,
                            hidden_features=settings.hidden_features, decouple=settings.decouple,
                            generator=generator, temperature=settings.temperature, momentum=settings.momentum,
                            calibration_scale=settings.calibration_scale,
                            confidence_weight=settings.confidence_weight,
                            confidence_threshold=settings.confidence_threshold, anchors=settings.anchors,
                            prototype_grad=settings.prototype_grad, sync=settings.sync_prototypes)


def inference_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The backbone's weights from the state dict of an :class:`FRHeadMethod` (keys ``model.*``) or of a
    training checkpoint (``method.model.*``); the heads' weights and prototypes are left out."""
    out = {}
    for key, value in state_dict.items():
        for prefix in ("method." + MODEL_PREFIX, MODEL_PREFIX):
            if key.startswith(prefix):
                out[key[len(prefix):]] = value
                break
    if not out:
        raise ConfigError("no backbone weights (keys model.* or method.model.*) in the state dict", field="state_dict")
    return out


# ----------------------------------------------------------------------------------------------------------------
# settings and builder (what the method table, skelact.methods.registry, holds)


@dataclass
class FRHeadMethodSettings:
    """The settings of ``method.type: frhead``: ``method.label_smoothing`` and the ``method.frhead`` section."""

    label_smoothing: float = 0.0
    frhead: FRHeadSettings = field(default_factory=FRHeadSettings)


def check_frhead_settings(settings: FRHeadMethodSettings) -> None:
    """Values the dataclass types cannot check; errors name ``frhead.<key>`` (under ``method``)."""
    s = settings.frhead

    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(message, field=f"frhead.{key}")

    def number(key: str) -> float:
        value = getattr(s, key)
        need(isinstance(value, (int, float)) and not isinstance(value, bool), key, f"expected a number, got {value!r}")
        return float(value)

    for key in ("multi_level", "decouple", "confidence_weight", "prototype_grad", "sync_prototypes"):
        need(isinstance(getattr(s, key), bool), key, f"expected true or false, got {getattr(s, key)!r}")
    need(number("w_cl") >= 0, "w_cl", f"must be 0 or more, got {s.w_cl}")
    need(number("temperature") > 0, "temperature", f"must be positive, got {s.temperature}")
    need(0 <= number("momentum") < 1, "momentum", f"must lie in [0, 1), got {s.momentum}")
    need(number("calibration_scale") >= 0, "calibration_scale", f"must be 0 or more, got {s.calibration_scale}")
    number("confidence_threshold")
    need(s.anchors in ANCHORS, "anchors", f"must be one of {', '.join(ANCHORS)}, got {s.anchors!r}")
    h = s.hidden_features
    need(isinstance(h, int) and not isinstance(h, bool) and h >= 1, "hidden_features",
         f"must be a positive integer, got {h!r}")
    w = s.stage_weights
    need(isinstance(w, list) and len(w) > 0 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                                                    for v in w),
         "stage_weights", f"expected a list of non-negative numbers, got {w!r}")
    t = s.num_frames
    need(t is None or (isinstance(t, int) and not isinstance(t, bool) and t >= 1), "num_frames",
         f"must be a positive integer (or null to take it from the data config), got {t!r}")


def build_frhead_method(settings: FRHeadMethodSettings, context: MethodContext) -> FRHeadMethod:
    """The :class:`FRHeadMethod` around ``context.make_model()``; the heads are built for the training clip length
    ``frhead.num_frames``, else the one the data config fixes (``context.clip_length``)."""
    num_frames = settings.frhead.num_frames or context.clip_length
    if num_frames is None:
        raise ConfigError("FR-Head's temporal branch needs a fixed training clip length; set method.frhead.num_frames "
                          "(or data.num_frames)", field="frhead.num_frames")
    model = context.make_model()
    try:
        heads = build_frhead(model, model.num_classes, settings.frhead, int(num_frames), seed=int(context.seed))
    except ConfigError as e:
        # a model that cannot carry the heads is the model's error (model.*), everything else the settings'
        field = e.field if e.field and e.field.startswith("model.") else f"frhead.{e.field or 'stage_weights'}"
        raise ConfigError(e.message, field=field) from None
    return FRHeadMethod(model, heads, w_cl=settings.frhead.w_cl, label_smoothing=settings.label_smoothing)


__all__ = ["FRHeadMethod", "FRHeadMethodSettings", "FRHeadSettings", "build_frhead", "build_frhead_method",
           "check_frhead_settings", "inference_state_dict"]
