"""``get_item``: NumPy indexing (``x[key]``), the op behind ``SymbolicTensor.__getitem__``;
``unravel_index``: flat indices to coordinates.

A key holds ints, slices, ``None`` (a new axis), ``Ellipsis``, integer arrays and (on symbolic
tensors) symbolic integer tensors. Recorded in a graph, the key is kept in a JSON-able form:
a slice is ``{"slice": [start, stop, step]}`` and ``Ellipsis`` is ``"..."``.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.ops.arrays import as_array
from kfunc.ops.operation import operation


def _encode_item(item):
    if isinstance(item, slice):
        return {"slice": [item.start, item.stop, item.step]}
    if item is Ellipsis:
        return "..."
    return item


def _decode_item(item):
    if isinstance(item, dict):
        start, stop, step = item["slice"]
        return slice(start, stop, step)
    if isinstance(item, str):
        if item != "...":
            raise ValueError(f"get_item: a string in an index must be '...' (Ellipsis), received {item!r}.")
        return Ellipsis
    return as_array(item) if isinstance(item, list) else item


def encode_key(key):
    """``key`` with slices and ``Ellipsis`` in their JSON-able form (a tuple stays a tuple)."""
    if isinstance(key, tuple):
        return tuple(_encode_item(item) for item in key)
    return _encode_item(key)


def decode_key(key):
    """The NumPy index ``encode_key`` describes (also accepts a plain index)."""
    if isinstance(key, tuple):
        return tuple(_decode_item(item) for item in key)
    return _decode_item(key)


@operation("get_item")
def _get_item(x, key):
    return as_array(x)[decode_key(key)]


def get_item(x, key):
    """``x[key]``: ints, slices (with steps), ``None``, ``Ellipsis`` and integer arrays, as NumPy."""
    return _get_item(x, encode_key(key))


get_item.operation_name = "get_item"


@operation("unravel_index")
def unravel_index(indices, shape):
    """The coordinates in an array of ``shape`` of the flat (row-major) ``indices``: a tuple of one
    int32 array per axis, each of ``indices``' shape."""
    return tuple(c.astype(jnp.int32) for c in jnp.unravel_index(as_array(indices), tuple(shape)))


__all__ = ["get_item", "unravel_index"]
