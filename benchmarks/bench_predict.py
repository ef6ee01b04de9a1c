"""End-to-end speed of ``skelact predict`` on 1080p video: decode, pose, classify (and, separately, render).

For every 1920x1080 clip in ``shared/data/videos`` this times :func:`skelact.inference.predictor.predict` as the CLI
runs it (the MediaPipe estimator created for each video, the whole-clip top-k plus the sliding-window timeline),
with the trained run loaded once beforehand (loading is reported on its own). The classifier's share is timed
again on the already extracted sequence, and ``--render`` is timed as an extra step, since drawing and H.264
encoding are a choice, not part of recognising the action.

Frames per second are given on the wall clock and per CPU-second (frames / CPU time of this process and its
threads), which does not depend on other jobs sharing the cores; the 1-minute load average before and after is
recorded. The issue's goal: the end-to-end path at least 20 frames/s on 2 cores for 1080p input.

    OMP_NUM_THREADS=1 .venv-pose/bin/python benchmarks/bench_predict.py RUN [--render]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from video_clips import CLIPS, cpu_seconds, data_root  # noqa: E402  (benchmarks/ is on sys.path)
from video_clips import rates as _rates  # noqa: E402


class Timer:
    def __enter__(self) -> "Timer":
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, cpu_seconds() - self.cpu


def rates(frames: int, wall: float, cpu: float) -> dict[str, float]:
    return _rates(frames, wall, cpu, digits=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a trained run directory (its model's layout must be one MediaPipe maps to)")
    parser.add_argument("--render", action="store_true", help="also time --render")
    parser.add_argument("--checkpoint", default="last", choices=("best", "last"))
    args = parser.parse_args()

    from skelact.inference.predictor import Predictor, predict, render_prediction

    videos = data_root() / "videos"
    clips = [videos / name for name in CLIPS if (videos / name).exists()]
    if not clips:
        sys.exit(f"no clips found in {videos}")
    load_before = os.getloadavg()[0]
    with Timer() as load:
        predictor = Predictor(args.run, args.checkpoint)
    per_clip, total = [], {"frames": 0, "wall": 0.0, "cpu": 0.0, "classify_wall": 0.0, "classify_cpu": 0.0,
                           "render_wall": 0.0, "render_cpu": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            with Timer() as t:
                result = predict(args.run, clip, mirrored=True, predictor=predictor, checkpoint=args.checkpoint)
            frames = result.sequence.num_frames
            with Timer() as c:  # the classifier alone, on the extracted skeletons: whole clip + timeline
                predictor.probabilities(result.sequence)
                if result.timeline:
                    predictor.probabilities(result.sequence, [(w.start, w.end) for w in result.timeline])
            row = {"clip": clip.name, "top1": result.topk[0].name, "top1_prob": round(result.topk[0].prob, 3),
                   "timeline_windows": len(result.timeline), "end_to_end": rates(frames, t.wall, t.cpu),
                   "classify_ms": round(1000 * c.wall, 1)}
            total["frames"] += frames
            total["wall"] += t.wall
            total["cpu"] += t.cpu
            total["classify_wall"] += c.wall
            total["classify_cpu"] += c.cpu
            if args.render:
                with Timer() as r:
                    render_prediction(result, Path(tmp) / f"{clip.stem}.mp4")
                row["render"] = rates(frames, r.wall, r.cpu)
                total["render_wall"] += r.wall
                total["render_cpu"] += r.cpu
            per_clip.append(row)
    import av
    import numpy
    import torch

    out = {
        "benchmark": "predict_end_to_end", "command": " ".join(["benchmarks/bench_predict.py", *sys.argv[1:]]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "machine": platform.processor() or
        platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "numpy": numpy.__version__, "av": av.__version__,
        "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
        "model_load_s": round(load.wall, 2), "per_clip": per_clip,
        "end_to_end": rates(total["frames"], total["wall"], total["cpu"]),
        "classify_share_of_cpu": round(total["classify_cpu"] / total["cpu"], 4),
    }
    if args.render:
        out["render"] = rates(total["frames"], total["render_wall"], total["render_cpu"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
