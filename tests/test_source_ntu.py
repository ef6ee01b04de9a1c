"""NTU RGB+D readers on the real sample files, and CTR-GCN's body selection on files edited from them.

Expected values come from the files' text (read here with plain line splitting, independent of the reader), from
the official NTU action list, and from CTR-GCN's ``data/ntu/get_raw_denoised_data.py`` rules.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from skelact.data.sources import open_source
from skelact.data.sources.ntu import (NTUNpySource, NTUSkeletonSource, parse_ntu_name, parse_skeleton_text,
                                      read_skeleton_file)
from skelact.errors import ConfigError, DataError
from skelact.skeleton.layout import get_layout

A011 = "S001C001P001R001A011"
A058 = "S001C003P008R002A058"  # the two-person sample (handshaking)
ID_738, ID_734 = b"72057594037944738", b"72057594037944734"  # its two bodyIDs, in the order the file lists them

# name -> (raw frames, persons kept, label, official class name)
SAMPLES = {
    A011: (82, 1, 10, "reading"),
    A058: (70, 2, 57, "handshaking"),
    "S002C001P003R001A003": (100, 1, 2, "brushing teeth"),
    "S003C001P015R001A034": (71, 1, 33, "rub two hands together"),
    "S004C002P003R001A017": (124, 1, 16, "take off a shoe"),
}


@pytest.fixture(scope="module")
def ntu_dir(shared_data: Path) -> Path:
    return shared_data / "ntu_rgbd_samples" / "skeleton"


@pytest.fixture(scope="module")
def npy_dir(shared_data: Path) -> Path:
    return shared_data / "ntu_rgbd_samples" / "npy"


# ---- the text format, split by hand (independent of the reader) -------------------------------------------------

def split_frames(data: bytes) -> list[list[list[bytes]]]:
    """frames -> bodies -> the body's 27 lines (body line, joint count, 25 joint lines)."""
    lines = data.split(b"\r\n")
    frames, i = [], 1
    for _ in range(int(lines[0])):
        count = int(lines[i])
        i += 1
        frames.append([lines[i + 27 * b:i + 27 * (b + 1)] for b in range(count)])
        i += 27 * count
    return frames


def join_frames(frames: list[list[list[bytes]]]) -> bytes:
    out = [str(len(frames)).encode()]
    for bodies in frames:
        out.append(str(len(bodies)).encode())
        for body in bodies:
            out.extend(body)
    return b"\r\n".join(out) + b"\r\n"


def with_id(body: list[bytes], body_id: bytes) -> list[bytes]:
    return [b" ".join([body_id] + body[0].split(b" ")[1:])] + body[1:]


def with_xyz(body: list[bytes], fn) -> list[bytes]:
    out = body[:2]
    for line in body[2:]:
        tokens = line.split(b" ")
        xyz = fn(*(float(t) for t in tokens[:3]))
        out.append(b" ".join([b"%.7g" % v for v in xyz] + tokens[3:]))
    return out


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / f"{name}.skeleton"
    path.write_bytes(data)
    return path


def read(path: Path, **options):
    return NTUSkeletonSource(path, **options).read(path)


# ---- the five real samples ---------------------------------------------------------------------------------------

