"""The model shipped inside the package (``skelact predict INPUT`` without ``--model``).

The shipped float16 weights, loaded the way ``predict`` loads them, still reach their accuracy on Penn Action's
official test split (so a change of the model code or of the test pipeline that breaks them fails here instead of
going stale); ``predict`` names the right class of a real Penn Action label file with no run at hand; the files are
in a built wheel and sdist; and packing a run round-trips: the packed model gives the run's own probabilities (to
float16 precision), and oversized, mismatched or drifted files are refused in one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from skelact.cli import main
from skelact.inference.predictor import Predictor
from skelact.inference.shipped_model import CONFIG_NAME, SHIPPED_DIR, WEIGHTS_NAME
from cli_run import one_line_error, real_data_env, run_cli, session_store_cache

REPO = Path(__file__).resolve().parents[1]
#: a clip of the official test split (``train`` is -1 in its label file): a boy skipping rope, 44 frames
PENN_TEST_CLIP = "1000.mat"


@pytest.fixture()
def penn_cache(shared_data, tmp_path_factory) -> Path:
    """Penn Action from the shared data, its store in the session cache (prepared on first use, about 4 s)."""
    with real_data_env(tmp_path_factory, shared_data):
        yield session_store_cache(tmp_path_factory)


def test_shipped_weights_reach_their_accuracy_on_the_official_test_split(penn_cache):
    """At least 97.5 % top-1 on all 1068 test clips of the official split, through ``Predictor.shipped()``, the
    object ``predict`` classifies with: the float16 file, the packed config, its test pipeline, the store cache."""
    predictor = Predictor.shipped()
    assert predictor.layout.name == "penn13" and predictor.coords == 2 and len(predictor.class_names) == 15
    probs, labels = predictor.test_subset()
    assert probs.shape == (1068, 15) and np.bincount(labels, minlength=15).min() > 0
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    top1 = 100.0 * float((probs.argmax(axis=1) == labels).mean())
    assert top1 >= 97.5, f"the shipped model reaches {top1:.2f} % top-1; rebuild it (tools/ship_demo_model.py)"


def test_predict_without_a_model_names_the_class_of_a_penn_label_file(shared_data, capsys):
    """No run, no store, no data root: the shipped model alone classifies a real label file; the file's own
    action (``jump_rope``) comes first, and the output says which model was used."""
    path = shared_data / "penn_action_labels" / "labels" / PENN_TEST_CLIP
    code, out, _ = run_cli(capsys, "predict", path, "--json", "--top-k", "3")
    assert code == 0
    result = json.loads(out)
    assert result["label"]["class"] == "jump_rope"
    assert result["topk"][0]["class"] == "jump_rope" and result["topk"][0]["prob"] > 0.5
    assert result["model"].startswith("shipped: ") and str(SHIPPED_DIR / WEIGHTS_NAME) in result["model"]
    code, text, _ = run_cli(capsys, "predict", path, "--top-k", "1")
    assert code == 0
    assert f"model    shipped: " in text and " 1. jump_rope " in text


def test_predict_with_the_shipped_model_needs_no_training_extra(shared_data):
    """A fresh ``pip install skelact`` has no Lightning: the shipped model must not need it (a run does)."""
    path = shared_data / "penn_action_labels" / "labels" / PENN_TEST_CLIP
    code = ("import sys\n"
            "for name in ('lightning', 'pytorch_lightning', 'lightning_fabric'):\n"
            "    sys.modules[name] = None  # import fails, as without the train extra\n"
            "from skelact.cli import main\n"
            "sys.exit(main(['predict', sys.argv[1], '--top-k', '1']))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert " 1. jump_rope " in done.stdout


def test_the_model_and_input_arguments(shared_data, capsys, tmp_path):
    """The run is given once; ``--checkpoint`` needs a run (the earlier ``RUN INPUT`` form: tests/test_predict.py)."""
    path = shared_data / "penn_action_labels" / "labels" / PENN_TEST_CLIP
    assert "--model: give the run once" in one_line_error(capsys, "predict", tmp_path, path, "--model", tmp_path)
    assert "--checkpoint: chooses a checkpoint of a run" in one_line_error(capsys, "predict", path, "--checkpoint",
                                                                            "best")
    assert "expected INPUT (or RUN INPUT), got 3 paths" in one_line_error(capsys, "predict", path, path, path)


def test_the_shipped_files_are_in_the_wheel_and_the_sdist(tmp_path):
    """Built from a copy of the source by setuptools' own PEP 517 hooks (what ``pip wheel .`` calls)."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    out = tmp_path / "dist"
    out.mkdir()
    built = {}
    for hook in ("build_wheel", "build_sdist"):  # one process each: setuptools keeps state between the two
        code = f"import sys; from setuptools import build_meta; print('built', build_meta.{hook}(sys.argv[1]))"
        done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        built[hook] = done.stdout.splitlines()[-1].split()[1]
    wheel_name, sdist_name = built["build_wheel"], built["build_sdist"]
    shipped = {name: (SHIPPED_DIR / name).read_bytes() for name in (CONFIG_NAME, WEIGHTS_NAME)}
    with zipfile.ZipFile(out / wheel_name) as wheel:
        for name, data in shipped.items():
            assert wheel.read(f"skelact/inference/shipped/{name}") == data
    with tarfile.open(out / sdist_name) as sdist:
        root = sdist_name[: -len(".tar.gz")]
        for name, data in shipped.items():
            assert sdist.extractfile(f"{root}/src/skelact/inference/shipped/{name}").read() == data


