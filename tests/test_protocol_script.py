"""benchmarks/nw_ucla_protocol.py: the progress and time-left arithmetic that decides which run to stop, and the
archives it brings back (weights that ``skelact test`` reads, without the optimizer state)."""

from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nw_ucla_protocol", REPO / "benchmarks" / "nw_ucla_protocol.py")
protocol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protocol)


def test_eta_is_the_passes_left_at_the_rate_of_the_last_window():
    history = [(0.0, 0), (30.0, 4), (60.0, 10), (90.0, 20)]
    # window 60 s: from (30, 4) to (90, 20) = 16 passes in 60 s; 80 passes left of 100 -> 300 s
    got = protocol.eta(history, epochs=100, window=60)
    assert got["passes_per_s"] == pytest.approx(16 / 60, abs=1e-3)
    assert got["eta_s"] == pytest.approx(80 / (16 / 60), abs=0.1)


def test_eta_is_unknown_until_progress_is_seen():
    assert protocol.eta([(0.0, 0), (30.0, 0)], epochs=10, window=60) == {"passes_per_s": None, "eta_s": None}
    assert protocol.eta([(5.0, 3)], epochs=10, window=60)["eta_s"] is None


def test_passes_done_reads_the_highest_epoch_of_the_csv_log(tmp_path):
    assert protocol.passes_done(tmp_path) == 0  # no log yet
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text(
        "epoch,step,train/loss,val/top1\n0,49,2.1,\n0,63,,31.0\n1,99,1.9,\n2,149,1.7,\n,150,,\n")
    assert protocol.passes_done(tmp_path) == 3


def _fake_run(root: Path, weights: int) -> Path:
    run = root / "ctrgcn_joint"
    (run / "checkpoints").mkdir(parents=True)
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "events").write_bytes(b"x" * 100)
    (run / "config.yaml").write_text("epochs: 325\n")
    (run / "metrics.json").write_text('{"top1": 50.0}')
    for which, epoch in (("best", 3), ("last", 4)):
        torch.save({"state_dict": {"w": torch.full((weights,), float(epoch))}, "epoch": epoch, "global_step": 10,
                    "optimizer_states": [{"momentum": torch.zeros(weights)}], "loops": {}},
                   run / "checkpoints" / f"{which}.ckpt")
    return run


def test_pack_keeps_weights_and_logs_but_not_the_optimizer_or_tensorboard(tmp_path):
    run = _fake_run(tmp_path / "runs", weights=1000)
    console = tmp_path / "runs" / "ctrgcn_joint.log"
    console.write_text("training...\n")
    archive = protocol.pack(run, tmp_path / "out", console)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert {"ctrgcn_joint/config.yaml", "ctrgcn_joint/metrics.json", "ctrgcn_joint/console.log",
            "ctrgcn_joint/checkpoints/best.ckpt", "ctrgcn_joint/checkpoints/last.ckpt"} <= names
    assert not any("tensorboard" in n for n in names)
    best = torch.load(tmp_path / "unpacked" / "ctrgcn_joint" / "checkpoints" / "best.ckpt", weights_only=True)
    assert set(best) == {"state_dict", "epoch", "global_step"}
    assert best["epoch"] == 3 and torch.equal(best["state_dict"]["w"], torch.full((1000,), 3.0))


def test_pack_drops_the_last_weights_of_a_model_too_large_to_bring_back(tmp_path, monkeypatch):
    monkeypatch.setattr(protocol, "MAX_PACKED_BYTES", 6000)  # two 4 kB weight files do not fit, one does
    run = _fake_run(tmp_path / "runs", weights=1000)
    with tarfile.open(protocol.pack(run, tmp_path / "out", tmp_path / "none.log")) as tar:
        names = set(tar.getnames())
    assert "ctrgcn_joint/checkpoints/best.ckpt" in names
    assert "ctrgcn_joint/checkpoints/last.ckpt" not in names
