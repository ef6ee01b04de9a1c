"""Reading pickles and object ``.npy`` files without running code named in them.

A pickle is a program: its ``GLOBAL`` / ``STACK_GLOBAL`` opcodes import any callable by module and name and its
``REDUCE`` opcode calls it, so ``pickle.load`` of a hostile file runs whatever it names (``posix.system`` included;
Python's ``pickle`` documentation, "Restricting Globals"). The data files skelact reads as pickles only ever name
a handful of globals, so :class:`RestrictedUnpickler` resolves exactly those and refuses every other one before
anything is called:

- pyskl / mmaction2 annotation and keypoint pickles, and the ``.skeleton.npy`` dicts of NTU RGB+D's ``txt2npy.py``
  (``np.save`` of a dict): numpy arrays, dtypes and scalars, as numpy pickles them (``ndarray.__reduce__``): the
  reconstructor ``numpy.core.multiarray._reconstruct`` (numpy 1.x; ``numpy._core.multiarray._reconstruct`` in
  numpy 2), ``numpy.ndarray``, ``numpy.dtype``, ``numpy.core.multiarray.scalar`` (``numpy._core...`` in numpy 2),
  and for protocol 5 ``numpy.core.numeric._frombuffer`` (``numpy._core.numeric``); both spellings resolve to the
  installed numpy's own function, so files from either numpy major version load under either;
- the containers and numbers of plain Python (dict, list, tuple, set, str, bytes, int, float, bool, ...), by
  their Python 2 names too, and ``collections.OrderedDict``;
- ``_codecs.encode``, which protocol 0-2 pickles use to rebuild ``bytes`` from a latin-1 string; only the latin-1
  codec is let through;
- ``numpy.frombuffer`` and ``numpy.reshape``, which :func:`skelact.data.sources.pyskl.write_pyskl_pickle` uses for
  pickles that load under every numpy version.

A refusal is an :class:`UnsafePickleError` naming the file and the forbidden global. A user who trusts a file
passes ``trust=True`` (``--trust-pickle`` on the command line, the reader option ``trust_pickle``) and gets the
plain loaders.

``.npy`` files (format: ``numpy.lib.format``, NEP 1) are read with ``allow_pickle=False`` first; only when that
fails because the array holds Python objects is the header parsed here and the pickled payload after it handed to
the restricted unpickler, which is what ``np.load(allow_pickle=True)`` would do with the plain one.

Sizes. A file may claim sizes it does not hold, and both numpy and pickle allocate what is claimed before reading
it, so a few hundred bytes could ask for gigabytes (or, in numpy 1.26, crash the process). Nothing here allocates
more than the file can back:

- an ``.npy`` header claiming more data (``prod(shape) * itemsize``) than the file holds after the header is refused
  before ``np.load`` runs (:func:`check_npy_header`), trusted or not;
- a pickle opcode claiming a string, bytes or frame longer than the rest of the file is refused before the buffer
  is allocated (``pickle.load`` allocates the claimed length first);
- ``ndarray.__setstate__`` (the ``BUILD`` numpy pickles use) must receive exactly ``prod(shape) * itemsize`` bytes,
  or for arrays of Python objects exactly ``prod(shape)`` elements: numpy allocates the array before comparing, and
  for an object list shorter than the shape numpy 1.26 reads past its end (a segmentation fault);
- memory that no bytes of the file back (object arrays: one 8-byte pointer per element; ``_reconstruct``'s initial
  array, always empty in numpy's own pickles) is limited to 8 bytes per byte of pickle plus 1 MiB: an object array's
  pickle takes at least one byte (one opcode) per element;
- ``numpy.ndarray`` may only be named as ``_reconstruct``'s argument, never called (its constructor allocates any
  shape), and ``bytes`` / ``bytearray`` are never called with a number (``bytes(10**10)`` is ten zeroed gigabytes).

So the restricted unpickler is Python's own pure-Python ``pickle._Unpickler`` with those opcodes checked; the C
unpickler cannot be hooked before its ``BUILD`` calls ``__setstate__``. It reads array-heavy pickles about 1.2x
slower and pickles of many small objects about 4x slower (a 411 MB annotation file of 20,000 clips: 1.5 s against
1.2 s). A ``MemoryError`` while reading still becomes a :class:`DataError` naming the file.
"""

from __future__ import annotations

import _codecs
import collections
import io
import math
import os
import pickle
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
from numpy.lib import format as npy_format

from skelact.errors import DataError, UnsafePickleError

# The installed numpy's own reconstructors, taken from what it pickles with rather than imported by module path:
# numpy 2 moved them from numpy.core to numpy._core (and warns on the old import), numpy 1.26 has both.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_SCALAR = np.float64(0).__reduce__()[0]