def test_items_are_sorted_and_registry_finds_the_readers(ntu_dir: Path, npy_dir: Path):
    src = open_source("ntu", ntu_dir)
    assert isinstance(src, NTUSkeletonSource)
    assert [p.name for p in src.items()] == [f"{n}.skeleton" for n in sorted(SAMPLES)]
    assert isinstance(open_source("ntu-npy", npy_dir), NTUNpySource)
    assert get_layout(src.layout).num_joints == 25


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_real_sample_frames_persons_label(ntu_dir: Path, name: str):
    raw_frames, persons, label, class_name = SAMPLES[name]
    data = (ntu_dir / f"{name}.skeleton").read_bytes()
    frames = split_frames(data)
    counts = {len(bodies) for bodies in frames}
    ids = {body[0].split(b" ")[0] for bodies in frames for body in bodies}
    # why every frame survives: each frame holds a body (1 in each, or 2 in each for A058); a file with one bodyID
    # is not denoised; A058's two bodyIDs both span all 70 frames (> 11) with no noisy-spread frame (below)
    assert len(frames) == raw_frames
    assert counts == ({2} if persons == 2 else {1}) and len(ids) == persons

    src = NTUSkeletonSource(ntu_dir)
    seq = src.read(ntu_dir / f"{name}.skeleton")
    assert seq.keypoints.shape == (persons, raw_frames, 25, 3)
    assert seq.scores.shape == (persons, raw_frames, 25)
    assert seq.label == label and src.class_names()[seq.label] == class_name
    assert seq.name == name and seq.layout == "ntu25"
    assert seq.meta["raw_frames"] == raw_frames


def test_meta_from_the_name(ntu_dir: Path):
    seq = NTUSkeletonSource(ntu_dir).read(ntu_dir / f"{A058}.skeleton")
    assert {k: seq.meta[k] for k in ("setup", "camera", "subject", "repetition", "action")} == \
        {"setup": 1, "camera": 3, "subject": 8, "repetition": 2, "action": 58}
    assert parse_ntu_name("S017C002P040R001A120")["action"] == 120
    with pytest.raises(DataError) as e:
        parse_ntu_name("S001C001P001R001", "x.skeleton")
    assert e.value.field == "name"


def test_first_joint_equals_the_text(ntu_dir: Path):
    seq = read(ntu_dir / f"{A011}.skeleton")
    # line 5 of the file: "0.2058097 0.1920515 3.810989 ..." (first joint, first frame)
    assert (ntu_dir / f"{A011}.skeleton").read_bytes().split(b"\r\n")[4].startswith(b"0.2058097 0.1920515 3.810989 ")
    np.testing.assert_array_equal(seq.keypoints[0, 0, 0], np.float32([0.2058097, 0.1920515, 3.810989]))


def test_two_person_sample_actor_order_follows_motion(ntu_dir: Path):
    path = ntu_dir / f"{A058}.skeleton"
    frames = split_frames(path.read_bytes())
    assert [b[0].split(b" ")[0] for b in frames[0]] == [ID_738, ID_734]
    # the ids differ by 4 but are the same float64: ids must be compared as text
    assert float(ID_738) == float(ID_734)
    records = read_skeleton_file(path)
    joints = {i: records.joints[[b == i for b in records.body_ids]] for i in (ID_738, ID_734)}
    motion = {i: np.var(j.reshape(-1, 3).astype(np.float64), axis=0).sum() for i, j in joints.items()}
    spread_noise = {i: int((np.ptp(j[..., 0], axis=1) > 0.8 * np.ptp(j[..., 1], axis=1)).sum())
                    for i, j in joints.items()}
    assert motion[ID_734] > motion[ID_738] and spread_noise == {ID_738: 0, ID_734: 0}
    seq = read(path)
    # actor 1 = larger motion = the second body listed; values are the literals of the first joint lines
    np.testing.assert_array_equal(seq.keypoints[0, 0, 0], np.float32([-0.387201, -0.05403496, 2.961099]))
    np.testing.assert_array_equal(seq.keypoints[1, 0, 0], np.float32([0.7201789, 0.1647426, 3.561895]))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_value_equals_float_of_its_token(ntu_dir: Path, name: str):
    data = (ntu_dir / f"{name}.skeleton").read_bytes()
    records = parse_skeleton_text(data)
    tokens = [line.split(b" ") for bodies in split_frames(data) for body in bodies for line in body[2:]]
    expected_xyz = np.array([[float(t) for t in tok[:3]] for tok in tokens], dtype=np.float64)
    expected_state = np.array([int(tok[11]) for tok in tokens])
    np.testing.assert_array_equal(records.joints.reshape(-1, 3), expected_xyz.astype(np.float32))
    np.testing.assert_array_equal(records.tracking.reshape(-1), expected_state)
    # the whitespace-tolerant reader (taken for tab-separated text) gives the same records
    slow = parse_skeleton_text(data.replace(b" ", b"\t"))
    np.testing.assert_array_equal(slow.joints, records.joints)
    np.testing.assert_array_equal(slow.tracking, records.tracking)
    assert slow.body_ids == records.body_ids
    np.testing.assert_array_equal(slow.frames, records.frames)


