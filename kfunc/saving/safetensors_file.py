"""Reading and writing safetensors files, the format of the Hugging Face ``safetensors``
package, without depending on it (it is an optional extra, used by the tests to check that
kfunc's files are real safetensors files).

Format: 8 bytes, the length ``n`` of the header (unsigned, little-endian); ``n`` bytes of UTF-8
JSON (padded with spaces), ``{"<tensor name>": {"dtype": "F32", "shape": [3, 4],
"data_offsets": [begin, end]}, ..., "__metadata__": {"<key>": "<text>"}}``; then the data of
every tensor, C order, little-endian, at ``begin:end`` counted from the end of the header.

Reading trusts nothing the file declares: the header length is capped and must fit the file,
each entry must name a known dtype, a shape of non-negative ints and offsets whose length is
exactly what the shape and dtype need, the tensors must tile the data without gaps or overlaps
(as the reference reader requires), and the data is read only after all of that is checked,
so a file can neither run code nor make kfunc allocate more than its own size.
"""

from __future__ import annotations

import json
import math
import os
import stat

import jax.numpy as jnp
import numpy as np

from kfunc.io.atomic import atomic_write
from kfunc.saving.errors import WeightsFileError
from kfunc.saving.registry import shown

MAX_HEADER_BYTES = 100 << 20  # the reference implementation's own cap
MAX_RANK = 64

DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(jnp.bfloat16),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
}
_CODES = {dtype: code for code, dtype in DTYPES.items()}


def write_safetensors(path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write ``{name: array}`` as a safetensors file at ``path``, atomically."""
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    blobs, offset = [], 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        code = _CODES.get(np.dtype(dtype))
        if code is None:
            raise WeightsFileError(
                f"Weight '{name}' has dtype {array.dtype}, which safetensors files cannot hold; use a numeric dtype."
            )
        data = array.astype(dtype, copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the reference writer aligns the data to 8 bytes
    with atomic_write(path) as stream:
        stream.write(len(text).to_bytes(8, "little"))
        stream.write(text)
        for data in blobs:
            stream.write(data)


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``({name: array}, metadata)`` from the safetensors file at ``path``; raises
    ``WeightsFileError`` for a missing, truncated, corrupt or refused file."""
    path = os.fspath(path)

    def fail(message: str):
        return WeightsFileError(f"The safetensors file '{path}': {message}")

    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise WeightsFileError(f"No weights file at '{path}': the path does not exist.") from None
    except OSError as failure:
        raise WeightsFileError(f"Cannot open the weights file '{path}': {failure.strerror or failure}.") from None
    with handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise fail("it is not a regular file.")
        size = info.st_size
        if size < 8:
            raise fail(f"it has {size} bytes, fewer than the 8 of the header length; it is truncated.")
        length = int.from_bytes(handle.read(8), "little")
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise fail(f"it declares a header of {length} bytes, more than the file or the cap of {MAX_HEADER_BYTES}.")
        try:
            header = json.loads(handle.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise fail(f"its header is not valid JSON ({type(error).__name__}).") from None
        if not isinstance(header, dict):
            raise fail("its header is not a JSON object.")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise fail("its __metadata__ is not an object of strings.")
        data_size = size - 8 - length
        entries = {name: _check_entry(name, entry, data_size, fail) for name, entry in header.items()}
        _check_tiling(entries, data_size, fail)
        arrays = {}
        for name, (dtype, shape, begin, end) in entries.items():
            handle.seek(8 + length + begin)
            data = handle.read(end - begin)
            if len(data) != end - begin:
                raise fail(f"the tensor {shown(name)} is cut short; the file is truncated.")
            arrays[name] = np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)
    return arrays, metadata


def _check_entry(name, entry, data_size: int, fail) -> tuple:
    if not isinstance(entry, dict):
        raise fail(f"the entry {shown(name)} is not an object.")
    dtype = DTYPES.get(entry.get("dtype")) if isinstance(entry.get("dtype"), str) else None
    if dtype is None:
        raise fail(f"the tensor {shown(name)} has dtype {shown(entry.get('dtype'))}; kfunc reads {sorted(DTYPES)}.")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and len(shape) <= MAX_RANK and all(type(d) is int and d >= 0 for d in shape)):
        raise fail(f"the tensor {shown(name)} has shape {shown(shape)}, not a list of non-negative ints.")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise fail(f"the tensor {shown(name)} has data_offsets {shown(offsets)}, not [begin, end].")
    begin, end = offsets
    needed = math.prod(shape) * dtype.itemsize
    if not 0 <= begin <= end <= data_size or end - begin != needed:
        raise fail(
            f"the tensor {shown(name)} declares shape {shape} of {entry['dtype']} ({needed} bytes) at "
            f"{begin}:{end} of {data_size} bytes of data; the file is corrupt or truncated."
        )
    return dtype, tuple(shape), begin, end


def _check_tiling(entries: dict, data_size: int, fail) -> None:
    """The tensors' byte ranges follow each other without gaps or overlaps and end with the data."""
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: (item[1][2], item[1][3])):
        if begin != position:
            raise fail(f"the tensor {shown(name)} starts at byte {begin} where {position} was expected (overlap or gap).")
        position = end
    if position != data_size:
        raise fail(f"its tensors cover {position} of its {data_size} bytes of data; it is corrupt.")
