"""What estimated poses cost RGBPose-Conv3D runs trained on ground-truth keypoints (issue 24, item 4).

Two stores of the same test videos: ``--gt-store`` (the rendered Penn Action videos with the keypoints they were
drawn from) and ``--estimated-store`` (``skelact extract-poses`` of that store: MediaPipe's keypoints, the same
labels, splits and videos). Each ``RUN`` (a run of ``configs/penn_action/rgbpose_*_cpu.yaml``; one pathway or both)
scores every test sample of each store through its own test pipeline and network
(:meth:`skelact.inference.predictor.Predictor.rgb_pose_probabilities`, what ``skelact predict`` runs on a video).
``--fuse RUN_A RUN_B`` also reports the late fusion (sum of probabilities, 1:1) of two single-pathway runs.
The samples are the ground-truth store's test samples; one that the estimated store lacks (``extract-poses``
rejects a video in which nobody was found) or in which the estimator found nobody in any sampled frame (no subject
to crop) counts as wrong and is reported under ``no_subject``.

    OMP_NUM_THREADS=1 python benchmarks/rgbpose_estimated_poses.py --gt-store GT --estimated-store EST RUN ... \\
        [--fuse RGB_RUN POSE_RUN]

Prints one JSON object: per run and store, top-1 (%) and the sample count.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def scores_on(predictor, store, videos: dict[str, Path]) -> tuple[dict[str, np.ndarray], int]:
    """``({sample name: probabilities}, samples without a subject)`` of the samples ``videos`` names, with the
    keypoints of ``store`` and the frames of the videos (the same for both stores); a sample
    the store lacks (``extract-poses`` rejects a video in which nobody was found) or in which the sampled frames show
    nobody gets probabilities of -1 (wrong)."""
    from skelact.errors import DataError
    from skelact.inference.predictor import decoded_frames

    index = {store.name(i): i for i in range(len(store))}
    out, missing = {}, 0
    for name, video in videos.items():
        i = index.get(name)
        try:
            if i is None:
                raise DataError("no poses", name, "keypoints")
            out[name] = predictor.rgb_pose_probabilities(store[i], decoded_frames(video), video)
        except DataError:
            out[name] = np.full(len(predictor.class_names), -1.0)
            missing += 1
    return out, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--gt-store", required=True)
    parser.add_argument("--estimated-store", required=True)
    parser.add_argument("--fuse", nargs=2, metavar=("RUN_A", "RUN_B"))
    args = parser.parse_args()

    from skelact.data.cache import open_store
    from skelact.inference.predictor import Predictor

    from skelact.engine.build import subset_indices

    stores = {"ground truth": open_store(args.gt_store), "MediaPipe": open_store(args.estimated_store)}
    gt = stores["ground truth"]
    labels = {gt.name(i): int(gt.labels[i]) for i in range(len(gt))}
    report: dict = {"runs": {}}
    probs: dict = {}
    started = time.perf_counter()
    for run in args.runs:
        predictor = Predictor(run)
        videos = {gt.name(int(i)): Path(gt.video_path(int(i))) for i in subset_indices(predictor.loaded, gt, "test")}
        report["runs"][run] = {}
        for kind, store in stores.items():
            scores, missing = scores_on(predictor, store, videos)
            probs[(run, kind)] = scores
            top1 = 100.0 * np.mean([np.argmax(p) == labels[n] and p.max() >= 0 for n, p in scores.items()])
            report["runs"][run][kind] = {"top1": round(float(top1), 2), "samples": len(scores),
                                         "no_subject": missing}
    if args.fuse:
        a, b = args.fuse
        report["late fusion 1:1"] = {}
        for kind in stores:
            pa, pb = probs[(a, kind)], probs[(b, kind)]
            hits = [np.argmax(pa[n] + pb[n]) == labels[n] and min(pa[n].max(), pb[n].max()) >= 0 for n in pa]
            report["late fusion 1:1"][kind] = {"runs": [a, b], "top1": round(100.0 * float(np.mean(hits)), 2),
                                               "samples": len(hits)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
