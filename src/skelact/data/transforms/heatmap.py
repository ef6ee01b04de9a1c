"""The PoseConv3D input pipeline (Duan et al., CVPR 2022, arXiv 2104.13586, Sec. 3.2 and 4.1): pixel keypoints
cropped around the subject, resized, randomly cropped and turned into a ``heatmap`` field ``[K, T, H, W]``.

The steps work on 2D pixel coordinates ``(x, y)`` and track the image the keypoints live in as the sample's
``image_size`` ``(height, width)``; :class:`SelectCoords` picks x and y out of 3D data (NW-UCLA) first. A missing
joint (coordinates exactly 0) stays at 0 through every step, so it keeps drawing nothing. Temporal sampling is
:class:`~skelact.data.transforms.temporal.UniformSample` (pyskl's ``UniformSampleFrames``: the clip split into
``clip_len`` equal segments, one random frame from each in training, a fixed choice at test).

A typical training pipeline: ``SelectCoords`` (3D data only), ``SubjectCrop``, ``UniformSample``,
``RandomResizedCrop``, ``Resize [56, 56]``, ``GenerateHeatmap``, ``HeatmapFlip p=0.5``, ``ToInputs {x: heatmap}``;
test: ``SubjectCrop``, ``UniformSample num_clips=10 test_mode=true``, ``Resize``, ``GenerateHeatmap double=true``
(10 clips and their mirror images stacked on a leading axis ``[2 * clips, K, T, H, W]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skelact.data.heatmaps import flip_heatmap, heatmap_volume, limb_flip_permutation
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
    get_layout_of,
    get_scores,
    sample_name,
    updated,
)
from skelact.errors import DataError, LayoutError

#: the sample key holding the ``(height, width)`` of the image the keypoints are in
IMAGE_SIZE_KEY = "image_size"
#: the sample key GenerateHeatmap writes, and the channel order a mirror image of it takes
HEATMAP_KEY = "heatmap"
HEATMAP_FLIP_KEY = "heatmap_flip"


def present_joints(keypoints: np.ndarray) -> np.ndarray:
    """``[M, T, V]`` mask of joints that are not missing (not all coordinates exactly 0)."""
    return np.any(keypoints != 0, axis=-1)


def move_keypoints(keypoints: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x, y) -> ((x, y) - offset) * scale`` for present joints; missing joints stay exactly 0."""
    moved = (keypoints[..., :2].astype(np.float64) - offset) * scale
    out = keypoints.astype(np.float32, copy=True)
    out[..., :2] = np.where(present_joints(keypoints)[..., None], moved, 0.0)
    return out


def image_size_of(sample: Sample, who: str) -> tuple[float, float]:
    size = sample.get(IMAGE_SIZE_KEY)
    if size is None or len(size) != 2 or not all(float(s) > 0 for s in size):
        raise DataError(f"{who} needs the sample's {IMAGE_SIZE_KEY!r} (height, width); place SubjectCrop (or a "
                        f"reader that records it) before it", sample_name(sample), IMAGE_SIZE_KEY)
    return float(size[0]), float(size[1])


def pixel_keypoints(sample: Sample, who: str) -> np.ndarray:
    kp = get_keypoints(sample, who)
    if kp.shape[3] != 2:
        raise DataError(f"{who} works on 2D (x, y) pixel keypoints, got {kp.shape[3]} coordinates; place "
                        f"SelectCoords(axes=[0, 1]) first for 3D data", sample_name(sample), "keypoints")
    return kp


@register_transform
class SelectCoords:
    """Keep the coordinate axes ``axes`` (``[0, 1]``: x and y of 3D joints, as for NW-UCLA)."""

    def __init__(self, axes: Any = (0, 1)):
        if not isinstance(axes, (list, tuple)) or not axes or not all(
                isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in axes):
            raise bad_argument("SelectCoords", "axes", f"expected a list of coordinate indices, got {axes!r}")
        self.axes = tuple(axes)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "SelectCoords")
        if max(self.axes) >= kp.shape[3]:
            raise DataError(f"SelectCoords: axes {list(self.axes)} but the keypoints have {kp.shape[3]} "
                            "coordinates", sample_name(sample), "keypoints")
        return updated(sample, keypoints=as_float32(kp[..., list(self.axes)]))

    def output_coords(self, coords: int) -> int:
        """What the model is built for (:func:`skelact.engine.build.coords_after_pipelines`)."""
        return len(self.axes)

    def __repr__(self) -> str:
        return f"SelectCoords(axes={list(self.axes)})"


