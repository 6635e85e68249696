"""Opening a file to read only when it is a regular file.

A loader given a FIFO would block forever in ``open`` (waiting for a writer), a character device
such as ``/dev/zero`` or ``/dev/urandom`` would feed it an endless stream, and a directory fails
with a confusing message. ``open_regular_file`` refuses all of them before reading a byte: it
opens with ``O_NONBLOCK`` (so opening a FIFO returns at once instead of waiting) and checks the
opened descriptor with ``fstat`` (so swapping the path between a check and the open changes
nothing); symbolic links to regular files are followed, as a plain ``open`` would.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular_file(path, *, error: type[Exception], what: str) -> BinaryIO:
    """``path`` opened for binary reading; raises ``error`` (naming the path and ``what`` was
    expected) when it is missing, unreadable, or not a regular file."""
    path = os.fspath(path)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise error(f"No {what} at '{path}': the path does not exist.") from None
    except OSError as failure:
        raise error(f"Cannot open the {what} '{path}': {failure.strerror or failure}.") from None
    if not stat.S_ISREG(status.st_mode):
        raise _not_regular(path, status.st_mode, error, what)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as failure:
        raise error(f"Cannot open the {what} '{path}': {failure.strerror or failure}.") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):  # replaced between the stat and the open
        os.close(descriptor)
        raise _not_regular(path, mode, error, what)
    return os.fdopen(descriptor, "rb")


def _not_regular(path: str, mode: int, error, what: str) -> Exception:
    kind = _kind(mode)
    if kind == "a directory":
        return error(f"'{path}' is a directory, not a {what}; pass the path of the file itself.")
    return error(f"'{path}' is {kind}, not a regular file; a {what} is read only from a regular file.")
