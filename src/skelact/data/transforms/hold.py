"""Fill the frames where a per-frame quantity could not be measured with the nearest earlier measurement.

Per-frame normalisations (centring on a joint, turning by the shoulders' direction) need one value per frame, but a
joint can be missing in some frames (all coordinates exactly 0: not annotated, not detected). Those frames keep the
last value measured before them; frames before the first measurement take the first one, so a clip that starts with
the joint hidden is not left un-normalised at its start.
"""

from __future__ import annotations

import numpy as np


def hold_last_valid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values [T, ...]`` with each frame where ``valid [T]`` is false replaced by the last valid frame before it
    (or, before the first valid frame, by the first valid frame). Needs at least one valid frame."""
    valid = np.asarray(valid, dtype=bool)
    if not valid.any():
        raise ValueError("hold_last_valid needs at least one valid frame")
    positions = np.where(valid, np.arange(valid.size), -1)
    last = np.maximum.accumulate(positions)
    last = np.where(last < 0, int(np.flatnonzero(valid)[0]), last)
    return np.asarray(values)[last]
