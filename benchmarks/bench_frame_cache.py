"""What the frame cache (:mod:`skelact.video.frame_cache`) buys on this CPU: frames/s from decoding against frames/s
read back from the cache, and the bytes a cached frame takes on disk.

Clips: the six 1920x1080, 30 fps NTU RGB+D clips in ``shared/data/videos`` (``video_clips.CLIPS``) and the
340x256 mmaction2 demo. For each clip and each ``max_side`` (the resize an RGB loader would ask for), one JSON line:

* ``decode``: every frame decoded and scaled by FFmpeg (one decoder thread, as in a DataLoader worker), as
  :meth:`FrameCache.decode` does on a miss;
* ``fill``: decoding plus writing the entry atomically (the first epoch);
* ``read``: every frame of the memory-mapped entry copied into a fresh array (later epochs). The entry was just
  written, so it is read from the page cache: the figure is the warm-cache rate; a cold read is bounded by the disk
  (bytes per frame x frames/s). ``identical`` checks the cached frames equal the decoded ones.

Rates are frames/s on the wall clock and per CPU-second (``video_clips.rates``). The last line is a summary.

    OMP_NUM_THREADS=1 python benchmarks/bench_frame_cache.py [--max-side 112,224] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from video_clips import CLIPS, cpu_seconds, data_root, rates  # noqa: E402  (benchmarks/ is on sys.path)


def _timed(fn, repeat: int):
    """The result of ``fn`` and the (wall, cpu) seconds of its fastest of ``repeat`` runs."""
    best = None
    result = None
    for _ in range(repeat):
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        result = fn()
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        if best is None or wall < best[0]:
            best = (wall, cpu)
    return result, best


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    from skelact.video.frame_cache import FrameCache

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-side", default="112,224", help="comma-separated resize settings (longer side)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is reported")
    args = parser.parse_args(argv)
    videos = data_root() / "videos"
    clips = [videos / c for c in CLIPS] + [videos / "mmaction2_demo.mp4"]
    totals: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-frame-cache-") as tmp:
        for max_side in (int(s) for s in args.max_side.split(",")):
            total = totals.setdefault(max_side, {"frames": 0, "decode_s": 0.0, "read_s": 0.0, "bytes": 0})
            for clip in clips:
                cache = FrameCache(Path(tmp) / str(max_side), max_side=max_side)
                decoded, (dec_wall, dec_cpu) = _timed(lambda: cache.decode(clip), args.repeat)
                cache.entry(clip).unlink(missing_ok=True)
                wall0, cpu0 = time.perf_counter(), cpu_seconds()
                cache.frames(clip)  # miss: decode and write
                fill_wall, fill_cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
                read, (read_wall, read_cpu) = _timed(lambda: np.array(cache.frames(clip)), args.repeat)
                n = int(decoded.shape[0])
                size = cache.entry(clip).stat().st_size
                print(json.dumps({"clip": clip.name, "max_side": max_side, "frame_shape": list(decoded.shape[1:]),
                                  "bytes_per_frame": round(size / n), "entry_bytes": size,
                                  "decode": rates(n, dec_wall, dec_cpu, 4), "fill": rates(n, fill_wall, fill_cpu, 4),
                                  "read": rates(n, read_wall, read_cpu, 4),
                                  "identical": bool(np.array_equal(read, decoded))}), flush=True)
                total["frames"] += n
                total["decode_s"] += dec_wall
                total["read_s"] += read_wall
                total["bytes"] += size
    summary = {"summary": True, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "cpu": _cpu_model(), "python": platform.python_version(), "numpy": np.__version__,
               "settings": {str(k): {"frames": v["frames"], "bytes_per_frame": round(v["bytes"] / v["frames"]),
                                     "decode_fps": round(v["frames"] / v["decode_s"], 1),
                                     "read_fps": round(v["frames"] / v["read_s"], 1),
                                     "speedup": round(v["decode_s"] / v["read_s"], 1)}
                            for k, v in totals.items()}}
    try:
        import av

        summary["pyav"] = av.__version__
    except ImportError:
        pass
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
