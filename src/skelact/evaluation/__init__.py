"""Evaluation: metrics, score fusion of several streams, reports and plots.

Depends on numpy only (matplotlib, an optional extra, for the figures in :mod:`skelact.evaluation.plots`).
All accuracies are percentages in [0, 100].
"""

from skelact.evaluation.ensemble import align_runs, ensemble_runs
from skelact.evaluation.fusion import (
    CTRGCN_FOUR_STREAM_WEIGHTS,
    fuse_sci,
    fuse_scores,
    fuse_weighted,
    softmax,
    sparsity_concentration_index,
)
from skelact.evaluation.metrics import (
    classification_metrics,
    confusion_matrix,
    mean_class_accuracy,
    most_confused_pairs,
    per_class_accuracy,
    predictions,
    topk_accuracy,
)
from skelact.evaluation.report import metrics_record, write_report
from skelact.evaluation.run_scores import RunScores, load_run_scores, save_run_scores

__all__ = [
    "CTRGCN_FOUR_STREAM_WEIGHTS",
    "RunScores",
    "align_runs",
    "classification_metrics",
    "confusion_matrix",
    "ensemble_runs",
    "fuse_sci",
    "fuse_scores",
    "fuse_weighted",
    "load_run_scores",
    "mean_class_accuracy",
    "metrics_record",
    "most_confused_pairs",
    "per_class_accuracy",
    "predictions",
    "save_run_scores",
    "softmax",
    "sparsity_concentration_index",
    "topk_accuracy",
    "write_report",
]
