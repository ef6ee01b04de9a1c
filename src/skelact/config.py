"""Experiment configs: YAML files composed from shared bases, overridden from the command line, checked by a schema.

A config file may start with ``_base_: [paths]`` (or one path), relative to the file that names them. Bases are
merged in order, each one after its own bases, and the file itself last; then ``key=value`` overrides from the
command line (dotted keys: ``epochs=1 optimizer.lr=0.05 trainer.devices=2``; values are read as YAML, so
``schedule.milestones=[10,20]`` is a list). Every layer is checked against :class:`ExperimentConfig` as it is
merged, so an unknown key or a value of the wrong type raises one :class:`~skelact.errors.ConfigError` naming the
file (or ``command line``) that brought it and the dotted key. The merged, resolved config is what a run saves as
``config.yaml``; loading that file back gives the same config (``_base_`` is gone by then).

Sections (see the dataclasses for every key and its default):

* ``data``: the dataset (``format``, ``source`` under the data root, or a prepared ``store``), the split and its
  subsets, the per-sample pipelines (transform specs, see :mod:`skelact.data.transforms`), the modality, person
  slots, batch sizes and loader workers;
* ``model``: ``type`` (a name of :data:`skelact.models.MODELS`: ``ctrgcn``, ``stgcn``) and the constructor's
  arguments; the ones the data decides (the model's ``DATA_ARGUMENTS``: ``num_classes``, ``layout``,
  ``num_persons``, ``in_channels``) are filled in from the data (:mod:`skelact.models.data_info`);
* ``method``: what is optimised, a name of the method table (:mod:`skelact.methods.registry`) and its settings;
* ``optimizer`` / ``schedule``: SGD, Adam or AdamW and the learning-rate schedule (:mod:`skelact.engine.optim`);
* ``init``: start the model, or a sub-module of it, from another run's weights by key prefix
  (:mod:`skelact.engine.initialise`);
* ``trainer``: devices, strategy, precision, logging (:mod:`skelact.engine.trainer`), CPU threads
  (:mod:`skelact.engine.threads`);
* ``evaluate``: which checkpoint the end-of-training test uses;
* ``protocols``: how ``skelact evaluate`` judges a pre-trained encoder (:mod:`skelact.methods.protocols`).

The schema keeps ``model`` open (its keys depend on the model type); :func:`check_model_arguments` checks them
against the model's constructor and names the file that set a bad one. ``method.type`` and ``optimizer.type`` are
checked against the method table and :data:`OPTIMIZER_TYPES`; each method's own settings are checked by the
method table's checks when a run builds it.
"""

from __future__ import annotations

from dataclasses import MISSING as _MISSING
from dataclasses import dataclass, field, fields, is_dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from skelact.errors import ConfigError

#: where a key came from when it was set on the command line
COMMAND_LINE = "command line"
BASE_KEY = "_base_"
#: ``model: {_replace_: true, ...}`` (or ``model._replace_=true``): this layer's section replaces the one composed so
#: far instead of merging into it
REPLACE_KEY = "_replace_"


# ----------------------------------------------------------------------------------------------------------------
# schema


#: the input steps of a config that places none: the modality of ``data.modality``, the keypoints as ``x``
DEFAULT_INPUT_PIPELINE = (
    {"type": "ToModality", "name": "${data.modality}"},
    {"type": "ToInputs", "inputs": {"x": "keypoints"}},
)


