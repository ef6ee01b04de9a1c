"""Training speed of SkeletonMAE pre-training and STRL fine-tuning on this CPU: samples (clips) per second of one
optimiser step (forward, loss, backward, optimiser step) at the configs' sizes, NW-UCLA-shaped batches (32 clips x
1 person x 64 frames x 20 joints x 3 coordinates) and Penn-Action-shaped ones (13 joints x 2).

Real NW-UCLA / Penn Action sizes, random coordinates in [-1, 1] (speed does not depend on the values). Two clocks:
wall time and the process's CPU time; with one thread every operation runs in the calling thread, so on a busy
shared machine the CPU time is the work itself and the robust figure. Medians over ``--steps`` steps after
``--warmup``. Also prints what the paper's 50 pre-training epochs of NW-UCLA (1020 clips) would take at that
rate.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_skeletonmae.py [--steps 10] [--warmup 2] [--threads 1]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from skelact.methods.body_masking import BodyRegionMasker
from skelact.methods.skeletonmae import MaskedGraphAutoencoder, SkeletonMAEMethod
from skelact.models.skeleton_gin import SkeletonGIN
from skelact.models.strl import STRL
from skelact.skeleton.layout import get_layout


def timed_steps(step, steps: int, warmup: int) -> dict:
    walls, cpus = [], []
    for i in range(warmup + steps):
        w, c = time.perf_counter(), time.process_time()
        step()
        if i >= warmup:
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
    return {"wall_s": float(np.median(walls)), "cpu_s": float(np.median(cpus))}


def bench(layout_name: str, coords: int, batch: int, frames: int, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    layout = get_layout(layout_name)
    x = torch.rand(batch, 1, frames, layout.num_joints, coords) * 2 - 1
    labels = torch.randint(0, 10, (batch,))
    mae = SkeletonMAEMethod({"joint": MaskedGraphAutoencoder(SkeletonGIN(10, layout_name, coords))},
                            BodyRegionMasker(dict(layout.parts), layout.num_joints,
                                             regions=["right_arm", "right_leg"]))
    adam = torch.optim.AdamW(mae.parameters(), lr=1e-3)

    def mae_step():
        loss = mae.training_step({"x": {"joint": x}})[0]
        adam.zero_grad()
        loss.backward()
        adam.step()

    strl = STRL(10, layout_name, coords)
    sgd = torch.optim.SGD(strl.parameters(), lr=0.1, momentum=0.9)

    def strl_step():
        loss = F.cross_entropy(strl(x), labels, label_smoothing=0.1)
        sgd.zero_grad()
        loss.backward()
        sgd.step()

    out = {}
    for name, step in (("pretrain", mae_step), ("finetune", strl_step)):
        t = timed_steps(step, steps, warmup)
        out[name] = {**t, "clips_per_s_wall": batch / t["wall_s"], "clips_per_s_cpu": batch / t["cpu_s"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "batch": args.batch, "frames": args.frames, "cpu": platform.processor(),
              "loadavg_before": os.getloadavg()[0]}
    result["nw_ucla"] = bench("nw_ucla20", 3, args.batch, args.frames, args.steps, args.warmup)
    result["penn_action"] = bench("penn13", 2, args.batch, args.frames, args.steps, args.warmup)
    for clock in ("wall", "cpu"):
        rate = result["nw_ucla"]["pretrain"][f"clips_per_s_{clock}"]
        result[f"nw_ucla_50_pretrain_epochs_min_{clock}"] = 50 * 1020 / rate / 60
    result["loadavg_after"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
