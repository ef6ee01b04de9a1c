"""Convert a foreign dataset into a store: ``skelact prepare FORMAT SRC OUT``.

Items are parsed in parallel worker processes (chunks of items, results taken in submission order through a
bounded window, so sample order is the source's ``items()`` order whatever the number of workers) and streamed
into a :class:`~skelact.data.store.StoreWriter` as they arrive; no list of records is ever built and at most a
window of records is in flight, so memory stays flat for NTU-120's 114k files. An item that fails
(:class:`~skelact.errors.DataError`, or any other exception from a reader, whose type is then named) is skipped
and reported, never silently: the report lists ``{file, reason}`` and the store's manifest keeps the list as
``rejected``. If every item fails, nothing is written and the first reason is raised. The store is built under a
temporary name beside OUT and renamed into place only when complete, so Ctrl-C or a crash leaves no partial OUT.

Hostile input and faults (issue 26). An item whose file name is not valid UTF-8 is rejected (shown with its bad
bytes escaped, ``S001\\xff.skeleton``) rather than breaking the manifest; a sample longer than ``max_frames``
(default :data:`~skelact.data.sources.base.DEFAULT_MAX_FRAMES`) is rejected, by the readers before they allocate
it, and a ``MemoryError`` while reading or storing one item rejects that item. One process writes a given OUT at a
time: the lock file ``.OUT.lock`` beside it (:func:`skelact.locking.lock_beside`) is held from start to finish, so
a second ``prepare`` of the same OUT fails at once naming the holder (or, with ``wait_for_lock``, as the store
cache does, waits for it and then finds OUT written). Under that lock, the ``.OUT.partial-*`` folders of a killed
earlier run are deleted, and a previous store it had set aside (``.OUT.old-*``) is put back or deleted. A full disk
removes the partial store and raises :class:`~skelact.errors.DiskFullError` naming the path and the space needed;
an existing OUT is untouched.
"""

from __future__ import annotations

import inspect
import multiprocessing
import multiprocessing.pool
import os
import signal
import time
from collections import deque
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.sequence import SkeletonSequence
from skelact.data.sources import open_source, source_class
from skelact.data.sources.base import DEFAULT_MAX_FRAMES, Source, is_printable, max_frames_option, printable
from skelact.data.splits import (SplitBuilder, read_split_file, resolve_named_splits, short_names)
from skelact.data.store import StoreWriter, commit_directory, temporary_sibling
from skelact.data.store_target import (PrepareReport, check_out, clean_leftovers, store_lock, store_write_error,
                                       worker_count)
from skelact.errors import ConfigError, DataError, SkelactError, StoreError
from skelact.skeleton.layout import Layout, get_layout






# -- worker side ---------------------------------------------------------------------------------------------------

_worker_state: dict[str, Any] = {}


def _init_worker(source: Source, num_joints: int, max_persons: int | None, max_frames: int = DEFAULT_MAX_FRAMES,
                 render_into: Path | None = None, in_process: bool = False) -> None:
    if not in_process:
        # Ctrl-C goes to the whole process group; the parent handles it and terminates the pool.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_state.update(source=source, num_joints=num_joints, max_persons=max_persons, max_frames=max_frames,
                         render_into=render_into)


def _read_item(item: Any) -> tuple[str, Any, str | None]:
    """Parse one item in a worker: (file description, record or None, reason it was rejected or None).

    For a source that renders videos (``source.render(item, store_dir)``, e.g. ``penn-action-rendered``) the record
    is the pair (sequence, :class:`~skelact.data.video_sample.VideoRef`) and the video is already in the store."""
    source: Source = _worker_state["source"]
    try:
        where = source.describe(item)
    except Exception:  # a describe() bug must not hide the item
        where = str(item)
    if not is_printable(where):
        # The name could be read, but not written into samples.jsonl / manifest.json (UTF-8) nor printed: Python
        # holds the undecodable bytes as surrogates, on which every later encode() fails. Said once, here.
        what = "file" if not is_printable(os.path.basename(where)) else "folder"
        return printable(where), None, f"{what} name is not valid UTF-8 (rename the {what})"
    render_into = _worker_state.get("render_into")
    video = None
    try:
        if render_into is not None:
            seq, video = source.render(item, render_into)
        else:
            seq = source.read(item)
        if not isinstance(seq, SkeletonSequence):
            raise DataError(f"reader returned {type(seq).__name__}, not a SkeletonSequence", where)
        cap = _worker_state["max_persons"]
        if cap is not None and seq.keypoints.shape[0] > cap:
            seq.keypoints, seq.scores = seq.keypoints[:cap], seq.scores[:cap]
        seq.validate(source=where, num_joints=_worker_state["num_joints"])
        max_frames = _worker_state["max_frames"]
        if seq.num_frames > max_frames:  # the readers refuse this before allocating; this catches any other reader
            raise DataError(f"{seq.num_frames} frames is more than the cap of {max_frames} (raise it with "
                            "--max-frames if the data is real)", where, "frames")
        if not is_printable(seq.name):  # (metadata is checked as the store writes it)
            raise DataError(f"sample name {printable(seq.name)!r} is not valid UTF-8 text", where, "name")
    except SkelactError as e:
        return where, None, _reason(e, where)
    except MemoryError:
        return where, None, _OUT_OF_MEMORY
    except Exception as e:  # noqa: BLE001 - a reader bug on one file must not end a 114k-file run
        return where, None, printable(f"{type(e).__name__}: {e}")
    return where, (seq if video is None else (seq, video)), None


