"""Deterministic synthetic RGB frames from 2D poses: real motion, synthetic appearance.

No RGB action dataset can be downloaded on the machines skelact is developed on, but Penn Action's 2D joint
annotations (Zhang, Zhu and Derpanis, ICCV 2013) are here. This module draws each annotated person as thick limbs
(capsules along the layout's bones, coloured per subject), the head as a disc, on a procedural textured background
(value noise, stripes, gradients), seen by a camera that drifts and zooms a little, smoothly, from frame to frame.
The point is a video whose *motion* is a real human action and whose *appearance* varies from clip to clip, so an
RGB model (FstCN, a frame-level CNN) has to learn the motion; it is not a photo-realistic rendering.

Everything random comes from a :class:`numpy.random.Generator` seeded by a hash of the clip's name (Penn has no
subject ids; the clip is taken as its actor), so the same clip renders to the same pixels on every run and machine.

Geometry. A clip's crop is a square around the union of its present joints over all frames (with a margin), scaled
to ``size x size``. Frame ``t`` maps a source pixel ``p`` to ``p * scale[t] + offset[t]`` (:class:`CameraPath`);
the keypoints stored beside the video go through the same map, so joint ``v`` at frame ``t`` lies on the pixel the
renderer drew it on (pixel centres at integer coordinates, as :mod:`skelact.pose.render` uses). Missing joints
(exactly ``(0, 0)``, skelact's convention) are neither drawn nor moved: they stay ``(0, 0)``.

Drawing is plain numpy; :mod:`skelact.pose.render` (overlays on real video) sits in a higher layer, and a capsule
with an exact distance test is what makes the "joint lands on a drawn pixel" guarantee hold at 64 px.
"""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from skelact.errors import DataError
from skelact.skeleton.layout import Layout

#: margin around the person's box, as a fraction of its longer side, on each side
CROP_MARGIN = 0.15
#: smallest crop side in source pixels (a clip whose joints barely move would otherwise be magnified hugely)
MIN_CROP_PIXELS = 40.0
#: camera drift: translation amplitude and relative zoom amplitude
JITTER_SHIFT = 0.04
JITTER_ZOOM = 0.06
#: limb half-width and head radius as fractions of the frame side
LIMB_RADIUS = 0.035
HEAD_RADIUS = 0.075
#: the background texture extends this fraction of the frame beyond each side, for the camera to drift over
TEXTURE_MARGIN = 0.3


def clip_seed(name: str) -> int:
    """A 64-bit seed from the clip's name (stable across runs, machines and Python's hash randomisation)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


@dataclass(frozen=True)
class CameraPath:
    """Per-frame similarity transforms from source pixels to output pixels: ``out = p * scale[t] + offset[t]``."""

    scale: np.ndarray  # [T]
    offset: np.ndarray  # [T, 2] (x, y)
    zoom: np.ndarray  # [T] the jitter part of the scale (1 = none), for the background
    shift: np.ndarray  # [T, 2] the jitter part of the offset, for the background
    size: int

    def apply(self, keypoints: np.ndarray) -> np.ndarray:
        """Transform ``[T, V, 2]`` (or ``[M, T, V, 2]``) source pixels; missing joints (0, 0) stay (0, 0)."""
        kp = np.asarray(keypoints, dtype=np.float64)
        out = kp * self.scale[:, None, None] + self.offset[:, None, :]
        missing = (kp == 0).all(-1, keepdims=True)
        return np.where(missing, 0.0, out).astype(np.float32)


def camera_path(keypoints: np.ndarray, size: int, rng: np.random.Generator) -> CameraPath:
    """The crop around the clip's present joints ``[T, V, 2]`` plus a smooth random drift and zoom per frame."""
    kp = np.asarray(keypoints, dtype=np.float64)
    present = ~(kp == 0).all(-1)
    if not present.any():
        raise DataError("no annotated joint in any frame: nothing to render", field="keypoints")
    pts = kp[present]
    lo, hi = pts.min(0), pts.max(0)
    side = max(float((hi - lo).max()) * (1 + 2 * CROP_MARGIN), MIN_CROP_PIXELS)
    centre = (lo + hi) / 2
    base = size / side
    t = np.arange(kp.shape[0], dtype=np.float64)
    zoom = 1 + JITTER_ZOOM * _smooth_wave(t, rng)
    shift = JITTER_SHIFT * size * np.stack([_smooth_wave(t, rng), _smooth_wave(t, rng)], axis=-1)
    scale = base * zoom
    offset = size / 2 + shift - scale[:, None] * centre[None]
    return CameraPath(scale=scale, offset=offset, zoom=zoom, shift=shift, size=size)


