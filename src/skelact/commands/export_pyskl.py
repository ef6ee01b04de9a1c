"""``skelact export-pyskl STORE OUT.pkl``: a store as a pyskl / mmaction2 annotation pickle."""

from __future__ import annotations

import argparse

NAME = "export-pyskl"
HELP = "write a store as a pyskl / mmaction2 annotation pickle"
DESCRIPTION = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", metavar="STORE")
    p.add_argument("out", metavar="OUT.pkl")
    p.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
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

