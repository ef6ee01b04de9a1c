"""How fast video becomes skeletons on this CPU: decoding alone, then decoding + MediaPipe Pose, then
``extract_poses`` over several clips in 1 and 2 worker processes.

Clips: the 1920x1080, 30 fps NTU RGB+D samples in ``shared/data/videos`` (one H.264, four MPEG-4 Part 2 / DivX, and
pyskl's H.264 sample; 478 frames in all). Each measurement reports wall-clock frames per second and CPU-time frames
per second (frames divided by the CPU seconds the process and its threads used): on a machine shared with other
jobs the wall figure falls with the load while the CPU figure stays, so a quiet 2-core machine would reach about
``min(2, threads in use) x`` the CPU figure. The load average before and after is recorded.

Sections:

* ``decode``: PyAV decoding to RGB at full size and scaled down by swscale (``max_side``), with FFmpeg's frame
  threading (``threads=auto``) and single-threaded (``threads=1``, what each parallel worker uses).
* ``pose``: decode + MediaPipe (model_complexity 1, the model shipped in the wheel; 0 and 2 are tried and
  reported as unavailable when their download fails) at several ``max_side``, with the time spent inside the
  estimator separated out. For NTU A001 it also reports the agreement with the Kinect skeleton (median error of
  per-frame normalised body shapes, and the right wrist's vertical correlation), so speed is not bought with
  accuracy unknowingly.
* ``extract``: :func:`skelact.pose.extract.extract_poses` over all the clips with 1 and 2 workers.

    OMP_NUM_THREADS=1 .venv-pose/bin/python benchmarks/bench_pose.py [--sections decode,pose,extract]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from video_clips import CLIPS, REPO, cpu_seconds, data_root, rates  # noqa: E402  (benchmarks/ is on sys.path)


def bench_decode(clips: list[Path]) -> dict[str, dict[str, float]]:
    from skelact.video.reader import VideoReader

    out = {}
    for max_side in (None, 960, 640, 480):
        for threads in (None, 1):
            frames, wall0, cpu0 = 0, time.perf_counter(), cpu_seconds()
            for clip in clips:
                with VideoReader(clip, max_side=max_side, threads=threads) as reader:
                    for _ in reader:
                        frames += 1
            key = f"max_side={max_side or 'full'},threads={threads or 'auto'}"
            out[key] = rates(frames, time.perf_counter() - wall0, cpu_seconds() - cpu0)
            print(key, out[key], file=sys.stderr)
    return out


def kinect_agreement(keypoints: np.ndarray) -> dict[str, float]:
    """Median normalised shape error and right-wrist y correlation of ntu25 keypoints vs NTU A001's Kinect."""
    from skelact.data.safe_pickle import load_npy
    from skelact.skeleton.layout import get_layout

    ntu = get_layout("ntu25")
    # NTU's txt2npy dict, through the restricted unpickler as the readers load it (np.load(allow_pickle=True) runs
    # whatever a pickle names)
    k = load_npy(data_root() / "ntu_rgbd_samples" / "npy" / "S001C001P001R001A001.skeleton.npy").item()["skel_body0"]
    theirs = np.stack([k[..., 0], -k[..., 1]], axis=-1)

    def shape(p: np.ndarray) -> np.ndarray:
        p = p - p.mean(axis=1, keepdims=True)
        return p / np.sqrt((p ** 2).sum(axis=(1, 2), keepdims=True) / p.shape[1])

    body = [ntu.index(n) for n in ("spine_base", "spine_mid", "spine_shoulder", "neck", "head", "left_shoulder",
                                   "right_shoulder", "left_elbow", "right_elbow", "left_hip", "right_hip",
                                   "left_knee", "right_knee", "left_ankle", "right_ankle")]
    err = np.linalg.norm(shape(keypoints) - shape(theirs), axis=-1)[:, body]
    wrist = ntu.index("right_wrist")
    return {"median_shape_error": round(float(np.median(err)), 4),
            "right_wrist_y_corr": round(float(np.corrcoef(keypoints[:, wrist, 1], theirs[:, wrist, 1])[0, 1]), 4)}


