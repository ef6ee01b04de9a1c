"""The four input modalities of the multi-stream GCNs (2s-AGCN, CTR-GCN, FR-Head), computed here and nowhere else.

* ``joint``: the coordinates as they are;
* ``bone``: ``x[v] - x[parents[v]]`` with the layout's parents (bones point away from the centre; the centre, and
  in a forest every tree's root, is its own parent, so its bone is zero). For NTU-25 and NW-UCLA-20 this is
  CTR-GCN's ``ntu_pairs`` / its NW-UCLA feeder's bone list when the layout's tree and centre match theirs (the
  tests check the built-in layouts);
* ``joint_motion``: ``x[t + 1] - x[t]``, the last frame zero (CTR-GCN's ``vel`` / NW-UCLA ``motion``);
* ``bone_motion``: the motion of the bones.

Functions take ``[..., T, V, C]`` arrays (a sample ``[M, T, V, C]`` or a batch ``[N, M, T, V, C]``). In a pipeline,
:class:`ToModality` goes after the temporal resampling and the augmentations, as CTR-GCN computes them last.
"""

from __future__ import annotations

import numpy as np

from skelact.data.transforms.registry import bad_argument, register_transform
from skelact.data.transforms.sample import Sample, as_float32, get_keypoints, get_layout_of, get_scores, updated
from skelact.errors import ConfigError
from skelact.skeleton.layout import Layout

#: canonical modality names
MODALITIES: tuple[str, ...] = ("joint", "bone", "joint_motion", "bone_motion")

_ALIASES = {
    "j": "joint",
    "b": "bone",
    "jm": "joint_motion",
    "bm": "bone_motion",
    "joint-motion": "joint_motion",
    "bone-motion": "bone_motion",
}


def modality_name(name: str) -> str:
    """The canonical name of a modality (``j``, ``b``, ``jm``, ``bm`` and hyphenated forms are accepted)."""
    key = _ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in MODALITIES:
        raise ConfigError(f"unknown modality {name!r}; expected one of {', '.join(MODALITIES)} "
                          f"(or {', '.join(_ALIASES)})", field="modality")
    return key


def bone_vectors(keypoints: np.ndarray, layout: Layout) -> np.ndarray:
    """``x[..., v, :] - x[..., parents[v], :]`` for every joint; zero at the centre and every other root."""
    x = np.asarray(keypoints)
    return x - x[..., np.asarray(layout.parents), :]


def motion(x: np.ndarray, time_axis: int = -3) -> np.ndarray:
    """``x[t + 1] - x[t]`` along ``time_axis`` with the last frame zero (same shape as ``x``)."""
    x = np.asarray(x)
    out = np.zeros_like(x)
    head = [slice(None)] * x.ndim
    head[time_axis] = slice(0, -1)
    out[tuple(head)] = np.diff(x, axis=time_axis)
    return out


def _need_layout(layout: Layout | None, name: str) -> Layout:
    if layout is None:
        raise ConfigError(f"the {name} modality needs a skeleton layout (its parents)", field="layout")
    return layout


def to_modality(keypoints: np.ndarray, layout: Layout | None, name: str) -> np.ndarray:
    """``keypoints [..., T, V, C]`` as modality ``name``, float32. ``layout`` may be ``None`` for joint modalities."""
    name = modality_name(name)
    x = np.asarray(keypoints, dtype=np.float32)
    if name in ("bone", "bone_motion"):
        x = bone_vectors(x, _need_layout(layout, name))
    if name in ("joint_motion", "bone_motion"):
        x = motion(x)
    return as_float32(x)


def modality_scores(scores: np.ndarray, layout: Layout | None, name: str) -> np.ndarray:
    """Confidences ``[..., T, V]`` that go with :func:`to_modality`, as pyskl's ``JointToBone`` / ``ToMotion`` give
    them for 2D data: a bone's score is the mean of its two joints', a motion's the mean of its two frames'
    (the last frame's is 0, like its vector)."""
    name = modality_name(name)
    s = np.asarray(scores, dtype=np.float64)
    if name in ("bone", "bone_motion"):
        s = (s + s[..., np.asarray(_need_layout(layout, name).parents)]) / 2.0
    if name in ("joint_motion", "bone_motion"):
        mean = np.zeros_like(s)
        mean[..., :-1, :] = (s[..., 1:, :] + s[..., :-1, :]) / 2.0
        s = mean
    return as_float32(s)


@register_transform
class ToModality:
    """Replace the sample's keypoints (and scores) by modality ``name`` (:func:`to_modality`); records
    ``sample['modality']``. Bone modalities need the sample's layout.

    ``into``: write the modality to this sample key instead, keeping the keypoints (and their scores) as they are,
    so one pipeline can give a model several modalities of the same clip (``ToInputs`` then names them)."""

    def __init__(self, name: str = "joint", into: str = "keypoints"):
        try:
            self.name = modality_name(name)
        except ConfigError as e:
            raise bad_argument("ToModality", "name", e.message) from None
        if not isinstance(into, str) or not into:
            raise bad_argument("ToModality", "into", f"expected a sample key, got {into!r}")
        self.into = into

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "ToModality")
        layout = get_layout_of(sample, kp, "ToModality") if self.name in ("bone", "bone_motion") else None
        if self.into != "keypoints":
            return updated(sample, **{self.into: to_modality(kp, layout, self.name)})
        out = updated(sample, keypoints=to_modality(kp, layout, self.name), modality=self.name)
        scores = get_scores(sample, kp, "ToModality")
        if scores is not None:
            out["scores"] = modality_scores(scores, layout, self.name)
        return out

    def __repr__(self) -> str:
        into = "" if self.into == "keypoints" else f", into={self.into!r}"
        return f"ToModality(name={self.name!r}{into})"
