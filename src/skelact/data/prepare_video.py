"""Videos alone into a keypoint-free store: what ``skelact prepare`` does for a reader of kind ``video``.

The skeleton path (:mod:`skelact.data.prepare`) validates keypoints; here each item is probed instead (frame
count, rate, size; see :mod:`skelact.data.sources.video_folder`), in worker processes and in the source's order.
The guarantees are the same: a video that fails is listed with its reason in the report and in the manifest's
``rejected``, never silently dropped; nothing is written when every video fails; the store is built under a
temporary name beside OUT and renamed into place when complete; one writer per OUT at a time (a lock beside it);
a full disk is one line naming the place.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.store_target import (PrepareReport, check_out, clean_leftovers, store_lock, store_write_error,
                                       worker_count)
from skelact.data.sources import open_source
from skelact.data.sources.base import Source
from skelact.data.sources.video_folder import is_ucf_list
from skelact.data.splits import read_split_file, resolve_named_splits
from skelact.data.store import StoreWriter, commit_directory, temporary_sibling
from skelact.data.video_sample import VideoSample
from skelact.errors import DataError, SkelactError

_worker_source: dict[str, Source] = {}


def _init_worker(source: Source, in_process: bool = False) -> None:
    if not in_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool
    _worker_source["source"] = source


def _probe_item(item: Any) -> tuple[str, VideoSample | None, str | None]:
    """Probe one video in a worker: (file description, sample or None, reason it was rejected or None)."""
    source = _worker_source["source"]
    where = source.describe(item)
    try:
        sample = source.read(item)
    except SkelactError as e:
        text = str(e)
        return where, None, text[len(where) + 2:] if text.startswith(f"{where}: ") else text
    except Exception as e:  # noqa: BLE001 - one broken file must not end a run over 13k videos
        return where, None, f"{type(e).__name__}: {e}"
    return where, sample, None


def _results(source: Source, items: list[Any], workers: int) -> Iterator[tuple[str, VideoSample | None, str | None]]:
    if workers == 1:
        _init_worker(source, in_process=True)
        yield from map(_probe_item, items)
        return
    with multiprocessing.get_context().Pool(workers, initializer=_init_worker, initargs=(source,)) as pool:
        # probing is milliseconds per file: chunks keep the pool's overhead below the work
        yield from pool.imap(_probe_item, items, chunksize=max(1, min(16, len(items) // (workers * 4))))


def prepare_videos(fmt: str, src: str | PathLike, out: str | PathLike, workers: int | None = None,
                   overwrite: bool = False, split_file: str | PathLike | None = None, progress: bool = True,
                   wait_for_lock: bool = False, lock_held: bool = False, **source_options: Any) -> PrepareReport:
    """Probe every video a ``fmt`` source lists under ``src`` and write the keypoint-free store ``out``.

    ``split_file``: a UCF101-style ``trainlistNN.txt`` / ``testlistNN.txt`` (handed to the reader), or a skelact
    split file (:func:`skelact.data.splits.read_split_file`; an unknown sample name in it is an error).
    """
    started = time.perf_counter()
    out = Path(out)
    check_out(out, overwrite)
    user_splits = None
    if split_file is not None:
        if is_ucf_list(split_file):
            source_options = {**source_options, "split_file": split_file}
        else:
            user_splits = read_split_file(split_file)
    source = open_source(fmt, src, **source_options)
    items = list(source.items())
    if not items:
        raise DataError(f"no {fmt} videos found", src)
    n_workers = worker_count(workers, len(items))
    class_names = list(source.class_names() or [])
    video_root = source.root
    warnings: list[str] = []
    rejected: list[dict[str, str]] = []
    total_frames = 0
    tmp = temporary_sibling(out)
    writer: StoreWriter | None = None
    with store_lock(out, wait=wait_for_lock, held=lock_held):
        clean_leftovers(out)  # what a killed earlier writer left beside OUT (safe: the lock is ours)
        try:
            from tqdm.auto import tqdm

            writer = StoreWriter(tmp, None, video_root=video_root)
            with tqdm(total=len(items), unit="video", desc=f"prepare {fmt}", disable=not progress,
                      dynamic_ncols=True) as bar:
                for where, sample, reason in _results(source, items, n_workers):
                    bar.update(1)
                    if sample is not None:
                        try:
                            writer.add_video(sample, file=where)
                            total_frames += sample.video.frames
                            continue
                        except DataError as e:
                            reason = str(e)
                    rejected.append({"file": where, "reason": reason or "unknown error"})
                    bar.set_postfix(rejected=len(rejected), refresh=False)
            if not len(writer):
                first = rejected[0]
                raise DataError(f"all {len(items)} video(s) failed; first: {first['file']}: {first['reason']}",
                                src)
            splits, origin = _splits(source, user_splits, split_file, writer, warnings)
            writer.close(class_names=class_names, splits=splits,
                         source={"format": fmt, "path": str(Path(src).resolve()),
                                 "options": {k: str(v) for k, v in source_options.items()}},
                         rejected=rejected, extra={"split_sources": origin})
            commit_directory(tmp, out, overwrite=overwrite)
        except BaseException as error:
            if writer is not None:
                writer.abort()
            said = store_write_error(error, out)
            if said is not None:
                raise said from None
            raise
    return PrepareReport(out=out, format=fmt, source=str(src), num_items=len(items), num_samples=len(writer),
                         total_frames=total_frames, seconds=time.perf_counter() - started, workers=n_workers,
                         rejected=rejected,
                         splits={s: {k: int(v.size) for k, v in sub.items()} for s, sub in splits.items()},
                         warnings=warnings)


def _splits(source: Source, user_splits: dict[str, dict[str, list[str]]] | None, split_file: Any,
            writer: StoreWriter, warnings: list[str]) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, str]]:
    """The source's own splits (its list's split column, a UCF101 pair), then the user's file (which wins)."""
    splits: dict[str, dict[str, np.ndarray]] = {}
    origin: dict[str, str] = {}
    named = source.splits_from_file() if hasattr(source, "splits_from_file") else {}
    if named:
        resolved, unknown = resolve_named_splits(named, writer.name_to_index, source.root, strict=False)
        if unknown:
            warnings.append(f"{len(unknown)} listed video(s) are not in the store (rejected or absent), e.g. "
                            f"{unknown[0]!r}; they were left out of the split")
        for name, subsets in resolved.items():
            splits[name], origin[name] = subsets, "source"
    if user_splits is not None:
        resolved, _ = resolve_named_splits(user_splits, writer.name_to_index, split_file, strict=True)
        for name, subsets in resolved.items():
            splits[name], origin[name] = subsets, f"file:{Path(split_file).name}"
    return splits, origin
