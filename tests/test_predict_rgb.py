"""``skelact predict`` with an RGB run: a tiny one-epoch FstCN trained on a video-folder store of the real clips in
``videos/``. Its prediction of a test clip equals what ``skelact test`` scored for it, its prediction of a rendered
Penn Action clip equals the model run by hand on ClipPairs' test views, and bad videos give one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning", reason="training needs the train extra (lightning)")
pytest.importorskip("av", reason="RGB runs read videos with PyAV")

from skelact.cli import main  # noqa: E402
from skelact.inference.predictor import takes_rgb  # noqa: E402
from cli_run import one_line_error, run_cli  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:Checkpoint directory .* exists",
                                        "ignore:.*does not have many workers")

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "penn_action" / "fstcn_rgb_cpu.yaml"
#: (clip, class, subset) of the video-folder list: three classes to train on, two clips to test
CLIPS = (("S001C001P001R001A001_rgb.avi", "drink", "train"), ("S004C003P003R001A006_rgb.avi", "pick_up", "train"),
         ("S004C003P003R001A007_rgb.avi", "throw", "train"), ("mmaction2_demo.mp4", "drink", "test"),
         ("S004C002P003R001A055_rgb.avi", "throw", "test"))
CLIP_PAIRS = "{type: ClipPairs, clip_len: 5, stride: 5, diff_offset: 9, crop_size: 64, max_side: 128"
TINY = ["epochs=1", "data.format=video-folder", "data.split=list", "model.crop_size=64", "model.scl_widths=[4,8,8,8]",
        "model.path_channels=8", "model.tp_channels=8", "model.temporal_channels=4", "model.fc_widths=[16,8]",
        "data.batch_size=3", "data.test_batch_size=2", "data.num_workers=0", "data.max_test_samples=null",
        "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.threads=1", "trainer.precision=32",
        f"data.train_pipeline=[{CLIP_PAIRS}}}]", f"data.test_pipeline=[{CLIP_PAIRS}, num_clips: 2, test_mode: true}}]"]


@pytest.fixture(scope="module")
def run(shared_data: Path, tmp_path_factory) -> Path:
    videos = shared_data / "videos"
    if not all((videos / clip).is_file() for clip, _, _ in CLIPS):
        pytest.skip("real clips not available")
    base = tmp_path_factory.mktemp("predict_rgb")
    (base / "src").mkdir()
    rows = ["path,label,split"]
    for clip, action, subset in CLIPS:
        (base / "src" / clip).symlink_to(videos / clip)
        rows.append(f"{clip},{action},{subset}")
    (base / "src" / "list.csv").write_text("\n".join(rows) + "\n")
    assert main(["prepare", "video-folder", str(base / "src" / "list.csv"), str(base / "store"), "-q",
                 "--workers", "1"]) in (0, None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKELACT_FRAME_CACHE", str(base / "frames"))
        assert main(["train", str(CONFIG), *TINY, f"data.store={base / 'store'}", "--run-dir",
                     str(base / "run")]) == 0
        yield base / "run"


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_rgb_runs_are_told_by_their_pipeline():
    skeleton = [{"type": "CenterOnJoint", "joint": 1}, {"type": "UclaSample", "window_size": 16}]
    assert not takes_rgb(skeleton, [{"type": "ToInputs", "inputs": {"x": "keypoints"}}])
    assert takes_rgb([{"type": "ClipPairs", "crop_size": 96}])
    assert takes_rgb([], [{"type": "ToInputs", "inputs": {"clip": "clip"}}])  # the frame CNN's input


def test_test_clip_gets_the_scores_skelact_test_wrote(run, shared_data, capsys):
    names = json.loads((run / "names.json").read_text())
    written = softmax(np.load(run / "scores.npy").astype(np.float64))[names.index("mmaction2_demo")]
    clip = shared_data / "videos" / "mmaction2_demo.mp4"
    code, out, _ = run_cli(capsys, "predict", run, clip, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["kind"] == "rgb video" and doc["frames"] == 280 and doc["timeline"] == []
    assert [c["class"] for c in doc["topk"]] == [["drink", "pick_up", "throw"][k] for k in np.argsort(-written)]
    np.testing.assert_allclose([c["prob"] for c in doc["topk"]], np.sort(written)[::-1], atol=1e-5)

    code, out, _ = run_cli(capsys, "predict", run, clip, "--top-k", "2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4
    assert lines[0] == f"input    {clip} (rgb video, 280 frames, layout rgb)"
    assert lines[2].startswith(" 1. " + doc["topk"][0]["class"]) and lines[2].endswith(
        f"{100 * doc['topk'][0]['prob']:6.2f} %")


def test_rendered_clip_equals_the_model_on_its_test_views(run, shared_data, tmp_path, capsys):
    """A Penn Action clip rendered at 64 px (another source, another size): the printed probabilities are the
    softmax of the network's fused output on ClipPairs' 2 x 18 test views, built here from the run's settings."""
    import torch

    from skelact.config import load_config
    from skelact.data.prepare import prepare
    from skelact.data.store import SkeletonStore
    from skelact.data.transforms import ClipPairs
    from skelact.inference.onnx_export import load_inference_network

    label = shared_data / "penn_action_labels" / "labels" / "0001.mat"
    if not label.is_file():
        pytest.skip("Penn Action labels not available")
    (tmp_path / "labels").mkdir()
    shutil.copy(label, tmp_path / "labels")
    prepare("penn-action-rendered", tmp_path / "labels", tmp_path / "rendered", workers=1, progress=False, size=64)
    video = SkeletonStore(tmp_path / "rendered").video_path(0)

    code, out, _ = run_cli(capsys, "predict", run, video, "--json")
    assert code == 0
    doc = json.loads(out)

    pairs = ClipPairs(clip_len=5, stride=5, diff_offset=9, crop_size=64, max_side=128, num_clips=2, test_mode=True,
                      cache=False)
    views = pairs({"name": "0001", "video": str(video)}, np.random.default_rng(0))
    assert views["clip"].shape == (36, 3, 5, 64, 64)
    loaded = load_config(run / "config.yaml")
    store = SkeletonStore(loaded.cfg.data.store)
    network, _ = load_inference_network(loaded, store, run / "checkpoints" / "last.ckpt")
    with torch.no_grad():
        fused = network(torch.from_numpy(views["clip"])[None], torch.from_numpy(views["diff"])[None])
    expected = softmax(fused.double().numpy()[0])
    assert doc["frames"] == len(SkeletonStore(tmp_path / "rendered")[0].keypoints[0])
    np.testing.assert_allclose([c["prob"] for c in doc["topk"]], np.sort(expected)[::-1], atol=1e-6)
    assert [c["index"] for c in doc["topk"]] == list(np.argsort(-expected, kind="stable"))


def test_bad_videos_are_one_line(run, shared_data, capsys, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n")
    assert "notes.mp4" in one_line_error(capsys, "predict", run, fake)
    truncated = tmp_path / "cut.avi"  # an NTU clip cut short keeps its header's frame count
    truncated.write_bytes((shared_data / "videos" / "S004C002P003R002A046_rgb.avi").read_bytes()[:300_000])
    assert "truncated" in one_line_error(capsys, "predict", run, truncated)
    clip = shared_data / "videos" / "mmaction2_demo.mp4"
    assert "--render" in one_line_error(capsys, "predict", run, clip, "--render", tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
