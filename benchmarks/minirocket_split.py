"""MiniRocket (Dempster, Schmidt and Webb, "MiniRocket: A Very Fast (Almost) Deterministic Transform for Time Series
Classification", KDD 2021) on one split of skeleton clips, through aeon's ``MiniRocketClassifier`` (aeon 1.6:
the MiniRocket transform, then a ridge classifier with cross-validated regularisation).

A generic multivariate time-series baseline, run by ``bench_time_to_accuracy.py``: it knows nothing about
skeletons. It reads an ``.npz`` with ``x_train`` / ``x_test`` (``[N, channels, length]`` float32: every joint
coordinate is one channel) and ``y_train`` / ``y_test``, fits on the training part, predicts the test part and
prints one JSON line: accuracy (percent), fit and predict wall times (seconds), aeon's version.

It imports only numpy and aeon, so it runs in a separate virtual environment: aeon 1.6 needs numpy >= 2, while the
main environment's MediaPipe pins numpy < 2.

    .venv-bench/bin/python benchmarks/minirocket_split.py SPLIT.npz [--seed 0] [--jobs 1]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("split", help=".npz with x_train, y_train, x_test, y_test")
    p.add_argument("--seed", type=int, default=0, help="MiniRocket's random state (its dilations and biases)")
    p.add_argument("--jobs", type=int, default=1, help="aeon n_jobs (1: one core, like our recipe's model)")
    args = p.parse_args(argv)

    import aeon
    from aeon.classification.convolution_based import MiniRocketClassifier

    data = np.load(args.split)
    x_train, y_train = data["x_train"].astype(np.float32), data["y_train"]
    x_test, y_test = data["x_test"].astype(np.float32), data["y_test"]
    classifier = MiniRocketClassifier(random_state=args.seed, n_jobs=args.jobs)
    started = time.perf_counter()
    classifier.fit(x_train, y_train)
    fitted = time.perf_counter()
    predicted = classifier.predict(x_test)
    done = time.perf_counter()
    print(json.dumps({"system": "minirocket", "aeon": aeon.__version__,
                      "top1": round(100.0 * float(np.mean(predicted == y_test)), 2),
                      "fit_s": round(fitted - started, 2), "predict_s": round(done - fitted, 2),
                      "train_samples": int(len(y_train)), "test_samples": int(len(y_test)),
                      "channels": int(x_train.shape[1]), "length": int(x_train.shape[2])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
