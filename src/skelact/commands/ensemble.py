"""``skelact ensemble RUN...``: fuse the per-sample test scores of several runs (streams) and write the fused
metrics, scores and report (:func:`skelact.evaluation.ensemble.ensemble_runs`)."""

from __future__ import annotations

import argparse
import json

from skelact.commands.report_lines import metrics_line, print_outputs
from skelact.errors import SkelactError

NAME = "ensemble"
HELP = "fuse the test scores of several runs (streams)"
DESCRIPTION = ("Fuse the per-sample test scores of RUN... (matched by sample name) and write the fused metrics, "
               "scores and report.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--weights", nargs="+", type=float, default=None, metavar="W",
                   help="one weight per run (default: 1 each); CTR-GCN's 4 streams use 0.6 0.6 0.4 0.4")
    p.add_argument("--method", choices=("weighted", "sci"), default="weighted",
                   help="weighted sum of logits (CTR-GCN) or SCI per-sample weighting (FstCN)")
    p.add_argument("--normalize", choices=("softmax",), default=None,
                   help="fuse softmax probabilities instead of raw logits (weighted only)")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default runs/ensemble-<time>)")


def class_names_of_run(run_dir: str) -> list[str] | None:
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


def run(args: argparse.Namespace) -> int:
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
                           class_names=class_names_of_run(args.runs[0]), normalize=args.normalize)
    width = max(len(str(r["run_dir"])) for r in result["runs"])
    print(f"{'stream':<{width}}  weight    top1    top5  mean class")
    for r in result["runs"]:
        print(f"{r['run_dir']:<{width}}  {r['weight']:>6g}  {r['top1']:6.2f}  {r['top5']:6.2f}  "
              f"{r['mean_class_acc']:10.2f}")
    weights = " ".join(f"{w:g}" for w in result["weights"])
    print(f"fused ({result['method']}, weights {weights}, {result['num_test_samples']} samples): "
          f"{metrics_line(result)}")
    print_outputs(out)
    return 0

