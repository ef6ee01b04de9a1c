"""Spatial augmentations: random rotations, shear, scaling, bone-length scaling and left/right flip.

Each draws its random numbers once per sample from the ``rng`` it is given and applies the same change to every
person and frame, as the official feeders do.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from skelact.data.transforms.registry import (
    as_interval,
    as_number,
    bad_argument,
    register_transform,
)
from skelact.data.transforms.rotation import apply_linear, axis_rotation, plane_rotation
from skelact.data.transforms.sample import (
    Sample,
    as_float32,
    get_keypoints,
    get_layout_of,
    get_scores,
    require_coords,
    updated,
)
from skelact.skeleton.layout import Layout


# --------------------------------------------------------------------------------------------------------------------
# CTR-GCN / pyskl: random rotation about x, y and z


def ctrgcn_rotation(angles: np.ndarray) -> np.ndarray:
    """The matrix CTR-GCN's ``random_rot`` (``feeders/tools.py: _rot``) and pyskl's ``RandomRot`` build from
    ``(ax, ay, az)``: ``rz @ ry @ rx`` of their per-axis matrices, each of which turns by minus its angle in the
    right-handed sense, i.e. ``Rz(-az) @ Ry(-ay) @ Rx(-ax)``; it acts as ``x' = R @ x``."""
    ax, ay, az = (float(a) for a in angles)
    return axis_rotation(2, -az) @ axis_rotation(1, -ay) @ axis_rotation(0, -ax)


@register_transform(name="RandomRot")
@register_transform
class RandomRotation:
    """CTR-GCN's ``random_rot`` (NTU training, ``theta=0.3``) = pyskl's ``RandomRot``.

    One draw per sample: three angles ``U[-theta, theta]`` (radians) for x, y, z, turned into one matrix by
    :func:`ctrgcn_rotation`; CTR-GCN stacks that same matrix for every frame, so all frames and people get the
    same rotation. 2D keypoints are turned in their plane by one angle ``U[-theta, theta]`` (pyskl draws from
    ``U[-theta, 1)`` there, a slip we do not copy).
    """

    def __init__(self, theta: float = 0.3):
        self.theta = as_number("RandomRotation", "theta", theta, 0.0, np.pi)

    def matrix(self, num_coords: int, rng: np.random.Generator) -> np.ndarray:
        if num_coords == 3:
            return ctrgcn_rotation(rng.uniform(-self.theta, self.theta, size=3))
        return plane_rotation(rng.uniform(-self.theta, self.theta))

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "RandomRotation")
        c = require_coords(sample, kp, (2, 3), "RandomRotation")
        return updated(sample, keypoints=apply_linear(kp, self.matrix(c, rng)))

    def __repr__(self) -> str:
        return f"RandomRotation(theta={self.theta})"


# --------------------------------------------------------------------------------------------------------------------
# CTR-GCN (NW-UCLA): random view change


def ucla_view_matrix(degrees_x: float, degrees_y: float, scale: float) -> np.ndarray:
    """CTR-GCN's NW-UCLA ``rand_view_transform`` as ``x' = M @ x``.

    They multiply row vectors by ``Ry @ Rx @ S``; written for column vectors that is
    ``scale * Rx(degrees_x) @ Ry(degrees_y)`` with right-handed rotations (the y turn first, then the x turn).
    """
    return scale * axis_rotation(0, np.radians(degrees_x)) @ axis_rotation(1, np.radians(degrees_y))


