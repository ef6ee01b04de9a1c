"""``skelact export RUN --onnx FILE`` on runs trained on real NW-UCLA data: onnxruntime agrees with PyTorch within
1e-4 on real test samples, the file holds exactly the backbone (FR-Head's training-only heads stay out), the JSON
description matches the run, and failures leave no file behind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lightning", reason="training needs the train extra (lightning)")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import numpy_helper  # noqa: E402

from skelact.cli import main  # noqa: E402
from skelact.config import load_config  # noqa: E402
from skelact.data.dataset import collate_skeletons  # noqa: E402
from skelact.engine.build import build_dataset, build_model, open_dataset_store  # noqa: E402
from skelact.errors import RunError  # noqa: E402
from skelact.inference.onnx_export import export_onnx  # noqa: E402
from cli_run import real_data_env  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:Checkpoint directory .* exists",
                                        "ignore:.*does not have many workers")

REPO = Path(__file__).resolve().parents[1]
#: a 2-block CTR-GCN with FR-Head's heads on both blocks, one epoch on 16 real samples
TINY = ["epochs=1", "model.base_channels=8", "model.num_blocks=2", "model.feature_blocks=[1,2]",
        "method.frhead.stage_weights=[0.5,1.0]", "data.max_train_samples=16", "data.max_test_samples=24",
        "data.batch_size=8", "data.num_workers=0", "trainer.accelerator=cpu", "trainer.progress_bar=false",
        "trainer.threads=1"]
TOLERANCE = 1e-4


@pytest.fixture(scope="module", autouse=True)
def data_env(shared_data: Path, tmp_path_factory):
    """The real data root and the session's store cache (shared with test_cli_train.py)."""
    with real_data_env(tmp_path_factory, shared_data):
        yield


@pytest.fixture(scope="module")
def frhead_run(tmp_path_factory) -> Path:
    """CTR-GCN + FR-Head trained for one epoch: a method with training-only modules (the contrastive heads)."""
    run = tmp_path_factory.mktemp("runs") / "frhead"
    config = REPO / "configs" / "nw_ucla" / "ctrgcn_frhead_joint.yaml"
    assert main(["train", str(config), *TINY, "--run-dir", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def exported(frhead_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "ctrgcn.onnx"
    assert main(["export", str(frhead_run), "--onnx", str(out), "--checkpoint", "last"]) == 0
    return out


def backbone_of(run: Path, which: str = "last"):
    """The backbone rebuilt here from the run's config, with the checkpoint's ``method.model.*`` weights."""
    loaded = load_config(run / "config.yaml")
    store = open_dataset_store(loaded, progress=False, log=lambda _: None)
    model = build_model(loaded, store)
    state = torch.load(run / "checkpoints" / f"{which}.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k[len("method.model."):]: v for k, v in state.items() if k.startswith("method.model.")})
    return model.eval(), loaded, store, state


def real_batch(loaded, store, positions) -> torch.Tensor:
    test_set = build_dataset(loaded, store, "test")
    return collate_skeletons([test_set[i] for i in positions], loaded.cfg.data.num_frames)["x"]


def test_onnxruntime_matches_pytorch_on_real_test_samples(frhead_run, exported):
    model, loaded, store, _ = backbone_of(frhead_run)
    # other samples and another batch size than the export's own check (the first 4, traced with 2)
    x = real_batch(loaded, store, range(10, 17))
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert logits.shape == (7, 10)
    assert np.abs(logits - expected).max() < TOLERANCE
    # the frame axis is dynamic: a shorter clip gives PyTorch's logits too
    short = x[:, :, :37].contiguous()
    (logits,) = session.run(None, {"x": short.numpy()})
    with torch.no_grad():
        assert np.abs(logits - model(short).numpy()).max() < TOLERANCE


def test_the_file_holds_exactly_the_backbone(frhead_run, exported):
    model, _, _, state = backbone_of(frhead_run)
    head_params = sum(v.numel() for k, v in state.items() if k.startswith("method.heads."))
    assert head_params > 0  # the run did train FR-Head's heads ...
    graph = onnx.load(str(exported)).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    # ... but none of them is in the file: every named weight is the backbone's, with the checkpoint's values
    backbone_state = model.state_dict()
    named = [n for n in initializers if not n.startswith("onnx::")]
    assert named and all(n in backbone_state for n in named), [n for n in named if n not in backbone_state]
    for name in named:
        np.testing.assert_array_equal(initializers[name], backbone_state[name].numpy())
    # the exported parameter count: every backbone parameter is in the file, by its name or, where the exporter
    # merged initializers of equal value, by an identical array
    arrays = list(initializers.values())
    count = 0
    for name, p in model.named_parameters():
        value = p.detach().numpy()
        found = name in initializers or any(a.shape == value.shape and np.array_equal(a, value) for a in arrays)
        assert found, name
        count += value.size
    assert count == sum(p.numel() for p in model.parameters())
    info = json.loads(exported.with_suffix(".json").read_text())
    assert info["model"]["num_parameters"] == count
    assert f"model CTRGCN: {count:,} parameters" in (frhead_run / "train.log").read_text()


def test_the_description_matches_the_run(frhead_run, exported, capsys):
    info = json.loads(exported.with_suffix(".json").read_text())
    assert info["onnx_file"] == exported.name
    assert info["input"]["name"] == "x" and info["input"]["shape"] == ["batch", 1, "frames", 20, 3]
    assert info["input"]["layout"] == "N M T V C" and info["output"]["shape"] == ["batch", 10]
    # NW-UCLA's class list and joint layout (shared/data/nw_ucla/README.txt: 10 classes, 20 Kinect v1 joints)
    assert info["class_names"][0] == "pick up with one hand" and len(info["class_names"]) == 10
    assert info["layout"]["name"] == "nw_ucla20" and len(info["layout"]["joints"]) == 20
    assert info["modality"] == "joint"
    steps = [step["type"] for step in info["preprocessing"]["test_pipeline"]]
    assert steps == ["CenterOnJoint", "MinMaxNormalize", "UclaSample", "ToModality", "ToInputs"]
    assert [i["name"] for i in info["inputs"]] == ["x"]  # one named input, described as "input" too
    assert info["source"]["checkpoint"] == "last" and info["source"]["epoch"] == 1
    assert info["check"]["max_abs_diff"] < TOLERANCE and len(info["check"]["samples"]) == 4


def test_default_checkpoint_is_last_and_the_difference_is_printed(frhead_run, tmp_path, capsys):
    """The last checkpoint by default (issue 27: the best one is selected on the test set); the printed difference
    is the one the JSON records."""
    out = tmp_path / "sub" / "model.onnx"
    assert main(["export", str(frhead_run), "--onnx", str(out)]) == 0
    printed = capsys.readouterr().out
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["source"]["checkpoint"] == "last" and "selected on the test set" not in printed
    assert f"max abs diff {info['check']['max_abs_diff']:.3g}" in printed
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_check_leaves_no_file(frhead_run, tmp_path):
    out = tmp_path / "model.onnx"
    with pytest.raises(RunError, match="differ from PyTorch's"):
        export_onnx(frhead_run, out, "last", tolerance=-1.0, log=lambda _: None)  # no difference passes
    assert list(tmp_path.iterdir()) == []


def test_missing_onnxruntime_is_one_line(frhead_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    code = main(["export", str(frhead_run), "--onnx", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "onnxruntime" in err[0] and "pip install 'skelact[export]'" in err[0]
    assert not (tmp_path / "m.onnx").exists()
