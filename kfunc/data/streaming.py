"""Training arrays larger than a device-memory budget, streamed to the device in chunks.

``StreamedArrays`` keeps the user's arrays as given (NumPy arrays, ``np.memmap``, arrays from
``np.load(..., mmap_mode="r")``) and reads rows only chunk by chunk: every check and conversion of
``fit_arrays`` (dtypes, label shapes, id ranges, class weights) runs on each chunk as it is read,
never over the whole array, so a memory-mapped file is never read into memory whole. Pages of a
memory map touched while gathering a chunk are given back to the operating system right after
(``madvise(MADV_DONTNEED)``): they stay in the page cache, but not in the process's memory.

A chunk is ``chunk_steps`` whole batches of the epoch's row order (the same per-epoch
permutation as in-memory training), gathered on the host, converted, and put on the device; the
device holds at most two chunks (the one training and the next one arriving), each at most a
quarter of the budget, which leaves room for the host's copies of the chunk after that.
"""

from __future__ import annotations

import mmap
import os
from typing import Any, NamedTuple

import jax
import numpy as np

from kfunc.data.arrays import DataError
from kfunc.data.fit_data import ArrayData, fit_arrays

FALLBACK_BUDGET_BYTES = 2**30  # when the backend does not report its free memory (CPU)
FREE_MEMORY_FRACTION = 0.25  # of the device's free memory, when the backend reports it
CHUNK_FRACTION = 0.25  # of the budget, per chunk
RELEASE_EVERY_BYTES = 16 * 2**20  # of a memory map read, before its pages are given back
# What one scattered row read maps of a file: Linux maps the pages around a faulting one (64 KiB
# fault-around, whole large page-cache folios); measured ~240 KiB per row on kernel 6.x.
FAULT_AROUND_BYTES = 256 * 2**10
# Scattered small rows closer than this in a file are read in one call, with the bytes between
# them: 25,600 shuffled rows of 40 bytes out of 338 K took 36 ms one call each, 17 ms in spans.
SPAN_GAP_BYTES = 4 * 2**10
SPAN_ROW_BYTES = 2**10  # rows this large or larger are read one call each (a span's bookkeeping costs more)
SPAN_MAX_BYTES = 4 * 2**20  # per call (and per scratch buffer) when reading a span


def default_budget(device=None) -> int:
    """Bytes of training data kept on ``device`` (default: the first device) at once: a quarter of
    its free memory where the backend reports it (GPU, TPU), else 1 GiB."""
    device = device or jax.devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 (backends without memory statistics raise various errors)
        stats = None
    if stats and stats.get("bytes_limit"):
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return max(int(free * FREE_MEMORY_FRACTION), 1)
    return FALLBACK_BUDGET_BYTES


def check_budget(budget, role: str) -> int:
    """``budget`` (bytes, a positive int, or None for the default) as an int."""
    if budget is None:
        return default_budget()
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget <= 0:
        raise DataError(
            f"{role}: device_data_budget must be a positive number of bytes (or None for the default), "
            f"received {budget!r}."
        )
    return int(budget)


def array_leaves(value) -> list | None:
    """The NumPy arrays of a structure of them (one, a list/tuple or a dict of them, nested), or
    None when some leaf is not a NumPy array with a batch axis (nested lists of numbers, and
    arrays already on a device, are trained from memory)."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return [value] if value.ndim >= 1 else None
    if isinstance(value, dict):
        parts = [array_leaves(v) for v in value.values()]
    elif isinstance(value, (list, tuple)):
        parts = [array_leaves(v) for v in value]
    else:
        return None
    if any(p is None for p in parts):
        return None
    return [leaf for part in parts for leaf in part]


def data_bytes(*structures) -> int | None:
    """Total bytes of the arrays in ``structures``, or None if one is not made of arrays."""
    total = 0
    for structure in structures:
        leaves = array_leaves(structure)
        if leaves is None:
            return None
        total += sum(int(leaf.nbytes) for leaf in leaves)
    return total


def _memory_map_of(array):
    """The ``mmap.mmap`` under ``array`` (an ``np.memmap`` or a view of one), or None."""
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return base
        base = getattr(base, "base", None)
    return None


def is_memory_mapped(array) -> bool:
    """Whether ``array`` is an ``np.memmap`` or a view of one (its rows are read from the file)."""
    return _memory_map_of(array) is not None


def release_pages(array) -> None:
    """Let the OS take back the pages of ``array``'s memory map touched so far (no-op otherwise)."""
    mapped = _memory_map_of(array)
    if mapped is not None and hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        try:
            mapped.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # a closed or special mapping: nothing to give back
            pass


