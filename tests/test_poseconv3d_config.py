"""PoseConv3D from its shipped Penn Action configs, end to end on real label files: the CPU config (shrunk to a
tiny X3D, a handful of clips, one epoch) trains from ``skelact train`` with its store prepared on first use,
``skelact test`` writes one score row per test clip, and ``skelact predict`` on one of those clips' ``.mat`` file
gives exactly the probabilities ``skelact test`` scored for it (the same test pipeline: heatmaps of one clip and
its mirror image, averaged). The GPU recipes are checked against pyskl's numbers (Duan et al., CVPR 2022) and their
test pipelines against the 10-clip + flip volume they must draw."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

pytest.importorskip("lightning", reason="training needs the train extra (lightning)")

from skelact.cli import main  # noqa: E402
from skelact.config import load_config  # noqa: E402
from skelact.data.sources.penn_action import PENN_ACTION_CLASSES, PennActionSource  # noqa: E402
from skelact.data.transforms import sample_from_sequence  # noqa: E402
from skelact.engine.build import build_pipeline_of  # noqa: E402
from cli_run import real_data_env  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:Checkpoint directory .* exists",
                                        "ignore:.*does not have many workers")

REPO = Path(__file__).resolve().parents[1]
PENN = REPO / "configs" / "penn_action"
#: label files of three classes (baseball_pitch, baseball_swing, bench_press by their numbering), both subsets
LABEL_FILES = ("0001", "0002", "0003", "0200", "0201", "0202", "0400", "0401", "0402")
TINY = ["epochs=1", "data.batch_size=3", "data.test_batch_size=4", "data.num_workers=0", "trainer.accelerator=cpu",
        "trainer.progress_bar=false", "model.backbone_options.base_channels=8",
        "model.backbone_options.stage_blocks=[1,1,1]", "data.max_train_samples=3", "data.max_test_samples=3"]


@pytest.fixture(scope="module")
def labels(penn_labels) -> Path:
    """A Penn Action source folder holding a few of the real label files."""
    return penn_labels(LABEL_FILES)


@pytest.fixture(scope="module")
def run(labels: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("poseconv3d") / "run"
    with real_data_env(tmp_path_factory):
        assert main(["train", str(PENN / "poseconv3d_joint_cpu.yaml"), *TINY, f"data.source={labels.parent}",
                     "--run-dir", str(out)]) == 0
        yield out


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def test_train_then_test_writes_scores(run: Path, capsys):
    assert (run / "checkpoints" / "last.ckpt").is_file()
    (run / "scores.npy").unlink()
    assert main(["test", str(run)]) == 0
    scores = np.load(run / "scores.npy")
    names = json.loads((run / "names.json").read_text())
    assert scores.shape == (3, len(PENN_ACTION_CLASSES)) == (len(names), 15)
    assert np.isfinite(scores).all()
    # the model's clip average ('prob') returns log mean probabilities: they already sum to one
    np.testing.assert_allclose(np.exp(scores).sum(axis=1), 1.0, rtol=1e-5)
    assert "top1" in capsys.readouterr().out


def test_predict_a_mat_file_scores_as_test_did(run: Path, labels: Path, capsys):
    names = json.loads((run / "names.json").read_text())
    row, name = 0, names[0]
    path = labels / f"{name}.mat"
    capsys.readouterr()
    assert main(["predict", str(run), str(path), "--json", "--top-k", "15"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = softmax(np.load(run / "scores.npy")[row].astype(np.float64))  # what `skelact test` scored
    assert sorted(c["index"] for c in result["topk"]) == list(range(15))
    np.testing.assert_allclose([c["prob"] for c in result["topk"]], expected[[c["index"] for c in result["topk"]]],
                               rtol=1e-4)
    assert result["layout"] == "penn13"
    action = str(np.ravel(loadmat(path)["action"])[0])  # the file's own class name, read without skelact
    assert result["label"]["index"] == PENN_ACTION_CLASSES.index(action)
    # and the plain text form: a ranked top-k list
    assert main(["predict", str(run), str(path), "--top-k", "3"]) == 0
    ranked = re.findall(r"^ *([123])\. (\w+) +[0-9.]+ %$", capsys.readouterr().out, re.M)
    assert [k for k, _ in ranked] == ["1", "2", "3"] and all(c in PENN_ACTION_CLASSES for _, c in ranked)


@pytest.mark.parametrize("stream, channels", [("joint", 13), ("limb", 12)])  # penn13: 13 joints, a 12-bone tree
def test_gpu_recipe(stream: str, channels: int, labels: Path):
    loaded = load_config(PENN / f"poseconv3d_{stream}.yaml")
    cfg = loaded.cfg
    assert cfg.model.backbone == "slowonly" and cfg.epochs == 240 and cfg.schedule.type == "cosine"
    assert cfg.optimizer.lr * cfg.data.batch_size / cfg.optimizer.reference_batch_size == pytest.approx(0.05)
    assert cfg.optimizer.weight_decay == 3e-4 and cfg.trainer.gradient_clip_val == 40
    assert (cfg.data.format, cfg.data.source) == ("penn-action", "penn_action_labels")
    seq = PennActionSource(labels).read(labels / "0001.mat")
    sample = sample_from_sequence(seq)
    sample["layout"] = seq.layout
    out = build_pipeline_of(loaded, "test")(sample, np.random.default_rng(0))
    # 10 clips of 48 frames and their 10 mirror images, 56 x 56, one channel per joint or per limb
    assert out["heatmap"].shape == (20, channels, 48, 56, 56)


def test_cpu_recipe_draws_one_clip_and_its_mirror(labels: Path):
    loaded = load_config(PENN / "poseconv3d_joint_cpu.yaml")
    assert loaded.cfg.model.backbone == "x3d" and loaded.cfg.trainer.gradient_clip_val == 40
    seq = PennActionSource(labels).read(labels / "0200.mat")
    sample = sample_from_sequence(seq)
    sample["layout"] = seq.layout
    volume = build_pipeline_of(loaded, "test")(sample, np.random.default_rng(0))["heatmap"]
    assert volume.shape == (2, 13, 24, 32, 32)
    # the second volume is the first seen in a mirror: columns reversed (channels swapped left for right)
    np.testing.assert_allclose(volume[1].sum(axis=(0, 1, 2)), volume[0].sum(axis=(0, 1, 2))[::-1], atol=1e-4)
