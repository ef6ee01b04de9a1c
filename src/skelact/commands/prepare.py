"""``skelact prepare FORMAT SRC OUT``: convert a dataset into a skelact store (:func:`skelact.data.prepare.prepare`).

Exits 0 when some input files were rejected but at least one sample was written: it lists them and prints a
``skelact: warning:`` line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from skelact.commands.arguments import parse_key_value
from skelact.errors import ConfigError

NAME = "prepare"
HELP = "convert a dataset into a skelact store"
DESCRIPTION = ("Read every sample of a dataset in FORMAT under SRC and write the store OUT. `skelact formats` lists "
               "the formats; `skelact formats FORMAT` describes one (files, columns, shapes, units, missing joints).")
# prepare builds the store under a temporary name and renames it at the end
INTERRUPTED = "interrupted; nothing was written"
#: keyword names of prepare() itself, which --option must not shadow
PREPARE_PARAMETERS = frozenset({"fmt", "src", "out", "workers", "overwrite", "split_file", "progress", "layout",
                                "max_persons", "max_frames", "wait_for_lock"})


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", metavar="FORMAT", help="input format (ntu, nw-ucla, penn-action, pyskl, video-folder, ...)")
    p.add_argument("src", metavar="SRC", help="the dataset's folder or file")
    p.add_argument("out", metavar="OUT", help="the store directory to create")
    p.add_argument("--workers", type=int, default=None, help="parsing processes (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it is an existing store")
    p.add_argument("--split-file", default=None, metavar="F",
                   help="user splits: JSON {split: {subset: [names]}} or CSV name,split,subset; for video-folder "
                        "also UCF101's trainlistNN.txt / testlistNN.txt")
    p.add_argument("--layout", default=None, metavar="NAME_OR_YAML", help="override the reader's joint layout")
    p.add_argument("--max-persons", type=int, default=None, metavar="N", help="keep at most N persons per sample")
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="reject samples longer than N frames, before reading them whole (default 100000)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a reader option (repeatable)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="the pickled input (pyskl .pkl, NTU .skeleton.npy) comes from a source you trust: read it "
                        "with the plain unpickler, which runs any code the file names (default: only numpy arrays "
                        "and plain containers are admitted; reader option trust_pickle=true in a config)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from skelact.data.prepare import prepare

    options = dict(parse_key_value(o) for o in args.option or [])
    taken = sorted(set(options) & PREPARE_PARAMETERS)
    if taken:
        flag = "--" + taken[0].replace("_", "-")
        raise ConfigError(f"{taken[0]!r} is a prepare setting, not a reader option; use {flag}", field="--option")
    if args.trust_pickle:
        options["trust_pickle"] = True
    report = prepare(args.format, args.src, args.out, workers=args.workers, overwrite=args.overwrite,
                     split_file=args.split_file, progress=not args.quiet, layout=args.layout,
                     max_persons=args.max_persons, max_frames=args.max_frames, **options)
    print(report.summary())
    if report.rejected:
        print(f"skelact: warning: {len(report.rejected)} of {report.num_items} input item(s) were rejected and "
              f"left out (listed above and under 'rejected' in {report.out}/manifest.json)", file=sys.stderr)
    return 0