@register_transform
class SubjectCrop:
    """pyskl's ``PoseCompact``: the box holding every present joint of every person and frame of the clip, grown
    by ``margin`` (0.25: a quarter of its size more) about its centre and padded to a square; the keypoints move
    into it and ``image_size`` becomes its size. The box may reach past the original image (pyskl's
    ``allow_imgpad``), so the subject is never cut."""

    def __init__(self, margin: float = 0.25, min_size: float = 1.0):
        self.margin = as_number("SubjectCrop", "margin", margin, 0.0, 10.0)
        self.min_size = as_number("SubjectCrop", "min_size", min_size, 1e-6)

    def box(self, keypoints: np.ndarray) -> tuple[np.ndarray, float] | None:
        """``(corner (x, y), side)`` of the square, or ``None`` when no joint is present."""
        present = present_joints(keypoints)
        if not present.any():
            return None
        xy = keypoints[..., :2][present].astype(np.float64)
        low, high = xy.min(axis=0), xy.max(axis=0)
        side = max(float((high - low).max()) * (1.0 + self.margin), self.min_size)
        return (low + high) / 2 - side / 2, side

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = pixel_keypoints(sample, "SubjectCrop")
        box = self.box(kp)
        if box is None:
            raise DataError("SubjectCrop: every joint of the clip is missing; there is no subject to crop",
                            sample_name(sample), "keypoints")
        corner, side = box
        return updated(sample, keypoints=move_keypoints(kp, corner, np.ones(2)), **{IMAGE_SIZE_KEY: (side, side)})

    def __repr__(self) -> str:
        return f"SubjectCrop(margin={self.margin}, min_size={self.min_size})"


@register_transform
class Resize:
    """Scale the keypoints from ``image_size`` to ``size = [height, width]`` pixels (the heatmap size)."""

    def __init__(self, size: Any = (56, 56)):
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise bad_argument("Resize", "size", f"expected [height, width], got {size!r}")
        self.size = tuple(as_positive_int("Resize", "size", s) for s in size)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = pixel_keypoints(sample, "Resize")
        h, w = image_size_of(sample, "Resize")
        scale = np.array([self.size[1] / w, self.size[0] / h])
        return updated(sample, keypoints=move_keypoints(kp, np.zeros(2), scale), **{IMAGE_SIZE_KEY: self.size})

    def __repr__(self) -> str:
        return f"Resize(size={list(self.size)})"


@register_transform
class RandomResizedCrop:
    """The Inception-style crop pyskl uses: a box of ``area`` (fraction of the image, 0.56-1.0) and aspect ratio
    ``aspect_ratio`` (width / height, log-uniform in 3/4-4/3) at a uniform position; the keypoints move into it and
    ``image_size`` becomes its size (follow with :class:`Resize`). A box that does not fit is shrunk to fit."""

    def __init__(self, area: Any = (0.56, 1.0), aspect_ratio: Any = (3 / 4, 4 / 3)):
        self.area = as_interval("RandomResizedCrop", "area", area, 1e-6, 1.0)
        self.aspect_ratio = as_interval("RandomResizedCrop", "aspect_ratio", aspect_ratio, 1e-3, 1e3)

    def box(self, height: float, width: float, rng: np.random.Generator) -> tuple[float, float, float, float]:
        """``(x0, y0, box width, box height)``."""
        area = rng.uniform(self.area[0], self.area[-1]) * height * width
        ratio = float(np.exp(rng.uniform(np.log(self.aspect_ratio[0]), np.log(self.aspect_ratio[-1]))))
        box_w = min(np.sqrt(area * ratio), width)
        box_h = min(np.sqrt(area / ratio), height)
        return rng.uniform(0, width - box_w), rng.uniform(0, height - box_h), box_w, box_h

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = pixel_keypoints(sample, "RandomResizedCrop")
        h, w = image_size_of(sample, "RandomResizedCrop")
        x0, y0, box_w, box_h = self.box(h, w, rng)
        return updated(sample, keypoints=move_keypoints(kp, np.array([x0, y0]), np.ones(2)),
                       **{IMAGE_SIZE_KEY: (box_h, box_w)})

    def __repr__(self) -> str:
        return f"RandomResizedCrop(area={list(self.area)}, aspect_ratio={list(self.aspect_ratio)})"



