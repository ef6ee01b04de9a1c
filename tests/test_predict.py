"""``skelact predict`` on real files with a tiny one-epoch CTR-GCN trained on NW-UCLA: the prediction of a test
sample read from its JSON file equals what ``skelact test`` scored for it, the sliding-window timeline equals
predictions of the cut file, and bad input gives one-line errors. The video path runs only with the pose extra."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning", reason="training needs the train extra (lightning)")

from skelact.cli import main  # noqa: E402
from skelact.inference.predictor import pipeline_window, window_starts  # noqa: E402
from cli_run import one_line_error, real_data_env, run_cli  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:Checkpoint directory .* exists",
                                        "ignore:.*does not have many workers")

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "nw_ucla" / "ctrgcn_joint.yaml"
WINDOW = 16
TINY = ["epochs=1", "model.base_channels=8", "model.num_blocks=2", "data.max_train_samples=32",
        "data.max_test_samples=16", "data.batch_size=8", "data.num_workers=0", "trainer.accelerator=cpu",
        "trainer.progress_bar=false", "trainer.threads=1",
        "data.train_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, {type: MinMaxNormalize}, "
        f"{{type: UclaSample, window_size: {WINDOW}}}]",
        "data.test_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, {type: MinMaxNormalize}, "
        f"{{type: UclaSample, window_size: {WINDOW}, test_mode: true}}]"]


@pytest.fixture(scope="module")
def run(shared_data: Path, tmp_path_factory) -> Path:
    """A one-epoch tiny CTR-GCN on NW-UCLA cross-view (its store in the session cache test_cli_train.py shares)."""
    out = tmp_path_factory.mktemp("predict") / "run"
    with real_data_env(tmp_path_factory, shared_data):
        assert main(["train", str(CONFIG), *TINY, "--run-dir", str(out)]) == 0
        yield out


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits.astype(np.float64) - logits.max())
    return e / e.sum()


@pytest.fixture(scope="module")
def long_test_sample(run: Path, shared_data: Path) -> tuple[Path, int]:
    """A sample of the run's test subset longer than three windows: (its JSON file, its row in scores.npy)."""
    names = json.loads((run / "names.json").read_text())
    for row, name in enumerate(names):
        path = shared_data / "nw_ucla" / "all_sqe" / f"{name}.json"
        if len(json.loads(path.read_text())["skeletons"]) > 3 * WINDOW:
            return path, row
    pytest.fail("no test sample longer than three windows")


def test_top_k_equals_the_runs_own_test_scores(run, long_test_sample, capsys):
    path, row = long_test_sample
    code, out, err = run_cli(capsys, "predict", run, path, "--json", "--top-k", "3")
    assert code == 0, err
    result = json.loads(out)
    expected = softmax(np.load(run / "scores.npy")[row])  # what `skelact test` scored for this very sample
    top = np.argsort(-expected)[:3]
    assert [c["index"] for c in result["topk"]] == top.tolist()
    np.testing.assert_allclose([c["prob"] for c in result["topk"]], expected[top], rtol=1e-5)
    assert sum(c["prob"] for c in result["topk"]) <= 1.0 + 1e-9
    class_names = [r["class_name"] for r in json.loads((run / "per_class.json").read_text())]
    assert [c["class"] for c in result["topk"]] == [class_names[k] for k in top]
    # the file's own label, as the run's labels.npy has it
    assert result["label"]["index"] == int(np.load(run / "labels.npy")[row])
    assert result["input"] == str(path.resolve()) and result["run"] == str(run.resolve())
    # one default with test and export: the last checkpoint, not the run's evaluate.checkpoint (best, here)
    assert result["checkpoint"] == str(run.resolve() / "checkpoints" / "last.ckpt")

    code, text, err = run_cli(capsys, "predict", run, path, "--top-k", "2")
    assert code == 0, err
    ranked = [line for line in text.splitlines() if line[:3] in (" 1.", " 2.", " 3.")]
    assert len(ranked) == 2
    assert class_names[top[0]] in ranked[0] and f"{100 * expected[top[0]]:6.2f} %" in ranked[0]


