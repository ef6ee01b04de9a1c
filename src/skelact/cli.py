"""The ``skelact`` command: parses arguments, builds the objects, calls the library. No logic lives here.

Every :class:`~skelact.errors.SkelactError` is printed as one line ``skelact: error: ...`` and exits with status 2
(argparse's own usage errors use the same status). ``skelact prepare`` exits 0 when some input files were rejected
but at least one sample was written: it lists them and prints a ``skelact: warning:`` line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from skelact import __version__
from skelact.errors import ConfigError, SkelactError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
#: keyword names of prepare() itself, which --option must not shadow
_PREPARE_PARAMETERS = frozenset({"fmt", "src", "out", "workers", "overwrite", "split_file", "progress", "layout",
                                 "max_persons"})


def _parse_option(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected key=value, got {text!r}", field="--option")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed


def _cmd_prepare(args: argparse.Namespace) -> int:
    from skelact.data.prepare import prepare

    options = dict(_parse_option(o) for o in args.option or [])
    taken = sorted(set(options) & _PREPARE_PARAMETERS)
    if taken:
        flag = "--" + taken[0].replace("_", "-")
        raise ConfigError(f"{taken[0]!r} is a prepare setting, not a reader option; use {flag}", field="--option")
    report = prepare(args.format, args.src, args.out, workers=args.workers, overwrite=args.overwrite,
                     split_file=args.split_file, progress=not args.quiet, layout=args.layout,
                     max_persons=args.max_persons, **options)
    print(report.summary())
    if report.rejected:
        print(f"skelact: warning: {len(report.rejected)} of {report.num_items} input item(s) were rejected and "
              f"left out (listed above and under 'rejected' in {report.out}/manifest.json)", file=sys.stderr)
    return 0


def _format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _cmd_info(args: argparse.Namespace) -> int:
    from skelact.data.store import SkeletonStore

    info = SkeletonStore(args.store).info()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    fr = info["frames"]
    src = info.get("source") or {}
    lines = [
        f"store     {info['path']} ({_format_bytes(info['bytes'])})",
        f"samples   {info['num_samples']}   classes {info['num_classes']}   persons per sample "
        + ", ".join(f"{k}: {v}" for k, v in info["persons"].items()),
        f"layout    {info['layout']} ({info['num_joints']} joints, {info['coords']} coords)",
        f"frames    min {fr['min']}, mean {fr['mean']:.1f}, max {fr['max']} ({fr['total']} in all)",
    ]
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


def _cmd_layouts(args: argparse.Namespace) -> int:
    from skelact.skeleton.layout import available_layouts, get_layout

    for name in available_layouts():
        layout = get_layout(name)
        desc = layout.description.strip().splitlines()[0] if layout.description.strip() else ""
        print(f"{name:<14} {layout.num_joints:>3} joints  {desc}")
    return 0


def _cmd_export_pyskl(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skelact.data.sources.pyskl import write_pyskl_pickle
    from skelact.data.store import SkeletonStore
    from skelact.errors import StoreError

    store = SkeletonStore(args.store)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise StoreError("already exists; pass --overwrite to replace it", out)
    names = store.names
    splits = {split: {subset: [names[i] for i in idx] for subset, idx in subsets.items()}
              for split, subsets in store.splits.items()}
    write_pyskl_pickle(out, iter(store), splits)
    print(f"wrote {len(store)} samples and {len(splits)} split(s) to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skelact", description="Human action recognition from skeletons.")
    parser.add_argument("--version", action="version", version=f"skelact {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("prepare", help="convert a dataset into a skelact store",
                       description="Read every sample of a dataset in FORMAT under SRC and write the store OUT.")
    p.add_argument("format", metavar="FORMAT", help="input format (ntu, nw-ucla, penn-action, pyskl, ...)")
    p.add_argument("src", metavar="SRC", help="the dataset's folder or file")
    p.add_argument("out", metavar="OUT", help="the store directory to create")
    p.add_argument("--workers", type=int, default=None, help="parsing processes (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it is an existing store")
    p.add_argument("--split-file", default=None, metavar="F",
                   help="user splits: JSON {split: {subset: [names]}} or CSV name,split,subset")
    p.add_argument("--layout", default=None, metavar="NAME_OR_YAML", help="override the reader's joint layout")
    p.add_argument("--max-persons", type=int, default=None, metavar="N", help="keep at most N persons per sample")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a reader option (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("info", help="summarise a store")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("layouts", help="list the built-in joint layouts")
    p.set_defaults(func=_cmd_layouts)

    p = sub.add_parser("export-pyskl", help="write a store as a pyskl / mmaction2 annotation pickle")
    p.add_argument("store", metavar="STORE")
    p.add_argument("out", metavar="OUT.pkl")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_export_pyskl)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skelact`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SkelactError as e:
        print(f"skelact: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("skelact: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # output piped into `head` and closed early: not an error; keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
