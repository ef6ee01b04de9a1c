"""Command-line items several commands read the same way: ``key=value`` options and ``CONFIG [key=value ...]``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from skelact.errors import ConfigError


def parse_key_value(text: str, field: str = "--option") -> tuple[str, Any]:
    """``KEY=VALUE`` -> ``(key, value)``, the value read as YAML (``3`` an int, ``true`` a bool), else the text."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected key=value, got {text!r}", field=field)
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed


def split_config_and_overrides(items: Sequence[str], resume: str | None) -> tuple[str | None, list[str]]:
    """``CONFIG [key=value ...]`` -> (config, overrides); with ``--resume`` every item is an override."""
    items = list(items)
    config = None
    if items and ("=" not in items[0] or os.path.isfile(items[0])):
        config = items.pop(0)
    if resume is not None and config is not None:
        raise ConfigError(f"give either a config file or --resume RUN, not both (got {config!r}); a resumed run uses "
                          "its own config.yaml, changed with key=value overrides", field="--resume")
    if resume is None and config is None:
        raise ConfigError("no config file given: skelact train CONFIG [key=value ...] (or --resume RUN)",
                          field="CONFIG")
    return config, items