def test_timeline_of_a_long_input_equals_predictions_of_its_cuts(run, long_test_sample, capsys, tmp_path):
    path, _ = long_test_sample
    doc = json.loads(path.read_text())
    frames = len(doc["skeletons"])
    code, out, err = run_cli(capsys, "predict", run, path, "--json", "--stride", "10")
    assert code == 0, err
    result = json.loads(out)
    assert result["window"] == WINDOW and result["frames"] == frames  # the test pipeline's UclaSample window
    starts = list(range(0, frames - WINDOW + 1, 10))
    if starts[-1] + WINDOW < frames:
        starts.append(frames - WINDOW)  # the last window ends with the input
    assert [(w["start"], w["end"]) for w in result["timeline"]] == [(s, s + WINDOW) for s in starts]
    # each window is classified as that stretch of frames on its own would be
    for w in (result["timeline"][0], result["timeline"][-1]):
        cut = tmp_path / path.name
        cut.write_text(json.dumps({**doc, "skeletons": doc["skeletons"][w["start"]:w["end"]]}))
        code, out, err = run_cli(capsys, "predict", run, cut, "--json", "--top-k", "1")
        assert code == 0, err
        alone = json.loads(out)
        assert alone["timeline"] == []  # one window long: no timeline
        assert alone["topk"][0]["index"] == w["index"] and alone["topk"][0]["prob"] == pytest.approx(w["prob"])


def test_windows_where_nobody_is_seen_are_not_classified(run, long_test_sample, capsys, tmp_path):
    """A person who walks in late (MediaPipe on mmaction2's demo clip finds someone in 80 of 280 frames): the
    stretches with nobody are reported as such, the others classified as before."""
    path, _ = long_test_sample
    doc = json.loads(path.read_text())
    frames = len(doc["skeletons"])
    late = [[[0.0, 0.0, 0.0] for _ in joints] if t < WINDOW + 5 else joints for t, joints in
            enumerate(doc["skeletons"])]
    cut = tmp_path / path.name
    cut.write_text(json.dumps({**doc, "skeletons": late}))
    code, out, err = run_cli(capsys, "predict", run, cut, "--json", "--stride", "10")
    assert code == 0, err
    timeline = json.loads(out)["timeline"]
    empty = [w for w in timeline if w["end"] <= WINDOW + 5]
    assert empty and all(w["index"] == -1 and w["class"] == "(no person)" and w["prob"] == 0 for w in empty)
    assert all(w["index"] >= 0 for w in timeline if w["end"] > WINDOW + 5)
    assert timeline[-1]["end"] == frames
    code, text, err = run_cli(capsys, "predict", run, cut, "--stride", "10")
    assert code == 0 and "(no person)" in text, err


def test_window_helpers():
    assert window_starts(10, 16, 8) == [0]
    assert window_starts(40, 16, 8) == [0, 8, 16, 24]
    assert window_starts(41, 16, 8) == [0, 8, 16, 24, 25]
    pipeline = [{"type": "MinMaxNormalize"}, {"type": "UclaSample", "window_size": 52, "test_mode": True}]
    assert pipeline_window(pipeline) == 52
    assert pipeline_window([{"type": "ValidCropResize", "p_interval": [0.95]}]) == 64  # CTR-GCN's NTU window
    assert pipeline_window([{"type": "PreNormalize3D"}], num_frames=100) == 100


# ------------------------------------------------------------------------------------------------- bad input


def test_ntu_skeleton_into_an_nw_ucla_model(run, shared_data, capsys):
    ntu = next((shared_data / "ntu_rgbd_samples").rglob("*.skeleton"))
    line = one_line_error(capsys, "predict", run, ntu)
    assert str(ntu) in line and "layout" in line and "'ntu25' (25 joints)" in line
    assert "'nw_ucla20' (20 joints)" in line


def test_missing_input(run, capsys, tmp_path):
    missing = tmp_path / "nothing.json"
    line = one_line_error(capsys, "predict", run, missing)
    assert str(missing) in line and "not found" in line


