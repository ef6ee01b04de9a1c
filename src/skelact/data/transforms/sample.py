"""The sample dict every transform takes and returns, and the checks transforms share.

A sample is a plain ``dict`` with these keys (only ``keypoints`` is required):

==============  ===================================================================================================
``keypoints``   ``[M, T, V, C]`` float32 array (skelact's one layout; see :mod:`skelact.data.sequence`)
``scores``      ``[M, T, V]`` float32 confidences; every temporal or joint re-indexing is applied to it as well
``label``       0-based class index (transforms never read it)
``layout``      a :class:`~skelact.skeleton.layout.Layout` or a layout name; needed by flip, bone scaling, modalities
``name``        the sample's name; errors name it as their ``path``
``num_clips``   set by :class:`~skelact.data.transforms.temporal.UniformSample`: ``T`` is ``num_clips`` clips
``meta``        anything else the reader knew (copied through untouched)
==============  ===================================================================================================

Transforms never modify the arrays they are given (a store may hand out read-only memory maps); they return a new
dict that shares every untouched value with the input.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from skelact.data.sequence import SkeletonSequence
from skelact.errors import ConfigError, DataError, LayoutError
from skelact.skeleton.layout import Layout, get_layout

Sample = dict[str, Any]


def sample_from_sequence(seq: SkeletonSequence) -> Sample:
    """The sample dict of one :class:`SkeletonSequence` (arrays are shared, not copied)."""
    return {
        "keypoints": seq.keypoints,
        "scores": seq.scores,
        "label": seq.label,
        "layout": seq.layout,
        "name": seq.name,
        "meta": dict(seq.meta),
    }


def sample_name(sample: Mapping[str, Any]) -> str:
    """What an error message calls this sample."""
    name = sample.get("name")
    return str(name) if name else "<sample>"


def get_keypoints(sample: Mapping[str, Any], who: str) -> np.ndarray:
    """The sample's ``[M, T, V, C]`` keypoints; a :class:`DataError` names the sample if they are missing or bent."""
    if "keypoints" not in sample:
        raise DataError(f"{who} needs the sample's 'keypoints' [M, T, V, C]", sample_name(sample), "keypoints")
    kp = np.asarray(sample["keypoints"])
    if kp.ndim != 4 or kp.shape[0] < 1 or kp.shape[1] < 1:
        raise DataError(f"{who} expects keypoints [M, T, V, C] with M, T >= 1, got shape {kp.shape}",
                        sample_name(sample), "keypoints")
    return kp


def get_scores(sample: Mapping[str, Any], keypoints: np.ndarray, who: str) -> np.ndarray | None:
    """The sample's ``[M, T, V]`` scores, or ``None`` when it has none."""
    scores = sample.get("scores")
    if scores is None:
        return None
    scores = np.asarray(scores)
    if scores.shape != keypoints.shape[:3]:
        raise DataError(f"{who}: scores of shape {scores.shape} do not match keypoints {keypoints.shape}",
                        sample_name(sample), "scores")
    return scores


def get_layout_of(sample: Mapping[str, Any], keypoints: np.ndarray, who: str) -> Layout:
    """The sample's layout, resolved from a name if needed, checked against the joint axis ``V``."""
    ref = sample.get("layout")
    if ref is None or ref == "":
        raise ConfigError(f"{who} needs the sample's 'layout' (a Layout or a layout name)", sample_name(sample),
                          "layout")
    layout = get_layout(ref)
    if layout.num_joints != keypoints.shape[2]:
        raise LayoutError(f"{who}: layout {layout.name!r} has {layout.num_joints} joints but the keypoints have "
                          f"{keypoints.shape[2]}", sample_name(sample), "layout")
    return layout


def require_coords(sample: Mapping[str, Any], keypoints: np.ndarray, allowed: tuple[int, ...], who: str) -> int:
    """The coordinate count ``C``, which must be one of ``allowed``."""
    c = int(keypoints.shape[3])
    if c not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise DataError(f"{who} works on {want} coordinates per joint, got {c}", sample_name(sample), "keypoints")
    return c


def updated(sample: Mapping[str, Any], **changes: Any) -> Sample:
    """A shallow copy of ``sample`` with ``changes`` applied (``None`` values are stored as given)."""
    out = dict(sample)
    out.update(changes)
    return out


def as_float32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def absent_person_frames(keypoints: np.ndarray) -> np.ndarray:
    """``[M, T]`` mask of (person, frame) slots whose every coordinate is exactly zero: a person not in that frame
    (NTU's convention for padding and for a missing second person). A single joint at zero (say, the joint a
    skeleton was just centred on) does not count as absent."""
    return ~np.any(keypoints != 0, axis=(2, 3))
