"""Atomic file writes: a save either completes or leaves the previous file untouched.

``atomic_write(path)`` writes to a temporary file in the destination folder, flushes and fsyncs
it, then ``os.replace``-s it over ``path``. Three properties beyond atomicity:

- **Short temporary names.** The temporary name is ``.kfunc-<8 hex>-<8 random>.tmp`` (28 bytes),
  whatever the length of ``path``'s name, so any name the file system accepts can be saved.
  The 8 hex digits are a hash of the target's file name: they mark which target a temporary
  file belongs to.
- **No litter from killed saves.** A save killed before its ``os.replace`` (SIGKILL, power loss)
  leaves its temporary file behind. Each writer holds an exclusive ``flock`` on its temporary
  file while writing; the next save of the same target removes every temporary file of that
  target whose lock it can take (the lock of a dead process is released by the kernel, a live
  writer's is not, so concurrent saves never delete each other's files).
- **The permissions of a plain write.** The temporary file is created with mode ``0o666``
  filtered by the process umask, as ``open(path, "w")`` would create it; when it replaces an
  existing regular file it takes that file's permission bits, as writing into it would keep them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # Windows: an open file cannot be deleted there, which protects live writers
    fcntl = None

_PREFIX = ".kfunc-"
_SUFFIX = ".tmp"
_ATTEMPTS = 16


def temporary_prefix(path: str | os.PathLike) -> str:
    """``.kfunc-<8 hex>-``: the start of every temporary name of saves to ``path``."""
    name = os.path.basename(os.path.abspath(os.fspath(path)))
    return _PREFIX + hashlib.sha256(os.fsencode(name)).hexdigest()[:8] + "-"


def _lock(descriptor: int, *, wait: bool) -> bool:
    """Take an exclusive lock on ``descriptor``; False when another process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Delete the temporary files that killed saves to ``path`` left behind (those no live
    writer holds); returns their names."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    prefix = temporary_prefix(path)
    removed = []
    try:
        entries = [e.name for e in os.scandir(folder) if e.name.startswith(prefix) and e.name.endswith(_SUFFIX)]
    except OSError:
        return removed
    for name in entries:
        candidate = os.path.join(folder, name)
        try:
            descriptor = os.open(candidate, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(descriptor).st_mode) and _lock(descriptor, wait=False):
                os.remove(candidate)
                removed.append(name)
        except OSError:  # a live writer's file on Windows, or removed meanwhile
            pass
        finally:
            os.close(descriptor)
    return removed


def _plain_write_mode(path: str) -> int | None:
    """The permission bits of the regular file at ``path``, or None when there is none."""
    with contextlib.suppress(OSError):
        status = os.stat(path)
        if stat.S_ISREG(status.st_mode):
            return stat.S_IMODE(status.st_mode)
    return None


def _create_temporary(folder: str, prefix: str) -> tuple[int, str]:
    """A new, locked temporary file in ``folder``: ``(descriptor, path)``."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(_ATTEMPTS):
        temporary = os.path.join(folder, prefix + secrets.token_hex(4) + _SUFFIX)
        try:
            descriptor = os.open(temporary, flags, 0o666)  # the kernel applies the umask
        except FileExistsError:
            continue
        _lock(descriptor, wait=True)
        # Another save's cleanup may have removed the file between its creation and our lock.
        try:
            still_ours = os.path.samestat(os.stat(temporary), os.fstat(descriptor))
        except OSError:
            still_ours = False
        if still_ours:
            return descriptor, temporary
        os.close(descriptor)
    raise FileExistsError(f"Could not create a temporary file in '{folder}' after {_ATTEMPTS} attempts.")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Yield a stream to write ``path``'s new content into; on success it replaces ``path`` at
    once, on any exception the temporary file is removed and ``path`` is unchanged."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(path)
    descriptor, temporary = _create_temporary(folder, temporary_prefix(path))
    try:
        stream = os.fdopen(descriptor, mode)
    except BaseException:
        os.close(descriptor)
        os.remove(temporary)
        raise
    try:
        with stream:
            replaced_mode = _plain_write_mode(path)
            if replaced_mode is not None and hasattr(os, "fchmod"):
                os.fchmod(stream.fileno(), replaced_mode)
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
            if fcntl is not None:
                os.replace(temporary, path)  # while the lock is held, so no cleanup can race it
        if fcntl is None:
            os.replace(temporary, path)  # Windows renames only closed files
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    with contextlib.suppress(OSError):
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
