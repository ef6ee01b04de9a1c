"""``skelact pretrain`` and ``skelact evaluate``: self-supervised pre-training and the protocols that judge it.

:func:`pretrain_command` trains SkeletonCLR or CrosSCLR (``method.type``; :mod:`skelact.methods.skeletonclr`,
:mod:`skelact.methods.crossclr`) on the engine of ``skelact train``: the same Lightning trainer
(:func:`~skelact.engine.trainer.build_trainer`: checkpoints, CSV/TensorBoard logs, devices, precision), the same
:class:`~skelact.engine.module.SkeletonLitModule` (SGD, the per-epoch learning-rate schedule, NaN guard, RNG
state in checkpoints) and the same run directory. Every sample is drawn twice (query and key augmentation) in
every view (:class:`~skelact.data.multiview.MultiViewDataset`). There is no labelled validation in pre-training
(``trainer.check_val_every_n_epoch`` must be 0); ``checkpoints/last.ckpt`` holds the query and key encoders, the
projectors and the queues, so ``--resume`` continues exactly where the run stopped.

:func:`evaluate_command` runs one protocol (:mod:`skelact.methods.protocols`: ``linear``, ``knn``, ``finetune``,
``semi``) on the encoder of a finished run: a pre-training run, or a supervised ``skelact train`` run (its
backbone), or, with ``init='random'``, the same encoder randomly initialised (the baseline). The protocol's run is
an experiment of its own: its config is the source run's, with the protocol's recipe (``protocols.<name>`` of the
source config over :data:`~skelact.methods.protocols.DEFAULT_RECIPES`) and the command-line ``key=value``
overrides merged over it, saved as its ``config.yaml``; ``protocol.json`` records the source and the options. It
writes ``metrics.json`` in the supervised format (``top1``, ``top5``, ``mean_class_acc``, ``epoch``,
``num_test_samples``, ...), the per-sample scores and the evaluation report, and ``features_<tsne|pca>.png``, the
frozen encoder's test embeddings coloured by class. Training protocols resume with ``resume=<its run>``.

The command line is ``skelact pretrain`` and ``skelact evaluate`` (:mod:`skelact.cli`); evaluate's options
(``--k``, ``--label-fraction``, ``--view``, ``--init``, ``--plot``, ``--checkpoint``, ...) are the fields of
:class:`~skelact.methods.protocols.ProtocolOptions`.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from skelact.config import COMMAND_LINE, LoadedConfig, load_config, merge_layer, parse_overrides, to_container
from skelact.engine import require_lightning
from skelact.engine.runs import (CONFIG_FILE, RunLog, _checked_run_dir, _checkpoint_path, _fit,
                                 _is_launched_child, _lit_module, _resume_checkpoint, _run_directory,
                                 _schedule_and_lr, _start, disk_full_as_error, evaluation_output_size,
                                 hold_run_dir)
from skelact.engine.errors import RunError
from skelact.engine.threads import use_threads
from skelact.errors import ConfigError, DataError, SkelactError

PROTOCOL_FILE = "protocol.json"
#: offset added to the run's seed for the classifier heads' generator
HEAD_SEED_OFFSET = 6151
#: the share of one epoch's keys suggested as queue size when the configured one is too large: the reference's
#: NTU-60 ratio, 32768 negatives for 40,091 (x-sub) / 37,646 (x-view) training samples
SUGGESTED_QUEUE_SHARE = 0.8


# ----------------------------------------------------------------------------------------------------------------
# shared pieces


def _pipeline(loaded: LoadedConfig, which: str):
    """``data.<which>_pipeline`` as a Compose, without a modality (views are added by the multi-view dataset)."""
    from skelact.data.transforms import Compose

    key = f"data.{which}_pipeline"
    try:
        return Compose(list(to_container(loaded.cfg.data[f"{which}_pipeline"])))
    except ConfigError as e:
        field = f"{key}.{e.field}" if e.field else key
        raise ConfigError(e.message, loaded.source_of(key), field) from None


def _data_module(loaded: LoadedConfig, train_set: Any, test_set: Any):
    from skelact.data.multiview import MultiViewCollate
    from skelact.engine.datamodule import SkeletonDataModule
    from skelact.methods.protocols import EmbeddingDataset, collate_embeddings

    d = loaded.cfg.data
    stored = isinstance(train_set if train_set is not None else test_set, EmbeddingDataset)
    # stored embeddings are in memory already: worker processes would only add start-up time
    data = SkeletonDataModule(train_set, test_set, batch_size=d.batch_size, test_batch_size=d.test_batch_size,
                              num_workers=0 if stored else d.num_workers, seed=loaded.cfg.seed,
                              drop_last=d.drop_last, num_frames=d.num_frames)
    data.collate = collate_embeddings if stored else MultiViewCollate(d.num_frames)
    return data


def _load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one user-facing line
        raise RunError(f"unreadable checkpoint ({type(e).__name__})", path) from None


def _method_epoch_callback(log: RunLog):
    import lightning as L

    class MethodEpoch(L.Callback):
        """Hands the epoch to methods whose loss depends on it (CrosSCLR's phases) before each epoch."""

        def __init__(self):
            self._phase: Any = None

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            method = pl_module.method
            if hasattr(method, "set_epoch"):
                method.set_epoch(trainer.current_epoch)
                phase = getattr(method, "cross_phase", None)
                if phase is not None and phase != self._phase and trainer.is_global_zero:
                    what = "cross-view knowledge mining" if phase else "single-view contrastive learning"
                    log(f"epoch {trainer.current_epoch + 1}: {what}")
                self._phase = phase

    return MethodEpoch()


# ----------------------------------------------------------------------------------------------------------------
# pretrain


def method_views(loaded: LoadedConfig) -> list[str]:
    """The views (modalities) whose encoders a run of ``loaded`` trains (the method table's ``views``: CrosSCLR's
    ``method.crossclr.views``, else ``data.modality``)."""
    from skelact.engine.build import method_views as views_of

    return views_of(loaded)


def pretrain_command(config_path: str | PathLike | None, overrides: Sequence[str] = (),
                     run_dir: str | PathLike | None = None, resume: str | PathLike | None = None, *,
                     callbacks: Sequence[Any] = ()) -> Path:
    """Pre-train the experiment ``config_path`` (``method.type: skeletonclr`` or ``crossclr``) with ``key=value``
    ``overrides``; returns the run directory.

    ``run_dir`` and ``resume`` as in :func:`~skelact.engine.commands.train_command`: a resumed run continues from
    its ``checkpoints/last.ckpt`` (weights, key encoders, queues, optimizer, epoch) with its own ``config.yaml``.
    The queue size is checked against the keys one epoch enqueues (``method.skeletonclr.queue_size``).
    """
    require_lightning()
    import lightning as L

    from skelact.engine.build import build_method, method_spec, open_dataset_store, subset_indices
    from skelact.engine.trainer import build_trainer
    from skelact.methods.registry import SELF_SUPERVISED

    child = _is_launched_child()
    resume_ckpt = None
    if resume is not None:
        if config_path is not None:
            raise ConfigError("give either a config file or a run to resume, not both (a resumed run uses its "
                              "own config.yaml; change it with key=value overrides)", field="--resume")
        out, resume_ckpt = _resume_checkpoint(resume, run_dir)
        loaded = load_config(out / CONFIG_FILE, overrides)
    else:
        if config_path is None:
            raise ConfigError("no config file given", field="CONFIG")
        loaded = load_config(config_path, overrides)
        out = _run_directory(str(loaded.cfg.experiment), run_dir, child).resolve()
    cfg = loaded.cfg
    spec = method_spec(loaded, SELF_SUPERVISED)
    if cfg.trainer.check_val_every_n_epoch != 0:
        raise loaded.error("pre-training has no labelled validation: set it to 0 and judge the encoder with "
                           "`skelact evaluate` afterwards", "trainer.check_val_every_n_epoch")
    views = method_views(loaded)
    check_protocol_recipes(loaded)
    with hold_run_dir(out, child):
        log = _start(loaded, out, child, resume_ckpt, overrides)

        from skelact.data.multiview import MultiViewDataset

        L.seed_everything(cfg.seed, workers=True, verbose=False)
        store = open_dataset_store(loaded, progress=cfg.trainer.progress_bar and not child, log=log)
        train_set = MultiViewDataset(store, subset_indices(loaded, store, "train"), _pipeline(loaded, "train"), views,
                                     draws=spec.draws, num_persons=cfg.data.num_persons, seed=cfg.seed)
        method = build_method(loaded, store=store, kind=SELF_SUPERVISED)

        trainer = build_trainer(cfg, out, callbacks=[_method_epoch_callback(log), *callbacks])
        world = int(trainer.num_devices) * int(trainer.num_nodes)
        schedule, batches, global_batch = _schedule_and_lr(loaded, len(train_set), world, log)
        queue = getattr(next(iter(method.views.values())), "queue", None)  # contrastive methods only
        if queue is not None:
            check_queue_size(loaded, queue.size, batches, global_batch)
        encoder = next(iter(method.views.values())).encoder
        log(f"data {store.path}: train {len(train_set)} ({cfg.data.split}/{cfg.data.train_subset}) x {spec.draws} "
            f"augmentations, "
            f"views {', '.join(views)}, layout {store.layout.name}")
        log(f"{cfg.method.type}: {len(views)} encoder(s) {type(encoder).__name__} of "
            f"{sum(p.numel() for p in encoder.parameters()):,} parameters"
            f"{f', queue {queue.size}' if queue is not None else ''}; {world} process(es), precision {cfg.trainer.precision}, "
            f"{cfg.epochs} epochs of {batches} steps")
        module = _lit_module(loaded, method, schedule, store.num_classes, out)
        data = _data_module(loaded, train_set, None)
        with use_threads(loaded.cfg.trainer.threads, int(trainer.num_devices), log):
            started = time.perf_counter()
            _fit(trainer, module, data, out, resume_ckpt, child, log,
                 resume_hint=f"skelact pretrain --resume {out}")
        if trainer.is_global_zero:
            log(f"pre-training reached epoch {trainer.current_epoch} of {cfg.epochs} "
                f"({time.perf_counter() - started:.1f} s in this process); judge it with: skelact evaluate "
                f"linear|knn|finetune|semi {out}")
        return out


def check_queue_size(loaded: LoadedConfig, queue_size: int, batches: int, global_batch: int) -> None:
    """The queue must not hold more keys than one epoch enqueues: beyond that it keeps several keys of the same
    samples, so every query meets stale copies of its own key among its negatives (false negatives by
    construction), and on a small dataset the random initial rows would linger for epochs."""
    per_epoch = batches * global_batch
    if queue_size > per_epoch:
        share = max(global_batch, int(SUGGESTED_QUEUE_SHARE * per_epoch) // global_batch * global_batch)
        raise loaded.error(
            f"{queue_size} exceeds the {per_epoch} keys one epoch enqueues ({batches} steps x global batch "
            f"{global_batch}); a larger queue repeats samples among the negatives. Choose at most {per_epoch}, e.g. "
            f"{share} (about {SUGGESTED_QUEUE_SHARE:.0%} of an epoch, the reference's NTU-60 ratio)",
            "method.skeletonclr.queue_size")


# ----------------------------------------------------------------------------------------------------------------
# evaluate


def _protocol_recipe(src: LoadedConfig, protocol: str):
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
        layer, opts = _protocol_recipe(loaded, protocol)
        _derive_config(loaded, protocol, layer, opts, ())


def _with_options(opts: Any, protocol: str, options: dict[str, Any]):
    from skelact.methods.protocols import OPTION_KEYS, ProtocolOptions, check_options
    from skelact.methods.skeletonclr import settings_from_dict

    unknown = [k for k in options if k not in OPTION_KEYS]
    if unknown:
        raise ConfigError(f"unknown option; evaluate accepts: {', '.join(OPTION_KEYS)}", COMMAND_LINE, unknown[0])
    merged = settings_from_dict({**asdict(opts), **options}, ProtocolOptions, f"protocols.{protocol}", COMMAND_LINE)
    check_options(merged, protocol, COMMAND_LINE)
    return merged


def _experiment_name(src: LoadedConfig, protocol: str, opts: Any) -> str:
    name = f"{src.cfg.experiment}-{protocol}"
    if protocol == "semi":
        name += f"{100 * opts.label_fraction:g}pct"
    if opts.init == "random":
        name += "-random"
    return name


def _derive_config(src: LoadedConfig, protocol: str, layer: dict[str, Any], opts: Any,
                   overrides: Sequence[str]) -> LoadedConfig:
    """The protocol run's config: the source's, the recipe's experiment keys, then the overrides."""
    layer = dict(layer)
    if not opts.augment:
        data = dict(layer.get("data", {}))
        data["train_pipeline"] = list(to_container(src.cfg.data.test_pipeline))
        layer["data"] = data
    layer["experiment"] = _experiment_name(src, protocol, opts)
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


def evaluate_command(protocol: str, pretrain_run: str | PathLike | None, overrides: Sequence[str] = (),
                     run_dir: str | PathLike | None = None, *, resume: str | PathLike | None = None,
                     callbacks: Sequence[Any] = (), **options: Any) -> dict[str, Any]:
    """Run ``protocol`` (``linear``, ``knn``, ``finetune`` or ``semi``) on the encoder of ``pretrain_run``; returns
    the metrics dict written to ``metrics.json`` (``{}`` in a data-parallel child process).

    ``overrides``: ``key=value`` changes of the protocol run's experiment config (``epochs=50``,
    ``optimizer.lr=1.0``, ``data.batch_size=64``). ``options``: :class:`~skelact.methods.protocols.ProtocolOptions`
    fields (``k``, ``temperature``, ``label_fraction``, ``label_seed``, ``view``, ``augment``, ``plot``,
    ``checkpoint``, ``init``). ``run_dir``: where to write (default ``runs/<source experiment>-<protocol>-<time>``).
    ``resume``: a protocol run to continue from its last checkpoint (``pretrain_run`` is then read from its
    ``protocol.json``).
    """
    from skelact.methods.protocols import PROTOCOLS

    require_lightning()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}",
                          field="protocol")
    child = _is_launched_child()
    resume_ckpt = None
    if resume is not None:
        if protocol == "knn":
            raise ConfigError("kNN trains nothing and has nothing to resume; run it again", field="--resume")
        out, resume_ckpt = _resume_checkpoint(resume, run_dir)
        record = _read_protocol_record(out)
        if record["protocol"] != protocol:
            raise RunError(f"is a {record['protocol']} run, not {protocol}", out / PROTOCOL_FILE)
        if options:
            raise ConfigError("a resumed protocol keeps its options; change the experiment with key=value",
                              field=sorted(options)[0])
        src = load_config(Path(record["source_run"]) / CONFIG_FILE)
        _, opts = _protocol_recipe(src, protocol)
        opts = _with_options(opts, protocol, dict(record["options"]))
        loaded = load_config(out / CONFIG_FILE, overrides)
        source_dir = Path(record["source_run"])
    else:
        if pretrain_run is None:
            raise ConfigError("no run given to take the encoder from", field="RUN")
        source_dir = _checked_run_dir(pretrain_run).resolve()
        src = load_config(source_dir / CONFIG_FILE)
        layer, opts = _protocol_recipe(src, protocol)
        opts = _with_options(opts, protocol, options)
        loaded = _derive_config(src, protocol, layer, opts, overrides)
        out = _run_directory(str(loaded.cfg.experiment), run_dir, child).resolve()
    record = {"protocol": protocol, "source_run": str(source_dir), "source_method": src.cfg.method.type,
              "views": _protocol_views(src, source_dir, opts), "options": asdict(opts)}
    # read the encoder's checkpoint before the run directory is written: an unreadable one leaves nothing behind
    source_ckpt = None if opts.init == "random" else _checkpoint_path(source_dir, opts.checkpoint)
    source_checkpoint = None if source_ckpt is None else _load_checkpoint(source_ckpt)
    with hold_run_dir(out, child):
        log = _start(loaded, out, child, resume_ckpt, overrides,
                     extra_files=None if resume is not None else {PROTOCOL_FILE: json.dumps(record, indent=2) + "\n"})
        return _run_protocol(protocol, loaded, src, source_dir, opts, out, resume_ckpt, child, log, callbacks,
                             (source_ckpt, source_checkpoint))


