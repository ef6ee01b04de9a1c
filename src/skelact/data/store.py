"""The compact on-disk dataset store: ragged skeleton sequences, memory-mapped, written once by ``skelact prepare``.

Why not the usual padded array: CTR-GCN and ST-GCN store NTU as ``float32 [N, 300, 150]`` (or ``[N, 3, 300, 25, 2]``),
padding every clip to 300 frames and two bodies. Most clips are shorter and most have one person, so three quarters
of such a file is zeros, and the whole array is typically loaded into RAM. The store keeps only the frames and the
persons that exist, concatenated, and reads them through a memory map, so opening a dataset costs milliseconds and
memory is paid only for the samples a loader touches.

Layout (format version 1; a public format, other tools may read it with plain numpy and json)
-------------------------------------------------------------------------------------------------
A store is one directory::

    manifest.json    what the store is (below); written last, so a store without it is incomplete
    keypoints.npy    float32 [total_rows, V, C]  every sample's persons' frames, concatenated, no padding
    scores.npy       float16 [total_rows, V]     joint confidences (readers get float32; see below)
    index.npz        per sample: offset int64 (first row), persons int32 (M), frames int32 (T), label int32
    samples.jsonl    one JSON object per line, in sample order: {"name", "file", "meta"}
    splits.json      {split name: {subset: [sample indices]}}

Sample ``i`` occupies rows ``offset[i] : offset[i] + M*T`` of ``keypoints.npy`` and ``scores.npy``, person-major:
row ``offset + p*T + t`` is person ``p`` at frame ``t``; so ``keypoints[rows].reshape(M, T, V, C)`` is the
:class:`SkeletonSequence` array. Offsets are the running sum of ``M*T``. Labels are 0-based (-1 = unknown).

Scores are stored as IEEE half floats: confidences lie in [0, 1] (or are 0/1 visibility flags) and three
significant digits are more than any pose estimator delivers; this halves their share of the store. A sample whose
scores do not fit in float16 is rejected at write time rather than silently clipped.

``manifest.json`` holds: ``format`` ("skelact-store"), ``format_version``, ``layout`` ({"name", "spec"}: the full
layout in its YAML form, so a user-defined layout travels with the store), ``num_joints``, ``coords``,
``num_samples``, ``total_rows``, ``num_classes``, ``class_names``, ``max_persons`` (the most persons any stored
sample has), ``dtypes``, ``source`` ({"format", "path", "options"}), ``created`` (UTC ISO 8601),
``skelact_version``, ``rejected`` ([{"file", "reason"}] for the inputs ``prepare`` skipped), ``split_sources`` and
``files`` ({file name: size in bytes}), against which :class:`SkeletonStore` checks the directory when it opens.

Format version 2: videos
------------------------
Version 2 adds two things, for video datasets (:mod:`skelact.data.video_sample`):

* a ``samples.jsonl`` line may carry ``"video": {"path", "frames", "fps", "width", "height"}``, the sample's video
  relative to the manifest's ``video_root`` (the source folder, absolute). Where the sample has keypoints, ``frames``
  equals its ``T``: keypoint frame ``t`` belongs to video frame ``t``.
* ``video_root`` is ``"."`` when the videos are inside the store itself (a rendered store, e.g.
  ``penn-action-rendered``, keeps them in its ``videos/`` folder): paths are then relative to the store directory,
  which can move with them. ``files`` lists the store's own top-level files, not the videos.
* ``manifest["kind"]`` is ``"skeleton"`` (keypoints, as in version 1) or ``"video"``: a keypoint-free store for
  plain RGB datasets, with no ``keypoints.npy`` or ``scores.npy``, ``layout``, ``num_joints`` and ``coords`` null,
  ``total_rows`` 0, and in ``index.npz`` persons 0, offsets 0 and frames the video's frame count. Every sample of
  such a store has a video.

A store that uses neither (keypoints and no video references) is still written as version 1, byte for byte what
earlier releases wrote, so they keep reading it; version 1 stores open here unchanged.

Writing streams: the ``.npy`` files get a fixed 128-byte header whose row count is filled in when the writer
closes, samples are appended as they arrive, and only per-sample integers and names stay in memory. The directory
is built under a temporary name beside its destination and renamed into place only when complete
(:func:`commit_directory`), so an interrupted write never leaves something that looks like a store.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from array import array
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.sequence import SkeletonSequence
from skelact.data.video_sample import VideoRef, VideoSample
from skelact.errors import DataError, StoreError
from skelact.skeleton.layout import Layout

FORMAT_NAME = "skelact-store"
#: the newest format this code reads and writes (see "Format version 2" above)
FORMAT_VERSION = 2
#: formats :class:`SkeletonStore` opens
READABLE_FORMAT_VERSIONS = (1, 2)
#: what a store without keypoints or video references is written as, so older releases still read it
_SKELETON_ONLY_VERSION = 1
#: ``manifest["kind"]``: keypoints (with or without video references), or videos alone
KIND_SKELETON = "skeleton"
KIND_VIDEO = "video"

MANIFEST = "manifest.json"
KEYPOINTS = "keypoints.npy"
SCORES = "scores.npy"
INDEX = "index.npz"
SAMPLES = "samples.jsonl"
SPLITS = "splits.json"

_KEYPOINT_DTYPE = np.dtype("<f4")
_SCORE_DTYPE = np.dtype("<f2")
#: bytes reserved for an .npy preamble, enough for any shape and a multiple of 64 so the data stays aligned
_NPY_HEADER_BYTES = 128


# ----------------------------------------------------------------------------------------------------------------
# writing


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy preamble of exactly ``_NPY_HEADER_BYTES`` bytes (NumPy's format spec, NEP 1)."""
    desc = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    text = repr(desc).encode("latin1")
    magic = np.lib.format.magic(1, 0)
    room = _NPY_HEADER_BYTES - len(magic) - 2
    if len(text) + 1 > room:
        raise StoreError(f"array shape {shape} does not fit the reserved .npy header")
    body = text + b" " * (room - len(text) - 1) + b"\n"
    return magic + len(body).to_bytes(2, "little") + body


