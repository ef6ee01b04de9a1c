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
"""

from __future__ import annotations

import _codecs
import collections
import io
import pickle
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from skelact.errors import DataError

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


class UnsafePickleError(DataError):
    """A data pickle names a global outside :data:`ADMITTED_GLOBALS`; nothing it names was called."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ADMITTED_GLOBALS` and raises :class:`UnsafePickleError` for any
    other global (``source`` names the file in the message)."""

    def __init__(self, file: BinaryIO, source: str | PathLike | None = None, **kwargs: Any):
        super().__init__(file, **kwargs)
        self.source = source

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


def restricted_loads(data: bytes, source: str | PathLike | None = None) -> Any:
    """Unpickle ``data`` through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), source).load()


def load_pickle(path: str | PathLike, *, trust: bool = False) -> Any:
    """The object pickled in the file ``path``, through :class:`RestrictedUnpickler` unless ``trust``.

    Every failure is a :class:`DataError` naming the file: :class:`UnsafePickleError` for a forbidden global,
    otherwise a missing, unreadable or truncated file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return pickle.load(f) if trust else RestrictedUnpickler(f, path).load()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except OSError as e:
        raise DataError(f"cannot read file ({e.strerror or e})", path) from None
    except Exception as e:  # a truncated or foreign file raises any of a dozen types from inside pickle
        raise DataError(f"not a readable pickle ({type(e).__name__}: {e})", path) from None


def load_npy(path: str | PathLike, *, trust: bool = False) -> Any:
    """What ``np.load(path, allow_pickle=True)`` returns, without unpickling through the plain loader.

    Plain arrays (and ``.npz`` archives) come from ``np.load(allow_pickle=False)``. An object array's pickled
    payload, or a file that is a bare pickle (which ``np.load`` also accepts), goes through
    :class:`RestrictedUnpickler` unless ``trust``. Failures are :class:`DataError` naming the file.
    """
    path = Path(path)
    try:
        if trust:
            return np.load(path, allow_pickle=True)
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as refused:
            with open(path, "rb") as f:
                return _load_pickled_npy(f, path, refused)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError("no such file", path) from None
    except OSError as e:
        raise DataError(f"cannot read file ({e.strerror or e})", path) from None
    except Exception as e:  # a corrupt header or payload raises ValueError, UnpicklingError, EOFError, ...
        raise DataError(f"not a readable .npy file ({type(e).__name__}: {e})", path, "content") from None


def _load_pickled_npy(f: BinaryIO, path: Path, refused: ValueError) -> Any:
    """The rest of :func:`load_npy` once ``allow_pickle=False`` refused the file (``refused``)."""
    magic = f.read(len(npy_format.MAGIC_PREFIX))
    f.seek(0)
    if magic != npy_format.MAGIC_PREFIX:
        return RestrictedUnpickler(f, path).load()  # np.load treats a file without the .npy magic as a pickle
    version = npy_format.read_magic(f)
    if version == (1, 0):
        _, _, dtype = npy_format.read_array_header_1_0(f)
    elif version == (2, 0):
        _, _, dtype = npy_format.read_array_header_2_0(f)
    else:  # version 3 differs only in a UTF-8 header, which numpy writes for unicode field names, never for objects
        raise DataError(f".npy format version {version[0]}.{version[1]} with a pickled payload is not supported",
                        path, "content")
    if not dtype.hasobject:
        raise refused  # allow_pickle=False failed for another reason: report that one
    # numpy's format.write_array pickles the whole array after the header (format.read_array unpickles it)
    return RestrictedUnpickler(f, path).load()


__all__ = ["ADMITTED_GLOBALS", "RestrictedUnpickler", "UnsafePickleError", "load_npy", "load_pickle",
           "restricted_loads"]
