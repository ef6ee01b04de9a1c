"""Run CTR-GCN's full NW-UCLA protocol (325 passes) for several streams at once on one GPU, inside a time budget.

The issue-3 reproduction: CTR-GCN's four streams (joint, bone, joint motion, bone motion), their 4-stream ensemble
(weights 0.6 0.6 0.4 0.4, CTR-GCN's ``ensemble.py``) and ST-GCN on the joint stream, each with the config's own
schedule, unchanged. At NW-UCLA size (batch 16) one training process leaves most of a large GPU idle, so the runs
go side by side, each its own ``skelact train`` process.

A GPU lent for a fixed time may not fit them all. The runs are given in priority order; every ``--check`` seconds
the progress of each (passes done, from its ``csv/metrics.csv``) is read and the passes still to go are divided
by the rate they went at since the last check. While the runs still going would, at that rate, end after the
deadline, the lowest-priority one is stopped with Ctrl-C (its last epoch checkpoint stays: ``skelact train
--resume`` continues it), which frees GPU time for the rest. A run is never started again here, and a run that was
stopped is reported as such, not as a result.

    python benchmarks/nw_ucla_protocol.py --out runs/nw_ucla_gpu --deadline 540 \
        [--runs ctrgcn_joint,ctrgcn_bone,ctrgcn_joint_motion,ctrgcn_bone_motion,stgcn_joint] \
        [--pack DIR] [key=value ...]

Overrides (``key=value``) go to every run (e.g. ``trainer.float32_matmul_precision=high``). Prints one JSON line
per check and a summary; writes ``summary.json`` into ``--out``; ``--pack DIR`` also writes one
``<run>.tar.gz`` per run there (config, logs, metrics, scores, report and the best/last weights without the
optimizer state, which ``skelact test`` reads).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = ("ctrgcn_joint", "ctrgcn_bone", "ctrgcn_joint_motion", "ctrgcn_bone_motion", "stgcn_joint")
MAX_PACKED_BYTES = 15 * 2**20
ENSEMBLE = (("ctrgcn_joint", 0.6), ("ctrgcn_bone", 0.6), ("ctrgcn_joint_motion", 0.4), ("ctrgcn_bone_motion", 0.4))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the run directories and summary.json")
    p.add_argument("--runs", default=",".join(DEFAULT_RUNS),
                   help="configs/nw_ucla/<name>.yaml names, highest priority first")
    p.add_argument("--deadline", type=float, required=True, help="seconds from now by which the runs must end")
    p.add_argument("--check", type=float, default=30.0, help="seconds between progress checks")
    p.add_argument("--window", type=float, default=60.0, help="seconds of progress the rate is measured over")
    p.add_argument("--grace", type=float, default=60.0,
                   help="no run is stopped in the first GRACE seconds (start-up, cuDNN autotuning)")
    p.add_argument("--pack", default=None, help="write <run>.tar.gz per run into this folder")
    p.add_argument("--skelact", default=None, help="the skelact command (default: python -m skelact)")
    p.add_argument("overrides", nargs="*", help="key=value for every run")
    args = p.parse_args(argv)
    args.runs = [r for r in args.runs.split(",") if r]
    for name in args.runs:
        if not (REPO / "configs" / "nw_ucla" / f"{name}.yaml").is_file():
            p.error(f"--runs: no configs/nw_ucla/{name}.yaml")
    return args


def passes_done(run_dir: Path) -> int:
    """Epochs (passes) finished, read from the run's CSV log (Lightning writes it every 100 steps)."""
    path = run_dir / "csv" / "metrics.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return 0
    epochs = [int(float(r["epoch"])) for r in csv.DictReader(io.StringIO(text)) if r.get("epoch")]
    return max(epochs, default=-1) + 1 if epochs else 0


def config_epochs(name: str, overrides: list[str]) -> int:
    for o in overrides:
        if o.startswith("epochs="):
            return int(o.split("=", 1)[1])
    from skelact.config import load_config

    return int(load_config(REPO / "configs" / "nw_ucla" / f"{name}.yaml").cfg.epochs)


