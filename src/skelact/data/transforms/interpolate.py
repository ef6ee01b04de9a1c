"""Resample a clip to a fixed number of frames by linear interpolation in time.

CrosSCLR's NTU pre-processing (Li et al., CVPR 2021; LinguoLi/CrosSCLR ``feeder/preprocess_ntu.py``) brings every
clip to 50 frames by linear interpolation. Picking frames at rounded positions instead (CTR-GCN's NW-UCLA test
sampling, :class:`~skelact.data.transforms.temporal.UclaSample`) repeats frames of a clip shorter than the window,
so the motion between repeated frames is exactly zero; interpolated frames move a little at every step.
"""

from __future__ import annotations

import numpy as np

from skelact.data.transforms.registry import as_positive_int, register_transform
from skelact.data.transforms.sample import Sample, as_float32, get_keypoints, get_scores, updated


def interpolation_positions(num_frames: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output frame ``k`` of ``length`` sits at ``k (num_frames - 1) / (length - 1)`` on the input's frames: the
    first and last frames are kept exactly and the rest evenly between. Returns the frame below, the frame above
    and the weight of the frame above."""
    if length == 1 or num_frames == 1:
        pos = np.zeros(length)
    else:
        pos = np.arange(length) * ((num_frames - 1) / (length - 1))
    below = np.minimum(np.floor(pos).astype(np.int64), num_frames - 1)
    above = np.minimum(below + 1, num_frames - 1)
    return below, above, pos - below


def interpolate_frames(x: np.ndarray, missing: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of ``x [M, T, V, ...]`` along T to ``length`` frames, each joint and coordinate on its
    own. ``missing [M, T, V]`` marks joints not measured; an output joint is missing when a frame it takes a non-zero
    weight from had it missing (it is set to 0 rather than pulled towards the origin). Returns values and mask."""
    below, above, weight = interpolation_positions(x.shape[1], length)
    extra = (1,) * (x.ndim - 2)
    w = weight.reshape((1, length) + extra)
    values = (1.0 - w) * x[:, below].astype(np.float64) + w * x[:, above].astype(np.float64)
    w_mask = weight.reshape(1, length, 1)
    out_missing = (missing[:, below] & (w_mask < 1.0)) | (missing[:, above] & (w_mask > 0.0))
    values = np.where(out_missing.reshape(out_missing.shape + (1,) * (x.ndim - 3)), 0.0, values)
    return values, out_missing


@register_transform
class InterpolateFrames:
    """Resample the clip to ``length`` frames (CrosSCLR: 50) by linear interpolation over its valid frames.

    Valid frames are those in which someone is present (frames where every person is all-zero are padding and are
    dropped first, so they are not interpolated into the motion). Each joint and coordinate is interpolated on its
    own between the two nearest valid frames (:func:`interpolation_positions`: first and last frames kept);
    a joint missing (all-zero) in a frame that contributes to an output frame is missing (zero) there too.
    ``scores`` are interpolated the same way. A clip with no valid frame is returned unchanged.
    """

    def __init__(self, length: int = 50):
        self.length = as_positive_int("InterpolateFrames", "length", length)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        who = "InterpolateFrames"
        kp = get_keypoints(sample, who)
        scores = get_scores(sample, kp, who)
        valid = np.any(kp != 0, axis=(0, 2, 3))
        if not valid.any():
            return sample
        frames = np.flatnonzero(valid)
        x = kp[:, frames]
        missing = ~np.any(x != 0, axis=-1)  # [M, T', V]
        values, _ = interpolate_frames(x, missing, self.length)
        out = updated(sample, keypoints=as_float32(values))
        if scores is not None:
            s, _ = interpolate_frames(scores[:, frames], missing, self.length)
            out["scores"] = as_float32(s)
        return out

    def __repr__(self) -> str:
        return f"InterpolateFrames(length={self.length})"