def heatmap_flip_order(layout: Any, joints: bool, limbs: bool, step: str, who: str) -> np.ndarray:
    """The order of a heatmap volume's channels (joint maps, then limb maps) in its mirror image: each joint's map
    takes its flip partner's place, each limb's the limb its two joints become. ``step`` and ``who`` name the step
    and the sample in the error raised when the layout's flip pairs map a bone onto no bone."""
    joint_order = layout.flip_permutation()
    order = []
    if joints:
        order.append(joint_order)
    if limbs:
        try:
            limb_order = limb_flip_permutation(layout.bones, joint_order)
        except ValueError as e:
            raise LayoutError(f"{step}: layout {layout.name!r}: {e}; its flip pairs must map every bone onto a bone",
                              who, "flip_pairs") from None
        order.append(limb_order + (layout.num_joints if joints else 0))
    return np.concatenate(order)

@register_transform
class GenerateHeatmap:
    """Write the ``heatmap`` field: joint maps (``joints``), limb maps of the layout's bones (``limbs``) or both
    concatenated, joints first (:mod:`skelact.data.heatmaps`), ``[K, T, H, W]`` at the sample's integer
    ``image_size``. A sample of several clips (``num_clips`` from ``UniformSample``) gets them on a leading axis,
    ``[clips, K, T / clips, H, W]``; ``double=True`` (pyskl's name; test-time flip augmentation) adds the mirror
    image of every clip after them, ``[2 * clips, ...]`` (a single clip too: ``[2, K, T, H, W]``). Also writes
    ``heatmap_flip``, the channel order of the mirror image (:class:`HeatmapFlip` reads it)."""

    def __init__(self, sigma: float = 0.6, joints: bool = True, limbs: bool = False, double: bool = False):
        self.sigma = as_number("GenerateHeatmap", "sigma", sigma, 1e-3, 100.0)
        for name, value in (("joints", joints), ("limbs", limbs), ("double", double)):
            if not isinstance(value, bool):
                raise bad_argument("GenerateHeatmap", name, f"expected true or false, got {value!r}")
        if not (joints or limbs):
            raise bad_argument("GenerateHeatmap", "joints", "at least one of joints and limbs must be true")
        self.joints, self.limbs, self.double = joints, limbs, double

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = pixel_keypoints(sample, "GenerateHeatmap")
        scores = get_scores(sample, kp, "GenerateHeatmap")
        layout = get_layout_of(sample, kp, "GenerateHeatmap")
        h, w = image_size_of(sample, "GenerateHeatmap")
        if h != int(h) or w != int(w):
            raise DataError(f"GenerateHeatmap: image_size {(h, w)} is not whole pixels; place Resize before it",
                            sample_name(sample), IMAGE_SIZE_KEY)
        clips = int(sample.get("num_clips", 1))
        if kp.shape[1] % clips:
            raise DataError(f"GenerateHeatmap: {kp.shape[1]} frames do not split into {clips} clips",
                            sample_name(sample), "num_clips")
        order = heatmap_flip_order(layout, self.joints, self.limbs, "GenerateHeatmap", sample_name(sample))
        volume = heatmap_volume(kp, scores, (int(h), int(w)), self.sigma, layout.bones if self.limbs else None,
                                self.joints, clips=clips if clips > 1 else None,
                                mirror=order if self.double else None)
        return updated(sample, **{HEATMAP_KEY: volume, HEATMAP_FLIP_KEY: order})

    def __repr__(self) -> str:
        return f"GenerateHeatmap(sigma={self.sigma}, joints={self.joints}, limbs={self.limbs}, double={self.double})"


@register_transform
class HeatmapFlip:
    """The mirror image of the ``heatmap`` field with probability ``p``: columns reversed, left/right channels
    swapped by the layout's flip pairs (joint channels by their pairs, limb channels to the limbs their joints
    become). The training-time flip; the test-time one is ``GenerateHeatmap double=true``."""

    def __init__(self, p: float = 0.5):
        self.p = as_number("HeatmapFlip", "p", p, 0.0, 1.0)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if HEATMAP_KEY not in sample or HEATMAP_FLIP_KEY not in sample:
            raise DataError("HeatmapFlip needs the 'heatmap' field; place GenerateHeatmap before it",
                            sample_name(sample), HEATMAP_KEY)
        if not rng.random() < self.p:
            return sample
        volume = np.asarray(sample[HEATMAP_KEY])
        return updated(sample, **{HEATMAP_KEY: flip_heatmap(volume, np.asarray(sample[HEATMAP_FLIP_KEY]))})

    def __repr__(self) -> str:
        return f"HeatmapFlip(p={self.p})"


__all__ = [
    "GenerateHeatmap",
    "HeatmapFlip",
    "RandomResizedCrop",
    "Resize",
    "SelectCoords",
    "SubjectCrop",
    "move_keypoints",
    "present_joints",
]
