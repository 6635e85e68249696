"""Strict reading (and plain writing) of zip archives of ``.npy`` arrays: ``.npz`` weights files
and ``.kfunc`` model files.

Formats read:

- the archive: a zip file whose members are ``STORED`` or ``DEFLATED``, not encrypted, with
  unique relative names (no ``..`` component, no leading ``/`` or drive, no backslash, no NUL);
- an array member: an ``.npy`` file of version 1, 2 or 3: the magic ``b"\\x93NUMPY"``, two version
  bytes, the header length (2 bytes little-endian in version 1, 4 in versions 2 and 3), a header
  that is a dict literal ``{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}``, then
  exactly ``prod(shape) * itemsize`` bytes of data.

Nothing a file declares is trusted before it is checked, and nothing is allocated from a
declared size before the check: member sizes are capped (each, in total, and in their ratio to
the compressed size, which deflate cannot exceed 1032:1), every member is read with a bounded
read whose CRC-32 zipfile checks, the ``.npy`` header is parsed by ``ast.literal_eval`` after a
length cap, only plain numeric and boolean dtypes are accepted (never ``object``, so nothing is
ever unpickled), and the data length must equal what the header's shape and dtype declare
before ``np.frombuffer`` views it. Any failure raises the error class the caller passes (one of
``kfunc.saving.errors``), naming the file and the member; zipfile's own exceptions never escape.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import zipfile
from collections.abc import Iterator

import numpy as np

MAX_MEMBERS = 100_000
MAX_MEMBER_BYTES = 16 << 30  # one array
MAX_TOTAL_BYTES = 64 << 30  # all members, uncompressed
MAX_EXPANSION = 1100  # deflate expands at most 1032:1; a larger declared ratio is a lie or a bomb
MAX_HEADER_BYTES = 10_000  # numpy's own cap on .npy headers
MAX_RANK = 64
_CHUNK = 1 << 22

_MAGIC = b"\x93NUMPY"
_DESCR = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")
_DRIVE = re.compile(r"[A-Za-z]:")


def _shown(name, limit: int = 80) -> str:
    """A file-provided string, quoted and cut short, for messages."""
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unsafe_member_name(name: str) -> bool:
    """Whether a member name could escape a folder if extracted, or is otherwise ill-formed."""
    return (
        not name
        or "\x00" in name
        or "\\" in name
        or name.startswith("/")
        or _DRIVE.match(name) is not None
        or ".." in name.split("/")
    )


class Archive:
    """An open zip archive whose member list passed the checks; reads members strictly."""

    def __init__(self, archive: zipfile.ZipFile, path: str, error: type[Exception], what: str):
        self._zip, self.path, self.error, self.what = archive, path, error, what
        self._infos = {info.filename: info for info in archive.infolist()}

    @property
    def names(self) -> list[str]:
        return list(self._infos)

    def _fail(self, message: str):
        return self.error(f"The {self.what} '{self.path}': {message}")

    def size_of(self, name: str) -> int:
        return self._infos[name].file_size

    def read_bytes(self, name: str, *, limit: int | None = None) -> bytearray:
        """The member's bytes; raises if it is missing, larger than ``limit`` (default
        ``MAX_MEMBER_BYTES``), or corrupt."""
        limit = MAX_MEMBER_BYTES if limit is None else limit
        info = self._infos.get(name)
        if info is None:
            raise self._fail(f"the member {_shown(name)} is missing; the file is incomplete or not a {self.what}.")
        if info.file_size > limit:
            raise self._fail(
                f"the member {_shown(name)} declares {info.file_size} bytes, over the cap of {limit} bytes."
            )
        buffer = bytearray(info.file_size)
        view = memoryview(buffer)
        filled = 0
        try:
            with self._zip.open(info) as stream:
                while filled < info.file_size:
                    chunk = stream.read(min(_CHUNK, info.file_size - filled))
                    if not chunk:
                        break
                    view[filled : filled + len(chunk)] = chunk
                    filled += len(chunk)
                extra = stream.read(1)  # reaching the end makes zipfile check the CRC-32
        except Exception as error:  # noqa: BLE001 - zipfile and zlib raise many kinds on corrupt data
            raise self._fail(f"the member {_shown(name)} is corrupt ({type(error).__name__}: {error}).") from None
        if filled != info.file_size or extra:
            raise self._fail(
                f"the member {_shown(name)} holds a different number of bytes than the {info.file_size} it declares."
            )
        return buffer

    def read_json(self, name: str, *, limit: int):
        """The member parsed as UTF-8 JSON, read only if it declares at most ``limit`` bytes."""
        info = self._infos.get(name)
        if info is not None and info.file_size > limit:
            raise self._fail(
                f"{name} declares {info.file_size} bytes, over the cap of {limit} bytes for a model description."
            )
        data = self.read_bytes(name, limit=limit)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise self._fail(f"{name} is not valid JSON ({type(error).__name__}: {str(error)[:200]}).") from None

    def read_array(self, name: str) -> np.ndarray:
        """The ``.npy`` member as an array (plain numeric or bool dtypes only)."""
        return parse_npy(self.read_bytes(name), lambda message: self._fail(f"the array {_shown(name)} {message}"))


@contextlib.contextmanager
def open_archive(path, *, error: type[Exception], what: str) -> Iterator[Archive]:
    """Open ``path`` as a zip archive and check its member list (names, methods, sizes)."""
    path = os.fspath(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, also on failure
    except FileNotFoundError:
        raise error(f"No {what} at '{path}': the path does not exist.") from None
    except IsADirectoryError:
        raise error(f"'{path}' is a directory, not a {what}.") from None
    except OSError as failure:
        raise error(f"Cannot open the {what} '{path}': {failure.strerror or failure}.") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise error(f"'{path}' is empty (0 bytes), not a {what}; it may have been cut short while being written.")
        try:
            archive = zipfile.ZipFile(handle)
        except Exception as failure:  # noqa: BLE001 - zipfile raises many kinds on malformed input
            raise error(
                f"'{path}' is not a {what}: it is not a readable zip archive ({type(failure).__name__}: "
                f"{str(failure)[:200]}); the file may be truncated or corrupt."
            ) from None
        with archive:
            _check_members(archive, size, path, error, what)
            yield Archive(archive, path, error, what)


def _check_members(archive: zipfile.ZipFile, file_size: int, path: str, error, what: str) -> None:
    infos = archive.infolist()

    def fail(message: str):
        return error(f"The {what} '{path}': {message}")

    if len(infos) > MAX_MEMBERS:
        raise fail(f"it has {len(infos)} members, over the cap of {MAX_MEMBERS}.")
    seen: set[str] = set()
    total = compressed = 0
    for info in infos:
        name = info.filename
        if unsafe_member_name(name):
            raise fail(f"the member name {_shown(name)} is unsafe (absolute, or with a '..' component); refused.")
        if name in seen:
            raise fail(f"the member name {_shown(name)} appears twice; refused.")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise fail(f"the member {_shown(name)} is encrypted; kfunc files never are.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise fail(f"the member {_shown(name)} uses compression method {info.compress_type}; only stored and deflated are read.")
        stored = info.compress_type == zipfile.ZIP_STORED
        if (stored and info.file_size != info.compress_size) or (
            not stored and info.file_size > info.compress_size * MAX_EXPANSION + 1024
        ):
            raise fail(
                f"the member {_shown(name)} declares {info.file_size} bytes uncompressed from {info.compress_size} "
                "compressed, more than the compression can produce (a corrupt file or a decompression bomb)."
            )
        if info.file_size > MAX_MEMBER_BYTES:
            raise fail(f"the member {_shown(name)} declares {info.file_size} bytes, over the cap of {MAX_MEMBER_BYTES}.")
        total += info.file_size
        compressed += info.compress_size
    if total > MAX_TOTAL_BYTES:
        raise fail(f"its members declare {total} bytes in all, over the cap of {MAX_TOTAL_BYTES}.")
    if compressed > file_size:
        raise fail(f"its members declare {compressed} compressed bytes, more than the file's {file_size}; it is corrupt.")


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


