"""The interface every reader implements, and the registry of formats ``skelact prepare`` accepts.

A source is cheap to construct and to enumerate (``items`` lists what to read without parsing it), and ``read``
parses one item into a :class:`SkeletonSequence`. ``read`` runs in worker processes, so a source must be
picklable and ``read`` must not depend on state built by other calls. Sources never hard-code splits: they put the
facts a split needs into ``meta`` and name the standard splits that apply in ``split_names``
(see :mod:`skelact.data.splits`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

from skelact.data.sequence import SkeletonSequence


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

