"""The per-sample test scores a run directory holds, shared by the engine (writer) and ensembles (reader).

Files in ``<run_dir>`` (the agreed names)::

    scores.npy    float32 [N, K]  the classifier's raw outputs (logits), one row per test sample
    labels.npy    int64   [N]     0-based true classes
    names.json    [N] strings     sample names, in the same order (the key ensembles align streams on)
    config.yaml   the resolved run config (written by the engine; not read here)

An ensemble's output directory holds the same three score files with the fused scores, so a fused result can
itself be fused again or re-evaluated.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import DataError, StoreError
from skelact.atomic import write_bytes_atomic, write_text_atomic
from skelact.evaluation.metrics import check_scores_labels

SCORES_FILE = "scores.npy"
LABELS_FILE = "labels.npy"
NAMES_FILE = "names.json"
CONFIG_FILE = "config.yaml"

#: the files :func:`load_run_scores` needs
REQUIRED_FILES = (SCORES_FILE, LABELS_FILE, NAMES_FILE)


@dataclass(frozen=True)
class RunScores:
    """One run's test scores: ``scores`` float32 [N, K], ``labels`` int64 [N], ``names`` N sample names."""

    run_dir: Path
    scores: np.ndarray
    labels: np.ndarray
    names: list[str]


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def save_run_scores(run_dir: str | PathLike, scores: Any, labels: Any, names: Any) -> Path:
    """Write scores.npy (float32), labels.npy (int64) and names.json into ``run_dir`` atomically; return it."""
    run_dir = Path(run_dir)
    checked_scores, checked_labels = check_scores_labels(scores, labels)
    names = [str(n) for n in names]
    if len(names) != checked_scores.shape[0]:
        raise DataError(f"got {len(names)} sample names for {checked_scores.shape[0]} samples", field="names")
    write_bytes_atomic(run_dir / SCORES_FILE, _npy_bytes(np.asarray(scores, dtype=np.float32)))
    write_bytes_atomic(run_dir / LABELS_FILE, _npy_bytes(checked_labels.astype(np.int64)))
    write_text_atomic(run_dir / NAMES_FILE, json.dumps(names, ensure_ascii=False) + "\n")
    return run_dir


def _load_npy(path: Path, field: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise StoreError(f"not a readable .npy array ({error})", path=path, field=field) from None


def load_run_scores(run_dir: str | PathLike) -> RunScores:
    """Read and check a run's per-sample scores; any problem is one StoreError/DataError naming the file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StoreError("run directory not found", path=run_dir)
    for file_name in REQUIRED_FILES:
        if not (run_dir / file_name).is_file():
            raise StoreError(
                "missing; the run has no per-sample test scores (write them with `skelact test RUN`)",
                path=run_dir,
                field=file_name,
            )
    scores = _load_npy(run_dir / SCORES_FILE, "scores")
    labels = _load_npy(run_dir / LABELS_FILE, "labels")
    check_scores_labels(scores, labels, path=str(run_dir))
    names_path = run_dir / NAMES_FILE
    try:
        names = json.loads(names_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StoreError(f"not readable JSON ({error})", path=names_path, field="names") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise StoreError("expected a JSON list of sample-name strings", path=names_path, field="names")
    if len(names) != scores.shape[0]:
        raise StoreError(
            f"holds {len(names)} names but {SCORES_FILE} has {scores.shape[0]} rows", path=names_path, field="names"
        )
    if len(set(names)) != len(names):
        seen: set[str] = set()
        duplicate = next(n for n in names if n in seen or seen.add(n))
        raise StoreError(f"sample name {duplicate!r} occurs more than once", path=names_path, field="names")
    return RunScores(
        run_dir=run_dir,
        scores=np.asarray(scores, dtype=np.float32),
        labels=np.asarray(labels).astype(np.int64),
        names=names,
    )
