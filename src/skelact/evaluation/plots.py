"""Figures for evaluation: the confusion matrix with class names, and 2-D scatter plots of learned features.

matplotlib is an optional extra (``pip install 'skelact[plots]'``); without it these functions raise one clear
:class:`~skelact.errors.SkelactError`. Figures are drawn on a bare :class:`matplotlib.figure.Figure` rendered by
the Agg canvas, so nothing here touches pyplot's global state or needs a display, and PNGs are written atomically.

The confusion matrix is coloured by row-normalised rates (percent of the true class), so a rare class's mistakes
are as visible as a frequent one's; raw counts are printed in the cells while they fit (up to 30 classes). The
figure grows with the number of classes and the font shrinks, so 10 classes (NW-UCLA) and 120 (NTU RGB+D 120)
both stay legible; above 30 classes each tick label is prefixed with its class index, which is the key into
``per_class.csv``.

Feature embeddings: ``method="pca"`` is plain numpy (deterministic); ``method="tsne"`` uses scikit-learn's t-SNE,
which is not a skelact dependency (install ``scikit-learn`` to use it).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import DataError, SkelactError
from skelact.atomic import write_bytes_atomic

#: class names longer than this are shortened with an ellipsis on the axes
MAX_TICK_LABEL = 34
#: up to this many classes the cells carry their counts and the ticks carry bare names
ANNOTATE_MAX_CLASSES = 30


def figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SkelactError(
            "plots need matplotlib; install the extra: pip install 'skelact[plots]'", field="matplotlib"
        ) from None
    return Figure


def _tick_label(index: int, name: str, with_index: bool) -> str:
    if len(name) > MAX_TICK_LABEL:
        name = name[: MAX_TICK_LABEL - 1].rstrip() + "\u2026"
    return f"{index}: {name}" if with_index else name


def confusion_figure(confusion: Any, class_names: Sequence[str] | None = None, title: str | None = None):
    """A matplotlib Figure of the confusion matrix (rows = true class, columns = predicted)."""
    Figure = figure_class()
    confusion = np.asarray(confusion, dtype=np.int64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1] or confusion.shape[0] == 0:
        raise DataError(f"expected a square [K, K] matrix, got shape {confusion.shape}", field="confusion")
    num_classes = confusion.shape[0]
    names = [str(i) for i in range(num_classes)] if class_names is None else [str(n) for n in class_names]
    if len(names) != num_classes:
        raise DataError(f"expected {num_classes} class names, got {len(names)}", field="class_names")

    support = confusion.sum(axis=1, keepdims=True)
    rates = np.divide(100.0 * confusion, support, out=np.zeros(confusion.shape), where=support > 0)

    annotate = num_classes <= ANNOTATE_MAX_CLASSES
    if annotate:
        cell_inches, font_size, dpi = 0.55, 9.0, 120
    else:
        cell_inches, font_size, dpi = 0.13, max(3.5, 7.0 - num_classes / 40.0), 200
    label_inches = 0.075 * font_size / 9.0 * min(MAX_TICK_LABEL + 5, max(len(n) for n in names) + 5) + 0.6
    side = max(4.0, cell_inches * num_classes) + label_inches
    fig = Figure(figsize=(side + 1.2, side), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=100.0, interpolation="nearest", aspect="equal")
    colorbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, shrink=1.0 if annotate else 0.4)
    colorbar.set_label("% of true class", fontsize=font_size)
    colorbar.ax.tick_params(labelsize=font_size)

    tick_labels = [_tick_label(i, n, with_index=not annotate) for i, n in enumerate(names)]
    ax.set_xticks(np.arange(num_classes), labels=tick_labels, rotation=90, fontsize=font_size)
    ax.set_yticks(np.arange(num_classes), labels=tick_labels, fontsize=font_size)
    ax.set_xlabel("predicted class", fontsize=font_size + 1)
    ax.set_ylabel("true class", fontsize=font_size + 1)
    total = int(confusion.sum())
    accuracy = 100.0 * np.trace(confusion) / total if total else float("nan")
    heading = f"{title}\n" if title else ""
    ax.set_title(f"{heading}{total} samples, accuracy {accuracy:.2f} %", fontsize=font_size + 2)
    if annotate:
        for true_class, predicted_class in zip(*np.nonzero(confusion)):
            dark = rates[true_class, predicted_class] > 55.0
            ax.text(
                predicted_class,
                true_class,
                str(confusion[true_class, predicted_class]),
                ha="center",
                va="center",
                fontsize=font_size * 0.9,
                color="white" if dark else "black",
            )
    else:
        ax.grid(False)
    return fig


def save_figure_png(fig, path: str | PathLike) -> Path:
    """Render ``fig`` to PNG in memory and write it atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return write_bytes_atomic(path, buffer.getvalue())


