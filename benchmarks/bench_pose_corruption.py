"""Robustness to pose noise, measured: trained runs tested on poses corrupted at test time.

PoseConv3D (Duan et al., CVPR 2022, arXiv 2104.13586, Sec. 1) claims that heatmap volumes tolerate the errors of a
pose estimator better than the coordinates a GCN reads. This script takes runs trained on clean poses of one split
(e.g. a PoseConv3D and a CTR-GCN run on Penn Action's official split) and tests each, unchanged, on its own test
pipeline with one corruption step placed first (``skelact.data.transforms.corruption``), so every model sees the
same corrupted poses before its own preprocessing:

- ``clean``: no corruption (with ``--max-test-samples`` unset this reproduces the run's ``metrics.json``);
- ``jitter_P``: Gaussian noise of P % of the person's box size on every present joint (1, 2, 5, 10);
- ``drop_P``: P % of the joints of every frame made missing, coordinates 0 and score 0 (10 to 50); a heatmap draws
  nothing for them, a GCN pipeline leaves them at 0, i.e. at the hip midpoint after ``TorsoNormalize``;
- ``zero_conf``: every confidence 0, coordinates untouched.

Corruptions are drawn from the dataset's per-sample generator (seeded by the run's ``seed`` and the sample's
index), so a rerun gives the same corrupted test set, and both models get the same one when their runs share the
seed. Scoring is ``skelact test``'s own path (the run's last checkpoint, its test pipeline, multi-clip averaging).

    PYTHONPATH=src python benchmarks/bench_pose_corruption.py poseconv3d=runs/A ctrgcn=runs/B \\
        [--max-test-samples N] [--conditions clean,jitter_1,...] [--json out.jsonl] [--plot out.png]
    python benchmarks/bench_pose_corruption.py --replot a.jsonl b.jsonl --plot out.png   # table + plot only

Prints one JSON line per (model, condition) and a Markdown table; ``--plot`` draws the accuracy curves of the
jitter and drop sweeps side by side, zeroed confidences as a marker.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

JITTERS = (1, 2, 5, 10)
DROPS = (10, 20, 30, 40, 50)
CONDITIONS = ("clean", *(f"jitter_{p}" for p in JITTERS), *(f"drop_{p}" for p in DROPS), "zero_conf")


def corruption_step(condition: str):
    """The transform of a condition name (None for ``clean``)."""
    from skelact.data.transforms import DropJoints, PoseJitter, ZeroConfidence

    if condition == "clean":
        return None
    if condition == "zero_conf":
        return ZeroConfidence()
    kind, _, percent = condition.partition("_")
    fraction = int(percent) / 100
    if kind == "jitter":
        return PoseJitter(fraction)
    if kind == "drop":
        return DropJoints(fraction)
    raise SystemExit(f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}")


class RunUnderTest:
    """A run's config, store, test indices and last-checkpoint module, loaded once for every condition."""

    def __init__(self, run: Path, max_test_samples: int | None):
        import torch

        from skelact.config import load_config
        from skelact.engine.build import build_method, build_model, open_dataset_store, subset_indices
        from skelact.engine.module import SkeletonLitModule
        from skelact.engine.optim import LRSchedule

        overrides = [f"data.max_test_samples={max_test_samples}"] if max_test_samples else []
        self.loaded = load_config(run / "config.yaml", overrides)
        cfg = self.loaded.cfg
        self.store = open_dataset_store(self.loaded, progress=False, log=lambda *_: None)
        self.indices = subset_indices(self.loaded, self.store, "test")
        model = build_model(self.loaded, self.store)
        self.module = SkeletonLitModule(build_method(self.loaded, model),
                                        LRSchedule(base_lr=cfg.optimizer.lr, epochs=cfg.epochs),
                                        num_classes=self.store.num_classes)
        state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
        self.module.load_state_dict(state)
        self.module.eval()

    def accuracy(self, condition: str) -> tuple[float, int]:
        """Top-1 (%) on the test subset with ``condition``'s corruption first in the test pipeline."""
        import numpy as np
        import torch

        from skelact.data.dataset import SkeletonDataset
        from skelact.data.transforms import Compose
        from skelact.engine.build import build_pipeline_of
        from skelact.engine.datamodule import SkeletonDataModule
        from skelact.engine.trainer import build_eval_trainer

        cfg = self.loaded.cfg
        steps = list(build_pipeline_of(self.loaded, "test").transforms)
        step = corruption_step(condition)
        pipeline = Compose(([step] if step is not None else []) + steps)
        test_set = SkeletonDataset(self.store, self.indices, pipeline, num_persons=cfg.data.num_persons,
                                   seed=cfg.seed)
        data = SkeletonDataModule(None, test_set, batch_size=cfg.data.batch_size,
                                  test_batch_size=cfg.data.test_batch_size, num_workers=0, seed=cfg.seed,
                                  num_frames=cfg.data.num_frames)
        outputs = build_eval_trainer(cfg).predict(self.module, datamodule=data)
        logits = torch.cat([o["logits"] for o in outputs]).float().numpy()
        index = torch.cat([o["index"] for o in outputs]).numpy()
        predicted = np.empty(len(test_set), dtype=np.int64)
        predicted[index] = logits.argmax(axis=1)
        return float((predicted == np.asarray(test_set.labels)).mean() * 100), len(test_set)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in results))
    acc = {(r["model"], r["condition"]): r["top1"] for r in results}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for model in models:
        for ax, kind, levels in ((axes[0], "jitter", JITTERS), (axes[1], "drop", DROPS)):
            xs = [0] + [p for p in levels if (model, f"{kind}_{p}") in acc]
            ys = [acc.get((model, "clean"))] + [acc[(model, f"{kind}_{p}")] for p in xs[1:]]
            if ys[0] is None:
                xs, ys = xs[1:], ys[1:]
            line, = ax.plot(xs, ys, marker="o", label=model)
            if kind == "drop" and (model, "zero_conf") in acc:
                ax.axhline(acc[(model, "zero_conf")], color=line.get_color(), ls=":",
                           label=f"{model}, confidences zeroed")
    axes[0].set(xlabel="Gaussian jitter, % of the person's box size", ylabel="top-1 accuracy (%)",
                title="jitter")
    axes[1].set(xlabel="joints dropped per frame (%)", title="dropped joints")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="*", metavar="NAME=RUN", help="a label and a trained run directory")
    p.add_argument("--replot", type=Path, nargs="+", default=None, metavar="JSONL",
                   help="run nothing: the table and plot of earlier --json outputs (runs tested in parallel)")
    p.add_argument("--conditions", default=",".join(CONDITIONS), help="comma list of " + ", ".join(CONDITIONS))
    p.add_argument("--max-test-samples", type=int, default=None,
                   help="evenly spaced test samples (data.max_test_samples); default: the whole test subset")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="also write the JSON lines here")
    p.add_argument("--plot", type=Path, default=None, help="PNG of the accuracy curves")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    conditions = args.conditions.split(",")
    for c in conditions:
        corruption_step(c)  # unknown names fail before any run is loaded
    results = []
    for path in args.replot or ():
        results.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    if args.replot:
        conditions = [c for c in conditions if any(r["condition"] == c for r in results)]
    for item in args.runs:
        name, _, run = item.partition("=")
        if not run:
            raise SystemExit(f"expected NAME=RUN, got {item!r}")
        under_test = RunUnderTest(Path(run), args.max_test_samples)
        for condition in conditions:
            start = time.perf_counter()
            top1, n = under_test.accuracy(condition)
            row = {"model": name, "run": run, "condition": condition, "top1": round(top1, 2), "samples": n,
                   "seconds": round(time.perf_counter() - start, 1)}
            results.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    names = list(dict.fromkeys(r["model"] for r in results))
    acc = {(r["model"], r["condition"]): r["top1"] for r in results}
    print("\n| condition | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for c in conditions:
        print(f"| {c} | " + " | ".join(f"{acc[(m, c)]:.2f}" if (m, c) in acc else "-" for m in names) + " |")
    if args.plot:
        plot(results, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
