"""Videos to a dataset store: ``skelact extract-poses VIDEO_OR_DIR... OUT_STORE``.

Each video goes through :func:`skelact.pose.pipeline.video_to_sequence` (decode, estimate, track, choose the main
actors, map to the store's layout) in a pool of worker processes, one video per task, each worker building its
estimator once. Videos are processed in any order but stored in input order (sorted paths under each folder).

Resuming. Every finished video is saved at once in a per-video cache under the work folder
``<OUT_STORE's parent>/.<OUT_STORE's name>.work/`` (written to a temporary name and renamed, so a crash never
leaves a half file). A file's cache key covers its path, size and modification time and every setting that
changes the result (estimator and its options, layout, persons, scaling, mirroring), so after an interruption the
same command picks up where it stopped, and a changed video or setting is redone. Videos that failed are cached
with their reason too (a 10-minute video without a person is not decoded twice). ``resume=False`` clears the cache
first. The work folder is removed once the store is complete (``keep_work=True`` keeps it).

Bad input. A file that is not a video, a zero-length video, a video that cannot be decoded or one in which nobody
was found is reported with a one-line reason and skipped; the store lists them under ``rejected`` in its manifest.
Only when every video fails is nothing written, and the first reason raised.

One writer per output. The whole run holds the lock ``.<OUT_STORE's name>.lock`` beside the store (the same one
``skelact prepare`` takes, :func:`skelact.data.store_target.acquire_store_lock`), so a second extraction (or prepare)
into the same OUT_STORE exits at once naming the holder, and the two never share a work folder. Under the lock the
leftovers of a killed run are removed first: ``.OUT_STORE.partial-*`` store folders and the per-video cache's
half-written ``*.partial-*`` files. A full disk (while caching a video or writing the store) removes the partial
store and raises :class:`~skelact.errors.DiskFullError` naming the path and the space needed; finished videos stay
in the work folder, so the same command resumes once space is freed. Folder scans take the file endings in
:data:`skelact.video.names.VIDEO_SUFFIXES`; a file named explicitly is always tried.

A video store (``skelact prepare video-folder``) as the one input gives a store with keypoints out, keeping the
input's labels, class names and splits, each sample aligned frame by frame with its video
(:func:`extract_poses_from_store`); it runs under the same lock.

Labels (optional). ``labels_csv``: a CSV with columns ``name`` and ``label``; ``name`` is a video's sample name
(its path under the input folder without the ending, e.g. ``jump/clip01``), its file name or its stem; ``label`` is
a 0-based class index in every row or a class name in every row (names are numbered in sorted order, or by
``classes``). ``labels_from_folders``: the folder directly under the input folder names the class
(``DIR/<class>/.../video.mp4``), classes numbered in sorted order. A video without a label gets -1 (unknown).
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.store_target import acquire_store_lock, check_out, clean_leftovers, default_workers
from skelact.data.sequence import SkeletonSequence
from skelact.data.splits import resolve_named_splits
from skelact.data.store import MANIFEST, SkeletonStore, StoreWriter, commit_directory, temporary_sibling
from skelact.errors import ConfigError, DataError, SkelactError, StoreError, disk_full_error, is_disk_full
from skelact.pose.base import ESTIMATORS, PoseEstimator, create_estimator
from skelact.pose.mapping import get_mapping
from skelact.video.names import VIDEO_SUFFIXES
from skelact.skeleton.layout import Layout, get_layout

#: bump when the cached arrays or their meaning change, so old caches are not reused
CACHE_VERSION = 1
#: frames are estimated at full size unless asked otherwise: scaling 1080p down before MediaPipe saved nothing
#: measurable and changed no accuracy (docs/benchmarks.md), while full-size RGB is FFmpeg's cheapest output
DEFAULT_MAX_SIDE: int | None = None


@dataclass(frozen=True)
class VideoItem:
    """One input video: where it is, the sample name it is stored under, and the folder it was found in."""

    path: Path
    name: str
    root: Path | None


@dataclass
class ExtractReport:
    """What :func:`extract_poses` did. ``rejected`` holds ``{"file", "reason"}`` for every skipped video."""

    out: Path
    num_videos: int
    num_samples: int
    total_frames: int
    #: frames estimated in this run (videos taken from the cache of an earlier run are not counted)
    frames_processed: int
    #: videos whose result (or rejection) came from the cache of an interrupted earlier run
    reused: int
    seconds: float
    workers: int
    work_dir: Path
    rejected: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else float("inf")

    def summary(self, max_rejected: int = 20) -> str:
        lines = [f"wrote {self.num_samples} samples ({self.total_frames} frames) from {self.num_videos} video(s) to "
                 f"{self.out} in {self.seconds:.1f} s ({self.frames_per_second:.1f} frames/s, "
                 f"{self.workers} worker(s)" + (f", {self.reused} video(s) from an earlier run" if self.reused
                                                else "") + ")"]
        lines += [f"warning: {w}" for w in self.warnings]
        if self.rejected:
            lines.append(f"rejected {len(self.rejected)} video(s):")
            lines += [f"  {r['file']}: {r['reason']}" for r in self.rejected[:max_rejected]]
            if len(self.rejected) > max_rejected:
                lines.append(f"  ... and {len(self.rejected) - max_rejected} more (all are listed in "
                             f"{self.out / MANIFEST} under 'rejected')")
        return "\n".join(lines)


# -- inputs and labels ---------------------------------------------------------------------------------------------


def find_videos(inputs: "str | PathLike | Sequence[str | PathLike | VideoItem]") -> list[VideoItem]:
    """The videos named by ``inputs`` (files, folders searched recursively, or ready :class:`VideoItem` s, which
    keep their sample names: a video store's), with unique sample names."""
    if isinstance(inputs, (str, PathLike)):
        inputs = [inputs]
    items: list[VideoItem] = []
    for raw in inputs:
        if isinstance(raw, VideoItem):
            items.append(raw)
            continue
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                raise DataError(f"no video files (endings {', '.join(VIDEO_SUFFIXES)}) in this folder", p)
            items += [VideoItem(f, f.relative_to(p).with_suffix("").as_posix(), p) for f in found]
        elif p.exists():
            items.append(VideoItem(p, p.stem, None))
        else:
            raise DataError("no such file or folder", p)
    if not items:
        raise DataError("no input videos given", field="inputs")
    seen: dict[str, Path] = {}
    for item in items:
        if item.name in seen:
            raise DataError(f"two inputs would be stored under the same sample name {item.name!r} "
                            f"({seen[item.name]} and {item.path}); rename one or give their common parent folder",
                            item.path, "name")
        seen[item.name] = item.path
    return items


def _read_labels_csv(path: Path) -> list[tuple[int, str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"cannot read label file ({e.strerror or e})", path) from None
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e})", path) from None
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    for column in ("name", "label"):
        if column not in header:
            raise DataError(f"missing column {column!r} (header is {header}); expected name,label", path, column)
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise DataError(f"{len(cells)} cells for {len(header)} columns", path, f"line {line}")
        values = dict(zip(header, (c.strip() for c in cells)))
        if not values["name"]:
            raise DataError("empty video name", path, f"line {line}, column name")
        rows.append((line, values["name"], values["label"]))
    return rows


