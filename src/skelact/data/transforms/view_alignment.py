"""Per-frame view alignment: turn every frame about the vertical axis so the body faces the same way throughout.

CrosSCLR's NTU pre-processing (Li et al., "3D Human Action Representation Learning via Cross-View Consistency
Pursuit", CVPR 2021; LinguoLi/CrosSCLR ``feeder/preprocess_ntu.py`` and ``feeder/NTUDatasets.py``) centres every
frame on the spine-shoulder joint and rotates every frame about the vertical axis so that the shoulders lie
parallel to x. This is that rotation, written from that description (no code of theirs is copied): with the
shoulder vector ``s = x[to] - x[from]`` of the frame, the angle ``a = atan2(s_z, s_x)`` and the turn about y

    x' = cos(a) x + sin(a) z,    y' = y,    z' = -sin(a) x + cos(a) z

map ``s`` onto ``(|s_xz|, s_y, 0)``: no depth component and a positive x. The height (y) of every joint is kept, so
a bow or a crouch is not turned away. Camera viewpoints that differ by a turn about the vertical axis (NW-UCLA's
three Kinects, NTU's three cameras) then give the same coordinates, which matters most for a cross-view split
whose test view is never seen in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skelact.data.transforms.hold import hold_last_valid
from skelact.data.transforms.registry import bad_argument, register_transform
from skelact.data.transforms.sample import (
    Sample,
    as_float32,
    get_keypoints,
    get_layout_of,
    require_coords,
    updated,
)

#: below this length (in the keypoints' unit) the shoulders' x-z projection gives no direction: the frame counts as
#: unmeasured and holds the last angle, instead of turning by noise when the person faces sideways to the camera.
_MIN_SHOULDER_SPREAD = 1e-6


def shoulder_angles(keypoints: np.ndarray, first: int, second: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of the first person: the angle ``atan2(s_z, s_x)`` of ``s = x[second] - x[first]`` and whether it
    was measurable (both joints present, not all-zero, and a non-vanishing x-z projection)."""
    person = np.asarray(keypoints[0], dtype=np.float64)  # [T, V, 3]
    a, b = person[:, first], person[:, second]
    present = np.any(a != 0, axis=-1) & np.any(b != 0, axis=-1)
    s = b - a
    measurable = present & (np.hypot(s[:, 0], s[:, 2]) > _MIN_SHOULDER_SPREAD)
    return np.arctan2(s[:, 2], s[:, 0]), measurable


@register_transform
class AlignShoulders:
    """Rotate every frame about the vertical (y) axis so the ``joints`` pair's vector (``[from, to]``, by name,
    default ``left_shoulder -> right_shoulder``) has no z component and a positive x component.

    The angle is measured on the first person and applied to everyone in that frame, so people keep their places
    and facing relative to one another. Frames where it cannot be measured (a shoulder missing, the person absent,
    the shoulders exactly one above the other) hold the last measured angle (before the first measurement: the
    first one); a clip where it is never measurable is returned unchanged. Missing joints and absent people stay
    at zero. Rotation is about the origin, so centre each frame first (``CenterOnJoint`` with ``frame: each``),
    as the reference does. Needs 3D keypoints with y vertical (Kinect, NTU, NW-UCLA).
    """

    def __init__(self, joints: Any = ("left_shoulder", "right_shoulder")):
        if (not isinstance(joints, (list, tuple)) or len(joints) != 2
                or not all(isinstance(j, str) and j for j in joints) or joints[0] == joints[1]):
            raise bad_argument("AlignShoulders", "joints", f"expected two different joint names [from, to], got "
                               f"{joints!r}")
        self.joints = (joints[0], joints[1])

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        who = "AlignShoulders"
        kp = get_keypoints(sample, who)
        require_coords(sample, kp, (3,), who)
        layout = get_layout_of(sample, kp, who)
        first, second = (layout.index(j) for j in self.joints)
        angles, measurable = shoulder_angles(kp, first, second)
        if not measurable.any():
            return sample
        angles = hold_last_valid(angles, measurable)
        cos, sin = np.cos(angles)[None, :, None], np.sin(angles)[None, :, None]  # [1, T, 1]
        x = kp.astype(np.float64)
        turned = np.stack([cos * x[..., 0] + sin * x[..., 2], x[..., 1], -sin * x[..., 0] + cos * x[..., 2]], -1)
        present = np.any(kp != 0, axis=-1, keepdims=True)
        return updated(sample, keypoints=as_float32(np.where(present, turned, 0.0)))

    def __repr__(self) -> str:
        return f"AlignShoulders(joints={list(self.joints)})"
