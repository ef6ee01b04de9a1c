"""The features of a run's ambiguous classes in 2-D, before and after FR-Head's refinement (the FR-Head paper's
t-SNE figure: Zhou, Liu and Wang, CVPR 2023, features of easily confused actions from the baseline and from the
model trained with FR-Head).

What "before and after" means here, and why:

* **Two runs** (``baseline`` given): the paper's comparison. The test samples of the ambiguous classes go through
  the baseline run's backbone and through the FR-Head run's backbone; each panel shows the embedding the
  classifier sees (globally pooled block-10 features). FR-Head acts on the backbone during training only, so this
  is where its effect on the deployed network shows. The ambiguous classes are taken from the *baseline's*
  ``confused_pairs.json``: those are the classes that were confused before the refinement.
* **One FR-Head run**: the classifier's embedding next to the same samples in the last FR-Head's contrastive space
  (its spatial and temporal projections, each L2-normalised, side by side): the space the refinement loss shapes.
  For a run without FR-Head only the first panel is drawn.

Each panel also reports the leave-one-out 1-nearest-neighbour accuracy (cosine similarity, in the full feature
space, not the 2-D map) among the plotted samples, a number to go with the picture. The figure is written as
``ambiguous_features.png`` in the run directory, with the numbers in ``ambiguous_features.json``.

Command: ``skelact plot-features RUN [--baseline RUN] [--method tsne|pca] [--pairs 3]``; it writes into the run
directory holding the run's lock, as every command that writes a run does.
t-SNE needs scikit-learn (not a skelact dependency); ``--method pca`` works without it.

Loading a run reuses the engine's builders (``skelact.engine.build``), imported inside the functions: this module
sits above the engine in that respect, the rest of :mod:`skelact.evaluation` does not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import DataError
from skelact.atomic import write_text_atomic

FIGURE_FILE = "ambiguous_features.png"
SUMMARY_FILE = "ambiguous_features.json"
CONFUSED_PAIRS_FILE = "confused_pairs.json"


def ambiguous_classes(pairs: Sequence[dict[str, Any]], num_pairs: int = 3) -> list[int]:
    """The classes of the ``num_pairs`` most confused pairs (``confused_pairs.json`` entries, most confused first),
    each once, in order of first appearance."""
    classes: list[int] = []
    for pair in list(pairs)[: max(int(num_pairs), 0)]:
        for key in ("true", "predicted"):
            c = int(pair[key])
            if c not in classes:
                classes.append(c)
    return classes


def read_confused_pairs(run_dir: str | PathLike) -> list[dict[str, Any]]:
    path = Path(run_dir) / CONFUSED_PAIRS_FILE
    try:
        pairs = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("no confused pairs; test the run first (skelact test RUN) or give the classes", path) from None
    except (OSError, ValueError) as e:
        raise DataError(f"unreadable confused pairs ({e})", path) from None
    if not isinstance(pairs, list) or not all(isinstance(p, dict) and "true" in p and "predicted" in p for p in pairs):
        raise DataError("expected a list of {true, predicted, ...} entries", path, "pairs")
    return pairs


class RunFeatures:
    """Features of one run's test samples of some classes (see :func:`run_features`)."""

    def __init__(self, run_dir: Path, labels: np.ndarray, panels: dict[str, np.ndarray], class_names: list[str]):
        self.run_dir = run_dir
        self.labels = labels
        self.panels = panels
        self.class_names = class_names


def _load_method(run_dir: Path, checkpoint: str):
    import torch

    from skelact.config import load_config
    from skelact.engine.build import build_method, build_model, open_dataset_store
    from skelact.errors import RunError

    config = run_dir / "config.yaml"
    if not config.is_file():
        raise RunError("not a skelact run directory (no config.yaml)", run_dir)
    ckpt = run_dir / "checkpoints" / f"{checkpoint}.ckpt"
    if not ckpt.is_file():
        raise RunError(f"no {checkpoint} checkpoint", ckpt)
    loaded = load_config(config)
    store = open_dataset_store(loaded, progress=False, log=lambda _: None)
    model = build_model(loaded, store)
    method = build_method(loaded, model)
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one user-facing line
        raise RunError(f"unreadable checkpoint ({type(e).__name__})", ckpt) from None
    prefix = "method."
    try:
        method.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    except RuntimeError as e:
        raise RunError(f"the checkpoint does not fit the model of {config} ({str(e).splitlines()[0]})", ckpt) from None
    return loaded, store, method.eval()