_LATIN1 = frozenset({"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"})


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` limited to latin-1, the only codec pickle protocols 0-2 name (to rebuild ``bytes``)."""
    if not isinstance(encoding, str) or encoding.lower() not in _LATIN1:
        raise pickle.UnpicklingError(f"_codecs.encode with codec {encoding!r} (only latin-1 is admitted)")
    return _codecs.encode(text, encoding, errors)


def _admitted() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {}
    for core in ("numpy.core", "numpy._core"):
        table[f"{core}.multiarray", "_reconstruct"] = _RECONSTRUCT
        table[f"{core}.multiarray", "scalar"] = _SCALAR
        table[f"{core}.numeric", "_frombuffer"] = _FROMBUFFER
    table.update({("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                  ("numpy", "frombuffer"): np.frombuffer, ("numpy", "reshape"): np.reshape})
    plain = (int, float, complex, bool, str, bytes, bytearray, list, tuple, dict, set, frozenset)
    for module in ("builtins", "__builtin__"):  # __builtin__: Python 2 pickles
        table.update({(module, t.__name__): t for t in plain})
    table["__builtin__", "unicode"] = str
    table["__builtin__", "long"] = int
    table["collections", "OrderedDict"] = collections.OrderedDict
    table["_codecs", "encode"] = _latin1_encode
    return table


#: (module, name) a data pickle may reference -> the object it gets instead of an import
ADMITTED_GLOBALS: dict[tuple[str, str], Any] = _admitted()

WHAT_IS_ADMITTED = "numpy arrays, dtypes and scalars, dicts, lists, tuples, strings, bytes and numbers"


#: memory an unpickled file may take beyond the bytes it holds: 8 bytes (one object pointer) per byte of pickle ...
UNBACKED_BYTES_PER_BYTE = 8
#: ... plus this much, whatever the file's size
UNBACKED_BYTES_FLOOR = 1 << 20


def _remaining_bytes(file: BinaryIO) -> int | None:
    """Bytes from the current position of ``file`` to its end, or ``None`` for a stream that cannot tell."""
    try:
        return os.fstat(file.fileno()).st_size - file.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    try:
        here = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


class RestrictedUnpickler(pickle._Unpickler):  # the Python unpickler: its opcodes can be checked (module docstring)
    """An unpickler that resolves only :data:`ADMITTED_GLOBALS` and raises :class:`UnsafePickleError` for any
    other global, and refuses sizes the file cannot back (module docstring, "Sizes") with a :class:`DataError`
    (``source`` names the file in the messages)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: BinaryIO, source: str | PathLike | None = None, **kwargs: Any):
        super().__init__(file, **kwargs)
        self.source = source
        self.size = _remaining_bytes(file)
        self.unbacked_limit = UNBACKED_BYTES_FLOOR + UNBACKED_BYTES_PER_BYTE * (self.size or 0)
        self.unbacked = 0
        if self.size is not None:
            self._left = self.size
            self._file_read = self._bounded_read
            self._raw_read = file.read

    def _refuse(self, message: str) -> DataError:
        return DataError(message, self.source, "content")

    def _bounded_read(self, n: int) -> bytes:
        if n > self._left:
            raise self._refuse(f"the pickle claims a {n}-byte item where only {self._left} bytes are left in the "
                               "file (truncated or corrupt)")
        data = self._raw_read(n)
        self._left -= len(data)
        return data

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ADMITTED_GLOBALS[module, name]
        except (KeyError, TypeError):
            raise UnsafePickleError(f"refused to unpickle {module}.{name}: a data file may only hold "
                                    f"{WHAT_IS_ADMITTED} (anything else can run code); pass --trust-pickle "
                                    "(reader option trust_pickle=true) only if you trust this file",
                                    self.source, "content") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refused to load: the pickle holds a persistent id ({type(pid).__name__}), which "
                                "no data file needs", self.source, "content")

    # ------------------------------------------------------------------------------------------- checked calls

    def _charge(self, nbytes: int, what: str) -> None:
        """Count ``nbytes`` that no bytes of the file back against :attr:`unbacked_limit`."""
        self.unbacked += nbytes
        if self.unbacked > self.unbacked_limit:
            raise self._refuse(f"{what} would take {nbytes} bytes, more than a {self.size}-byte pickle can describe "
                               f"(at most {self.unbacked_limit} bytes beyond its data; corrupt or hostile)")

    def _check_call(self, func: Any, args: tuple) -> None:
        """Refuse the calls of admitted globals that allocate what a small argument asks for."""
        if func is np.ndarray:
            raise self._refuse("the pickle calls numpy.ndarray directly, which allocates any shape it is given "
                               "(numpy pickles arrays through _reconstruct)")
        if (func is bytes or func is bytearray) and args and hasattr(args[0], "__index__"):
            raise self._refuse(f"the pickle asks for {func.__name__}({args[0]!r}), a buffer of that many zero bytes "
                               "(pickles hold bytes themselves, never their count)")
        if func is _RECONSTRUCT:
            if len(args) != 3 or args[0] is not np.ndarray:
                raise self._refuse(f"_reconstruct of {args[0] if args else 'nothing'!r}: only numpy.ndarray is "
                                   "admitted")
            shape = _shape(args[1], self._refuse)
            self._charge(math.prod(shape) * np.dtype(args[2]).itemsize, f"an initial array of shape {shape}")

    def load_reduce(self) -> None:
        self._check_call(self.stack[-2], self.stack[-1])
        super().load_reduce()

    def load_newobj(self) -> None:
        self._check_call(self.stack[-2], self.stack[-1])
        super().load_newobj()

    def load_newobj_ex(self) -> None:
        self._check_call(self.stack[-3], self.stack[-2])
        super().load_newobj_ex()

    def load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        if self.size is not None and n > self.size:  # bytearray(n) below is allocated (and zeroed) before reading
            raise self._refuse(f"the pickle claims a {n}-byte bytearray in a {self.size}-byte file (truncated or "
                               "corrupt)")
        buffer = bytearray(n)
        self.readinto(buffer)
        self.append(buffer)

    def load_build(self) -> None:
        if isinstance(self.stack[-2], np.ndarray):
            self._check_array_state(self.stack[-1])
        super().load_build()

    def _check_array_state(self, state: Any) -> None:
        """Refuse an ``ndarray.__setstate__`` state ``([version,] shape, dtype, is_fortran, data)`` whose data does
        not match its shape, before numpy allocates the array."""
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise self._refuse(f"an array's state is {type(state).__name__}, not numpy's (shape, dtype, order, data)")
        shape, dtype, _, data = state[-4:]
        shape = _shape(shape, self._refuse)
        if not isinstance(dtype, np.dtype):
            raise self._refuse(f"an array's dtype is {type(dtype).__name__}, not a numpy dtype")
        count = math.prod(shape)
        if dtype.hasobject:  # numpy pickles such arrays as a list of their elements
            if not isinstance(data, list) or len(data) != count:
                held = f"{len(data)} elements" if isinstance(data, list) else type(data).__name__
                raise self._refuse(f"an array of Python objects claims shape {shape} ({count} elements) but its "
                                   f"pickle holds {held}")
            self._charge(count * dtype.itemsize, f"an object array of shape {shape}")
        elif not isinstance(data, (bytes, str)):  # str: a Python 2 pickle read with encoding="latin1"
            raise self._refuse(f"an array's data is {type(data).__name__}, not bytes")
        elif len(data) != count * dtype.itemsize:
            raise self._refuse(f"an array claims shape {shape} of {dtype} ({count * dtype.itemsize} bytes) but its "
                               f"pickle holds {len(data)} bytes")


for _opcode, _method in ((pickle.REDUCE, "load_reduce"), (pickle.NEWOBJ, "load_newobj"),
                         (pickle.NEWOBJ_EX, "load_newobj_ex"), (pickle.BYTEARRAY8, "load_bytearray8"),
                         (pickle.BUILD, "load_build")):
    RestrictedUnpickler.dispatch[_opcode[0]] = getattr(RestrictedUnpickler, _method)


def _shape(value: Any, refuse: Any) -> tuple[int, ...]:
    """``value`` as an array shape (a tuple of non-negative integers), else the error ``refuse(message)``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    if (not isinstance(value, tuple) or
            not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in value)):
        raise refuse(f"an array's shape is {value!r}, not a tuple of non-negative integers")
    return tuple(int(n) for n in value)


def restricted_loads(data: bytes, source: str | PathLike | None = None) -> Any:
    """Unpickle ``data`` through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), source).load()


def _out_of_memory(path: Path, field: str | None = None) -> DataError:
    return DataError("out of memory while reading the file (it claims more data than this machine can hold: corrupt "
                     "or hostile?)", path, field)



@contextmanager
def _read_errors_named(path: Path, what: str, field: str | None = None) -> Iterator[None]:
    """Every failure of reading ``path`` as a :class:`DataError` naming it: a missing or unreadable file, memory
    exhausted by what the file claims, and whatever a truncated or foreign file raises from inside pickle or numpy
    (a dozen types: ValueError, UnpicklingError, EOFError, ...)."""
    try:
        yield
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except OSError as e:
        raise DataError(f"cannot read file ({e.strerror or e})", path) from None
    except MemoryError:
        raise _out_of_memory(path, field) from None
    except Exception as e:
        raise DataError(f"not a readable {what} ({type(e).__name__}: {e})", path, field) from None

def load_pickle(path: str | PathLike, *, trust: bool = False) -> Any:
    """The object pickled in the file ``path``, through :class:`RestrictedUnpickler` unless ``trust``.

    Every failure is a :class:`DataError` naming the file: :class:`UnsafePickleError` for a forbidden global,
    otherwise a missing, unreadable, truncated or oversized file, or running out of memory.
    """
    path = Path(path)
    with _read_errors_named(path, "pickle"):
        with open(path, "rb") as f:
            return pickle.load(f) if trust else RestrictedUnpickler(f, path).load()


def load_npy(path: str | PathLike, *, trust: bool = False) -> Any:
    """What ``np.load(path, allow_pickle=True)`` returns, without unpickling through the plain loader.

    The header is checked first (:func:`check_npy_header`), so a file claiming more data than it holds allocates
    nothing. Plain arrays (and ``.npz`` archives) come from ``np.load(allow_pickle=False)``. An object array's
    pickled payload, or a file that is a bare pickle (which ``np.load`` also accepts), goes through
    :class:`RestrictedUnpickler` unless ``trust``. Failures are :class:`DataError` naming the file.
    """
    path = Path(path)
    with _read_errors_named(path, ".npy file", "content"):
        check_npy_header(path)
        if trust:
            return np.load(path, allow_pickle=True)
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as refused:
            with open(path, "rb") as f:
                return _load_pickled_npy(f, path, refused)


def _read_npy_header(f: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` from the header of the ``.npy`` file ``f`` (positioned at its start), leaving ``f`` at the
    first byte after the header."""
    version = npy_format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(f)
    else:  # 2.0 widens the header length to 4 bytes; 3.0 differs from it only in a UTF-8 header
        shape, _, dtype = npy_format.read_array_header_2_0(f)
    return shape, dtype


def check_npy_header(path: str | PathLike,
                     check_shape: Callable[[tuple[int, ...]], None] | None = None) -> tuple[int, ...] | None:
    """Refuse an ``.npy`` file whose header claims more array data than the file holds after the header
    (format: ``numpy.lib.format``, NEP 1), before anything reads the data: ``np.load`` allocates the claimed
    ``prod(shape) * itemsize`` bytes first. Object arrays (whose payload is a pickle of any length), ``.npz``
    archives and bare pickles are left to the loaders; a header that cannot be parsed is a :class:`DataError`.
    ``check_shape``: the caller's own check of the shape (a reader's frame cap), run before the size comparison
    so that its more specific reason is the one given. Returns the header's shape, or None for a file without the
    ``.npy`` magic.
    """
    path = Path(path)
    with open(path, "rb") as f:
        if f.read(len(npy_format.MAGIC_PREFIX)) != npy_format.MAGIC_PREFIX:
            return None
        f.seek(0)
        try:
            shape, dtype = _read_npy_header(f)
        except ValueError as e:
            raise DataError(f"not a readable .npy header ({e})", path, "header") from None
        size = os.fstat(f.fileno()).st_size
        data_bytes = size - f.tell()
    if check_shape is not None:
        check_shape(tuple(shape))
    if dtype.hasobject:
        return tuple(shape)
    claimed = math.prod(shape) * dtype.itemsize  # Python integers: no overflow, however absurd the shape
    if claimed > data_bytes:
        raise DataError(f"truncated or corrupt header: it claims shape {tuple(shape)} of {dtype} ({claimed} bytes) "
                        f"but the file is {size} bytes, {data_bytes} after the header", path, "shape")
    return tuple(shape)


def _load_pickled_npy(f: BinaryIO, path: Path, refused: ValueError) -> Any:
    """The rest of :func:`load_npy` once ``allow_pickle=False`` refused the file (``refused``)."""
    magic = f.read(len(npy_format.MAGIC_PREFIX))
    f.seek(0)
    if magic != npy_format.MAGIC_PREFIX:
        return RestrictedUnpickler(f, path).load()  # np.load treats a file without the .npy magic as a pickle
    version = npy_format.read_magic(f)
    f.seek(0)
    if version not in ((1, 0), (2, 0)):
        # version 3 differs only in a UTF-8 header, which numpy writes for unicode field names, never for objects
        raise DataError(f".npy format version {version[0]}.{version[1]} with a pickled payload is not supported",
                        path, "content")
    _, dtype = _read_npy_header(f)
    if not dtype.hasobject:
        raise refused  # allow_pickle=False failed for another reason: report that one
    # numpy's format.write_array pickles the whole array after the header (format.read_array unpickles it)
    return RestrictedUnpickler(f, path).load()


__all__ = ["ADMITTED_GLOBALS", "RestrictedUnpickler", "UnsafePickleError", "check_npy_header", "load_npy",
           "load_pickle", "restricted_loads"]
