"""``skelact evaluate PROTOCOL RUN``: the protocols that judge an encoder.

:func:`evaluate_command` runs one protocol (:mod:`skelact.methods.protocols`: ``linear``, ``knn``, ``finetune``,
``semi``) on the encoder of a finished run: a pre-training run, or a supervised ``skelact train`` run (its
backbone), or, with ``init='random'``, the same encoder randomly initialised (the baseline). The protocol's run is
an experiment of its own: its config is the source run's, with the protocol's recipe (``protocols.<name>`` of the
source config over :data:`~skelact.methods.protocols.DEFAULT_RECIPES`) and the command-line ``key=value``
overrides merged over it, saved as its ``config.yaml``; ``protocol.json`` records the source and the options. It
writes ``metrics.json`` in the supervised format (``top1``, ``top5``, ``mean_class_acc``, ``epoch``,
``num_test_samples``, ...), the per-sample scores and the evaluation report, and ``features_<tsne|pca>.png``, the
frozen encoder's test embeddings coloured by class. Training protocols resume with ``resume=<its run>``.

The command's options
(``--k``, ``--label-fraction``, ``--view``, ``--init``, ``--plot``, ``--checkpoint``, ...) are the fields of
:class:`~skelact.methods.protocols.ProtocolOptions`.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from skelact.commands.protocol_config import (PROTOCOL_FILE, derive_config, protocol_recipe, read_protocol_record,
                                              with_options)
from skelact.commands.report_lines import metrics_line, print_outputs
from skelact.config import COMMAND_LINE, LoadedConfig, load_config
from skelact.engine import require_lightning
from skelact.engine.multiview_run import (load_checkpoint, method_views, multiview_data_module, plain_pipeline,
                                          predict_in_order)
from skelact.engine.runs import (CONFIG_FILE, RunLog, checked_run_dir, disk_full_as_error, evaluation_output_size,
                                 fit_run, hold_run_dir, is_launched_child, lit_module, resume_checkpoint,
                                 run_directory, run_checkpoint_path, schedule_and_lr, start_run)
from skelact.engine.threads import use_threads
from skelact.errors import ConfigError, DataError, RunError, SkelactError
from skelact.methods.protocols import knn_scores

#: offset added to the run's seed for the classifier heads' generator
HEAD_SEED_OFFSET = 6151

NAME = "evaluate"
HELP = "judge an encoder: linear, kNN, fine-tune or semi-supervised protocol"
DESCRIPTION = ("Run an evaluation protocol on the encoder of RUN (a pretrain run, a train run or a protocol run); "
               "writes its own run directory with metrics.json and a feature plot. key=value items change the "
               "protocol's training config.")
OVERRIDES_FIELD = "overrides"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("protocol", choices=("linear", "knn", "finetune", "semi"))
    p.add_argument("run", metavar="RUN", nargs="?", help="the run whose encoder is judged (omit with --resume)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--run-dir", default=None, metavar="DIR")
    p.add_argument("--resume", default=None, metavar="EVAL_RUN", help="continue a protocol run")
    p.add_argument("--view", default=None, help="view of a multi-view encoder, or all (default)")
    p.add_argument("--augment", default=None, action="store_true", help="train with the augmenting pipeline")
    p.add_argument("--k", type=int, default=None, help="kNN: neighbours (default 200)")
    p.add_argument("--temperature", type=float, default=None, help="kNN: vote temperature (default 0.07)")
    p.add_argument("--label-fraction", type=float, default=None, help="semi: labels kept per class (default 0.1)")
    p.add_argument("--label-seed", type=int, default=None, help="semi: seed of the labelled subset")
    p.add_argument("--plot", choices=("auto", "tsne", "pca", "none"), default=None)
    p.add_argument("--checkpoint", choices=("best", "last"), default=None, help="source run's checkpoint")
    p.add_argument("--init", choices=("pretrained", "random"), default=None,
                   help="random: the same encoder randomly initialised (the baseline)")
    p.add_argument("--cache-features", default=None, action=argparse.BooleanOptionalAction,
                   help="linear: train the classifier on embeddings computed once (default; the same training "
                        "in seconds) or, with --no-cache-features, encode every batch")
    p.add_argument("--feature-norm", choices=("none", "batchnorm"), default=None,
                   help="linear: a batch norm without scale and shift before the classifier (MAE's linear probe; "
                        "the SkeletonMAE configs' default)")


def run(args: argparse.Namespace) -> int:
    # only the options the user gave: a resumed protocol keeps its own, and the defaults live in ProtocolOptions
    names = ("view", "augment", "k", "temperature", "label_fraction", "label_seed", "plot", "checkpoint", "init",
             "cache_features", "feature_norm")
    options = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    source = None if args.resume else args.run
    overrides = list(args.overrides) if args.resume is None else [args.run, *args.overrides]
    overrides = [o for o in overrides if o is not None]
    metrics = evaluate_command(args.protocol, source, overrides, args.run_dir, resume=args.resume, **options)
    if metrics and not is_launched_child():
        print(f"accuracy          {metrics_line(metrics)}   ({args.protocol}, {metrics['num_test_samples']} samples)")
        if metrics.get("run_dir"):
            print_outputs(metrics["run_dir"])
    return 0



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
    child = is_launched_child()
    resume_ckpt = None
    if resume is not None:
        if protocol == "knn":
            raise ConfigError("kNN trains nothing and has nothing to resume; run it again", field="--resume")
        out, resume_ckpt = resume_checkpoint(resume, run_dir)
        record = read_protocol_record(out)
        if record["protocol"] != protocol:
            raise RunError(f"is a {record['protocol']} run, not {protocol}", out / PROTOCOL_FILE)
        if options:
            raise ConfigError("a resumed protocol keeps its options; change the experiment with key=value",
                              field=sorted(options)[0])
        src = load_config(Path(record["source_run"]) / CONFIG_FILE)
        _, opts = protocol_recipe(src, protocol)
        opts = with_options(opts, protocol, dict(record["options"]))
        loaded = load_config(out / CONFIG_FILE, overrides)
        source_dir = Path(record["source_run"])
    else:
        if pretrain_run is None:
            raise ConfigError("no run given to take the encoder from", field="RUN")
        source_dir = checked_run_dir(pretrain_run).resolve()
        src = load_config(source_dir / CONFIG_FILE)
        layer, opts = protocol_recipe(src, protocol)
        opts = with_options(opts, protocol, options)
        loaded = derive_config(src, protocol, layer, opts, overrides)
        out = run_directory(str(loaded.cfg.experiment), run_dir, child).resolve()
    record = {"protocol": protocol, "source_run": str(source_dir), "source_method": src.cfg.method.type,
              "views": _protocol_views(src, source_dir, opts), "options": asdict(opts)}
    # read the encoder's checkpoint before the run directory is written: an unreadable one leaves nothing behind
    source_ckpt = None if opts.init == "random" else run_checkpoint_path(source_dir, opts.checkpoint)
    source_checkpoint = None if source_ckpt is None else load_checkpoint(source_ckpt)
    with hold_run_dir(out, child):
        log = start_run(loaded, out, child, resume_ckpt, overrides,
                     extra_files=None if resume is not None else {PROTOCOL_FILE: json.dumps(record, indent=2) + "\n"})
        return _run_protocol(protocol, loaded, src, source_dir, opts, out, resume_ckpt, child, log, callbacks,
                             (source_ckpt, source_checkpoint))


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
        return list(read_protocol_record(source_dir).get("views") or method_views(src))
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


def _estimate_batch_norm_statistics(loaded: LoadedConfig, encoders: dict[str, Any], dataset: Any) -> int:
    from skelact.methods.protocols import estimate_batch_norm_statistics

    # the engine's ordered single-process loader, as predict_in_order uses (its batch size, workers and collate)
    loader = multiview_data_module(loaded, None, dataset).predict_dataloader()
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
    """The protocol's steps: data, the classifier on the source encoders, its scores (kNN votes, or a trained
    classifier's logits), then the results written into ``out``."""
    import lightning as L

    from skelact.engine.build import open_dataset_store

    cfg = loaded.cfg
    views = _protocol_views(src, source_dir, opts)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    store = open_dataset_store(loaded, progress=cfg.trainer.progress_bar and not child, log=log)
    data = _ProtocolData(loaded, store, views)
    train_indices = _train_indices(protocol, loaded, store, opts, log)
    test_set = data.dataset(data.subset("test"), "test")
    classifier, source_epoch = _classifier(protocol, loaded, src, source_dir, store, views, opts, log, source,
                                           data.dataset(train_indices, "test"))
    extra: dict[str, Any] = {"protocol": protocol, "source_run": str(source_dir), "source_method":
                             src.cfg.method.type, "source_epoch": source_epoch, "init": opts.init,
                             "views": views, "experiment": cfg.experiment, "split": cfg.data.split,
                             "subset": cfg.data.test_subset, "num_train_samples": int(train_indices.size)}
    if protocol == "knn":
        frozen_test = None if child else _embeddings(loaded, classifier, test_set, store.num_classes)
        train_features = _embeddings(loaded, classifier, data.dataset(train_indices, "test"), store.num_classes)
        scores = knn_scores(train_features, np.asarray(store.labels)[train_indices], frozen_test, store.num_classes,
                            k=opts.k, temperature=opts.temperature)
        extra.update(epoch=0, k=opts.k, temperature=opts.temperature)
    else:
        trained = _train_classifier(protocol, loaded, classifier, data.dataset(train_indices, "train"), test_set,
                                    store.num_classes, views, opts, out, resume_ckpt, child, log, callbacks, extra)
        if trained is None:
            return {}
        scores, frozen_test = trained
    return _write_results(protocol, loaded, out, store, test_set, views, scores, frozen_test, opts, extra, log)


