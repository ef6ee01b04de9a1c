"""The interface every reader implements, and the registry of formats ``skelact prepare`` accepts.

A source is cheap to construct and to enumerate (``items`` lists what to read without parsing it), and ``read``
parses one item into a :class:`SkeletonSequence`. ``read`` runs in worker processes, so a source must be
picklable and ``read`` must not depend on state built by other calls. Sources never hard-code splits: they put the
facts a split needs into ``meta`` and name the standard splits that apply in ``split_names``
(see :mod:`skelact.data.splits`).

Hostile input. Readers take ``max_frames`` (default :data:`DEFAULT_MAX_FRAMES`) and refuse, before allocating
anything, a sample whose frame count or frame indices exceed it or far exceed the data the file holds
(:func:`check_frame_count`): a 121 KB JSON naming ``frame_index: 2000000`` would otherwise become a 687 MB sample.
File names that are not valid UTF-8 are shown through :func:`printable` (``S001\\xff.skeleton``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

from skelact.data.sequence import SkeletonSequence
from skelact.errors import ConfigError, DataError

#: frames one sample may have unless the user says otherwise (``skelact prepare --max-frames``): about 55 minutes at
#: 30 fps, 30x the longest clip of NTU RGB+D, Kinetics, NW-UCLA or Penn Action, and at most ~1 GB for two persons of
#: 25 joints in float32 (the memory a single bad file may take)
DEFAULT_MAX_FRAMES = 100_000
#: a sample may span at most this many times the frames its file actually holds (gaps stay as zero frames) ...
SPARSE_FACTOR = 100
#: ... unless it spans no more than this many frames in all (a few frames of a short clip with gaps is fine)
SPARSE_FRAMES_ALLOWED = 1000


def check_frame_count(frames: int, max_frames: int, source: str | PathLike, field: str,
                      present: int | None = None) -> int:
    """Refuse a frame count beyond ``max_frames``, or (given the ``present`` frames the file holds) one over
    ``SPARSE_FACTOR`` times them and over ``SPARSE_FRAMES_ALLOWED``; returns ``frames``. Called before allocating."""
    if frames > max_frames:
        raise DataError(f"{frames} frames is more than the cap of {max_frames} (a corrupt or hostile file? raise "
                        "the cap with --max-frames if the data is real)", source, field)
    if present is not None and frames > SPARSE_FRAMES_ALLOWED and frames > SPARSE_FACTOR * present:
        raise DataError(f"spans {frames} frames but holds data for only {present} (more than {SPARSE_FACTOR}x "
                        "the data present: a corrupt frame index?)", source, field)
    return frames


def max_frames_option(value: Any) -> int:
    """A valid ``max_frames`` option (a positive integer)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"expected a positive number of frames, got {value!r}", field="max_frames")
    return int(value)


def printable(text: str | PathLike) -> str:
    """``text`` as something that can be printed and written as UTF-8: a file name that is not valid UTF-8 (which
    Python holds with surrogate escapes) shows its undecodable bytes as ``\\xff``."""
    text = str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name decoding produces
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_printable(text: str | PathLike) -> bool:
    """False for a name holding bytes that are not valid UTF-8 (surrogate escapes)."""
    try:
        str(text).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Source(ABC):
    """A foreign dataset on disk, read one sample at a time."""

    #: the format key used on the command line (``skelact prepare FORMAT ...``)
    format: ClassVar[str]
    #: built-in layout name of the data this source yields (a source may override per instance)
    layout: str
    #: bumped whenever the reader's output for the same files changes, so stores cached by an older reader are
    #: rebuilt rather than silently reused (it is part of the cache key, :func:`skelact.data.cache.store_key`)
    reader_version: ClassVar[int] = 1

    def __init__(self, root: str | PathLike, **options: Any):
        self.root = Path(root)
        self.options = options

    @abstractmethod
    def items(self) -> list[Any]:
        """What to read, in a stable order (file paths, or keys into an index file). Must not parse samples."""

    @abstractmethod
    def read(self, item: Any) -> SkeletonSequence:
        """Parse one item; raise :class:`skelact.errors.DataError` naming the file and field on bad input."""

    @abstractmethod
    def class_names(self) -> list[str] | None:
        """Human-readable class names, indexed by label.

        ``None`` when the names are only known from the samples themselves: the store then takes them from each
        record's ``meta["label_name"]`` (and names a class it never saw ``class_<k>``).
        """

    def split_names(self) -> list[str]:
        """Names of the standard splits (from :mod:`skelact.data.splits`) that apply to this source."""
        return []

    def describe(self, item: Any) -> str:
        """How to name ``item`` in messages (usually its path)."""
        return str(item)