def test_exponents_lf_and_missing_final_newline(ntu_dir: Path, tmp_path: Path):
    data = (ntu_dir / "S004C002P003R001A017.skeleton").read_bytes()
    assert b"E-05" in data  # Kinect writes tiny values with an exponent
    base = parse_skeleton_text(data)
    for variant in (data.replace(b"\r\n", b"\n"), data.rstrip()):
        np.testing.assert_array_equal(parse_skeleton_text(variant).joints, base.joints)
    frames = split_frames(data)
    frames[0][0] = with_xyz(frames[0][0], lambda x, y, z: (x, y, z))
    first = frames[0][0][2].split(b" ")
    frames[0][0][2] = b" ".join([b"+1.5e-3", b"-2.5E+1"] + first[2:])
    seq = read(write(tmp_path, "S004C002P003R001A017", join_frames(frames)))
    np.testing.assert_array_equal(seq.keypoints[0, 0, 0, :2], np.float32([0.0015, -25.0]))


def test_scores_follow_tracking_state(ntu_dir: Path):
    path = ntu_dir / "S004C002P003R001A017.skeleton"
    states = [int(line.split(b" ")[11]) for bodies in split_frames(path.read_bytes())
              for body in bodies for line in body[2:]]
    scores = read(path).scores.reshape(-1)
    assert np.count_nonzero(scores == 1.0) == states.count(2)
    assert np.count_nonzero(scores == 0.5) == states.count(1)
    assert np.count_nonzero(scores == 0.0) == states.count(0)
    assert states.count(1) > 0


def test_class_and_split_names_by_variant(ntu_dir: Path, tmp_path: Path):
    src = NTUSkeletonSource(ntu_dir)
    assert src.split_names() == ["ntu60_xsub", "ntu60_xview"]
    assert len(src.class_names()) == 60 and src.class_names()[0] == "drink water"
    src120 = NTUSkeletonSource(ntu_dir, variant="ntu120")
    assert src120.split_names() == ["ntu120_xsub", "ntu120_xset"]
    names = src120.class_names()
    assert len(names) == 120 and names[:60] == src.class_names() and names[119].startswith("finger-guessing game")
    # auto: one sample with an action above 60 makes it NTU-120
    shutil.copy(ntu_dir / f"{A011}.skeleton", tmp_path / "S018C001P001R001A061.skeleton")
    shutil.copy(ntu_dir / f"{A058}.skeleton", tmp_path / f"{A058}.skeleton")
    auto = NTUSkeletonSource(tmp_path)
    assert auto.split_names() == ["ntu120_xsub", "ntu120_xset"] and len(auto.class_names()) == 120
    assert auto.read(tmp_path / "S018C001P001R001A061.skeleton").label == 60
    with pytest.raises(DataError) as e:
        NTUSkeletonSource(tmp_path, variant="ntu60").read(tmp_path / "S018C001P001R001A061.skeleton")
    assert e.value.field == "action"
    with pytest.raises(ConfigError):
        NTUSkeletonSource(tmp_path, variant="ntu61")


def test_source_survives_pickling_for_worker_processes(ntu_dir: Path):
    src = pickle.loads(pickle.dumps(NTUSkeletonSource(ntu_dir, max_persons=1)))
    assert src.read(ntu_dir / f"{A058}.skeleton").num_persons == 1


# ---- CTR-GCN's body selection, on files edited from the real ones ------------------------------------------------

