"""Draw skeletons of any layout (and a caption) onto RGB frames, and write a video with them.

Drawing is plain numpy (no OpenCV): a bone is a run of filled discs along the segment, a joint a larger disc.
Bones take the colour of their outer joint's side, read from joint names (``left_*``/``l_*`` one colour,
``right_*``/``r_*`` another, the rest a third), so a left/right swap is visible at a glance; each person's joints
get their own colour from a small palette. Joints (and the bones to them) scoring below ``min_score`` are not
drawn. Captions use Pillow's built-in font (Pillow comes with matplotlib, which the ``pose`` extra pulls in).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import ConfigError, DataError
from skelact.skeleton.layout import Layout, get_layout

LEFT_COLOR = (255, 140, 0)
RIGHT_COLOR = (0, 160, 255)
CENTRE_COLOR = (230, 230, 230)
PERSON_PALETTE = ((255, 60, 60), (60, 220, 60), (200, 80, 255), (255, 230, 40), (40, 230, 230))


def _side(name: str) -> int:
    lower = name.lower()
    if lower.startswith(("left", "l_")):
        return 0
    if lower.startswith(("right", "r_")):
        return 1
    return 2


def _disc_offsets(radius: int) -> np.ndarray:
    r = max(int(radius), 0)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = dx * dx + dy * dy <= r * r + r  # "+ r" rounds small discs to a fuller shape
    return np.stack([dy[keep], dx[keep]], axis=-1)


def _stamp(image: np.ndarray, centres: np.ndarray, radius: int, color: Sequence[int]) -> None:
    """Fill discs of ``radius`` at ``centres [N, 2]`` (x, y) in place."""
    if not len(centres):
        return
    height, width = image.shape[:2]
    pts = np.rint(centres[:, ::-1]).astype(np.int64)  # (y, x)
    pix = (pts[:, None, :] + _disc_offsets(radius)[None]).reshape(-1, 2)
    ok = (pix[:, 0] >= 0) & (pix[:, 0] < height) & (pix[:, 1] >= 0) & (pix[:, 1] < width)
    pix = pix[ok]
    image[pix[:, 0], pix[:, 1]] = np.asarray(color, dtype=image.dtype)


def draw_skeleton(frame: np.ndarray, keypoints: np.ndarray, scores: np.ndarray | None, layout: "str | Layout",
                  min_score: float = 0.3, thickness: int | None = None, copy: bool = True) -> np.ndarray:
    """Draw one or more skeletons (``keypoints [V, C]`` or ``[P, V, C]`` in frame pixels, ``C >= 2``) on an RGB
    ``uint8 [H, W, 3]`` frame; returns the frame (a copy unless ``copy=False``).

    ``scores`` (``[V]`` or ``[P, V]``, or ``None`` for all present) hide joints below ``min_score``; a joint at
    exactly (0, 0) with score 0 is how stores mark a missing person. ``thickness``: bone width in pixels (default
    from the frame size).
    """
    lay = get_layout(layout)
    image = np.array(frame, dtype=np.uint8, copy=True) if copy else frame
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"expected an RGB frame [H, W, 3], got {image.shape}", field="frame")
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[1] != lay.num_joints or kp.shape[2] < 2:
        raise DataError(f"expected keypoints [P, {lay.num_joints}, C>=2] for layout {lay.name!r}, got "
                        f"{np.shape(keypoints)}", field="keypoints")
    sc = np.ones(kp.shape[:2], np.float32) if scores is None else np.asarray(scores, np.float32).reshape(kp.shape[:2])
    width = thickness or max(1, round(min(image.shape[:2]) / 240))
    bone_radius = max(width // 2, 1) if width > 1 else 0
    joint_radius = bone_radius + max(1, width)
    sides = [_side(n) for n in lay.joints]
    side_colors = (LEFT_COLOR, RIGHT_COLOR, CENTRE_COLOR)
    finite = np.isfinite(kp[..., :2]).all(-1)
    for p in range(kp.shape[0]):
        shown = (sc[p] >= min_score) & finite[p]
        for child, parent in lay.edges:
            if not (shown[child] and shown[parent]):
                continue
            a, b = kp[p, child, :2], kp[p, parent, :2]
            steps = max(2, int(np.ceil(np.hypot(*(b - a)) / max(bone_radius, 0.7))) + 1)
            line = a[None] + np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None] * (b - a)[None]
            side = sides[child] if sides[child] != 2 else sides[parent]
            _stamp(image, line, bone_radius, side_colors[side])
        _stamp(image, kp[p, shown, :2], joint_radius, PERSON_PALETTE[p % len(PERSON_PALETTE)])
    return image


def draw_caption(frame: np.ndarray, text: str, position: tuple[int, int] = (10, 10), size: int | None = None,
                 copy: bool = True) -> np.ndarray:
    """Write ``text`` (white on a dark box) at ``position`` (x, y of its top-left corner); returns the frame."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as e:
        raise ConfigError(f"captions need Pillow ({e}); install it with pip install pillow", field="caption") \
            from None
    image = np.array(frame, dtype=np.uint8, copy=True) if copy else frame
    px = size or max(12, round(image.shape[0] / 24))
    try:
        font = ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        font = ImageFont.load_default()
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    x1, y1, x2, y2 = draw.textbbox(position, text, font=font)
    pad = max(2, px // 5)
    draw.rectangle((x1 - pad, y1 - pad, x2 + pad, y2 + pad), fill=(0, 0, 0))
    draw.text(position, text, fill=(255, 255, 255), font=font)
    image[...] = np.asarray(canvas)
    return image


def render_video(video: str | PathLike, out: str | PathLike, keypoints: np.ndarray, scores: np.ndarray | None,
                 layout: "str | Layout", captions: "Sequence[str | None] | Callable[[int], str | None] | None" = None,
                 max_side: int | None = None, min_score: float = 0.3, fps: float | None = None) -> int:
    """Write ``out`` (MP4, H.264): ``video``'s frames with the skeletons drawn and optional captions.

    ``keypoints [M, T, V, C]`` (or ``[T, V, C]``) and ``scores [M, T, V]`` are in pixels of the full-size video, as
    :func:`skelact.pose.pipeline.video_to_sequence` gives them; frame ``t`` gets the poses at ``t`` (frames past
    ``T`` are written without a skeleton). ``captions``: one text (or ``None``) per frame, or a function of the
    frame index. ``max_side`` scales the output down. Returns the number of frames written (= the video's).
    """
    from skelact.video.reader import VideoReader
    from skelact.video.writer import write_video

    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.ndim == 3:
        kp = kp[None]
    sc = None if scores is None else np.asarray(scores, dtype=np.float32).reshape(kp.shape[:3])
    lay = get_layout(layout)

    def caption(t: int) -> str | None:
        if captions is None:
            return None
        if callable(captions):
            return captions(t)
        return captions[t] if t < len(captions) else None

    with VideoReader(video, max_side=max_side) as reader:
        scale = np.array([1 / reader.scale[0], 1 / reader.scale[1]], dtype=np.float32)
        rate = fps or reader.info.fps or 30.0

        def frames() -> Any:
            for t, frame in enumerate(reader):
                image = frame
                if t < kp.shape[1]:
                    image = draw_skeleton(image, kp[:, t, :, :2] * scale, None if sc is None else sc[:, t], lay,
                                          min_score=min_score)
                text = caption(t)
                if text:
                    image = draw_caption(image, text, copy=False)
                yield image

        return write_video(Path(out), frames(), rate)