class _NpyAppender:
    """Append rows to an .npy file whose leading dimension is only known at the end."""

    def __init__(self, path: Path, dtype: np.dtype, row_shape: tuple[int, ...]):
        self.path = path
        self.dtype = dtype
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self._file = open(path, "wb", buffering=1 << 20)
        self._file.write(_npy_header(dtype, (0, *self.row_shape)))

    def append(self, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows, dtype=self.dtype)
        self._file.write(data.reshape(-1).view(np.uint8).data)
        self.rows += int(data.shape[0])

    def close(self) -> None:
        self._file.flush()
        self._file.seek(0)
        self._file.write(_npy_header(self.dtype, (self.rows, *self.row_shape)))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        try:
            self._file.close()  # flushes its buffer, which fails again on a full disk
        except OSError:
            pass


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, bytes)):
        return str(value)
    return str(value)



def _sample_line(record: dict[str, Any], src: str) -> str:
    """The ``samples.jsonl`` line of ``record``; a :class:`DataError` naming the field when a name, file or
    metadata value cannot be written as UTF-8 (a file name that is not valid UTF-8, a JSON ``"\\udcff"`` escape)."""
    line = json.dumps(record, default=_json_default, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        bad = next((k for k in ("name", "file") if _printable(record.get(k) or "") != (record.get(k) or "")), "meta")
        raise DataError("not valid UTF-8 text", _printable(src), bad) from None
    return line

class StoreWriter:
    """Writes a store directory one sample at a time (bounded memory). Usually driven by :func:`prepare`.

    ``add`` raises :class:`DataError` for a sample that does not fit the store (wrong joint or coordinate count,
    duplicate name, scores outside float16, a video whose frame count differs from the keypoints'); the store is
    unchanged and the caller may go on. ``close`` writes the index, splits and manifest; nothing is a valid store
    before it returns.

    ``layout=None`` writes a keypoint-free video store, filled with :meth:`add_video`. ``video_root``: the folder
    the samples' video paths are relative to (required when any sample has a video).
    """

    def __init__(self, directory: str | PathLike, layout: Layout | None, video_root: str | PathLike | None = None,
                 videos_inside: bool = False):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=False)
        self.layout = layout
        self.kind = KIND_VIDEO if layout is None else KIND_SKELETON
        if videos_inside and video_root is not None:
            raise StoreError("give video_root or videos_inside, not both", self.directory, "video_root")
        #: the videos live inside the store (paths relative to its directory), so it can move with them
        self.videos_inside = videos_inside
        self.video_root = Path(".") if videos_inside else None if video_root is None else Path(video_root).resolve()
        self._videos = 0
        self.coords: int | None = None
        self._keypoints: _NpyAppender | None = None
        self._scores: _NpyAppender | None = None
        self._samples = open(self.directory / SAMPLES, "w", encoding="utf-8", buffering=1 << 20)
        self._offsets = array("q")
        self._persons = array("i")
        self._frames = array("i")
        self._labels = array("i")
        self._name_to_index: dict[str, int] = {}
        self._rows = 0
        self._bytes = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def name_to_index(self) -> Mapping[str, int]:
        return self._name_to_index

    @property
    def labels(self) -> np.ndarray:
        """Labels written so far (a copy: the buffer keeps growing)."""
        return np.frombuffer(self._labels, dtype=np.int32).copy()

    @property
    def bytes_written(self) -> int:
        """Bytes of sample data appended so far (keypoints, scores and sample lines)."""
        return self._bytes

    def add(self, seq: SkeletonSequence, file: str | None = None, video: VideoRef | None = None) -> int:
        """Append one sample (and the video its keypoints were found in, frame by frame); returns its index."""
        src = file or seq.name
        if self.layout is None:
            raise StoreError("a video store holds no keypoints; write samples with add_video", self.directory)
        m, t, v, c = seq.keypoints.shape
        if video is not None:
            self._check_video(video, src)
            if video.frames != t:
                raise DataError(f"the video has {video.frames} frames but the keypoints {t}; a store keeps them "
                                "aligned frame by frame", src, "video.frames")
        if v != self.layout.num_joints:
            raise DataError(f"has {v} joints but the store's layout {self.layout.name!r} has "
                            f"{self.layout.num_joints}", src, "keypoints")
        if self.coords is None:
            self.coords = int(c)
            self._keypoints = _NpyAppender(self.directory / KEYPOINTS, _KEYPOINT_DTYPE, (v, c))
            self._scores = _NpyAppender(self.directory / SCORES, _SCORE_DTYPE, (v,))
        elif c != self.coords:
            raise DataError(f"has {c} coordinates per joint but earlier samples have {self.coords}", src,
                            "keypoints")
        if seq.name in self._name_to_index:
            raise DataError(f"duplicate sample name {seq.name!r} (first stored as sample "
                            f"{self._name_to_index[seq.name]})", src, "name")
        with np.errstate(over="ignore"):
            scores = np.asarray(seq.scores).reshape(m * t, v).astype(_SCORE_DTYPE)
        if not np.isfinite(scores).all():
            raise DataError("scores exceed the float16 range the store keeps them in (|score| > 65504)", src,
                            "scores")
        record = {"name": seq.name, "file": file, "meta": seq.meta}
        if video is not None:
            record["video"] = video.to_dict()
        line = _sample_line(record, src)
        assert self._keypoints is not None and self._scores is not None
        self._keypoints.append(np.asarray(seq.keypoints).reshape(m * t, v, c))
        self._scores.append(scores)
        self._samples.write(line + "\n")
        index = len(self._offsets)
        self._offsets.append(self._rows)
        self._persons.append(m)
        self._frames.append(t)
        self._labels.append(int(seq.label))
        self._name_to_index[seq.name] = index
        self._rows += m * t
        self._videos += video is not None
        self._bytes += m * t * v * (c * _KEYPOINT_DTYPE.itemsize + _SCORE_DTYPE.itemsize) + len(line) + 1
        return index

    def add_video(self, sample: VideoSample, file: str | None = None) -> int:
        """Append one sample of a keypoint-free video store; returns its index."""
        src = file or sample.name
        if self.layout is not None:
            raise StoreError("this store holds keypoints; add a video with add(seq, video=...)", self.directory)
        self._check_video(sample.video, src)
        if sample.name in self._name_to_index:
            raise DataError(f"duplicate sample name {sample.name!r} (first stored as sample "
                            f"{self._name_to_index[sample.name]})", src, "name")
        if not isinstance(sample.label, (int, np.integer)) or sample.label < -1:
            raise DataError(f"expected a class index >= 0 (or -1 for unknown), got {sample.label!r}", src, "label")
        line = _sample_line({"name": sample.name, "file": file, "meta": sample.meta,
                             "video": sample.video.to_dict()}, src)
        self._samples.write(line + "\n")
        self._bytes += len(line) + 1
        index = len(self._offsets)
        self._offsets.append(0)
        self._persons.append(0)
        self._frames.append(int(sample.video.frames))
        self._labels.append(int(sample.label))
        self._name_to_index[sample.name] = index
        self._videos += 1
        return index

    def _check_video(self, video: VideoRef, src: str) -> None:
        if self.video_root is None:
            raise StoreError("a sample refers to a video but the writer was given no video_root", self.directory,
                             "video_root")
        if not isinstance(video, VideoRef):
            raise DataError(f"expected a VideoRef, got {type(video).__name__}", src, "video")

    def close(self, *, class_names: list[str], splits: Mapping[str, Mapping[str, np.ndarray]],
              source: Mapping[str, Any], rejected: list[dict[str, str]] | None = None,
              extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Finish every file and write the manifest last; returns the manifest."""
        from skelact import __version__

        if not len(self):
            raise StoreError("no samples were written", self.directory)
        arrays: tuple[str, ...] = ()
        if self.kind == KIND_SKELETON:
            assert self._keypoints is not None and self._scores is not None
            self._keypoints.close()
            self._scores.close()
            arrays = (KEYPOINTS, SCORES)
        self._samples.close()
        persons = np.frombuffer(self._persons, dtype=np.int32)
        np.savez(self.directory / INDEX, offset=np.frombuffer(self._offsets, dtype=np.int64), persons=persons,
                 frames=np.frombuffer(self._frames, dtype=np.int32),
                 label=np.frombuffer(self._labels, dtype=np.int32))
        clean_splits = {}
        for split, subsets in splits.items():
            clean_splits[split] = {}
            for subset, idx in subsets.items():
                idx = np.asarray(idx, dtype=np.int64)
                if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
                    raise StoreError(f"split {split}/{subset} has sample indices outside 0..{len(self) - 1}")
                clean_splits[split][subset] = [int(i) for i in idx]
        _write_json(self.directory / SPLITS, clean_splits)
        files = {name: (self.directory / name).stat().st_size for name in (*arrays, INDEX, SAMPLES, SPLITS)}
        uses_videos = self.kind == KIND_VIDEO or self._videos > 0
        layout = self.layout
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION if uses_videos else _SKELETON_ONLY_VERSION,
            **({"kind": self.kind, "video_root": str(self.video_root), "num_videos": self._videos}
               if uses_videos else {}),
            "layout": None if layout is None else {"name": layout.name, "spec": layout.to_dict()},
            "num_joints": None if layout is None else layout.num_joints,
            "coords": self.coords,
            "num_samples": len(self),
            "total_rows": self._rows,
            "num_classes": len(class_names),
            "class_names": list(class_names),
            "max_persons": int(persons.max()),
            "dtypes": {"keypoints": "float32", "scores": "float16"} if layout is not None else {},
            "source": dict(source),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "skelact_version": __version__,
            "rejected": list(rejected or []),
            **dict(extra or {}),
            "files": files,
        }
        manifest = _printable_tree(manifest)  # e.g. a source path that is not valid UTF-8
        _write_json(self.directory / MANIFEST, manifest)
        self._closed = True
        return manifest

    def abort(self) -> None:
        """Close open files and delete the directory (used on errors and Ctrl-C)."""
        for f in (self._keypoints, self._scores):
            if f is not None:
                f.abort()
        try:
            self._samples.close()  # flushing the buffer fails again on a full disk; the folder goes anyway
        except OSError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)


def _printable(text: Any) -> str:
    from skelact.data.sources.base import printable

    return printable(text)


def _printable_tree(obj: Any) -> Any:
    """``obj`` (JSON-ready dicts, lists, strings) with every string made writable as UTF-8."""
    if isinstance(obj, str):
        return _printable(obj)
    if isinstance(obj, dict):
        return {_printable_tree(k): _printable_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_printable_tree(v) for v in obj]
    return obj


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1, default=_json_default)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def temporary_sibling(out: str | PathLike) -> Path:
    """A fresh name beside ``out`` (same file system, so the final rename is atomic)."""
    out = Path(out)
    return out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def commit_directory(tmp: str | PathLike, out: str | PathLike, overwrite: bool = False) -> None:
    """Move a finished store from ``tmp`` to ``out`` with ``os.replace``.

    An existing ``out`` is an error unless ``overwrite``; then it is first renamed aside and deleted only after the
    new store is in place, so at no point is a half-written store visible under ``out``.
    """
    tmp, out = Path(tmp), Path(out)
    if not out.exists() and not out.is_symlink():
        os.replace(tmp, out)
        return
    if not overwrite:
        raise StoreError("already exists; pass --overwrite (overwrite=True) to replace it", out)
    old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old, out)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


# ----------------------------------------------------------------------------------------------------------------
# reading


def _read_npy_shape(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset from an .npy header, without touching the data."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError) as e:
        raise StoreError(f"not a readable .npy file ({e})", path) from None
    if fortran:
        raise StoreError("array is in Fortran order; the store writes C order", path)
    return tuple(shape), dtype, offset


class SkeletonStore:
    """Read access to a store directory written by :class:`StoreWriter` (see the module docstring for the layout).

    Opening checks cheaply that every file is there, has the size the manifest recorded and agrees with the others,
    and raises :class:`StoreError` naming the file otherwise. Arrays are memory-mapped on first use; a store pickles
    without its maps (each DataLoader worker maps the files itself).
    """

    def __init__(self, path: str | PathLike, video_root: str | PathLike | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise StoreError("no such store directory" if not self.path.exists() else "not a directory", self.path)
        self.manifest = self._read_manifest()
        m = self.manifest
        self._check_files()
        n, rows = int(m["num_samples"]), int(m["total_rows"])
        #: "skeleton" (keypoints, perhaps with videos) or "video" (videos alone); version 1 stores are "skeleton"
        self.kind = str(m.get("kind", KIND_SKELETON))
        if self.kind not in (KIND_SKELETON, KIND_VIDEO):
            raise StoreError(f"unknown store kind {self.kind!r} (expected {KIND_SKELETON!r} or {KIND_VIDEO!r})",
                             self.path / MANIFEST, "kind")
        if self.kind == KIND_SKELETON:
            v, c = int(m["num_joints"]), int(m["coords"])
            self._check_npy(KEYPOINTS, (rows, v, c), _KEYPOINT_DTYPE)
            self._check_npy(SCORES, (rows, v), np.dtype(m.get("dtypes", {}).get("scores", "float16")))
        root = video_root if video_root is not None else m.get("video_root")
        #: the folder video paths are relative to (``video_root`` given here overrides the recorded one, for a
        #: dataset that moved); ``None`` when the store refers to no videos. A relative recorded root (".") means
        #: the videos are inside the store directory.
        self.video_root = None if root is None else Path(root) if video_root is not None or Path(root).is_absolute() \
            else self.path / root
        self._load_index(n, rows)
        self._splits = self._load_splits(n)
        self._layout: Layout | None = None
        self._keypoints: np.ndarray | None = None
        self._scores: np.ndarray | None = None
        self._records: list[bytes] | None = None
        self._names: list[str] | None = None

    # -- opening -------------------------------------------------------------------------------------------------

    def _read_manifest(self) -> dict[str, Any]:
        p = self.path / MANIFEST
        if not p.is_file():
            raise StoreError("missing: not a skelact store, or its writing did not finish", p)
        try:
            m = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StoreError(f"unreadable or truncated ({e})", p) from None
        if not isinstance(m, dict) or m.get("format") != FORMAT_NAME:
            raise StoreError(f"not a skelact store manifest (format should be {FORMAT_NAME!r})", p, "format")
        if m.get("format_version") not in READABLE_FORMAT_VERSIONS:
            raise StoreError(f"store format version {m.get('format_version')!r}; this skelact reads versions "
                             f"{', '.join(map(str, READABLE_FORMAT_VERSIONS))}", p, "format_version")
        for key in ("num_samples", "total_rows", "num_joints", "coords", "class_names", "layout", "files"):
            if key not in m:
                raise StoreError("missing key", p, key)
        if m.get("kind", KIND_SKELETON) == KIND_SKELETON:
            for key in ("num_joints", "coords", "layout"):
                if m[key] is None:
                    raise StoreError("is null in a store with keypoints", p, key)
        return m

    def _check_files(self) -> None:
        for name, size in self.manifest["files"].items():
            p = self.path / name
            if not p.is_file():
                raise StoreError("missing file (the store is incomplete; prepare it again)", p)
            actual = p.stat().st_size
            if actual != size:
                raise StoreError(f"{actual} bytes on disk but the manifest recorded {size} (truncated or "
                                 "modified; prepare the store again)", p)

    def _check_npy(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        p = self.path / name
        got_shape, got_dtype, offset = _read_npy_shape(p)
        if got_shape != shape:
            raise StoreError(f"array shape {got_shape} disagrees with the manifest ({shape})", p)
        if got_dtype != dtype:
            raise StoreError(f"dtype {got_dtype} disagrees with the manifest ({dtype})", p)
        expected = offset + int(np.prod(shape)) * dtype.itemsize
        if p.stat().st_size != expected:
            raise StoreError(f"{p.stat().st_size} bytes but its header needs {expected} (truncated?)", p)

    def _load_index(self, n: int, rows: int) -> None:
        p = self.path / INDEX
        try:
            with np.load(p) as z:
                arrays = {k: np.asarray(z[k]) for k in ("offset", "persons", "frames", "label")}
        except KeyError as e:
            raise StoreError(f"missing array {e}", p) from None
        except (OSError, ValueError, EOFError) as e:
            raise StoreError(f"unreadable ({e})", p) from None
        for key, arr in arrays.items():
            if arr.shape != (n,):
                raise StoreError(f"has {arr.shape} entries, the manifest says {n} samples", p, key)
        self.offsets = arrays["offset"].astype(np.int64)
        self.persons = arrays["persons"].astype(np.int64)
        self.frames = arrays["frames"].astype(np.int64)
        self.labels = arrays["label"].astype(np.int64)
        if self.kind == KIND_VIDEO:
            # no keypoint rows: persons 0 and offsets 0, frames are the videos' frame counts
            if (self.persons != 0).any() or (self.offsets != 0).any() or (self.frames < 1).any() or rows != 0:
                raise StoreError("a video store's index needs persons 0, offsets 0 and frames >= 1", p, "frames")
            return
        sizes = self.persons * self.frames
        if (sizes < 1).any():
            raise StoreError("a sample has no persons or no frames", p, "persons")
        expected_offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        if not np.array_equal(expected_offsets, self.offsets) or int(sizes.sum()) != rows:
            raise StoreError("offsets do not match persons x frames of the samples", p, "offset")

    def _load_splits(self, n: int) -> dict[str, dict[str, np.ndarray]]:
        p = self.path / SPLITS
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StoreError(f"unreadable ({e})", p) from None
        out: dict[str, dict[str, np.ndarray]] = {}
        try:
            for split, subsets in raw.items():
                out[split] = {}
                for subset, idx in subsets.items():
                    arr = np.asarray(idx, dtype=np.int64).reshape(-1)
                    if arr.size and (arr.min() < 0 or arr.max() >= n):
                        raise StoreError(f"sample index outside 0..{n - 1}", p, f"{split}.{subset}")
                    out[split][subset] = arr
        except (AttributeError, TypeError, ValueError):
            raise StoreError("expected {split: {subset: [sample indices]}}", p) from None
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_keypoints"] = state["_scores"] = None
        return state

    # -- access --------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.manifest["num_samples"])

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._keypoints is None or self._scores is None:
            self._keypoints = np.load(self.path / KEYPOINTS, mmap_mode="r")
            self._scores = np.load(self.path / SCORES, mmap_mode="r")
        return self._keypoints, self._scores

    def _index(self, i: int) -> int:
        n = len(self)
        j = int(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"sample index {i} out of range for a store of {n} samples")
        return j

    def __getitem__(self, i: int) -> SkeletonSequence:
        j = self._index(i)
        if self.kind == KIND_VIDEO:
            raise StoreError("a video store holds no keypoints; skelact extract-poses STORE OUT adds them (the "
                             "videos are at store.video_path(i))", self.path)
        kp, sc = self._arrays()
        m, t = int(self.persons[j]), int(self.frames[j])
        start = int(self.offsets[j])
        rows = slice(start, start + m * t)
        keypoints = np.array(kp[rows], dtype=np.float32).reshape(m, t, self.num_joints, self.coords)
        scores = np.array(sc[rows], dtype=np.float32).reshape(m, t, self.num_joints)
        rec = self._record(j)
        return SkeletonSequence(keypoints=keypoints, scores=scores, label=int(self.labels[j]), name=rec["name"],
                                layout=self.layout.name, meta=dict(rec.get("meta") or {}))

    def __iter__(self) -> Iterator[SkeletonSequence]:
        for i in range(len(self)):
            yield self[i]

    def _record(self, j: int) -> dict[str, Any]:
        # Raw lines are kept and parsed per access: a few bytes per sample instead of a dict per sample in every
        # DataLoader worker.
        if self._records is None:
            p = self.path / SAMPLES
            try:
                with open(p, "rb") as f:
                    lines = f.read().splitlines()
            except OSError as e:
                raise StoreError(f"unreadable ({e.strerror or e})", p) from None
            if len(lines) != len(self):
                raise StoreError(f"{len(lines)} lines, the manifest says {len(self)} samples", p)
            self._records = lines
        try:
            rec = json.loads(self._records[j])
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StoreError(f"line {j + 1} is not valid JSON ({e})", self.path / SAMPLES) from None
        return rec

    @property
    def has_keypoints(self) -> bool:
        return self.kind == KIND_SKELETON

    def video(self, i: int) -> VideoRef | None:
        """The sample's video reference (``None`` when the store recorded none for it)."""
        j = self._index(i)
        raw = self._record(j).get("video")
        return None if raw is None else VideoRef.from_dict(raw, f"{self.path / SAMPLES}: line {j + 1}")

    def video_path(self, i: int) -> Path:
        """Where the sample's video file is: the video root joined with its relative path."""
        ref = self.video(i)
        if ref is None or self.video_root is None:
            raise StoreError(f"sample {self.name(i)!r} has no video reference", self.path / SAMPLES, "video")
        return self.video_root / ref.path

    def name(self, i: int) -> str:
        if self._names is not None:
            return self._names[self._index(i)]
        return self._record(self._index(i))["name"]

    def meta(self, i: int) -> dict[str, Any]:
        return dict(self._record(self._index(i)).get("meta") or {})

    def file(self, i: int) -> str | None:
        """The source file the sample was read from."""
        return self._record(self._index(i)).get("file")

    @property
    def names(self) -> list[str]:
        """All sample names, in order (parsed once, then cached)."""
        if self._names is None:
            self._names = [self._record(j)["name"] for j in range(len(self))]
        return list(self._names)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def num_classes(self) -> int:
        return len(self.manifest["class_names"])

    @property
    def num_joints(self) -> int:
        self._need_keypoints("num_joints")
        return int(self.manifest["num_joints"])

    @property
    def coords(self) -> int:
        self._need_keypoints("coords")
        return int(self.manifest["coords"])

    def _need_keypoints(self, what: str) -> None:
        if self.kind == KIND_VIDEO:
            raise StoreError("a video store has no keypoints (run skelact extract-poses on it first)", self.path,
                             what)

    @property
    def max_persons(self) -> int:
        return int(self.manifest.get("max_persons", int(self.persons.max())))

    @property
    def rejected(self) -> list[dict[str, str]]:
        return list(self.manifest.get("rejected", []))

    @property
    def layout(self) -> Layout:
        self._need_keypoints("layout")
        if self._layout is None:
            spec = self.manifest["layout"].get("spec")
            self._layout = Layout.from_dict(spec, source=self.path / MANIFEST)
        return self._layout

    @property
    def splits(self) -> dict[str, dict[str, np.ndarray]]:
        return {s: dict(sub) for s, sub in self._splits.items()}

    def split(self, name: str, subset: str) -> np.ndarray:
        """Sample indices of one subset of a recorded split (int64)."""
        if name not in self._splits:
            known = ", ".join(sorted(self._splits)) or "none"
            raise StoreError(f"no split {name!r} in this store (splits: {known})", self.path, "split")
        subsets = self._splits[name]
        if subset not in subsets:
            raise StoreError(f"split {name!r} has no subset {subset!r} (subsets: {', '.join(subsets)})",
                             self.path, "subset")
        return subsets[subset].copy()

    def nbytes(self) -> int:
        """Bytes the store directory occupies (file sizes, not counting the file system's block rounding)."""
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def missing(self, rows_per_chunk: int = 1 << 18) -> dict[str, int] | None:
        """Gaps in the keypoints (``None`` for a video store): ``missing_joints`` of ``joint_slots`` (a joint whose
        coordinates are all exactly 0, the convention every reader writes a missing joint as, e.g. the arrays
        format and NTU's padding) and ``empty_frames`` of ``frames`` (a frame in which no person of the sample has
        a joint), with ``samples_with_empty_frames``. Reads the keypoints once, a chunk of rows at a time."""
        if self.kind == KIND_VIDEO:
            return None
        kp, _ = self._arrays()
        total_rows = int(kp.shape[0])
        row_empty = np.empty(total_rows, dtype=bool)
        missing_joints = 0
        for start in range(0, total_rows, rows_per_chunk):
            absent = (np.asarray(kp[start:start + rows_per_chunk]) == 0).all(axis=-1)  # [rows, V]
            missing_joints += int(absent.sum())
            row_empty[start:start + rows_per_chunk] = absent.all(axis=-1)
        empty_frames = samples_with_empty = 0
        for start, m, t in zip(self.offsets.tolist(), self.persons.tolist(), self.frames.tolist()):
            # a frame is empty when every person of the sample is absent in it (rows are person-major)
            empty = int(row_empty[start:start + m * t].reshape(m, t).all(axis=0).sum()) if m else t
            empty_frames += empty
            samples_with_empty += empty > 0
        return {"missing_joints": missing_joints, "joint_slots": total_rows * self.num_joints,
                "empty_frames": empty_frames, "frames": int(self.frames.sum()),
                "samples_with_empty_frames": samples_with_empty}

    def info(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``skelact info --json`` prints)."""
        m = self.manifest
        counts = np.bincount(self.persons)
        return {
            "path": str(self.path.resolve()),
            "num_samples": len(self),
            "num_classes": self.num_classes,
            "kind": self.kind,
            "layout": m["layout"]["name"] if self.has_keypoints else None,
            "num_joints": m["num_joints"],
            "coords": m["coords"],
            "video_root": None if self.video_root is None else str(self.video_root),
            "num_videos": int(m.get("num_videos", 0)),
            "max_persons": self.max_persons,
            "persons": {str(k): int(v) for k, v in enumerate(counts) if v},
            "splits": {s: {k: int(v.size) for k, v in sub.items()} for s, sub in self._splits.items()},
            "frames": {"min": int(self.frames.min()), "mean": float(self.frames.mean()),
                       "max": int(self.frames.max()), "total": int(self.frames.sum())},
            "bytes": self.nbytes(),
            "class_names": self.class_names,
            "rejected": len(m.get("rejected", [])),
            "missing": self.missing(),
            "source": m.get("source"),
            "created": m.get("created"),
            "skelact_version": m.get("skelact_version"),
            "format_version": m.get("format_version"),
        }

    def __repr__(self) -> str:
        what = f"layout={self.manifest['layout']['name']!r}" if self.has_keypoints else "videos only"
        return f"SkeletonStore({str(self.path)!r}, {len(self)} samples, {self.num_classes} classes, {what})"