def test_short_body_is_noise(ntu_dir: Path, tmp_path: Path):
    data = (ntu_dir / f"{A058}.skeleton").read_bytes()
    frames = split_frames(data)
    # a third body seen in 11 frames (noise_len_thres = 11: "length <= 11" is noise), moving a lot
    for f in range(11):
        frames[f].append(with_id(with_xyz(frames[f][1], lambda x, y, z: (3 * x, 3 * y, z)), b"1"))
    path = write(tmp_path, A058, join_frames(frames))
    original = read(ntu_dir / f"{A058}.skeleton")
    seq = read(path)
    np.testing.assert_array_equal(seq.keypoints, original.keypoints)
    raw = read(path, denoise=False, max_persons=3)
    assert raw.num_persons == 3  # kept without denoising


def test_body_spread_wider_than_tall_is_noise(ntu_dir: Path, tmp_path: Path):
    frames = split_frames((ntu_dir / f"{A058}.skeleton").read_bytes())
    # a third body over all 70 frames, lying on its side (x and y swapped) and enlarged so that its motion is the
    # largest: every frame has x extent > 0.8 * y extent, ratio 1 >= 0.69754, so the spread rule drops it
    for bodies in frames:
        bodies.append(with_id(with_xyz(bodies[1], lambda x, y, z: (3 * y, 3 * x, z)), b"2"))
    path = write(tmp_path, A058, join_frames(frames))
    seq = read(path)
    np.testing.assert_array_equal(seq.keypoints, read(ntu_dir / f"{A058}.skeleton").keypoints)
    undenoised = read(path, denoise=False)
    np.testing.assert_allclose(undenoised.keypoints[0, 0, 0], [3 * -0.05403496, 3 * -0.387201, 2.961099], rtol=1e-6)


def test_frames_without_bodies_are_dropped(ntu_dir: Path, tmp_path: Path):
    frames = split_frames((ntu_dir / f"{A011}.skeleton").read_bytes())
    frames = [[]] * 2 + frames[:40] + [[]] * 3 + frames[40:]
    seq = read(write(tmp_path, A011, join_frames(frames)))
    assert seq.meta["raw_frames"] == 87
    np.testing.assert_array_equal(seq.keypoints, read(ntu_dir / f"{A011}.skeleton").keypoints)


def test_disjoint_bodies_share_actor_one(ntu_dir: Path, tmp_path: Path):
    frames = split_frames((ntu_dir / f"{A011}.skeleton").read_bytes())
    # the tracker renames the person at frame 41; frame 41 holds both ids. Intervals [0, 41] and [41, 81] overlap by
    # min(41, 81) - max(0, 41) = 0 <= 0, which the script counts as disjoint: both fill actor 1
    edited = [[with_id(b[0], b"7")] for b in frames[:41]] + [[with_id(frames[41][0], b"7"), frames[41][0]]] + \
        frames[42:]
    path = write(tmp_path, A011, join_frames(edited))
    original = read(ntu_dir / f"{A011}.skeleton")
    seq = read(path)
    assert seq.num_persons == 1
    np.testing.assert_array_equal(seq.keypoints, original.keypoints)
    raw = read(path, denoise=False)
    assert raw.num_persons == 2 and raw.num_frames == 82
    assert (raw.scores.sum(axis=2) > 0).sum(axis=1).tolist() in ([42, 41], [41, 42])
    one = read(path, denoise=False, max_persons=1)
    assert one.num_persons == 1 and one.num_frames in (41, 42)