_OUT_OF_MEMORY = "out of memory reading this item (it claims sizes far beyond this machine's memory)"


def _reason(error: SkelactError, where: str) -> str:
    """The error without the file name the report already shows."""
    text = str(error)
    prefix = f"{where}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _read_chunk(items: list[Any]) -> list[tuple[str, SkeletonSequence | None, str | None]]:
    return [_read_item(item) for item in items]


def ordered_results(pool: Any, items: list[Any], chunk: int, window: int,
                    describe: Any = str) -> Iterator[tuple[str, SkeletonSequence | None, str | None]]:
    """``_read_item`` over ``items`` in a worker pool, in order, with at most ``window`` chunks in flight.

    ``Pool.imap`` queues every task at once and buffers finished results without limit when the writer falls
    behind; this sliding window keeps at most ``window * chunk`` records in memory whatever the speeds. A chunk whose
    records cannot come back (a worker out of memory while sending them) rejects its items, named by ``describe``.
    """
    starts = iter(range(0, len(items), chunk))
    pending: deque = deque()

    def submit() -> None:
        start = next(starts, None)
        if start is not None:
            part = items[start:start + chunk]
            pending.append((part, pool.apply_async(_read_chunk, (part,))))

    for _ in range(window):
        submit()
    while pending:
        part, result = pending.popleft()
        try:
            done = result.get()
        except (MemoryError, multiprocessing.pool.MaybeEncodingError) as e:
            reason = _OUT_OF_MEMORY if isinstance(e, MemoryError) or "MemoryError" in str(e) else printable(
                f"the worker could not send this item back ({e})")
            done = [(printable(_safe_describe(describe, item)), None, reason) for item in part]
        submit()
        yield from done


def _safe_describe(describe: Any, item: Any) -> str:
    try:
        return str(describe(item))
    except Exception:  # noqa: BLE001 - only a name for a message
        return str(item)


# -- parent side ---------------------------------------------------------------------------------------------------




def _resolve_layout(layout: str | PathLike | Layout | None, source: Source) -> Layout:
    if layout is not None:
        return get_layout(layout)
    name = getattr(source, "layout", None)
    if not name:
        raise DataError(f"the {source.format!r} reader names no layout; pass --layout NAME_OR_YAML",
                        source.root, "layout")
    return get_layout(name)


def prepare(fmt: str, src: str | PathLike, out: str | PathLike, workers: int | None = None,
            overwrite: bool = False, split_file: str | PathLike | None = None, progress: bool = True, *,
            layout: str | PathLike | Layout | None = None, max_persons: int | None = None,
            max_frames: int | None = None, wait_for_lock: bool = False, lock_held: bool = False,
            **source_options: Any) -> PrepareReport:
    """Read every item of a ``fmt`` dataset under ``src`` and write the store directory ``out``.

    ``workers``: processes that parse items (default: all cores; 1 parses in this process). ``layout`` overrides
    the reader's joint layout (a built-in name, a YAML path or a :class:`Layout`); ``max_persons`` keeps the first
    N persons of each sample (readers order persons most relevant first). Both are also passed to a reader that
    takes an option of the same name (NTU then picks the most active bodies; arrays and pyskl need the layout).
    ``split_file``: a user split (:func:`skelact.data.splits.read_split_file`); an unknown sample name in it is an
    error. ``max_frames``: samples longer than this are rejected (default
    :data:`~skelact.data.sources.base.DEFAULT_MAX_FRAMES`; also given to readers that take it, which refuse before
    allocating). ``wait_for_lock``: when another process is writing OUT, wait for it to finish instead of failing
    with :class:`~skelact.locking.LockedError` (then OUT usually exists and, without ``overwrite``, this raises
    the "already exists" :class:`StoreError`). ``lock_held``: the caller holds OUT's lock already
    (:func:`~skelact.data.store_target.acquire_store_lock`). Remaining keyword arguments go to the reader. Returns a
    :class:`PrepareReport`; raises :class:`SkelactError` subclasses only (and ``KeyboardInterrupt``, after removing
    the partial store).
    """
    if getattr(source_class(fmt), "kind", "skeleton") == "video":
        # videos without keypoints (video-folder): probed, not parsed, into a keypoint-free store
        if layout is not None or max_persons is not None:
            raise ConfigError(f"the {fmt!r} format stores videos without keypoints; --layout and --max-persons "
                              "belong to skelact extract-poses", field="layout" if layout is not None else
                              "max_persons")
        from skelact.data.prepare_video import prepare_videos

        return prepare_videos(fmt, src, out, workers=workers, overwrite=overwrite, split_file=split_file,
                              progress=progress, wait_for_lock=wait_for_lock, lock_held=lock_held,
                              **source_options)
    out = Path(out)
    if not out.parent.is_dir():
        raise StoreError("parent directory does not exist", out.parent)
    try:
        with store_lock(out, wait=wait_for_lock, held=lock_held):
            clean_leftovers(out)
            return _prepare_locked(fmt, src, out, workers, overwrite, split_file, progress, layout, max_persons,
                                   max_frames, source_options)
    except SkelactError as error:
        # a path that is not valid UTF-8 (SRC, OUT) must not turn the one-line message into a UnicodeEncodeError
        error.path, error.field = (None if v is None else printable(v) for v in (error.path, error.field))
        error.message = printable(error.message)
        error.args = (str(error),)
        raise






