"""Training-time overhead of FR-Head over the plain CTR-GCN: full-width CTR-GCN (1.43 M parameters), NW-UCLA-sized
batches (16 clips x 1 person x 52 frames x 20 joints x 3 coordinates, real training samples through the NW-UCLA
training pipeline, joint modality), one optimiser step = forward, loss, backward and SGD step.

The two methods wrap identically initialised backbones (same seed) and alternate step by step (A, B, B, A, ...) on
the same batches, so a slow patch on a shared machine hits both. Two clocks: wall time, and the CPU time of the
process. On a busy shared machine wall time swings with the other jobs; with one thread (the default) every torch
operation, the backward pass included, runs in the calling thread, so the process CPU time is the work itself and
is the robust figure there. Medians, minima and the ratio of the sums are reported. FR-Head's step includes its four
heads (blocks 1, 5, 8, 10; spatial and temporal branches), the prototype updates and the extra loss terms. Last, the
heads alone (forward + backward on fixed stage features, 20 repeats) are timed against the baseline step.

    .venv/bin/python benchmarks/bench_frhead_overhead.py [--steps 16] [--warmup 2] [--threads 1] [--device cpu]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from skelact.config import load_config
from skelact.data.dataset import collate_skeletons
from skelact.engine.build import build_dataset, build_method, build_model, open_dataset_store

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "nw_ucla"


def step_timer(method: torch.nn.Module, device: torch.device):
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)

    def step(batch: dict) -> tuple[float, float]:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        loss, *_ = method.training_step(batch)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - cpu

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    baseline_cfg = load_config(CONFIGS / "ctrgcn_joint.yaml", ["model.seed=1"])
    frhead_cfg = load_config(CONFIGS / "ctrgcn_frhead_joint.yaml", ["model.seed=1"])
    store = open_dataset_store(baseline_cfg, progress=False, log=lambda _: None)
    train_set = build_dataset(baseline_cfg, store, "train")
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(args.warmup + args.steps):
        picks = rng.choice(len(train_set), size=args.batch_size, replace=False)
        batch = collate_skeletons([train_set[int(i)] for i in picks])
        # tensors to the device; the batch also names its inputs (a tuple of strings, kept as it is)
        batches.append({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()})

    baseline = build_method(baseline_cfg, build_model(baseline_cfg, store)).to(device).train()
    frhead = build_method(frhead_cfg, build_model(frhead_cfg, store)).to(device).train()
    backbone_params = sum(p.numel() for p in baseline.parameters())
    head_params = sum(p.numel() for p in frhead.parameters()) - backbone_params
    steps = {"baseline": step_timer(baseline, device), "frhead": step_timer(frhead, device)}
    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "frhead": []}
    for i, batch in enumerate(batches):
        order = ("baseline", "frhead") if i % 2 == 0 else ("frhead", "baseline")
        for name in order:
            elapsed = steps[name](batch)
            if i >= args.warmup:
                times[name].append(elapsed)
    base, fr = np.array(times["baseline"]), np.array(times["frhead"])  # [steps, (wall, cpu)]

    def pct(a: float, b: float) -> float:
        return round(100.0 * (b / a - 1.0), 2)

    summary = {
        "device": (f"cpu, {args.threads} thread(s), {platform.machine()}, nproc {os.cpu_count()}"
                   if device.type == "cpu" else torch.cuda.get_device_name(device)),
        "batch": [args.batch_size, 1, 52, 20, 3],
        "steps": args.steps,
        "backbone_parameters": backbone_params,
        "frhead_training_only_parameters": head_params,
    }
    for k, clock in enumerate(("wall", "cpu")):
        b, f = base[:, k], fr[:, k]
        summary[clock] = {
            "baseline_median_s": round(float(np.median(b)), 4), "frhead_median_s": round(float(np.median(f)), 4),
            "baseline_min_s": round(float(b.min()), 4), "frhead_min_s": round(float(f.min()), 4),
            "overhead_median_pct": pct(np.median(b), np.median(f)), "overhead_min_pct": pct(b.min(), f.min()),
            "overhead_total_pct": pct(b.sum(), f.sum()),
        }
    # the heads alone (forward + backward on fixed stage features, many repeats): the part FR-Head adds, measured
    # without the backbone's noise around it
    with torch.no_grad():
        logits, taps = frhead.model(batches[0]["x"], return_features=True)
    taps = [t.detach().requires_grad_(True) for t in taps]
    labels = batches[0]["label"]
    repeats = 20
    cpu = time.process_time()
    for _ in range(repeats):
        total, _ = frhead.heads(taps, labels, logits)
        total.backward()
    heads_cpu = (time.process_time() - cpu) / repeats
    summary["heads_only_cpu_s"] = round(heads_cpu, 4)
    summary["heads_only_vs_baseline_step_pct"] = round(100.0 * heads_cpu / float(np.median(base[:, 1])), 2)
    summary["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