def save_confusion_png(
    confusion: Any, class_names: Sequence[str] | None, path: str | PathLike, title: str | None = None
) -> Path:
    """Write the confusion matrix as a PNG at ``path`` (see :func:`confusion_figure`)."""
    return save_figure_png(confusion_figure(confusion, class_names, title), path)


def embed_2d(features: Any, method: str = "pca", rng: np.random.Generator | None = None) -> np.ndarray:
    """Project features ``[N, D]`` to ``[N, 2]`` for a scatter plot.

    ``"pca"``: the first two principal components (numpy SVD of the centred features; each axis's sign is fixed so
    its largest loading is positive, making the result deterministic). ``"tsne"``: scikit-learn's
    ``TSNE(n_components=2, init="pca")`` seeded from ``rng`` (default ``default_rng(0)``); perplexity is capped at
    ``(N - 1) / 3`` because t-SNE needs more samples than three times the perplexity.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 3:
        raise DataError(f"expected [N, D] features with N >= 3, got shape {features.shape}", field="features")
    if not np.all(np.isfinite(features)):
        raise DataError("contains NaN or infinity", field="features")
    if method == "pca":
        centred = features - features.mean(axis=0)
        _, singular_values, components = np.linalg.svd(centred, full_matrices=False)
        components = components[:2]
        if components.shape[0] < 2:
            components = np.vstack([components, np.zeros_like(components)])
        largest = np.argmax(np.abs(components), axis=1)
        signs = np.sign(components[np.arange(components.shape[0]), largest])
        signs[signs == 0] = 1.0
        return centred @ (components * signs[:, None]).T
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise SkelactError(
                "t-SNE needs scikit-learn, which skelact does not install: pip install scikit-learn "
                "(or use method='pca')",
                field="scikit-learn",
            ) from None
        rng = np.random.default_rng(0) if rng is None else rng
        perplexity = float(min(30.0, (features.shape[0] - 1) / 3.0))
        tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=int(rng.integers(2**31 - 1)))
        return np.asarray(tsne.fit_transform(features), dtype=np.float64)
    raise SkelactError(f"unknown embedding method {method!r}; expected 'pca' or 'tsne'", field="method")


def save_feature_scatter(
    features: Any,
    labels: Any,
    path: str | PathLike,
    class_names: Sequence[str] | None = None,
    method: str = "pca",
    rng: np.random.Generator | None = None,
    title: str | None = None,
) -> Path:
    """Scatter plot of features ``[N, D]`` embedded in 2-D (:func:`embed_2d`), one colour per class, as a PNG."""
    Figure = figure_class()
    labels = np.asarray(labels)
    points = embed_2d(features, method=method, rng=rng)
    if labels.shape != (points.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise DataError(f"expected {points.shape[0]} non-negative integer labels, got {labels.shape}", field="labels")
    num_classes = int(labels.max()) + 1 if class_names is None else len(class_names)
    if labels.max() >= num_classes:
        raise DataError(f"label {int(labels.max())} has no class name ({num_classes} given)", field="labels")
    names = [str(i) for i in range(num_classes)] if class_names is None else [str(n) for n in class_names]

    from matplotlib import colormaps

    palette = colormaps["tab10" if num_classes <= 10 else "tab20" if num_classes <= 20 else "turbo"]
    colours = palette(np.arange(num_classes) % 20) if num_classes <= 20 else palette(np.linspace(0, 1, num_classes))
    fig = Figure(figsize=(8.0, 6.5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    for class_index in np.unique(labels):
        chosen = labels == class_index
        ax.scatter(
            points[chosen, 0],
            points[chosen, 1],
            s=10,
            color=colours[class_index],
            label=_tick_label(int(class_index), names[class_index], with_index=False),
            alpha=0.8,
            linewidths=0,
        )
    if num_classes <= 20:
        ax.legend(fontsize=7, markerscale=1.5, loc="best", frameon=False)
    ax.set_title(title or f"{method.upper()} of {points.shape[0]} feature vectors")
    ax.set_xticks([])
    ax.set_yticks([])
    return save_figure_png(fig, path)
