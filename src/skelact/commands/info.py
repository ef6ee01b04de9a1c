"""``skelact info STORE``: a store's summary (samples, classes, layout, frames, splits, source), or ``--json``."""

from __future__ import annotations

import argparse
import json

NAME = "info"
HELP = "summarise a store"
DESCRIPTION = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of text")


def format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.2f} %" if whole else "0 %"


def run(args: argparse.Namespace) -> int:
    from skelact.data.store import SkeletonStore

    info = SkeletonStore(args.store).info()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    fr = info["frames"]
    src = info.get("source") or {}
    lines = [
        f"store     {info['path']} ({format_bytes(info['bytes'])})",
        f"samples   {info['num_samples']}   classes {info['num_classes']}"
        + ("   persons per sample " + ", ".join(f"{k}: {v}" for k, v in info["persons"].items())
           if info["layout"] else ""),
        f"layout    {info['layout']} ({info['num_joints']} joints, {info['coords']} coords)" if info["layout"] else
        f"videos    {info['num_videos']} under {info['video_root']} (no keypoints: skelact extract-poses adds them)",
        f"frames    min {fr['min']}, mean {fr['mean']:.1f}, max {fr['max']} ({fr['total']} in all)",
    ]
    gaps = info["missing"]
    if gaps is not None:
        lines.append(f"missing   {gaps['missing_joints']} of {gaps['joint_slots']} joints "
                     f"({percent(gaps['missing_joints'], gaps['joint_slots'])}, all coordinates 0); "
                     f"{gaps['empty_frames']} of {gaps['frames']} frames empty "
                     f"({percent(gaps['empty_frames'], gaps['frames'])}, in {gaps['samples_with_empty_frames']} "
                     "samples)")
    if info["layout"] and info["num_videos"]:
        lines.append(f"videos    {info['num_videos']} under {info['video_root']}, aligned with the keypoints")
    for split, subsets in info["splits"].items():
        lines.append(f"split     {split}: " + ", ".join(f"{k} {v}" for k, v in subsets.items()))
    if not info["splits"]:
        lines.append("split     none recorded")
    lines.append(f"source    {src.get('format')} {src.get('path')}  (created {info.get('created')}, "
                 f"skelact {info.get('skelact_version')})")
    lines.append(f"rejected  {info['rejected']} input item(s)")
    names = info["class_names"]
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all; --json lists them)" if len(names) > 12 else "")
    lines.append("classes   " + shown)
    print("\n".join(lines))
    return 0

