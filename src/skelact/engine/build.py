"""From a checked config to the objects a run needs: the store, the two datasets, the model and the method.

Models come from the table of imported classes :data:`skelact.models.MODELS` and are built from the data with
their ``from_data(data_info, **settings)``: the data-dependent arguments (``num_classes``, the joint ``layout``,
``in_channels``, ``num_persons``, whatever the model declares) come from the store, never from the user retyping
them (:mod:`skelact.models.data_info`). Methods come from the method table (:mod:`skelact.methods.registry`): their
settings are read and checked here, from the config, and handed to their builder as a dataclass.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from skelact.config import LoadedConfig, check_model_arguments, to_container
from skelact.errors import ConfigError, LayoutError, SkelactError
from skelact.methods.registry import SELF_SUPERVISED, SUPERVISED, MethodContext, MethodSpec, get_method, method_names
from skelact.methods.settings import read_settings
from skelact.models import MODELS, DataInfo, same_layout  # noqa: F401 - same_layout: what predict compares with


def model_class(loaded: LoadedConfig) -> type:
    """The class of ``model.type`` in :data:`skelact.models.MODELS`."""
    name = loaded.cfg.model.type
    cls = MODELS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise loaded.error(f"unknown model {name!r}; known models: {', '.join(MODELS)} (skelact.models.register_model "
                           "adds one)", "model.type")
    return cls


def accepted_arguments(cls: type) -> list[str]:
    """The keyword arguments of ``cls``'s constructor (what a config's ``model`` section may set)."""
    params = inspect.signature(cls).parameters
    return [p for p, d in params.items()
            if p != "self" and d.kind in (d.POSITIONAL_OR_KEYWORD, d.KEYWORD_ONLY)]


def data_info(loaded: LoadedConfig, store: Any) -> DataInfo:
    """What the models of a run may learn about its data."""
    if not getattr(store, "has_keypoints", True):
        # a video store has no joints: an RGB model takes only the classes (a skeleton model is refused by its
        # from_data, which needs the layout)
        return DataInfo(num_classes=int(store.num_classes), layout=None, in_channels=0,
                        num_persons=int(loaded.cfg.data.num_persons), class_names=tuple(store.class_names))
    return DataInfo(num_classes=int(store.num_classes), layout=store.layout,
                    in_channels=coords_after_pipelines(loaded, int(store.coords)),
                    num_persons=int(loaded.cfg.data.num_persons), class_names=tuple(store.class_names))


def coords_after_pipelines(loaded: LoadedConfig, store_coords: int) -> int:
    """Coordinates per joint that the model receives: the store's, changed by any step that declares
    ``output_coords`` (``SelectCoords`` keeps x, y of 3D joints: a 2D model, or an encoder pre-trained on 2D poses,
    on a 3D data set). Training and test pipelines must agree."""
    found = {}
    for which in ("train", "test"):
        coords = store_coords
        for step in build_pipeline_of(loaded, which).transforms:
            output_coords = getattr(step, "output_coords", None)
            if output_coords is not None:
                coords = output_coords(coords)
        found[which] = coords
    if found["train"] != found["test"]:
        raise ConfigError(f"the training pipeline gives the model {found['train']} coordinates per joint and the "
                          f"test pipeline {found['test']}; both must select the same coordinates",
                          loaded.source_of("data.test_pipeline"), "data.test_pipeline")
    return found["test"]


def build_model(loaded: LoadedConfig, store: Any):
    """The model of ``loaded.cfg.model``, built for the data of ``store`` (``cls.from_data``)."""
    cls = model_class(loaded)
    declared = tuple(getattr(cls, "DATA_ARGUMENTS", ()))
    check_model_arguments(loaded, accepted_arguments(cls), cls.__name__, injected=declared)
    spec = to_container(loaded.cfg.model)
    spec.pop("type")
    info = data_info(loaded, store)  # its errors name data.* fields, not model.*
    try:
        return cls.from_data(info, **spec)
    except SkelactError as e:
        field = f"model.{e.field}" if e.field else "model"
        kind = LayoutError if isinstance(e, LayoutError) else ConfigError
        raise kind(e.message, loaded.source_of(field) or str(store.path), field) from None
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
    """The per-sample pipeline of ``which`` ('train' or 'test'): ``data.<which>_pipeline`` followed by
    ``data.input_pipeline`` (the modality and the model inputs)."""
    from skelact.data.transforms import Compose

    d = loaded.cfg.data
    parts = ((f"data.{which}_pipeline", list(to_container(d[f"{which}_pipeline"]))),
             ("data.input_pipeline", list(to_container(d.input_pipeline))))
    steps = []
    for key, specs in parts:
        try:
            steps.extend(Compose(specs).transforms)
        except ConfigError as e:
            field = f"{key}.{e.field}" if e.field else key
            raise ConfigError(e.message, loaded.source_of(key), field) from None
    return Compose(steps)


def build_dataset(loaded: LoadedConfig, store: Any, which: str):
    from skelact.data.dataset import SkeletonDataset

    return SkeletonDataset(store, subset_indices(loaded, store, which), build_pipeline_of(loaded, which),
                           num_persons=loaded.cfg.data.num_persons, seed=loaded.cfg.seed)


# ----------------------------------------------------------------------------------------------------------------
# methods


def method_spec(loaded: LoadedConfig, kind: str | None = None) -> MethodSpec:
    """The method table's row of ``method.type``; ``kind`` (supervised or self-supervised) is what the calling
    command runs, and a method of the other kind is one error saying which command runs it."""
    try:
        spec = get_method(loaded.cfg.method.type)
    except ConfigError as e:
        raise loaded.error(e.message, "method.type") from None
    if kind == SUPERVISED and spec.kind != SUPERVISED:
        raise loaded.error(f"{spec.name} is a self-supervised pre-training method: run it with `skelact pretrain` "
                           "(skelact.commands.pretrain), not `skelact train`", "method.type")
    if kind == SELF_SUPERVISED and spec.kind != SELF_SUPERVISED:
        raise loaded.error(f"{spec.name!r} is not a pre-training method (expected one of "
                           f"{', '.join(method_names(SELF_SUPERVISED))}); train it with `skelact train`", "method.type")
    return spec


def _method_error(loaded: LoadedConfig, e: ConfigError) -> ConfigError:
    field = e.field or "type"
    key = field if field.startswith("model.") else f"method.{field}"
    return loaded.error(e.message, key)


def method_settings_of(loaded: LoadedConfig, spec: MethodSpec | None = None) -> Any:
    """The checked settings dataclass of the run's method; errors name the file that set the key."""
    spec = spec or method_spec(loaded)
    try:
        settings = read_settings(spec.settings, to_container(loaded.cfg.method))
        spec.check(settings)
    except ConfigError as e:
        raise _method_error(loaded, e) from None
    return settings


