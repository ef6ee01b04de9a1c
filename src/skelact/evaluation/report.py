"""The evaluation report of one test: machine-readable metrics plus the files a person reads.

:func:`write_report` writes, into ``out_dir`` (the run directory, next to the engine's ``scores.npy``):

==================== ====================================================================================
``metrics.json``     ``{"top1", "top5", "mean_class_acc", "epoch", "num_test_samples", "num_classes", ...}``;
                     accuracies in percent (0-100), ``epoch`` an int or null; ``extra`` keys are added
``per_class.csv``    one row per class: ``class_index, class_name, num_samples, num_correct, accuracy,
                     most_confused_with, most_confused_count`` (accuracy in percent, empty if no samples)
``per_class.json``   the same rows as a JSON list (accuracy null for a class without samples)
``confusion.csv``    raw counts, rows = true class, columns = predicted, with a header of class names
``confusion.png``    the confusion matrix with class names (only if matplotlib is installed; see plots.py)
``confused_pairs.json`` the most confused directed pairs true -> predicted (metrics.most_confused_pairs)
``predictions.csv``  ``name, label, prediction, correct`` per sample (only when sample names are given)
==================== ====================================================================================

Every file is written atomically. Accuracies follow the conventions of :mod:`skelact.evaluation.metrics`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import DataError, SkelactError
from skelact.atomic import write_text_atomic
from skelact.evaluation.metrics import (
    check_scores_labels,
    classification_metrics,
    confusion_matrix,
    most_confused_pairs,
    per_class_accuracy,
    predictions,
)

METRICS_FILE = "metrics.json"
PER_CLASS_CSV = "per_class.csv"
PER_CLASS_JSON = "per_class.json"
CONFUSION_CSV = "confusion.csv"
CONFUSION_PNG = "confusion.png"
CONFUSED_PAIRS_FILE = "confused_pairs.json"
PREDICTIONS_FILE = "predictions.csv"

#: how many confused pairs confused_pairs.json lists
NUM_CONFUSED_PAIRS = 20

_PER_CLASS_FIELDS = (
    "class_index",
    "class_name",
    "num_samples",
    "num_correct",
    "accuracy",
    "most_confused_with",
    "most_confused_count",
)


def resolve_class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """The given names as strings (one per class, else a DataError), or ``"class 0"``, ``"class 1"``, ..."""
    if class_names is None:
        return [f"class {i}" for i in range(num_classes)]
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise DataError(
            f"got {len(names)} class names for a {num_classes}-class score matrix", field="class_names"
        )
    return names


def per_class_rows(confusion: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per class (the per_class.csv columns); ``accuracy`` is None for a class without samples."""
    accuracy = per_class_accuracy(confusion)
    off_diagonal = confusion.copy()
    np.fill_diagonal(off_diagonal, 0)
    rows = []
    for index, name in enumerate(class_names):
        worst = int(np.argmax(off_diagonal[index]))
        worst_count = int(off_diagonal[index, worst])
        rows.append(
            {
                "class_index": index,
                "class_name": name,
                "num_samples": int(confusion[index].sum()),
                "num_correct": int(confusion[index, index]),
                "accuracy": None if math.isnan(accuracy[index]) else float(accuracy[index]),
                "most_confused_with": class_names[worst] if worst_count > 0 else None,
                "most_confused_count": worst_count,
            }
        )
    return rows


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _to_builtin(value: Any) -> Any:
    # numpy scalars and arrays arrive in ``extra`` (an epoch from a tensor, a weight vector)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, PathLike):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False, default=_to_builtin) + "\n"


def metrics_record(scores: Any, labels: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The metrics.json dict: ``top1``, ``top5``, ``mean_class_acc`` (percent), ``epoch`` (int or None),
    ``num_test_samples``, ``num_classes``, then the ``extra`` keys (which may set ``epoch`` but not overwrite a
    computed metric: that is a ValueError)."""
    metrics = classification_metrics(scores, labels, topk=(1, 5))
    record: dict[str, Any] = {
        "top1": metrics["top1"],
        "top5": metrics["top5"],
        "mean_class_acc": metrics["mean_class_acc"],
        "epoch": None,
        "num_test_samples": metrics["num_test_samples"],
        "num_classes": metrics["num_classes"],
    }
    for key, value in (extra or {}).items():
        if key in record and key != "epoch":
            raise ValueError(f"extra key {key!r} would overwrite a computed metric")
        record[key] = value
    if record["epoch"] is not None:
        record["epoch"] = int(record["epoch"])
    return record


def write_report(
    out_dir: str | PathLike,
    scores: Any,
    labels: Any,
    class_names: Sequence[str] | None,
    names: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute the metrics of ``scores [N, K]`` against ``labels [N]`` and write the report files into ``out_dir``.

    ``class_names``: K names (None gives "class i"). ``names``: N sample names, for predictions.csv. ``extra``:
    JSON-serialisable keys added to metrics.json (``epoch`` among them; it defaults to null); an ``extra`` key that
    would overwrite a computed metric is an error. Returns the dict written to metrics.json. The confusion PNG is
    skipped with a warning when matplotlib is not installed; everything else is written regardless.
    """
    out_dir = Path(out_dir)
    scores, labels = check_scores_labels(scores, labels)
    num_classes = scores.shape[1]
    class_names = resolve_class_names(class_names, num_classes)
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != scores.shape[0]:
            raise DataError(f"got {len(names)} sample names for {scores.shape[0]} samples", field="names")

    metrics = metrics_record(scores, labels, extra)
    predicted = predictions(scores)
    confusion = confusion_matrix(labels, predicted, num_classes)
    rows = per_class_rows(confusion, class_names)
    pairs = most_confused_pairs(confusion, top=NUM_CONFUSED_PAIRS, class_names=class_names)

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / METRICS_FILE, _json_text(metrics))
    write_text_atomic(out_dir / PER_CLASS_JSON, _json_text(rows))
    write_text_atomic(
        out_dir / PER_CLASS_CSV,
        _csv_text(
            _PER_CLASS_FIELDS,
            [["" if row[f] is None else row[f] for f in _PER_CLASS_FIELDS] for row in rows],
        ),
    )
    write_text_atomic(
        out_dir / CONFUSION_CSV,
        _csv_text(["true \\ predicted", *class_names], [[n, *map(int, r)] for n, r in zip(class_names, confusion)]),
    )
    write_text_atomic(out_dir / CONFUSED_PAIRS_FILE, _json_text(pairs))
    if names is not None:
        write_text_atomic(
            out_dir / PREDICTIONS_FILE,
            _csv_text(
                ("name", "label", "prediction", "correct"),
                [(n, int(t), int(p), int(t == p)) for n, t, p in zip(names, labels, predicted)],
            ),
        )
    try:
        from skelact.evaluation.plots import save_confusion_png

        save_confusion_png(confusion, class_names, out_dir / CONFUSION_PNG, title=out_dir.name)
    except SkelactError as error:
        if error.field != "matplotlib":
            raise
        warnings.warn(f"{out_dir / CONFUSION_PNG} not written: {error.message}", stacklevel=2)
    return metrics