def test_actor_two_interval_starts_at_zero(ntu_dir: Path, tmp_path: Path):
    frames = split_frames((ntu_dir / f"{A058}.skeleton").read_bytes())
    # A = body 734 in all frames (largest motion); B = body 738 in frames 20..40; C = body 738 renamed, frames 3..16
    edited = []
    for f, (b738, b734) in enumerate(frames):
        bodies = [b734]
        if 20 <= f <= 40:
            bodies.append(b738)
        if 3 <= f <= 16:
            bodies.append(with_id(b738, b"3"))
        edited.append(bodies)
    path = write(tmp_path, A058, join_frames(edited))
    records = read_skeleton_file(path)
    motion = {i: np.var(records.joints[[b == i for b in records.body_ids]].reshape(-1, 3).astype(np.float64),
                        axis=0).sum() for i in (ID_734, ID_738, b"3")}
    assert motion[ID_734] > motion[ID_738] > motion[b"3"]  # the order the rule is applied in
    seq = read(path)
    original = read(ntu_dir / f"{A058}.skeleton")
    assert seq.num_persons == 2 and seq.num_frames == 70
    np.testing.assert_array_equal(seq.keypoints[0], original.keypoints[0])
    np.testing.assert_array_equal(seq.keypoints[1, 20:41], original.keypoints[1, 20:41])
    # B made actor 2's interval [min(20, 0), 40] = [0, 40] (the script's virtual start 0), so C overlaps it and
    # is dropped, although C's frames 3..16 are free in actor 2's slot
    assert not seq.keypoints[1, :20].any() and not seq.scores[1, :20].any()
    assert not seq.keypoints[1, 41:].any()


def test_max_persons_one_keeps_the_main_actor(ntu_dir: Path):
    seq = read(ntu_dir / f"{A058}.skeleton", max_persons=1)
    assert seq.num_persons == 1
    np.testing.assert_array_equal(seq.keypoints[0], read(ntu_dir / f"{A058}.skeleton").keypoints[0])
    with pytest.raises(ConfigError):
        NTUSkeletonSource(ntu_dir, max_persons=3)
    assert NTUSkeletonSource(ntu_dir, max_persons=3, denoise=False).max_persons == 3


# ---- bad input ---------------------------------------------------------------------------------------------------

def expect_error(path: Path, field: str, *fragments: str, **options) -> DataError:
    with pytest.raises(DataError) as e:
        read(path, **options)
    assert e.value.path == str(path) and e.value.field == field, str(e.value)
    for fragment in fragments:
        assert fragment in str(e.value)
    return e.value


def test_truncated_files(ntu_dir: Path, tmp_path: Path):
    data = (ntu_dir / f"{A011}.skeleton").read_bytes()
    lines = data.split(b"\r\n")
    # a frame takes 28 lines (body count, body line, joint count, 25 joints) after the frame count on line 1
    cut_in_line = len(b"\r\n".join(lines[:1092])) + 2 + 20  # 20 bytes into line 1093, frame 39's last joint
    err = expect_error(write(tmp_path, A011, data[:cut_in_line]), "joint", "line 1093", "truncated")
    assert "got 2" in str(err) or "got 3" in str(err)
    cut_at_line = len(b"\r\n".join(lines[:547])) + 2  # after line 547 = joint 11 of frame 20 (lines 534..561)
    expect_error(write(tmp_path, A011, data[:cut_at_line]), "joint", "ends after line 547",
                 "joint 12 of 25 in frame 20 of 82", "truncated")


def test_wrong_joint_count(ntu_dir: Path, tmp_path: Path):
    lines = (ntu_dir / f"{A011}.skeleton").read_bytes().split(b"\r\n")
    lines[3] = b"24"
    expect_error(write(tmp_path, A011, b"\r\n".join(lines)), "joint count", "line 4", "expected 25", "got 24")


def test_non_numeric_tokens(ntu_dir: Path, tmp_path: Path):
    lines = (ntu_dir / f"{A011}.skeleton").read_bytes().split(b"\r\n")
    for field_index, token in ((1, b"abc"), (6, b"12a.5"), (0, b"nan")):
        edited = list(lines)
        tokens = edited[9].split(b" ")
        tokens[field_index] = token
        edited[9] = b" ".join(tokens)
        expect_error(write(tmp_path, A011, b"\r\n".join(edited)), "joint", "line 10", repr(token.decode()))