@dataclass
class DataConfig:
    #: reader format key (``skelact prepare FORMAT``), e.g. ``nw-ucla``
    format: Optional[str] = None
    #: the dataset's folder or file, relative to the data root (``$SKELACT_DATA``, else ``../shared/data``) or absolute
    source: Optional[str] = None
    #: reader options passed to ``prepare`` (a ``layout`` YAML path is relative to the config file that set it)
    options: Dict[str, Any] = field(default_factory=dict)
    #: an already prepared store directory, relative to the config file that set it (the current directory on the
    #: command line); when set, ``format``, ``source`` and ``options`` are cleared (:func:`settle_paths`)
    store: Optional[str] = None
    #: a split recorded in the store (``cross_view``, ``xsub``, ...) and its two subsets
    split: Optional[str] = None
    train_subset: str = "train"
    test_subset: str = "test"
    #: per-sample transform specs ``[{type: Name, ...}]`` (augmentation, normalisation, frame sampling)
    train_pipeline: List[Any] = field(default_factory=list)
    test_pipeline: List[Any] = field(default_factory=list)
    #: the steps after either pipeline, shared by training and testing: the modality step and, last, ``ToInputs``,
    #: which names the arrays the model takes (``configs/_base_/modalities/*.yaml`` place them). Pre-training
    #: methods make their views themselves (skelact.data.multiview, one ToModality per view) and skip it
    input_pipeline: List[Any] = field(default_factory=lambda: [dict(step) for step in DEFAULT_INPUT_PIPELINE])
    #: ``joint``, ``bone``, ``joint_motion`` or ``bone_motion`` (aliases ``j``, ``b``, ``jm``, ``bm``): the
    #: modality of the default ``input_pipeline``, the view of a single-view pre-training method, and the name
    #: runs and ensembles report
    modality: str = "joint"
    #: person slots M of a batch: fewer persons are zero-padded, further ones dropped (readers order by relevance)
    num_persons: int = 1
    #: pad every batch to this many frames (None: to the longest sample of the batch)
    num_frames: Optional[int] = None
    #: samples per batch on each process; the global batch is this times the number of processes
    batch_size: int = 16
    test_batch_size: int = 64
    #: drop the last incomplete training batch (CTR-GCN does)
    drop_last: bool = True
    num_workers: int = 2
    #: keep only this many samples, evenly spaced over the subset (smoke runs and tests)
    max_train_samples: Optional[int] = None
    max_test_samples: Optional[int] = None


@dataclass
class MethodConfig:
    #: a name of the method table (skelact.methods.registry.METHODS): ``supervised``, ``frhead`` (cross-entropy +
    #: FR-Head's contrastive refinement), ``skeletonclr``, ``crossclr`` (pre-training)
    type: str = "supervised"
    label_smoothing: float = 0.0
    #: FR-Head's settings (``method.type: frhead``): skelact.methods.frhead.FRHeadSettings
    frhead: Dict[str, Any] = field(default_factory=dict)
    #: SkeletonCLR's per-view settings (``skeletonclr`` and ``crossclr``): skelact.methods.skeletonclr
    #: .ContrastiveSettings
    skeletonclr: Dict[str, Any] = field(default_factory=dict)
    #: CrosSCLR's cross-view settings: skelact.methods.crossclr.CrossViewSettings
    crossclr: Dict[str, Any] = field(default_factory=dict)
    #: SkeletonMAE's masking and loss settings: skelact.methods.skeletonmae.MAESettings
    skeletonmae: Dict[str, Any] = field(default_factory=dict)


#: what ``optimizer.type`` may name (skelact.engine.optim.build_optimizer)
OPTIMIZER_TYPES = ("sgd", "adam", "adamw")


@dataclass
class OptimizerConfig:
    #: ``sgd`` (momentum SGD, the GCN papers' optimiser), ``adam`` or ``adamw`` (decoupled weight decay)
    type: str = "sgd"
    #: learning rate for a global batch of ``reference_batch_size`` samples
    lr: float = 0.1
    reference_batch_size: int = 16
    #: scale ``lr`` linearly with the global batch size (Goyal et al., 2017)
    scale_lr: bool = True
    #: SGD only
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    #: Adam / AdamW only: the decay rates of the moment estimates, and the term added to the denominator
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


@dataclass
class InitSourceConfig:
    """One more run whose weights go into the new model (``init.also``), with the keys of ``InitConfig``."""

    from_run: Optional[str] = None
    checkpoint: str = "last"
    source_prefix: str = "model."
    target_prefix: str = "model."