# ----------------------------------------------------------------------------------------------- packing a run

FAST_CONFIG = REPO / "configs" / "penn_action" / "ctrgcn_joint_fast.yaml"
TINY = ["epochs=1", "model.base_channels=8", "model.num_blocks=2", "data.max_train_samples=32",
        "data.max_test_samples=16", "data.batch_size=8", "data.num_workers=0", "trainer.accelerator=cpu",
        "trainer.progress_bar=false", "trainer.threads=1"]


@pytest.fixture(scope="module")
def tiny_run(shared_data, tmp_path_factory) -> Path:
    """The fast preset cut to a tiny one-epoch model (its store in the session cache)."""
    pytest.importorskip("lightning", reason="training needs the train extra (lightning)")
    out = tmp_path_factory.mktemp("ship") / "run"
    with real_data_env(tmp_path_factory, shared_data):
        assert main(["train", str(FAST_CONFIG), *TINY, "--run-dir", str(out)]) == 0
        yield out


@pytest.mark.filterwarnings("ignore:.*smaller than the logging interval", "ignore:.*does not have many workers")
def test_a_packed_run_predicts_what_its_test_scored(tiny_run, penn_cache, tmp_path):
    import torch

    from skelact.inference.shipped_model import pack_run

    packed = pack_run(tiny_run, tmp_path / "packed", description="tiny")
    assert packed.weights_bytes == packed.weights_path.stat().st_size
    assert packed.config_path.read_bytes() == (tiny_run / "config.yaml").read_bytes()
    saved = torch.load(packed.weights_path, weights_only=True)
    floats = [v for v in saved["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert saved["class_names"][:2] == ["baseball_pitch", "baseball_swing"] and saved["layout"] == "penn13"

    predictor = Predictor.shipped(tmp_path / "packed")
    assert predictor.model_label == f"shipped: tiny ({packed.weights_path})"
    probs, labels = predictor.test_subset()
    logits = torch.from_numpy(np.load(tiny_run / "scores.npy")).double()
    np.testing.assert_array_equal(labels, np.load(tiny_run / "labels.npy"))
    # float16 weights: the run's float32 probabilities to about three significant digits
    np.testing.assert_allclose(probs, torch.softmax(logits, dim=1).numpy(), atol=5e-3)


def test_packing_refuses_an_oversized_file_and_writes_nothing(tiny_run, penn_cache, tmp_path):
    from skelact.errors import ConfigError
    from skelact.inference.shipped_model import pack_run

    with pytest.raises(ConfigError, match=r"MB, over the 0.00 MB allowed for package data; nothing was written"):
        pack_run(tiny_run, tmp_path / "packed", max_bytes=1000)
    assert not (tmp_path / "packed").exists()


def test_broken_shipped_files_are_one_line(tiny_run, penn_cache, tmp_path, capsys, monkeypatch, shared_data):
    """A missing installation, weights that no longer fit the model (what a change of the model code does), a
    config edited after packing, and a pickle that is not plain data: each one line naming the file."""
    import torch

    from skelact.inference import shipped_model
    from skelact.inference.shipped_model import pack_run

    clip = shared_data / "penn_action_labels" / "labels" / PENN_TEST_CLIP
    folder = tmp_path / "packed"
    monkeypatch.setattr(shipped_model, "SHIPPED_DIR", folder)
    line = one_line_error(capsys, "predict", clip)
    assert "the shipped model is not installed" in line and str(folder / CONFIG_NAME) in line

    pack_run(tiny_run, folder)
    weights = folder / WEIGHTS_NAME
    good = weights.read_bytes()
    saved = torch.load(weights, weights_only=True)
    saved["state_dict"] = {k.replace("model.", "model.renamed_", 1): v for k, v in saved["state_dict"].items()}
    torch.save(saved, weights)
    line = one_line_error(capsys, "predict", clip)
    assert f"{weights}: the shipped weights do not fit the model of their config.yaml" in line

    weights.write_bytes(good)
    with open(folder / CONFIG_NAME, "a", encoding="utf-8") as f:
        f.write("# edited\n")
    assert "were packed with another config.yaml" in one_line_error(capsys, "predict", clip)

    torch.save({"format": shipped_model.FORMAT, "state_dict": shipped_model.PackResult}, weights)
    line = one_line_error(capsys, "predict", clip)
    assert f"{weights}: unreadable shipped model" in line
