"""Where datasets live and where their prepared stores are cached, so ``skelact train CONFIG`` needs no prepare step.

A config names its dataset by reader format and a source path relative to the *data root*: ``$SKELACT_DATA`` when
set, else ``../shared/data`` next to the current directory when it exists, else ``shared/data`` next to the
checkout this package was installed from (the layout the project's tests and CI use). An absolute source path is
used as it is.

The first run prepares the store (:func:`skelact.data.prepare.prepare`) into the *cache*: ``$SKELACT_CACHE`` when
set, else ``~/.cache/skelact/stores``, in a directory named after a hash of what determines its content (format,
resolved source path, reader options, store format version, the reader's version) and of the source's files as
they are now: the relative path, size and modification time of every file under the source, and the bytes of every
file a reader option names (a layout YAML, a split file). So an edited ``labels.csv`` or layout gives a new store
rather than the old one without a word (issue 27, item 8). Later runs open it directly and say which cached store
they use and when it was made.
``prepare`` builds the store under a temporary name and renames it into place, so an interrupted first run leaves
no half store. Two runs that start together on a cold cache do not both prepare: the first takes the store's lock
(``.<store>.lock`` beside it, :func:`skelact.locking.lock_beside`), the second says it is waiting for that process,
waits until it is done and then opens the store it wrote (if the first failed or was killed, the second prepares
it instead). Waiting rather than failing is deliberate: a sweep of trainings started at once on a fresh machine
should all run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from skelact.errors import DataError, StoreError

#: the checkout this package lives in when installed editable (src layout): <repo>/src/skelact/data/cache.py
_REPO = Path(__file__).resolve().parents[3]


def data_root() -> Path:
    """The folder relative dataset sources are looked up in (see the module docstring)."""
    env = os.environ.get("SKELACT_DATA")
    if env:
        return Path(env).expanduser()
    beside_cwd = Path.cwd().parent / "shared" / "data"
    if beside_cwd.is_dir():
        return beside_cwd
    return _REPO.parent / "shared" / "data"


def cache_root() -> Path:
    """The folder prepared stores are cached in."""
    env = os.environ.get("SKELACT_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "skelact" / "stores"


def resolve_source(source: str | PathLike) -> Path:
    """The dataset path a config's ``data.source`` names; a one-line error names the path tried when it is missing."""
    raw = Path(source).expanduser()
    path = raw if raw.is_absolute() else data_root() / raw
    if not path.exists():
        hint = "" if raw.is_absolute() else (f" (data.source {str(source)!r} under the data root {data_root()}; "
                                               "set SKELACT_DATA or give an absolute path)")
        raise DataError(f"dataset not found{hint}", path, "data.source")
    return path.resolve()


def source_fingerprint(source: Path) -> str:
    """A hash of the relative path, size and modification time (ns) of every file under ``source`` (or of
    ``source`` itself when it is a file): what changes when a user edits, adds or removes a file, without reading
    the data."""
    digest = hashlib.sha256()

    def add(path: Path, name: str) -> None:
        try:
            st = path.stat()
        except OSError:
            return  # vanished while we looked (or a dangling link): the reader will say so
        digest.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))

    if source.is_file():
        add(source, source.name)
        return digest.hexdigest()
    for folder, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            add(path, path.relative_to(source).as_posix())
    return digest.hexdigest()


def option_file_digests(source: Path, options: Mapping[str, Any]) -> dict[str, str]:
    """``{option: sha256 of the file's bytes}`` for every option naming an existing file (relative to the current
    directory, as layouts are looked up, or to the source, as split files are)."""
    out = {}
    for key, value in sorted(options.items()):
        if not isinstance(value, (str, PathLike)) or not str(value):
            continue
        for candidate in (Path(value).expanduser(), source / str(value)):
            try:
                if candidate.is_file():
                    out[key] = hashlib.sha256(candidate.read_bytes()).hexdigest()
                    break
            except OSError:
                continue
    return out


def store_key(fmt: str, source: Path, options: Mapping[str, Any] | None = None) -> str:
    """A short hash of everything that decides a prepared store's content (see the module docstring)."""
    from skelact.data.sources import FORMATS, source_class
    from skelact.data.store import FORMAT_VERSION

    key = {"format": fmt, "source": str(source), "options": dict(options or {}), "store_format_version": FORMAT_VERSION,
           "files": source_fingerprint(source), "option_files": option_file_digests(source, dict(options or {}))}
    reader_version = source_class(fmt).reader_version if fmt in FORMATS else 1
    if reader_version != 1:  # version 1 leaves the key as it was before readers had versions
        key["reader_version"] = reader_version
    blob = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def cached_store_path(fmt: str, source: str | PathLike, options: Mapping[str, Any] | None = None) -> Path:
    """Where the store of ``(fmt, source, options)`` is (or will be) cached."""
    src = resolve_source(source)
    return cache_root() / f"{fmt}-{src.name}-{store_key(fmt, src, options)}"


def open_or_prepare(fmt: str, source: str | PathLike, options: Mapping[str, Any] | None = None,
                    progress: bool = True, log=print):
    """The :class:`~skelact.data.store.SkeletonStore` of a dataset, prepared into the cache on first use."""
    from skelact.data.store import MANIFEST, SkeletonStore

    path = cached_store_path(fmt, source, options)
    if not (path / MANIFEST).is_file():
        from skelact.data.prepare import prepare
        from skelact.data.store_target import acquire_store_lock

        src = resolve_source(source)
        path.parent.mkdir(parents=True, exist_ok=True)
        # look, announce and prepare under one hold of the store's lock: another run preparing the same store is
        # waited for (saying so), and its store is then used; only the run that prepares says "preparing"
        with acquire_store_lock(path, wait=True, log=log):
            if (path / MANIFEST).is_file():
                return SkeletonStore(path)
            log(f"preparing the {fmt} dataset {src} into {path} (first use; later runs reuse it)")
            report = prepare(fmt, src, path, progress=progress, lock_held=True, **dict(options or {}))
        log(report.summary(max_rejected=5))
        return SkeletonStore(path)
    store = SkeletonStore(path)
    log(f"using the cached store {path} (made {store.manifest.get('created')} from {fmt} {resolve_source(source)}; "
        "a changed source file, layout or reader makes a new one)")
    return store


def open_store(path: str | PathLike):
    """A prepared store given by path (``data.store``); a one-line error when it is not there."""
    from skelact.data.store import SkeletonStore

    p = Path(path).expanduser()
    if not p.exists():
        raise StoreError("store not found (prepare it with `skelact prepare`, or give data.format and data.source "
                         "instead of data.store)", p, "data.store")
    return SkeletonStore(p)
