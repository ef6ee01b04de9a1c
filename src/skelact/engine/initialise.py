"""Start a new run's model, or any sub-module of it, from another run's weights, matched by key prefix.

``init.from_run: RUN`` with ``init.checkpoint`` (``last`` / ``best``), ``init.source_prefix`` and
``init.target_prefix``: every tensor of the source run's method state dict whose key starts with
``source_prefix`` is copied to the new method's key ``target_prefix + rest``. Both prefixes are relative to the
methods (a checkpoint's ``method.`` is implied): ``model.`` is a supervised run's network,
``views.joint.encoder.`` a pre-training run's joint encoder; a target such as ``model.backbone.`` puts the
weights into a sub-module of a bigger network (STRL puts SkeletonMAE's encoder inside its own).

``init.also`` lists more runs, each with the same four keys, applied after ``from_run`` (RGBPose-Conv3D's joint
fine-tuning takes its RGB pathway from one run and its pose pathway from another, as pyskl's
``merge_pretrain.ipynb`` merges two checkpoints); no target key may come from two runs.

The copy is all or nothing: a source key without a target (unexpected), a target key under ``target_prefix``
that the source does not give (missing), or a shape that differs is one :class:`~skelact.errors.ConfigError`
listing them, and no weight is changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from skelact.errors import ConfigError

#: the prefix of the method in a checkpoint's state dict (SkeletonLitModule holds it as ``method``)
CHECKPOINT_PREFIX = "method."
#: keys shown per kind of problem before "..."
SHOWN = 4


def _listed(keys: list[str]) -> str:
    more = f", ... ({len(keys)} in all)" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def load_by_prefix(target: nn.Module, source: Mapping[str, torch.Tensor], source_prefix: str, target_prefix: str,
                   where: str | None = None) -> int:
    """Copy the tensors of ``source`` under ``source_prefix`` into ``target``'s state under ``target_prefix``
    (see the module docstring); returns the number of tensors copied."""
    taken = {target_prefix + key[len(source_prefix):]: value for key, value in source.items()
             if key.startswith(source_prefix)}
    if not taken:
        raise ConfigError(f"the source has no weights under {source_prefix!r} (its keys start with "
                          f"{_listed(sorted({k.split('.')[0] + '.' for k in source}))})", where, "init.source_prefix")
    own = target.state_dict()
    wanted = [k for k in own if k.startswith(target_prefix)]
    unexpected = sorted(k for k in taken if k not in own)
    missing = [k for k in wanted if k not in taken]
    shapes = [f"{k} {tuple(taken[k].shape)} -> {tuple(own[k].shape)}" for k in wanted
              if k in taken and taken[k].shape != own[k].shape]
    problems = []
    if unexpected:
        problems.append(f"unexpected (no such key in the new model) {_listed(unexpected)}")
    if missing:
        problems.append(f"missing (not in the source) {_listed(missing)}")
    if shapes:
        problems.append(f"shape mismatch {_listed(shapes)}")
    if problems:
        raise ConfigError(f"the weights under {source_prefix!r} do not fit {target_prefix!r} of the new model: "
                          + "; ".join(problems), where, "init")
    with torch.no_grad():
        for key, value in taken.items():
            own[key].copy_(value)
    return len(taken)


def init_from_run(loaded: Any, method: nn.Module, log: Any = print) -> int:
    """Apply the run's ``init`` section to ``method``: ``init.from_run``, then each run of ``init.also`` (nothing when
    neither is set); returns the number of tensors copied. All or nothing over every source: on any problem the
    weights are put back as they were before the first copy."""
    init = loaded.cfg.init
    sources = [("init", init)] if init.from_run is not None else []
    sources += [(f"init.also.{i}", source) for i, source in enumerate(init.also)]
    if not sources:
        return 0
    before = {k: v.clone() for k, v in method.state_dict().items()}
    filled: dict[str, str] = {}
    total = 0
    try:
        for key, source in sources:
            count, targets = _load_source(loaded, method, key, source, log)
            twice = sorted(t for t in targets if t in filled)
            if twice:
                raise loaded.error(f"{_listed(twice)} already came from {filled[twice[0]]}; each target key may "
                                   "come from one run only", f"{key}.target_prefix")
            filled.update({t: key for t in targets})
            total += count
    except BaseException:
        method.load_state_dict(before)
        raise
    return total


def _load_source(loaded: Any, method: nn.Module, key: str, source: Any, log: Any) -> tuple[int, list[str]]:
    """One source of ``init`` (``key``: ``init`` or ``init.also.N``) into ``method``: the count and the keys it
    filled."""
    from skelact.errors import RunError
    from skelact.engine.runs import checked_run_dir, run_checkpoint_path

    try:
        run = checked_run_dir(source.from_run).resolve()
        path = run_checkpoint_path(run, source.checkpoint)
    except RunError as e:
        raise loaded.error(f"{e.message} ({e.path})", f"{key}.from_run") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one user-facing line
        raise RunError(f"unreadable checkpoint ({type(e).__name__})", path) from None
    weights = {k[len(CHECKPOINT_PREFIX):]: v for k, v in state.items() if k.startswith(CHECKPOINT_PREFIX)}
    try:
        count = load_by_prefix(method, weights, source.source_prefix, source.target_prefix, str(path))
    except ConfigError as e:
        field = f"{key}.from_run" if e.field == "init" else e.field.replace("init.", f"{key}.", 1)
        raise loaded.error(f"{e.message} (from {path})", field) from None
    log(f"init: {count} tensors {source.source_prefix!r} of {path} -> {source.target_prefix!r}")
    targets = [source.target_prefix + k[len(source.source_prefix):] for k in weights
               if k.startswith(source.source_prefix)]
    return count, targets