def test_neither_video_nor_skeleton_file(run, capsys, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a skeleton\n")
    line = one_line_error(capsys, "predict", run, text)
    assert str(text) in line and "neither a video nor a known skeleton file" in line


def test_run_without_checkpoints(run, long_test_sample, capsys, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "config.yaml", bare / "config.yaml")
    line = one_line_error(capsys, "predict", bare, long_test_sample[0])
    assert str(bare) in line and "no checkpoints" in line


def test_checkpoint_file_and_render_of_a_skeleton_file(run, long_test_sample, capsys, tmp_path):
    path, row = long_test_sample
    code, out, err = run_cli(capsys, "predict", run / "checkpoints" / "last.ckpt", path, "--json", "--top-k", "1")
    assert code == 0, err
    assert json.loads(out)["checkpoint"] == str(run.resolve() / "checkpoints" / "last.ckpt")
    line = one_line_error(capsys, "predict", run, path, "--render", tmp_path / "out.mp4")
    assert "--render needs a video input" in line and not (tmp_path / "out.mp4").exists()


# ------------------------------------------------------------------------------------------------------ video

#: the shipped demo config (TorsoNormalize, 48-frame UniformSample), cut to a tiny one-epoch model
PENN_CONFIG = REPO / "configs" / "penn_action" / "ctrgcn_joint.yaml"
PENN_TINY = ["experiment=penn_tiny", *[t for t in TINY if "pipeline" not in t]]


@pytest.fixture(scope="module")
def pose_extra():
    pytest.importorskip("mediapipe", reason="video input needs the pose extra")
    return pytest.importorskip("av", reason="video input needs the pose extra")


@pytest.fixture(scope="module")
def penn_run(pose_extra, shared_data: Path, tmp_path_factory) -> Path:
    """A tiny one-epoch model of the shipped Penn Action demo config (13-joint 2D layout, which MediaPipe's mapping
    produces; ``$SKELACT_PENN_RUN``, when given, is used instead: the pose environment may lack the train extra)."""
    if os.environ.get("SKELACT_PENN_RUN"):
        return Path(os.environ["SKELACT_PENN_RUN"])
    out = tmp_path_factory.mktemp("predict-penn") / "run"
    with real_data_env(tmp_path_factory, shared_data):
        assert main(["train", str(PENN_CONFIG), *PENN_TINY, "--run-dir", str(out)]) == 0
    return out


def test_video_with_a_layout_mediapipe_cannot_produce(run, shared_data, capsys):
    """NW-UCLA's Kinect v1 skeleton has no mapping from MediaPipe's landmarks: one line, before the estimator is
    loaded (so this holds without the pose extra too)."""
    video = shared_data / "videos" / "S001C001P001R001A001_rgb.avi"
    line = one_line_error(capsys, "predict", run, video)
    assert str(video) in line and "takes layout 'nw_ucla20'" in line and "cannot produce" in line


def test_video_without_a_person(penn_run, capsys, tmp_path):
    from skelact.video.writer import write_video

    empty_room = tmp_path / "empty.mp4"
    write_video(empty_room, (np.full((96, 128, 3), 90, np.uint8) for _ in range(8)), 25.0)
    line = one_line_error(capsys, "predict", penn_run, empty_room)
    assert str(empty_room) in line and "no person detected in any of the 8 frame(s)" in line


def test_video_predict_and_render(penn_run, pose_extra, shared_data, capsys, tmp_path):
    """End to end on a real NTU RGB+D clip (103 frames): top-k printed, a timeline, and an mp4 that decodes back
    to the same number of frames."""
    av = pose_extra
    video = shared_data / "videos" / "S001C001P001R001A001_rgb.avi"
    out = tmp_path / "rendered.mp4"
    code, text, err = run_cli(capsys, "predict", penn_run, video, "--mirrored", "--render", out, "--json",
                              "--top-k", "3")
    assert code == 0, err
    result = json.loads(text)
    with av.open(str(video)) as container:
        source_frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(out)) as container:
        rendered_frames = sum(1 for _ in container.decode(video=0))
    assert source_frames == 103  # the clip's known length
    assert result["kind"] == "video" and result["frames"] == source_frames and result["layout"] == "penn13"
    assert rendered_frames == source_frames and len(result["topk"]) == 3
    assert result["timeline"][-1]["end"] == source_frames


def test_the_users_own_array_file_with_the_runs_layout(run, long_test_sample, capsys, tmp_path):
    """issue 27, item 9: a plain [T, V, C] .npy is read with the run's layout, and classified as the same clip
    read from its JSON file is."""
    path, _ = long_test_sample
    clip = np.asarray(json.loads(path.read_text())["skeletons"], dtype=np.float32)  # (T, 20, 3), metres
    mine = tmp_path / "my clip.npy"
    np.save(mine, clip)
    code, out, err = run_cli(capsys, "predict", run, path, "--json", "--top-k", "3")
    assert code == 0, err
    from_json = json.loads(out)
    for extra in ([], ["--format", "arrays"]):
        code, out, err = run_cli(capsys, "predict", run, mine, "--json", "--top-k", "3", *extra)
        assert code == 0, err
        from_array = json.loads(out)
        assert [c["index"] for c in from_array["topk"]] == [c["index"] for c in from_json["topk"]]
        np.testing.assert_allclose([c["prob"] for c in from_array["topk"]],
                                   [c["prob"] for c in from_json["topk"]], rtol=1e-5)
        assert from_array["kind"] == "array"

    wrong = tmp_path / "coco.npy"
    np.save(wrong, np.ones((30, 17, 2), dtype=np.float32))
    line = one_line_error(capsys, "predict", run, wrong)
    assert "array of shape (30, 17, 2) has 17 joints but the run's layout 'nw_ucla20' has 20" in line
    assert "PosixPath" not in line and str(wrong) in line


def test_messages_show_bare_paths():
    from skelact.errors import DataError

    err = DataError(f"expected a file, got {Path('/data/my clips/a.npy')!r}", Path("/data"), "INPUT")
    assert str(err) == "/data: INPUT: expected a file, got /data/my clips/a.npy"
