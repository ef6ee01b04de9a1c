"""The one table of methods: what ``method.type`` may name, and everything the rest of skelact needs to know of it.

Per method name: its kind (``supervised``: ``skelact train``; ``self-supervised``: ``skelact pretrain``), its
settings dataclass (:mod:`skelact.methods.settings`), its builder ``build(settings, context) -> nn.Module``, the
prefix of its encoder in a checkpoint, the number of augmented draws a training sample needs, the views
(modalities) whose encoders it trains, and the checks of its settings. Config validation
(:mod:`skelact.config`), the evaluation protocols (:mod:`skelact.methods.protocols`), building
(:mod:`skelact.engine.build`) and ``pretrain`` (:mod:`skelact.commands.pretrain`) read this table; nothing else
lists method names. Adding a method is one entry here (docs/architecture.md, "How to add a method").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from skelact.errors import ConfigError
from skelact.methods.crossclr import CrosSCLRSettings, build_crossclr_method, check_crossclr_settings
from skelact.methods.frhead import FRHeadMethodSettings, build_frhead_method, check_frhead_settings
from skelact.methods.settings import MethodContext, read_settings
from skelact.methods.skeletonmae import ENCODER_PREFIX as MAE_ENCODER_PREFIX
from skelact.methods.skeletonmae import SkeletonMAESettings, build_skeletonmae_method, check_skeletonmae_settings
from skelact.methods.skeletonclr import (ENCODER_PREFIX, SkeletonCLRSettings, build_skeletonclr_method,
                                         check_skeletonclr_settings)
from skelact.methods.supervised import SupervisedSettings, build_supervised_method, check_label_smoothing

SUPERVISED = "supervised"
SELF_SUPERVISED = "self-supervised"
#: the prefix of a supervised method's model in a checkpoint's state dict (the LightningModule adds ``method.``)
MODEL_PREFIX = "model."


@dataclass(frozen=True)
class MethodSpec:
    """One row of the table."""

    name: str
    #: :data:`SUPERVISED` or :data:`SELF_SUPERVISED`
    kind: str
    #: the settings dataclass; its fields are the ``method.*`` keys the method reads
    settings: type
    #: ``build(settings, context) -> nn.Module``
    build: Callable[[Any, MethodContext], Any]
    #: where the encoder of a view lies in the method's state dict (``{view}`` is replaced by the view)
    encoder_prefix: str
    #: augmented draws of one training sample per step (two for contrastive query / key pairs)
    draws: int
    #: ``views(settings, modality)``: the modalities whose encoders the method trains
    views: Callable[[Any, str], list]
    #: ``check(settings)`` raises a ConfigError whose field is the key under ``method``
    check: Callable[[Any], None]

    @property
    def supervised(self) -> bool:
        return self.kind == SUPERVISED


def _run_modality(settings: Any, modality: str) -> list:
    from skelact.data.transforms import modality_name

    return [modality_name(modality)]


def _crossclr_views(settings: CrosSCLRSettings, modality: str) -> list:
    return list(settings.crossclr.views)


METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in (
    MethodSpec("supervised", SUPERVISED, SupervisedSettings, build_supervised_method, MODEL_PREFIX, 1,
               _run_modality, check_label_smoothing),
    MethodSpec("frhead", SUPERVISED, FRHeadMethodSettings, build_frhead_method, MODEL_PREFIX, 1, _run_modality,
               lambda s: (check_label_smoothing(s), check_frhead_settings(s))),
    MethodSpec("skeletonclr", SELF_SUPERVISED, SkeletonCLRSettings, build_skeletonclr_method, ENCODER_PREFIX, 2,
               _run_modality, check_skeletonclr_settings),
    MethodSpec("crossclr", SELF_SUPERVISED, CrosSCLRSettings, build_crossclr_method, ENCODER_PREFIX, 2,
               _crossclr_views, check_crossclr_settings),
    # one draw: the masks, not a second augmentation, make the pretext task
    MethodSpec("skeletonmae", SELF_SUPERVISED, SkeletonMAESettings, build_skeletonmae_method, MAE_ENCODER_PREFIX, 1,
               _run_modality, check_skeletonmae_settings),
)}


def method_names(kind: str | None = None) -> list[str]:
    """The method names of the table (of one kind when given)."""
    return [name for name, spec in METHODS.items() if kind is None or spec.kind == kind]


def get_method(name: Any) -> MethodSpec:
    """The row of ``name``; an unknown name is one :class:`ConfigError` listing the known ones."""
    spec = METHODS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(METHODS)}", field="method.type")
    return spec


def method_settings(name: str, method: dict) -> Any:
    """The checked settings of method ``name`` from a config's ``method`` mapping (errors: field under
    ``method``)."""
    spec = get_method(name)
    settings = read_settings(spec.settings, method)
    spec.check(settings)
    return settings


def encoder_prefix(method_type: str, view: str) -> str:
    """Where the encoder of ``view`` lies in a checkpoint's ``state_dict`` of a run of ``method_type``."""
    try:
        spec = get_method(method_type)
    except ConfigError:
        raise ConfigError(f"cannot take an encoder from a {method_type!r} run; known: {', '.join(METHODS)}",
                          field="method.type") from None
    return "method." + spec.encoder_prefix.format(view=view)


__all__ = ["METHODS", "MODEL_PREFIX", "SELF_SUPERVISED", "SUPERVISED", "MethodContext", "MethodSpec",
           "encoder_prefix", "get_method", "method_names", "method_settings"]
