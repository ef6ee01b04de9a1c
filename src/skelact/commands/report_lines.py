"""The lines ``train``, ``test``, ``evaluate`` and ``ensemble`` print about the results they wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def metrics_line(metrics: dict[str, Any]) -> str:
    return (f"top1 {metrics['top1']:.2f} %   top5 {metrics['top5']:.2f} %   "
            f"mean class acc {metrics['mean_class_acc']:.2f} %")


def checkpoint_line(metrics: dict[str, Any]) -> str:
    """``(last checkpoint, epoch 5, 40 samples)``; a figure of the ``best`` checkpoint says it was selected on the
    test set."""
    from skelact.engine.runs import checkpoint_note

    which = str(metrics.get("checkpoint"))
    return (f"({which} checkpoint, epoch {metrics.get('epoch')}, {metrics['num_test_samples']} samples"
            f"{checkpoint_note(which)})")


def print_outputs(directory: Any) -> None:
    """The result files a test or an ensemble wrote, the confusion-matrix image first."""
    from skelact.evaluation.report import CONFUSION_CSV, CONFUSION_PNG, METRICS_FILE, PER_CLASS_CSV
    from skelact.evaluation.run_scores import SCORES_FILE

    d = Path(directory)
    if (d / CONFUSION_PNG).is_file():
        print(f"confusion matrix  {d / CONFUSION_PNG}")
    else:
        print(f"confusion matrix  {d / CONFUSION_CSV} (no PNG: install matplotlib, pip install 'skelact[plots]')")
    print(f"metrics           {d / METRICS_FILE}")
    print(f"per class         {d / PER_CLASS_CSV}")
    print(f"per-sample scores {d / SCORES_FILE}")
