"""Rebuild the model shipped inside skelact (what ``skelact predict INPUT`` uses without ``--model``), from training
to the package file, in one command:

    SKELACT_DATA=../shared/data OMP_NUM_THREADS=1 python tools/ship_demo_model.py [--run-dir DIR]
    SKELACT_DATA=../shared/data OMP_NUM_THREADS=1 python tools/ship_demo_model.py --run RUN   # already trained

1. trains the Penn Action fast preset, ``configs/penn_action/ctrgcn_joint_fast.yaml`` (``skelact train``; skipped
   with ``--run``), which also tests its last checkpoint in float32 (the run's ``metrics.json``);
2. packs the run's last checkpoint into ``src/skelact/inference/shipped/`` (float16 weights and the run's
   ``config.yaml``: :func:`skelact.inference.shipped_model.pack_run`, which refuses a ``weights.pt`` over 3 MB and
   then writes nothing);
3. loads the packed files back the way ``predict`` does (:meth:`skelact.inference.predictor.Predictor.shipped`)
   and scores Penn Action's official test split with them.

Prints the file size and the float32 and float16 top-1, top-5 and mean class accuracy, and exits 1 when the float16
top-1 is below the 97.5 % that ``tests/test_shipped_model.py`` holds the shipped weights to (the files are then
already written: ``git checkout`` the old ones to undo). Commit the two files and update docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "penn_action" / "ctrgcn_joint_fast.yaml"
OUT = REPO / "src" / "skelact" / "inference" / "shipped"
#: what the test suite requires of the shipped weights on Penn Action's official test split
MIN_TOP1 = 97.5
DESCRIPTION = "CTR-GCN (half width) trained on Penn Action: 15 sports and exercise actions, 2D joints"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=None, metavar="RUN", help="pack this trained run instead of training one")
    parser.add_argument("--run-dir", default=None, metavar="DIR", help="where to train (default: runs/<time>)")
    parser.add_argument("--out", default=str(OUT), metavar="DIR", help=f"where to pack (default: {OUT})")
    args = parser.parse_args(argv)

    from skelact.cli import main as skelact
    from skelact.commands.report_lines import metrics_line
    from skelact.evaluation.metrics import classification_metrics
    from skelact.inference.predictor import Predictor
    from skelact.inference.shipped_model import pack_run

    run = args.run
    started = time.time()
    if run is None:
        run = args.run_dir or str(REPO / "runs" / f"ship_demo_{time.strftime('%Y%m%d_%H%M%S')}")
        if skelact(["train", str(CONFIG), "--run-dir", run]) != 0:
            return 1
        print(f"trained in {time.time() - started:.0f} s")
    metrics = json.loads((Path(run) / "metrics.json").read_text(encoding="utf-8"))
    packed = pack_run(run, args.out, description=DESCRIPTION)
    print(f"packed {packed.weights_path}: {packed.weights_bytes / 1e6:.3f} MB ({packed.num_parameters:,} parameters, "
          f"float16), with {packed.config_path.name}")
    predictor = Predictor.shipped(args.out)
    probs, labels = predictor.test_subset()
    shipped = classification_metrics(probs, labels)
    top1 = shipped["top1"]
    print(f"test subset, {labels.size} clips:")
    print(f"  float32 (the run's test)          {metrics_line(metrics)}")
    print(f"  float16 (packed, as predict loads) {metrics_line(shipped)}")
    if top1 < MIN_TOP1:
        print(f"below the {MIN_TOP1} % the test suite requires: do not commit these files", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
