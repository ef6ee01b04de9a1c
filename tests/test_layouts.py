"""Built-in joint layouts against the reference graphs, and validation of user layout files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from skelact.errors import LayoutError
from skelact.skeleton import Layout, available_layouts, get_layout, load_layout

# Reference edge lists, typed in by hand from the public sources named above each one. Pairs are (child, parent),
# the "inward" direction towards the centre joint.

# CTR-GCN graph/ntu_rgb_d.py, inward_ori_index (1-based; same list as ST-GCN's 'ntu-rgb+d' neighbor_1base).
NTU_INWARD_1BASED = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                     (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
                     (22, 23), (23, 8), (24, 25), (25, 12)]
# CTR-GCN graph/ucla.py, inward_ori_index (1-based).
UCLA_INWARD_1BASED = [(1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11),
                      (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)]
# pyskl pyskl/utils/graph.py, layout 'coco', self.inward (0-based).
COCO_INWARD = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6), (5, 0),
               (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)]
# ST-GCN net/utils/graph.py, layout 'openpose', neighbor_link (0-based).
OPENPOSE_INWARD = [(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1),
                   (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)]
# MediaPipe Pose, mediapipe/python/solutions/pose_connections.py, POSE_CONNECTIONS (35 undirected pairs).
MEDIAPIPE_CONNECTIONS = [(0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
                         (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18),
                         (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27),
                         (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32)]
# Our own choice for Penn-13 (documented in penn13.yaml): head-shoulders, arms, shoulder-hip, legs.
PENN_INWARD = [(1, 0), (2, 0), (3, 1), (4, 2), (5, 3), (6, 4), (7, 1), (8, 2), (9, 7), (10, 8), (11, 9), (12, 10)]

REFERENCE_INWARD = {
    "ntu25": [(c - 1, p - 1) for c, p in NTU_INWARD_1BASED],
    "nw_ucla20": [(c - 1, p - 1) for c, p in UCLA_INWARD_1BASED],
    "coco17": COCO_INWARD,
    "openpose18": OPENPOSE_INWARD,
    "penn13": PENN_INWARD,
}

# name: (number of joints, centre joint index, centre joint name)
EXPECTED = {
    "ntu25": (25, 20, "spine_shoulder"),
    "nw_ucla20": (20, 2, "shoulder_center"),
    "coco17": (17, 0, "nose"),
    "openpose18": (18, 1, "neck"),
    "penn13": (13, 0, "head"),
    "mediapipe33": (33, 0, "nose"),
}
SIX_PARTS = {"head", "torso", "left_arm", "right_arm", "left_leg", "right_leg"}


def undirected(pairs) -> set[frozenset[int]]:
    return {frozenset(p) for p in pairs}


def test_builtin_names_are_exactly_the_six_layouts():
    assert available_layouts() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_layout_loads_with_expected_size_and_centre(name):
    layout = get_layout(name)
    num, center, center_name = EXPECTED[name]
    assert layout.name == name
    assert layout.num_joints == num
    assert layout.center == center
    assert layout.joints[center] == center_name
    assert len(layout.bones) == num - 1
    assert layout.description.strip(), "every built-in layout documents its source"


@pytest.mark.parametrize("name", sorted(REFERENCE_INWARD))
def test_bones_equal_the_reference_graph_edge_set(name):
    layout = get_layout(name)
    reference = REFERENCE_INWARD[name]
    assert len(reference) == len(set(reference))
    assert undirected(layout.edges) == undirected(reference)
    assert not layout.extra_edges


@pytest.mark.parametrize("name", sorted(REFERENCE_INWARD))
def test_bones_point_towards_the_centre_exactly_as_the_reference_inward_pairs(name):
    # CTR-GCN builds its In/Out matrices from these directed pairs, so the direction matters, not just the set.
    assert sorted(get_layout(name).bones) == sorted(REFERENCE_INWARD[name])


def test_mediapipe_edges_are_the_official_connections_plus_the_head_to_body_links():
    layout = get_layout("mediapipe33")
    head_to_body = [(0, 9), (0, 10), (0, 11), (0, 12)]
    assert len(MEDIAPIPE_CONNECTIONS) == 35
    assert undirected(layout.edges) == undirected(MEDIAPIPE_CONNECTIONS + head_to_body)
    assert len(layout.extra_edges) == 7
    assert undirected(layout.extra_edges) <= undirected(MEDIAPIPE_CONNECTIONS)


def test_joint_names_in_native_order_spot_checks():
    ntu = get_layout("ntu25").joints
    assert (ntu[0], ntu[3], ntu[7], ntu[20], ntu[21], ntu[24]) == (
        "spine_base", "head", "left_hand", "spine_shoulder", "left_hand_tip", "right_thumb")
    ucla = get_layout("nw_ucla20").joints
    assert (ucla[0], ucla[2], ucla[3], ucla[19]) == ("hip_center", "shoulder_center", "head", "right_foot")
    coco = get_layout("coco17").joints
    assert (coco[0], coco[5], coco[16]) == ("nose", "left_shoulder", "right_ankle")
    openpose = get_layout("openpose18").joints
    assert (openpose[1], openpose[2], openpose[5], openpose[17]) == ("neck", "right_shoulder", "left_shoulder",
                                                                     "left_ear")
    mediapipe = get_layout("mediapipe33").joints
    assert (mediapipe[9], mediapipe[11], mediapipe[22], mediapipe[32]) == (
        "mouth_left", "left_shoulder", "right_thumb", "right_foot_index")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parts_cover_every_joint_exactly_once_with_the_six_skeletonmae_regions(name):
    layout = get_layout(name)
    assert SIX_PARTS <= set(layout.parts)
    members = [j for part in layout.parts.values() for j in part]
    assert sorted(members) == list(range(layout.num_joints))
    assert (layout.part_of_joint() >= 0).all()


def test_coco_parts_are_skeletonmae_regions():
    # SkeletonMAE (Yan et al., ICCV 2023), Fig. 2(d): 5 head joints, 4 torso joints, 2 joints per limb.
    parts = get_layout("coco17").parts
    assert parts["head"] == (0, 1, 2, 3, 4)
    assert sorted(parts["torso"]) == [5, 6, 11, 12]
    assert {k: sorted(v) for k, v in parts.items() if k not in ("head", "torso")} == {
        "left_arm": [7, 9], "right_arm": [8, 10], "left_leg": [13, 15], "right_leg": [14, 16]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flip_permutation_is_an_involution_that_swaps_left_and_right_names(name):
    layout = get_layout(name)
    perm = layout.flip_permutation()
    assert sorted(perm) == list(range(layout.num_joints))
    assert (perm[perm] == np.arange(layout.num_joints)).all()
    for v, joint in enumerate(layout.joints):
        if "left" in joint:
            assert layout.joints[perm[v]] == joint.replace("left", "right")
        elif "right" in joint:
            assert layout.joints[perm[v]] == joint.replace("right", "left")
        else:
            assert perm[v] == v, f"{joint} lies on the midline and must map to itself"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mirroring_maps_bones_to_bones_and_parts_to_their_mirror(name):
    layout = get_layout(name)
    perm = layout.flip_permutation()
    edges = undirected(layout.edges)
    assert {frozenset(int(perm[v]) for v in e) for e in edges} == edges
    assert perm[layout.center] == layout.center
    for part, members in layout.parts.items():
        mirror = part.replace("left", "#").replace("right", "left").replace("#", "right")
        assert sorted(perm[list(members)]) == sorted(layout.parts[mirror])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_to_dict_round_trips(name):
    layout = get_layout(name)
    assert Layout.from_dict(layout.to_dict()) == layout


def test_nw_ucla_joint_order_matches_real_skeletons(shared_data):
    """Kinect v1 order on real NW-UCLA files: head highest, mirrored bones equally long, left side at -x."""
    layout = get_layout("nw_ucla20")
    files = sorted((shared_data / "nw_ucla" / "all_sqe").glob("*.json"))[:60]
    assert len(files) == 60
    frames = np.concatenate([np.asarray(json.loads(f.read_text())["skeletons"], dtype=np.float64).reshape(-1, 20, 3)
                             for f in files])
    mean = frames.mean(axis=0)
    assert mean[:, 1].argmax() == layout.index("head")  # y is up in Kinect camera space
    assert mean[layout.index("left_foot"), 1] < mean[layout.index("left_knee"), 1] < mean[layout.index("left_hip"), 1]
    perm = layout.flip_permutation()
    for child, parent in layout.bones:
        length = np.linalg.norm(frames[:, child] - frames[:, parent], axis=-1).mean()
        mirrored = np.linalg.norm(frames[:, perm[child]] - frames[:, perm[parent]], axis=-1).mean()
        assert abs(length - mirrored) <= 0.15 * max(length, mirrored), (layout.joints[child], length, mirrored)
    # Kinect camera space: +x is the sensor's left, so a person facing it has their left side at -x.
    assert (mean[[4, 5, 6, 7, 12, 13, 14, 15], 0] < mean[[8, 9, 10, 11, 16, 17, 18, 19], 0]).all()


def test_penn_joint_names_are_anatomical_on_real_annotations(shared_data):
    """In Penn Action videos tagged pose=front, the joint named right_shoulder (README: left_shoulder) lies left of
    left_shoulder in the image in most videos; in pose=back videos it lies to the right."""
    scipy_io = pytest.importorskip("scipy.io")
    layout = get_layout("penn13")
    right, left = layout.index("right_shoulder"), layout.index("left_shoulder")
    assert (right, left) == (1, 2)
    files = sorted((shared_data / "penn_action_labels" / "labels").glob("*.mat"))
    assert len(files) == 2326
    votes = {"front": [], "back": []}
    for f in files[::4]:
        mat = scipy_io.loadmat(f, squeeze_me=True)
        if mat["pose"] not in votes:
            continue
        visible = (mat["visibility"][:, right] > 0) & (mat["visibility"][:, left] > 0)
        if visible.any():
            votes[str(mat["pose"])].append(np.median(mat["x"][visible, right] - mat["x"][visible, left]) < 0)
    assert len(votes["front"]) > 100 and len(votes["back"]) > 100
    assert np.mean(votes["front"]) > 0.7
    assert np.mean(votes["back"]) < 0.3
    assert mat["x"].shape[1] == layout.num_joints


GOOD_USER_LAYOUT = """\
name: toy
description: a five-joint stick figure
joints: [pelvis, neck, head, left_hand, right_hand]
bones:
  - [neck, pelvis]
  - [head, neck]
  - [left_hand, neck]
  - [right_hand, neck]
