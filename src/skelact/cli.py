"""The ``skelact`` command: parses arguments, builds the objects, calls the library. No logic lives here.

Every :class:`~skelact.errors.SkelactError` is printed as one line ``skelact: error: ...`` and exits with status 2
(argparse's own usage errors use the same status). ``skelact prepare`` exits 0 when some input files were rejected
but at least one sample was written: it lists them and prints a ``skelact: warning:`` line on stderr. Ctrl-C exits
with status 130 and one line saying what state it left: ``prepare`` wrote nothing, an interrupted ``train`` names
the run and the ``skelact train --resume RUN`` that continues it.

Commands: ``prepare``, ``info``, ``layouts``, ``export-pyskl`` (data); ``train``, ``test``, ``ensemble``, ``export``,
``predict`` (runs; the library side is :mod:`skelact.engine.commands`, :mod:`skelact.evaluation.ensemble`,
:mod:`skelact.engine.export` and :mod:`skelact.engine.predict`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from skelact import __version__
from skelact.errors import ConfigError, SkelactError, disk_full_error, is_disk_full

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
#: keyword names of prepare() itself, which --option must not shadow
_PREPARE_PARAMETERS = frozenset({"fmt", "src", "out", "workers", "overwrite", "split_file", "progress", "layout",
                                 "max_persons", "max_frames", "wait_for_lock"})


def _parse_option(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected key=value, got {text!r}", field="--option")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed


def _cmd_prepare(args: argparse.Namespace) -> int:
    from skelact.data.prepare import prepare

    options = dict(_parse_option(o) for o in args.option or [])
    taken = sorted(set(options) & _PREPARE_PARAMETERS)
    if taken:
        flag = "--" + taken[0].replace("_", "-")
        raise ConfigError(f"{taken[0]!r} is a prepare setting, not a reader option; use {flag}", field="--option")
    if args.trust_pickle:
        options["trust_pickle"] = True
    report = prepare(args.format, args.src, args.out, workers=args.workers, overwrite=args.overwrite,
                     split_file=args.split_file, progress=not args.quiet, layout=args.layout,
                     max_persons=args.max_persons, max_frames=args.max_frames, **options)
    print(report.summary())
    if report.rejected:
        print(f"skelact: warning: {len(report.rejected)} of {report.num_items} input item(s) were rejected and "
              f"left out (listed above and under 'rejected' in {report.out}/manifest.json)", file=sys.stderr)
    return 0


def _format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _cmd_info(args: argparse.Namespace) -> int:
    from skelact.data.store import SkeletonStore

    info = SkeletonStore(args.store).info()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    fr = info["frames"]
    src = info.get("source") or {}
    lines = [
        f"store     {info['path']} ({_format_bytes(info['bytes'])})",
        f"samples   {info['num_samples']}   classes {info['num_classes']}"
        + ("   persons per sample " + ", ".join(f"{k}: {v}" for k, v in info["persons"].items())
           if info["layout"] else ""),
        f"layout    {info['layout']} ({info['num_joints']} joints, {info['coords']} coords)" if info["layout"] else
        f"videos    {info['num_videos']} under {info['video_root']} (no keypoints: skelact extract-poses adds them)",
        f"frames    min {fr['min']}, mean {fr['mean']:.1f}, max {fr['max']} ({fr['total']} in all)",
    ]
    if info["layout"] and info["num_videos"]:
        lines.append(f"videos    {info['num_videos']} under {info['video_root']}, aligned with the keypoints")
    for split, subsets in info["splits"].items():
        lines.append(f"split     {split}: " + ", ".join(f"{k} {v}" for k, v in subsets.items()))
    if not info["splits"]:
        lines.append("split     none recorded")
    lines.append(f"source    {src.get('format')} {src.get('path')}  (created {info.get('created')}, "
                 f"skelact {info.get('skelact_version')})")
    lines.append(f"rejected  {info['rejected']} input item(s)")
    names = info["class_names"]
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all; --json lists them)" if len(names) > 12 else "")
    lines.append("classes   " + shown)
    print("\n".join(lines))
    return 0


def _cmd_layouts(args: argparse.Namespace) -> int:
    from skelact.skeleton.layout import available_layouts, get_layout

    for name in available_layouts():
        layout = get_layout(name)
        # the first sentence only: the YAML descriptions go on to justify bones and centre at length
        summary = layout.description.strip().split(". ")[0].split(":")[0]
        print(f"{name:<14} {layout.num_joints:>3} joints  centre {layout.joints[layout.center]:<16} {summary}")
    return 0


def _cmd_export_pyskl(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skelact.data.sources.pyskl import write_pyskl_pickle
    from skelact.data.store import SkeletonStore
    from skelact.errors import StoreError

    store = SkeletonStore(args.store)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise StoreError("already exists; pass --overwrite to replace it", out)
    names = store.names
    splits = {split: {subset: [names[i] for i in idx] for subset, idx in subsets.items()}
              for split, subsets in store.splits.items()}
    write_pyskl_pickle(out, iter(store), splits)
    print(f"wrote {len(store)} samples and {len(splits)} split(s) to {out}")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# runs: train, test, ensemble, export


def _split_train_items(items: Sequence[str], resume: str | None) -> tuple[str | None, list[str]]:
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


def _metrics_line(metrics: dict[str, Any]) -> str:
    return (f"top1 {metrics['top1']:.2f} %   top5 {metrics['top5']:.2f} %   "
            f"mean class acc {metrics['mean_class_acc']:.2f} %")


def _print_outputs(directory: Any) -> None:
    """The result files a test or an ensemble wrote, the confusion-matrix image first."""
    from pathlib import Path

    from skelact.evaluation.report import CONFUSION_CSV, CONFUSION_PNG, METRICS_FILE, PER_CLASS_CSV
    from skelact.evaluation.run_scores import SCORES_FILE

    d = Path(directory)
    if (d / CONFUSION_PNG).is_file():
        print(f"confusion matrix  {d / CONFUSION_PNG}")
    else:
        print(f"confusion matrix  {d / CONFUSION_CSV} (no PNG: install matplotlib, pip install 'skelact[plots]')")
    print(f"metrics           {d / METRICS_FILE}")
    print(f"per class         {d / PER_CLASS_CSV}")
    print(f"per-sample scores {d / SCORES_FILE}")


def _cmd_train(args: argparse.Namespace) -> int:
    from skelact.engine.commands import train_command
    from skelact.engine.runs import TrainingInterrupted, is_launched_child
    from skelact.evaluation.report import METRICS_FILE

    config, overrides = _split_train_items(args.items, args.resume)
    try:
        run = train_command(config, overrides, run_dir=args.run_dir, resume=args.resume)
    except TrainingInterrupted as e:
        if e.resumable:
            print(f"skelact: interrupted; the run can be resumed with: skelact train --resume {e.run_dir}",
                  file=sys.stderr)
        else:
            print(f"skelact: interrupted before the first checkpoint of {e.run_dir} was written; nothing to resume, "
                  "start the run again", file=sys.stderr)
        return EXIT_INTERRUPTED
    if is_launched_child():  # a data-parallel worker Lightning started: the first process reports
        return 0
    metrics = json.loads((run / METRICS_FILE).read_text(encoding="utf-8"))
    print(f"run               {run}")
    print(f"accuracy          {_metrics_line(metrics)}   ({metrics.get('checkpoint')} checkpoint, epoch "
          f"{metrics.get('epoch')}, {metrics['num_test_samples']} samples)")
    _print_outputs(run)
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from skelact.engine.runs import is_launched_child
    from skelact.engine.ssl_commands import pretrain_command

    config, overrides = _split_train_items(args.items, args.resume)
    run = pretrain_command(config, overrides, run_dir=args.run_dir, resume=args.resume)
    if not is_launched_child():
        print(f"run               {run}")
        print(f"next              skelact evaluate linear|knn|finetune|semi {run}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from skelact.engine.runs import is_launched_child
    from skelact.engine.ssl_commands import evaluate_command

    # only the options the user gave: a resumed protocol keeps its own, and the defaults live in ProtocolOptions
    names = ("view", "augment", "k", "temperature", "label_fraction", "label_seed", "plot", "checkpoint", "init",
             "cache_features")
    options = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    source = None if args.resume else args.run
    overrides = list(args.overrides) if args.resume is None else [args.run, *args.overrides]
    overrides = [o for o in overrides if o is not None]
    metrics = evaluate_command(args.protocol, source, overrides, args.run_dir, resume=args.resume, **options)
    if metrics and not is_launched_child():
        print(f"accuracy          {_metrics_line(metrics)}   ({args.protocol}, {metrics['num_test_samples']} samples)")
        if metrics.get("run_dir"):
            _print_outputs(metrics["run_dir"])
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    from skelact.engine.commands import test_command

    metrics = test_command(args.run, args.checkpoint)
    print(f"accuracy          {_metrics_line(metrics)}   ({args.checkpoint} checkpoint, epoch {metrics.get('epoch')}, "
          f"{metrics['num_test_samples']} samples)")
    _print_outputs(args.run)
    return 0


def _class_names_of_run(run_dir: str) -> list[str] | None:
    """Class names for an ensemble report: the first run's store (as its config names it, never preparing one),
    else the per_class.json its own test wrote; None when neither is there (the report then numbers classes)."""
    from pathlib import Path

    from skelact.evaluation.report import PER_CLASS_JSON

    run = Path(run_dir)
    try:
        from skelact.config import load_config, to_container
        from skelact.data.cache import cached_store_path
        from skelact.data.store import MANIFEST, SkeletonStore

        data = load_config(run / "config.yaml").cfg.data
        path = Path(data.store) if data.store is not None else cached_store_path(data.format, data.source,
                                                                                  to_container(data.options))
        if (path / MANIFEST).is_file():
            return SkeletonStore(path).class_names
    except SkelactError:
        pass
    try:
        rows = json.loads((run / PER_CLASS_JSON).read_text(encoding="utf-8"))
        return [str(row["class_name"]) for row in rows]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skelact.engine.runs import new_run_dir
    from skelact.errors import StoreError
    from skelact.evaluation.ensemble import ensemble_runs
    from skelact.evaluation.report import METRICS_FILE
    from skelact.evaluation.run_scores import SCORES_FILE

    out = Path(args.out) if args.out else new_run_dir("ensemble")
    taken = [f for f in (METRICS_FILE, SCORES_FILE) if (out / f).exists()]
    if taken:
        raise StoreError(f"already holds results ({taken[0]}); choose another --out", out, "--out")
    result = ensemble_runs(args.runs, weights=args.weights, method=args.method, out_dir=out,
                           class_names=_class_names_of_run(args.runs[0]), normalize=args.normalize)
    width = max(len(str(r["run_dir"])) for r in result["runs"])
    print(f"{'stream':<{width}}  weight    top1    top5  mean class")
    for r in result["runs"]:
        print(f"{r['run_dir']:<{width}}  {r['weight']:>6g}  {r['top1']:6.2f}  {r['top5']:6.2f}  "
              f"{r['mean_class_acc']:10.2f}")
    weights = " ".join(f"{w:g}" for w in result["weights"])
    print(f"fused ({result['method']}, weights {weights}, {result['num_test_samples']} samples): "
          f"{_metrics_line(result)}")
    _print_outputs(out)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from skelact.engine.export import export_onnx

    export_onnx(args.run, args.onnx, args.checkpoint)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skelact", description="Human action recognition from skeletons.")
    parser.add_argument("--version", action="version", version=f"skelact {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("prepare", help="convert a dataset into a skelact store",
                       description="Read every sample of a dataset in FORMAT under SRC and write the store OUT.")
    p.add_argument("format", metavar="FORMAT", help="input format (ntu, nw-ucla, penn-action, pyskl, video-folder, ...)")
    p.add_argument("src", metavar="SRC", help="the dataset's folder or file")
    p.add_argument("out", metavar="OUT", help="the store directory to create")
    p.add_argument("--workers", type=int, default=None, help="parsing processes (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it is an existing store")
    p.add_argument("--split-file", default=None, metavar="F",
                   help="user splits: JSON {split: {subset: [names]}} or CSV name,split,subset; for video-folder "
                        "also UCF101's trainlistNN.txt / testlistNN.txt")
    p.add_argument("--layout", default=None, metavar="NAME_OR_YAML", help="override the reader's joint layout")
    p.add_argument("--max-persons", type=int, default=None, metavar="N", help="keep at most N persons per sample")
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="reject samples longer than N frames, before reading them whole (default 100000)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a reader option (repeatable)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="the pickled input (pyskl .pkl, NTU .skeleton.npy) comes from a source you trust: read it "
                        "with the plain unpickler, which runs any code the file names (default: only numpy arrays "
                        "and plain containers are admitted; reader option trust_pickle=true in a config)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    # prepare builds the store under a temporary name and renames it at the end
    p.set_defaults(func=_cmd_prepare, interrupted="interrupted; nothing was written")

    p = sub.add_parser("info", help="summarise a store")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("layouts", help="list the built-in joint layouts")
    p.set_defaults(func=_cmd_layouts)

    p = sub.add_parser("export-pyskl", help="write a store as a pyskl / mmaction2 annotation pickle")
    p.add_argument("store", metavar="STORE")
    p.add_argument("out", metavar="OUT.pkl")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_export_pyskl)

    p = sub.add_parser("train", help="train an experiment config (or resume a run)",
                       description="Train the experiment CONFIG with key=value overrides (e.g. epochs=1 "
                                   "optimizer.lr=0.05), test it, and write a run directory (runs/<experiment>-"
                                   "<time> under the current directory unless --run-dir is given).")
    p.add_argument("items", nargs="*", metavar="CONFIG [key=value ...]",
                   help="the config YAML, then overrides; with --resume only overrides (e.g. epochs=80)")
    p.add_argument("--run-dir", default=None, metavar="DIR", help="where to write the run")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue RUN from its last checkpoint")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("pretrain", help="self-supervised pre-training (SkeletonCLR, CrosSCLR)",
                       description="Pre-train an encoder with the method of CONFIG (key=value overrides as for "
                                   "train); judge it afterwards with skelact evaluate.")
    p.add_argument("items", nargs="*", metavar="CONFIG [key=value ...]")
    p.add_argument("--run-dir", default=None, metavar="DIR")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue RUN from its last checkpoint")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("evaluate", help="judge an encoder: linear, kNN, fine-tune or semi-supervised protocol",
                       description="Run an evaluation protocol on the encoder of RUN (a pretrain run, a train run "
                                   "or a protocol run); writes its own run directory with metrics.json and a "
                                   "feature plot. key=value items change the protocol's training config.")
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
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("test", help="re-evaluate a run's best or last checkpoint",
                       description="Test a run's checkpoint on its test subset; writes metrics.json, per-sample "
                                   "scores, per-class accuracy and the confusion matrix into the run.")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.set_defaults(func=_cmd_test)

    p = sub.add_parser("ensemble", help="fuse the test scores of several runs (streams)",
                       description="Fuse the per-sample test scores of RUN... (matched by sample name) and write "
                                   "the fused metrics, scores and report.")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--weights", nargs="+", type=float, default=None, metavar="W",
                   help="one weight per run (default: 1 each); CTR-GCN's 4 streams use 0.6 0.6 0.4 0.4")
    p.add_argument("--method", choices=("weighted", "sci"), default="weighted",
                   help="weighted sum of logits (CTR-GCN) or SCI per-sample weighting (FstCN)")
    p.add_argument("--normalize", choices=("softmax",), default=None,
                   help="fuse softmax probabilities instead of raw logits (weighted only)")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default runs/ensemble-<time>)")
    p.set_defaults(func=_cmd_ensemble)

    p = sub.add_parser("export", help="export a run's network to ONNX and check it with onnxruntime",
                       description="Export the inference network of a run (the backbone, without training-only "
                                   "heads) to ONNX, check it against PyTorch on real test samples, and write "
                                   "FILE plus a JSON description beside it. Needs pip install 'skelact[export]'.")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.set_defaults(func=_cmd_export)

    from skelact.engine.predict import add_predict_arguments, predict_command

    p = sub.add_parser("predict", help="classify a video or a skeleton file with a trained run",
                       description="Print the top-k actions of INPUT (a video, through the pose estimator, or a "
                                   "skeleton file) by a run's checkpoint, with a sliding-window timeline for long "
                                   "inputs; --render writes the video with the skeleton and the current action.")
    add_predict_arguments(p)
    p.set_defaults(func=predict_command)

    from skelact.engine import feature_plot

    p = sub.add_parser("plot-features", help="2-D map of a run's features for its most confused classes",
                       description="Extract the test features of a run (and of a baseline run, for FR-Head's "
                                   "before/after figure) and plot the classes it confuses most (t-SNE or PCA).")
    feature_plot.add_arguments(p)
    p.set_defaults(func=feature_plot.command)

    # extract-poses: importing skelact.pose.extract is light (mediapipe / av load only inside its workers)
    from skelact.pose.extract import add_extract_poses_arguments, extract_poses_command

    p = sub.add_parser("extract-poses", help="run a pose estimator over videos and write a skelact store",
                       description="Decode videos with PyAV, estimate poses (MediaPipe by default, or a user ONNX "
                                   "model), track people and write a dataset store. Resumable; bad videos are "
                                   "reported and skipped. Needs pip install 'skelact[pose]'.")
    add_extract_poses_arguments(p)
    p.set_defaults(func=extract_poses_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skelact`` console script; returns the exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    # key=value overrides may come after options (`evaluate linear RUN --k=5 epochs=2`); argparse stops collecting
    # a positional list at the first option, so gather the stragglers here for the commands that take overrides
    override_field = {"train": "items", "pretrain": "items", "evaluate": "overrides"}.get(args.command)
    stray = [u for u in unknown if "=" in u and not u.startswith("-")]
    if override_field and len(stray) == len(unknown):
        getattr(args, override_field).extend(stray)
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args))
    except SkelactError as e:
        print(f"skelact: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"skelact: {getattr(args, 'interrupted', None) or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # output piped into `head` and closed early: not an error; keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        # the last line of defence: the commands turn a full disk into a DiskFullError where they write, with what
        # they cleaned up; one that still escapes is said in one line, never as a traceback
        if not is_disk_full(e):
            raise
        print(f"skelact: error: {disk_full_error(e.filename or '.')}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        print("skelact: error: out of memory: the input asks for more memory than this machine has (a file claiming "
              "absurd sizes?); nothing was written", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