@dataclass
class InitConfig:
    """Start a new run's model (or part of it) from another run's weights, matched by key prefix; ``skelact train``
    applies it when a run starts (a resumed run's checkpoint already holds every weight)."""

    #: the run directory whose checkpoint gives the weights (None: no initialisation from a run)
    from_run: Optional[str] = None
    #: its ``last`` or ``best`` checkpoint
    checkpoint: str = "last"
    #: the keys taken, under the source run's method (``model.``: a supervised run's network;
    #: ``views.joint.encoder.``: a pre-training run's joint encoder); the prefix is replaced by ``target_prefix``
    source_prefix: str = "model."
    #: where they go in the new run's method (``model.``: its network; ``model.backbone.``: a sub-module of it)
    target_prefix: str = "model."
    #: more runs, each into its own part of the model (RGBPose-Conv3D: the RGB run into ``model.rgb.``, the pose
    #: run into ``model.pose.``), applied after ``from_run``; a target key given twice is an error
    also: List[InitSourceConfig] = field(default_factory=list)


@dataclass
class ScheduleConfig:
    #: ``step`` (times ``gamma`` at each milestone), ``cosine`` (to ``min_lr`` at the last epoch) or ``constant``
    type: str = "step"
    warmup_epochs: int = 0
    milestones: List[int] = field(default_factory=list)
    gamma: float = 0.1
    min_lr: float = 0.0
    #: ``epoch``: one rate per epoch, as CTR-GCN; ``step``: recomputed at every iteration
    interval: str = "epoch"


@dataclass
class TrainerConfig:
    #: ``auto``, ``cpu``, ``gpu``, ``cuda``, ``mps``
    accelerator: str = "auto"
    #: number of devices (processes per node), a list of device ids, or ``auto``
    devices: Any = 1
    num_nodes: int = 1
    #: ``auto``, ``ddp``, ``ddp_spawn``, ``ddp_find_unused_parameters_true``, ...
    strategy: str = "auto"
    #: ``32``, ``16-mixed``, ``bf16-mixed`` (or ``32-true``, ``64``), or ``auto``: bfloat16 autocast where the
    #: hardware computes in it, else float32 (:mod:`skelact.engine.precision`)
    precision: str = "32"
    #: evaluate on the test subset every this many epochs (0: only at the end)
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 50
    gradient_clip_val: Optional[float] = None
    progress_bar: bool = True
    #: training steps between two redraws of the progress bar; each redraw reads the logged metrics back, which
    #: cost the fast CPU recipe's 0.05 s steps a fifth of their time at 1 (every step)
    progress_bar_refresh: int = 1
    #: force deterministic kernels (slower on GPU; CPU kernels are deterministic anyway)
    deterministic: bool = False
    #: float32 matrix products on GPUs: ``highest`` (full fp32), ``high`` (TF32 tensor cores on Ampere and later,
    #: PyTorch's pre-1.12 default, which CTR-GCN's published runs used) or ``medium``; None keeps torch's setting
    float32_matmul_precision: Optional[str] = None
    #: let cuDNN time its convolution algorithms for each new input shape and keep the fastest (fixed-size
    #: batches); None keeps torch's setting
    cudnn_benchmark: Optional[bool] = None
    #: torch CPU threads per process; 0 = auto: $OMP_NUM_THREADS when set, else the CPUs available to the process
    #: divided by the processes of the run on this node (skelact.engine.threads); logged at the start of a run
    threads: int = 0


@dataclass
class EvaluateConfig:
    #: checkpoint the end-of-training test uses: ``last`` or ``best`` (best test top-1 during training)
    checkpoint: str = "last"


