"""The config of an evaluation protocol's run (``skelact evaluate``): the source run's config, the protocol's recipe
(``protocols.<name>``) and the command line's options and overrides; and ``protocol.json``, its record."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from skelact.config import COMMAND_LINE, LoadedConfig, merge_layer, parse_overrides, to_container
from skelact.errors import ConfigError, RunError

PROTOCOL_FILE = "protocol.json"


def protocol_recipe(src: LoadedConfig, protocol: str):
    from skelact.methods.protocols import PROTOCOLS, split_recipe

    recipes = to_container(src.cfg.protocols)
    for name in recipes:
        if name not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {name!r}; expected one of {', '.join(PROTOCOLS)}",
                              src.source_of(f"protocols.{name}"), f"protocols.{name}")
    try:
        return split_recipe(protocol, recipes.get(protocol))
    except ConfigError as e:
        raise ConfigError(e.message, src.source_of(e.field or "protocols") or e.path, e.field) from None


def check_protocol_recipes(loaded: LoadedConfig) -> None:
    """Check every protocol recipe of ``loaded`` (``protocols.*``) now, so a typo fails before a long
    pre-training run rather than after it."""
    from skelact.methods.protocols import PROTOCOLS

    for protocol in PROTOCOLS:
        layer, opts = protocol_recipe(loaded, protocol)
        derive_config(loaded, protocol, layer, opts, ())


def with_options(opts: Any, protocol: str, options: dict[str, Any]):
    from skelact.methods.protocols import OPTION_KEYS, ProtocolOptions, check_options
    from skelact.methods.skeletonclr import settings_from_dict

    unknown = [k for k in options if k not in OPTION_KEYS]
    if unknown:
        raise ConfigError(f"unknown option; evaluate accepts: {', '.join(OPTION_KEYS)}", COMMAND_LINE, unknown[0])
    merged = settings_from_dict({**asdict(opts), **options}, ProtocolOptions, f"protocols.{protocol}", COMMAND_LINE)
    check_options(merged, protocol, COMMAND_LINE)
    return merged


def experiment_name(src: LoadedConfig, protocol: str, opts: Any) -> str:
    name = f"{src.cfg.experiment}-{protocol}"
    if protocol == "semi":
        name += f"{100 * opts.label_fraction:g}pct"
    if opts.init == "random":
        name += "-random"
    return name


def derive_config(src: LoadedConfig, protocol: str, layer: dict[str, Any], opts: Any,
                   overrides: Sequence[str]) -> LoadedConfig:
    """The protocol run's config: the source's, the recipe's experiment keys, then the overrides."""
    layer = dict(layer)
    if not opts.augment:
        data = dict(layer.get("data", {}))
        data["train_pipeline"] = list(to_container(src.cfg.data.test_pipeline))
        layer["data"] = data
    layer["experiment"] = experiment_name(src, protocol, opts)
    try:
        loaded = merge_layer(src, layer, f"protocols.{protocol}")
    except ConfigError as e:
        # name the recipe key and the file (or command line) that set it
        from skelact.methods.protocols import OPTION_KEYS

        field = f"protocols.{protocol}.{e.field}" if e.field else f"protocols.{protocol}"
        message = e.message
        if e.field and "." not in e.field and message.startswith("unknown key"):
            message = (f"unknown key; a protocol recipe takes experiment-config keys ({message.split(': ')[-1]}) "
                       f"and the protocol options ({', '.join(OPTION_KEYS)})")
        raise ConfigError(message, src.source_of(field) or src.source_of(f"protocols.{protocol}") or e.path,
                          field) from None
    for part in parse_overrides(overrides):
        loaded = merge_layer(loaded, part, COMMAND_LINE)
    return loaded


def read_protocol_record(run: Path) -> dict[str, Any]:
    path = run / PROTOCOL_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        for key in ("protocol", "source_run", "options"):
            record[key]
        return record
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError(f"not a protocol run (no readable {PROTOCOL_FILE})", path) from None

