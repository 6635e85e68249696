"""Statistics of ``keras.ops`` (NumPy names): ``corrcoef``, ``correlate``, ``trapezoid``,
``histogram``. Integer inputs give floatx results."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.ops.arrays import as_array, as_float_array, float_dtype
from kfunc.ops.operation import operation


@operation("corrcoef")
def corrcoef(x):
    """The Pearson correlation matrix ``(n, n)`` of the ``n`` variables in the rows of ``x``
    ``(n, observations)`` (a 1-D ``x`` is one variable)."""
    return jnp.corrcoef(as_float_array(x))


@operation("correlate")
def correlate(x1, x2, mode="valid"):
    """The cross-correlation of the 1-D ``x1`` ``(n,)`` and ``x2`` ``(m,)``; ``mode``: ``"valid"``
    (``max(n, m) - min(n, m) + 1`` values), ``"same"`` (``max(n, m)``) or ``"full"``
    (``n + m - 1``)."""
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"kfunc.ops.correlate: mode must be 'valid', 'same' or 'full', received {mode!r}.")
    x1, x2 = as_array(x1), as_array(x2)
    if x1.ndim != 1 or x2.ndim != 1:
        raise ValueError(f"kfunc.ops.correlate expects 1-D x1 and x2, received shapes {tuple(x1.shape)} and "
                         f"{tuple(x2.shape)}.")
    dtype = float_dtype(jnp.result_type(x1.dtype, x2.dtype))
    return jnp.correlate(x1.astype(dtype), x2.astype(dtype), mode=mode)


@operation("trapezoid")
def trapezoid(y, x=None, dx=1.0, axis=-1):
    """The integral of ``y`` along ``axis`` by the trapezoidal rule, at the sample points ``x``
    (the shape of ``y``, or 1-D along ``axis``) or spaced ``dx`` apart."""
    y = as_float_array(y)
    if x is not None:
        x = as_array(x)
        dtype = float_dtype(jnp.result_type(y.dtype, x.dtype))
        y, x = y.astype(dtype), x.astype(dtype)
    return jnp.trapezoid(y, x, dx=dx, axis=axis)


@operation("histogram")
def histogram(x, bins=10, range=None):
    """``(counts, edges)`` of the 1-D ``x``: ``bins`` (a Python int) equal bins over ``range``
    ``(low, high)`` (default: the smallest and largest value), the last bin closed; ``counts``
    ``(bins,)`` and ``edges`` ``(bins + 1,)``, both floatx."""
    x = as_float_array(x)
    if x.ndim != 1:
        raise ValueError(f"kfunc.ops.histogram expects a 1-D x, received shape {tuple(x.shape)}; flatten it with "
                         "ops.reshape(x, (-1,)).")
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"kfunc.ops.histogram: bins must be a positive Python int, received {bins!r}.")
    counts, edges = jnp.histogram(x, bins=bins, range=range)
    return counts.astype(x.dtype), edges.astype(x.dtype)


__all__ = ["corrcoef", "correlate", "trapezoid", "histogram"]
