"""This machine's float32 matrix-product ceiling, measured three ways at one thread count.

``docs/benchmarks.md`` judges model speed against the best 2048^3 ``torch.mm`` (``bench_models.measure_sgemm``).
This script checks that figure is the machine's and not one library's: the same product through numpy (its own
BLAS, OpenBLAS in the wheels), and as a 2048-channel 1x1 convolution (oneDNN), each the best of ``--repeats`` after
one warm-up call.

    .venv/bin/python benchmarks/bench_ceiling.py [--threads 2] [--repeats 5]

Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    # numpy's BLAS reads its thread count at load time
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import torch

    from bench_models import _cpu_model, best_seconds, measure_sgemm

    torch.set_num_threads(args.threads)
    print(json.dumps({"machine": {"cpu": _cpu_model(), "torch": torch.__version__, "numpy": np.__version__,
                                  "threads": args.threads}}), flush=True)
    n = 2048
    a, b = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
    gflop = 2 * n ** 3 / 1e9
    print(json.dumps({"what": "torch.mm 2048^3", "gflops": round(measure_sgemm(torch, n, args.repeats), 1)}))
    print(json.dumps({"what": "numpy matmul 2048^3", "gflops": round(gflop / best_seconds(lambda: a @ b, args.repeats), 1)}))
    x, w = torch.randn(1, n, 32, 64), torch.randn(n, n, 1, 1)  # 2048 positions: the same FLOPs as the products
    conv = lambda: torch.nn.functional.conv2d(x, w)  # noqa: E731
    print(json.dumps({"what": "conv2d 1x1, 2048 -> 2048 channels, 2048 positions",
                      "gflops": round(gflop / best_seconds(conv, args.repeats), 1)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
