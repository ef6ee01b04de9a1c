"""``skelact export RUN --onnx FILE``: a run's inference network as ONNX, checked against PyTorch with onnxruntime
(:func:`skelact.inference.onnx_export.export_onnx`)."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a run's network to ONNX and check it with onnxruntime"
DESCRIPTION = ("Export the inference network of a run (the backbone, without training-only heads) to ONNX, check it "
               "against PyTorch on real test samples, and write FILE plus a JSON description beside it. Needs pip "
               "install 'skelact[export]'.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    from skelact.engine.runs import CHECKPOINT_NAMES, DEFAULT_CHECKPOINT, TEST_SELECTED_NOTE

    p.add_argument("--checkpoint", choices=CHECKPOINT_NAMES, default=DEFAULT_CHECKPOINT,
                   help=f"default: {DEFAULT_CHECKPOINT} ({TEST_SELECTED_NOTE})")


def run(args: argparse.Namespace) -> int:
    from skelact.inference.onnx_export import export_onnx

    export_onnx(args.run, args.onnx, args.checkpoint)
    return 0