@register_transform
class RandomViewRotation:
    """CTR-GCN's NW-UCLA training view augmentation (``feeders/feeder_ucla.py``).

    Per sample: whole-degree angles about x and y drawn uniformly from ``[-max_degrees, max_degrees]`` (inclusive;
    60 in CTR-GCN) and a scale ``U[scale_range)`` (``[0.5, 1.5]``), applied by :func:`ucla_view_matrix`.
    In CTR-GCN's pipeline a per-axis min-max normalisation follows (:class:`~skelact.data.transforms.view.
    MinMaxNormalize`), which cancels the scale and any translation exactly: only the rotation survives.
    """

    def __init__(self, max_degrees: int = 60, scale_range: Any = (0.5, 1.5)):
        if (isinstance(max_degrees, bool) or not isinstance(max_degrees, numbers.Integral)
                or not 0 <= max_degrees <= 180):
            raise bad_argument("RandomViewRotation", "max_degrees",
                               f"expected an integer in [0, 180], got {max_degrees!r}")
        self.max_degrees = int(max_degrees)
        rng_ = as_interval("RandomViewRotation", "scale_range", scale_range, 1e-6, 1e6)
        self.scale_range = rng_ if len(rng_) == 2 else rng_ * 2

    def matrix(self, rng: np.random.Generator) -> np.ndarray:
        degrees_x = int(rng.integers(-self.max_degrees, self.max_degrees + 1))
        degrees_y = int(rng.integers(-self.max_degrees, self.max_degrees + 1))
        scale = rng.uniform(*self.scale_range)
        return ucla_view_matrix(degrees_x, degrees_y, scale)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "RandomViewRotation")
        require_coords(sample, kp, (3,), "RandomViewRotation")
        return updated(sample, keypoints=apply_linear(kp, self.matrix(rng)))

    def __repr__(self) -> str:
        return f"RandomViewRotation(max_degrees={self.max_degrees}, scale_range={list(self.scale_range)})"


# --------------------------------------------------------------------------------------------------------------------
# CrosSCLR / SkeletonCLR: shear


def shear_matrix(off_diagonal: np.ndarray) -> np.ndarray:
    """CrosSCLR's shear matrix (``feeder/tools.py: shear``) from its six draws ``(a0, a1, a2, b0, b1, b2)``:
    ``[[1, a0, b0], [a1, 1, b1], [a2, b2, 1]]``, acting as ``x' = S @ x`` (they right-multiply row vectors by
    ``S.T``). In 2D the two draws ``(a, b)`` give ``[[1, a], [b, 1]]``."""
    d = np.asarray(off_diagonal, dtype=np.float64)
    if d.size == 2:
        return np.array([[1.0, d[0]], [d[1], 1.0]])
    a, b = d[:3], d[3:]
    return np.array([[1.0, a[0], b[0]], [a[1], 1.0, b[1]], [a[2], b[2], 1.0]])


@register_transform
class Shear:
    """CrosSCLR / SkeletonCLR's random shear: each off-diagonal entry ``U[-amplitude, amplitude]`` (0.5 in their
    feeders), one matrix per sample (:func:`shear_matrix`)."""

    def __init__(self, amplitude: float = 0.5):
        self.amplitude = as_number("Shear", "amplitude", amplitude, 0.0, 10.0)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "Shear")
        c = require_coords(sample, kp, (2, 3), "Shear")
        draws = rng.uniform(-self.amplitude, self.amplitude, size=6 if c == 3 else 2)
        return updated(sample, keypoints=apply_linear(kp, shear_matrix(draws)))

    def __repr__(self) -> str:
        return f"Shear(amplitude={self.amplitude})"


# --------------------------------------------------------------------------------------------------------------------
# scaling


@register_transform
class RandomScale:
    """pyskl's ``RandomScale``: multiply each axis ``c`` by ``1 + U[-1, 1] * scale[c]`` (one draw per axis per
    sample). ``scale`` is one number for all axes or one per axis; pyskl's default is 0.2."""

    def __init__(self, scale: Any = 0.2):
        values = list(scale) if isinstance(scale, (list, tuple)) else [scale]
        if not values or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v < 1
                                 for v in values):
            raise bad_argument("RandomScale", "scale", f"expected a number in [0, 1) or one per axis, got {scale!r}")
        self.scale = tuple(float(v) for v in values)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "RandomScale")
        c = kp.shape[-1]
        scale = self.scale * c if len(self.scale) == 1 else self.scale
        if len(scale) != c:
            raise bad_argument("RandomScale", "scale", f"{len(scale)} per-axis values for {c} coordinates")
        factors = 1.0 + rng.uniform(-1.0, 1.0, size=c) * np.asarray(scale)
        return updated(sample, keypoints=as_float32(kp.astype(np.float64) * factors))

    def __repr__(self) -> str:
        return f"RandomScale(scale={list(self.scale)})"


