"""FstCN's clip pairs from a sample's video: ``clip`` frames and ``diff`` frame differences at the same positions.

Sun, Jia, Yeung and Shi, "Human Action Recognition using Factorized Spatio-Temporal Convolutional Networks", ICCV
2015, Section 4 ("Input"): a clip pair is ``V_clip``, ``l_t`` frames taken every ``s_t`` frames, and ``V_diff``,
the differences ``V(t + d_t) - V(t)`` at the same ``l_t`` positions ``t``. The paper uses ``l_t = 5``, ``d_t = 9``,
``s_t = 5`` and 204 x 204 crops of the frames; training takes one clip pair per video at a random position with a
random crop and horizontal flip; testing takes ``M`` clip pairs spread evenly over the video, each under 18 crops
(the 4 corners, the 4 edge middles and the centre, each also flipped), whose scores the model fuses.

The frames come from :class:`~skelact.video.frame_cache.FrameCache` (decoded once, then memory-mapped), so epochs
after the first do not decode again; ``cache: false`` decodes the video on every call (what the benchmark compares
against). Frames are ``uint8``; the outputs are float32 ``[3, l_t, crop, crop]`` (training) or
``[views, 3, l_t, crop, crop]`` (testing, ``views = M * 18``, clip pair major, then :func:`eighteen_crops` order):
``clip = (V / 255 - mean) / std`` and ``diff = (V(t + d_t) - V(t)) / 255 / std`` (a difference has no mean to
remove).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skelact.data.transforms.registry import as_positive_int, bad_argument, register_transform
from skelact.data.transforms.sample import Sample, sample_name, updated
from skelact.errors import DataError

#: per-channel RGB mean and standard deviation of the normalised frames (the usual ImageNet figures, so a user's
#: ImageNet-initialised lower layers see the inputs they were trained on)
RGB_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
RGB_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
#: crop positions per clip pair at test time: 3 x 3 grid positions, each plain and flipped
TEST_VIEWS_PER_CLIP = 18


def eighteen_crops(height: int, width: int, crop: int) -> list[tuple[int, int, bool]]:
    """The 18 test crops ``(top, left, flipped)`` of a ``height x width`` frame: the 9 positions of a 3 x 3 grid
    (corners, edge middles, centre; row by row) plain, then the same 9 flipped."""
    rows = sorted({0, (height - crop) // 2, height - crop})
    cols = sorted({0, (width - crop) // 2, width - crop})
    # a frame exactly the crop's size has one position; repeat it so every clip pair still has 18 views
    rows = [rows[0], rows[len(rows) // 2], rows[-1]]
    cols = [cols[0], cols[len(cols) // 2], cols[-1]]
    positions = [(top, left) for top in rows for left in cols]
    return [(top, left, False) for top, left in positions] + [(top, left, True) for top, left in positions]


def clip_positions(num_frames: int, clip_len: int, stride: int, offset: int, start: int) -> np.ndarray:
    """Frame indices of a clip starting at ``start``: ``start + k * stride`` for ``k < clip_len``, held at the last
    frame that still has a partner ``offset`` frames later (short videos repeat their last usable frame)."""
    last = max(num_frames - 1 - offset, 0)
    return np.minimum(start + stride * np.arange(clip_len), last)


@register_transform
class ClipPairs:
    """FstCN's ``clip`` and ``diff`` arrays from the sample's ``video`` (see the module docstring).

    ``clip_len`` = l_t, ``stride`` = s_t, ``diff_offset`` = d_t, ``crop_size`` (pixels, square), ``test_mode``
    (``num_clips`` = M evenly spread clip pairs x 18 crops, else one random clip pair, crop and flip with
    probability ``flip``), ``max_side`` (frames are scaled down so their longer side is at most this before
    cropping; ``None`` keeps the decoded size), ``cache`` (use the frame cache), ``cache_dir`` (default
    ``$SKELACT_FRAME_CACHE`` or ``~/.cache/skelact/frames``).
    """

    def __init__(self, clip_len: int = 5, stride: int = 5, diff_offset: int = 9, crop_size: int = 204,
                 num_clips: int = 1, test_mode: bool = False, flip: float = 0.5, max_side: int | None = None,
                 cache: bool = True, cache_dir: str | None = None):
        self.clip_len = as_positive_int("ClipPairs", "clip_len", clip_len)
        self.stride = as_positive_int("ClipPairs", "stride", stride)
        self.diff_offset = as_positive_int("ClipPairs", "diff_offset", diff_offset)
        self.crop_size = as_positive_int("ClipPairs", "crop_size", crop_size)
        self.num_clips = as_positive_int("ClipPairs", "num_clips", num_clips)
        self.max_side = None if max_side is None else as_positive_int("ClipPairs", "max_side", max_side)
        if not isinstance(flip, (int, float)) or isinstance(flip, bool) or not 0.0 <= flip <= 1.0:
            raise bad_argument("ClipPairs", "flip", f"expected a probability in [0, 1], got {flip!r}")
        self.flip = float(flip)
        self.test_mode = bool(test_mode)
        self.cache = bool(cache)
        self.cache_dir = cache_dir
        self._frame_cache: Any = None

    @property
    def span(self) -> int:
        """Frames one clip pair reaches over: its first frame to the partner of its last."""
        return (self.clip_len - 1) * self.stride + self.diff_offset + 1

    def frames_of(self, video: str) -> np.ndarray:
        """``uint8 [T, H, W, 3]`` frames of ``video`` (memory-mapped from the cache, or decoded now)."""
        if self._frame_cache is None:
            from skelact.video.frame_cache import FrameCache

            self._frame_cache = FrameCache(self.cache_dir, max_side=self.max_side)
        return self._frame_cache.frames(video) if self.cache else self._frame_cache.decode(video)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        video = sample.get("video")
        if not video:
            raise DataError("ClipPairs needs the sample's video (a store whose samples refer to videos)",
                            sample_name(sample), "video")
        frames = self.frames_of(str(video))
        t, height, width = frames.shape[:3]
        if height < self.crop_size or width < self.crop_size:
            raise DataError(f"ClipPairs: frames of {height}x{width} pixels are smaller than crop_size "
                            f"{self.crop_size}; lower crop_size or raise max_side", sample_name(sample), "video")
        free = max(t - self.span, 0)
        if self.test_mode:
            starts = np.linspace(0, free, self.num_clips).round().astype(np.int64)
            views = [(start, top, left, flipped) for start in starts
                     for top, left, flipped in eighteen_crops(height, width, self.crop_size)]
        else:
            views = [(int(rng.integers(0, free + 1)), int(rng.integers(0, height - self.crop_size + 1)),
                      int(rng.integers(0, width - self.crop_size + 1)), bool(rng.random() < self.flip))]
        clips, diffs = [], []
        for start, top, left, flipped in views:
            clip, diff = self.pair(frames, int(start), top, left, flipped)
            clips.append(clip)
            diffs.append(diff)
        if self.test_mode:
            return updated(sample, clip=np.stack(clips), diff=np.stack(diffs))
        return updated(sample, clip=clips[0], diff=diffs[0])

    def pair(self, frames: np.ndarray, start: int, top: int, left: int, flipped: bool
             ) -> tuple[np.ndarray, np.ndarray]:
        """One normalised clip pair ``([3, l_t, crop, crop], [3, l_t, crop, crop])`` at ``start`` and this crop."""
        positions = clip_positions(frames.shape[0], self.clip_len, self.stride, self.diff_offset, start)
        partners = np.minimum(positions + self.diff_offset, frames.shape[0] - 1)
        window = (slice(top, top + self.crop_size), slice(left, left + self.crop_size))
        now = frames[positions][:, window[0], window[1]].astype(np.float32)
        later = frames[partners][:, window[0], window[1]].astype(np.float32)
        if flipped:
            now, later = now[:, :, ::-1], later[:, :, ::-1]
        clip = (now / 255.0 - RGB_MEAN) / RGB_STD
        diff = (later - now) / 255.0 / RGB_STD
        # [l_t, H, W, 3] -> [3, l_t, H, W]
        return (np.ascontiguousarray(clip.transpose(3, 0, 1, 2), dtype=np.float32),
                np.ascontiguousarray(diff.transpose(3, 0, 1, 2), dtype=np.float32))

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers open their own cache handle
        state = dict(self.__dict__)
        state["_frame_cache"] = None
        return state

    def __repr__(self) -> str:
        return (f"ClipPairs(clip_len={self.clip_len}, stride={self.stride}, diff_offset={self.diff_offset}, "
                f"crop_size={self.crop_size}, num_clips={self.num_clips}, test_mode={self.test_mode})")
