"""How fast ``skelact prepare`` parses NTU RGB+D ``.skeleton`` files, and how small the resulting store is.

The five genuine NTU samples in ``shared/data/ntu_rgbd_samples/skeleton`` are copied ``--copies`` times each into a
temporary folder under new, unique NTU names (other setup and subject ids, same action), so the run parses real
files of the real size mix (70 to 124 frames, one of them with two bodies). The copies were just written, so they
are read from the page cache: the figure is parsing and writing speed, not disk speed.

Sizes are compared with the two layouts in common use: CTR-GCN's padded ``float32 [N, 300, 150]`` (300 frames x 2
bodies x 25 joints x 3 coordinates x 4 bytes = 180,000 bytes per sample, whatever the clip) and an unpadded
"always two bodies" float32 array (2 x T x 25 x 3 x 4 = 600 T bytes per sample, i.e. 53,640 bytes at these
samples' mean of 89.4 frames).

    .venv/bin/python benchmarks/bench_prepare.py [--copies 400] [--workers 1,2] [--repeat 2]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skelact.data.prepare import prepare
from skelact.data.store_target import default_workers
from skelact.data.store import KEYPOINTS, SkeletonStore

REPO = Path(__file__).resolve().parents[1]
NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
PADDED_BYTES = 300 * 150 * 4  # CTR-GCN's NTU60_CS.npz row: 300 frames x (2 bodies x 25 joints x 3) float32
TWO_BODY_BYTES_PER_FRAME = 2 * 25 * 3 * 4


def data_root() -> Path:
    env = os.environ.get("SKELACT_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def make_copies(samples: list[Path], copies: int, dest: Path) -> int:
    """Copy each sample ``copies`` times under unique valid NTU names; returns the number of files."""
    dest.mkdir(parents=True)
    count = 0
    for path in samples:
        _, camera, _, repetition, action = NTU_NAME.match(path.name).groups()
        for k in range(copies):
            setup, subject = 1 + k % 32, 1 + (k // 32) % 106  # unique (setup, subject) for k < 3392
            if k >= 32 * 106:
                raise SystemExit("at most 3392 copies per sample")
            name = f"S{setup:03d}C{camera}P{subject:03d}R{repetition}A{action}.skeleton"
            shutil.copyfile(path, dest / name)
            count += 1
    return count


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "usable_cores": default_workers(),
            "load_avg_1m_before": os.getloadavg()[0], "python": platform.python_version(),
            "numpy": np.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=400, help="copies of each of the 5 samples (default 400)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to time")
    parser.add_argument("--repeat", type=int, default=2, help="runs per worker count; the fastest is reported")
    args = parser.parse_args(argv)

    samples = sorted((data_root() / "ntu_rgbd_samples" / "skeleton").glob("*.skeleton"))
    if len(samples) != 5:
        raise SystemExit(f"expected the 5 NTU samples under {data_root()}, found {len(samples)}")
    info = machine()
    results: dict = {"benchmark": "prepare_ntu_skeleton", "machine": info}
    with tempfile.TemporaryDirectory(prefix="skelact-bench-") as tmp:
        src = Path(tmp) / "skeleton"
        t0 = time.perf_counter()
        n_files = make_copies(samples, args.copies, src)
        results["files"] = n_files
        results["copy_seconds"] = round(time.perf_counter() - t0, 2)
        runs = {}
        store_path = None
        for workers in (int(w) for w in args.workers.split(",")):
            best = None
            for r in range(args.repeat):
                out = Path(tmp) / f"store-{workers}-{r}"
                report = prepare("ntu", src, out, workers=workers, progress=False)
                if report.rejected:
                    raise SystemExit(f"unexpected rejected files: {report.rejected[:3]}")
                if best is None or report.seconds < best.seconds:
                    best = report
                if store_path is None:
                    store_path = out
                else:
                    shutil.rmtree(out)
            assert best is not None
            runs[str(workers)] = {"seconds": round(best.seconds, 3),
                                  "files_per_s": round(best.num_items / best.seconds, 1),
                                  "frames_per_s": round(best.total_frames / best.seconds, 0)}
        results["prepare"] = runs

        store = SkeletonStore(store_path)
        n = len(store)
        mean_frames = float(store.frames.mean())
        total = store.nbytes()
        keypoints_only = (store.path / KEYPOINTS).stat().st_size
        two_body = TWO_BODY_BYTES_PER_FRAME * mean_frames
        results["store"] = {
            "samples": n,
            "mean_frames": round(mean_frames, 2),
            "bytes_per_sample": round(total / n, 1),
            "keypoint_bytes_per_sample": round(keypoints_only / n, 1),
            "padded_ctrgcn_bytes_per_sample": PADDED_BYTES,
            "two_body_float32_bytes_per_sample": round(two_body, 1),
            "ratio_vs_padded": round(total / n / PADDED_BYTES, 4),
            "ratio_vs_two_body": round(total / n / two_body, 4),
        }

        # random access through the memory map, as a training loader would read it
        rng = np.random.default_rng(0)
        order = rng.permutation(n)
        t0 = time.perf_counter()
        for i in order:
            store[int(i)]
        results["store"]["random_reads_per_s"] = round(n / (time.perf_counter() - t0), 0)
    results["machine"]["load_avg_1m_after"] = os.getloadavg()[0]
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