def scale_bones(keypoints: np.ndarray, layout: Layout, factors: np.ndarray) -> np.ndarray:
    """Scale every bone ``(v, parents[v])`` by ``factors[v]`` and rebuild the joints from the centre outward.

    The centre joint stays where it is; each joint keeps its bone's direction, its bone's length is multiplied by
    its factor, and it carries along everything further out. Computed as displacements from the input, so factors
    of exactly 1 return the input bit for bit. ``factors[layout.center]`` is ignored.
    """
    parents = np.asarray(layout.parents)
    x = keypoints.astype(np.float64)
    shift = np.zeros_like(x)
    for v in _outward_order(layout):
        p = parents[v]
        shift[..., v, :] = shift[..., p, :] + (factors[v] - 1.0) * (x[..., v, :] - x[..., p, :])
    return as_float32(x + shift)


def _outward_order(layout: Layout) -> list[int]:
    """Joints other than the roots (the centre, or every tree's root in a forest), each after its parent."""
    depth = [0] * layout.num_joints
    for v in range(layout.num_joints):
        u, d = v, 0
        while layout.parents[u] != u:
            u, d = layout.parents[u], d + 1
        depth[v] = d
    return sorted((v for v in range(layout.num_joints) if layout.parents[v] != v), key=lambda v: depth[v])


@register_transform
class RandomBoneScale:
    """Scale each bone's length by its own factor ``U[1 - scale, 1 + scale]`` (one draw per bone per sample, shared
    by all people and frames) with :func:`scale_bones`. Needs the sample's layout."""

    def __init__(self, scale: float = 0.1):
        self.scale = as_number("RandomBoneScale", "scale", scale, 0.0, 0.99)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "RandomBoneScale")
        layout = get_layout_of(sample, kp, "RandomBoneScale")
        factors = rng.uniform(1.0 - self.scale, 1.0 + self.scale, size=layout.num_joints)
        return updated(sample, keypoints=scale_bones(kp, layout, factors))

    def __repr__(self) -> str:
        return f"RandomBoneScale(scale={self.scale})"


# --------------------------------------------------------------------------------------------------------------------
# left/right mirror


def flip_keypoints(keypoints: np.ndarray, layout: Layout) -> np.ndarray:
    """The mirror image: x negated and every left/right joint pair of the layout swapped."""
    out = keypoints[:, :, layout.flip_permutation()].astype(np.float32, copy=True)
    out[..., 0] = -out[..., 0]
    return out


@register_transform
class Flip:
    """Mirror the sample left/right with probability ``p`` (:func:`flip_keypoints`; scores follow their joints).
    Needs the sample's layout and its ``flip_pairs``."""

    def __init__(self, p: float = 0.5):
        self.p = as_number("Flip", "p", p, 0.0, 1.0)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if not rng.random() < self.p:
            return sample
        kp = get_keypoints(sample, "Flip")
        layout = get_layout_of(sample, kp, "Flip")
        out = updated(sample, keypoints=flip_keypoints(kp, layout))
        scores = get_scores(sample, kp, "Flip")
        if scores is not None:
            out["scores"] = as_float32(scores[:, :, layout.flip_permutation()])
        return out

    def __repr__(self) -> str:
        return f"Flip(p={self.p})"


__all__ = [
    "Flip",
    "RandomBoneScale",
    "RandomRotation",
    "RandomScale",
    "RandomViewRotation",
    "Shear",
    "ctrgcn_rotation",
    "flip_keypoints",
    "scale_bones",
    "shear_matrix",
    "ucla_view_matrix",
]
