"""Transforms along the time axis: crop, resize and frame sampling as the published recipes do them.

Every transform here re-indexes ``keypoints [M, T, V, C]`` and ``scores [M, T, V]`` together.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skelact.data.transforms.registry import (
    as_interval,
    as_number,
    as_positive_int,
    bad_argument,
    register_transform,
)
from skelact.data.transforms.sample import (
    Sample,
    as_float32,
    get_keypoints,
    get_scores,
    sample_name,
    updated,
)
from skelact.errors import DataError


def _take_frames(sample: Sample, who: str, frames: np.ndarray, **extra: Any) -> Sample:
    kp = get_keypoints(sample, who)
    scores = get_scores(sample, kp, who)
    out = updated(sample, keypoints=as_float32(kp[:, frames]), **extra)
    if scores is not None:
        out["scores"] = as_float32(scores[:, frames])
    return out


# --------------------------------------------------------------------------------------------------------------------
# CTR-GCN (NTU RGB+D): crop the valid frames, resize to a fixed window


def resize_time_bilinear(x: np.ndarray, length: int) -> np.ndarray:
    """Linear resampling of axis 1 of ``x`` to ``length`` samples, half-pixel centres, edges clamped.

    This is what ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)`` does along the time axis
    when the other axis keeps its size (CTR-GCN's ``valid_crop_resize``): output frame ``i`` samples the input at
    ``(i + 0.5) * T / length - 0.5`` clamped at 0, mixing its two neighbours linearly. Positions are rounded to
    float32 the way torch's CPU kernel rounds them (float32 scale, one fused multiply-add), so a ramp comes out
    exactly as torch gives it and other inputs agree to float32 rounding.
    """
    t = x.shape[1]
    scale = np.float64(np.float32(t) / np.float32(length))
    src = ((np.arange(length) + 0.5) * scale - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    lo = np.minimum(src.astype(np.int64), t - 1)
    hi = np.minimum(lo + 1, t - 1)
    weight = (src - lo.astype(np.float32)).astype(np.float64)
    shape = (1, length) + (1,) * (x.ndim - 2)
    weight = weight.reshape(shape)
    xf = x.astype(np.float64)
    return (1.0 - weight) * xf[:, lo] + weight * xf[:, hi]


def count_valid_frames(keypoints: np.ndarray) -> int:
    """Frames in which any coordinate of any person is non-zero (CTR-GCN counts them; zero frames are padding)."""
    return int(np.any(keypoints != 0, axis=(0, 2, 3)).sum())


def valid_crop_window(num_valid: int, p_interval: tuple[float, ...], rng: np.random.Generator,
                      min_length: int = 64) -> tuple[int, int]:
    """``(begin, length)`` of the crop CTR-GCN's ``valid_crop_resize`` takes from the first ``num_valid`` frames.

    One ratio ``p``: deterministic centre crop, ``int((1 - p) * num_valid / 2)`` frames off each end. Two ratios
    ``[lo, hi]``: ``p ~ U[lo, hi)``, length ``floor(num_valid * p)`` raised to ``min_length`` (CTR-GCN hard-codes 64)
    but never past ``num_valid``, and a uniform offset among the positions where that length fits.
    """
    if len(p_interval) == 1:
        bias = int((1.0 - p_interval[0]) * num_valid / 2)
        return bias, num_valid - 2 * bias
    lo, hi = p_interval
    p = rng.random() * (hi - lo) + lo
    length = min(max(int(np.floor(num_valid * p)), min_length), num_valid)
    begin = int(rng.integers(0, num_valid - length + 1))
    return begin, length


@register_transform
class ValidCropResize:
    """CTR-GCN's NTU temporal pipeline (``feeders/tools.py: valid_crop_resize``), on one sample.

    Counts the frames that are not all-zero, crops them with :func:`valid_crop_window` (the crop starts counting at
    frame 0, as CTR-GCN's does), then resizes the crop to ``window`` frames by linear interpolation over time
    (:func:`resize_time_bilinear`). CTR-GCN's configs: ``p_interval=[0.5, 1]`` for training and ``[0.95]`` for
    testing, ``window=64``. Scores are cropped and resized the same way.
    """

    def __init__(self, window: int = 64, p_interval: Any = (0.5, 1.0), min_length: int = 64):
        self.window = as_positive_int("ValidCropResize", "window", window)
        self.p_interval = as_interval("ValidCropResize", "p_interval", p_interval, 0.0, 1.0)
        if self.p_interval[0] <= 0:
            raise bad_argument("ValidCropResize", "p_interval", f"ratios must be > 0, got {p_interval!r}")
        self.min_length = as_positive_int("ValidCropResize", "min_length", min_length)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "ValidCropResize")
        num_valid = count_valid_frames(kp)
        if num_valid == 0:
            raise DataError("ValidCropResize: every frame is all-zero; nothing to crop", sample_name(sample),
                            "keypoints")
        begin, length = valid_crop_window(num_valid, self.p_interval, rng, self.min_length)
        scores = get_scores(sample, kp, "ValidCropResize")
        out = updated(sample, keypoints=as_float32(resize_time_bilinear(kp[:, begin:begin + length], self.window)))
        if scores is not None:
            out["scores"] = as_float32(resize_time_bilinear(scores[:, begin:begin + length], self.window))
        return out

    def __repr__(self) -> str:
        return f"ValidCropResize(window={self.window}, p_interval={list(self.p_interval)}, " \
               f"min_length={self.min_length})"


# --------------------------------------------------------------------------------------------------------------------
# pyskl: UniformSampleFrames


def uniform_sample_indices(num_frames: int, clip_len: int, num_clips: int, p_interval: tuple[float, float],
                           rng: np.random.Generator | np.random.RandomState) -> np.ndarray:
    """Frame indices of pyskl's ``UniformSampleFrames`` (``pyskl/datasets/pipelines/sampling.py``), train branch.

    Per clip: keep a random sub-range of ``int(ratio * num_frames)`` frames (``ratio ~ U[p_interval)``) at a random
    offset, then

    * shorter than ``clip_len``: ``clip_len`` consecutive frames from a random start, looping;
    * ``clip_len <= n < 2 clip_len``: every frame, minus ``n - clip_len`` frames skipped at random positions;
    * longer: split into ``clip_len`` equal segments and draw one frame from each.

    Returns ``num_clips * clip_len`` indices into ``[0, num_frames)``. A sub-range of 0 frames (pyskl would fail)
    is raised to 1.
    """
    uniform, integers = _draw_functions(rng)
    clips = []
    for _ in range(num_clips):
        ratio = uniform() * (p_interval[1] - p_interval[0]) + p_interval[0]
        kept = max(int(ratio * num_frames), 1)
        offset = integers(num_frames - kept + 1)
        if kept < clip_len:
            start = integers(kept)
            inds = np.arange(start, start + clip_len)
        else:
            inds = _spread(kept, clip_len, rng, integers)
        clips.append(inds + offset)
    return np.mod(np.concatenate(clips), num_frames)


def uniform_sample_test_indices(num_frames: int, clip_len: int, num_clips: int, p_interval: tuple[float, float],
                                seed: int = 255) -> np.ndarray:
    """pyskl's test-mode ``UniformSampleFrames``: the same sampling from a generator re-seeded with ``seed`` for
    every sample, and clip ``i`` of a short video starting at frame ``i * n // num_clips`` (``i`` when ``n`` is
    smaller than ``num_clips``) instead of a random frame.

    pyskl re-seeds numpy's legacy global generator; we seed a private ``RandomState`` the same way, so the indices
    equal pyskl's test indices exactly and no global state is touched.
    """
    rs = np.random.RandomState(seed)
    uniform, integers = _draw_functions(rs)
    clips = []
    for i in range(num_clips):
        ratio = uniform() * (p_interval[1] - p_interval[0]) + p_interval[0]
        kept = max(int(ratio * num_frames), 1)
        offset = integers(num_frames - kept + 1)
        if kept < clip_len:
            start = i if kept < num_clips else i * kept // num_clips
            inds = np.arange(start, start + clip_len)
        else:
            inds = _spread(kept, clip_len, rs, integers)
        clips.append(inds + offset)
    return np.mod(np.concatenate(clips), num_frames)


def _draw_functions(rng: np.random.Generator | np.random.RandomState):
    if isinstance(rng, np.random.RandomState):
        return rng.rand, rng.randint
    return rng.random, rng.integers


def _spread(kept: int, clip_len: int, rng, integers) -> np.ndarray:
    if kept < 2 * clip_len:
        skipped = rng.choice(clip_len + 1, kept - clip_len, replace=False)
        step = np.zeros(clip_len + 1, dtype=np.int64)
        step[skipped] = 1
        return np.arange(clip_len) + np.cumsum(step)[:-1]
    bounds = np.arange(clip_len + 1) * kept // clip_len
    return bounds[:-1] + integers(np.diff(bounds))


@register_transform(name="UniformSampleFrames")
@register_transform
class UniformSample:
    """pyskl's ``UniformSample`` / ``UniformSampleFrames``: ``num_clips`` clips of ``clip_len`` frames each.

    The output has ``T = num_clips * clip_len`` frames, clip after clip, and the sample gains ``num_clips`` so a
    model (or the test loop) can split them; pyskl's GCN configs use ``clip_len=100``, one clip in training and 10
    in testing. ``test_mode=True`` samples deterministically from ``seed`` (pyskl's 255) and ignores ``rng``, as pyskl
    does, so every test pass sees the same frames. pyskl's extra pass over "transitional" frames (where the number
    of people changes) is a no-op on integer indices and is not reproduced.
    """

    def __init__(self, clip_len: int, num_clips: int = 1, p_interval: Any = 1.0, test_mode: bool = False,
                 seed: int = 255):
        self.clip_len = as_positive_int("UniformSample", "clip_len", clip_len)
        self.num_clips = as_positive_int("UniformSample", "num_clips", num_clips)
        interval = as_interval("UniformSample", "p_interval", p_interval, 0.0, 1.0)
        self.p_interval = interval if len(interval) == 2 else interval * 2
        if not isinstance(test_mode, bool):
            raise bad_argument("UniformSample", "test_mode", f"expected true or false, got {test_mode!r}")
        self.test_mode = test_mode
        self.seed = int(as_number("UniformSample", "seed", seed, 0, 2**32 - 1))

    def indices(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        if self.test_mode:
            return uniform_sample_test_indices(num_frames, self.clip_len, self.num_clips, self.p_interval, self.seed)
        return uniform_sample_indices(num_frames, self.clip_len, self.num_clips, self.p_interval, rng)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "UniformSample")
        return _take_frames(sample, "UniformSample", self.indices(kp.shape[1], rng), num_clips=self.num_clips)

    def __repr__(self) -> str:
        return (f"UniformSample(clip_len={self.clip_len}, num_clips={self.num_clips}, "
                f"p_interval={list(self.p_interval)}, test_mode={self.test_mode}, seed={self.seed})")


# --------------------------------------------------------------------------------------------------------------------
# CTR-GCN (NW-UCLA): 52 frames


def ucla_train_indices(num_frames: int, window: int, rng: np.random.Generator, repeats: int = 100) -> np.ndarray:
    """CTR-GCN's NW-UCLA training frames (``feeders/feeder_ucla.py``): ``window`` draws without replacement from
    the frame list repeated ``repeats`` times, sorted. Short clips thus repeat frames, long ones skip frames at
    random, and the order of time is kept."""
    pool = num_frames * repeats
    if pool < window:
        raise ValueError(f"{num_frames} frames x {repeats} repeats cannot supply {window} draws")
    return np.sort(rng.choice(pool, size=window, replace=False) % num_frames)


def ucla_test_indices(num_frames: int, window: int) -> np.ndarray:
    """CTR-GCN's NW-UCLA test frames: ``window`` evenly spaced positions from first to last frame, truncated."""
    return np.linspace(0, num_frames - 1, window).astype(np.int64)


@register_transform
class UclaSample:
    """CTR-GCN's NW-UCLA frame sampling to ``window_size`` frames (52 in their feeder).

    Training: :func:`ucla_train_indices`; test (``test_mode=True``): :func:`ucla_test_indices`. CTR-GCN also repeats
    its training list 5 times per "epoch" (``repeat: 5`` in ``config/ucla/default.yaml``); that is not a transform
    and is not reproduced here: an skelact epoch is one pass, so train 5x the epochs for the same number of steps.
    """

    def __init__(self, window_size: int = 52, test_mode: bool = False, repeats: int = 100):
        self.window_size = as_positive_int("UclaSample", "window_size", window_size)
        if not isinstance(test_mode, bool):
            raise bad_argument("UclaSample", "test_mode", f"expected true or false, got {test_mode!r}")
        self.test_mode = test_mode
        self.repeats = as_positive_int("UclaSample", "repeats", repeats)
        if self.repeats < self.window_size:
            raise bad_argument("UclaSample", "repeats", f"must be >= window_size ({self.window_size}) so a "
                               "one-frame clip can still supply every draw")

    def indices(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        if self.test_mode:
            return ucla_test_indices(num_frames, self.window_size)
        return ucla_train_indices(num_frames, self.window_size, rng, self.repeats)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "UclaSample")
        return _take_frames(sample, "UclaSample", self.indices(kp.shape[1], rng))

    def __repr__(self) -> str:
        return f"UclaSample(window_size={self.window_size}, test_mode={self.test_mode}, repeats={self.repeats})"


# --------------------------------------------------------------------------------------------------------------------
# CrosSCLR / SkeletonCLR: temporal crop with mirrored padding


def temporal_crop_indices(num_frames: int, padding_ratio: int, rng: np.random.Generator) -> np.ndarray:
    """CrosSCLR's ``temperal_crop`` (``feeder/tools.py``) as frame indices.

    Pad ``T // padding_ratio`` frames at each end with the edge frames mirrored (the edge frame repeated, like
    ``numpy.pad(mode='symmetric')``), then take ``T`` consecutive frames from a uniform start in
    ``[0, 2 * pad]``. The length is unchanged.
    """
    pad = num_frames // padding_ratio
    start = int(rng.integers(0, 2 * pad + 1))
    head, tail = np.arange(pad)[::-1], np.arange(num_frames - pad, num_frames)[::-1]
    padded = np.concatenate([head, np.arange(num_frames), tail])
    return padded[start:start + num_frames]


@register_transform
class TemporalCrop:
    """CrosSCLR / SkeletonCLR's temporal crop, ``padding_ratio=6`` as in their feeders: see
    :func:`temporal_crop_indices`."""

    def __init__(self, padding_ratio: int = 6):
        self.padding_ratio = as_positive_int("TemporalCrop", "padding_ratio", padding_ratio)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "TemporalCrop")
        return _take_frames(sample, "TemporalCrop", temporal_crop_indices(kp.shape[1], self.padding_ratio, rng))

    def __repr__(self) -> str:
        return f"TemporalCrop(padding_ratio={self.padding_ratio})"
