"""Plain video datasets (UCF101, HMDB51, Kinetics and users' own): ``skelact prepare video-folder SRC OUT``.

Two layouts, told apart by what SRC is:

* **a folder with one sub-folder per class** (``SRC/<class>/<video>``, deeper folders allowed: the first folder
  under SRC names the class). Classes are numbered in sorted order. A video lying directly in SRC has no class and
  gets label -1 (unknown); it is stored, not dropped.
* **a CSV list** ``path,label[,split]`` (a header line with those names is optional). ``path`` is relative to the
  CSV's folder; ``label`` is a class name in every row (numbered in sorted order) or a 0-based class index in every
  row; ``split``, when given, is recorded as split ``list`` with one subset per value (``train``, ``test``, ...).

UCF101's own lists come with ``--split-file``: given ``trainlist01.txt`` (lines ``Class/video.avi label``) or
``testlist01.txt`` (lines ``Class/video.avi``), the other list of the pair is taken from the same folder and the
pair is recorded as split ``split01`` with subsets ``train`` and ``test``; ``classInd.txt`` beside them (lines
``1 ApplyEyeMakeup``, 1-based) numbers the classes when present. SRC is then the folder of class folders.

Every video is probed (:func:`skelact.video.probe.probe_frames`: frame count from its packets, rate, size, one
decoded frame); a truncated file, a file that is not a video and a video without frames are rejected with the
reason, which ``prepare`` lists and keeps in the store's manifest. The store holds no keypoints: each sample is a
label and a :class:`~skelact.data.video_sample.VideoRef`; ``skelact extract-poses STORE OUT`` adds keypoints.
Sample names are the video's path under the root without its ending (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from skelact.data.sources.base import Source
from skelact.data.video_sample import VideoRef, VideoSample
from skelact.errors import DataError
from skelact.video.names import VIDEO_SUFFIXES, is_video_name

#: ``--split-file`` names taken as UCF101-style lists rather than skelact split files
UCF_LIST_NAME = re.compile(r"^(train|test)list(\d+)\.txt$", re.IGNORECASE)
#: the split a CSV's third column is recorded as
CSV_SPLIT = "list"


@dataclass(frozen=True)
class VideoEntry:
    """One video to probe: its path relative to the root (POSIX), its label and the split subset the list gave."""

    path: str
    label: int
    label_name: str | None
    subset: str | None


def is_ucf_list(path: str | PathLike) -> bool:
    """True for a file named like UCF101's ``trainlist01.txt`` / ``testlist01.txt``."""
    return UCF_LIST_NAME.match(Path(path).name) is not None