def test_other_malformed_lines(ntu_dir: Path, tmp_path: Path):
    data = (ntu_dir / f"{A011}.skeleton").read_bytes()
    lines = data.split(b"\r\n")
    edited = list(lines)
    edited[4] = b" ".join(edited[4].split(b" ")[:11])
    expect_error(write(tmp_path, A011, b"\r\n".join(edited)), "joint", "line 5", "got 11")
    edited = list(lines)
    edited[4] = edited[4][:-1] + b"3"
    expect_error(write(tmp_path, A011, b"\r\n".join(edited)), "trackingState", "line 5")
    expect_error(write(tmp_path, A011, data + b"1\r\n"), "frame count", "line 2298", "after the last of 82")
    edited = list(lines)
    edited[1] = b"x"
    expect_error(write(tmp_path, A011, b"\r\n".join(edited)), "body count", "line 2")


def test_empty_file_and_no_body(tmp_path: Path):
    expect_error(write(tmp_path, A011, b""), "frame count", "empty file")
    expect_error(write(tmp_path, A011, b" \r\n"), "frame count", "empty file")
    expect_error(write(tmp_path, A011, b"3\r\n0\r\n0\r\n0\r\n"), "bodies", "no body in any of the 3 frames")
    expect_error(write(tmp_path, A011, b"0\r\n"), "frame count", "0 frames")


def test_every_body_is_noise(ntu_dir: Path, tmp_path: Path):
    frames = split_frames((ntu_dir / f"{A058}.skeleton").read_bytes())[:10]
    path = write(tmp_path, A058, join_frames(frames))
    expect_error(path, "bodies", "at most 11 frames")
    assert read(path, denoise=False).num_frames == 10  # the same file without denoising


def test_bad_sample_name(ntu_dir: Path, tmp_path: Path):
    path = tmp_path / "reading.skeleton"
    shutil.copy(ntu_dir / f"{A011}.skeleton", path)
    expect_error(path, "name", "S001C002P003R002A013")


def test_missing_root(tmp_path: Path):
    with pytest.raises(DataError):
        NTUSkeletonSource(tmp_path / "nowhere").items()
    with pytest.raises(DataError):
        NTUSkeletonSource(tmp_path).items()


# ---- txt2npy .skeleton.npy -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, frames, label", [("S001C001P001R001A001", 103, 0), ("S001C001P001R001A012", 102, 11)])
def test_npy_samples(npy_dir: Path, name: str, frames: int, label: int):
    path = npy_dir / f"{name}.skeleton.npy"
    src = NTUNpySource(npy_dir)
    assert [p.name for p in src.items()] == ["S001C001P001R001A001.skeleton.npy", "S001C001P001R001A012.skeleton.npy"]
    seq = src.read(path)
    stored = np.load(path, allow_pickle=True).item()
    assert seq.keypoints.shape == (1, frames, 25, 3) and seq.name == name and seq.label == label
    assert seq.meta == {"setup": 1, "camera": 1, "subject": 1, "repetition": 1, "action": label + 1}
    np.testing.assert_array_equal(seq.keypoints[0], stored["skel_body0"].astype(np.float32))
    assert (seq.scores == 1).all()
    assert src.split_names() == ["ntu60_xsub", "ntu60_xview"]


def test_npy_two_slots_and_empty_frames(npy_dir: Path, tmp_path: Path):
    stored = np.load(npy_dir / "S001C001P001R001A001.skeleton.npy", allow_pickle=True).item()
    body = stored["skel_body0"]
    second = np.zeros_like(body)
    second[50:] = body[50:] + 1.0
    body = body.copy()
    body[:3] = 0  # three frames with no body at all (txt2npy leaves zero rows for them)
    stored.update(skel_body0=body, skel_body1=second, file_name="S001C001P001R001A050")
    path = tmp_path / "S001C001P001R001A050.skeleton.npy"
    np.save(path, stored, allow_pickle=True)
    seq = NTUNpySource(tmp_path).read(path)
    assert seq.keypoints.shape == (2, 100, 25, 3)
    assert seq.scores[1, :47].sum() == 0 and (seq.scores[1, 47:] == 1).all() and (seq.scores[0] == 1).all()
    assert NTUNpySource(tmp_path, max_persons=1).read(path).num_persons == 1


