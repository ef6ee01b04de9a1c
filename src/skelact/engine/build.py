"""From a checked config to the objects a run needs: the store, the two datasets, the model and the method.

The model's data-dependent arguments come from the store, never from the user retyping them: ``num_classes`` (the
store's classes), ``layout`` (the store's joint layout, which the model builds its graph from), ``in_channels``
(coordinates per joint) and ``num_persons`` (``data.num_persons``). A config may still name them, e.g.
``model.layout: ntu25`` to insist on a graph; a disagreement with the data is then one clear error instead of a
shape mismatch deep inside a convolution.
"""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Any, Callable

import numpy as np

from skelact.config import LoadedConfig, check_model_arguments, to_container
from skelact.errors import ConfigError, LayoutError, SkelactError

#: model type -> "module:Class"; a config may also give "package.module:Class" directly
MODELS: dict[str, str] = {
    "ctrgcn": "skelact.models.ctrgcn:CTRGCN",
    "stgcn": "skelact.models.stgcn:STGCN",
}

#: constructor arguments the engine fills in from the data
INJECTED = ("num_classes", "layout", "in_channels", "num_persons")


def model_class(loaded: LoadedConfig) -> type:
    name = loaded.cfg.model.type
    target = MODELS.get(name, name)
    module_name, sep, class_name = target.partition(":")
    if not sep or not module_name or not class_name:
        raise loaded.error(f"unknown model {name!r}; known models: {', '.join(MODELS)} "
                           "(or give package.module:Class)", "model.type")
    try:
        module = import_module(module_name)
    except ImportError as e:
        raise loaded.error(f"cannot import the module of model {name!r} ({e})", "model.type") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise loaded.error(f"{module_name} has no class {class_name!r}", "model.type")
    return cls


def _accepted_arguments(cls: type) -> list[str]:
    params = inspect.signature(cls).parameters
    return [p for p, d in params.items()
            if p != "self" and d.kind in (d.POSITIONAL_OR_KEYWORD, d.KEYWORD_ONLY)]


def same_layout(a: Any, b: Any) -> bool:
    """Two layouts describe the same skeleton graph (joint count, tree and centre; names may differ)."""
    return a.num_joints == b.num_joints and tuple(a.parents) == tuple(b.parents) and a.center == b.center


def build_model(loaded: LoadedConfig, store: Any):
    """The model of ``loaded.cfg.model``, with the data-dependent arguments taken from ``store``."""
    from skelact.skeleton.layout import get_layout

    cls = model_class(loaded)
    accepted = _accepted_arguments(cls)
    check_model_arguments(loaded, accepted, cls.__name__, injected=INJECTED)
    spec = to_container(loaded.cfg.model)
    spec.pop("type")
    cfg = loaded.cfg

    store_layout = store.layout
    if spec.get("layout") is not None:
        try:
            wanted = get_layout(spec["layout"])
        except LayoutError as e:
            raise loaded.error(e.message, "model.layout") from None
        if not same_layout(wanted, store_layout):
            raise LayoutError(
                f"the model's graph is built on layout {wanted.name!r} ({wanted.num_joints} joints) but the "
                f"store {store.path} has layout {store_layout.name!r} ({store_layout.num_joints} joints); "
                "use a dataset with that layout or drop model.layout to build the graph from the data",
                loaded.source_of("model.layout"), "model.layout")
    data_values = {"num_classes": store.num_classes, "in_channels": store.coords,
                   "num_persons": int(cfg.data.num_persons)}
    for key, value in data_values.items():
        given = spec.get(key)
        if given is not None and given != value:
            where = "data.num_persons" if key == "num_persons" else f"the store {store.path}"
            raise loaded.error(f"is {given!r} but {where} gives {value!r}; leave it out to use the data's value",
                               f"model.{key}")
    if "layout" in accepted:
        spec["layout"] = store_layout
    for key, value in data_values.items():
        if key in accepted:
            spec[key] = value
    try:
        return cls(**spec)
    except SkelactError as e:
        field = f"model.{e.field}" if e.field else "model"
        raise ConfigError(e.message, loaded.source_of(field), field) from None
    except TypeError as e:
        raise ConfigError(f"{cls.__name__}: {e}", loaded.source_of("model.type"), "model") from None


def open_dataset_store(loaded: LoadedConfig, progress: bool = True, log: Callable[[str], None] = print):
    """The run's store: ``data.store`` when given, else the cached store of ``data.format`` + ``data.source``."""
    from skelact.data.cache import open_or_prepare, open_store

    d = loaded.cfg.data
    if d.store is not None:
        return open_store(d.store)
    return open_or_prepare(d.format, d.source, to_container(d.options), progress=progress, log=log)


def subset_indices(loaded: LoadedConfig, store: Any, which: str) -> np.ndarray:
    """Store indices of the training (``which='train'``) or test subset, thinned by ``data.max_*_samples``."""
    from skelact.data.dataset import evenly_spaced
    from skelact.errors import StoreError

    d = loaded.cfg.data
    subset = d.train_subset if which == "train" else d.test_subset
    try:
        indices = store.split(d.split, subset)
    except StoreError as e:
        key = "data.split" if e.field == "split" else f"data.{which}_subset"
        raise loaded.error(f"{e.message} (store {store.path})", key) from None
    if indices.size == 0:
        raise loaded.error(f"subset {subset!r} of split {d.split!r} is empty in {store.path}",
                           f"data.{which}_subset")
    limit = d.max_train_samples if which == "train" else d.max_test_samples
    return evenly_spaced(indices, limit)


def build_pipeline_of(loaded: LoadedConfig, which: str):
    """The per-sample pipeline of ``which`` ('train' or 'test'), with ``ToModality(data.modality)`` appended."""
    from skelact.data.transforms import Compose

    d = loaded.cfg.data
    key = f"data.{which}_pipeline"
    specs = list(to_container(d[f"{which}_pipeline"]))
    specs.append({"type": "ToModality", "name": d.modality})
    try:
        return Compose(specs)
    except ConfigError as e:
        field = f"{key}.{e.field}" if e.field else key
        raise ConfigError(e.message, loaded.source_of(key), field) from None


def build_dataset(loaded: LoadedConfig, store: Any, which: str):
    from skelact.data.dataset import SkeletonDataset

    return SkeletonDataset(store, subset_indices(loaded, store, which), build_pipeline_of(loaded, which),
                           num_persons=loaded.cfg.data.num_persons, seed=loaded.cfg.seed)


def build_method(loaded: LoadedConfig, model: Any):
    """The method of ``loaded.cfg.method.type`` around ``model``. A method may own training-only modules (FR-Head's
    heads): they are part of the method's parameters and state dict, while ``method(x)`` stays the model's logits."""
    from skelact.config import PRETRAINING_METHOD_TYPES

    if loaded.cfg.method.type in PRETRAINING_METHOD_TYPES:
        raise loaded.error(f"{loaded.cfg.method.type} is a self-supervised pre-training method: run it with "
                           "`skelact pretrain` (skelact.engine.ssl_commands), not `skelact train`", "method.type")
    if loaded.cfg.method.type == "frhead":
        from skelact.methods.frhead import build_frhead_method

        return build_frhead_method(loaded, model)
    from skelact.methods.supervised import SupervisedMethod

    return SupervisedMethod(model, label_smoothing=loaded.cfg.method.label_smoothing)
