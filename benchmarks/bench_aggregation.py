"""How fast can CTR-GCN's channel-wise aggregation run on this CPU, by any PyTorch route?

CTR-GC aggregates every (sample, channel) pair with its own topology: ``z[g, t, u] = sum_x value[g, t, x] *
adjacency[g, x, u]`` for g = (sample, channel), x = (subset, sender joint), i.e. a batch of N * C tiny
``[T, 3V] x [3V, V]`` matrix products per block (skelact.models.ctrgcn.CTRGraphConv.forward). This times, at the
shapes of the three CTR-GCN stages at NW-UCLA size (batch 16, V = 20, C = 64 / 128 / 256, T = 52 / 26 / 13), the
ways PyTorch offers to compute it, forward alone and forward + backward:

- ``bmm``: ``torch.bmm(value, adjacency)`` (what skelact runs);
- ``bmm_t``: the transposed product ``adjacency^T value^T`` (output ``[g, u, t]``);
- ``einsum``: ``torch.einsum('gtx,gxu->gtu')``;
- ``grouped_conv``: a 1-D convolution with one group per (sample, channel) and the topology as its weight;
- ``compiled``: ``torch.compile`` of the broadcast product-and-sum (Inductor writes one reduction loop), with
  ``--compile``.

Achieved GFLOP/s count 2 * g * T * 3V * V per forward (x3 for forward + backward) against the time of the best
of ``--repeats`` calls. The reference points are the machine's sgemm and a large 1x1 convolution
(``benchmarks/bench_ceiling.py``).

``--in-step`` answers the other half of the question: what share of a whole CTR-GCN training step (skelact's model
at NW-UCLA size, cross-entropy, backward, Nesterov SGD) the aggregation products take where they actually run,
among the step's other work and its cache traffic. The model's ``torch.bmm`` is replaced for the run by an
``autograd.Function`` that calls the same ``torch.bmm`` forward and backward (the two products of its gradient)
and adds up their wall time; the step time is measured around the whole step. Unlike ``torch.profiler``, this
adds no per-operator bookkeeping to the rest of the step, which the profiler slows down.

    .venv/bin/python benchmarks/bench_aggregation.py [--threads 2] [--repeats 20] [--compile]
    .venv/bin/python benchmarks/bench_aggregation.py --in-step [--threads 2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import time

STAGES = ((64, 52), (128, 26), (256, 13))  # (channels, frames) of CTR-GCN's three stages at NW-UCLA size


def best_seconds(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--compile", action="store_true", help="also time the torch.compile'd product-and-sum")
    p.add_argument("--in-step", action="store_true",
                   help="instead: the aggregation's share of whole CTR-GCN training steps")
    args = p.parse_args(argv)
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    if args.in_step:
        return share_in_step(args, torch, F)
    joints, subsets = 20, 3
    routes = {
        "bmm": lambda a, b: torch.bmm(a, b),
        "bmm_t": lambda a, b: torch.bmm(b.transpose(1, 2), a.transpose(1, 2)),
        "einsum": lambda a, b: torch.einsum("gtx,gxu->gtu", a, b),
        "grouped_conv": lambda a, b: F.conv1d(a.transpose(1, 2).reshape(1, -1, a.shape[1]),
                                              b.transpose(1, 2).reshape(-1, b.shape[1], 1), groups=a.shape[0]),
    }
    if args.compile:
        routes["compiled"] = torch.compile(lambda a, b: (a.unsqueeze(-1) * b.unsqueeze(1)).sum(2))
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch}))
    for channels, frames in STAGES:
        g, x = args.batch * channels, subsets * joints
        gen = torch.Generator().manual_seed(0)
        value = torch.randn(g, frames, x, generator=gen)
        adjacency = torch.randn(g, x, joints, generator=gen)
        reference = torch.bmm(value, adjacency)
        flop = 2 * g * frames * x * joints
        for name, route in routes.items():
            out = route(value, adjacency).reshape(g, -1)
            if out.shape[1] == frames * joints and name in ("bmm_t", "grouped_conv"):
                out = out.reshape(g, joints, frames).transpose(1, 2).reshape(g, -1)
            err = float((out - reference.reshape(g, -1)).abs().max())
            a = value.clone().requires_grad_()
            b = adjacency.clone().requires_grad_()
            grad = torch.randn_like(route(a, b))

            def train(a=a, b=b, grad=grad, route=route):
                a.grad = b.grad = None
                route(a, b).backward(grad)

            infer_s = best_seconds(lambda route=route: route(value, adjacency), args.repeats)
            train_s = best_seconds(train, args.repeats)
            print(json.dumps({"channels": channels, "frames": frames, "route": name, "max_abs_err": round(err, 6),
                              "infer_ms": round(1e3 * infer_s, 3), "infer_gflops": round(flop / infer_s / 1e9, 1),
                              "train_ms": round(1e3 * train_s, 3),
                              "train_gflops": round(3 * flop / train_s / 1e9, 1)}), flush=True)
    return 0


def share_in_step(args, torch, F) -> int:
    # The model, input and training step that bench_models.py times, so the share applies to its table.
    from bench_models import SIZES, Entry
    from skelact.models import CTRGCN

    plain_bmm = torch.bmm
    spent = {"forward": 0.0, "backward": 0.0}

    class TimedBmm(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            start = time.perf_counter()
            out = plain_bmm(a, b)
            spent["forward"] += time.perf_counter() - start
            return out

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            start = time.perf_counter()
            grad_a, grad_b = plain_bmm(grad, b.transpose(1, 2)), plain_bmm(a.transpose(1, 2), grad)
            spent["backward"] += time.perf_counter() - start
            return grad_a, grad_b

    spec = SIZES["nw_ucla"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, spec["persons"], spec["frames"], spec["joints"], 3, generator=gen)
    y = torch.randint(0, spec["classes"], (args.batch,), generator=gen)
    model = CTRGCN(layout=spec["layout"], num_classes=spec["classes"], num_persons=spec["persons"], seed=0)
    entry = Entry("ctrgcn", model, x, y, torch)

    def gradients():
        model.train()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        return [p.grad.clone() for p in model.parameters()]

    # torch.bmm is swapped process-wide; CTRGraphConv.forward is the only Python caller in the step (matmul,
    # einsum and the convolutions do not go through it). The swap is undone whatever happens.
    plain_gradients = gradients()
    torch.bmm = TimedBmm.apply
    try:
        grad_err = max(float((a - b).abs().max()) for a, b in zip(plain_gradients, gradients()))
        if spent["forward"] == 0.0:
            raise SystemExit("--in-step: the model made no torch.bmm call; nothing to time")
        for _ in range(3):
            entry.train_step()
        spent.update(forward=0.0, backward=0.0)
        steps = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            entry.train_step()
            steps.append(time.perf_counter() - start)
    finally:
        torch.bmm = plain_bmm
    total = sum(steps)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch,
                      "steps": args.repeats, "max_abs_grad_diff": grad_err,
                      "step_ms_median": round(1e3 * sorted(steps)[len(steps) // 2], 1),
                      "aggregation_forward_ms": round(1e3 * spent["forward"] / args.repeats, 1),
                      "aggregation_backward_ms": round(1e3 * spent["backward"] / args.repeats, 1),
                      "aggregation_share_pct": round(100 * (spent["forward"] + spent["backward"]) / total, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
