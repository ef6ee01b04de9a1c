"""A method's settings as a dataclass, read from the mapping a config holds, and what a builder knows of the run.

Every method's settings are one dataclass whose fields are the ``method.*`` keys it reads: scalar fields
(``label_smoothing``) and sections, fields that are dataclasses themselves (``frhead``, ``skeletonclr``, ...).
:func:`read_settings` builds it from plain mappings; an unknown key or a value of the wrong type is one
:class:`~skelact.errors.ConfigError` whose field is the dotted key under ``method`` (the engine adds the file).
Builders take these settings and a :class:`MethodContext`, never the loaded config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Callable

from skelact.errors import ConfigError


@dataclass(frozen=True)
class MethodContext:
    """What a method's builder may know about its run besides its settings."""

    #: a new model of the run's ``model`` section built for its data (one call per encoder a method needs)
    make_model: Callable[[], Any]
    #: the run's seed (methods derive their own generators from it)
    seed: int = 1
    #: the run's modality (``data.modality``): the view of a single-view method
    modality: str = "joint"
    #: the fixed training clip length when the data config fixes one (``data.num_frames`` or the train
    #: pipeline's frame sampler), else None
    clip_length: int | None = None


def settings_from_dict(values: Mapping[str, Any] | None, cls: type, section: str, source: str | None = None):
    """An instance of the dataclass ``cls`` from a config mapping; unknown keys and wrong types are one
    :class:`ConfigError` naming ``section.key`` (and ``source``, the file that set it)."""
    values = dict(values or {})
    known = {f.name: f for f in fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown key; {section} accepts: {', '.join(known)}", source, f"{section}.{key}")
    defaults = cls()
    out = {}
    for key, value in values.items():
        default = getattr(defaults, key)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = True
        if not ok:
            raise ConfigError(f"expected {type(default).__name__}, got {value!r}", source, f"{section}.{key}")
        out[key] = value
    return cls(**out)


def read_settings(cls: type, method: Mapping[str, Any]) -> Any:
    """The method settings ``cls`` from the ``method`` mapping of a config: each scalar field from its key, each
    section field (a dataclass) from its sub-mapping through :func:`settings_from_dict`. Keys ``cls`` has no field
    for (``type``, other methods' sections) are not its business and are left alone."""
    defaults = cls()
    values = {}
    for f in fields(cls):
        if f.name not in method or method[f.name] is None:
            continue
        default = getattr(defaults, f.name)
        if is_dataclass(default):
            values[f.name] = settings_from_dict(method[f.name], type(default), f.name)
        else:
            values[f.name] = method[f.name]
    return dataclasses.replace(defaults, **values)


def need(ok: bool, key: str, message: str) -> None:
    """Raise the :class:`ConfigError` of one bad setting (``key`` dotted under ``method``) unless ``ok``."""
    if not ok:
        raise ConfigError(message, field=key)
