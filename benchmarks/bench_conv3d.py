"""Size, compute and CPU speed of PoseConv3D's 3D-CNN backbones (ResNet3D-SlowOnly, C3D-light, X3D-shallow), each
with its I3D head, on heatmap volumes.

For every backbone it prints one JSON line per input size with the parameters (backbone alone and with the head)
and the compute of one forward pass per sample, then one JSON line per size x thread count with the median time of:

- ``forward``: ``eval()`` forward under ``torch.no_grad()``;
- ``train_step``: ``zero_grad``, forward, cross-entropy, backward and an SGD step (momentum 0.9, weight decay 3e-4,
  as the PoseConv3D recipe; a small learning rate so that the weights stay sane over the repetitions).

Compute is counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products; batch-norm,
ReLU, pooling and the residual sums are not counted). It counts a multiply-add as 2 FLOPs; pyskl's and the paper's
"GFLOPs" are multiply-accumulates (mmcv's counter), so ``gmacs`` = FlopCounterMode's total / 2 is the figure to
compare with them, and ``gflops`` = 2 x ``gmacs`` is given beside it.

Sizes: ``full`` is the paper's 17 x 48 x 56 x 56 (17 COCO joints, 48 frames, 56 x 56 crops); ``cpu`` is
17 x 32 x 48 x 48, an input a CPU recipe can afford; ``recipe`` is 13 x 24 x 32 x 32, the input of the Penn Action
CPU configs (13 joints, 24 frames, 32 x 32).

``--memory-formats`` times the model with its volumes in ``channels_last_3d`` (``PoseConv3D(channels_last=True)``,
the default) and/or contiguous (``channels_last=False``), same weights and inputs.

    .venv/bin/python benchmarks/bench_conv3d.py [--backbones slowonly,c3d,x3d] [--sizes full,cpu,recipe]
        [--threads 1,2] [--batch 1] [--repeats 3] [--warmup 1] [--omp-wait-policy passive]
        [--memory-formats channels_last,contiguous]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

SIZES = {"full": (17, 48, 56, 56), "cpu": (17, 32, 48, 48), "recipe": (13, 24, 32, 32)}
MEMORY_FORMATS = ("channels_last", "contiguous")
BACKBONES = ("slowonly", "c3d", "x3d")
NUM_CLASSES = 60


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbones", default=",".join(BACKBONES), help="comma list of " + ", ".join(BACKBONES))
    p.add_argument("--sizes", default=",".join(SIZES), help="comma list of " + ", ".join(SIZES))
    p.add_argument("--threads", default="1,2", help="comma list of torch thread counts")
    p.add_argument("--batch", type=int, default=1, help="samples per timed step")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed repetitions first")
    p.add_argument("--omp-wait-policy", choices=("passive", "active"), default=None,
                   help="set OMP_WAIT_POLICY before torch loads (default: leave the environment alone)")
    p.add_argument("--memory-formats", default="channels_last",
                   help="comma list of " + ", ".join(MEMORY_FORMATS) + " (the volumes' layout inside the model)")
    args = p.parse_args(argv)
    args.memory_formats = [m for m in args.memory_formats.split(",") if m]
    for m in args.memory_formats:
        if m not in MEMORY_FORMATS:
            p.error(f"--memory-formats: unknown {m!r}; expected {', '.join(MEMORY_FORMATS)}")
    args.backbones = [b for b in args.backbones.split(",") if b]
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.threads = [int(t) for t in args.threads.split(",") if t]
    for b in args.backbones:
        if b not in BACKBONES:
            p.error(f"--backbones: unknown {b!r}; expected {', '.join(BACKBONES)}")
    for s in args.sizes:
        if s not in SIZES:
            p.error(f"--sizes: unknown {s!r}; expected {', '.join(SIZES)}")
    if args.batch < 1 or args.repeats < 1 or args.warmup < 0 or not args.threads or min(args.threads) < 1:
        p.error("--batch, --repeats and --threads must be positive, --warmup not negative")
    return args


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def median_ms(step, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.omp_wait_policy:
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from skelact.models import PoseConv3D

    torch.manual_seed(0)
    for name in args.backbones:
        for size in args.sizes:
            shape = SIZES[size]
            model = PoseConv3D(NUM_CLASSES, shape[0], name)
            x = torch.rand(args.batch, *shape)
            y = torch.arange(args.batch) % NUM_CLASSES
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                model.eval()(x[:1])
            flops = counter.get_total_flops()
            emit(dict(kind="size", backbone=name, size=size, input=list(shape),
                      params_backbone=sum(p.numel() for p in model.backbone.parameters()),
                      params_total=sum(p.numel() for p in model.parameters()),
                      gmacs=round(flops / 2e9, 3), gflops=round(flops / 1e9, 3)))
            optimiser = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=3e-4)

            def forward():
                with torch.no_grad():
                    model.eval()(x)

            def train_step():
                model.train()
                optimiser.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimiser.step()

            for threads in args.threads:
                torch.set_num_threads(threads)
                for memory_format in args.memory_formats:
                    model.memory_format = (torch.channels_last_3d if memory_format == "channels_last"
                                           else torch.contiguous_format)
                    for what, step in (("forward", forward), ("train_step", train_step)):
                        ms = median_ms(step, args.repeats, args.warmup)
                        emit(dict(kind="time", backbone=name, size=size, input=list(shape), threads=threads,
                                  memory_format=memory_format, batch=args.batch, step=what, ms=round(ms, 1),
                                  ms_per_sample=round(ms / args.batch, 1), repeats=args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
