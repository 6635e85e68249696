"""Ops of ``keras.ops`` that create arrays: ranges, constants, identity-like matrices.

Without a ``dtype``, ``zeros``/``ones``/``full``/``eye`` give floatx (float32) as Keras 3;
``arange`` gives int32 for integer arguments and float32 when any argument is a float; the
``*_like`` ops keep the dtype of ``x``.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.ops.arrays import floatx, as_array, standardize_dtype
from kfunc.ops.operation import operation


def _dtype(dtype, default=None):
    """``dtype`` standardized, else ``default``, else floatx (read at each call)."""
    if dtype is not None:
        return standardize_dtype(dtype)
    return default if default is not None else floatx()


def _shape(shape):
    return (shape,) if isinstance(shape, int) else tuple(shape)


@operation("zeros")
def zeros(shape, dtype=None):
    """An array of zeros of ``shape`` (an int or a tuple)."""
    return jnp.zeros(_shape(shape), _dtype(dtype))


@operation("ones")
def ones(shape, dtype=None):
    """An array of ones of ``shape`` (an int or a tuple)."""
    return jnp.ones(_shape(shape), _dtype(dtype))


@operation("full")
def full(shape, fill_value, dtype=None):
    """An array of ``shape`` filled with ``fill_value`` (in floatx unless ``dtype`` is given)."""
    return jnp.full(_shape(shape), fill_value, _dtype(dtype))


@operation("empty")
def empty(shape, dtype=None):
    """An array of ``shape`` (JAX has no uninitialized memory: it holds zeros)."""
    return jnp.zeros(_shape(shape), _dtype(dtype))


@operation("empty_like")
def empty_like(x, dtype=None):
    """An array of the shape of ``x`` (JAX has no uninitialized memory: it holds zeros)."""
    return jnp.zeros_like(as_array(x), dtype=standardize_dtype(dtype))


@operation("zeros_like")
def zeros_like(x, dtype=None):
    """Zeros of the shape of ``x``, in ``dtype`` or the dtype of ``x``."""
    return jnp.zeros_like(as_array(x), dtype=standardize_dtype(dtype))


@operation("ones_like")
def ones_like(x, dtype=None):
    """Ones of the shape of ``x``, in ``dtype`` or the dtype of ``x``."""
    return jnp.ones_like(as_array(x), dtype=standardize_dtype(dtype))


@operation("full_like")
def full_like(x, fill_value, dtype=None):
    """``fill_value`` in the shape of ``x``, in ``dtype`` or the dtype of ``x``."""
    return jnp.full_like(as_array(x), fill_value, dtype=standardize_dtype(dtype))


def _is_float(value) -> bool:
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        return jnp.issubdtype(dtype, jnp.inexact)
    return isinstance(value, float)


@operation("arange")
def arange(start, stop=None, step=None, dtype=None):
    """``[start, start + step, ...)`` below ``stop`` (``arange(n)`` counts from 0); int32 for
    integer arguments, float32 when any is a float."""
    if dtype is None:
        dtype = floatx() if any(_is_float(v) for v in (start, stop, step) if v is not None) else "int32"
    return jnp.arange(start, stop, step, dtype=standardize_dtype(dtype))


@operation("linspace")
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """``num`` evenly spaced values from ``start`` to ``stop`` (included when ``endpoint``); with
    ``retstep`` also the spacing."""
    return jnp.linspace(start, stop, num, endpoint=endpoint, retstep=retstep, dtype=_dtype(dtype), axis=axis)


@operation("logspace")
def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0):
    """``num`` values evenly spaced on a log scale, ``base ** start`` to ``base ** stop``."""
    return jnp.logspace(start, stop, num, endpoint=endpoint, base=base, dtype=_dtype(dtype), axis=axis)


@operation("eye")
def eye(N, M=None, k=0, dtype=None):
    """An ``(N, M)`` array with ones on the ``k``-th diagonal."""
    return jnp.eye(N, M=M, k=k, dtype=_dtype(dtype))


@operation("identity")
def identity(n, dtype=None):
    """The ``(n, n)`` identity matrix."""
    return jnp.identity(n, dtype=_dtype(dtype))


@operation("tri")
def tri(N, M=None, k=0, dtype=None):
    """An ``(N, M)`` array with ones at and below the ``k``-th diagonal."""
    return jnp.tri(N, M=M, k=k, dtype=_dtype(dtype))


@operation("array")
def array(x, dtype=None):
    """``x`` (array, number, nested list) as an array, in ``dtype`` when given (Python ints give
    int32, floats floatx)."""
    if dtype is None and not hasattr(x, "dtype"):
        dtype = floatx() if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else None
    return as_array(x, dtype)


@operation("geomspace")
def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """``num`` values from ``start`` to ``stop`` (included when ``endpoint``) with a constant
    ratio; floatx unless ``dtype`` is given."""
    values = jnp.geomspace(start, stop, num, endpoint=endpoint, dtype=floatx(), axis=axis)
    dtype = _dtype(dtype)
    if jnp.issubdtype(dtype, jnp.integer):  # 9.9999 must become 10, not 9
        values = jnp.round(values)
    return values.astype(dtype)


@operation("vander")
def vander(x, N=None, increasing=False):
    """The Vandermonde matrix of the 1-D ``x`` ``(n,)``: ``(n, N)`` (``N`` defaults to ``n``), the
    columns ``x**(N-1) ... x**0`` (reversed with ``increasing``), in ``x``'s dtype."""
    x = as_array(x)
    if x.ndim != 1:
        raise ValueError(f"kfunc.ops.vander expects a 1-D x, received shape {tuple(x.shape)}.")
    return jnp.vander(x, N=N, increasing=increasing)


@operation("view")
def view(x, dtype=None):
    """The bytes of ``x`` read as ``dtype`` (no copy of values, e.g. float32 bits as int32); a
    narrower dtype multiplies the last axis, a wider one divides it."""
    x = as_array(x)
    return x if dtype is None else x.view(standardize_dtype(dtype))


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