class _ProtocolData:
    """The protocol's clips: the subsets of the run's split, through the pipelines without a modality, one draw
    in every view."""

    def __init__(self, loaded: LoadedConfig, store: Any, views: list[str]):
        self.loaded, self.store, self.views = loaded, store, views

    def subset(self, which: str) -> np.ndarray:
        from skelact.engine.build import subset_indices

        return subset_indices(self.loaded, self.store, which)

    def dataset(self, indices: np.ndarray, which: str) -> Any:
        from skelact.data.multiview import MultiViewDataset

        cfg = self.loaded.cfg
        return MultiViewDataset(self.store, indices, plain_pipeline(self.loaded, which), self.views, draws=1,
                                num_persons=cfg.data.num_persons, seed=cfg.seed)


def _train_indices(protocol: str, loaded: LoadedConfig, store: Any, opts: Any, log: RunLog) -> np.ndarray:
    """The training subset; for ``semi``, the labelled share of each class."""
    from skelact.engine.build import subset_indices
    from skelact.methods.protocols import balanced_label_subset

    cfg = loaded.cfg
    train_indices = subset_indices(loaded, store, "train")
    if protocol != "semi":
        return train_indices
    train_labels_all = np.asarray(store.labels, dtype=np.int64)[train_indices]
    seed = cfg.seed if opts.label_seed is None else opts.label_seed
    picks = balanced_label_subset(train_labels_all, opts.label_fraction, np.random.default_rng(seed))
    log(f"semi-supervised: {picks.size} of {train_labels_all.size} training labels "
        f"({100 * opts.label_fraction:g} % of each class, at least one; label seed {seed})")
    return train_indices[picks]