def run_features(run_dir: str | PathLike, classes: Sequence[int], *, checkpoint: str = "last",
                 batch_size: int = 64) -> RunFeatures:
    """The test samples of ``classes`` through a run's ``checkpoint``: panel ``embedding`` (the classifier's input
    ``[N, C]``) and, for an FR-Head run, panel ``frhead`` (the last head's contrastive features)."""
    import torch

    from skelact.data.batch import model_inputs
    from skelact.data.dataset import SkeletonDataset, collate_skeletons
    from skelact.engine.build import build_pipeline_of, subset_indices

    run = Path(run_dir).resolve()
    loaded, store, method = _load_method(run, checkpoint)
    indices = subset_indices(loaded, store, "test")
    labels_all = np.asarray(store.labels, dtype=np.int64)
    wanted = [int(c) for c in classes]
    bad = [c for c in wanted if not 0 <= c < store.num_classes]
    if bad:
        raise DataError(f"class indices {bad} are not among the store's {store.num_classes} classes", run, "classes")
    chosen = indices[np.isin(labels_all[indices], wanted)]
    if chosen.size < 3:
        raise DataError(f"only {chosen.size} test samples of classes {wanted}; a 2-D map needs at least 3", run,
                        "classes")
    dataset = SkeletonDataset(store, chosen, build_pipeline_of(loaded, "test"),
                              num_persons=loaded.cfg.data.num_persons, seed=loaded.cfg.seed)
    model = method.model
    heads = getattr(method, "heads", None)
    embeddings, contrastive, labels = [], [], []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = collate_skeletons([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))],
                                      loaded.cfg.data.num_frames)
            inputs = model_inputs(batch)
            n = batch["label"].shape[0]
            labels.append(batch["label"].numpy())
            embeddings.append(model.extract_features(**inputs).float().numpy())
            if heads is None:
                continue
            _, taps = model(**inputs, return_features=True)
            parts = heads.heads[-1].embed(taps[heads.taps[-1]], n)
            unit = [torch.nn.functional.normalize(v.float(), dim=1) for v in parts.values()]
            contrastive.append(torch.cat(unit, dim=1).numpy())
    panels = {"embedding": np.concatenate(embeddings)}
    if contrastive:
        panels["frhead"] = np.concatenate(contrastive)
    return RunFeatures(run, np.concatenate(labels), panels, list(store.class_names))


def nearest_neighbour_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy (percent) by cosine similarity: how often a sample's most similar other sample
    has its class."""
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    return float(100.0 * np.mean(labels[np.argmax(similarity, axis=1)] == labels))


def plot_ambiguous_features(run_dir: str | PathLike, baseline: str | PathLike | None = None,
                            out: str | PathLike | None = None, *, num_pairs: int = 3,
                            classes: Sequence[int] | None = None, method: str = "tsne", checkpoint: str = "last",
                            seed: int = 0) -> Path:
    """Write the 2-D map of the ambiguous classes' test features (see the module docstring); returns the PNG path.

    ``classes``: class indices to show (default: those of the ``num_pairs`` most confused pairs of ``baseline``,
    else of the run). ``method``: ``tsne`` (scikit-learn) or ``pca``. ``seed`` seeds t-SNE.
    """
    from skelact.engine.runs import hold_run_dir
    from skelact.evaluation.plots import embed_2d, figure_class, save_figure_png

    run = Path(run_dir)
    for directory in (run, baseline):
        if directory is not None and not (Path(directory) / "config.yaml").is_file():
            from skelact.errors import RunError

            raise RunError("not a skelact run directory (no config.yaml)", directory)
    # the figure is written into the run: hold its lock, as every command writing a run does, so a train or
    # test of the same run waits its turn instead of racing this one
    with hold_run_dir(run.resolve(), False):
        if classes is None:
            classes = ambiguous_classes(read_confused_pairs(baseline if baseline is not None else run), num_pairs)
            if len(classes) < 2:
                raise DataError("the run confuses no classes; name the classes to plot", run / CONFUSED_PAIRS_FILE,
                                "classes")
        classes = [int(c) for c in classes]
        features = run_features(run, classes, checkpoint=checkpoint)
        panels: list[tuple[str, np.ndarray, np.ndarray, Path]] = []
        if baseline is not None:
            base = run_features(baseline, classes, checkpoint=checkpoint)
            panels.append((f"baseline ({Path(baseline).name})", base.panels["embedding"], base.labels, base.run_dir))
            panels.append((f"with refinement ({run.name})", features.panels["embedding"], features.labels, run))
        else:
            panels.append(("backbone embedding", features.panels["embedding"], features.labels, run))
            if "frhead" in features.panels:
                panels.append(("FR-Head contrastive space (last stage)", features.panels["frhead"], features.labels, run))

        Figure = figure_class()
        from matplotlib import colormaps

        palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        names = features.class_names
        fig = Figure(figsize=(6.0 * len(panels), 5.6), dpi=120, layout="constrained")
        summary = {"method": method, "checkpoint": checkpoint, "classes": classes,
                   "class_names": [names[c] for c in classes], "panels": []}
        for k, (title, x, labels, source) in enumerate(panels):
            points = embed_2d(x, method=method, rng=np.random.default_rng(seed))
            accuracy = nearest_neighbour_accuracy(x, labels)
            ax = fig.add_subplot(1, len(panels), k + 1)
            for j, c in enumerate(classes):
                chosen = labels == c
                ax.scatter(points[chosen, 0], points[chosen, 1], s=12, color=palette(j % palette.N), alpha=0.85,
                           linewidths=0, label=names[c])
            ax.set_title(f"{title}\n1-NN accuracy {accuracy:.1f} % ({x.shape[0]} samples, {x.shape[1]}-D)", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.legend(fontsize=7, markerscale=1.5, frameon=False, loc="best")
            summary["panels"].append({"title": title, "run": str(source), "num_samples": int(x.shape[0]),
                                      "dimensions": int(x.shape[1]), "nn1_accuracy": accuracy})
        fig.suptitle(f"{method.upper()} of the test features of the most confused classes")
        target = Path(out) if out is not None else run / FIGURE_FILE
        save_figure_png(fig, target)
        write_text_atomic(target.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
        return target
