"""Training and inference speed of the ST-GCN and CTR-GCN backbones on CPU, side by side with the official CTR-GCN.

For every model x input size x {eager, compiled} x {train, infer} it times whole steps on one fixed random batch:

- ``train``: ``zero_grad``, forward, cross-entropy, backward and an SGD step (momentum 0.9, Nesterov, weight
  decay 1e-4: the CTR-GCN recipe; a small learning rate so that the weights stay sane over the repetitions);
- ``infer``: ``eval()`` forward under ``torch.no_grad()``.

Models of one size are timed interleaved (one step of each in turn, the order reversed every other repetition), so
a change in machine load hits all of them alike; the figure reported is the median over repetitions after a
warm-up. Sizes are NTU-60 (T=64, V=25, M=2, 60 classes) and NW-UCLA (T=52, V=20, M=1, 10 classes), 3 coordinates.

GFLOP per sample come from ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions; a
training step counts forward + backward, not the optimiser's elementwise update), each model counted on its own
graph; achieved GFLOP/s = GFLOP per sample x samples per second, also given as a percentage of this machine's
sgemm ceiling, measured in the same run at the same thread count (the best of a 2048 x 2048 x 2048 float32
``torch.mm`` timed before and after the models; ``--ceiling`` gives a fixed figure instead).

The official CTR-GCN (Uason-Chen/CTR-GCN ``model/ctrgcn.py``) is not part of skelact. When a copy of that file is
found (``--official PATH``, else ``$SKELACT_OFFICIAL_CTRGCN``, ``.bench/official_ctrgcn.py`` in the repository
(git-ignored) or ``/tmp/skref/official_ctrgcn.py``), it is imported unchanged, its graph class replaced by one
returning skelact's ``inward_outward`` partition (the official ``Graph.A``), its initial weights copied into our
CTR-GCN with :func:`skelact.models.ctrgcn.load_official_state_dict`, and the two outputs compared before timing.

    .venv/bin/python benchmarks/bench_models.py [--quick] [--models stgcn,ctrgcn,official]
        [--sizes nw_ucla,ntu60] [--modes eager,compiled] [--threads 2] [--batch 16] [--repeats 9]

Prints one JSON line per measurement and per output check, then a summary table. ``--omp-wait-policy passive``
sets ``OMP_WAIT_POLICY`` before torch loads: on a machine shared with other busy processes, OpenMP threads that
spin at barriers while their partner is descheduled make 2-thread timings swing by 10x; passive waiting keeps them
stable (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = {
    "ntu60": dict(layout="ntu25", frames=64, joints=25, persons=2, classes=60),
    "nw_ucla": dict(layout="nw_ucla20", frames=52, joints=20, persons=1, classes=10),
}
MODELS = ("stgcn", "ctrgcn", "official")
OFFICIAL_CANDIDATES = (REPO / ".bench" / "official_ctrgcn.py", Path("/tmp/skref/official_ctrgcn.py"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 warm-up, 3 timed repetitions, eager only (unless "
                                                          "--modes says otherwise)")
    p.add_argument("--models", default=",".join(MODELS), help="comma list of " + ", ".join(MODELS))
    p.add_argument("--sizes", default="nw_ucla,ntu60", help="comma list of " + ", ".join(SIZES))
    p.add_argument("--modes", default=None, help="comma list of eager, compiled (default both; --quick: eager)")
    p.add_argument("--tasks", default="train,infer", help="comma list of train, infer")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per model (default 2; --quick 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed steps per model (default 9; --quick 3)")
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode (default, max-autotune-no-cudagraphs, ...)")
    p.add_argument("--official", default=None, help="path of the official model/ctrgcn.py")
    p.add_argument("--ceiling", type=float, default=None,
                   help="sgemm GFLOP/s ceiling of the machine (default: measured in this run)")
    p.add_argument("--omp-wait-policy", choices=("passive", "active"), default=None,
                   help="set OMP_WAIT_POLICY before torch loads (default: leave the environment alone)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda (a GPU: steps are timed with torch.cuda.synchronize "
                                                   "around them; the ceiling is an 8192^3 float32 torch.mm)")
    p.add_argument("--matmul-precision", default=None, choices=("highest", "high", "medium"),
                   help="torch.set_float32_matmul_precision for the models and the ceiling (GPU: high = TF32)")
    args = p.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.modes = [m for m in (args.modes or ("eager" if args.quick else "eager,compiled")).split(",") if m]
    for name, values, allowed in (("--models", args.models, MODELS), ("--sizes", args.sizes, tuple(SIZES)),
                                  ("--tasks", args.tasks, ("train", "infer")),
                                  ("--modes", args.modes, ("eager", "compiled"))):
        bad = [v for v in values if v not in allowed]
        if bad:
            p.error(f"{name}: unknown {bad}; expected some of {list(allowed)}")
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.repeats = args.repeats if args.repeats is not None else (3 if args.quick else 9)
    return args


def find_official(path: str | None) -> Path | None:
    candidates = [Path(path)] if path else []
    if os.environ.get("SKELACT_OFFICIAL_CTRGCN"):
        candidates.append(Path(os.environ["SKELACT_OFFICIAL_CTRGCN"]))
    candidates += list(OFFICIAL_CANDIDATES)
    return next((c for c in candidates if c.is_file()), None)


def load_official_module(path: Path, partition):
    """Import the official file unchanged; its ``Model(graph='skelact_bench_graph.Graph')`` gets our partition."""
    import importlib.util

    graph_module = types.ModuleType("skelact_bench_graph")

    class Graph:  # the official Graph(**graph_args).A: [I, norm(inward), norm(outward)], numpy [3, V, V]
        def __init__(self, **_):
            self.A = partition

    graph_module.Graph = Graph
    sys.modules["skelact_bench_graph"] = graph_module
    spec = importlib.util.spec_from_file_location("official_ctrgcn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loadavg() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - platform without getloadavg
        return []


class Entry:
    """One model of one size: how to run it and what it costs."""

    def __init__(self, name: str, model, x, y, torch):
        device = x.device
        model = model.to(device)
        self.name, self.model, self.x, self.y, self.torch = name, model, x, y.to(device), torch
        self.runner = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, nesterov=True,
                                         weight_decay=1e-4)
        self.flops: dict[str, float] = {}

    def train_step(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.runner(self.x), self.y)
        loss.backward()
        self.optimizer.step()

    def infer_step(self) -> None:
        self.model.eval()
        with self.torch.no_grad():
            self.runner(self.x)

    def count_flops(self) -> None:
        from torch.utils.flop_counter import FlopCounterMode

        torch = self.torch
        state = {k: v.clone() for k, v in self.model.state_dict().items()}  # keep BN statistics untouched
        self.model.train()
        counter = FlopCounterMode(display=False)
        with counter:
            torch.nn.functional.cross_entropy(self.model(self.x), self.y).backward()
        self.model.zero_grad(set_to_none=True)
        self.flops["train"] = counter.get_total_flops() / self.x.shape[0]
        self.model.eval()
        counter = FlopCounterMode(display=False)
        # gradients enabled: the module tracker of FlopCounterMode needs them, and the count is the same
        with counter:
            self.model(self.x)
        self.flops["infer"] = counter.get_total_flops() / self.x.shape[0]
        self.model.load_state_dict(state)


def build_entries(size: str, args, torch, official_path: Path | None) -> tuple[list[Entry], dict | None]:
    from skelact.models import CTRGCN, STGCN
    from skelact.models.ctrgcn import load_official_state_dict
    from skelact.skeleton.graph import build_partition

    spec = SIZES[size]
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, spec["persons"], spec["frames"], spec["joints"], 3, generator=gen).to(args.device)
    y = torch.randint(0, spec["classes"], (args.batch,), generator=gen).to(args.device)
    common = dict(num_classes=spec["classes"], num_persons=spec["persons"])
    entries, check = [], None
    if "stgcn" in args.models:
        entries.append(Entry("stgcn", STGCN(layout=spec["layout"], seed=args.seed, **common), x, y, torch))
    ours = None
    if "ctrgcn" in args.models or "official" in args.models:
        ours = CTRGCN(layout=spec["layout"], seed=args.seed, **common)
    if "official" in args.models and official_path is not None:
        partition = build_partition(spec["layout"], "inward_outward")
        module = load_official_module(official_path, partition)
        torch.manual_seed(args.seed)
        official = module.Model(num_class=spec["classes"], num_point=spec["joints"], num_person=spec["persons"],
                                graph="skelact_bench_graph.Graph")
        ours.to(args.device)
        official.to(args.device)
        load_official_state_dict(ours, official.state_dict())
        x_official = x.permute(0, 4, 2, 3, 1).contiguous()  # the official [N, C, T, V, M]
        check = compare_outputs(ours, official, x, x_official, torch)
        check.update(size=size, official_source=str(official_path))
        entries.append(Entry("official", official, x_official, y, torch))
    if "ctrgcn" in args.models:
        entries.append(Entry("ctrgcn", ours, x, y, torch))
    return entries, check


def compare_outputs(ours, official, x, x_official, torch) -> dict:
    """The two CTR-GCNs with the same weights: logits in eval mode and in training mode (batch statistics), and
    the weight gradients of one cross-entropy step, each model's float32 gradients measured against the official
    model run in float64 (float32 gradients of the deeper layers carry ~1e-3 relative rounding error in either
    implementation, so the float64 run is the fair yardstick). BN statistics are restored afterwards."""
    import copy

    from skelact.models.ctrgcn import convert_official_state_dict

    states = [{k: v.clone() for k, v in m.state_dict().items()} for m in (ours, official)]
    out = {"check": "official_vs_skelact_ctrgcn"}
    target = torch.arange(x.shape[0]) % 2
    for mode in ("eval", "train"):
        ours.train(mode == "train")
        official.train(mode == "train")
        with torch.set_grad_enabled(mode == "train"):
            a, b = official(x_official), ours(x)
        out[f"{mode}_logits_max_abs_diff"] = float((a - b).detach().abs().max())
        out[f"{mode}_logits_max_abs"] = float(a.detach().abs().max())
    reference = copy.deepcopy(official).double().train()  # float64 on a GPU too: slow but exact
    grads = {}
    for name, model, inp in (("official", official, x_official), ("reference", reference, x_official.double()),
                             ("ours", ours, x)):
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(inp), target).backward()
        named = dict(model.named_parameters())
        if name == "ours":
            grads[name] = {k: p.grad.double() for k, p in named.items()}
        else:
            sd = {k: v.double() for k, v in model.state_dict().items()}
            sd.update({k: p.grad.double() for k, p in named.items()})
            grads[name] = convert_official_state_dict(sd)
        model.zero_grad(set_to_none=True)
    for name in ("official", "ours"):
        worst = 0.0
        for key, truth in grads["reference"].items():
            # weights only: biases right before a training-mode batch-norm have a true gradient of 0
            if key.endswith("weight") and key in grads["ours"]:
                truth = truth.reshape(grads["ours"][key].shape)
                err = (grads[name][key].reshape(truth.shape) - truth).abs().max() / truth.abs().max().clamp_min(1e-12)
                worst = max(worst, float(err))
        out[f"{name}_float32_weight_grad_max_rel_err"] = worst
    for model, state in zip((ours, official), states):
        model.load_state_dict(state)
    return out


def time_entries(entries: list[Entry], task: str, args, torch) -> dict[str, list[float]]:
    steps = {e.name: (e.train_step if task == "train" else e.infer_step) for e in entries}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for e in entries:
        for _ in range(args.warmup):
            steps[e.name]()
    times: dict[str, list[float]] = {e.name: [] for e in entries}
    order = [e.name for e in entries]
    for rep in range(args.repeats):
        for name in (order if rep % 2 == 0 else order[::-1]):
            sync()
            start = time.perf_counter()
            steps[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def best_seconds(fn, repeats: int, sync=lambda: None) -> float:
    """The fastest of ``repeats`` calls of ``fn``, after one warm-up call; ``sync`` waits for queued GPU work."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def measure_sgemm(torch, n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Best GFLOP/s of an ``n x n x n`` float32 matrix product at the current thread count (or on the GPU)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return 2 * n ** 3 / best_seconds(lambda: torch.mm(a, b), repeats, sync) / 1e9


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.omp_wait_policy:
        if "torch" in sys.modules:
            raise SystemExit("--omp-wait-policy must be set before torch is imported")
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    import platform

    import torch

    torch.set_num_threads(args.threads)
    if args.matmul_precision:
        torch.set_float32_matmul_precision(args.matmul_precision)
    gpu = args.device.startswith("cuda")
    if gpu:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest algorithms once
    official_path = find_official(args.official) if "official" in args.models else None
    if "official" in args.models and official_path is None:
        print(json.dumps({"note": "official CTR-GCN source not found; skipping it (see --official)"}), flush=True)
    machine = dict(torch=torch.__version__, threads=torch.get_num_threads(), batch=args.batch,
                   cpu=_cpu_model(), python=platform.python_version(),
                   omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(unset)"), device=args.device,
                   gpu=torch.cuda.get_device_name(args.device) if gpu else None,
                   matmul_precision=torch.get_float32_matmul_precision())
    print(json.dumps({"machine": machine, "args": {k: v for k, v in vars(args).items()}}), flush=True)
    sgemm_n = 8192 if gpu else 2048
    sgemm = [measure_sgemm(torch, sgemm_n, device=args.device)]
    print(json.dumps({"sgemm_gflops": round(sgemm[0], 1), "when": "before"}), flush=True)
    ceiling = args.ceiling if args.ceiling is not None else sgemm[0]
    rows = []
    for size in args.sizes:
        entries, check = build_entries(size, args, torch, official_path)
        if check is not None:
            print(json.dumps(check), flush=True)
        for e in entries:
            e.count_flops()
        for mode in args.modes:
            for e in entries:
                # dynamic=False: each size is its own fixed-shape program. Left automatic, dynamo recompiles the
                # second size with symbolic shapes (the forward code is shared by every instance of a class), and
                # torch 2.13's inductor then failed on the official CTR-GCN's backward at NTU-60 size after
                # NW-UCLA ("Cannot convert expression to float"); fixed shapes are also what the timed steps use.
                e.runner = (torch.compile(e.model, mode=args.compile_mode, dynamic=False) if mode == "compiled"
                            else e.model)
            for task in args.tasks:
                if mode == "compiled":  # compile outside the timed loop, and say how long it took
                    for e in entries:
                        start = time.perf_counter()
                        (e.train_step if task == "train" else e.infer_step)()
                        print(json.dumps({"compile": e.name, "size": size, "task": task,
                                          "first_step_s": round(time.perf_counter() - start, 1)}), flush=True)
                load_before = loadavg()
                times = time_entries(entries, task, args, torch)
                load_after = loadavg()
                for e in entries:
                    median = statistics.median(times[e.name])
                    sps = args.batch / median
                    gflop = e.flops[task] / 1e9
                    row = dict(size=size, model=e.name, mode=mode, task=task, samples_per_s=round(sps, 2),
                               step_ms_median=round(1000 * median, 1), step_ms_min=round(1000 * min(times[e.name]), 1),
                               repeats=len(times[e.name]), gflop_per_sample=round(gflop, 3),
                               achieved_gflops=round(gflop * sps, 1),
                               pct_of_ceiling=round(100 * gflop * sps / ceiling, 1),
                               load_before=load_before, load_after=load_after, **machine)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    sgemm.append(measure_sgemm(torch, sgemm_n, device=args.device))
    print(json.dumps({"sgemm_gflops": round(sgemm[1], 1), "when": "after"}), flush=True)
    if args.ceiling is None:
        # the rows were printed against the first measurement; the table uses the better of the two
        ceiling = max(sgemm)
        for r in rows:
            r["pct_of_ceiling"] = round(100 * r["achieved_gflops"] / ceiling, 1)
    print_table(rows, args, ceiling)
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    import platform

    return platform.processor() or "unknown"


