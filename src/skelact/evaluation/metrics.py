"""Classification metrics on per-sample score matrices.

Inputs everywhere: ``scores`` float ``[N, K]`` (raw logits or probabilities; every metric here depends only on
the ranking of the classes within a row) and ``labels`` integer ``[N]`` with 0-based class indices in ``[0, K)``.

Percent convention: every accuracy returned by this module is a percentage in ``[0, 100]`` (``87.5``, not
``0.875``), the unit papers and the CTR-GCN logs print. ``metrics.json`` uses the same unit.

Tie rule: when several classes share a score, the lower class index ranks first. Top-1 is then exactly
``numpy.argmax`` (which returns the first maximum), the prediction CTR-GCN's evaluation takes with ``torch.max`` /
``np.argmax``, and top-k is the first ``k`` entries of a stable descending sort. A sample whose true class ties
with others is therefore neither always counted right nor always wrong; the rule is deterministic and documented.

Per-class accuracy is recall per class (diagonal of the confusion matrix over its row sums), as in CTR-GCN's
``each_class_acc`` output. A class without test samples has no accuracy (NaN) and is left out of the mean class
accuracy, which averages over the classes that occur in ``labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from skelact.errors import DataError


def check_scores_labels(scores: Any, labels: Any, path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores float64 [N, K], labels int64 [N])`` or raise one :class:`DataError` naming the field.

    ``path`` names the file the arrays came from, for the message.
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise DataError(
            f"expected a non-empty [N, K] score matrix, got shape {scores.shape}", path=path, field="scores"
        )
    if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(scores.dtype, np.complexfloating):
        raise DataError(f"expected real numbers, got dtype {scores.dtype}", path=path, field="scores")
    scores = scores.astype(np.float64, copy=False)
    if not np.all(np.isfinite(scores)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(scores), axis=1))[0])
        raise DataError(f"contains NaN or infinity (first at sample {bad})", path=path, field="scores")
    if labels.ndim != 1 or labels.shape[0] != scores.shape[0]:
        raise DataError(
            f"expected {scores.shape[0]} labels (one per score row), got shape {labels.shape}",
            path=path,
            field="labels",
        )
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels))):
            raise DataError(f"expected integer class indices, got dtype {labels.dtype}", path=path, field="labels")
    labels = labels.astype(np.int64)
    num_classes = scores.shape[1]
    out_of_range = (labels < 0) | (labels >= num_classes)
    if np.any(out_of_range):
        bad = int(np.flatnonzero(out_of_range)[0])
        raise DataError(
            f"label {int(labels[bad])} of sample {bad} is outside [0, {num_classes}) (the score matrix has "
            f"{num_classes} classes)",
            path=path,
            field="labels",
        )
    return scores, labels


def predictions(scores: Any) -> np.ndarray:
    """Top-1 class per sample, int64 ``[N]`` (the first maximum on ties, like ``np.argmax``)."""
    return np.argmax(np.asarray(scores), axis=1).astype(np.int64)


def true_class_rank(scores: Any, labels: Any) -> np.ndarray:
    """0-based rank of each sample's true class, int64 ``[N]``: 0 means it is the top-1 prediction.

    Rank = classes scoring strictly higher + classes scoring equally with a lower index (the module's tie rule).
    """
    scores, labels = check_scores_labels(scores, labels)
    rows = np.arange(scores.shape[0])
    true_score = scores[rows, labels][:, None]
    lower_index = np.arange(scores.shape[1])[None, :] < labels[:, None]
    ahead = (scores > true_score) | ((scores == true_score) & lower_index)
    return ahead.sum(axis=1).astype(np.int64)


def topk_accuracy(scores: Any, labels: Any, k: int = 1) -> float:
    """Percentage of samples whose true class is among the ``k`` best-scored classes (tie rule in the module doc).

    With ``k >= K`` every sample counts as correct (CTR-GCN reports top-5 on NW-UCLA's 10 classes the same way).
    """
    if int(k) < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return float(100.0 * np.mean(true_class_rank(scores, labels) < int(k)))


def confusion_matrix(labels: Any, predicted: Any, num_classes: int) -> np.ndarray:
    """Counts int64 ``[K, K]``: row = true class, column = predicted class (scikit-learn's orientation)."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise DataError(f"labels {labels.shape} and predictions {predicted.shape} differ in shape", field="labels")
    for field, values in (("labels", labels), ("predictions", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise DataError(f"values must lie in [0, {num_classes})", field=field)
    flat = labels * num_classes + predicted
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes).astype(np.int64)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall per class in percent, float64 ``[K]``; NaN for a class with no samples (its row sums to 0)."""
    confusion = np.asarray(confusion)
    support = confusion.sum(axis=1)
    correct = np.diag(confusion)
    accuracy = np.full(confusion.shape[0], np.nan)
    present = support > 0
    accuracy[present] = 100.0 * correct[present] / support[present]
    return accuracy


def mean_class_accuracy(scores: Any, labels: Any) -> float:
    """Mean of the per-class accuracies (percent) over the classes that have at least one sample."""
    scores, labels = check_scores_labels(scores, labels)
    confusion = confusion_matrix(labels, predictions(scores), scores.shape[1])
    return float(np.nanmean(per_class_accuracy(confusion)))


def most_confused_pairs(
    confusion: np.ndarray, top: int | None = 10, class_names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The off-diagonal cells of the confusion matrix with the most samples, as directed pairs true -> predicted.

    Each entry: ``true``, ``predicted`` (class indices), ``true_name``, ``predicted_name``, ``count`` and ``rate``
    (percent of the true class's samples that went to ``predicted``). Ordered by count, then rate, descending; equal
    ones by ``(true, predicted)`` ascending, so the order is deterministic. Cells with a zero count are never listed;
    ``top=None`` lists them all. The direction is kept (a -> b and b -> a are separate entries) because the two
    mistakes usually have different causes.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    num_classes = confusion.shape[0]
    names = _names_or_indices(class_names, num_classes)
    support = confusion.sum(axis=1)
    off_diagonal = confusion.copy()
    np.fill_diagonal(off_diagonal, 0)
    true_idx, pred_idx = np.nonzero(off_diagonal)
    counts = off_diagonal[true_idx, pred_idx]
    rates = 100.0 * counts / support[true_idx]
    # lexsort sorts by the last key first: count desc, rate desc, true asc, predicted asc
    order = np.lexsort((pred_idx, true_idx, -rates, -counts))
    if top is not None:
        order = order[: int(top)]
    return [
        {
            "true": int(true_idx[i]),
            "predicted": int(pred_idx[i]),
            "true_name": names[true_idx[i]],
            "predicted_name": names[pred_idx[i]],
            "count": int(counts[i]),
            "rate": float(rates[i]),
        }
        for i in order
    ]


def classification_metrics(scores: Any, labels: Any, topk: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """``{"top1", "top5", ..., "mean_class_acc", "num_test_samples", "num_classes"}``; accuracies in percent."""
    scores, labels = check_scores_labels(scores, labels)
    rank = true_class_rank(scores, labels)
    metrics: dict[str, Any] = {f"top{int(k)}": float(100.0 * np.mean(rank < int(k))) for k in topk}
    confusion = confusion_matrix(labels, predictions(scores), scores.shape[1])
    metrics["mean_class_acc"] = float(np.nanmean(per_class_accuracy(confusion)))
    metrics["num_test_samples"] = int(scores.shape[0])
    metrics["num_classes"] = int(scores.shape[1])
    return metrics


def _names_or_indices(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise DataError(f"expected {num_classes} class names, got {len(names)}", field="class_names")
    return names
