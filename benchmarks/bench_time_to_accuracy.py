"""Time to accuracy on NW-UCLA cross-view: skelact's fast CPU recipe against MiniRocket, in one run (issue 25).

1. MiniRocket (aeon, ``benchmarks/minirocket_split.py``) on the same split: the training and test clips of the
   recipe's store, first person, every joint coordinate one channel, linearly resampled to ``--length`` frames (64)
   and centred on the clip's mean position: a generic time-series classifier with no skeleton knowledge. aeon 1.6
   needs numpy >= 2, so it runs in its own interpreter (``--aeon-python``; default: this one if it imports aeon,
   else ``.venv-bench/bin/python``, which ``make bench-time`` makes with ``aeon==1.6.0`` before it runs this
   script; see docs/benchmarks.md). Its time is fit + predict.
2. The recipe (``--config``, default ``configs/nw_ucla/stgcn_joint_fast.yaml``) trained by ``skelact train`` in
   this process, with a callback that copies the weights in memory each time the training clock passes a minute
   mark (``--minutes``, default 1 2 3 4 5). The training clock runs from Lightning's fit start to the end of the
   last training step, minus the time spent copying the snapshots; nothing is evaluated during training (the
   recipe has no validation), so evaluation time is excluded. Snapshots are the weights of this one run at that
   moment (with its one-cycle schedule the rate is still high early on); a mark after the end of training gets the
   final weights, marked ``"ended_before": true``. After training every snapshot is tested on the test subset
   exactly as ``skelact test`` does (same pipeline, same precision), and the run's own final test (last
   checkpoint) is reported as the recipe's result, with its test time.

Prints one JSON line per result (``system``: ``minirocket``, ``skelact``, ``skelact@Nmin``), then a summary line
``{"summary": ...}`` with the time ratio; everything also goes to ``OUT/time_to_accuracy.json``.

    python benchmarks/bench_time_to_accuracy.py [--out runs/bench_tta] [--config CONFIG] [--seed 0]
        [--minutes 1 2 3 4 5] [--aeon-python PYTHON] [--skip-minirocket] [key=value ...]

``key=value`` items are config overrides for the recipe (e.g. ``seed=1``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "nw_ucla" / "stgcn_joint_fast.yaml"
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench_tta", help="output folder (the run goes to OUT/skelact)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="the recipe's config")
    p.add_argument("--seed", type=int, default=0, help="the recipe's seed (and MiniRocket's random state)")
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 3, 4, 5],
                   help="training-clock marks at which the recipe's weights are kept and tested")
    p.add_argument("--length", type=int, default=64, help="frames per clip for MiniRocket")
    p.add_argument("--aeon-python", default=None, help="interpreter with aeon 1.6 for MiniRocket")
    p.add_argument("--skip-minirocket", action="store_true", help="only the recipe")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for the recipe")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------------------------
# MiniRocket's input


def resample_centred(keypoints: np.ndarray, length: int) -> np.ndarray:
    """``[T, V, C]`` -> ``[V * C, length]``: linear interpolation in time (a 1-frame clip is repeated), minus the
    clip's mean position per coordinate."""
    t, v, c = keypoints.shape
    x = keypoints.reshape(t, v * c).astype(np.float64)
    if t == 1:
        out = np.repeat(x, length, axis=0)
    else:
        where = np.linspace(0.0, t - 1.0, length)
        out = np.stack([np.interp(where, np.arange(t), x[:, k]) for k in range(v * c)], axis=1)
    out = out.reshape(length, v, c)
    out -= out.mean(axis=(0, 1), keepdims=True)
    return out.reshape(length, v * c).T.astype(np.float32)


def write_minirocket_split(store, train_indices, test_indices, length: int, path: Path) -> None:
    def arrays(indices):
        xs, ys = [], []
        for i in indices:
            seq = store[int(i)]
            xs.append(resample_centred(np.asarray(seq.keypoints[0]), length))
            ys.append(seq.label)
        return np.stack(xs), np.asarray(ys, dtype=np.int64)

    x_train, y_train = arrays(train_indices)
    x_test, y_test = arrays(test_indices)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def aeon_python(given: str | None) -> str:
    if given:
        return given
    try:
        import aeon  # noqa: F401
        return sys.executable
    except ImportError:
        return str(BENCH_PYTHON)