def _read_protocol_record(run: Path) -> dict[str, Any]:
    path = run / PROTOCOL_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        for key in ("protocol", "source_run", "options"):
            record[key]
        return record
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError(f"not a protocol run (no readable {PROTOCOL_FILE})", path) from None


def _encoders(loaded: LoadedConfig, src: LoadedConfig, source_dir: Path, store: Any, views: list[str], opts: Any,
              log: RunLog, source: tuple[Path | None, dict[str, Any] | None]) -> tuple[dict[str, Any], int]:
    """One backbone per view, with the weights of ``source`` (the source run's checkpoint path and its loaded
    contents) unless ``init='random'``; and the source epochs."""
    from skelact.engine.build import build_model
    from skelact.methods.protocols import encoder_prefix, load_encoder_weights

    encoders = {view: build_model(loaded, store) for view in views}
    if opts.init == "random":
        log(f"encoders {', '.join(views)}: random initialisation (the baseline), architecture of {source_dir}")
        return encoders, 0
    ckpt, checkpoint = source
    state = checkpoint.get("state_dict", {})
    # a fine-tuned protocol run (e.g. init=random: the supervised encoder of the same architecture) is a source too
    from_protocol = (source_dir / PROTOCOL_FILE).is_file()
    for view, encoder in encoders.items():
        prefix = f"method.encoders.{view}." if from_protocol else encoder_prefix(src.cfg.method.type, view)
        try:
            count = load_encoder_weights(encoder, state, prefix, str(ckpt))
        except DataError as e:
            raise RunError(e.message, ckpt) from None
        log(f"encoder {view}: {count} tensors from {ckpt} (epoch {int(checkpoint.get('epoch', -1)) + 1})")
    return encoders, int(checkpoint.get("epoch", -1)) + 1