def test_npy_bad_input(npy_dir: Path, tmp_path: Path):
    good = npy_dir / "S001C001P001R001A001.skeleton.npy"
    stored = np.load(good, allow_pickle=True).item()
    cases = {}

    def case(name: str, field: str, write_file, fragment: str = ""):
        path = tmp_path / f"S001C001P001R001A{len(cases) + 1:03d}.skeleton.npy"
        write_file(path)
        cases[name] = (path, field, fragment)

    case("empty", "content", lambda p: p.write_bytes(b""), "empty file")
    case("truncated", "content", lambda p: p.write_bytes(good.read_bytes()[:5000]), "truncated")
    case("plain array", "content", lambda p: np.save(p, np.zeros((3, 25, 3))), "found array of shape [3, 25, 3]")
    case("pickled list", "content", lambda p: np.save(p, np.array([stored, stored], dtype=object), allow_pickle=True))
    case("no body", "skel_body0", lambda p: np.save(p, {"file_name": p.name[:20], "njoints": 25}, allow_pickle=True))
    case("wrong shape", "skel_body0", lambda p: np.save(
        p, {**stored, "file_name": p.name[:20], "skel_body0": np.zeros((5, 24, 3))}, allow_pickle=True), "[5, 24, 3]")
    case("nan", "skel_body0", lambda p: np.save(
        p, {**stored, "file_name": p.name[:20], "skel_body0": np.full((5, 25, 3), np.nan)}, allow_pickle=True), "NaN")
    case("all zero", "skel_body0", lambda p: np.save(
        p, {**stored, "file_name": p.name[:20], "skel_body0": np.zeros((5, 25, 3))}, allow_pickle=True))
    case("other sample", "file_name", lambda p: np.save(p, stored, allow_pickle=True), "S001C001P001R001A001")
    src = NTUNpySource(tmp_path)
    for name, (path, field, fragment) in cases.items():
        with pytest.raises(DataError) as e:
            src.read(path)
        assert fragment in str(e.value), (name, str(e.value))
        assert e.value.path == str(path) and e.value.field == field, (name, str(e.value))


def test_random_corruption_gives_data_error_or_the_same_values(ntu_dir: Path):
    """Seeded random edits of real files: every outcome is a clean parse or a DataError, and whenever the fast
    reader accepts a file, the line-by-line reader (forced by turning spaces into tabs) reads the same values."""
    rng = np.random.default_rng(0)
    originals = [p.read_bytes() for p in sorted(ntu_dir.glob("*.skeleton"))]
    alphabet = b"0123456789.-+eE \r\n\tx"
    outcomes = {"parsed": 0, "rejected": 0}
    for _ in range(150):
        data = bytearray(originals[rng.integers(len(originals))])
        for _ in range(rng.integers(1, 4)):
            pos = int(rng.integers(len(data)))
            kind = rng.integers(4)
            if kind == 0:
                data[pos] = alphabet[rng.integers(len(alphabet))]
            elif kind == 1:
                del data[pos]
            elif kind == 2:
                data.insert(pos, alphabet[rng.integers(len(alphabet))])
            else:
                del data[pos:]
        data = bytes(data)
        try:
            records = parse_skeleton_text(data, "edited")
        except DataError:
            outcomes["rejected"] += 1
            continue
        outcomes["parsed"] += 1
        if b"\t" not in data:
            try:
                slow = parse_skeleton_text(data.replace(b" ", b"\t"), "edited")
            except DataError:
                continue  # a malformed unused value, which only the line-by-line reader parses
            np.testing.assert_array_equal(slow.joints, records.joints)
            np.testing.assert_array_equal(slow.tracking, records.tracking)
    assert outcomes["parsed"] > 20 and outcomes["rejected"] > 20