def method_views(loaded: LoadedConfig) -> list[str]:
    """The views (modalities) whose encoders a run of ``loaded`` trains (the method table's ``views``)."""
    spec = method_spec(loaded)
    return list(spec.views(method_settings_of(loaded, spec), loaded.cfg.data.modality))


def training_clip_length(loaded: LoadedConfig) -> int | None:
    """The fixed training clip length the data config gives: ``data.num_frames``, else what the last frame sampler
    of the training pipeline produces (``UclaSample.window_size``, ``ValidCropResize.window``,
    ``UniformSample.clip_len * num_clips``); None when neither fixes it."""
    if loaded.cfg.data.num_frames is not None:
        return int(loaded.cfg.data.num_frames)
    from skelact.data.transforms import Compose

    length = None
    try:
        transforms = Compose(to_container(loaded.cfg.data.train_pipeline)).transforms
    except ConfigError as e:
        raise loaded.error(e.message, "data.train_pipeline") from None
    for transform in transforms:
        if isinstance(getattr(transform, "window_size", None), int):
            length = transform.window_size
        elif isinstance(getattr(transform, "window", None), int):
            length = transform.window
        elif isinstance(getattr(transform, "clip_len", None), int):
            length = transform.clip_len * int(getattr(transform, "num_clips", 1))
    return length


def build_method(loaded: LoadedConfig, model: Any = None, *, store: Any = None, kind: str = SUPERVISED):
    """The method of ``method.type`` (a ``kind`` method: ``skelact train`` builds supervised ones, ``skelact
    pretrain`` self-supervised ones) with its settings from the config, around ``model`` (supervised methods) or
    around new models of ``store``'s data (one per encoder). A method may own training-only modules (FR-Head's
    heads): they are part of the method's parameters and state dict, while ``method(**inputs)`` stays the model's
    logits."""
    spec = method_spec(loaded, kind)
    settings = method_settings_of(loaded, spec)
    if model is not None:
        def make_model() -> Any:
            return model
    else:
        def make_model() -> Any:
            return build_model(loaded, store)
    context = MethodContext(make_model=make_model, seed=int(loaded.cfg.seed), modality=str(loaded.cfg.data.modality),
                            clip_length=training_clip_length(loaded))
    try:
        return spec.build(settings, context)
    except ConfigError as e:
        raise _method_error(loaded, e) from None