def _classifier(protocol: str, loaded: LoadedConfig, src: LoadedConfig, source_dir: Path, store: Any,
                views: list[str], opts: Any, log: RunLog, source: tuple[Path | None, dict[str, Any] | None],
                train_clips: Any) -> tuple[Any, int]:
    """The classifier on the source run's encoders (frozen for ``linear`` and ``knn``), and the source epochs."""
    import torch

    from skelact.methods.protocols import EncoderClassifier

    encoders, source_epoch = _encoders(loaded, src, source_dir, store, views, opts, log, source)
    frozen = protocol in ("linear", "knn")
    if opts.init == "random" and frozen:
        seen = _estimate_batch_norm_statistics(loaded, encoders, train_clips)
        log(f"encoders {', '.join(views)}: batch-norm statistics estimated on the {seen} training clips (test "
            f"pipeline); the weights stay random")
    generator = torch.Generator().manual_seed(int(loaded.cfg.seed) + HEAD_SEED_OFFSET)
    return (EncoderClassifier(encoders, store.num_classes, frozen=frozen, generator=generator,
                              feature_norm=opts.feature_norm), source_epoch)


def _embeddings(loaded: LoadedConfig, classifier: Any, data: Any, num_classes: int) -> np.ndarray:
    """The frozen encoder's embeddings of ``data``, in dataset order."""
    from skelact.methods.protocols import EmbeddingOf

    return predict_in_order(loaded, EmbeddingOf(classifier), data, num_classes)


def _stored_embeddings(loaded: LoadedConfig, classifier: Any, data: Any, num_classes: int, views: list[str]) -> Any:
    """The encoders' raw features of ``data`` computed once, as a dataset the linear classifier trains on."""
    from skelact.methods.protocols import EmbeddingDataset, RawFeaturesOf
    from skelact.methods.skeletonclr import encoder_width

    raw = predict_in_order(loaded, RawFeaturesOf(classifier), data, num_classes)
    return EmbeddingDataset(raw, {v: encoder_width(classifier.encoders[v]) for v in views}, data.labels, data.names)