def _number_classes(names: list[str], classes: Sequence[str] | None, where: Path | None,
                    field_name: str) -> tuple[dict[str, int], list[str]]:
    if classes is None:
        ordered = sorted(set(names))
    else:
        ordered = [str(c) for c in classes]
        unknown = sorted(set(names) - set(ordered))
        if unknown:
            raise DataError(f"class name(s) {unknown} are not among the given classes {ordered}", where, field_name)
    return {c: k for k, c in enumerate(ordered)}, ordered


def resolve_labels(videos: Sequence[VideoItem], labels_csv: str | PathLike | None = None,
                   labels_from_folders: bool = False, classes: Sequence[str] | None = None
                   ) -> tuple[list[int], list[str], list[str]]:
    """``(label per video, class names, warnings)`` from a label CSV or the folder names (see the module doc)."""
    if labels_csv is not None and labels_from_folders:
        raise ConfigError("give either a label CSV or labels from folder names, not both", field="labels")
    if labels_csv is None and not labels_from_folders:
        return [-1] * len(videos), list(classes or []), []
    warnings: list[str] = []
    if labels_from_folders:
        texts: list[str | None] = []
        for v in videos:
            if v.root is None:
                texts.append(v.path.parent.name or None)
            else:
                parts = v.path.relative_to(v.root).parts
                texts.append(parts[0] if len(parts) > 1 else None)
        unlabelled = [v.name for v, t in zip(videos, texts) if t is None]
        if unlabelled:
            warnings.append(f"{len(unlabelled)} video(s) lie directly in the input folder, not in a class folder, "
                            f"and get label -1 (unknown), e.g. {unlabelled[0]!r}")
        number, ordered = _number_classes([t for t in texts if t is not None], classes, None, "labels")
        return [number[t] if t is not None else -1 for t in texts], ordered, warnings

    path = Path(labels_csv)  # type: ignore[arg-type]
    rows = _read_labels_csv(path)
    by_key: dict[str, tuple[int, str]] = {}
    for line, name, label in rows:
        if name in by_key:
            raise DataError(f"name {name!r} repeats line {by_key[name][0]}", path, f"line {line}, column name")
        by_key[name] = (line, label)
    texts = []
    used: set[str] = set()
    for v in videos:
        for key in (v.name, v.path.name, v.path.stem):
            if key in by_key:
                texts.append(by_key[key][1])
                used.add(key)
                break
        else:
            texts.append(None)
    missing = [v.name for v, t in zip(videos, texts) if t is None or t == ""]
    if missing:
        warnings.append(f"{len(missing)} video(s) have no label in {path.name} and get -1 (unknown), "
                        f"e.g. {missing[0]!r}")
    extra = sorted(set(by_key) - used)
    if extra:
        warnings.append(f"{len(extra)} name(s) in {path.name} match no input video, e.g. {extra[0]!r}")
    given = [t for t in texts if t not in (None, "")]
    if all(_is_int(t) for t in given):
        labels = [int(t) if t not in (None, "") else -1 for t in texts]
        for video, label in zip(videos, labels):
            if label < -1:
                raise DataError(f"label {label} of {video.name!r} is negative", path, "label")
        top = max(labels, default=-1)
        if classes is not None and top >= len(classes):
            raise DataError(f"label {top} is outside the {len(classes)} given classes", path, "label")
        names = list(classes) if classes is not None else [f"class_{k}" for k in range(top + 1)]
        return labels, names, warnings
    number, ordered = _number_classes(given, classes, path, "label")
    return [number[t] if t not in (None, "") else -1 for t in texts], ordered, warnings


