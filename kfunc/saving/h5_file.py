"""HDF5 weights files laid out as Keras 3's ``.weights.h5`` (``layers/dense/vars/0`` ...; see
``kfunc.saving.structure``), read safely and written through the optional ``h5py`` package
(``pip install 'kfunc[h5]'``).

Reading walks the whole file before reading one number, and refuses (``WeightsFileError``):

- any link that is not a plain hard link (soft links, external links, user-defined links), and
  any object reached twice (a hard link back up the tree would make the walk endless);
- datasets whose data lives outside the file (external storage) or in other files (virtual);
- datasets of a dtype that is not a plain number or boolean (strings, references, compounds;
  Keras's 2-byte opaque ``bfloat16`` datasets, tagged ``dtype="bfloat16"``, are read as such);
- datasets whose declared size (shape times item size) is larger than the bytes they store, or
  than the file: a "shape bomb" (a huge shape over a fill value or compressed data) is refused
  before any allocation; compressed datasets are not read at all (Keras never compresses);
- more than ``MAX_OBJECTS`` objects or a tree deeper than ``MAX_DEPTH``.

Only the datasets under ``layers/`` named ``.../vars/<index>`` are weights; everything else that
Keras stores (the optimizer's ``optimizer/vars``, empty ``vars`` groups) is checked and ignored.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat

import jax.numpy as jnp
import numpy as np

from kfunc.io.atomic import atomic_write
from kfunc.saving.errors import WeightsFileError
from kfunc.saving.registry import shown

MAX_OBJECTS = 200_000
MAX_DEPTH = 64
_WEIGHT_PATH = re.compile(r"layers/.+/vars/(0|[1-9][0-9]*)")


def require_h5py():
    """The ``h5py`` module, or an ``ImportError`` that says how to install it."""
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "Reading and writing .h5 weights and Keras .keras files needs the h5py package: "
            "pip install 'kfunc[h5]' (or pip install h5py)."
        ) from None
    return h5py


def write_h5_weights(path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``{structural path: array}`` as a Keras-layout HDF5 file at ``path``, atomically."""
    h5py = require_h5py()
    with atomic_write(path, "w+b") as stream, h5py.File(stream, "w") as file:
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            dataset = file.create_dataset(name, data=array)
            if array.dtype == np.dtype(jnp.bfloat16):
                dataset.attrs["dtype"] = "bfloat16"  # stored as 2-byte opaque values, as Keras does


def read_h5_weights(source, *, name: str | None = None) -> dict[str, np.ndarray]:
    """``{structural path: array}`` from a Keras-layout HDF5 file: ``source`` is a path, or the
    file's bytes (a ``.keras`` archive's ``model.weights.h5``) with ``name`` for messages."""
    h5py = require_h5py()
    if isinstance(source, (bytes, bytearray)):
        label, size, opened = name, len(source), io.BytesIO(bytes(source))
    else:
        label = os.fspath(source)
        opened = _open_regular(label)
        size = os.fstat(opened.fileno()).st_size
    with opened:
        try:
            file = h5py.File(opened, "r")
        except Exception as error:  # noqa: BLE001 - h5py raises OSError and others on malformed files
            raise WeightsFileError(
                f"'{label}' is not a readable HDF5 file ({type(error).__name__}: {str(error)[:200]})."
            ) from None
        with file:
            datasets = _checked_datasets(h5py, file, size, label)
            return {path: _read(dataset, path, label) for path, dataset in datasets.items() if _WEIGHT_PATH.fullmatch(path)}


def _open_regular(path: str):
    try:
        handle = open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise WeightsFileError(f"No weights file at '{path}': the path does not exist.") from None
    except OSError as failure:
        raise WeightsFileError(f"Cannot open the weights file '{path}': {failure.strerror or failure}.") from None
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise WeightsFileError(f"The weights file '{path}' is not a regular file.")
    return handle


def _checked_datasets(h5py, file, size: int, label: str) -> dict:
    """Every dataset of the file by path, after checking every link and dataset."""

    def fail(message: str):
        return WeightsFileError(f"The HDF5 file '{label}': {message} Refused; kfunc reads only self-contained files.")

    datasets, seen = {}, set()
    stack = [(file, "", 0)]
    while stack:
        group, prefix, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise fail(f"its groups are nested more than {MAX_DEPTH} deep.")
        for key in group:
            path = f"{prefix}{key}"
            link = group.get(key, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise fail(f"{shown(path)} is a {type(link).__name__}, not a plain member.")
            member = group.get(key)
            address = h5py.h5o.get_info(member.id).addr
            if address in seen:
                raise fail(f"{shown(path)} is a second link to an object already in the file (a hard-link loop or alias).")
            seen.add(address)
            if len(seen) > MAX_OBJECTS:
                raise fail(f"it holds more than {MAX_OBJECTS} objects.")
            if isinstance(member, h5py.Group):
                stack.append((member, f"{path}/", depth + 1))
            elif isinstance(member, h5py.Dataset):
                _check_dataset(member, path, size, fail)
                datasets[path] = member
            else:
                raise fail(f"{shown(path)} is a {type(member).__name__}, neither a group nor a dataset.")
    return datasets


def _dtype_of(dataset) -> np.dtype | None:
    dtype = dataset.dtype
    if dtype.kind in "biuf" and dtype.fields is None and dtype.subdtype is None:
        return dtype
    if dtype.kind == "V" and dtype.itemsize == 2 and dataset.attrs.get("dtype") == "bfloat16":
        return np.dtype(jnp.bfloat16)
    return None


def _check_dataset(dataset, path: str, file_size: int, fail) -> None:
    if dataset.external:
        raise fail(f"the dataset {shown(path)} keeps its data in external files.")
    if dataset.is_virtual:
        raise fail(f"the dataset {shown(path)} is virtual (its data lives in other datasets or files).")
    if _dtype_of(dataset) is None:
        raise fail(f"the dataset {shown(path)} has dtype {dataset.dtype}; only plain numeric weights are read.")
    if dataset.compression is not None or dataset.id.get_create_plist().get_nfilters():
        raise fail(f"the dataset {shown(path)} is compressed or filtered, which Keras's weights files never are.")
    declared = math.prod(dataset.shape) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    if declared > stored or declared > file_size:
        raise fail(
            f"the dataset {shown(path)} declares shape {dataset.shape} ({declared} bytes) but stores {stored} bytes "
            f"in a file of {file_size} bytes (a shape bomb or a truncated file)."
        )


def _read(dataset, path: str, label: str) -> np.ndarray:
    dtype = _dtype_of(dataset)
    try:
        value = np.asarray(dataset[()])
    except Exception as error:  # noqa: BLE001 - libhdf5 errors on corrupt data
        raise WeightsFileError(
            f"The HDF5 file '{label}': the dataset {shown(path)} cannot be read ({type(error).__name__}: "
            f"{str(error)[:200]})."
        ) from None
    return value.view(dtype) if value.dtype != dtype else value