def _source_views(src: LoadedConfig, source_dir: Path) -> list[str]:
    """The views a source run has encoders for: a protocol run's own, else its method's."""
    if (source_dir / PROTOCOL_FILE).is_file():
        return list(_read_protocol_record(source_dir).get("views") or method_views(src))
    return method_views(src)


def _protocol_views(src: LoadedConfig, source_dir: Path, opts: Any) -> list[str]:
    from skelact.data.transforms import modality_name

    views = _source_views(src, source_dir)
    if opts.view == "all":
        return views
    try:
        view = modality_name(opts.view)
    except ConfigError:
        view = opts.view
    if view not in views:
        raise ConfigError(f"the source run has views {', '.join(views)} (or 'all'), not {opts.view!r}",
                          COMMAND_LINE, "view")
    return [view]


def _predict(loaded: LoadedConfig, method: Any, dataset: Any, num_classes: int) -> np.ndarray:
    """``method(batch['x'])`` for every sample of ``dataset``, in dataset order, through the engine's single-device
    prediction loop."""
    import torch

    from skelact.engine.optim import LRSchedule
    from skelact.engine.trainer import build_eval_trainer

    module = _lit_module(loaded, method, LRSchedule(base_lr=loaded.cfg.optimizer.lr, epochs=1), num_classes, None)
    outputs = build_eval_trainer(loaded.cfg).predict(module, datamodule=_data_module(loaded, None, dataset))
    values = torch.cat([o["logits"] for o in outputs]).cpu().numpy().astype(np.float32)
    index = torch.cat([o["index"] for o in outputs]).cpu().numpy()
    ordered = np.empty_like(values)
    ordered[index] = values
    return ordered