def _is_int(text: str | None) -> bool:
    if text is None:
        return False
    try:
        int(text)
    except ValueError:
        return False
    return True


# -- the per-video cache -------------------------------------------------------------------------------------------


def work_dir_for(out: str | PathLike) -> Path:
    """Where :func:`extract_poses` keeps finished videos until the store is complete."""
    out = Path(out)
    return out.parent / f".{out.name}.work"


def _cache_key(item: VideoItem, settings: Mapping[str, Any]) -> str:
    st = item.path.stat()
    facts = {"file": str(item.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
             "version": CACHE_VERSION, "settings": settings}
    text = json.dumps(facts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _save_result(cache: Path, seq: SkeletonSequence) -> None:
    tmp = cache.with_name(f"{cache.name}.partial-{os.getpid()}.npz")
    try:
        np.savez(tmp, keypoints=seq.keypoints, scores=seq.scores,
                 meta=np.array(json.dumps(seq.meta, default=_plain_json)))
        os.replace(tmp, cache)
    except BaseException:  # a full disk: the half file must not keep the space
        tmp.unlink(missing_ok=True)
        raise


def _save_rejection(cache: Path, reason: str) -> None:
    target = _rejection_file(cache)
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"reason": reason}), encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _clean_cache_leftovers(cache_dir: Path) -> None:
    """Remove the half-written cache files of a killed run (call only while holding the output's lock)."""
    for p in cache_dir.glob("*.partial-*"):
        p.unlink(missing_ok=True)


def _rejection_file(cache: Path) -> Path:
    return cache.with_name(cache.name.replace(".npz", ".rejected.json"))


