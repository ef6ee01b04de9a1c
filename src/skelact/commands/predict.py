"""``skelact predict INPUT [--model RUN]``: the top-k actions of a video or a skeleton file by the model shipped
inside the package or by a trained run, with a sliding-window timeline for long inputs
(:func:`skelact.inference.predictor.predict`). The earlier form ``skelact predict RUN INPUT`` (two paths) is the
same as ``--model RUN``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from skelact.errors import ConfigError
from skelact.inference.predictor import format_prediction, predict

NAME = "predict"
HELP = "classify a video or a skeleton file (with the shipped model, or a trained run)"
DESCRIPTION = ("Print the top-k actions of INPUT (a video, or a skeleton file) by the model shipped with skelact (a "
               "CTR-GCN trained on Penn Action's 15 sports and exercise actions, 2D joints) or, with --model RUN "
               "(or the earlier form: predict RUN INPUT), by a run's checkpoint. A skeleton "
               "model sees a video through the pose estimator, with a sliding-window timeline for long inputs, and "
               "--render writes the video with the skeleton and the current action; an RGB run (FstCN, frame CNN) "
               "sees the decoded frames through its own test pipeline.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``skelact predict`` on an :class:`argparse.ArgumentParser`."""
    parser.usage = "%(prog)s [options] INPUT [--model RUN]   (the earlier form: %(prog)s [options] RUN INPUT)"
    parser.add_argument("paths", nargs="+", metavar="INPUT",
                        help="a video or a skeleton file (.skeleton, .json, .mat, .npy); two paths RUN INPUT are the "
                             "same as --model RUN INPUT")
    parser.add_argument("--model", default=None, metavar="RUN",
                        help="a run directory or a .ckpt file inside one (default: the model shipped with skelact)")
    parser.add_argument("--format", dest="fmt", default=None, metavar="FMT",
                        help="skeleton format of INPUT (default: guessed from the file)")
    parser.add_argument("--top-k", type=int, default=5, metavar="K", help="classes to print (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--window", type=int, default=None, metavar="N",
                        help="timeline window in frames (default: the test pipeline's window)")
    parser.add_argument("--stride", type=int, default=None, metavar="S",
                        help="timeline stride in frames (default: half the window)")
    parser.add_argument("--render", default=None, metavar="OUT.mp4",
                        help="write the video with the skeleton and the current top action (video input only)")
    from skelact.engine.runs import CHECKPOINT_NAMES, DEFAULT_CHECKPOINT, TEST_SELECTED_NOTE

    parser.add_argument("--checkpoint", choices=CHECKPOINT_NAMES, default=None,
                        help=f"which checkpoint of RUN; default: {DEFAULT_CHECKPOINT} ({TEST_SELECTED_NOTE})")
    parser.add_argument("--mirrored", action="store_true",
                        help="the video is a mirror image (NTU RGB+D's colour videos are): swap left and right")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="INPUT is a pickled file (NTU .skeleton.npy) you trust: read it with the plain "
                             "unpickler, which runs any code it names (default: only numpy arrays and plain "
                             "containers are admitted)")



def model_and_input(args: argparse.Namespace) -> tuple[str | None, str]:
    """``(run or None for the shipped model, input)`` from ``INPUT [--model RUN]`` or the earlier ``RUN INPUT``."""
    if len(args.paths) > 2:
        raise ConfigError(f"expected INPUT (or RUN INPUT), got {len(args.paths)} paths", field="INPUT")
    if len(args.paths) == 2:
        if args.model is not None:
            raise ConfigError("give the run once: as --model RUN, or as the first of two paths (RUN INPUT)",
                              field="--model")
        return args.paths[0], args.paths[1]
    if args.model is None and args.checkpoint is not None:
        raise ConfigError("chooses a checkpoint of a run given with --model RUN; the shipped model has one",
                          field="--checkpoint")
    return args.model, args.paths[0]


def run(args: argparse.Namespace) -> int:
    model, input_path = model_and_input(args)
    result = predict(model, input_path, fmt=args.fmt, top_k=args.top_k, window=args.window, stride=args.stride,
                     checkpoint=args.checkpoint, mirrored=args.mirrored, render=args.render,
                     trust_pickle=args.trust_pickle)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_prediction(result))
        if args.render:
            print(f"rendered {Path(args.render).resolve()}")
    return 0

