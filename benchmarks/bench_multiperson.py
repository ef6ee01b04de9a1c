"""Cost of more persons per clip: PoseConv3D against CTR-GCN, forward time and memory for 1, 2, 4 and 8 persons.

PoseConv3D (Duan et al., CVPR 2022, arXiv 2104.13586, Sec. 1 and 3.2) claims that several persons cost it nothing
extra: their heatmaps accumulate into one volume (the maximum, as pyskl), so the 3D CNN sees the same tensor
whatever the count, while a GCN runs its whole network once per person (CTR-GCN: ``[N * M, C, T, V]``) and pools
at the end. This script measures it, one clip at a time (batch 1, ``eval()``, ``torch.no_grad()``, one thread by
default):

- ``poseconv3d_slowonly``: pyskl's SlowOnly on 17 joints x 48 frames x 56 x 56 (the paper's NTU / Kinetics shape);
- ``poseconv3d_x3d_cpu``: X3D-shallow at our CPU recipe's 24 frames x 32 x 32;
- ``ctrgcn``: CTR-GCN (base 64 channels, 10 blocks) on the same 17 COCO joints x 48 frames, (x, y, score) per
  joint, built for ``M`` persons;

for PoseConv3D also the numpy heatmap volume of ``M`` persons (``skelact.data.heatmaps.heatmap_volume``), which is
the part that does grow with the persons. Poses are random joints inside the map (seeded), scores 1; the figures do
not depend on where the joints are.

Time: the median of ``--repeats`` forward passes after a warm-up, the models of one person count interleaved so
that a change in machine load hits all alike. Memory, two figures: ``activation_mb``, the bytes of every leaf
module's output in one forward (what a training step would keep for backward; machine-independent), and
``peak_rss_mb``, the rise of resident memory during the first forward of a fresh process, sampled every
millisecond (the working memory the forward needs at its peak; ``--no-rss`` skips it).

    PYTHONPATH=src python benchmarks/bench_multiperson.py [--persons 1,2,4,8] [--repeats 7] [--threads 1]

Prints one JSON line per (model, persons), then a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

MODELS = ("poseconv3d_slowonly", "poseconv3d_x3d_cpu", "ctrgcn")
JOINTS, FRAMES, CLASSES = 17, 48, 60


def build(model: str, persons: int):
    """``(network, input tensor, heatmap maker or None)`` for one clip of ``persons`` persons."""
    import torch

    from skelact.data.heatmaps import heatmap_volume
    from skelact.models.ctrgcn import CTRGCN
    from skelact.models.poseconv3d import PoseConv3D

    rng = np.random.default_rng(persons)
    torch.manual_seed(0)
    if model == "ctrgcn":
        net = CTRGCN(CLASSES, layout="coco17", num_persons=persons, in_channels=3)
        x = torch.from_numpy(rng.uniform(0, 1, (1, persons, FRAMES, JOINTS, 3)).astype(np.float32))
        return net.eval(), {"x": x}, None
    if model == "poseconv3d_slowonly":
        frames, size = FRAMES, 56
        net = PoseConv3D(CLASSES, JOINTS, backbone="slowonly")
    else:
        frames, size = 24, 32
        net = PoseConv3D(CLASSES, JOINTS, backbone="x3d")
    keypoints = rng.uniform(2, size - 2, (persons, frames, JOINTS, 2)).astype(np.float32)
    scores = np.ones((persons, frames, JOINTS), np.float32)

    def make_heatmap():
        return heatmap_volume(keypoints, scores, (size, size), 0.6)

    volume = torch.from_numpy(make_heatmap())[None]
    return net.eval(), {"heatmap": volume}, make_heatmap


def activation_mb(net, inputs) -> float:
    """MB of every leaf module's output tensors in one forward."""
    import torch

    total = [0]

    def hook(_module, _inputs, output):
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if torch.is_tensor(t):
                total[0] += t.numel() * t.element_size()

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    with torch.no_grad():
        net(**inputs)
    for h in handles:
        h.remove()
    return total[0] / 2 ** 20


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def peak_rss_child(model: str, persons: int, threads: int) -> float:
    """In this fresh process: the highest resident memory during the first forward, less the resident memory just
    before it (MB), sampled every millisecond by a thread (torch releases the GIL inside its operators)."""
    import threading

    import torch

    torch.set_num_threads(threads)
    net, inputs, _ = build(model, persons)
    before = current_rss_mb()
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], current_rss_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    with torch.no_grad():
        net(**inputs)
    done.set()
    sampler.join()
    return max(peak[0], current_rss_mb()) - before


def peak_rss(model: str, persons: int, threads: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--rss-child", model, str(persons), "--threads", str(threads)],
                         capture_output=True, text=True, check=True, env=dict(os.environ))
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--persons", default="1,2,4,8")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument("--rss-child", nargs=2, metavar=("MODEL", "PERSONS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.rss_child:
        print(peak_rss_child(args.rss_child[0], int(args.rss_child[1]), args.threads))
        return 0
    models = args.models.split(",")
    rows = []
    for persons in (int(m) for m in args.persons.split(",")):
        built = {m: build(m, persons) for m in models}
        times = {m: [] for m in models}
        heat_times = {m: [] for m in models}
        with torch.no_grad():
            for m, (net, inputs, _) in built.items():
                net(**inputs)  # warm-up
            for r in range(args.repeats):
                for m in (models if r % 2 == 0 else models[::-1]):
                    net, inputs, make_heatmap = built[m]
                    if make_heatmap is not None:
                        start = time.perf_counter()
                        make_heatmap()
                        heat_times[m].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    net(**inputs)
                    times[m].append(time.perf_counter() - start)
        for m in models:
            net, inputs, make_heatmap = built[m]
            row = {"model": m, "persons": persons, "input_shape": list(next(iter(inputs.values())).shape),
                   "forward_ms": round(statistics.median(times[m]) * 1000, 1),
                   "heatmap_ms": round(statistics.median(heat_times[m]) * 1000, 1) if make_heatmap else None,
                   "activation_mb": round(activation_mb(net, inputs), 1),
                   "peak_rss_mb": None if args.no_rss else round(peak_rss(m, persons, args.threads), 1),
                   "threads": args.threads, "repeats": args.repeats, "loadavg_1min": os.getloadavg()[0]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| model | persons | input | forward (ms) | heatmaps (ms) | activations (MB) | peak RSS rise (MB) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        heat = "-" if r["heatmap_ms"] is None else f"{r['heatmap_ms']:.1f}"
        rss = "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.1f}"
        print(f"| {r['model']} | {r['persons']} | {'x'.join(map(str, r['input_shape']))} | {r['forward_ms']:.1f} "
              f"| {heat} | {r['activation_mb']:.1f} | {rss} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