def _load_result(cache: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    with np.load(cache) as z:
        return z["keypoints"], z["scores"], json.loads(str(z["meta"]))


def _cached_outcome(cache: Path) -> tuple[str, str | None] | None:
    """``("ok", None)``, ``("rejected", reason)`` or ``None`` when the video still has to be processed."""
    if cache.is_file():
        try:
            with np.load(cache) as z:
                frames = int(z["keypoints"].shape[1])
        except Exception:  # noqa: BLE001 - an unreadable cache entry is simply redone
            cache.unlink(missing_ok=True)
            return None
        return ("ok", None) if frames > 0 else None
    rejection = _rejection_file(cache)
    if rejection.is_file():
        try:
            return "rejected", str(json.loads(rejection.read_text(encoding="utf-8"))["reason"])
        except (OSError, ValueError, KeyError):
            rejection.unlink(missing_ok=True)
    return None


def _plain_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# -- worker side ---------------------------------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(job: dict[str, Any], in_process: bool = False) -> None:
    if not in_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool
    _worker.clear()
    _worker["job"] = job


def _estimator() -> PoseEstimator:
    if "estimator" not in _worker:
        job = _worker["job"]
        if isinstance(job["estimator"], PoseEstimator):
            _worker["estimator"] = job["estimator"]
        else:  # "module:Class", resolved by the parent: a spawned worker starts from a fresh registry
            module, cls = job["estimator"].split(":")
            _worker["estimator"] = getattr(import_module(module), cls)(**job["estimator_options"])
    return _worker["estimator"]


def _process(task: tuple[int, str, str]) -> tuple[int, str, int, str | None, float]:
    """Extract one video into its cache file: ``(index, "ok" | "rejected", frames, reason, seconds)``."""
    from skelact.pose.pipeline import video_to_sequence

    index, path, cache = task
    job = _worker["job"]
    started = time.perf_counter()
    try:
        seq = video_to_sequence(path, _estimator(), job["layout"], max_persons=job["max_persons"],
                                criterion=job["criterion"], max_side=job["max_side"], mirrored=job["mirrored"],
                                threads=job["threads"])
    except SkelactError as e:
        reason = _reason(e, path)
    except MemoryError:
        reason = "out of memory extracting this video (frames too large, or too many for this machine's memory)"
    except Exception as e:  # noqa: BLE001 - one broken video must not end a run over thousands
        reason = f"{type(e).__name__}: {e}"
    else:
        _save_result(Path(cache), seq)
        return index, "ok", seq.num_frames, None, time.perf_counter() - started
    _save_rejection(Path(cache), reason)
    return index, "rejected", 0, reason, time.perf_counter() - started


def _reason(error: SkelactError, where: str) -> str:
    """The error without the file name the report already shows."""
    text = str(error)
    for prefix in (f"{where}: ", f"{Path(where).resolve()}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _close_worker_estimator() -> None:
    est = _worker.pop("estimator", None)
    if est is not None:
        est.close()


# -- parent side ---------------------------------------------------------------------------------------------------


def extract_poses(inputs: "str | PathLike | Sequence[str | PathLike]", out_store: str | PathLike,
                  estimator: "str | PoseEstimator" = "mediapipe", layout: "str | PathLike | Layout" = "coco17",
                  labels_csv: str | PathLike | None = None, labels_from_folders: bool = False,
                  workers: int | None = None, resume: bool = True, *, overwrite: bool = False,
                  classes: Sequence[str] | None = None, max_persons: int = 1, criterion: str = "area",
                  max_side: int | None = DEFAULT_MAX_SIDE, mirrored: bool = False,
                  estimator_options: Mapping[str, Any] | None = None, progress: bool = True,
                  keep_work: bool = False) -> ExtractReport:
    """Estimate the poses in videos and write them as a dataset store (see the module docstring).

    ``inputs``: video files and/or folders. ``estimator``: ``"mediapipe"`` (default), ``"onnx"`` (with
    ``estimator_options={"model": "pose.onnx", ...}``, see :mod:`skelact.pose.onnx_topdown`) or a ready
    :class:`PoseEstimator`, which then runs in this process (``workers`` is ignored). ``layout``: the store's layout
    (``coco17``, ``penn13``, ``ntu25``, ``mediapipe33``, ...; see :mod:`skelact.pose.mapping`). ``workers``:
    processes, each extracting whole videos (default: all cores, at most one per video). ``max_side``: frames are
    scaled down to this longer side before estimation (keypoints stay in full-size pixels); ``None`` keeps the full
    size. ``mirrored``: the videos are mirror images (NTU RGB+D's are). Returns an :class:`ExtractReport`; raises
    :class:`SkelactError` subclasses only (:class:`~skelact.locking.LockedError` when another process writes the
    same output; ``KeyboardInterrupt``, after which the same call resumes).
    """
    out = Path(out_store)
    if not out.parent.is_dir():
        raise StoreError("parent directory does not exist", out.parent)
    with acquire_store_lock(out, what="pose-extraction output"):
        clean_leftovers(out)
        store_in = video_store_input(inputs)
        if store_in is not None:  # a store of videos in, the same store with keypoints out
            if labels_csv is not None or labels_from_folders or classes is not None:
                raise ConfigError("a video store brings its own labels; --labels and --labels-from-folders apply to "
                                  "video files and folders", field="labels")
            return extract_poses_from_store(store_in, out, estimator=estimator, layout=layout, workers=workers,
                                            resume=resume, overwrite=overwrite, max_persons=max_persons,
                                            criterion=criterion, max_side=max_side, mirrored=mirrored,
                                            estimator_options=estimator_options, progress=progress,
                                            keep_work=keep_work)
        return _extract_poses_locked(
            inputs, out, estimator, layout, labels_csv, labels_from_folders, workers, resume, overwrite=overwrite,
            classes=classes, max_persons=max_persons, criterion=criterion, max_side=max_side, mirrored=mirrored,
            estimator_options=estimator_options, progress=progress, keep_work=keep_work)


def _extract_poses_locked(inputs: "str | PathLike | Sequence[str | PathLike]", out_store: str | PathLike,
                          estimator: "str | PoseEstimator", layout: "str | PathLike | Layout",
                          labels_csv: str | PathLike | None, labels_from_folders: bool, workers: int | None,
                          resume: bool, *, overwrite: bool, classes: Sequence[str] | None, max_persons: int,
                          criterion: str, max_side: int | None, mirrored: bool,
                          estimator_options: Mapping[str, Any] | None, progress: bool,
                          keep_work: bool) -> ExtractReport:
    started = time.perf_counter()
    out = Path(out_store)
    check_out(out, overwrite)
    store_layout = get_layout(layout)
    if max_persons < 1:
        raise ConfigError(f"must be at least 1, got {max_persons}", field="max_persons")
    in_process = isinstance(estimator, PoseEstimator)
    options = dict(estimator_options or {})
    if in_process:
        estimator_config = estimator.config()
        source_layout = estimator.layout
    else:
        # built once here too: options are checked (and a missing extra reported) before any video is touched
        probe = create_estimator(str(estimator), **options)
        estimator_config, source_layout = probe.config(), probe.layout
        probe.close()
    mapping = get_mapping(source_layout, store_layout)
    videos = find_videos(inputs)
    labels, class_names, warnings = resolve_labels(videos, labels_csv, labels_from_folders, classes)
    n_workers = 1 if in_process else min(default_workers() if workers is None else int(workers), len(videos))
    if n_workers < 1:
        raise ConfigError(f"must be at least 1, got {workers}", field="workers")
    if in_process and workers not in (None, 1):
        warnings.append("a ready estimator object runs in this process; workers ignored (pass its name and "
                        "estimator_options to run in parallel)")
    job = {"estimator": estimator if in_process else ESTIMATORS[str(estimator)],
           "estimator_options": {} if in_process else options, "layout": store_layout,
           "max_persons": int(max_persons), "criterion": criterion, "max_side": max_side, "mirrored": bool(mirrored),
           # several processes already use every core; frame-threaded decoding in each would only contend
           "threads": 1 if n_workers > 1 else None}
    settings = {"estimator": estimator_config, "layout": store_layout.to_dict(), "mapping": mapping.describe(),
                "max_persons": int(max_persons), "criterion": criterion, "max_side": max_side,
                "mirrored": bool(mirrored)}

    work = work_dir_for(out)
    cache_dir = work / "cache"
    if not resume and work.exists():
        shutil.rmtree(work)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full_error(work) from None
        raise StoreError(f"cannot create the work folder ({e.strerror or e})", work) from None
    _clean_cache_leftovers(cache_dir)
    caches = [cache_dir / f"{_cache_key(v, settings)}.npz" for v in videos]
    outcome: dict[int, tuple[str, str | None]] = {}
    for i, cache in enumerate(caches):
        done = _cached_outcome(cache)
        if done is not None:
            outcome[i] = done
    reused = len(outcome)
    todo = [(i, str(videos[i].path), str(caches[i])) for i in range(len(videos)) if i not in outcome]

    frames_processed = 0
    pool = None
    bar = None
    writer: StoreWriter | None = None
    tmp = temporary_sibling(out)
    try:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(videos), initial=reused, unit="video", desc="extract-poses", disable=not progress,
                   dynamic_ncols=True)
        if todo:
            if n_workers == 1:
                _init_worker(job, in_process=True)
                results = map(_process, todo)
            else:
                # spawn, not fork: MediaPipe and onnxruntime keep threads and allocator state that a forked child
                # inherits half-copied (a forked MediaPipe worker crashed with heap corruption here)
                pool = multiprocessing.get_context("spawn").Pool(min(n_workers, len(todo)),
                                                                 initializer=_init_worker, initargs=(job,))
                results = pool.imap_unordered(_process, todo, chunksize=1)
            busy = 0.0
            for index, status, frames, reason, _seconds in results:
                outcome[index] = (status, reason)
                frames_processed += frames
                busy = time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(fps=f"{frames_processed / max(busy, 1e-9):.1f}",
                                rejected=sum(s == "rejected" for s, _ in outcome.values()), refresh=False)
            if pool is not None:
                pool.close()
                pool.join()
                pool = None
            elif not in_process:
                _close_worker_estimator()
        bar.close()

        rejected = [{"file": str(videos[i].path), "reason": outcome[i][1] or "unknown error"}
                    for i in range(len(videos)) if outcome[i][0] == "rejected"]
        if len(rejected) == len(videos):
            first = rejected[0]
            raise DataError(f"all {len(videos)} video(s) failed; first: {first['file']}: {first['reason']}",
                            field="inputs")
        writer = StoreWriter(tmp, store_layout)
        total_frames = 0
        for i, video in enumerate(videos):
            if outcome[i][0] != "ok":
                continue
            keypoints, scores, meta = _load_result(caches[i])
            if meta.get("declared_frames") and meta["declared_frames"] != keypoints.shape[1]:
                warnings.append(f"{video.path}: decoded {keypoints.shape[1]} frames, the container declares "
                                f"{meta['declared_frames']} (truncated or variable-rate file?)")
            meta["file"] = str(video.path)
            seq = SkeletonSequence(keypoints=keypoints, scores=scores, label=labels[i], name=video.name,
                                   layout=store_layout.name, meta=meta)
            writer.add(seq, file=str(video.path))
            total_frames += seq.num_frames
        input_paths = [inputs] if isinstance(inputs, (str, PathLike)) else list(inputs)
        writer.close(class_names=list(class_names), splits={},
                     source={"format": "video", "path": ", ".join(
                         str(Path(p.path if isinstance(p, VideoItem) else p).resolve()) for p in input_paths),
                             "options": {"labels_csv": None if labels_csv is None else str(labels_csv),
                                         "labels_from_folders": bool(labels_from_folders)}},
                     rejected=rejected, extra={"extraction": settings})
        commit_directory(tmp, out, overwrite=overwrite)
    except BaseException as error:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
        if writer is not None:
            writer.abort()
        if is_disk_full(error):
            full_file = Path(error.filename).name if getattr(error, "filename", None) else None
            finished = sum(c.stat().st_size for c in caches if c.is_file())
            # the store needs about what the finished videos' cache files hold
            raise disk_full_error(out, finished or None, full_file) from None
        if isinstance(error, OSError):
            raise StoreError(f"cannot write ({error.strerror or error})", error.filename or out) from None
        raise
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return ExtractReport(out=out, num_videos=len(videos), num_samples=len(writer), total_frames=total_frames,
                         frames_processed=frames_processed, reused=reused, seconds=time.perf_counter() - started,
                         workers=n_workers, work_dir=work, rejected=rejected, warnings=warnings)


# -- a video store in ------------------------------------------------------------------------------------------


def video_store_input(inputs: Any) -> Path | None:
    """The store directory when ``inputs`` is exactly one skelact store that refers to videos, else ``None``."""
    if isinstance(inputs, (str, PathLike)):
        inputs = [inputs]
    if not isinstance(inputs, Sequence) or len(inputs) != 1 or not isinstance(inputs[0], (str, PathLike)):
        return None
    path = Path(inputs[0])
    if not (path / MANIFEST).is_file():
        return None
    store = SkeletonStore(path)
    if store.kind != "video" and not int(store.manifest.get("num_videos", 0)):
        raise StoreError("this store refers to no videos, so there is nothing to extract poses from (prepare one "
                         "with skelact prepare video-folder)", path)
    return path


def extract_poses_from_store(store_path: str | PathLike, out_store: str | PathLike,
                             estimator: "str | PoseEstimator" = "mediapipe",
                             layout: "str | PathLike | Layout" = "coco17", workers: int | None = None,
                             resume: bool = True, *, overwrite: bool = False, max_persons: int = 1,
                             criterion: str = "area", max_side: int | None = None, mirrored: bool = False,
                             estimator_options: Mapping[str, Any] | None = None, progress: bool = True,
                             keep_work: bool = False) -> ExtractReport:
    """Estimate poses on every video of a store and write them, with the store's labels and splits, to
    ``out_store`` (see the module docstring; the arguments are :func:`extract_poses`'); the caller holds OUT's lock.

    The videos go through the ordinary extraction under their store sample names, into an intermediate store in
    the work folder ``<OUT's parent>/.<OUT's name>.work/``, which is then joined with the input's labels, class
    names and splits into OUT, every sample keeping its video reference, now aligned frame by frame with its
    keypoints: keypoint frame ``t`` was estimated on decoded frame ``t``. When the decoder yields a different
    number of frames than the probe counted, the reference takes the decoded count (what the keypoints align with)
    and a warning says so. An interrupted run resumes like any extraction (the per-video cache is kept until OUT is
    complete). Samples that fail here are added to the input's own ``rejected`` list and left out of the splits.
    """
    started = time.perf_counter()
    source = SkeletonStore(store_path)
    out = Path(out_store)
    check_out(out, overwrite)
    items, rejected = [], list(source.rejected)
    for i in range(len(source)):
        if source.video(i) is None:
            rejected.append({"file": f"{source.path}#{source.name(i)}", "reason": "no video reference"})
        else:
            items.append(VideoItem(source.video_path(i), source.name(i), source.video_root))
    if not items:
        raise DataError("no sample of this store refers to a video", source.path)
    work = work_dir_for(out)
    poses_path = work / "poses"
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the work folder ({e.strerror or e})", work) from None
    # keep_work: the per-video cache outlives the intermediate store, so a run interrupted while joining resumes
    # without estimating again
    inner = extract_poses(items, poses_path, estimator=estimator, layout=layout, workers=workers, resume=resume,
                          overwrite=True, max_persons=max_persons, criterion=criterion, max_side=max_side,
                          mirrored=mirrored, estimator_options=estimator_options, progress=progress,
                          keep_work=True)
    poses = SkeletonStore(poses_path)
    warnings = list(inner.warnings)
    tmp = temporary_sibling(out)
    writer = StoreWriter(tmp, poses.layout, video_root=source.video_root)
    try:
        _join(source, poses, writer, warnings)
        named = {split: {subset: [source.name(int(i)) for i in idx] for subset, idx in subsets.items()}
                 for split, subsets in source.splits.items()}
        splits, unknown = resolve_named_splits(named, writer.name_to_index, source.path, strict=False)
        if unknown:
            warnings.append(f"{len(unknown)} sample(s) of the input's splits had no poses and were left out, e.g. "
                            f"{unknown[0]!r}")
        writer.close(class_names=source.class_names, splits=splits,
                     source={"format": "video-store", "path": str(source.path.resolve()),
                             "options": {"input_source": source.manifest.get("source")}},
                     rejected=rejected + list(inner.rejected),
                     extra={"extraction": poses.manifest.get("extraction"),
                            "split_sources": source.manifest.get("split_sources", {})})
        commit_directory(tmp, out, overwrite=overwrite)
    except BaseException as error:
        writer.abort()
        if is_disk_full(error):
            raise disk_full_error(out) from None
        raise
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return replace(inner, out=out, num_samples=len(writer), seconds=time.perf_counter() - started,
                   rejected=rejected + list(inner.rejected), warnings=warnings, work_dir=work)


def _join(source: SkeletonStore, poses: SkeletonStore, writer: StoreWriter, warnings: list[str]) -> None:
    """Each sample with poses, in the input's order, with the input's label, meta and (realigned) video."""
    found = {name: j for j, name in enumerate(poses.names)}
    for i in range(len(source)):
        j = found.get(source.name(i))
        if j is None:
            continue  # rejected by the extraction (listed there)
        seq = poses[j]
        video = source.video(i)
        assert video is not None
        if video.frames != seq.num_frames:
            warnings.append(f"{source.name(i)}: the probe counted {video.frames} frames, the decoder gave "
                            f"{seq.num_frames}; the reference now says {seq.num_frames}, as the keypoints")
            video = replace(video, frames=seq.num_frames)
        seq.label = int(source.labels[i])
        seq.meta = {**source.meta(i), **seq.meta}
        writer.add(seq, file=source.file(i), video=video)