@dataclass
class ExperimentConfig:
    #: names the run directory ``runs/<experiment>-<timestamp>``; default: the config file's name
    experiment: Optional[str] = None
    seed: int = 1
    #: passes over the training subset
    epochs: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    model: Dict[str, Any] = field(default_factory=dict)
    method: MethodConfig = field(default_factory=MethodConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    init: InitConfig = field(default_factory=InitConfig)
    #: recipes of the evaluation protocols of a pre-trained encoder (``skelact evaluate``): ``{linear | knn |
    #: finetune | semi: {experiment keys to change, protocol options}}``, checked by skelact.methods.protocols
    protocols: Dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------------
# loading


@dataclass
class LoadedConfig:
    """A checked config and, for every leaf key, the file (or ``command line``) that set it last."""

    cfg: Any  # omegaconf.DictConfig with ExperimentConfig's structure
    sources: Dict[str, str]
    path: Optional[Path] = None

    def source_of(self, key: str) -> str | None:
        """Where ``key`` (dotted) or its nearest ancestor was set."""
        parts = key.split(".")
        while parts:
            hit = self.sources.get(".".join(parts))
            if hit is not None:
                return hit
            parts.pop()
        return None

    def error(self, message: str, key: str) -> ConfigError:
        """A :class:`ConfigError` about ``key`` naming the file that set it."""
        return ConfigError(message, self.source_of(key) or (str(self.path) if self.path else None), key)


def load_config(path: str | PathLike | None, overrides: Sequence[str] = ()) -> LoadedConfig:
    """Read ``path`` with its ``_base_`` files, apply ``key=value`` ``overrides`` and check the result.

    ``path`` may be None to build a config from overrides alone.
    """
    from omegaconf import OmegaConf

    layers: list[tuple[str, dict]] = []
    if path is not None:
        p = Path(path)
        _collect_layers(p, layers, stack=())
    layers.extend((COMMAND_LINE, layer) for layer in parse_overrides(overrides))

    cfg = OmegaConf.structured(ExperimentConfig)
    sources: dict[str, str] = {}
    stale = StaleModelKeys()
    for source, layer in layers:
        layer, replaced = _take_replace_marks(layer, source)
        for section in replaced:
            cfg = _reset_section(cfg, section, source)
            sources = {k: v for k, v in sources.items() if not _is_under(k, section)}
            stale.forget_under(section)
        old_type = cfg.model.get("type")
        cfg = _merge_checked(cfg, layer, source)
        stale.update(cfg, layer, source, old_type, sources)
        for key in _leaf_keys(layer):
            sources[key] = source
    stale.check(cfg)
    if cfg.experiment is None and path is not None:
        cfg.experiment = Path(path).stem
    loaded = LoadedConfig(cfg=cfg, sources=sources, path=None if path is None else Path(path))
    settle_paths(loaded)
    _check_values(loaded)
    return loaded


#: config keys that hold a path (``data.options.layout`` only when it names a .yaml/.yml file, not a built-in)
PATH_KEYS = ("data.store", "init.from_run", "data.options.layout")


def settle_paths(loaded: LoadedConfig) -> None:
    """The one rule for relative paths in configs (issue 27, item 4): a relative path is relative to the config
    file that set it (to the current directory when the command line set it); each is made absolute here, so a
    run's ``config.yaml`` says what the run used. ``data.source`` is the one exception: it names a dataset under the
    data root (``$SKELACT_DATA``). When ``data.store`` is set, ``data.format``, ``data.source`` and
    ``data.options`` are cleared: the run reads the store, and its config must not claim another dataset."""
    from omegaconf import OmegaConf

    cfg = loaded.cfg
    for key in PATH_KEYS:
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, str) or not value:
            continue
        if key == "data.options.layout" and not value.endswith((".yaml", ".yml")):
            continue  # a built-in layout's name
        given = Path(value).expanduser()
        if given.is_absolute():
            continue
        setter = loaded.source_of(key)
        base = Path(setter).parent if setter and setter != COMMAND_LINE and Path(setter).is_file() else Path.cwd()
        OmegaConf.update(cfg, key, str((base / given).resolve()), merge=False)
    for i, source in enumerate(cfg.init.also):
        # init.also's runs: relative to the file that set the list
        value = source.from_run
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            setter = loaded.source_of("init.also")
            base = Path(setter).parent if setter and setter != COMMAND_LINE and Path(setter).is_file() else Path.cwd()
            source.from_run = str((base / Path(value).expanduser()).resolve())
    if cfg.data.store is not None:
        cfg.data.format = None
        cfg.data.source = None
        cfg.data.options = {}