def _smooth_wave(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sum of two slow sinusoids (periods 1.5 to 5 s at 30 fps) with random phases, in [-1, 1]."""
    wave = np.zeros_like(t)
    for _ in range(2):
        period = rng.uniform(45, 150)
        wave += 0.5 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return wave


# -- appearance ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Appearance:
    """One subject's colours (per bone, per joint, head) and the clip's background texture."""

    bone_colors: np.ndarray  # [E, 3] uint8, one per layout edge
    joint_colors: np.ndarray  # [V, 3] uint8
    head_color: np.ndarray  # [3] uint8
    texture: np.ndarray  # [S + 2m, S + 2m, 3] uint8, in un-jittered output coordinates shifted by m
    margin: int


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255


_SKIN_TONES = np.array([(255, 220, 190), (240, 190, 150), (210, 160, 120), (170, 120, 80), (120, 80, 55),
                        (90, 60, 40)], dtype=np.float64)


def appearance(layout: Layout, size: int, rng: np.random.Generator) -> Appearance:
    """Saturated, bright clothing colours (upper body, legs; the person's left side a shade darker) and a muted
    background, so the person stands out from any texture; which of each comes from ``rng``."""
    upper = _hsv(rng.uniform(), rng.uniform(0.6, 0.95), rng.uniform(0.8, 1.0))
    lower = _hsv(rng.uniform(), rng.uniform(0.6, 0.95), rng.uniform(0.75, 1.0))
    head = _SKIN_TONES[rng.integers(len(_SKIN_TONES))]
    legs = {"hip", "knee", "ankle"}
    joint_colors = np.zeros((layout.num_joints, 3))
    for v, name in enumerate(layout.joints):
        part = name.split("_")[-1]
        color = head if v == layout.center else (lower if part in legs - {"hip"} else upper)
        joint_colors[v] = color * (0.75 if name.startswith("left") else 1.0)
    bone_colors = np.array([joint_colors[child] for child, _ in layout.edges])
    margin = int(np.ceil(TEXTURE_MARGIN * size))
    texture = background_texture(size + 2 * margin, rng)
    return Appearance(bone_colors=bone_colors.round().astype(np.uint8),
                      joint_colors=joint_colors.round().astype(np.uint8), head_color=head.round().astype(np.uint8),
                      texture=texture, margin=margin)


def background_texture(side: int, rng: np.random.Generator) -> np.ndarray:
    """A ``side x side`` muted texture: value noise, stripes or a gradient between two colours, often blended with
    a second kind, plus a fixed fine grain (it moves with the camera like a real surface)."""
    def muted() -> np.ndarray:
        return _hsv(rng.uniform(), rng.uniform(0.0, 0.35), rng.uniform(0.2, 0.55))

    def pattern(kind: int) -> np.ndarray:
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float64) / side
        if kind == 0:  # value noise: a coarse random grid, bilinearly upsampled
            cells = int(rng.integers(3, 9))
            return _upsample(rng.uniform(size=(cells + 1, cells + 1)), side)
        angle = rng.uniform(0, np.pi)
        along = xx * np.cos(angle) + yy * np.sin(angle)
        if kind == 1:  # soft stripes, 4 to 12 per frame width
            return 0.5 + 0.5 * np.sin(2 * np.pi * along * rng.uniform(4, 12) + rng.uniform(0, 2 * np.pi))
        return (along - along.min()) / max(np.ptp(along), 1e-9)  # linear gradient

    weight = pattern(int(rng.integers(3)))
    if rng.uniform() < 0.5:
        weight = 0.7 * weight + 0.3 * pattern(int(rng.integers(3)))
    a, b = muted(), muted()
    image = a[None, None] * (1 - weight[..., None]) + b[None, None] * weight[..., None]
    image += rng.normal(0, 4, size=image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def _upsample(grid: np.ndarray, side: int) -> np.ndarray:
    """Bilinear upsampling of a small ``[k, k]`` grid to ``[side, side]``."""
    k = grid.shape[0] - 1
    pos = np.linspace(0, k, side)
    i = np.minimum(pos.astype(int), k - 1)
    f = pos - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None] + rows[:, i + 1] * f[None]


# -- drawing -------------------------------------------------------------------------------------------------------

def fill_capsule(image: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float, color: np.ndarray) -> None:
    """Colour, in place, every pixel whose centre is within ``radius`` of the segment ``a``-``b`` (x, y)."""
    height, width = image.shape[:2]
    x0 = max(int(np.floor(min(a[0], b[0]) - radius)), 0)
    x1 = min(int(np.ceil(max(a[0], b[0]) + radius)), width - 1)
    y0 = max(int(np.floor(min(a[1], b[1]) - radius)), 0)
    y1 = min(int(np.ceil(max(a[1], b[1]) + radius)), height - 1)
    if x0 > x1 or y0 > y1:
        return
    # offsets from a, as a column (y) and a row (x) that broadcast to the box
    ys = np.arange(y0, y1 + 1, dtype=np.float64)[:, None] - a[1]
    xs = np.arange(x0, x1 + 1, dtype=np.float64)[None, :] - a[0]
    dx, dy = float(b[0] - a[0]), float(b[1] - a[1])
    length2 = dx * dx + dy * dy
    if length2 == 0:
        dist2 = xs * xs + ys * ys
    else:
        t = np.clip((xs * dx + ys * dy) / length2, 0, 1)
        dist2 = (xs - t * dx) ** 2 + (ys - t * dy) ** 2
    image[y0:y1 + 1, x0:x1 + 1][dist2 <= radius * radius] = color


def draw_person(image: np.ndarray, joints: np.ndarray, present: np.ndarray, layout: Layout, look: Appearance,
                size: int) -> None:
    """Draw one person (``joints [V, 2]`` in output pixels; ``present [V]``) in place: legs, then torso and arms,
    then a disc on every present joint, then the head. A bone is drawn only when both its joints are present."""
    limb = max(LIMB_RADIUS * size, 1.5)
    edges = layout.edges  # (a property that builds the list on each access)
    order = sorted(range(len(edges)), key=lambda e: not _is_leg(layout, edges[e][0]))
    for e in order:
        child, parent = edges[e]
        if present[child] and present[parent]:
            fill_capsule(image, joints[child], joints[parent], limb, look.bone_colors[e])
    for v in np.flatnonzero(present):
        if v != layout.center:
            fill_capsule(image, joints[v], joints[v], limb * 1.15, look.joint_colors[v])
    if present[layout.center]:
        head = max(HEAD_RADIUS * size, limb * 1.5)
        fill_capsule(image, joints[layout.center], joints[layout.center], head, look.head_color)


def _is_leg(layout: Layout, v: int) -> bool:
    return layout.joints[v].split("_")[-1] in ("knee", "ankle")


def background_frame(look: Appearance, camera: CameraPath, t: int) -> np.ndarray:
    """Frame ``t``'s view of the background texture: the same drift and zoom as the person, nearest neighbour."""
    size = camera.size
    q = np.arange(size, dtype=np.float64)
    # output pixel q came from un-jittered output coordinate b: q = size/2 + shift + zoom * (b - size/2)
    bx = size / 2 + (q - size / 2 - camera.shift[t, 0]) / camera.zoom[t] + look.margin
    by = size / 2 + (q - size / 2 - camera.shift[t, 1]) / camera.zoom[t] + look.margin
    side = look.texture.shape[0]
    xi = np.clip(np.rint(bx).astype(np.int64), 0, side - 1)
    yi = np.clip(np.rint(by).astype(np.int64), 0, side - 1)
    return look.texture[yi[:, None], xi[None, :]]


@dataclass(frozen=True)
class RenderedClip:
    """A clip's camera, appearance and keypoints in output pixels; :meth:`frames` draws its frames on demand."""

    name: str
    layout: Layout
    camera: CameraPath
    look: Appearance
    keypoints: np.ndarray  # [T, V, 2] output pixels, missing joints (0, 0)
    present: np.ndarray  # [T, V] bool

    @property
    def size(self) -> int:
        return self.camera.size

    def frame(self, t: int, person: bool = True) -> np.ndarray:
        """RGB ``uint8 [size, size, 3]`` frame ``t`` (``person=False``: the background alone)."""
        image = background_frame(self.look, self.camera, t).copy()
        if person:
            draw_person(image, self.keypoints[t].astype(np.float64), self.present[t], self.layout, self.look,
                        self.size)
        return image

    def frames(self) -> Iterator[np.ndarray]:
        for t in range(self.keypoints.shape[0]):
            yield self.frame(t)


def render_clip(name: str, keypoints: np.ndarray, layout: Layout, size: int = 112) -> RenderedClip:
    """Plan the rendering of one person's ``keypoints [T, V, 2]`` (source pixels, missing joints exactly 0) as a
    ``size x size`` video; everything random is seeded by ``name``."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1] != layout.num_joints or kp.shape[2] < 2:
        raise DataError(f"expected keypoints [T, {layout.num_joints}, 2], got {kp.shape}", name, "keypoints")
    if not 16 <= int(size) <= 1024:
        raise DataError(f"expected a frame size between 16 and 1024 pixels, got {size!r}", field="size")
    kp = kp[..., :2]
    rng = np.random.default_rng(clip_seed(name))
    look = appearance(layout, int(size), rng)
    camera = camera_path(kp, int(size), rng)
    out = camera.apply(kp)
    return RenderedClip(name=name, layout=layout, camera=camera, look=look, keypoints=out,
                        present=~(kp == 0).all(-1))
