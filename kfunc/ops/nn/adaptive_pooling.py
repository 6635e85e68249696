"""Adaptive pooling of ``keras.ops.nn``: a fixed output size whatever the input size.

``inputs``: ``(batch, *spatial, channels)`` (``channels_last``, the default) or
``(batch, channels, *spatial)``, 1 to 3 spatial axes; ``output_size``: an int or one per spatial
axis. Output bin ``i`` of an axis of length ``L`` split into ``n`` bins covers the input positions
``floor(i * L / n)`` up to ``ceil((i + 1) * L / n)`` (exclusive), so bins may overlap by one
position when ``n`` does not divide ``L`` (Keras 3's and PyTorch's rule). Output:
``(batch, *output_size, channels)`` (or ``(batch, channels, *output_size)``).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from kfunc.ops.arrays import as_array
from kfunc.ops.nn.convolution import _data_format, _per_axis
from kfunc.ops.operation import operation


def _bins(length: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, inside)``, both ``(count, widest)``: the input positions each output bin reads
    (the last position of a narrower bin repeated to fill the row) and which of them are its own."""
    starts = [(i * length) // count for i in range(count)]
    ends = [math.ceil((i + 1) * length / count) for i in range(count)]
    widest = max(e - s for s, e in zip(starts, ends, strict=True))
    offsets = np.arange(widest)
    positions = np.minimum(np.asarray(starts)[:, None] + offsets, np.asarray(ends)[:, None] - 1)
    inside = np.asarray(starts)[:, None] + offsets < np.asarray(ends)[:, None]
    return positions, inside


def _adaptive_pool(inputs, output_size, data_format, op: str, reduction: str):
    inputs = as_array(inputs)
    data_format = _data_format(data_format, op)
    rank = inputs.ndim - 2
    if rank not in (1, 2, 3):
        raise ValueError(
            f"kfunc.ops.{op} expects (batch, *spatial, channels) with 1 to 3 spatial axes, received shape "
            f"{tuple(inputs.shape)}."
        )
    sizes = _per_axis(output_size, rank)
    if len(sizes) != rank or not all(isinstance(s, int) and s > 0 for s in sizes):
        raise ValueError(f"kfunc.ops.{op}: output_size must be a positive int or {rank} of them, received {output_size!r}.")
    first_spatial = 2 if data_format == "channels_first" else 1
    result = inputs
    for offset, count in enumerate(sizes):  # a box is a product of intervals: pool one axis at a time
        axis = first_spatial + offset
        positions, inside = _bins(result.shape[axis], count)
        windows = jnp.take(result, jnp.asarray(positions.reshape(-1)), axis=axis)
        windows = windows.reshape(result.shape[:axis] + positions.shape + result.shape[axis + 1:])
        if reduction == "max":  # repeated positions do not change a maximum
            result = jnp.max(windows, axis=axis + 1)
        else:
            keep = jnp.asarray(inside.reshape(inside.shape + (1,) * (result.ndim - axis - 1)))
            total = jnp.sum(jnp.where(keep, windows, 0), axis=axis + 1)
            result = (total / jnp.asarray(inside.sum(axis=1).reshape((-1,) + (1,) * (result.ndim - axis - 1)),
                                          total.dtype)).astype(inputs.dtype)
    return result


@operation("adaptive_average_pool")
def adaptive_average_pool(inputs, output_size, data_format=None):
    """The mean of each adaptive bin (see the module docstring for the bins)."""
    return _adaptive_pool(inputs, output_size, data_format, "adaptive_average_pool", "mean")


@operation("adaptive_max_pool")
def adaptive_max_pool(inputs, output_size, data_format=None):
    """The maximum of each adaptive bin (see the module docstring for the bins)."""
    return _adaptive_pool(inputs, output_size, data_format, "adaptive_max_pool", "max")


__all__ = ["adaptive_average_pool", "adaptive_max_pool"]