center: neck
parts: {torso: [pelvis, neck], head: [head], left_arm: [left_hand], right_arm: [right_hand]}
flip_pairs: [[left_hand, right_hand]]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user_layout.yaml"
    path.write_text(text)
    return path


def test_user_layout_yaml_loads(tmp_path):
    path = write(tmp_path, GOOD_USER_LAYOUT)
    layout = get_layout(str(path))
    assert layout == load_layout(path)
    assert layout.joints == ("pelvis", "neck", "head", "left_hand", "right_hand")
    assert layout.center == 1
    assert layout.parents == (1, 1, 1, 1, 1)
    assert layout.bones == ((0, 1), (2, 1), (3, 1), (4, 1))
    assert list(layout.flip_permutation()) == [0, 1, 2, 4, 3]
    assert layout.parts["torso"] == (0, 1)


def bad_layout(**changes) -> str:
    spec = yaml.safe_load(GOOD_USER_LAYOUT)
    spec.update(changes)
    return yaml.safe_dump(spec, sort_keys=False)


@pytest.mark.parametrize("changes, field, words", [
    ({"bones": [["neck", "pelvis"], ["head", "nek"], ["left_hand", "neck"], ["right_hand", "neck"]]},
     "bones[1]", "unknown joint 'nek'"),
    ({"bones": [["neck", "pelvis"], ["head", "neck"], ["left_hand", "neck"], ["right_hand", "neck"],
                ["head", "pelvis"]]},
     "bones", "closes the cycle head - pelvis - neck - head"),
    ({"bones": [["neck", "pelvis"], ["head", "neck"], ["left_hand", "neck"], ["right_hand", "left_hand"],
                ["left_hand", "right_hand"]]},
     "bones", "listed twice"),
    ({"bones": [["neck", "pelvis"], ["head", "neck"], ["left_hand", "neck"]]},
     "bones", "['right_hand'] are not connected to the centre 'neck'"),
    ({"joints": ["pelvis", "neck", "head", "left_hand", "left_hand"]}, "joints", "duplicate joint name(s)"),
    ({"center": "hip"}, "center", "unknown joint 'hip'"),
    ({"flip_pairs": [["left_hand", "left_hand"]]}, "flip_pairs", "repeats a joint"),
    ({"parts": {"torso": ["pelvis", "tail"]}}, "parts.torso", "unknown joint 'tail'"),
    ({"bone": []}, "bone", "unknown key(s) ['bone']"),
])
def test_bad_user_layout_raises_one_line_error_naming_file_and_field(tmp_path, changes, field, words):
    path = write(tmp_path, bad_layout(**changes))
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    err = caught.value
    message = str(err)
    assert err.path == str(path)
    assert err.field == field
    assert message.startswith(f"{path}: {field}: ")
    assert words in message
    assert "\n" not in message


def test_cycle_with_a_missing_bone_is_reported_as_a_cycle_not_as_a_count(tmp_path):
    # Four bones for five joints, but three of them form a triangle: the cycle is the thing to fix.
    path = write(tmp_path, bad_layout(bones=[["neck", "pelvis"], ["head", "neck"], ["head", "pelvis"],
                                             ["left_hand", "neck"]]))
    with pytest.raises(LayoutError, match=r"closes the cycle head - pelvis - neck - head"):
        load_layout(path)


def test_unreadable_yaml_and_unknown_layout_name(tmp_path):
    path = write(tmp_path, "joints: [a, b\nbones: [")
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    assert caught.value.path == str(path) and "not valid YAML" in str(caught.value)
    with pytest.raises(LayoutError, match="unknown layout 'ntu26'"):
        get_layout("ntu26")