def _estimate_batch_norm_statistics(loaded: LoadedConfig, encoders: dict[str, Any], dataset: Any) -> int:
    from skelact.methods.protocols import estimate_batch_norm_statistics

    # the engine's ordered single-process loader, as _predict uses (its batch size, workers and collate)
    loader = _data_module(loaded, None, dataset).predict_dataloader()
    return estimate_batch_norm_statistics(encoders, (batch["x"] for batch in loader))


def _plot_features(out: Path, features: np.ndarray, labels: np.ndarray, class_names: Any, how: str, seed: int,
                   title: str, log: RunLog) -> Path | None:
    if how == "none":
        return None
    if how == "auto":
        try:
            import sklearn.manifold  # noqa: F401

            how = "tsne"
        except ImportError:
            how = "pca"
    try:
        from skelact.evaluation.plots import save_feature_scatter

        path = save_feature_scatter(features, labels, out / f"features_{how}.png", class_names, method=how,
                                    rng=np.random.default_rng(seed), title=title)
    except SkelactError as e:
        if e.field not in ("matplotlib", "scikit-learn"):
            raise
        log(f"feature plot not written: {e.message}")
        return None
    log(f"wrote {path} ({how.upper()} of the frozen encoder's test embeddings)")
    return path


def _run_protocol(protocol: str, loaded: LoadedConfig, src: LoadedConfig, source_dir: Path, opts: Any, out: Path,
                  resume_ckpt: Path | None, child: bool, log: RunLog, callbacks: Sequence[Any],
                  source: tuple[Path | None, dict[str, Any] | None]) -> dict[str, Any]:
    import lightning as L
    import torch

    from skelact.data.multiview import MultiViewDataset
    from skelact.engine.build import open_dataset_store, subset_indices
    from skelact.engine.trainer import build_trainer
    from skelact.evaluation.report import write_report
    from skelact.evaluation.run_scores import save_run_scores
    from skelact.methods.protocols import (EmbeddingDataset, EmbeddingOf, EncoderClassifier, RawFeaturesOf,
                                           balanced_label_subset, knn_scores)
    from skelact.methods.skeletonclr import encoder_width

    cfg = loaded.cfg
    views = _protocol_views(src, source_dir, opts)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    store = open_dataset_store(loaded, progress=cfg.trainer.progress_bar and not child, log=log)
    num_classes = store.num_classes

    def dataset(indices: np.ndarray, which: str) -> MultiViewDataset:
        return MultiViewDataset(store, indices, _pipeline(loaded, which), views, draws=1,
                                num_persons=cfg.data.num_persons, seed=cfg.seed)

    train_indices = subset_indices(loaded, store, "train")
    train_labels_all = np.asarray(store.labels, dtype=np.int64)[train_indices]
    if protocol == "semi":
        seed = cfg.seed if opts.label_seed is None else opts.label_seed
        picks = balanced_label_subset(train_labels_all, opts.label_fraction, np.random.default_rng(seed))
        train_indices = train_indices[picks]
        log(f"semi-supervised: {train_indices.size} of {train_labels_all.size} training labels "
            f"({100 * opts.label_fraction:g} % of each class, at least one; label seed {seed})")
    test_set = dataset(subset_indices(loaded, store, "test"), "test")
    encoders, source_epoch = _encoders(loaded, src, source_dir, store, views, opts, log, source)
    frozen = protocol in ("linear", "knn")
    if opts.init == "random" and frozen:
        seen = _estimate_batch_norm_statistics(loaded, encoders, dataset(train_indices, "test"))
        log(f"encoders {', '.join(views)}: batch-norm statistics estimated on the {seen} training clips (test "
            f"pipeline); the weights stay random")
    generator = torch.Generator().manual_seed(int(cfg.seed) + HEAD_SEED_OFFSET)
    classifier = EncoderClassifier(encoders, num_classes, frozen=frozen, generator=generator)

    extra: dict[str, Any] = {"protocol": protocol, "source_run": str(source_dir), "source_method":
                             src.cfg.method.type, "source_epoch": source_epoch, "init": opts.init,
                             "views": views, "experiment": cfg.experiment, "split": cfg.data.split,
                             "subset": cfg.data.test_subset, "num_train_samples": int(train_indices.size)}
    def frozen_embeddings(data: Any) -> np.ndarray | None:
        # the frozen encoder's test embeddings for the plot and kNN (taken before any fine-tuning moves it)
        return None if child else _predict(loaded, EmbeddingOf(classifier), data, num_classes)

    def stored_embeddings(data: MultiViewDataset) -> EmbeddingDataset:
        raw = _predict(loaded, RawFeaturesOf(classifier), data, num_classes)
        return EmbeddingDataset(raw, {v: encoder_width(classifier.encoders[v]) for v in views}, data.labels,
                                data.names)

    if protocol == "knn":
        frozen_test = frozen_embeddings(test_set)
        train_features = _predict(loaded, EmbeddingOf(classifier), dataset(train_indices, "test"), num_classes)
        scores = knn_scores(train_features, np.asarray(store.labels)[train_indices], frozen_test, num_classes, k=opts.k,
                            temperature=opts.temperature)
        extra.update(epoch=0, k=opts.k, temperature=opts.temperature)
    else:
        train_set = dataset(train_indices, "train")
        trainer = build_trainer(cfg, out, callbacks=list(callbacks))
        world = int(trainer.num_devices) * int(trainer.num_nodes)
        fit_test_set = test_set
        cached = protocol == "linear" and opts.cache_features and not opts.augment and world == 1
        if protocol == "linear":
            extra.update(cached_features=cached)
        if cached:
            started = time.perf_counter()
            train_set, fit_test_set = stored_embeddings(train_set), stored_embeddings(test_set)
            log(f"linear: the frozen encoder's embeddings of the {len(train_set)} training and {len(test_set)} test "
                f"clips computed once ({time.perf_counter() - started:.1f} s); the classifier trains on them "
                f"(cache_features=false encodes every batch instead)")
        # from the stored test embeddings when there are some: no second encoder pass over the test clips
        frozen_test = frozen_embeddings(fit_test_set)
        schedule, batches, _ = _schedule_and_lr(loaded, len(train_set), world, log)
        trainable = sum(p.numel() for p in classifier.parameters() if p.requires_grad)
        log(f"{protocol}: views {', '.join(views)}, train {len(train_set)}, test {len(test_set)}; {trainable:,} "
            f"trainable parameters; {cfg.epochs} epochs of {batches} steps")
        module = _lit_module(loaded, classifier, schedule, num_classes, out)
        data = _data_module(loaded, train_set, fit_test_set)
        resume_hint = f"skelact evaluate {protocol} --resume {out}"
        with use_threads(loaded.cfg.trainer.threads, int(trainer.num_devices), log), warnings.catch_warnings():
            # the linear protocol's encoders stay in eval mode on purpose (frozen batch-norm statistics)
            warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training")
            _fit(trainer, module, data, out, resume_ckpt, child, log, resume_hint)
        if not trainer.is_global_zero:
            return {}
        ckpt = _checkpoint_path(out, cfg.evaluate.checkpoint)
        checkpoint = _load_checkpoint(ckpt)
        module.load_state_dict(checkpoint["state_dict"])
        scores = _predict(loaded, classifier, fit_test_set, num_classes)
        extra.update(epoch=int(checkpoint.get("epoch", -1)) + 1, checkpoint=cfg.evaluate.checkpoint,
                     checkpoint_path=str(ckpt))
        if protocol == "semi":
            extra.update(label_fraction=opts.label_fraction)

    labels = test_set.labels
    with disk_full_as_error(out, evaluation_output_size(scores, labels, test_set.names)):
        save_run_scores(out, scores, labels, test_set.names)
        metrics = write_report(out, scores, labels, store.class_names, test_set.names, extra=extra)
    _plot_features(out, frozen_test, labels, store.class_names, opts.plot, cfg.seed,
                   f"{cfg.experiment}\nfrozen {'+'.join(views)} embeddings of {len(labels)} test samples", log)
    log(f"{protocol} ({', '.join(views)}, {len(labels)} test samples): top1 {metrics['top1']:.2f} %, top5 "
        f"{metrics['top5']:.2f} %, mean class {metrics['mean_class_acc']:.2f} %; wrote {out / 'metrics.json'}")
    return {**metrics, "run_dir": str(out)}
