"""Multi-stream ensembles of finished runs: fuse their saved per-sample test scores and report the result.

The usual use is CTR-GCN's 4-stream ensemble (joint, bone, joint-motion, bone-motion runs, weights
:data:`~skelact.evaluation.fusion.CTRGCN_FOUR_STREAM_WEIGHTS`). CTR-GCN's ``ensemble.py`` pairs the streams'
scores by position and trusts them to be in the same order; here every run's samples are matched by name, so
runs evaluated in different orders still fuse correctly, and runs over different samples are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import ConfigError, StoreError
from skelact.evaluation.fusion import FUSION_METHODS, fuse_scores
from skelact.evaluation.metrics import classification_metrics
from skelact.evaluation.report import metrics_record, write_report
from skelact.evaluation.run_scores import LABELS_FILE, NAMES_FILE, RunScores, load_run_scores, save_run_scores


def align_runs(runs: Sequence[RunScores]) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Reorder every run's scores into the first run's sample order.

    Returns ``(scores per run, labels, names)``. A run covering other samples, or giving a sample another label,
    is a StoreError naming that run's directory and file.
    """
    reference = runs[0]
    aligned = [reference.scores]
    for run in runs[1:]:
        if run.names == reference.names:
            order = np.arange(len(run.names))
        else:
            position = {name: i for i, name in enumerate(run.names)}
            missing = [n for n in reference.names if n not in position]
            extra = sorted(set(run.names) - set(reference.names))
            if missing or extra:
                # (a list times bool would still index an empty list)
                examples = ", ".join(
                    ([f"missing {missing[0]!r}"] if missing else []) + ([f"extra {extra[0]!r}"] if extra else [])
                )
                raise StoreError(
                    f"covers other samples than {reference.run_dir}: {len(missing)} missing, {len(extra)} extra "
                    f"(e.g. {examples})",
                    path=run.run_dir,
                    field=NAMES_FILE,
                )
            order = np.array([position[n] for n in reference.names], dtype=np.int64)
        if run.scores.shape[1] != reference.scores.shape[1]:
            raise StoreError(
                f"has {run.scores.shape[1]} classes, {reference.run_dir} has {reference.scores.shape[1]}",
                path=run.run_dir,
                field="scores.npy",
            )
        labels = run.labels[order]
        disagree = np.flatnonzero(labels != reference.labels)
        if disagree.size:
            first = int(disagree[0])
            raise StoreError(
                f"labels differ from {reference.run_dir} on {disagree.size} samples (e.g. {reference.names[first]!r}: "
                f"{int(labels[first])} vs {int(reference.labels[first])})",
                path=run.run_dir,
                field=LABELS_FILE,
            )
        aligned.append(run.scores[order])
    return aligned, reference.labels, list(reference.names)


def ensemble_runs(
    run_dirs: Sequence[str | PathLike],
    weights: Sequence[float] | None = None,
    method: str = "weighted",
    out_dir: str | PathLike | None = None,
    class_names: Sequence[str] | None = None,
    normalize: str | None = None,
) -> dict[str, Any]:
    """Fuse the test scores of ``run_dirs`` and return the fused metrics (percent, as in metrics.json).

    ``method="weighted"``: ``sum_s weights[s] * scores_s`` on raw logits, CTR-GCN's rule (``normalize="softmax"``
    fuses probabilities instead); ``method="sci"``: FstCN's per-sample SCI weighting (see
    :mod:`skelact.evaluation.fusion`). ``weights`` default to 1 for every run. The returned dict also holds
    ``method``, ``weights``, ``normalize`` and ``runs`` (each run's directory, weight and own top1 / top5 /
    mean_class_acc, so the gain of the ensemble is visible). With ``out_dir`` the full report
    (:func:`~skelact.evaluation.report.write_report`) and the fused scores.npy / labels.npy / names.json are written
    there.
    """
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ConfigError("no run directories to ensemble", field="runs")
    if method not in FUSION_METHODS:
        expected = ", ".join(FUSION_METHODS)
        raise ConfigError(f"unknown fusion method {method!r}; expected one of {expected}", field="method")
    runs = [load_run_scores(d) for d in run_dirs]
    stream_scores, labels, names = align_runs(runs)
    # rounded to the stored precision first, so re-evaluating the saved scores.npy gives exactly these metrics
    fused = fuse_scores(stream_scores, weights, method=method, normalize=normalize).astype(np.float32)
    used_weights = [1.0] * len(runs) if weights is None else [float(w) for w in weights]
    per_run = []
    for run_dir, weight, scores in zip(run_dirs, used_weights, stream_scores):
        own = classification_metrics(scores, labels, topk=(1, 5))
        per_run.append(
            {
                "run_dir": str(run_dir),
                "weight": weight,
                "top1": own["top1"],
                "top5": own["top5"],
                "mean_class_acc": own["mean_class_acc"],
            }
        )
    extra = {
        "method": method,
        "weights": used_weights,
        "normalize": normalize if method == "weighted" else "softmax",
        "runs": per_run,
    }
    if out_dir is None:
        return metrics_record(fused, labels, extra)
    save_run_scores(out_dir, fused, labels, names)
    return write_report(out_dir, fused, labels, class_names, names=names, extra=extra)