class VideoFolderSource(Source):
    """Videos under a folder of class folders, or listed in a CSV (see the module docstring)."""

    format: ClassVar[str] = "video-folder"
    #: ``prepare`` writes a keypoint-free video store for sources of this kind
    kind: ClassVar[str] = "video"

    def __init__(self, root: str | PathLike, split_file: str | PathLike | None = None):
        given = Path(root)
        if not given.exists():
            raise DataError("no such folder or list file", given)
        self.list_file = given if given.is_file() else None
        super().__init__(given.parent if self.list_file is not None else given)
        self.split_file = None if split_file is None else Path(split_file)
        if self.split_file is not None and not is_ucf_list(self.split_file):
            raise DataError("expected a UCF101-style list named trainlistNN.txt or testlistNN.txt", self.split_file,
                            "split_file")
        self.layout = None  # type: ignore[assignment]  # no keypoints
        self._entries: list[VideoEntry] | None = None
        self._class_names: list[str] = []
        self._named_splits: dict[str, dict[str, list[str]]] = {}

    # -- enumeration -------------------------------------------------------------------------------------------

    def items(self) -> list[VideoEntry]:
        if self._entries is None:
            self._entries = self._read_list() if self.list_file is not None else self._scan_folder()
            if self.split_file is not None:
                self._named_splits["split" + UCF_LIST_NAME.match(self.split_file.name).group(2)] = (  # type: ignore
                    self._ucf_split())
        return list(self._entries)

    def _scan_folder(self) -> list[VideoEntry]:
        found = sorted(p.relative_to(self.root) for p in self.root.rglob("*") if p.is_file() and is_video_name(p))
        found = [p for p in found if not any(part.startswith(".") for part in p.parts)]
        if not found:
            raise DataError(f"no video files (endings {', '.join(VIDEO_SUFFIXES)}) under this folder", self.root)
        folders = sorted({p.parts[0] for p in found if len(p.parts) > 1})
        self._class_names = self._ucf_classes(folders) if self.split_file is not None else folders
        number = {name: k for k, name in enumerate(self._class_names)}
        entries = []
        for p in found:
            name = p.parts[0] if len(p.parts) > 1 else None
            if name is not None and name not in number:
                raise DataError(f"class folder {name!r} is not in {self.split_file.parent / 'classInd.txt'}",  # type: ignore
                                self.root / name)
            entries.append(VideoEntry(p.as_posix(), -1 if name is None else number[name], name, None))
        return entries

    def _read_list(self) -> list[VideoEntry]:
        path = self.list_file
        assert path is not None
        rows = _csv_rows(path)
        names = [label for _, _, label, _ in rows]
        if all(_is_int(t) for t in names):
            labels = [int(t) for t in names]
            if min(labels) < -1:
                raise DataError(f"label {min(labels)} is negative", path, "label")
            self._class_names = [f"class_{k}" for k in range(max(labels) + 1)]
            named = [None] * len(rows)
        else:
            self._class_names = sorted(set(names))
            number = {c: k for k, c in enumerate(self._class_names)}
            labels = [number[t] for t in names]
            named = names
        entries, subsets = [], {}
        for (line, video, _, subset), label, label_name in zip(rows, labels, named):
            rel = _inside(video, path, line)
            entries.append(VideoEntry(rel, label, label_name, subset))
            if subset:
                subsets.setdefault(subset, []).append(_sample_name(rel))
        if subsets:
            self._named_splits[CSV_SPLIT] = subsets
        return entries

    # -- UCF101 lists ------------------------------------------------------------------------------------------

    def _pair(self) -> dict[str, Path]:
        assert self.split_file is not None
        kind, number = UCF_LIST_NAME.match(self.split_file.name).groups()  # type: ignore[union-attr]
        return {subset: self.split_file.with_name(f"{subset}list{number}.txt") for subset in ("train", "test")}

    def _ucf_classes(self, folders: list[str]) -> list[str]:
        assert self.split_file is not None
        index = self.split_file.with_name("classInd.txt")
        if not index.is_file():
            return folders
        numbered = {}
        for line_no, line in enumerate(_text(index).splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not _is_int(parts[0]) or int(parts[0]) < 1:
                raise DataError(f"expected '<1-based number> <class name>', got {line.strip()!r}", index,
                                f"line {line_no}")
            numbered[int(parts[0]) - 1] = parts[1]
        if sorted(numbered) != list(range(len(numbered))):
            raise DataError(f"class numbers are not 1..{len(numbered)} without gaps", index)
        return [numbered[k] for k in range(len(numbered))]

    def _ucf_split(self) -> dict[str, list[str]]:
        subsets: dict[str, list[str]] = {}
        for subset, path in self._pair().items():
            if not path.is_file():
                raise DataError(f"the {subset} list of the pair is missing (expected beside {self.split_file})",
                                path)
            names = []
            for line_no, line in enumerate(_text(path).splitlines(), start=1):
                if line.strip():
                    names.append(_sample_name(_inside(line.split()[0], path, line_no)))
            subsets[subset] = names
        return subsets

    # -- the Source interface ----------------------------------------------------------------------------------

    def read(self, item: VideoEntry) -> VideoSample:  # type: ignore[override]
        from skelact.video.probe import probe_frames

        probed = probe_frames(self.root / item.path)
        info = probed.info
        meta: dict[str, Any] = {"codec": info.codec}
        if item.label_name is not None:
            meta["label_name"] = item.label_name
        if item.subset is not None:
            meta["subset"] = item.subset
        ref = VideoRef(path=item.path, frames=probed.frames, fps=info.fps, width=info.width, height=info.height)
        return VideoSample(name=_sample_name(item.path), label=item.label, video=ref, meta=meta)

    def class_names(self) -> list[str]:
        self.items()
        return list(self._class_names)

    def splits_from_file(self) -> dict[str, dict[str, list[str]]]:
        """The CSV's split column, or the UCF101 list pair, as ``{split: {subset: [sample names]}}``."""
        self.items()
        return {k: dict(v) for k, v in self._named_splits.items()}

    def describe(self, item: VideoEntry) -> str:  # type: ignore[override]
        return str(self.root / item.path)


def _sample_name(rel: str) -> str:
    return PurePosixPath(rel).with_suffix("").as_posix()


def _inside(text: str, where: Path, line: int) -> str:
    rel = PurePosixPath(text.strip().replace("\\", "/"))
    if not text.strip() or rel.is_absolute() or ".." in rel.parts:
        raise DataError(f"expected a video path relative to {where.parent}, got {text!r}", where, f"line {line}")
    return rel.as_posix()


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror or e})", path) from None
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e})", path) from None


def _csv_rows(path: Path) -> list[tuple[int, str, str, str | None]]:
    """``(line, path, label, split or None)`` per row of a ``path,label[,split]`` list."""
    rows: list[tuple[int, str, str, str | None]] = []
    width: int | None = None
    for line, cells in enumerate(csv.reader(_text(path).splitlines()), start=1):
        cells = [c.strip() for c in cells]
        if not cells or not any(cells):
            continue
        if line == 1 and [c.lower() for c in cells[:2]] == ["path", "label"]:
            width = len(cells)
            continue
        if len(cells) not in (2, 3) or (width is not None and len(cells) != width):
            raise DataError(f"expected path,label[,split], got {len(cells)} cell(s)", path, f"line {line}")
        if not cells[1]:
            raise DataError("empty label", path, f"line {line}, column label")
        rows.append((line, cells[0], cells[1], cells[2] if len(cells) == 3 and cells[2] else None))
    if not rows:
        raise DataError("no videos listed (expected lines path,label[,split])", path)
    return rows


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


__all__ = ["VideoEntry", "VideoFolderSource", "is_ucf_list"]