def eta(history: list[tuple[float, int]], epochs: int, window: float) -> dict:
    """Passes per second over the last ``window`` seconds of checks (at least two checks that saw progress) and
    the seconds left at that rate; ``None`` while no progress has been measured."""
    now, done = history[-1]
    older = [(t, p) for t, p in history if now - t >= window] or history[:1]
    t0, p0 = older[-1]
    if done <= p0 or now <= t0:
        return {"passes_per_s": None, "eta_s": None}
    rate = (done - p0) / (now - t0)
    return {"passes_per_s": round(rate, 3), "eta_s": round((epochs - done) / rate, 1)}


def strip_checkpoint(src: Path, dst: Path) -> None:
    """A checkpoint ``skelact test`` can read (weights, epoch, step) without the optimizer state."""
    import torch

    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    keep = {k: ckpt[k] for k in ("state_dict", "epoch", "global_step", "pytorch-lightning_version") if k in ckpt}
    torch.save(keep, dst)


def pack(run_dir: Path, dest: Path, console_log: Path) -> Path:
    staged = run_dir / "packed_checkpoints"
    staged.mkdir(exist_ok=True)
    for which in ("best", "last"):
        ckpt = run_dir / "checkpoints" / f"{which}.ckpt"
        if ckpt.is_file():
            strip_checkpoint(ckpt, staged / f"{which}.ckpt")
    # Keep each archive under MAX_PACKED_BYTES (a transfer limit of the machine this was written for): a wide model
    # (ST-GCN, 3.1 M parameters) keeps only its best weights.
    if sum(f.stat().st_size for f in staged.iterdir()) > MAX_PACKED_BYTES and (staged / "best.ckpt").is_file():
        (staged / "last.ckpt").unlink(missing_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{run_dir.name}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for item in sorted(run_dir.iterdir()):
            if item.name in ("checkpoints", "tensorboard"):
                continue
            arcname = f"{run_dir.name}/checkpoints" if item.name == "packed_checkpoints" else f"{run_dir.name}/{item.name}"
            tar.add(item, arcname=arcname)
        if console_log.is_file():
            tar.add(console_log, arcname=f"{run_dir.name}/console.log")
    return target


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    end_by = started + args.deadline
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    skelact = args.skelact.split() if args.skelact else [sys.executable, "-m", "skelact"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    # Prepare the store once (it is cached), before the runs race to do it.
    sys.path.insert(0, str(REPO / "src"))
    from skelact.config import load_config
    from skelact.engine.build import open_dataset_store

    store = open_dataset_store(load_config(REPO / "configs" / "nw_ucla" / f"{args.runs[0]}.yaml"), progress=False)
    print(json.dumps({"event": "store", "path": str(store.path), "t": round(time.monotonic() - started, 1)}),
          flush=True)

    runs = {}
    for name in args.runs:
        run_dir = out / name
        log = open(out / f"{name}.log", "w", encoding="utf-8")
        cmd = [*skelact, "train", str(REPO / "configs" / "nw_ucla" / f"{name}.yaml"), "--run-dir", str(run_dir),
               "trainer.progress_bar=false", *args.overrides]
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        runs[name] = dict(proc=proc, dir=run_dir, log=log, epochs=config_epochs(name, args.overrides),
                          started=time.monotonic(), status="running", cmd=" ".join(cmd[len(skelact):]))
        print(json.dumps({"event": "start", "run": name, "pid": proc.pid, "cmd": runs[name]["cmd"]}), flush=True)

    last_check = time.monotonic()
    history = {n: [] for n in runs}  # (time, passes) at each check
    while any(r["status"] == "running" for r in runs.values()):
        time.sleep(2.0)
        now = time.monotonic()
        for name, r in runs.items():
            if r["status"] == "running" and r["proc"].poll() is not None:
                r["status"] = "finished" if r["proc"].returncode == 0 else f"failed (exit {r['proc'].returncode})"
                r["wall_s"] = round(now - r["started"], 1)
                print(json.dumps({"event": "end", "run": name, "status": r["status"], "wall_s": r["wall_s"]}),
                      flush=True)
                if r["proc"].returncode != 0:
                    r["log"].flush()
                    print("".join((out / f"{name}.log").read_text(errors="replace").splitlines(True)[-15:]),
                          flush=True)
        if now >= end_by:
            late = {n: r for n, r in runs.items() if r["status"] == "running"}
            for r in late.values():  # all at once: each takes a few seconds to write its log and exit
                r["proc"].send_signal(signal.SIGINT)
            for name, r in late.items():
                stop(name, r, "deadline reached", signalled=True)
            continue
        if now - last_check < args.check:
            continue
        last_check = now
        going = [n for n in runs if runs[n]["status"] == "running"]
        report = {}
        for name in going:
            done = passes_done(runs[name]["dir"])
            history[name].append((now, done))
            report[name] = dict(passes=done, of=runs[name]["epochs"], **eta(history[name], runs[name]["epochs"],
                                                                           args.window))
        print(json.dumps({"event": "check", "t": round(now - started, 1), "runs": report}), flush=True)
        if now - started < args.grace or len(going) < 2:
            continue
        # Stop the lowest-priority run while a run still going would, at its measured rate, end after the deadline
        # (a run with no measured rate yet is not judged).
        late = [n for n in going if report[n]["eta_s"] is not None and now + report[n]["eta_s"] > end_by]
        if late:
            stop(going[-1], runs[going[-1]], f"{', '.join(late)} would not finish before the deadline at the "
                                             "measured rate")
            for name in going[:-1]:  # their rate changes now: measure it afresh
                history[name] = history[name][-1:]

    for r in runs.values():
        r["log"].close()
    summary = {"deadline_s": args.deadline, "wall_s": round(time.monotonic() - started, 1),
               "overrides": args.overrides, "runs": {}}
    for name, r in runs.items():
        entry = {"status": r["status"], "wall_s": r.get("wall_s"), "passes": passes_done(r["dir"]),
                 "of": r["epochs"], "cmd": r["cmd"]}
        metrics = r["dir"] / "metrics.json"
        if r["status"] == "finished" and metrics.is_file():
            entry["metrics"] = json.loads(metrics.read_text())
        summary["runs"][name] = entry
    finished = {n for n, r in runs.items() if r["status"] == "finished"}
    if all(n in finished for n, _ in ENSEMBLE):
        ens = out / "ensemble_4stream"
        cmd = [*skelact, "ensemble", *[str(out / n) for n, _ in ENSEMBLE], "--weights",
               *[str(w) for _, w in ENSEMBLE], "--out", str(ens)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        print(done.stdout + done.stderr, flush=True)
        if (ens / "metrics.json").is_file():
            summary["ensemble_4stream"] = json.loads((ens / "metrics.json").read_text())
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)
    if args.pack:
        dest = Path(args.pack)
        dest.mkdir(parents=True, exist_ok=True)
        for name, r in runs.items():
            if r["dir"].is_dir():
                print(json.dumps({"event": "packed", "file": str(pack(r["dir"], dest, out / f"{name}.log"))}),
                      flush=True)
    return 0


def stop(name: str, run: dict, why: str, signalled: bool = False) -> None:
    if not signalled:
        run["proc"].send_signal(signal.SIGINT)
    try:
        run["proc"].wait(timeout=60)
    except subprocess.TimeoutExpired:
        run["proc"].kill()
        run["proc"].wait()
    run["status"] = f"stopped ({why})"
    run["wall_s"] = round(time.monotonic() - run["started"], 1)
    print(json.dumps({"event": "stop", "run": name, "why": why, "passes": passes_done(run["dir"])}), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