def machine_where(rows: list[dict]) -> str:
    return f"{rows[0]['gpu']}, " if rows and rows[0].get("gpu") else ""


def print_table(rows: list[dict], args, ceiling: float) -> None:
    official = {(r["size"], r["mode"], r["task"]): r["samples_per_s"] for r in rows if r["model"] == "official"}
    head = (f"{'size':8} {'model':9} {'mode':8} {'task':5} {'samples/s':>9} {'ms/step':>8} {'GFLOP/smp':>9} "
            f"{'GFLOP/s':>8} {'% ceil':>6} {'x official':>10}")
    print()
    where = machine_where(rows)
    print(f"{where}batch {args.batch}, {args.threads} threads, median of {args.repeats} interleaved steps; "
          f"sgemm ceiling {ceiling:.0f} GFLOP/s"
          f"{' (given)' if args.ceiling is not None else ' (measured, best of before and after)'}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ref = official.get((r["size"], r["mode"], r["task"]))
        ratio = f"{r['samples_per_s'] / ref:.2f}" if ref and r["model"] == "ctrgcn" else ""
        print(f"{r['size']:8} {r['model']:9} {r['mode']:8} {r['task']:5} {r['samples_per_s']:9.1f} "
              f"{r['step_ms_median']:8.1f} {r['gflop_per_sample']:9.2f} {r['achieved_gflops']:8.1f} "
              f"{r['pct_of_ceiling']:6.1f} {ratio:>10}")


if __name__ == "__main__":
    sys.exit(main())
