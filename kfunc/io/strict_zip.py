"""Strict reading (and plain writing) of zip archives of ``.npy`` arrays: ``.npz`` weights files,
backups and ``.kfunc`` model files.

The archive read: a regular file (never a FIFO or device: ``kfunc.io.files``) holding a zip
whose members are ``STORED`` or ``DEFLATED``, not encrypted, with unique relative names (no
``..`` component, no leading ``/`` or drive, no backslash, no NUL).

Nothing a file declares is trusted before it is checked, and nothing is allocated from a
declared size before the check. Sizes are capped in proportion to the file, so a small file
cannot ask for gigabytes: a deflated member may declare at most ``MAX_EXPANSION`` times its
compressed size plus ``SLACK_BYTES``, a stored one exactly its compressed size, and all members
together at most ``MAX_EXPANSION`` times the file's size plus ``SLACK_BYTES`` (64 MiB from a
1 MiB file, at most). kfunc's own writers keep within that cap (``write_member`` stores a member
uncompressed when deflate would shrink it more). Absolute caps come on top (members, bytes a
member, bytes in all). Every member is read with a bounded read whose CRC-32 zipfile checks;
arrays are parsed by ``kfunc.io.npy``. Any failure raises the error class the caller passes,
naming the file and the member; zipfile's and zlib's own exceptions never escape.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zipfile
import zlib
from collections.abc import Iterator

import numpy as np

from kfunc.io.files import open_regular_file
from kfunc.io.npy import parse_npy, write_array

__all__ = ["Archive", "open_archive", "unsafe_member_name", "write_array", "write_member"]

MAX_MEMBERS = 100_000
MAX_MEMBER_BYTES = 16 << 30  # one array
MAX_TOTAL_BYTES = 64 << 30  # all members, uncompressed
MAX_EXPANSION = 64  # uncompressed bytes per byte of the file (deflate alone could give 1032)
SLACK_BYTES = 1 << 20  # what even a tiny file may expand to
_CHUNK = 1 << 22

_DRIVE = re.compile(r"[A-Za-z]:")


def _shown(name, limit: int = 80) -> str:
    """A file-provided string, quoted and cut short, for messages."""
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expansion_cap(compressed_bytes: int) -> int:
    """The most uncompressed bytes accepted from ``compressed_bytes`` of a file."""
    return MAX_EXPANSION * compressed_bytes + SLACK_BYTES


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


def write_member(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Add ``data`` as member ``name``: deflated, unless deflate shrinks it by more than half
    the readers' ``MAX_EXPANSION`` (then stored), so every file kfunc writes stays readable."""
    squeezed = len(zlib.compress(data, 6))
    stored = len(data) > (MAX_EXPANSION // 2) * squeezed
    archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)


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
        buffer = bytearray(info.file_size)  # bounded: _check_members capped it in proportion to the file
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
    """Open ``path`` (a regular file) as a zip archive and check its member list (names,
    methods, sizes)."""
    path = os.fspath(path)
    with open_regular_file(path, error=error, what=what) as handle:
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
            _check_entry_count(archive, handle, path, error, what)
            _check_members(archive, size, path, error, what)
            yield Archive(archive, path, error, what)


def _check_entry_count(archive: zipfile.ZipFile, handle, path: str, error, what: str) -> None:
    """The central directory lists as many members as its end record declares: a damaged entry
    header (say a wrong extra-field length) makes ``zipfile`` read the entries after it as that
    entry's extra data, and the archive would open with members silently missing."""
    end_record = zipfile._EndRecData(handle)  # the parser zipfile itself uses (ZIP64 too)
    declared = end_record[zipfile._ECD_ENTRIES_TOTAL] if end_record else None
    if declared != len(archive.infolist()):
        raise error(
            f"The {what} '{path}': its central directory declares {declared} members but {len(archive.infolist())} "
            "could be read; the file is corrupt."
        )


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
            not stored and info.file_size > expansion_cap(info.compress_size)
        ):
            raise fail(
                f"the member {_shown(name)} declares {info.file_size} bytes uncompressed from {info.compress_size} "
                f"compressed, more than the {MAX_EXPANSION}:1 kfunc reads (a corrupt file or a decompression bomb; "
                "a file of your own written with np.savez_compressed: save it with np.savez)."
            )
        if info.file_size > MAX_MEMBER_BYTES:
            raise fail(f"the member {_shown(name)} declares {info.file_size} bytes, over the cap of {MAX_MEMBER_BYTES}.")
        total += info.file_size
        compressed += info.compress_size
    if total > MAX_TOTAL_BYTES:
        raise fail(f"its members declare {total} bytes in all, over the cap of {MAX_TOTAL_BYTES}.")
    if total > expansion_cap(file_size):
        raise fail(
            f"its members declare {total} bytes in all from a file of {file_size} bytes, more than the "
            f"{MAX_EXPANSION}:1 kfunc reads (a corrupt file or a decompression bomb)."
        )
    if compressed > file_size:
        raise fail(f"its members declare {compressed} compressed bytes, more than the file's {file_size}; it is corrupt.")
