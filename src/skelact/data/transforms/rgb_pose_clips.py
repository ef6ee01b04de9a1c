"""RGBPose-Conv3D's two clips of one video: a short RGB clip and a long pose-heatmap clip, cut by one crop and flip.

Duan, Zhao, Chen, Lin and Dai, "Revisiting Skeleton-based Action Recognition" (PoseConv3D), CVPR 2022, arXiv
2104.13586, Sec. 3.4 (RGBPose-Conv3D): the RGB pathway sees few frames at a high resolution, the pose pathway many
frames of heatmaps at a quarter of that resolution (pyskl's ``configs/rgbpose_conv3d/rgbpose_conv3d.py``: 8 RGB
frames at 224 x 224, 32 heatmap frames at 56 x 56, ``GeneratePoseTarget(scaling=0.25)``). One step, so the two
cannot disagree:

1. **Frames.** ``pose_len`` frames per clip by pyskl's uniform sampling
   (:func:`~skelact.data.transforms.temporal.uniform_sample_indices`; seeded and fixed in ``test_mode``, ``num_clips``
   clips); the RGB clip takes every ``pose_len / rgb_len``-th of them, the first of each group. pyskl draws the RGB
   and pose indices independently (``MMUniformSampleFrames``); we take the RGB frames from the pose frames instead, so
   RGB frame ``t`` is pose frame ``ratio * t``, exactly the centre of the temporal window the lateral convolutions
   (kernel 7, stride ``ratio``) join to it.
2. **Crop.** The subject's square box over the sampled keypoints grown by ``margin`` (pyskl's ``MMCompact``; it may
   reach past the image, padded with mid-grey 127 as pyskl pads), in training then a random resized crop of it
   (area ``area``, aspect ``aspect_ratio``; pyskl's ``RandomResizedCrop``), flipped with probability ``flip``.
3. **Both clips from that box.** The frames are resampled (bilinear) into ``rgb_size x rgb_size`` pixels; the keypoints
   are moved into ``rgb_size / heatmap_ratio`` pixels and drawn as heatmaps (:func:`~skelact.data.heatmaps.
   heatmap_volume`, sigma ``sigma``, joints and/or limbs). RGB pixel ``J`` covers heatmap coordinate
   ``(J + 0.5) / heatmap_ratio - 0.5``, so a heatmap pixel sits at the centre of the ``ratio x ratio`` RGB pixels
   over it and a flip (columns reversed in both) keeps them on top of each other exactly.

Outputs: ``rgb`` float32 ``[3, rgb_len, S, S]`` normalised as :mod:`.clip_pairs` (ImageNet mean and std, as pyskl's
``img_norm_cfg``) and ``heatmap`` ``[K, pose_len, S / r, S / r]``; with several clips or ``double`` (each clip's mirror
image after the clips, for test-time flipping) both get a leading clip axis ``[clips, ...]``. ``rgb_frames`` and
``pose_frames`` record the video frames used (per clip). The keypoints are in the pixels of the sample's
``meta['img_shape']`` (height, width); frames decoded at another size (``max_side``) are matched to them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skelact.data.heatmaps import flip_heatmap, heatmap_volume
from skelact.data.transforms.clip_pairs import RGB_MEAN, RGB_STD
from skelact.data.transforms.heatmap import (HEATMAP_KEY, RandomResizedCrop, SubjectCrop, heatmap_flip_order,
                                             move_keypoints, pixel_keypoints)
from skelact.data.transforms.registry import as_number, as_positive_int, bad_argument, register_transform
from skelact.data.transforms.sample import Sample, get_layout_of, get_scores, sample_name, updated
from skelact.data.transforms.temporal import uniform_sample_indices, uniform_sample_test_indices
from skelact.errors import DataError

#: the sample key of the RGB clip
RGB_KEY = "rgb"
#: the grey a crop reaching past the frame is filled with (pyskl's ``MMPad`` value)
PAD_VALUE = 127.0


def bilinear_crop(frames: np.ndarray, xs: np.ndarray, ys: np.ndarray, pad: float = PAD_VALUE) -> np.ndarray:
    """``float32 [T, len(ys), len(xs), C]``: ``frames [T, H, W, C]`` sampled bilinearly at column coordinates ``xs``
    and row coordinates ``ys`` (pixel ``i``'s centre at ``i``); a position outside the frame (beyond half a pixel
    past its edge) is ``pad``."""
    height, width = frames.shape[1:3]

    def weights(coords: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        low = np.floor(coords)
        frac = (coords - low).astype(np.float32)
        low = low.astype(np.int64)
        inside = (coords >= -0.5) & (coords <= size - 0.5)
        return np.clip(low, 0, size - 1), np.clip(low + 1, 0, size - 1), frac, inside

    y0, y1, wy, in_y = weights(np.asarray(ys, np.float64), height)
    x0, x1, wx, in_x = weights(np.asarray(xs, np.float64), width)
    wy, wx = wy[None, :, None, None], wx[None, None, :, None]
    top = frames[:, y0].astype(np.float32)
    bottom = frames[:, y1].astype(np.float32)
    rows = top + (bottom - top) * wy
    left, right = rows[:, :, x0], rows[:, :, x1]
    out = left + (right - left) * wx
    out[:, ~in_y] = pad
    out[:, :, ~in_x] = pad
    return out


@register_transform
class RGBPoseClips:
    """The ``rgb`` and ``heatmap`` clips of a sample's video and keypoints (see the module docstring).

    ``rgb_len`` / ``pose_len`` frames (``pose_len`` a multiple of ``rgb_len``), ``rgb_size`` (pixels, square),
    ``heatmap_ratio`` (RGB pixels per heatmap pixel, 4), ``num_clips``, ``test_mode`` (fixed frames, no random crop or
    flip), ``seed`` (of the test-mode sampling, pyskl's 255), ``margin``, ``area``, ``aspect_ratio``, ``flip``
    (training flip probability), ``double`` (add mirror images, test time), ``sigma``, ``joints``, ``limbs``,
    ``max_side`` / ``cache`` / ``cache_dir`` (the frame cache, as :class:`~skelact.data.transforms.ClipPairs`).
    """

    def __init__(self, rgb_len: int = 8, pose_len: int = 32, rgb_size: int = 224, heatmap_ratio: int = 4,
                 num_clips: int = 1, test_mode: bool = False, seed: int = 255, margin: float = 0.25,
                 area: Any = (0.56, 1.0), aspect_ratio: Any = (3 / 4, 4 / 3), flip: float = 0.5,
                 double: bool = False, sigma: float = 0.6, joints: bool = True, limbs: bool = False,
                 max_side: int | None = None, cache: bool = True, cache_dir: str | None = None):
        self.rgb_len = as_positive_int("RGBPoseClips", "rgb_len", rgb_len)
        self.pose_len = as_positive_int("RGBPoseClips", "pose_len", pose_len)
        if self.pose_len % self.rgb_len:
            raise bad_argument("RGBPoseClips", "pose_len", f"must be a multiple of rgb_len ({self.rgb_len}), got "
                               f"{self.pose_len}")
        self.rgb_size = as_positive_int("RGBPoseClips", "rgb_size", rgb_size)
        self.heatmap_ratio = as_positive_int("RGBPoseClips", "heatmap_ratio", heatmap_ratio)
        if self.rgb_size % self.heatmap_ratio:
            raise bad_argument("RGBPoseClips", "rgb_size", f"must be a multiple of heatmap_ratio "
                               f"({self.heatmap_ratio}), got {self.rgb_size}")
        self.num_clips = as_positive_int("RGBPoseClips", "num_clips", num_clips)
        for name, value in (("test_mode", test_mode), ("double", double), ("joints", joints), ("limbs", limbs),
                            ("cache", cache)):
            if not isinstance(value, bool):
                raise bad_argument("RGBPoseClips", name, f"expected true or false, got {value!r}")
        if not (joints or limbs):
            raise bad_argument("RGBPoseClips", "joints", "at least one of joints and limbs must be true")
        self.test_mode, self.double, self.joints, self.limbs, self.cache = test_mode, double, joints, limbs, cache
        self.seed = int(as_number("RGBPoseClips", "seed", seed, 0, 2**32 - 1))
        self.flip = as_number("RGBPoseClips", "flip", flip, 0.0, 1.0)
        self.sigma = as_number("RGBPoseClips", "sigma", sigma, 1e-3, 100.0)
        self.subject = SubjectCrop(margin=margin)
        self.random_crop = RandomResizedCrop(area=area, aspect_ratio=aspect_ratio)
        self.max_side = None if max_side is None else as_positive_int("RGBPoseClips", "max_side", max_side)
        self.cache_dir = cache_dir
        self._frame_cache: Any = None

    @property
    def heatmap_size(self) -> int:
        return self.rgb_size // self.heatmap_ratio

    @property
    def speed_ratio(self) -> int:
        """Pose frames per RGB frame."""
        return self.pose_len // self.rgb_len

    def frames_of(self, video: str) -> np.ndarray:
        """``uint8 [T, H, W, 3]`` frames of ``video`` (memory-mapped from the frame cache, or decoded now)."""
        if self._frame_cache is None:
            from skelact.video.frame_cache import FrameCache

            self._frame_cache = FrameCache(self.cache_dir, max_side=self.max_side)
        return self._frame_cache.frames(video) if self.cache else self._frame_cache.decode(video)

    def frame_indices(self, num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(pose frames [clips * pose_len], rgb frames [clips * rgb_len])``: the RGB frames are every
        ``speed_ratio``-th pose frame, the first of each group."""
        if self.test_mode:
            pose = uniform_sample_test_indices(num_frames, self.pose_len, self.num_clips, (1.0, 1.0), self.seed)
        else:
            pose = uniform_sample_indices(num_frames, self.pose_len, self.num_clips, (1.0, 1.0), rng)
        pose = np.asarray(pose, np.int64)
        rgb = pose.reshape(self.num_clips, self.rgb_len, self.speed_ratio)[:, :, 0].reshape(-1)
        return pose, rgb

    def crop_box(self, keypoints: np.ndarray, rng: np.random.Generator, who: str) -> tuple[float, float, float, float]:
        """``(x0, y0, width, height)`` in keypoint pixels: the subject box, then (training) a random part of it."""
        box = self.subject.box(keypoints)
        if box is None:
            raise DataError("RGBPoseClips: every joint of the sampled frames is missing; there is no subject to crop",
                            who, "keypoints")
        (x0, y0), side = box
        if self.test_mode:
            return float(x0), float(y0), side, side
        bx, by, bw, bh = self.random_crop.box(side, side, rng)
        return float(x0 + bx), float(y0 + by), float(bw), float(bh)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        who = sample_name(sample)
        video = sample.get("video")
        if not video:
            raise DataError("RGBPoseClips needs the sample's video (a store whose samples refer to videos)", who,
                            "video")
        kp = pixel_keypoints(sample, "RGBPoseClips")
        scores = get_scores(sample, kp, "RGBPoseClips")
        layout = get_layout_of(sample, kp, "RGBPoseClips")
        frames = self.frames_of(str(video))
        if frames.shape[0] != kp.shape[1]:
            raise DataError(f"RGBPoseClips: the video has {frames.shape[0]} frames but the keypoints {kp.shape[1]}; "
                            "they must be aligned frame by frame", who, "video")
        image_h, image_w = (sample.get("meta") or {}).get("img_shape", frames.shape[1:3])
        pose_frames, rgb_frames = self.frame_indices(kp.shape[1], rng)
        kp = kp[:, pose_frames]
        scores = None if scores is None else scores[:, pose_frames]
        x0, y0, box_w, box_h = self.crop_box(kp, rng, who)
        flipped = (not self.test_mode) and bool(rng.random() < self.flip)

        # the pose clip: keypoints into the heatmap's pixels
        size = self.heatmap_size
        order = self.channel_order(layout, who)
        moved = move_keypoints(kp, np.array([x0, y0]), np.array([size / box_w, size / box_h]))
        heatmap = heatmap_volume(moved, scores, (size, size), self.sigma, layout.bones if self.limbs else None,
                                 self.joints, clips=self.num_clips if self.num_clips > 1 else None,
                                 mirror=order if self.double else None)
        if flipped:
            heatmap = flip_heatmap(heatmap, order)

        # the RGB clip: the same box; RGB pixel J is heatmap coordinate (J + 0.5) / ratio - 0.5
        u = (np.arange(self.rgb_size) + 0.5) / self.heatmap_ratio - 0.5
        xs = x0 + u * box_w / size
        ys = y0 + u * box_h / size
        # keypoint pixels -> decoded-frame pixels (the same when the frames are not scaled)
        xs = (xs + 0.5) * frames.shape[2] / float(image_w) - 0.5
        ys = (ys + 0.5) * frames.shape[1] / float(image_h) - 0.5
        pixels = bilinear_crop(frames[rgb_frames], xs, ys)
        if flipped:
            pixels = pixels[:, :, ::-1]
        rgb = ((pixels / 255.0 - RGB_MEAN) / RGB_STD).astype(np.float32)
        # [clips * T, S, S, 3] -> [clips, 3, T, S, S]
        rgb = rgb.reshape(self.num_clips, self.rgb_len, self.rgb_size, self.rgb_size, 3).transpose(0, 4, 1, 2, 3)
        if self.double:
            rgb = np.concatenate([rgb, rgb[..., ::-1]])
        if rgb.shape[0] == 1:
            rgb = rgb[0]
        return updated(sample, **{RGB_KEY: np.ascontiguousarray(rgb), HEATMAP_KEY: heatmap,
                                  "rgb_frames": rgb_frames.reshape(self.num_clips, -1),
                                  "pose_frames": pose_frames.reshape(self.num_clips, -1)})

    def channel_order(self, layout: Any, who: str) -> np.ndarray:
        """The heatmap channels' order in the mirror image (as :class:`GenerateHeatmap`'s)."""
        return heatmap_flip_order(layout, self.joints, self.limbs, "RGBPoseClips", who)

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers open their own cache handle
        state = dict(self.__dict__)
        state["_frame_cache"] = None
        return state

    def __repr__(self) -> str:
        return (f"RGBPoseClips(rgb_len={self.rgb_len}, pose_len={self.pose_len}, rgb_size={self.rgb_size}, "
                f"heatmap_ratio={self.heatmap_ratio}, num_clips={self.num_clips}, test_mode={self.test_mode}, "
                f"double={self.double})")