def bench_pose(clips: list[Path]) -> dict[str, object]:
    from skelact.errors import ConfigError
    from skelact.pose.mapping import get_mapping, mirror_sides
    from skelact.pose.mediapipe import MediaPipePose
    from skelact.pose.pipeline import iter_video_poses
    from skelact.skeleton.layout import get_layout

    out: dict[str, object] = {}
    for complexity in (0, 2):
        try:
            with contextlib.redirect_stdout(sys.stderr):  # mediapipe prints its download attempt on stdout
                MediaPipePose(model_complexity=complexity).close()
            out[f"complexity_{complexity}"] = "available (not timed)"
        except ConfigError as e:
            out[f"complexity_{complexity}"] = f"unavailable: {e}"
    mapping = get_mapping("mediapipe33", "ntu25")
    for max_side in (None, 960, 640, 480, 320):
        est = MediaPipePose(model_complexity=1)
        in_pose = [0.0]
        estimate = est.estimate

        def timed(frame: np.ndarray, estimate=estimate):
            t0 = time.perf_counter()
            poses = estimate(frame)
            in_pose[0] += time.perf_counter() - t0
            return poses

        est.estimate = timed  # type: ignore[method-assign]
        frames, wall0, cpu0 = 0, time.perf_counter(), cpu_seconds()
        agreement = None
        for clip in clips:
            kept = [poses for _, _, poses in iter_video_poses(clip, est, max_side=max_side)]
            frames += len(kept)
            if clip.name.startswith("S001C001P001R001A001"):
                kp = np.stack([p.keypoints[0] if p.num_persons else np.zeros((33, 2), np.float32) for p in kept])
                sc = np.stack([p.scores[0] if p.num_persons else np.zeros(33, np.float32) for p in kept])
                kp, sc = mirror_sides(kp, sc, get_layout("mediapipe33"))
                agreement = kinect_agreement(mapping.apply(kp, sc)[0])
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        est.close()
        key = f"max_side={max_side or 'full'}"
        out[key] = {**rates(frames, wall, cpu), "estimator_s": round(in_pose[0], 2),
                    "estimator_fps": round(frames / in_pose[0], 1), "kinect_agreement_A001": agreement}
        print(key, out[key], file=sys.stderr)
    return out


def bench_extract(clips: list[Path]) -> dict[str, object]:
    from skelact.pose.extract import extract_poses

    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(dir=REPO / ".bench" if (REPO / ".bench").is_dir() else None) as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        for clip in clips:
            os.symlink(clip, folder / clip.name)
        for workers in (1, 2):
            cpu0, wall0 = cpu_seconds() + cpu_seconds(children=True), time.perf_counter()
            report = extract_poses(folder, Path(tmp) / f"store{workers}", layout="coco17", workers=workers,
                                   progress=False)
            cpu = cpu_seconds() + cpu_seconds(children=True) - cpu0
            out[f"workers={workers}"] = {**rates(report.total_frames, time.perf_counter() - wall0, cpu),
                                         "samples": report.num_samples, "max_side": "full"}
            print(workers, out[f"workers={workers}"], file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="decode,pose,extract")
    args = parser.parse_args()
    clips = [data_root() / "videos" / c for c in CLIPS]
    import av

    result: dict[str, object] = {
        "benchmark": "pose_extraction",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_avg_1m_before": os.getloadavg()[0], "python": platform.python_version(),
                    "numpy": np.__version__, "av": av.__version__},
        "clips": len(clips)}
    sections = set(args.sections.split(","))
    if "decode" in sections:
        result["decode"] = bench_decode(clips)
    if "pose" in sections:
        result["pose"] = bench_pose(clips)
    if "extract" in sections:
        result["extract"] = bench_extract(clips)
    result["machine"]["load_avg_1m_after"] = os.getloadavg()[0]  # type: ignore[index]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