class StaleModelKeys:
    """``model.*`` keys set for one model type that are still there after a later layer changed ``model.type``
    (issue 27, item 7: ST-GCN over a CTR-GCN config kept ``strategy: inward_outward``, which ST-GCN also takes, and
    would have trained on the wrong partition). A key is forgiven when a layer at or after the change sets it
    again, or when ``model: {_replace_: true}`` starts the section afresh; any other is an error naming it."""

    def __init__(self) -> None:
        #: key under model -> (where it was set, the model type it was set for, where model.type changed)
        self.keys: dict[str, tuple[str, str, str]] = {}

    def update(self, cfg: Any, layer: dict, source: str, old_type: Any, sources: dict[str, str]) -> None:
        given = layer.get("model") if isinstance(layer.get("model"), dict) else {}
        new_type = cfg.model.get("type")
        if old_type and new_type != old_type:
            for key in cfg.model:
                if key != "type" and key not in given and key not in self.keys:
                    setter = next((v for k, v in sources.items() if _is_under(k, f"model.{key}")), "a base")
                    self.keys[key] = (setter, str(old_type), source)
        for key in given:
            self.keys.pop(key, None)

    def forget_under(self, section: str) -> None:
        if section == "model" or section == "":
            self.keys.clear()
        for key in [k for k in self.keys if _is_under(f"model.{k}", section)]:
            del self.keys[key]

    def check(self, cfg: Any) -> None:
        if not self.keys:
            return
        from skelact.models import MODELS

        if cfg.model.get("type") not in MODELS:
            return  # an unknown type is the first thing to fix; building the model names the known ones
        first = next(iter(self.keys))
        setter, old_type, changed = self.keys[first]
        names = ", ".join(f"model.{k}" for k in self.keys)
        raise ConfigError(
            f"set by {setter} for model {old_type!r}, but model.type is now {cfg.model.get('type')!r} (set by "
            f"{changed}); a model's settings do not carry over to another model ({names}): start the model "
            f"section afresh with model._replace_=true before model.type=... on the command line (or "
            f"'model: {{_replace_: true, type: ...}}' in a file), or set each key again", changed, f"model.{first}")


def _is_under(key: str, section: str) -> bool:
    return section == "" or key == section or key.startswith(section + ".")


def _take_replace_marks(layer: dict, source: str, prefix: str = "") -> tuple[dict, list[str]]:
    """``layer`` without its ``_replace_`` keys, and the dotted sections they marked: a mapping that says
    ``_replace_: true`` replaces the section below it instead of merging into it."""
    out: dict = {}
    marked: list[str] = []
    for key, value in layer.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if key == REPLACE_KEY:
            if value is not True and value is not False:
                raise ConfigError(f"expected true or false, got {value!r}", source, where)
            if value:
                marked.append(prefix)
        elif isinstance(value, dict):
            out[key], inner = _take_replace_marks(value, source, where)
            marked.extend(inner)
        else:
            out[key] = value
    return out, marked


def _reset_section(cfg: Any, section: str, source: str) -> Any:
    """``cfg`` with ``section`` (dotted) back to the schema's default: ``{}`` for an open mapping like ``model``."""
    from omegaconf import DictConfig, OmegaConf

    where = f"{section}.{REPLACE_KEY}" if section else REPLACE_KEY
    if not section:
        raise ConfigError("a whole config cannot be replaced; mark a section (e.g. model._replace_)", source, where)
    current = OmegaConf.select(cfg, section)
    if current is not None and not isinstance(current, DictConfig):
        raise ConfigError("only a mapping section can be replaced (a list is always replaced whole)", source, where)
    default = OmegaConf.select(OmegaConf.structured(ExperimentConfig), section)
    OmegaConf.update(cfg, section, default if isinstance(default, DictConfig) else {}, merge=False)
    return cfg


