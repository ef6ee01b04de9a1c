"""``skelact extract-poses VIDEO_OR_DIR... OUT_STORE``: run a pose estimator over videos (or a video store) and
write a skelact store (:func:`skelact.pose.extract.extract_poses`). Resumable; bad videos are listed as rejected."""

from __future__ import annotations

import argparse
import sys

from skelact.commands.arguments import parse_key_value
from skelact.data.store import MANIFEST
from skelact.pose.extract import DEFAULT_MAX_SIDE, extract_poses, work_dir_for

NAME = "extract-poses"
HELP = "run a pose estimator over videos and write a skelact store"
DESCRIPTION = ("Decode videos with PyAV, estimate poses (MediaPipe by default, or a user ONNX model), track people "
               "and write a dataset store. Resumable; bad videos are reported and skipped. Needs pip install "
               "'skelact[pose]'.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``skelact extract-poses``."""
    parser.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR",
                        help="video files and/or folders of videos, or one video store (skelact prepare "
                             "video-folder), whose labels and splits the output keeps")
    parser.add_argument("out", metavar="OUT_STORE", help="the store directory to write")
    parser.add_argument("--estimator", default="mediapipe", help="pose estimator: mediapipe (default) or onnx")
    parser.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                        help="estimator option, e.g. -o model_complexity=1, -o model=pose.onnx (repeatable)")
    parser.add_argument("--layout", default="coco17",
                        help="layout of the store: coco17 (default), penn13, ntu25, mediapipe33 or a YAML file")
    parser.add_argument("--labels", metavar="CSV", help="CSV with columns name,label")
    parser.add_argument("--labels-from-folders", action="store_true",
                        help="the folder directly under VIDEO_OR_DIR names each video's class")
    parser.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    parser.add_argument("--max-persons", type=int, default=1, help="persons kept per video (default 1)")
    parser.add_argument("--criterion", default="area", choices=("area", "motion", "length"),
                        help="how the main actors are chosen (default area)")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE or 0,
                        help="scale frames down to this longer side before estimation (default 0: full size)")
    parser.add_argument("--mirrored", action="store_true",
                        help="the videos are mirror images (e.g. NTU RGB+D): swap left and right back")
    parser.add_argument("--no-resume", action="store_true",
                        help="ignore videos finished by an interrupted earlier run")
    parser.add_argument("--keep-work", action="store_true", help="keep the per-video cache after success")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")



def run(args: argparse.Namespace) -> int:
    """Run ``skelact extract-poses`` from parsed arguments; returns the exit status (130 when interrupted)."""
    try:
        report = extract_poses(args.inputs, args.out, estimator=args.estimator, layout=args.layout,
                               labels_csv=args.labels, labels_from_folders=args.labels_from_folders,
                               workers=args.workers, resume=not args.no_resume, overwrite=args.overwrite,
                               max_persons=args.max_persons, criterion=args.criterion,
                               max_side=args.max_side or None, mirrored=args.mirrored,
                               estimator_options=dict(parse_key_value(o) for o in args.option or []), progress=not args.quiet,
                               keep_work=args.keep_work)
    except KeyboardInterrupt:
        print(f"skelact: interrupted; finished videos are kept in {work_dir_for(args.out)}: run the same command "
              "again to resume", file=sys.stderr)
        return 130
    print(report.summary())
    if report.rejected:
        print(f"skelact: warning: {len(report.rejected)} of {report.num_videos} video(s) were rejected and left "
              f"out (listed above and under 'rejected' in {report.out / MANIFEST})", file=sys.stderr)
    return 0