def _prepare_locked(fmt: str, src: str | PathLike, out: Path, workers: int | None, overwrite: bool,
                    split_file: str | PathLike | None, progress: bool, layout: str | PathLike | Layout | None,
                    max_persons: int | None, max_frames: int | None, source_options: dict[str, Any]
                    ) -> PrepareReport:
    started = time.perf_counter()
    check_out(out, overwrite)
    max_frames = DEFAULT_MAX_FRAMES if max_frames is None else max_frames_option(max_frames)
    if max_persons is not None and int(max_persons) < 1:
        raise DataError(f"must be at least 1, got {max_persons}", field="max_persons")
    user_splits = read_split_file(split_file) if split_file is not None else None
    reader = source_class(fmt)
    if max_persons is not None and _accepts(reader, "max_persons"):
        # the reader then chooses which persons to keep (NTU: the most active bodies), not just the first N
        source_options = {**source_options, "max_persons": int(max_persons)}
    if layout is not None and _accepts(reader, "layout"):
        # readers of layout-less formats (arrays, pyskl) need it to check and label the data
        source_options = {**source_options, "layout": layout}
    if max_frames != DEFAULT_MAX_FRAMES and _accepts(reader, "max_frames"):
        source_options = {**source_options, "max_frames": max_frames}
    source = open_source(fmt, src, **source_options)
    # a source that draws its own videos (penn-action-rendered) writes them into the store's videos/ folder
    renders = callable(getattr(source, "render", None))
    if renders and layout is not None:
        raise ConfigError(f"the {fmt!r} format draws its own layout's joints; --layout does not apply",
                          field="layout")
    store_layout = _resolve_layout(layout, source)
    items = list(source.items())
    if not items:
        raise DataError(f"no {fmt} samples found", src)
    n_workers = worker_count(workers, len(items))

    class_names = source.class_names()
    split_full_names = list(source.split_names())
    builders = {name: SplitBuilder([name]) for name in split_full_names}
    warnings: list[str] = []
    rejected: list[dict[str, str]] = []
    label_names: dict[int, str] = {}
    total_frames = 0

    tmp = temporary_sibling(out)
    writer: StoreWriter | None = None
    processed = 0  # items taken from the workers (bar.n stays 0 when the bar is disabled)
    pool = None
    bar = None
    try:
        writer = StoreWriter(tmp, store_layout, videos_inside=renders)
        init = (source, store_layout.num_joints, max_persons, max_frames, tmp if renders else None)
        if n_workers == 1:
            _init_worker(*init, in_process=True)
            results = map(_read_item, items)
        else:
            pool = multiprocessing.get_context().Pool(n_workers, initializer=_init_worker, initargs=init)
            chunk = max(1, min(32, len(items) // (n_workers * 8)))
            results = ordered_results(pool, items, chunk, window=4 * n_workers, describe=source.describe)
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), unit="file", desc=f"prepare {fmt}", disable=not progress, dynamic_ncols=True)
        for where, seq, reason in results:
            bar.update(1)
            processed += 1
            video = None
            if isinstance(seq, tuple):
                seq, video = seq
            if seq is not None:
                try:
                    if class_names is not None and seq.label >= len(class_names):
                        raise DataError(f"label {seq.label} is outside the {len(class_names)} classes of the "
                                        "source", where, "label")
                    index = writer.add(seq, file=where) if video is None else writer.add(seq, file=where,
                                                                                          video=video)
                except DataError as e:
                    seq, reason = None, _reason(e, where)
                except MemoryError:
                    seq, reason = None, _OUT_OF_MEMORY
                else:
                    total_frames += seq.num_frames
                    _collect_label_name(seq, label_names, warnings)
                    for name in list(builders):
                        try:
                            builders[name].add(index, seq.meta, where)
                        except DataError as e:
                            warnings.append(f"split {name} not recorded: {e}")
                            del builders[name]
            if seq is None:
                if video is not None:  # rendered, then refused by the store: its video must not stay behind
                    (tmp / video.path).unlink(missing_ok=True)
                rejected.append({"file": where, "reason": reason or "unknown error"})
                bar.set_postfix(rejected=len(rejected), refresh=False)
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
        if not len(writer):
            first = rejected[0]
            raise DataError(f"all {len(items)} item(s) failed; first: {first['file']}: {first['reason']}", src)

        if class_names is None:
            num_classes = max(max(label_names, default=-1), int(writer.labels.max())) + 1
            class_names = [label_names.get(k, f"class_{k}") for k in range(num_classes)]
        splits, split_sources = _gather_splits(source, builders, split_full_names, user_splits, split_file,
                                               writer, warnings)
        writer.close(class_names=list(class_names), splits=splits,
                     source={"format": fmt, "path": str(Path(src).resolve()),
                             "options": {k: _plain(v.name if isinstance(v, Layout) else v)
                                         for k, v in source_options.items()}},
                     rejected=rejected,
                     extra={"split_sources": split_sources,
                            "options": {"max_persons": max_persons, "max_frames": max_frames,
                                        "layout_override": None if layout is None else str(
                                            layout.name if isinstance(layout, Layout) else layout)}})
        commit_directory(tmp, out, overwrite=overwrite)
    except BaseException as error:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
        if writer is not None:
            writer.abort()
        said = store_write_error(error, out, _space_needed(writer, processed, len(items)))
        if said is not None:  # a full disk, no permission, ...: say where, not a traceback
            raise said from None
        raise
    return PrepareReport(out=out, format=fmt, source=str(src), num_items=len(items), num_samples=len(writer),
                         total_frames=total_frames, seconds=time.perf_counter() - started, workers=n_workers,
                         rejected=rejected,
                         splits={s: {k: int(v.size) for k, v in sub.items()} for s, sub in splits.items()},
                         warnings=warnings)