def merge_layer(loaded: LoadedConfig, layer: dict, source: str) -> LoadedConfig:
    """``loaded`` with the mapping ``layer`` merged over it, checked as a config file's layer is, its keys credited
    to ``source`` (what derived configs, such as an evaluation protocol's, are built with)."""
    cfg = _merge_checked(loaded.cfg, layer, source)
    sources = dict(loaded.sources)
    for key in _leaf_keys(layer):
        sources[key] = source
    merged = LoadedConfig(cfg=cfg, sources=sources, path=loaded.path)
    settle_paths(merged)
    _check_values(merged)
    return merged


def _collect_layers(path: Path, layers: list[tuple[str, dict]], stack: tuple[Path, ...]) -> None:
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in (*stack, resolved))
        raise ConfigError(f"_base_ files include each other ({chain})", path, BASE_KEY)
    data = read_yaml(path)
    bases = data.pop(BASE_KEY, None)
    if bases is not None:
        if isinstance(bases, str):
            bases = [bases]
        if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
            raise ConfigError("expected a path or a list of paths (relative to this file)", path, BASE_KEY)
        for b in bases:
            base_path = (path.parent / b)
            if not base_path.is_file():
                raise ConfigError(f"base config {b!r} not found (looked for {base_path})", path, BASE_KEY)
            _collect_layers(base_path, layers, (*stack, resolved))
    layers.append((str(path), data))


