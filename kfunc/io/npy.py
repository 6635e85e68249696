"""Strict parsing and plain writing of ``.npy`` arrays.

An ``.npy`` file of version 1, 2 or 3: the magic ``b"\\x93NUMPY"``, two version bytes, the
header length (2 bytes little-endian in version 1, 4 in versions 2 and 3), a header that is a
dict literal ``{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}``, then exactly
``prod(shape) * itemsize`` bytes of data.

The header is parsed by ``ast.literal_eval`` after a length cap, only plain numeric and boolean
dtypes are accepted (never ``object``, so nothing is ever unpickled), and the data length must
equal what the header's shape and dtype declare before ``np.frombuffer`` views the bytes already
read: a header declaring ``10**15`` elements over 16 bytes of data allocates nothing.
"""

from __future__ import annotations

import ast
import math
import re
import zipfile

import numpy as np

MAX_HEADER_BYTES = 10_000  # numpy's own cap on .npy headers
MAX_RANK = 64

_MAGIC = b"\x93NUMPY"
_DESCR = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")


def _shown(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_npy(buffer: bytearray, fail) -> np.ndarray:
    """An array viewing ``buffer`` (an ``.npy`` file's bytes) after every check in the module
    docstring; ``fail(message)`` returns the exception to raise."""
    if len(buffer) < 10 or bytes(buffer[:6]) != _MAGIC:
        raise fail("is not an .npy array (no NUMPY magic).")
    major = buffer[6]
    if major == 1:
        length, start = int.from_bytes(buffer[8:10], "little"), 10
    elif major in (2, 3) and len(buffer) >= 12:
        length, start = int.from_bytes(buffer[8:12], "little"), 12
    else:
        raise fail(f"has .npy format version {major}, which is not read (1, 2 and 3 are).")
    if length > MAX_HEADER_BYTES:
        raise fail(f"has a header of {length} bytes, over the cap of {MAX_HEADER_BYTES}.")
    end = start + length
    if end > len(buffer):
        raise fail("is truncated inside its header.")
    try:
        text = bytes(buffer[start:end]).decode("utf-8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        raise fail("has a header that is not a plain dict literal.") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise fail("has a header without exactly the keys descr, fortran_order and shape.")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str) or not _DESCR.fullmatch(descr):
        raise fail(
            f"has dtype {_shown(descr)}; only plain numeric and boolean dtypes are read (never objects, so "
            "nothing is unpickled)."
        )
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError):
        raise fail(f"has dtype {_shown(descr)}, which is not a valid dtype.") from None
    if dtype.hasobject or dtype.kind not in "biufc" or dtype.itemsize == 0:
        raise fail(f"has dtype {_shown(descr)}; only plain numeric and boolean dtypes are read.")
    if not isinstance(fortran, bool):
        raise fail("has a fortran_order that is not True or False.")
    valid_shape = isinstance(shape, tuple) and len(shape) <= MAX_RANK and all(
        type(d) is int and d >= 0 for d in shape
    )
    if not valid_shape:
        raise fail(f"has shape {_shown(shape)}, not a tuple of at most {MAX_RANK} non-negative ints.")
    count = math.prod(shape)
    declared = count * dtype.itemsize
    if declared != len(buffer) - end:
        raise fail(
            f"declares shape {shape} of {dtype.name} ({declared} bytes) but holds {len(buffer) - end} bytes of "
            "data; the file is truncated or corrupt."
        )
    array = np.frombuffer(buffer, dtype, count, end) if count else np.zeros(0, dtype)
    array = array.reshape(shape, order="F" if fortran else "C")
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def write_array(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    """Store ``array`` as the ``.npy`` member ``name`` (uncompressed, never pickled)."""
    array = np.asarray(array)
    with archive.open(name, "w", force_zip64=True) as stream:
        np.lib.format.write_array(stream, array, allow_pickle=False)