def _space_needed(writer: StoreWriter | None, done: int, num_items: int) -> int | None:
    """The whole store's size, extrapolated from what was written for the items done when the disk filled."""
    if writer is None or not done or not writer.bytes_written:
        return None
    return int(writer.bytes_written * max(num_items, done) / done)


def _collect_label_name(seq: SkeletonSequence, label_names: dict[int, str], warnings: list[str]) -> None:
    name = seq.meta.get("label_name") if seq.meta else None
    if name is None or seq.label < 0:
        return
    name = str(name)
    known = label_names.setdefault(seq.label, name)
    if known != name:
        msg = f"label {seq.label} is named both {known!r} and {name!r} (e.g. {seq.name}); kept {known!r}"
        if msg not in warnings:
            warnings.append(msg)


def _gather_splits(source: Source, builders: dict[str, SplitBuilder], full_names: list[str],
                   user_splits: dict[str, dict[str, list[str]]] | None, split_file: str | PathLike | None,
                   writer: StoreWriter, warnings: list[str]) -> tuple[dict[str, dict[str, np.ndarray]],
                                                                     dict[str, str]]:
    """Standard splits from meta, then splits shipped with the source, then the user's file (later ones win)."""
    splits: dict[str, dict[str, np.ndarray]] = {}
    origin: dict[str, str] = {}
    recorded = short_names([n for n in full_names if n in builders])
    for full, short in recorded.items():
        splits[short] = builders[full].result()[full]
        origin[short] = f"standard:{full}"
    from_source = getattr(source, "splits_from_file", None)
    if callable(from_source):
        try:
            named = from_source()
        except SkelactError as e:
            warnings.append(f"splits shipped with the source not recorded: {e}")
            named = None
        if named:
            resolved, unknown = resolve_named_splits(named, writer.name_to_index, source.root, strict=False)
            if unknown:
                warnings.append(f"{len(unknown)} sample name(s) in the source's splits are not in the store "
                                f"(rejected or absent), e.g. {unknown[0]!r}; they were left out")
            for name, subsets in resolved.items():
                splits[name] = subsets
                origin[name] = "source"
    if user_splits is not None:
        resolved, _ = resolve_named_splits(user_splits, writer.name_to_index, split_file, strict=True)
        for name, subsets in resolved.items():
            if name in splits:
                warnings.append(f"split {name!r} from {split_file} replaces the {origin[name]} one")
            splits[name] = subsets
            origin[name] = f"file:{Path(split_file).name}" if split_file is not None else "file"
    return splits, origin


def _accepts(cls: type, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
