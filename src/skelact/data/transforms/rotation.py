"""3x3 rotation matrices (right-handed, acting on column vectors: ``x' = R @ x``)."""

from __future__ import annotations

import numpy as np

_TINY = 1e-6


def axis_rotation(axis: int, angle: float) -> np.ndarray:
    """Counter-clockwise rotation by ``angle`` radians about coordinate axis 0 (x), 1 (y) or 2 (z)."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def plane_rotation(angle: float) -> np.ndarray:
    """Counter-clockwise 2x2 rotation by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """Counter-clockwise rotation by ``angle`` about an arbitrary ``axis`` (Rodrigues' formula).

    A (near) zero axis or angle gives the identity, as the 2s-AGCN / pyskl pre-normalisation does.
    """
    axis = np.asarray(axis, dtype=np.float64)
    if np.abs(axis).sum() < _TINY or abs(angle) < _TINY:
        return np.eye(3)
    k = axis / np.linalg.norm(axis)
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * (cross @ cross)


def rotation_onto(vector: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation about ``vector x target`` that turns ``vector`` onto the direction of ``target``.

    As in 2s-AGCN / pyskl: a (near) zero vector gives the identity, and so does an anti-parallel pair (their cross
    product vanishes), which is their behaviour, not a true half turn.
    """
    vector = np.asarray(vector, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if np.abs(vector).sum() < _TINY or np.abs(target).sum() < _TINY:
        return np.eye(3)
    cos = np.dot(vector, target) / (np.linalg.norm(vector) * np.linalg.norm(target))
    return rotation_about(np.cross(vector, target), float(np.arccos(np.clip(cos, -1.0, 1.0))))


def linear_map(keypoints: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``x' = matrix @ x`` for every joint of ``[..., C]`` keypoints, in float64."""
    return np.einsum("ij,...j->...i", np.asarray(matrix, dtype=np.float64), np.asarray(keypoints, dtype=np.float64))


def apply_linear(keypoints: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """:func:`linear_map` returned as contiguous float32 (the sample convention)."""
    return np.ascontiguousarray(linear_map(keypoints, matrix), dtype=np.float32)