def read_yaml(path: str | PathLike) -> dict:
    """A YAML mapping from ``path``; one :class:`ConfigError` for a missing, unreadable or malformed file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", p) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the config file ({getattr(e, 'strerror', None) or e})", p) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise ConfigError(f"not valid YAML ({getattr(e, 'problem', None) or e})", p, where) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of keys to values, got {type(data).__name__}", p)
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"keys must be names, got {bad[0]!r}", p, str(bad[0]))
    return data


def parse_overrides(overrides: Sequence[str]) -> list[dict]:
    """``["a.b=1", "c=[1, 2]"]`` -> ``[{"a": {"b": 1}}, {"c": [1, 2]}]``; values are read as YAML."""
    layers = []
    for text in overrides:
        key, sep, raw = str(text).partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"expected key=value (dotted keys, e.g. optimizer.lr=0.05), got {text!r}",
                              COMMAND_LINE, str(text))
        if key == BASE_KEY or key.startswith(BASE_KEY + "."):
            raise ConfigError("_base_ can only be set inside a config file", COMMAND_LINE, key)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        layer: Any = value
        for part in reversed(key.split(".")):
            layer = {part: layer}
        layers.append(layer)
    return layers


def _merge_checked(cfg: Any, layer: dict, source: str) -> Any:
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    try:
        return OmegaConf.merge(cfg, layer)
    except ConfigKeyError as e:
        key = str(getattr(e, "full_key", "") or getattr(e, "key", "") or "")
        raise ConfigError(_unknown_key_message(key), source, key) from None
    except ValidationError as e:
        key = str(getattr(e, "full_key", "") or "")
        msg = str(getattr(e, "msg", e)).splitlines()[0]
        raise ConfigError(f"wrong type: {msg}", source, key or None) from None
    except OmegaConfBaseException as e:
        key = str(getattr(e, "full_key", "") or "")
        raise ConfigError(str(getattr(e, "msg", e)).splitlines()[0], source, key or None) from None
    except TypeError:
        # a mapping merged onto a list: a key=value item indexing into a list (init.also.0.from_run=...)
        key = ".".join(_leaf_keys(layer)[:1])
        raise ConfigError("a list is replaced whole, not item by item: give KEY=[...] with every item (e.g. "
                          "init.also=[{from_run: RUN, source_prefix: model.pose., target_prefix: model.pose.}])",
                          source, key or None) from None


def _unknown_key_message(full_key: str) -> str:
    """'unknown key; ... expects one of ...', listing the keys the schema allows at that level."""
    parts = full_key.split(".") if full_key else []
    node: Any = ExperimentConfig
    for part in parts[:-1]:
        hit = {f.name: f for f in fields(node)}.get(part) if is_dataclass(node) else None
        if hit is None:
            break
        default = hit.default_factory() if hit.default_factory is not _MISSING else hit.default
        node = type(default) if is_dataclass(default) else None
        if node is None:
            break
    if node is not None and is_dataclass(node):
        known = ", ".join(f.name for f in fields(node))
        where = ".".join(parts[:-1]) or "the top level"
        return f"unknown key; {where} accepts: {known}"
    return "unknown key"



def _leaf_keys(layer: Any, prefix: str = "") -> list[str]:
    if isinstance(layer, dict) and layer:
        out = []
        for k, v in layer.items():
            out.extend(_leaf_keys(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [prefix] if prefix else []


# ----------------------------------------------------------------------------------------------------------------
# value checks the type system cannot express

_PRECISIONS = ("auto", "32", "32-true", "16-mixed", "bf16-mixed", "64", "64-true", "16-true", "bf16-true")


def _check_values(loaded: LoadedConfig) -> None:
    cfg = loaded.cfg

    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise loaded.error(message, key)

    need(cfg.epochs >= 1, "epochs", f"must be at least 1, got {cfg.epochs}")
    d = cfg.data
    need(d.batch_size >= 1, "data.batch_size", f"must be at least 1, got {d.batch_size}")
    need(d.test_batch_size >= 1, "data.test_batch_size", f"must be at least 1, got {d.test_batch_size}")
    need(d.num_workers >= 0, "data.num_workers", f"must be 0 or more, got {d.num_workers}")
    need(d.num_persons >= 1, "data.num_persons", f"must be at least 1, got {d.num_persons}")
    need(d.num_frames is None or d.num_frames >= 1, "data.num_frames", f"must be at least 1, got {d.num_frames}")
    for key in ("max_train_samples", "max_test_samples"):
        v = d[key]
        need(v is None or v >= 1, f"data.{key}", f"must be at least 1 (or null for all), got {v}")
    try:
        from skelact.data.transforms import modality_name

        modality_name(d.modality)
    except ConfigError as e:
        raise loaded.error(e.message, "data.modality") from None
    from skelact.methods.registry import METHODS

    need(cfg.method.type in METHODS, "method.type", f"unknown method {cfg.method.type!r}; known: {', '.join(METHODS)}")
    need(0.0 <= cfg.method.label_smoothing < 1.0, "method.label_smoothing",
         f"must lie in [0, 1), got {cfg.method.label_smoothing}")
    o = cfg.optimizer
    need(o.type in OPTIMIZER_TYPES, "optimizer.type",
         f"unknown optimizer {o.type!r}; known: {', '.join(OPTIMIZER_TYPES)}")
    need(o.lr > 0, "optimizer.lr", f"must be positive, got {o.lr}")
    need(o.reference_batch_size >= 1, "optimizer.reference_batch_size",
         f"must be at least 1, got {o.reference_batch_size}")
    need(o.weight_decay >= 0, "optimizer.weight_decay", f"must be 0 or more, got {o.weight_decay}")
    need(0 <= o.momentum < 1, "optimizer.momentum", f"must lie in [0, 1), got {o.momentum}")
    need(o.type != "sgd" or not o.nesterov or o.momentum > 0, "optimizer.nesterov",
         "Nesterov momentum needs optimizer.momentum > 0")
    need(len(o.betas) == 2 and all(0.0 <= b < 1.0 for b in o.betas), "optimizer.betas",
         f"expected two numbers in [0, 1), got {list(o.betas)}")
    need(o.eps > 0, "optimizer.eps", f"must be positive, got {o.eps}")
    need(cfg.init.checkpoint in ("best", "last"), "init.checkpoint",
         f"must be 'best' or 'last', got {cfg.init.checkpoint!r}")
    for i, source in enumerate(cfg.init.also):
        need(source.from_run is not None, f"init.also.{i}.from_run", "names no run")
        need(source.checkpoint in ("best", "last"), f"init.also.{i}.checkpoint",
             f"must be 'best' or 'last', got {source.checkpoint!r}")
    s = cfg.schedule
    need(s.type in ("step", "cosine", "constant"), "schedule.type",
         f"unknown schedule {s.type!r}; known: step, cosine, constant")
    need(s.interval in ("epoch", "step"), "schedule.interval", f"must be 'epoch' or 'step', got {s.interval!r}")
    need(s.warmup_epochs >= 0, "schedule.warmup_epochs", f"must be 0 or more, got {s.warmup_epochs}")
    need(list(s.milestones) == sorted(s.milestones) and all(m >= 1 for m in s.milestones), "schedule.milestones",
         f"must be increasing positive epochs, got {list(s.milestones)}")
    need(s.gamma > 0, "schedule.gamma", f"must be positive, got {s.gamma}")
    t = cfg.trainer
    need(str(t.precision) in _PRECISIONS, "trainer.precision",
         f"unknown precision {t.precision!r}; expected one of {', '.join(_PRECISIONS)}")
    dev = t.devices
    from omegaconf import ListConfig

    ok_devices = (dev == "auto" or (isinstance(dev, int) and not isinstance(dev, bool) and dev >= 1)
                  or (isinstance(dev, (list, ListConfig)) and len(dev) > 0
                      and all(isinstance(i, int) and i >= 0 for i in dev)))
    need(ok_devices, "trainer.devices", f"expected a positive count, a list of device ids or 'auto', got {dev!r}")
    need(t.float32_matmul_precision in (None, "highest", "high", "medium"), "trainer.float32_matmul_precision",
         f"must be highest, high or medium, got {t.float32_matmul_precision!r}")
    need(t.num_nodes >= 1, "trainer.num_nodes", f"must be at least 1, got {t.num_nodes}")
    need(t.threads >= 0, "trainer.threads", f"must be 0 (auto) or more, got {t.threads}")
    need(t.progress_bar_refresh >= 1, "trainer.progress_bar_refresh",
         f"must be at least 1 (set trainer.progress_bar=false for no bar), got {t.progress_bar_refresh}")
    need(t.check_val_every_n_epoch >= 0, "trainer.check_val_every_n_epoch",
         f"must be 0 or more, got {t.check_val_every_n_epoch}")
    need(cfg.evaluate.checkpoint in ("best", "last"), "evaluate.checkpoint",
         f"must be 'best' or 'last', got {cfg.evaluate.checkpoint!r}")
    if not isinstance(cfg.model.get("type"), str) or not cfg.model.get("type"):
        from skelact.models import MODELS

        raise loaded.error(f"missing: the model type (one of {', '.join(MODELS)})", "model.type")
    if d.store is None:
        for key in ("format", "source"):
            need(d[key] is not None, f"data.{key}", "missing: give data.format and data.source (or data.store)")
    need(d.split is not None, "data.split", "missing: the split to train and test on (e.g. cross_view)")


def check_model_arguments(loaded: LoadedConfig, accepted: Sequence[str], model_name: str,
                          injected: Sequence[str] = ()) -> None:
    """Every ``model.*`` key (but ``type``) must be an argument of the model's constructor.

    ``injected`` lists arguments the engine fills in from the data; setting them in a config is allowed only
    where the engine checks agreement, so they are accepted here.
    """
    for key in loaded.cfg.model:
        if key == "type" or key in injected:
            continue
        if key not in accepted:
            raise loaded.error(f"{model_name} has no argument {key!r}; it accepts {', '.join(accepted)}",
                               f"model.{key}")


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML text (what a run saves as ``config.yaml``)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


def to_container(cfg: Any) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)