def take_rows(structure, rows):
    """``structure`` (arrays in lists, tuples and dicts) with each array's rows ``rows`` (a slice
    or an index array), read into memory."""
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {k: take_rows(v, rows) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(take_rows(v, rows) for v in structure)
    if _memory_map_of(structure) is None:
        return np.array(structure[rows]) if isinstance(rows, slice) else np.take(structure, rows, axis=0)
    return _read_mapped_rows(structure, rows)


def _read_mapped_rows(array, rows):
    """Rows of a memory-mapped ``array``, read without mapping the file into the process where
    possible (``os.preadv`` into the result); else through the map, in blocks, with the touched
    pages given back after each. Reading through the map is what inflates the process's memory:
    a page fault maps the pages around it (fault-around, whole large page-cache folios), so rows
    scattered over the file map most of it (measured: 2,560 shuffled rows of a 128 MB ``.npy``
    mapped all 128 MB; 64 of them, 47 MB)."""
    if isinstance(rows, slice):
        rows = range(*rows.indices(len(array)))
    out = unheaped_empty((len(rows), *array.shape[1:]), array.dtype)
    place = _file_place(array)
    if place is not None and hasattr(os, "preadv"):
        _read_rows_from_file(place, rows, out)
        return out
    row_bytes = max(1, out[:1].nbytes)
    contiguous = isinstance(rows, range) and rows.step == 1
    block = max(1, RELEASE_EVERY_BYTES // (row_bytes if contiguous else max(row_bytes, FAULT_AROUND_BYTES)))
    for begin in range(0, len(rows), block):
        end = min(begin + block, len(rows))
        if contiguous:
            out[begin:end] = array[rows.start + begin:rows.start + end]
        else:
            np.take(array, np.asarray(rows[begin:end]), axis=0, out=out[begin:end])
        release_pages(array)
    return out


def unheaped_empty(shape: tuple, dtype) -> np.ndarray:
    """An uninitialized array in its own anonymous memory map, given back to the OS as soon as
    it is freed. Chunks made in malloc's heap are not: freed by another thread than the one
    that made them, they left the heap growing by ~25 MB an epoch (measured, glibc)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    if size < 2**20:
        return np.empty(shape, dtype)
    return np.frombuffer(mmap.mmap(-1, size), dtype).reshape(shape)


class _FilePlace(NamedTuple):
    filename: str
    offset: int  # of row 0 in the file, in bytes
    stride: int  # bytes from one row to the next


def _file_place(array) -> _FilePlace | None:
    """Where ``array``'s rows lie in its file, when it is a view of an ``np.memmap`` whose rows
    are each contiguous; None otherwise."""
    owner = array
    while owner is not None and not (isinstance(owner, np.memmap) and isinstance(owner.base, mmap.mmap)):
        owner = getattr(owner, "base", None)
    if owner is None or not getattr(owner, "filename", None) or array.ndim < 1:
        return None
    row = np.empty(array.shape[1:], array.dtype)
    if array.strides[1:] != row.strides or array.strides[0] < row.nbytes:
        return None
    mapped_from = owner.offset - owner.offset % mmap.ALLOCATIONGRANULARITY  # as np.memmap maps it
    start = np.frombuffer(owner.base, np.uint8).ctypes.data
    return _FilePlace(owner.filename, mapped_from + array.ctypes.data - start, array.strides[0])


def _read_rows_from_file(place: _FilePlace, rows, out: np.ndarray) -> None:
    """Read ``rows`` of the file at ``place`` into ``out`` (one row per ``out`` row): contiguous
    rows in one call; scattered rows in file order, rows closer than ``SPAN_GAP_BYTES`` read
    together with the bytes between them (small rows: one call per span instead of per row), each
    placed straight into its ``out`` row."""
    descriptor = os.open(place.filename, os.O_RDONLY)
    try:
        row_bytes = out[:1].nbytes
        if isinstance(rows, range) and rows.step == 1 and place.stride == row_bytes:
            _read_exactly(descriptor, memoryview(out).cast("B"), place.offset + rows.start * place.stride)
            return
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        out_rows = out.reshape(len(out), -1).view(np.uint8)  # (rows, row_bytes)
        gap_limit = SPAN_GAP_BYTES if row_bytes < SPAN_ROW_BYTES else -1  # large rows: always one call each
        breaks = np.flatnonzero(np.diff(ordered) * place.stride > gap_limit) + 1
        starts, ends = np.r_[0, breaks], np.r_[breaks, len(ordered)]
        alone = ends - starts == 1  # most rows of a large file: one call straight into its row
        offsets = place.offset + ordered[starts[alone]] * place.stride
        for target, offset in zip(order[starts[alone]].tolist(), offsets.tolist(), strict=True):
            _read_exactly(descriptor, memoryview(out_rows[target]), offset)
        for begin, end in zip(starts[~alone].tolist(), ends[~alone].tolist(), strict=True):
            _read_span(descriptor, place, ordered[begin:end], order[begin:end], out_rows, row_bytes)
    finally:
        os.close(descriptor)


def _read_span(descriptor: int, place: _FilePlace, ordered, targets, out_rows: np.ndarray, row_bytes: int) -> None:
    """Rows ``ordered`` (sorted, close together in the file) into ``out_rows[targets]``, read in
    calls of at most ``SPAN_MAX_BYTES``."""
    per_read = max(1, SPAN_MAX_BYTES // place.stride)
    begin = 0
    while begin < len(ordered):
        first = int(ordered[begin])
        end = int(np.searchsorted(ordered, first + per_read, side="left"))
        length = (int(ordered[end - 1]) - first) * place.stride + row_bytes
        buffer = np.empty(length, np.uint8)
        _read_exactly(descriptor, memoryview(buffer), place.offset + first * place.stride)
        spanned = np.lib.stride_tricks.as_strided(buffer, (int(ordered[end - 1]) - first + 1, row_bytes),
                                                  (place.stride, 1), writeable=False)
        out_rows[targets[begin:end]] = spanned[ordered[begin:end] - first]
        begin = end


def _read_exactly(descriptor: int, target: memoryview, offset: int) -> None:
    while len(target):
        count = os.preadv(descriptor, [target], offset)
        if count <= 0:
            raise DataError(f"The memory-mapped data file ended early: {len(target)} bytes missing at offset {offset}.")
        target, offset = target[count:], offset + count


def slice_rows(structure, rows: slice):
    """Views of the rows ``rows`` of every array of ``structure`` (nothing is read)."""
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {k: slice_rows(v, rows) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(slice_rows(v, rows) for v in structure)
    return structure[rows]


class StreamedArrays(NamedTuple):
    """The user's ``x``, ``y``, ``sample_weight`` (and ``class_weight``), read chunk by chunk.
    ``probe``: the checked first row, which tells the shapes and dtypes every chunk will have."""

    model: Any
    config: Any
    x: Any
    y: Any
    sample_weight: Any
    class_weight: Any
    count: int
    probe: ArrayData
    role: str

    @classmethod
    def of(cls, model, config, x, y, sample_weight, class_weight, *, role: str) -> StreamedArrays:
        """Checks what can be checked without reading the data: structure, names, shapes (on the
        first row) and that every array has the same number of rows."""
        lengths = {len(leaf) for leaf in array_leaves((x, y, sample_weight))}
        if len(lengths) > 1:
            raise DataError(
                f"{role}: all inputs, targets and sample weights must have the same number of samples, but "
                f"received arrays of {sorted(lengths)} samples."
            )
        first = slice(0, 1)
        probe = fit_arrays(model, config, take_rows(x, first), take_rows(y, first), take_rows(sample_weight, first),
                           class_weight, role=role)
        return cls(model, config, x, y, sample_weight, class_weight, lengths.pop(), probe, role)

    @property
    def targets(self) -> tuple:
        """Per output, a one-row array of its labels (their shape is what the compiled step needs)."""
        return self.probe.targets

    @property
    def row_bytes(self) -> int:
        """Bytes of one checked sample (inputs, targets and weights as they go to the device)."""
        leaves = jax.tree_util.tree_leaves((self.probe.inputs, self.probe.targets, self.probe.weights))
        return sum(leaf.dtype.itemsize * int(np.prod(leaf.shape[1:])) for leaf in leaves)

    def take(self, rows) -> ArrayData:
        """The samples ``rows`` (a slice or an index array), read, checked and converted."""
        return fit_arrays(self.model, self.config, take_rows(self.x, rows), take_rows(self.y, rows),
                          take_rows(self.sample_weight, rows), self.class_weight, role=self.role)

    def rows(self, rows: slice) -> StreamedArrays:
        """The samples ``rows`` as streamed arrays again (views: validation_split reads nothing)."""
        count = len(range(*rows.indices(self.count)))
        return self._replace(x=slice_rows(self.x, rows), y=slice_rows(self.y, rows),
                             sample_weight=slice_rows(self.sample_weight, rows), count=count)


def chunk_steps(data: StreamedArrays, batch_size: int, budget: int) -> int:
    """Whole batches per chunk: as many as fit in ``CHUNK_FRACTION`` of ``budget``, at least one."""
    return max(1, int(budget * CHUNK_FRACTION) // max(1, data.row_bytes * batch_size))
