"""Transforms by name, so that a YAML config can list them as ``{type: Name, **arguments}``.

A class joins the registry with :func:`register_transform`; :func:`build_transform` turns one spec into an
instance and reports a wrong name or argument as one :class:`~skelact.errors.ConfigError` that names it.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any, Callable, TypeVar

from skelact.errors import ConfigError

T = TypeVar("T", bound=type)

#: transform name -> class
TRANSFORMS: dict[str, type] = {}


def register_transform(cls: T | None = None, *, name: str | None = None) -> Any:
    """Class decorator: make ``cls`` buildable as ``{type: <name or class name>}``."""

    def add(klass: T) -> T:
        key = name or klass.__name__
        if key in TRANSFORMS and TRANSFORMS[key] is not klass:
            raise ValueError(f"transform name {key!r} is already taken by {TRANSFORMS[key].__qualname__}")
        TRANSFORMS[key] = klass
        return klass

    return add if cls is None else add(cls)


def available_transforms() -> list[str]:
    """Names a spec's ``type`` may take."""
    return sorted(TRANSFORMS)


def _plain(value: Any) -> Any:
    """Config containers (OmegaConf's included) as plain dicts and lists, so constructors see ordinary values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value


def build_transform(spec: Any, source: str | PathLike | None = None, where: str = "transform") -> Callable:
    """An instance from ``{'type': Name, **kwargs}``; an already built callable is returned as is.

    ``source`` (the config file) and ``where`` (the key path inside it) only make error messages precise.
    """
    if callable(spec) and not isinstance(spec, Mapping):
        return spec
    if not isinstance(spec, Mapping):
        raise ConfigError(f"expected a mapping {{type: Name, ...}}, got {type(spec).__name__}", source, where)
    spec = _plain(spec)
    if "type" not in spec:
        raise ConfigError(f"missing 'type'; known transforms: {', '.join(available_transforms())}", source,
                          f"{where}.type")
    name = spec.pop("type")
    cls = TRANSFORMS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown transform {name!r}; known transforms: {', '.join(available_transforms())}",
                          source, f"{where}.type")
    params = inspect.signature(cls).parameters
    accepted = [p for p, d in params.items() if d.kind in (d.POSITIONAL_OR_KEYWORD, d.KEYWORD_ONLY)]
    unknown = sorted(set(spec) - set(accepted))
    if unknown:
        raise ConfigError(f"{name} has no argument {unknown[0]!r}; it accepts {', '.join(accepted) or 'none'}",
                          source, f"{where}.{unknown[0]}")
    missing = [p for p in accepted if params[p].default is inspect.Parameter.empty and p not in spec]
    if missing:
        raise ConfigError(f"{name} needs the argument {missing[0]!r}", source, f"{where}.{missing[0]}")
    try:
        return cls(**spec)
    except ConfigError as e:
        raise ConfigError(e.message, source, f"{where}.{e.field}" if e.field else where) from None


def bad_argument(owner: str, argument: str, message: str) -> ConfigError:
    """The error a transform's constructor raises for one bad argument value."""
    return ConfigError(f"{owner}: {message}", field=argument)


def as_interval(owner: str, argument: str, value: Any, low: float, high: float) -> tuple[float, ...]:
    """A number or a list of one or two numbers inside ``[low, high]``, as a tuple."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not 1 <= len(items) <= 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in items):
        raise bad_argument(owner, argument, f"expected a number or [low, high], got {value!r}")
    items = [float(v) for v in items]
    if not all(low <= v <= high for v in items) or items != sorted(items):
        raise bad_argument(owner, argument, f"expected values in [{low}, {high}] with low <= high, got {value!r}")
    return tuple(items)


def as_positive_int(owner: str, argument: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise bad_argument(owner, argument, f"expected a positive integer, got {value!r}")
    return int(value)


def as_number(owner: str, argument: str, value: Any, low: float = float("-inf"), high: float = float("inf")) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise bad_argument(owner, argument, f"expected a number in [{low}, {high}], got {value!r}")
    return float(value)
