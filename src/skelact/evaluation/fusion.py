"""Score-level fusion of several streams' per-sample scores (multi-stream ensembles).

Two rules, both on score matrices ``[N, K]`` (one per stream, same samples in the same order):

* **Weighted sum** (:func:`fuse_weighted`), the rule of the multi-stream GCN papers. By default it sums the *raw*
  scores (logits) times the stream weights, which is what CTR-GCN's ``ensemble.py`` does with the test scores its
  ``main.py`` saves (the classifier's output before any softmax); its 4-stream NW-UCLA / NTU setting is
  ``joint*0.6 + bone*0.6 + joint_motion*0.4 + bone_motion*0.4`` (:data:`CTRGCN_FOUR_STREAM_WEIGHTS`).
  ``normalize="softmax"`` sums probabilities instead, which keeps a stream with large logits from dominating.
* **SCI-weighted sum** (:func:`fuse_sci`), FstCN's fusion (Sun, Jia, Yeung, Shi, "Human Action Recognition using
  Factorized Spatio-Temporal Convolutional Networks", ICCV 2015, SCI-based score fusion). Each stream's score
  vector is weighted *per sample* by its sparsity concentration index, so a stream that is confident about one
  class on this sample counts more than one that spreads its mass. The SCI is the one Wright et al. defined for
  sparse-representation classification ("Robust Face Recognition via Sparse Representation", TPAMI 2009,
  Definition 1), applied to a non-negative score vector ``p`` of ``K`` classes::

      SCI(p) = (K * max_k p_k / ||p||_1 - 1) / (K - 1)          in [0, 1]

  0 for a uniform vector, 1 for a vector with all its mass on one class. The fused score is
  ``sum_s w_s * SCI(p_s) * p_s`` with ``p_s`` the softmax probabilities of stream ``s`` and ``w_s`` an optional
  fixed stream weight (1 in FstCN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from skelact.errors import ConfigError, DataError

#: CTR-GCN ensemble.py weights for the four streams, in the order joint, bone, joint-motion, bone-motion
CTRGCN_FOUR_STREAM_WEIGHTS: tuple[float, ...] = (0.6, 0.6, 0.4, 0.4)

FUSION_METHODS = ("weighted", "sci")


def softmax(scores: Any, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (subtracts the row maximum first), float64."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def sparsity_concentration_index(scores: Any) -> np.ndarray:
    """SCI of each non-negative score vector along the last axis (Wright et al. 2009, Definition 1), in [0, 1].

    ``SCI(p) = (K * max(p) / sum(p) - 1) / (K - 1)``. An all-zero vector carries no evidence and gets 0.
    """
    scores = np.asarray(scores, dtype=np.float64)
    num_classes = scores.shape[-1]
    if num_classes < 2:
        raise DataError(f"the SCI needs at least 2 classes, got {num_classes}", field="scores")
    if np.any(scores < 0) or not np.all(np.isfinite(scores)):
        raise DataError("the SCI is defined for finite non-negative scores (use probabilities)", field="scores")
    total = scores.sum(axis=-1)
    peak = scores.max(axis=-1)
    ratio = np.divide(peak, total, out=np.full_like(total, 1.0 / num_classes), where=total > 0)
    return (num_classes * ratio - 1.0) / (num_classes - 1)


def fuse_weighted(
    stream_scores: Sequence[Any], weights: Sequence[float] | None = None, normalize: str | None = None
) -> np.ndarray:
    """``sum_s weights[s] * scores_s``, float64 ``[N, K]``; equal weights (1 each) when ``weights`` is None.

    ``normalize=None`` (default) fuses the raw scores, as CTR-GCN's ``ensemble.py`` does; ``"softmax"`` fuses the
    per-stream softmax probabilities.
    """
    streams = _check_streams(stream_scores)
    stream_weights = _check_weights(weights, len(streams))
    if normalize not in (None, "softmax"):
        raise ConfigError(f"unknown normalization {normalize!r}; expected None or 'softmax'", field="normalize")
    if normalize == "softmax":
        streams = [softmax(s) for s in streams]
    return sum(w * s for w, s in zip(stream_weights, streams))


def fuse_sci(
    stream_scores: Sequence[Any], weights: Sequence[float] | None = None, from_logits: bool = True
) -> np.ndarray:
    """FstCN's SCI-weighted fusion: ``sum_s weights[s] * SCI(p_s) * p_s`` per sample, float64 ``[N, K]``.

    ``p_s`` is the softmax of stream ``s`` (``from_logits=True``) or the given non-negative scores. If every stream
    is exactly uniform on a sample (all SCIs 0), that sample falls back to the plain weighted sum of ``p_s`` rather
    than an all-zero row.
    """
    streams = _check_streams(stream_scores)
    stream_weights = _check_weights(weights, len(streams))
    probabilities = [softmax(s) if from_logits else s for s in streams]
    sci = np.stack([sparsity_concentration_index(p) for p in probabilities])  # [S, N]
    sample_weights = np.asarray(stream_weights)[:, None] * sci
    no_evidence = sample_weights.sum(axis=0) <= 0
    sample_weights[:, no_evidence] = np.asarray(stream_weights)[:, None]
    return np.einsum("sn,snk->nk", sample_weights, np.stack(probabilities))


def fuse_scores(
    stream_scores: Sequence[Any],
    weights: Sequence[float] | None = None,
    method: str = "weighted",
    normalize: str | None = None,
) -> np.ndarray:
    """Dispatch to :func:`fuse_weighted` (``method="weighted"``) or :func:`fuse_sci` (``method="sci"``).

    ``normalize`` applies to the weighted rule only; the SCI rule always fuses softmax probabilities.
    """
    if method == "weighted":
        return fuse_weighted(stream_scores, weights, normalize=normalize)
    if method == "sci":
        # the SCI needs non-negative vectors, so this rule always works on softmax probabilities
        return fuse_sci(stream_scores, weights)
    raise ConfigError(f"unknown fusion method {method!r}; expected one of {', '.join(FUSION_METHODS)}", field="method")


def _check_streams(stream_scores: Sequence[Any]) -> list[np.ndarray]:
    streams = [np.asarray(s, dtype=np.float64) for s in stream_scores]
    if not streams:
        raise DataError("no streams to fuse", field="scores")
    first = streams[0].shape
    for index, stream in enumerate(streams):
        if stream.ndim != 2:
            raise DataError(
                f"stream {index}: expected an [N, K] score matrix, got shape {stream.shape}", field="scores"
            )
        if stream.shape != first:
            raise DataError(f"stream {index} has shape {stream.shape}, stream 0 has {first}", field="scores")
        if not np.all(np.isfinite(stream)):
            raise DataError(f"stream {index} contains NaN or infinity", field="scores")
    return streams


def _check_weights(weights: Sequence[float] | None, num_streams: int) -> list[float]:
    if weights is None:
        return [1.0] * num_streams
    try:
        values = [float(w) for w in weights]
    except (TypeError, ValueError):
        raise ConfigError(f"expected a list of numbers, got {weights!r}", field="weights") from None
    if len(values) != num_streams:
        raise ConfigError(f"got {len(values)} weights for {num_streams} streams", field="weights")
    if any(not np.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise ConfigError(f"weights must be finite, non-negative and not all zero, got {values}", field="weights")
    return values
