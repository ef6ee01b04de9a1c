"""Readers for foreign skeleton formats, looked up by the format key of ``skelact prepare FORMAT``.

Modules are imported lazily so that asking for one format never pays for (or breaks on) another's imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from skelact.data.sources.base import Source
from skelact.errors import DataError

#: format key -> "module:Class"; aliases point at the same class
FORMATS: dict[str, str] = {
    "ntu": "skelact.data.sources.ntu:NTUSkeletonSource",
    "ntu-npy": "skelact.data.sources.ntu:NTUNpySource",
    "nw-ucla": "skelact.data.sources.nw_ucla:NWUCLASource",
    "openpose-json": "skelact.data.sources.openpose_json:OpenPoseJSONSource",
    "kinetics-json": "skelact.data.sources.openpose_json:OpenPoseJSONSource",
    "pyskl": "skelact.data.sources.pyskl:PysklPickleSource",
    "penn-action": "skelact.data.sources.penn_action:PennActionSource",
    "penn-action-rendered": "skelact.data.sources.penn_action_rendered:PennActionRenderedSource",
    "arrays": "skelact.data.sources.arrays:ArraySource",
    "video-folder": "skelact.data.sources.video_folder:VideoFolderSource",
}


def source_class(fmt: str) -> type[Source]:
    """The reader class for a format key; a one-line error lists the known keys."""
    try:
        target = FORMATS[fmt]
    except KeyError:
        raise DataError(f"unknown format {fmt!r}; known formats: {', '.join(sorted(FORMATS))}",
                        field="FORMAT") from None
    module, cls = target.split(":")
    return getattr(import_module(module), cls)


def open_source(fmt: str, root: Any, **options: Any) -> Source:
    """Construct the reader for ``fmt`` over ``root``."""
    return source_class(fmt)(root, **options)


__all__ = ["FORMATS", "Source", "open_source", "source_class"]
