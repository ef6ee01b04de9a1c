"""NTU RGB+D 60/120 skeletons: the raw Kinect v2 ``.skeleton`` text files and txt2npy's ``.skeleton.npy`` dicts.

The ``.skeleton`` format (Shahroudy et al., "NTU RGB+D", CVPR 2016; reader ``Matlab/read_skeleton_file.m`` of
github.com/shahroudy/NTURGB-D), one value group per line::

    <number of frames>
    per frame:  <number of bodies>
      per body: bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence handRightState
                isRestricted leanX leanY trackingState                                  (10 values)
                <number of joints>                                                      (25)
                per joint: x y z depthX depthY colorX colorY orientationW orientationX orientationY orientationZ
                           trackingState                                                (12 values)

Which bodies become the (at most two) persons of a sample, and which frames survive, reproduces CTR-GCN's
preprocessing (Chen et al., ICCV 2021; ``data/ntu/get_raw_skes_data.py`` and ``data/ntu/get_raw_denoised_data.py``
of github.com/Uason-Chen/CTR-GCN, themselves taken from Microsoft's SGN / VA-NN repositories), in this order:

1. Reading: a frame with 0 bodies is dropped (``get_raw_bodies_data``). Records are grouped into bodies by their
   ``bodyID``, in order of first appearance. A body's *motion* is the sum over x, y, z of the variance of all its
   joint positions over all its frames (the "main actor" heuristic of the NTU authors' FAQ).
2. A file with a single bodyID is not denoised: that body is the one actor and every frame it appears in is kept.
3. Otherwise (``denoising_bodies_data``):

   a. *length*: a body seen in at most ``NOISE_LENGTH_MAX`` = 11 frames is noise (``noise_len_thres``).
      If only one body is left, it is the actor.
   b. *spread*: visiting bodies in order of first appearance and stopping as soon as one is left, a frame of a body
      is noisy when its joints' x extent exceeds ``SPREAD_X_OVER_Y`` = 0.8 times their y extent
      (``noise_spr_thres1``). A body with a noisy-frame ratio >= ``NOISY_FRAME_RATIO`` = 0.69754
      (``noise_spr_thres2``) is dropped; a body with some noisy frames gets its motion recomputed over its clean
      frames, keeping the smaller value. If only one body is left, it is the actor.
   c. The remaining bodies are sorted by motion, largest first (a stable sort).
   d. *motion thresholds* (``denoising_by_motion``: keep the first body, drop the others whose motion lies outside
      [``MOTION_LOW``, ``MOTION_HIGH``] = [0.089925, 2]) are defined in the script but their call is commented
      out, so they do not shape CTR-GCN's data. ``motion_filter=True`` applies them.
4. Actor slots (``get_two_actors_points``): actor 1 is the body with the largest motion. Each further body, in order
   of motion, joins actor 1 if its frame interval does not overlap actor 1's (``min(ends) - max(starts) <= 0``, so
   intervals sharing one frame count as disjoint; actor 1's interval then grows to cover it), else joins actor 2
   under the same test against actor 2's interval, which the script starts at the "virtual" interval ``[0, 0]``
   and grows with ``min``/``max`` (so actor 2's start stays 0), else is dropped. A body written later overwrites
   earlier data of the same slot in a shared frame, as in the script.
5. Missing frames (``remove_missing_frames``, multi-body files only): a frame where every kept actor is absent is
   dropped. The script tests ``joints.sum() == 0``; we count an actor as absent when it has no record in the frame
   or its 75 coordinates are all exactly zero, which is the same test except for non-zero coordinates that happen
   to sum to exactly 0.

Deliberate differences, none of which changes the five shared sample files:

* Frame intervals use the frames where a body was recorded. The script assumes a body's frames are consecutive
  (it appends ``last + 1``), which shifts the data of a body that vanishes and reappears; we place every record in
  its own frame.
* Motion variances are accumulated in float64 (the script uses float32); this can only reorder bodies whose motion
  agrees to about 7 digits.
* ``M`` is the number of actors actually kept (1 or 2): no empty second person is padded in, and a sample whose
  bodies all end up in actor 1's slot has ``M = 1``. ``max_persons=1`` keeps actor 1 only and drops the frames
  where it is absent.
* Where the script would crash or write an empty sample (no body in any frame, every body noise), we raise
  :class:`DataError`, and ``skelact prepare`` skips the file. (CTR-GCN never reads such files: it starts from a list
  of available samples that leaves out the official "samples with missing skeletons".)

With ``denoise=False`` no body is dropped: bodies are sorted by motion (largest first), the first ``max_persons``
become the persons, one body each, and frames where none of them is present are dropped.

Scores come from the joints' Kinect ``trackingState``: tracked (2) -> 1.0, inferred (1) -> 0.5, not tracked
(0) -> 0.0, and 0.0 wherever the actor is absent in a frame.

Speed (about 5-6x CTR-GCN's line-by-line reader on one core): no Python loop runs over joint lines. A Python walk
over the frame and body counts finds every body; joint counts, spacing and tracking states are checked with array
operations; bodyIDs stay text, since their 17 digits do not survive a float64 (the two ids of the two-person sample
differ by 4 and are the same float64); and the x, y, z tokens are located and converted together by SWAR
arithmetic on uint64 words, exactly as ``float()`` converts them (see :func:`_parse_tokens`). A file outside the
canonical layout (tabs, stray spaces, any character that cannot be part of a number) goes to a line-by-line reader
that accepts any whitespace and reports the first problem with its line number; the fast path never reports errors
itself. Limitation of the fast path: the 8 values of a joint line skelact does not use (depth and colour pixel
positions, orientation) and the body-line flags are checked for their characters and, over the whole file, their
count, but not parsed, so a malformed number made only of number characters there (``1.2.3``) goes unnoticed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.class_names import NTU60_CLASS_NAMES, NTU120_CLASS_NAMES
from skelact.data.safe_pickle import load_npy
from skelact.data.sequence import SkeletonSequence
from skelact.data.sources.base import DEFAULT_MAX_FRAMES, Source, check_frame_count, max_frames_option
from skelact.errors import ConfigError, DataError

NUM_JOINTS = 25
#: values on a joint line: x y z depthX depthY colorX colorY orientation(4) trackingState
JOINT_LINE_VALUES = 12
#: values on a body line: bodyID clippedEdges hand states (4) isRestricted leanX leanY trackingState
BODY_LINE_VALUES = 10

# CTR-GCN data/ntu/get_raw_denoised_data.py, module constants
NOISE_LENGTH_MAX = 11            # noise_len_thres: a body seen in <= 11 frames is noise
SPREAD_X_OVER_Y = 0.8            # noise_spr_thres1: frame noisy if x extent > 0.8 * y extent
NOISY_FRAME_RATIO = 0.69754      # noise_spr_thres2: body dropped if noisy-frame ratio >= this
MOTION_LOW = 0.089925            # noise_mot_thres_lo (only with motion_filter=True)
MOTION_HIGH = 2.0                # noise_mot_thres_hi (only with motion_filter=True)

#: Kinect trackingState (0 not tracked, 1 inferred, 2 tracked) -> joint score
TRACKING_SCORE = np.array([0.0, 0.5, 1.0], dtype=np.float32)

#: SsssCcccPpppRrrrAaaa: setup, camera, performer (subject), replication, action (NTURGB-D README)
NAME_PATTERN = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")

_VARIANTS = ("auto", "ntu60", "ntu120")
_SPLITS = {"ntu60": ["ntu60_xsub", "ntu60_xview"], "ntu120": ["ntu120_xsub", "ntu120_xset"]}


# ----------------------------------------------------------------------------------------------------------------
# sample names


def parse_ntu_name(name: str, source: str | PathLike | None = None) -> dict[str, int]:
    """``"S001C002P003R002A013"`` -> ``{"setup": 1, "camera": 2, "subject": 3, "repetition": 2, "action": 13}``."""
    m = NAME_PATTERN.fullmatch(name)
    if m is None:
        raise DataError(f"expected a sample name like S001C002P003R002A013, got {name!r}", source or name, "name")
    setup, camera, subject, repetition, action = (int(g) for g in m.groups())
    if action < 1:
        raise DataError(f"action ids start at A001, got {name!r}", source or name, "name")
    return {"setup": setup, "camera": camera, "subject": subject, "repetition": repetition, "action": action}


def _sample_name(path: Path, suffix: str) -> str:
    name = path.name
    return name[: -len(suffix)] if name.endswith(suffix) else path.stem


def _list_files(root: Path, suffix: str) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError("no such file or folder", root, "root")
    files = sorted(root.rglob(f"*{suffix}"), key=lambda p: (p.name, str(p)))
    if not files:
        raise DataError(f"no *{suffix} files found (searched recursively)", root, "root")
    return files


def _check_variant(variant: str) -> str:
    if variant not in _VARIANTS:
        raise ConfigError(f"expected one of {', '.join(_VARIANTS)}, got {variant!r}", field="variant")
    return variant


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"expected an integer >= 1, got {value!r}", field=field)
    return int(value)


class _NTUNaming:
    """Labels, class names and split names shared by both NTU sources (they differ only in file suffix)."""

    suffix: str
    variant: str

    def items(self) -> list[Path]:
        return _list_files(self.root, self.suffix)  # type: ignore[attr-defined]

    def _resolved_variant(self) -> str:
        if self.variant != "auto":
            return self.variant
        if getattr(self, "_auto_variant", None) is None:
            self._auto_variant = "ntu60"
            for path in self.items():
                m = NAME_PATTERN.fullmatch(_sample_name(path, self.suffix))
                if m is not None and int(m.group(5)) > 60:
                    self._auto_variant = "ntu120"
                    break
        return self._auto_variant

    def class_names(self) -> list[str]:
        names = NTU120_CLASS_NAMES if self._resolved_variant() == "ntu120" else NTU60_CLASS_NAMES
        return list(names)

    def split_names(self) -> list[str]:
        return list(_SPLITS[self._resolved_variant()])

    def _label_and_meta(self, path: Path) -> tuple[str, int, dict[str, int]]:
        name = _sample_name(path, self.suffix)
        meta = parse_ntu_name(name, path)
        if self.variant == "ntu60" and meta["action"] > 60:
            raise DataError(f"action A{meta['action']:03d} is not one of NTU RGB+D 60's A001..A060 "
                            "(use variant='ntu120' or 'auto')", path, "action")
        if meta["action"] > len(NTU120_CLASS_NAMES):
            raise DataError(f"action A{meta['action']:03d} is outside NTU RGB+D 120's A001..A120", path, "action")
        return name, meta["action"] - 1, meta


# ----------------------------------------------------------------------------------------------------------------
# .skeleton text parsing


@dataclass
class SkeletonRecords:
    """Every body record of one ``.skeleton`` file, in file order (one record = one body in one frame)."""

    #: the frame count in the file's first line
    num_frames: int
    #: int64 [R]: 0-based frame index of each record
    frames: np.ndarray
    #: [R] Kinect bodyID of each record, as text (17-digit ids do not survive a float64)
    body_ids: list[bytes]
    #: float32 [R, 25, 3]: camera-space x, y, z in metres
    joints: np.ndarray
    #: int8 [R, 25]: Kinect trackingState (0 not tracked, 1 inferred, 2 tracked)
    tracking: np.ndarray


def parse_skeleton_text(data: bytes, source: str | PathLike = "<bytes>") -> SkeletonRecords:
    """Parse the bytes of a ``.skeleton`` file; raise :class:`DataError` naming ``source``, field and line."""
    records = _parse_canonical(data)
    if records is None:
        records = _parse_any_whitespace(data, source)
    return records


def read_skeleton_file(path: str | PathLike, max_frames: int = DEFAULT_MAX_FRAMES) -> SkeletonRecords:
    """Read and parse one ``.skeleton`` file (refusing an absurd frame count first, :func:`check_declared_frames`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read file ({e.strerror or e})", path) from None
    check_declared_frames(data, path, max_frames)
    return parse_skeleton_text(data, path)


def check_declared_frames(data: bytes, source: str | PathLike, max_frames: int = DEFAULT_MAX_FRAMES) -> None:
    """Refuse a frame count (first line) above ``max_frames`` or above the lines the file has, before parsing."""
    first = data[:32].split(b"\n", 1)[0].strip()
    if not first.isdigit():
        return  # not a count: the parsers say what is wrong, with the line
    declared = int(first)
    check_frame_count(declared, max_frames, source, "frame count")
    lines = data.count(b"\n") + 1
    if declared > lines:
        raise DataError(f"declares {declared} frames but the file has only {lines} lines (at least one per frame)",
                        source, "frame count")


#: characters of a well-formed file; anything else sends the file to the line-by-line reader
_CANONICAL_BYTES = b"0123456789.-+Ee \r\n"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: longest x/y/z token (sign, digits, dot) the vectorised scanner converts; longer ones go to the slow path
_MAX_TOKEN = 15


def _u64(byte: int) -> np.uint64:
    """``byte`` repeated in all 8 bytes of a uint64 (a SWAR constant)."""
    return np.uint64(int.from_bytes(bytes([byte]) * 8, "little"))


_ZERO_CHARS, _DOT_CHARS, _SPACE_CHARS = _u64(0x30), _u64(0x2E), _u64(0x20)
_LOW7, _HIGH_BITS, _PLUS_50, _PLUS_46 = _u64(0x7F), _u64(0x80), _u64(0x50), _u64(0x46)
_EVEN_BYTES = np.uint64(0x00FF00FF00FF00FF)
_EVEN_PAIRS = np.uint64(0x0000FFFF0000FFFF)
_LOW_HALF = np.uint64(0xFFFFFFFF)
#: mask of the lowest k bytes of a uint64 (= the first k characters of a little-endian word), k = 0..8
_FIRST_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
_POW10_INT = np.array([10 ** k for k in range(17)], dtype=np.uint64)
_POW10 = 10.0 ** np.arange(17)
_ONE, _THREE, _SIX, _EIGHT, _SIXTEEN, _THIRTY_TWO = (np.uint64(k) for k in (1, 3, 6, 8, 16, 32))
_TEN, _HUNDRED, _TEN_THOUSAND, _HUNDRED_MILLION = (np.uint64(10 ** k) for k in (1, 2, 4, 8))
_LOWEST_BYTE, _MINUS = np.uint64(0xFF), np.uint64(0x2D)


def _marked_bytes(x: np.ndarray, chars: np.uint64) -> np.ndarray:
    """0x80 in every byte of ``x`` equal to the byte of ``chars``, 0 elsewhere (exact: no carries between bytes)."""
    y = x ^ chars
    return ~(((y & _LOW7) + _LOW7) | y | _LOW7)


#: (lowest set bit of a byte mask) % 19 -> byte index: 2**(8j+7) % 19 differs for j = 0..7 and is never 0, so a
#: mask with no marked byte maps to 8 ("past this word")
_BYTE_OF_BIT = np.full(19, 8, dtype=np.int64)
_BYTE_OF_BIT[[(1 << (8 * j + 7)) % 19 for j in range(8)]] = np.arange(8)
_NINETEEN = np.uint64(19)


def _first_marked(marks: np.ndarray) -> np.ndarray:
    """Index (0..7) of the first marked byte of each little-endian word in text order, 8 if none."""
    return _BYTE_OF_BIT[(marks & (~marks + _ONE)) % _NINETEEN]


def _words(data: bytes, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bytes ``start .. start+7`` and ``start+8 .. start+15`` as little-endian uint64 (``start <= len(data) - 16``)."""
    # element i of this (unaligned, overlapping) view is the 8 bytes from offset i: one gather per word
    every_offset = np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    return every_offset[start], every_offset[start + 8]


def _token_length(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Bytes before the first space of 16-byte rows given as two words (16 if none)."""
    in_first = _first_marked(_marked_bytes(first, _SPACE_CHARS))
    return np.where(in_first < 8, in_first, 8 + _first_marked(_marked_bytes(second, _SPACE_CHARS)))


def _parse_tokens(first: np.ndarray, second: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, ok)`` of tokens given by their first 16 bytes (two little-endian words) and ``length`` (<= 16).

    ``values`` equals ``float(token)`` where ``ok``; ``ok`` is False for anything but ``[-]digits[.digits]`` of at
    most ``_MAX_TOKEN`` characters. SWAR arithmetic ("SIMD within a register") on numpy uint64 arrays: bytes past
    the token are set to ``'0'``, a leading ``'-'`` and a single ``'.'`` too; every byte is checked to be a digit;
    each word's 8 digits are combined pairwise (x10, x100, x10000) into an exact integer. Dividing out the padding
    zeros and removing the zero that stood in for the dot (``left * 10**(k+1) + right`` -> ``left * 10**k + right``)
    gives the integer mantissa (< 10**15 < 2**53), and one division by the exact ``10**k`` rounds correctly, as
    ``float()`` does. Assumes ASCII bytes (the caller has checked).
    """
    negative = (first & _LOWEST_BYTE) == _MINUS
    ok = length <= _MAX_TOKEN
    length = np.minimum(length, _MAX_TOKEN)
    mantissa = None
    dot_index = None
    for word, keep in ((first, _FIRST_BYTES[np.minimum(length, 8)]), (second, _FIRST_BYTES[np.maximum(length - 8, 0)])):
        x = (word & keep) | (_ZERO_CHARS & ~keep)
        if mantissa is None:
            x += negative.astype(np.uint64) * _THREE  # '-' (0x2D) + 3 = '0'
        dots = _marked_bytes(x, _DOT_CHARS)
        ok &= (dots & (dots - _ONE)) == 0
        x += dots >> _SIX  # '.' (0x2E) + 2 = '0'
        ok &= ((x + _PLUS_50) & ~(x + _PLUS_46) & _HIGH_BITS) == _HIGH_BITS  # every byte in '0'..'9'
        d = x - _ZERO_CHARS
        d = (d & _EVEN_BYTES) * _TEN + ((d >> _EIGHT) & _EVEN_BYTES)
        d = (d & _EVEN_PAIRS) * _HUNDRED + ((d >> _SIXTEEN) & _EVEN_PAIRS)
        d = (d & _LOW_HALF) * _TEN_THOUSAND + (d >> _THIRTY_TWO)
        if mantissa is None:
            mantissa, dot_index = d, _first_marked(dots)
        else:
            mantissa = mantissa * _HUNDRED_MILLION + d
            second_dot = _first_marked(dots)
            ok &= (dot_index == 8) | (second_dot == 8)  # at most one dot in all
            dot_index = np.where(dot_index < 8, dot_index, 8 + second_dot)
    has_dot = dot_index < 16
    ok &= length - negative - has_dot >= 1  # not empty, '-', '.' or '-.'
    mantissa //= _POW10_INT[16 - length]
    frac_digits = np.where(has_dot, length - 1 - dot_index, 0)
    right = mantissa % _POW10_INT[frac_digits]
    mantissa = np.where(has_dot, (mantissa - right) // _TEN + right, mantissa)
    values = mantissa.astype(np.float64) / _POW10[frac_digits]
    values[negative] = -values[negative]
    return values, ok


def _parse_canonical(data: bytes) -> SkeletonRecords | None:
    """Fast path for canonically formatted files (single spaces, CRLF or LF); ``None`` means "use the slow path".

    Checks: only number characters, spaces and line breaks; the frame and body counts walk the file to its end;
    every body line contains 9 spaces and is followed by a joint count of exactly ``25``; the file holds 9 spaces per
    body line plus 11 per joint line; each joint line's x, y, z are numbers and its last value is a single tracking
    digit after a space. A token ``float()`` accepts but the scanner does not (an exponent, ``+``) is converted with
    ``float()``.
    """
    if not data or data.translate(None, _CANONICAL_BYTES):
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    line_start = np.concatenate(([0], newlines + 1))
    line_end = np.concatenate((newlines, [len(buf)]))
    carriage_return = buf[np.maximum(line_end - 1, 0)] == 13
    if np.count_nonzero(buf == 13) != np.count_nonzero(carriage_return):  # a CR that does not end a line
        return None
    line_end -= carriage_return
    num_lines = len(line_start)

    lines_per_body = 2 + NUM_JOINTS
    try:
        num_frames = int(data[line_start[0]:line_end[0]])
        if num_frames < 1:
            return None
        body_lines: list[int] = []
        record_frames: list[int] = []
        i = 1
        for frame in range(num_frames):
            num_bodies = int(data[line_start[i]:line_end[i]])
            if not 0 <= num_bodies <= (num_lines - i) // lines_per_body:
                return None
            body_lines.extend(range(i + 1, i + 1 + num_bodies * lines_per_body, lines_per_body))
            record_frames.extend([frame] * num_bodies)
            i += 1 + num_bodies * lines_per_body
    except (ValueError, IndexError):  # a count that is not a number, or the file ends early
        return None
    if i > num_lines or (i < num_lines and data[line_start[i]:].strip()) or not body_lines:
        return None

    num_records = len(body_lines)
    body_lines_arr = np.asarray(body_lines)
    count_lines = body_lines_arr + 1
    count_start = line_start[count_lines]
    if (line_end[count_lines] - count_start != 2).any() or (buf[count_start] != 50).any() or \
            (buf[count_start + 1] != 53).any():  # every joint count is "25"
        return None
    # spacing: 9 spaces per body line and 11 per joint line in total (empty tokens among the unused values of a
    # joint line would go unnoticed; x, y, z and the tracking state are checked one by one below)
    num_joint_lines = num_records * NUM_JOINTS
    if np.count_nonzero(buf == 32) != num_records * (BODY_LINE_VALUES - 1) + \
            num_joint_lines * (JOINT_LINE_VALUES - 1):
        return None
    body_ids: list[bytes] = []
    for s, e in zip(line_start[body_lines_arr].tolist(), line_end[body_lines_arr].tolist()):
        if data.count(b" ", s, e) != BODY_LINE_VALUES - 1:
            return None
        body_ids.append(data[s:data.find(b" ", s)])

    joint_lines = (body_lines_arr[:, None] + np.arange(2, lines_per_body)).ravel()
    js = line_start[joint_lines]
    je = line_end[joint_lines]
    if (buf[je - 2] != 32).any():
        return None
    tracking = buf[je - 1] - np.uint8(48)
    if (tracking > 2).any():
        return None

    # x, y, z are the first three tokens: find where each ends, then convert all of them at once
    starts_xyz, lengths, firsts, seconds = [], [], [], []
    token_start = js
    for axis in range(3):
        if token_start.max() > len(buf) - 16:
            return None
        first, second = _words(data, token_start)
        length = _token_length(first, second)
        for k in np.flatnonzero(length == 16).tolist():  # longer than 15 bytes: find the end the slow way
            end = data.find(b" ", int(token_start[k]), int(je[k]))
            if end < 0:
                return None
            length[k] = end - token_start[k]
        starts_xyz.append(token_start)
        lengths.append(length)
        firsts.append(first)
        seconds.append(second)
        token_start = token_start + length + 1
    values, ok = _parse_tokens(np.concatenate(firsts), np.concatenate(seconds), np.concatenate(lengths))
    if not ok.all():
        flat_start, flat_end = np.concatenate(starts_xyz), np.concatenate(starts_xyz) + np.concatenate(lengths)
        for k in np.flatnonzero(~ok).tolist():
            # an exponent or '+' (Kinect writes e.g. 1.678196E-05), a very long or an empty token
            token = data[flat_start[k]:flat_end[k]]
            if b"\n" in token or b"\r" in token or not _is_number(token.decode("ascii")):
                return None
            values[k] = float(token)
    if np.abs(values).max() > _FLOAT32_MAX:
        return None
    joints = values.reshape(3, num_records, NUM_JOINTS).transpose(1, 2, 0)
    return SkeletonRecords(
        num_frames=num_frames,
        frames=np.asarray(record_frames, dtype=np.int64),
        body_ids=body_ids,
        joints=joints.astype(np.float32),
        tracking=tracking.astype(np.int8).reshape(num_records, NUM_JOINTS),
    )


def _parse_any_whitespace(data: bytes, source: str | PathLike) -> SkeletonRecords:
    """Line-by-line reader: any whitespace between values, and a precise error for the first problem."""
    if not data.strip():
        raise DataError("empty file", source, "frame count")
    lines = data.decode("latin-1").split("\n")
    if lines[-1] == "":
        lines.pop()
    # a last line without its line break was cut off: say so when it is the line that fails
    cut_line = len(lines) if not data.endswith(b"\n") else None
    pos = 0

    def error(lineno: int, field: str, message: str) -> DataError:
        note = " (the file ends in the middle of this line: truncated?)" if lineno == cut_line else ""
        return DataError(f"line {lineno}: {message}{note}", source, field)

    def next_line(field: str, where: str) -> tuple[int, list[str]]:
        nonlocal pos
        if pos >= len(lines):
            raise DataError(f"the file ends after line {len(lines)}, {where} (truncated?)", source, field)
        pos += 1
        return pos, lines[pos - 1].split()

    def integer(tokens: list[str], lineno: int, field: str, what: str) -> int:
        if len(tokens) != 1:
            raise error(lineno, field, f"expected {what} (one integer), got {' '.join(tokens)[:60]!r}")
        try:
            value = int(tokens[0])
        except ValueError:
            raise error(lineno, field, f"expected {what} (an integer), got {tokens[0][:40]!r}") from None
        if value < 0:
            raise error(lineno, field, f"{what} cannot be negative, got {value}")
        return value

    lineno, tokens = next_line("frame count", "before the frame count")
    num_frames = integer(tokens, lineno, "frame count", "the number of frames")
    if num_frames == 0:
        raise error(lineno, "frame count", "the file declares 0 frames")
    frames: list[int] = []
    ids: list[bytes] = []
    joints: list[list[float]] = []
    tracking: list[list[int]] = []
    for frame in range(num_frames):
        where = f"in frame {frame + 1} of {num_frames}"
        lineno, tokens = next_line("body count", f"expecting the body count {where}")
        num_bodies = integer(tokens, lineno, "body count", f"the number of bodies {where}")
        for body in range(num_bodies):
            where_body = f"{where}, body {body + 1} of {num_bodies}"
            lineno, tokens = next_line("body", f"expecting the body line {where_body}")
            if len(tokens) != BODY_LINE_VALUES:
                raise error(lineno, "body", f"expected {BODY_LINE_VALUES} body values (bodyID ... trackingState) "
                                            f"{where_body}, got {len(tokens)}")
            body_id = tokens[0].encode("latin-1")
            lineno, tokens = next_line("joint count", f"expecting the joint count {where_body}")
            num_joints = integer(tokens, lineno, "joint count", f"the number of joints {where_body}")
            if num_joints != NUM_JOINTS:
                raise error(lineno, "joint count", f"expected {NUM_JOINTS} joints (Kinect v2) {where_body}, "
                                                   f"got {num_joints}")
            xyz: list[float] = []
            states: list[int] = []
            for joint in range(NUM_JOINTS):
                lineno, tokens = next_line("joint", f"expecting joint {joint + 1} of {NUM_JOINTS} {where_body}")
                if len(tokens) != JOINT_LINE_VALUES:
                    raise error(lineno, "joint", f"expected {JOINT_LINE_VALUES} joint values (x y z depthX depthY "
                                                 f"colorX colorY orientation*4 trackingState), got {len(tokens)}")
                bad = next((t for t in tokens if not _is_number(t)), None)
                if bad is not None:
                    raise error(lineno, "joint", f"{bad[:40]!r} is not a number (finite in float32)")
                numbers = [float(t) for t in tokens]
                state = numbers[-1]
                if state not in (0.0, 1.0, 2.0):
                    raise error(lineno, "trackingState", f"joint trackingState must be 0, 1 or 2, got {tokens[-1]!r}")
                xyz.extend(numbers[:3])
                states.append(int(state))
            frames.append(frame)
            ids.append(body_id)
            joints.append(xyz)
            tracking.append(states)
    rest = [k for k in range(pos, len(lines)) if lines[k].strip()]
    if rest:
        raise error(rest[0] + 1, "frame count", f"unexpected data after the last of {num_frames} frames "
                                                "(wrong frame count?)")
    return SkeletonRecords(
        num_frames=num_frames,
        frames=np.asarray(frames, dtype=np.int64),
        body_ids=ids,
        joints=np.asarray(joints, dtype=np.float64).astype(np.float32).reshape(-1, NUM_JOINTS, 3),
        tracking=np.asarray(tracking, dtype=np.int8).reshape(-1, NUM_JOINTS),
    )


def _is_number(token: str) -> bool:
    """A decimal number as ``float()`` reads it, finite in float32 (no ``nan``/``inf``/``1e39``, no ``1_000``)."""
    if "_" in token:
        return False
    try:
        return abs(float(token)) <= _FLOAT32_MAX
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------------------------
# body selection


def _motion(joints: np.ndarray) -> float:
    """Sum over x, y, z of the variance of every joint position in every frame (NTU authors' FAQ)."""
    return float(np.var(joints.reshape(-1, 3), axis=0, dtype=np.float64).sum())


def _denoised_slots(body_records: list[np.ndarray], records: SkeletonRecords, frame_pos: np.ndarray,
                    source: str | PathLike, motion_filter: bool) -> list[list[int]]:
    """Bodies per actor slot, in write order, following steps 3-4 of the module docstring."""
    if len(body_records) == 1:
        return [[0]]
    joints = records.joints
    motion = [_motion(joints[r]) for r in body_records]
    counts = [len(r) for r in body_records]
    kept = [b for b, c in enumerate(counts) if c > NOISE_LENGTH_MAX]
    if not kept:
        raise DataError(f"all {len(counts)} bodies appear in at most {NOISE_LENGTH_MAX} frames "
                        f"(frame counts {counts}); CTR-GCN's denoising discards them all as noise", source, "bodies")
    if len(kept) > 1:
        for b in list(kept):
            if len(kept) == 1:
                break
            body = joints[body_records[b]]
            x_extent = np.ptp(body[:, :, 0], axis=1).astype(np.float64)
            y_extent = np.ptp(body[:, :, 1], axis=1).astype(np.float64)
            clean = x_extent <= SPREAD_X_OVER_Y * y_extent
            num_noisy = len(clean) - int(clean.sum())
            if num_noisy == 0:
                continue
            if num_noisy / len(clean) >= NOISY_FRAME_RATIO:
                kept.remove(b)
            else:
                motion[b] = min(motion[b], _motion(body[clean]))
    if len(kept) == 1:
        return [kept]

    order = sorted(kept, key=lambda b: motion[b], reverse=True)
    if motion_filter:
        order = order[:1] + [b for b in order[1:] if MOTION_LOW <= motion[b] <= MOTION_HIGH]
    first = [int(frame_pos[r[0]]) for r in body_records]
    last = [int(frame_pos[r[-1]]) for r in body_records]
    actor1, actor2 = [order[0]], []
    start1, end1 = first[order[0]], last[order[0]]
    start2, end2 = 0, 0  # the script's "virtual" initial interval of actor 2
    for b in order[1:]:
        start, end = first[b], last[b]
        if min(end1, end) - max(start1, start) <= 0:
            actor1.append(b)
            start1, end1 = min(start, start1), max(end, end1)
        elif min(end2, end) - max(start2, start) <= 0:
            actor2.append(b)
            start2, end2 = min(start, start2), max(end, end2)
    return [actor1, actor2] if actor2 else [actor1]


def select_actors(records: SkeletonRecords, source: str | PathLike = "<bytes>", denoise: bool = True,
                  max_persons: int = 2, motion_filter: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """keypoints float32 [M, T, 25, 3] and scores float32 [M, T, 25] of the kept actors (module docstring)."""
    num_records = len(records.frames)
    if num_records == 0:
        raise DataError(f"no body in any of the {records.num_frames} frames", source, "bodies")
    first_seen = dict.fromkeys(records.body_ids)  # bodyIDs in order of first appearance
    num_bodies = len(first_seen)
    # time axis = frames with at least one body: the script drops empty frames while reading
    occupied = np.zeros(records.num_frames, dtype=bool)
    occupied[records.frames] = True
    frame_pos = (np.cumsum(occupied) - 1)[records.frames]
    num_frames = int(frame_pos[-1]) + 1
    if num_bodies == 1:
        body_records = [np.arange(num_records)]
    else:
        index = {body_id: b for b, body_id in enumerate(first_seen)}
        body_of_record = np.array([index[body_id] for body_id in records.body_ids])
        body_records = [np.flatnonzero(body_of_record == b) for b in range(num_bodies)]

    if denoise:
        slots = _denoised_slots(body_records, records, frame_pos, source, motion_filter)
        drop_missing = num_bodies > 1
    else:
        order = sorted(range(num_bodies), key=lambda b: _motion(records.joints[body_records[b]]), reverse=True)
        slots = [[b] for b in order]
        drop_missing = True
    slots = slots[:max_persons]

    num_slots = len(slots)
    keypoints = np.zeros((num_slots, num_frames, NUM_JOINTS, 3), dtype=np.float32)
    tracking = np.zeros((num_slots, num_frames, NUM_JOINTS), dtype=np.int8)
    present = np.zeros((num_slots, num_frames), dtype=bool)
    for m, bodies in enumerate(slots):
        for b in bodies:
            r = body_records[b]
            t = frame_pos[r]
            keypoints[m, t] = records.joints[r]
            tracking[m, t] = records.tracking[r]
            present[m, t] = True
    if drop_missing:
        has_data = present & keypoints.reshape(num_slots, num_frames, -1).any(axis=2)
        keep = has_data.any(axis=0)
        if not keep.any():
            raise DataError("every kept body has all-zero coordinates in every frame", source, "bodies")
        if not keep.all():
            keypoints, tracking, present = keypoints[:, keep], tracking[:, keep], present[:, keep]
        persons = present.any(axis=1)
        if not persons.all():
            keypoints, tracking, present = keypoints[persons], tracking[persons], present[persons]
    scores = TRACKING_SCORE[tracking] * present[:, :, None]
    return keypoints, scores


# ----------------------------------------------------------------------------------------------------------------
# sources


class NTUSkeletonSource(_NTUNaming, Source):
    """A folder of raw NTU RGB+D ``.skeleton`` files (searched recursively, sorted by sample name).

    Options: ``denoise`` (default True: CTR-GCN's body selection, see the module docstring), ``max_persons``
    (default 2; 1 or 2 when denoising), ``motion_filter`` (default False: the motion thresholds CTR-GCN leaves
    disabled), ``variant`` (``"auto"``, ``"ntu60"``, ``"ntu120"``: which class list and standard splits apply;
    ``auto`` picks NTU-120 when any sample has an action above 60). ``root`` may also be a single file.
    ``meta``: ``setup``, ``camera``, ``subject``, ``repetition``, ``action`` (from the name SsssCcccPpppRrrrAaaa) and
    ``raw_frames`` (the file's frame count, before frames without an actor are dropped). ``max_frames`` (default
    :data:`~skelact.data.sources.base.DEFAULT_MAX_FRAMES`): a file whose frame count exceeds it, or exceeds the lines
    the file has (every frame takes at least one), is refused before it is parsed.
    """

    format = "ntu"
    layout = "ntu25"
    suffix = ".skeleton"

    def __init__(self, root: str | PathLike, denoise: bool = True, max_persons: int = 2, motion_filter: bool = False,
                 variant: str = "auto", max_frames: int = DEFAULT_MAX_FRAMES, **options: Any):
        super().__init__(root, denoise=denoise, max_persons=max_persons, motion_filter=motion_filter,
                         variant=variant, **options)
        self.max_frames = max_frames_option(max_frames)
        self.denoise = bool(denoise)
        self.max_persons = _positive_int(max_persons, "max_persons")
        if self.denoise and self.max_persons > 2:
            raise ConfigError(f"CTR-GCN's denoising keeps at most 2 actors, got {max_persons} "
                              "(use denoise=False for more)", field="max_persons")
        self.motion_filter = bool(motion_filter)
        self.variant = _check_variant(variant)

    def read(self, item: str | PathLike) -> SkeletonSequence:
        path = Path(item)
        name, label, meta = self._label_and_meta(path)
        records = read_skeleton_file(path, self.max_frames)
        keypoints, scores = select_actors(records, path, self.denoise, self.max_persons, self.motion_filter)
        meta["raw_frames"] = records.num_frames
        seq = SkeletonSequence(keypoints=keypoints, scores=scores, label=label, name=name, layout=self.layout,
                               meta=meta)
        return seq.validate(str(path), NUM_JOINTS)


class NTUNpySource(_NTUNaming, Source):
    """A folder of ``.skeleton.npy`` files written by ``Python/txt2npy.py`` of github.com/shahroudy/NTURGB-D.

    Each holds a pickled dict: ``file_name``, ``nbodys`` (bodies per non-empty frame), ``njoints`` (25) and, per
    body slot ``K``, ``skel_bodyK`` [T, 25, 3] (plus ``rgb_bodyK`` / ``depth_bodyK`` pixel positions, unused).
    txt2npy fills slot ``K`` with the K-th body listed in each frame and leaves zeros where a frame has fewer bodies
    (and for frames with none), so body identities are lost and CTR-GCN's denoising cannot be applied: the persons
    are the first ``max_persons`` (default 2) slots that hold data in some frame, frames where none of them holds
    data are dropped, and a joint's score is 1 where its person is present (the format has no tracking state) and 0
    where it is absent. The dict is unpickled by :func:`skelact.data.safe_pickle.load_npy`, which admits only
    numpy arrays, scalars and plain containers; the option ``trust_pickle`` (``--trust-pickle``) uses numpy's plain
    loader instead, which runs any code the file names: only for files you trust.
    """

    format = "ntu-npy"
    layout = "ntu25"
    suffix = ".skeleton.npy"

    def __init__(self, root: str | PathLike, max_persons: int = 2, variant: str = "auto", trust_pickle: bool = False,
                 **options: Any):
        super().__init__(root, max_persons=max_persons, variant=variant, **options)
        self.max_persons = _positive_int(max_persons, "max_persons")
        self.variant = _check_variant(variant)
        if not isinstance(trust_pickle, bool):
            raise ConfigError(f"expected true or false, got {trust_pickle!r}", field="trust_pickle")
        self.trust_pickle = trust_pickle

    def read(self, item: str | PathLike) -> SkeletonSequence:
        path = Path(item)
        name, label, meta = self._label_and_meta(path)
        content = _load_npy_dict(path, self.trust_pickle)
        own_name = content.get("file_name")
        if own_name is not None and str(own_name) != name:
            raise DataError(f"the file says it holds sample {own_name!r}, its name says {name!r}", path, "file_name")
        njoints = content.get("njoints", NUM_JOINTS)
        if njoints != NUM_JOINTS:
            raise DataError(f"expected {NUM_JOINTS} joints, got {njoints!r}", path, "njoints")

        slots = sorted((int(k[len("skel_body"):]), k) for k in content
                       if isinstance(k, str) and re.fullmatch(r"skel_body\d+", k))
        if not slots:
            raise DataError("no skel_body0 array (not a txt2npy file?)", path, "skel_body0")
        bodies = []
        for _, key in slots:
            try:
                arr = np.asarray(content[key], dtype=np.float32)
            except (TypeError, ValueError):
                raise DataError("expected a numeric array [T, 25, 3]", path, key) from None
            if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3) or arr.shape[0] < 1:
                raise DataError(f"expected shape [T, {NUM_JOINTS}, 3], got {list(arr.shape)}", path, key)
            if bodies and arr.shape[0] != bodies[0].shape[0]:
                raise DataError(f"has {arr.shape[0]} frames, {slots[0][1]} has {bodies[0].shape[0]}", path, key)
            if not np.isfinite(arr).all():
                raise DataError("contains NaN or infinite coordinates", path, key)
            bodies.append(arr)
        keypoints = np.stack(bodies)
        present = keypoints.reshape(len(bodies), keypoints.shape[1], -1).any(axis=2)
        persons = np.flatnonzero(present.any(axis=1))[: self.max_persons]
        if len(persons) == 0:
            raise DataError("every body slot is all zeros", path, "skel_body0")
        keypoints, present = keypoints[persons], present[persons]
        frames = present.any(axis=0)
        keypoints, present = keypoints[:, frames], present[:, frames]
        scores = np.repeat(present[:, :, None], NUM_JOINTS, axis=2).astype(np.float32)
        seq = SkeletonSequence(keypoints=keypoints, scores=scores, label=label, name=name, layout=self.layout,
                               meta=meta)
        return seq.validate(str(path), NUM_JOINTS)


def _load_npy_dict(path: Path, trust_pickle: bool = False) -> dict:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise DataError(f"cannot read file ({e.strerror or e})", path) from None
    if size == 0:
        raise DataError("empty file", path, "content")
    loaded = load_npy(path, trust=trust_pickle)
    if hasattr(loaded, "files") and hasattr(loaded, "close"):  # an NpzFile archive
        loaded.close()
        raise DataError("is an .npz archive, expected the pickled dict of txt2npy.py", path, "content")
    if isinstance(loaded, np.ndarray) and loaded.dtype == object and loaded.shape == ():
        loaded = loaded.item()
    if not isinstance(loaded, dict):
        what = f"array of shape {list(loaded.shape)}" if isinstance(loaded, np.ndarray) else type(loaded).__name__
        raise DataError(f"expected the pickled dict of txt2npy.py, found {what}", path, "content")
    return loaded


__all__ = ["NTUNpySource", "NTUSkeletonSource", "SkeletonRecords", "parse_ntu_name", "parse_skeleton_text",
           "read_skeleton_file", "select_actors"]