def run_minirocket(python: str, split: Path, seed: int) -> dict:
    script = Path(__file__).with_name("minirocket_split.py")
    started = time.perf_counter()
    done = subprocess.run([python, str(script), str(split), "--seed", str(seed)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"})
    if done.returncode != 0:
        sys.exit(f"MiniRocket failed with {python}:\n{done.stderr.strip()}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = round(time.perf_counter() - started, 2)  # interpreter start, imports, numba compilation
    return result


# ----------------------------------------------------------------------------------------------------------------
# the recipe, with snapshots on the training clock


def snapshot_callback(marks_s: list[float]):
    import lightning as L

    class MinuteSnapshots(L.Callback):
        """Keeps a copy of the method's weights the first time the training clock reaches each mark."""

        def __init__(self):
            self.marks = sorted(marks_s)
            self.snapshots: list[dict] = []
            self.started = None
            self.copying = 0.0  # time spent copying, taken off the clock
            self.last_step_end = None

        def clock(self) -> float:
            return time.perf_counter() - self.started - self.copying

        def on_fit_start(self, trainer, pl_module):
            self.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            now = self.clock()
            self.last_step_end = now
            while len(self.snapshots) < len(self.marks) and now >= self.marks[len(self.snapshots)]:
                began = time.perf_counter()
                self.snapshots.append({"mark_s": self.marks[len(self.snapshots)], "clock_s": now,
                                       "epoch": trainer.current_epoch, "global_step": trainer.global_step,
                                       "state": copy.deepcopy(pl_module.state_dict())})
                self.copying += time.perf_counter() - began

    return MinuteSnapshots()


def test_snapshot(run: Path, state: dict) -> float:
    """Top-1 (percent) of ``state`` on the run's test subset, as ``skelact test`` scores it."""
    import torch

    from skelact.config import load_config
    from skelact.engine.build import build_dataset, build_method, build_model, open_dataset_store
    from skelact.engine.datamodule import SkeletonDataModule
    from skelact.engine.module import SkeletonLitModule
    from skelact.engine.optim import LRSchedule
    from skelact.engine.trainer import build_eval_trainer

    loaded = load_config(run / "config.yaml")
    cfg = loaded.cfg
    store = open_dataset_store(loaded, progress=False, log=lambda *a, **k: None)
    test_set = build_dataset(loaded, store, "test")
    module = SkeletonLitModule(build_method(loaded, build_model(loaded, store)),
                               LRSchedule(base_lr=cfg.optimizer.lr, epochs=cfg.epochs), num_classes=store.num_classes)
    module.load_state_dict(state)
    data = SkeletonDataModule(None, test_set, batch_size=cfg.data.batch_size, test_batch_size=cfg.data.test_batch_size,
                              num_workers=cfg.data.num_workers, seed=cfg.seed, num_frames=cfg.data.num_frames)
    cfg.trainer.progress_bar = False
    outputs = build_eval_trainer(cfg).predict(module, datamodule=data)
    logits = torch.cat([o["logits"] for o in outputs]).float().numpy()
    index = torch.cat([o["index"] for o in outputs]).numpy()
    predicted = np.empty(len(test_set), dtype=np.int64)
    predicted[index] = logits.argmax(axis=1)
    return round(100.0 * float(np.mean(predicted == np.asarray(test_set.labels))), 2)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    from skelact.commands.train import train_command
    from skelact.config import load_config
    from skelact.engine.build import open_dataset_store, subset_indices

    overrides = [f"seed={args.seed}", "trainer.progress_bar=false", *args.overrides]
    results = []

    def emit(record: dict) -> None:
        results.append(record)
        print(json.dumps(record), flush=True)

    if not args.skip_minirocket:
        loaded = load_config(args.config, overrides)
        store = open_dataset_store(loaded, progress=False, log=lambda *a, **k: None)
        split = out / "minirocket_split.npz"
        write_minirocket_split(store, subset_indices(loaded, store, "train"), subset_indices(loaded, store, "test"),
                               args.length, split)
        record = run_minirocket(aeon_python(args.aeon_python), split, args.seed)
        record["wall_s"] = round(record["fit_s"] + record["predict_s"], 2)
        emit(record)

    snapshots = snapshot_callback([60.0 * m for m in args.minutes])
    run = out / "skelact"
    started = time.perf_counter()
    train_command(args.config, overrides, run_dir=run, callbacks=[snapshots])
    whole = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    train_s = snapshots.last_step_end
    emit({"system": "skelact", "config": str(Path(args.config).resolve().relative_to(REPO))
          if Path(args.config).resolve().is_relative_to(REPO) else args.config, "seed": args.seed,
          "top1": round(float(metrics["top1"]), 2), "train_s": round(train_s, 1),
          "command_s": round(whole, 1), "epoch": metrics.get("epoch")})

    taken = {s["mark_s"]: s for s in snapshots.snapshots}
    final_state = None
    for minutes in args.minutes:
        mark = 60.0 * minutes
        snap = taken.get(mark)
        if snap is None:  # training ended before this mark: the final weights
            if final_state is None:
                import torch
                final_state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu",
                                         weights_only=True)["state_dict"]
            snap = {"clock_s": train_s, "epoch": metrics.get("epoch"), "global_step": None, "state": final_state,
                    "ended_before": True}
        emit({"system": f"skelact@{minutes:g}min", "top1": test_snapshot(run, snap["state"]),
              "clock_s": round(snap["clock_s"], 1), "epoch": snap["epoch"], "global_step": snap["global_step"],
              "ended_before": bool(snap.get("ended_before", False))})

    ours = next(r for r in results if r["system"] == "skelact")
    theirs = next((r for r in results if r["system"] == "minirocket"), None)
    summary = {"skelact_top1": ours["top1"], "skelact_train_s": ours["train_s"]}
    if theirs is not None:
        summary.update(minirocket_top1=theirs["top1"], minirocket_s=theirs["wall_s"],
                       time_ratio=round(ours["train_s"] / max(theirs["wall_s"], 1e-9), 1),
                       top1_gain=round(ours["top1"] - theirs["top1"], 2))
    print(json.dumps({"summary": summary}), flush=True)
    (out / "time_to_accuracy.json").write_text(json.dumps({"results": results, "summary": summary}, indent=1) + "\n",
                                               encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