def _train_classifier(protocol: str, loaded: LoadedConfig, classifier: Any, train_set: Any, test_set: Any,
                      num_classes: int, views: list[str], opts: Any, out: Path, resume_ckpt: Path | None,
                      child: bool, log: RunLog, callbacks: Sequence[Any],
                      extra: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Train the classifier (``linear``, ``finetune``, ``semi``) and score the test clips with its chosen
    checkpoint; returns the scores and the frozen test embeddings, or None in a data-parallel process other than
    the first."""
    from skelact.engine.trainer import build_trainer

    cfg = loaded.cfg
    trainer = build_trainer(cfg, out, callbacks=list(callbacks))
    world = int(trainer.num_devices) * int(trainer.num_nodes)
    fit_test_set = test_set
    cached = protocol == "linear" and opts.cache_features and not opts.augment and world == 1
    if protocol == "linear":
        extra.update(cached_features=cached)
    if cached:
        started = time.perf_counter()
        train_set = _stored_embeddings(loaded, classifier, train_set, num_classes, views)
        fit_test_set = _stored_embeddings(loaded, classifier, test_set, num_classes, views)
        log(f"linear: the frozen encoder's embeddings of the {len(train_set)} training and {len(test_set)} test "
            f"clips computed once ({time.perf_counter() - started:.1f} s); the classifier trains on them "
            f"(cache_features=false encodes every batch instead)")
    # the frozen encoder's test embeddings for the plot, taken before any fine-tuning moves it (from the stored
    # test embeddings when there are some: no second encoder pass over the test clips)
    frozen_test = None if child else _embeddings(loaded, classifier, fit_test_set, num_classes)
    schedule, batches, _ = schedule_and_lr(loaded, len(train_set), world, log)
    trainable = sum(p.numel() for p in classifier.parameters() if p.requires_grad)
    log(f"{protocol}: views {', '.join(views)}, train {len(train_set)}, test {len(test_set)}; {trainable:,} "
        f"trainable parameters; {cfg.epochs} epochs of {batches} steps")
    module = lit_module(loaded, classifier, schedule, num_classes, out)
    data = multiview_data_module(loaded, train_set, fit_test_set)
    resume_hint = f"skelact evaluate {protocol} --resume {out}"
    with use_threads(loaded.cfg.trainer.threads, int(trainer.num_devices), log), warnings.catch_warnings():
        # the linear protocol's encoders stay in eval mode on purpose (frozen batch-norm statistics)
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training")
        fit_run(trainer, module, data, out, resume_ckpt, child, log, resume_hint)
    if not trainer.is_global_zero:
        return None
    ckpt = run_checkpoint_path(out, cfg.evaluate.checkpoint)
    checkpoint = load_checkpoint(ckpt)
    module.load_state_dict(checkpoint["state_dict"])
    scores = predict_in_order(loaded, classifier, fit_test_set, num_classes)
    extra.update(epoch=int(checkpoint.get("epoch", -1)) + 1, checkpoint=cfg.evaluate.checkpoint,
                 checkpoint_path=str(ckpt))
    if protocol == "semi":
        extra.update(label_fraction=opts.label_fraction)
    return scores, frozen_test


def _write_results(protocol: str, loaded: LoadedConfig, out: Path, store: Any, test_set: Any, views: list[str],
                   scores: np.ndarray, frozen_test: np.ndarray | None, opts: Any, extra: dict[str, Any],
                   log: RunLog) -> dict[str, Any]:
    """The per-sample scores, the report and the feature plot of the protocol's run."""
    from skelact.evaluation.report import write_report
    from skelact.evaluation.run_scores import save_run_scores

    cfg = loaded.cfg
    labels = test_set.labels
    with disk_full_as_error(out, evaluation_output_size(scores, labels, test_set.names)):
        save_run_scores(out, scores, labels, test_set.names)
        metrics = write_report(out, scores, labels, store.class_names, test_set.names, extra=extra)
    _plot_features(out, frozen_test, labels, store.class_names, opts.plot, cfg.seed,
                   f"{cfg.experiment}\nfrozen {'+'.join(views)} embeddings of {len(labels)} test samples", log)
    log(f"{protocol} ({', '.join(views)}, {len(labels)} test samples): top1 {metrics['top1']:.2f} %, top5 "
        f"{metrics['top5']:.2f} %, mean class {metrics['mean_class_acc']:.2f} %; wrote {out / 'metrics.json'}")
    return {**metrics, "run_dir": str(out)}
