"""Reductions, scans and sorting of ``keras.ops`` (NumPy names).

``axis``: an int, a list/tuple of ints, or None (every axis); ``keepdims`` keeps reduced axes as
size 1. ``mean``/``var``/``std`` of integers return float32 and compute low-precision floats in
float32 (cast back), as Keras 3; ``argmax``/``argmin``/``count_nonzero`` return int32.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.ops.arrays import as_array, canonical_axis, float_dtype
from kfunc.ops.operation import operation


def _axis(x, axis):
    return canonical_axis(axis, x.ndim)


@operation("sum")
def sum(x, axis=None, keepdims=False):
    """The sum of ``x`` over ``axis``."""
    x = as_array(x)
    return jnp.sum(x, axis=_axis(x, axis), keepdims=keepdims)


@operation("prod")
def prod(x, axis=None, keepdims=False, dtype=None):
    """The product of ``x`` over ``axis``, in ``dtype`` when given."""
    x = as_array(x)
    return jnp.prod(x, axis=_axis(x, axis), keepdims=keepdims, dtype=dtype)


@operation("mean")
def mean(x, axis=None, keepdims=False):
    """The mean of ``x`` over ``axis``; integers and booleans give float32."""
    x = as_array(x)
    compute = jnp.promote_types(float_dtype(x.dtype), jnp.float32)
    result = float_dtype(x.dtype)
    return jnp.mean(x, axis=_axis(x, axis), keepdims=keepdims, dtype=compute).astype(result)


@operation("var")
def var(x, axis=None, keepdims=False):
    """The (population) variance of ``x`` over ``axis``; integers give float32."""
    x = as_array(x)
    compute = jnp.promote_types(float_dtype(x.dtype), jnp.float32)
    return jnp.var(x, axis=_axis(x, axis), keepdims=keepdims, dtype=compute).astype(float_dtype(x.dtype))


@operation("std")
def std(x, axis=None, keepdims=False):
    """The (population) standard deviation of ``x`` over ``axis``; integers give float32."""
    x = as_array(x)
    return jnp.std(x, axis=_axis(x, axis), keepdims=keepdims)


@operation("max")
def max(x, axis=None, keepdims=False, initial=None):
    """The largest value of ``x`` over ``axis`` (``initial``: a lower bound, for empty axes)."""
    x = as_array(x)
    return jnp.max(x, axis=_axis(x, axis), keepdims=keepdims, initial=initial)


@operation("min")
def min(x, axis=None, keepdims=False, initial=None):
    """The smallest value of ``x`` over ``axis`` (``initial``: an upper bound, for empty axes)."""
    x = as_array(x)
    return jnp.min(x, axis=_axis(x, axis), keepdims=keepdims, initial=initial)


@operation("amax")
def amax(x, axis=None, keepdims=False):
    """The largest value of ``x`` over ``axis`` (alias of ``max``)."""
    x = as_array(x)
    return jnp.max(x, axis=_axis(x, axis), keepdims=keepdims)


@operation("amin")
def amin(x, axis=None, keepdims=False):
    """The smallest value of ``x`` over ``axis`` (alias of ``min``)."""
    x = as_array(x)
    return jnp.min(x, axis=_axis(x, axis), keepdims=keepdims)


@operation("ptp")
def ptp(x, axis=None, keepdims=False):
    """``max - min`` of ``x`` over ``axis``."""
    x = as_array(x)
    return jnp.ptp(x, axis=_axis(x, axis), keepdims=keepdims)


@operation("all")
def all(x, axis=None, keepdims=False):
    """Whether every element of ``x`` over ``axis`` is true (non-zero), as booleans."""
    x = as_array(x)
    return jnp.all(x, axis=_axis(x, axis), keepdims=keepdims)


@operation("any")
def any(x, axis=None, keepdims=False):
    """Whether some element of ``x`` over ``axis`` is true (non-zero), as booleans."""
    x = as_array(x)
    return jnp.any(x, axis=_axis(x, axis), keepdims=keepdims)


@operation("count_nonzero")
def count_nonzero(x, axis=None):
    """How many elements of ``x`` over ``axis`` are non-zero, as int32."""
    x = as_array(x)
    return jnp.count_nonzero(x, axis=_axis(x, axis)).astype(jnp.int32)


def _without_negative_zero(x):
    """``-0.0`` replaced by the negative number closest to zero, so that ``argmax`` ranks it below
    ``+0.0`` even where the CPU flushes subnormals to zero (Keras 3 does the same)."""
    if not jnp.issubdtype(x.dtype, jnp.floating) or x.ndim == 0:
        return x
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return jnp.where((x == 0.0) & jnp.signbit(x), -jnp.finfo(x.dtype).tiny, x)


@operation("argmax")
def argmax(x, axis=None, keepdims=False):
    """The index of the largest value along ``axis`` (of the flattened ``x`` when None), int32."""
    x = _without_negative_zero(as_array(x))
    return jnp.argmax(x, axis=axis, keepdims=keepdims)


@operation("argmin")
def argmin(x, axis=None, keepdims=False):
    """The index of the smallest value along ``axis`` (of the flattened ``x`` when None), int32."""
    x = _without_negative_zero(as_array(x))
    return jnp.argmin(x, axis=axis, keepdims=keepdims)


@operation("cumsum")
def cumsum(x, axis=None, dtype=None):
    """Running sums of ``x`` along ``axis`` (of the flattened ``x`` when None)."""
    return jnp.cumsum(as_array(x), axis=axis, dtype=dtype)


@operation("cumprod")
def cumprod(x, axis=None, dtype=None):
    """Running products of ``x`` along ``axis`` (of the flattened ``x`` when None)."""
    return jnp.cumprod(as_array(x), axis=axis, dtype=dtype)


@operation("median")
def median(x, axis=None, keepdims=False):
    """The median of ``x`` over ``axis``."""
    x = as_array(x)
    return jnp.median(x, axis=_axis(x, axis), keepdims=keepdims)


@operation("quantile")
def quantile(x, q, axis=None, method="linear", keepdims=False):
    """The ``q``-th quantiles (``q`` in [0, 1], scalar or 1-D) of ``x`` over ``axis``."""
    x = as_array(x)
    return jnp.quantile(x, as_array(q), axis=_axis(x, axis), method=method, keepdims=keepdims)


@operation("percentile")
def percentile(x, q, axis=None, method="linear", keepdims=False):
    """The ``q``-th percentiles (``q`` in [0, 100], scalar or 1-D) of ``x`` over ``axis``."""
    x = as_array(x)
    return jnp.percentile(x, as_array(q), axis=_axis(x, axis), method=method, keepdims=keepdims)


@operation("average")
def average(x, axis=None, weights=None):
    """The mean of ``x`` over ``axis`` weighted by ``weights`` (shape of ``x``, or 1-D along
    ``axis``); integers give float32."""
    x = as_array(x)
    dtypes = [float_dtype(x.dtype)] + ([] if weights is None else [as_array(weights).dtype])
    dtype = float_dtype(jnp.result_type(*dtypes))
    weights = None if weights is None else as_array(weights).astype(dtype)
    return jnp.average(x.astype(dtype), axis=axis, weights=weights)


def _nan_reduction(name: str, reduce, doc: str):
    def nan_reduction(x, axis=None, keepdims=False):
        x = as_array(x)
        return reduce(x, axis=_axis(x, axis), keepdims=keepdims)

    nan_reduction.__name__ = nan_reduction.__qualname__ = name
    nan_reduction.__doc__ = f"{doc} of ``x`` over ``axis``, NaNs ignored."
    return operation(name)(nan_reduction)


nansum = _nan_reduction("nansum", jnp.nansum, "The sum")
nanprod = _nan_reduction("nanprod", jnp.nanprod, "The product")
nanmean = _nan_reduction("nanmean", jnp.nanmean, "The mean")
nanvar = _nan_reduction("nanvar", jnp.nanvar, "The variance")
nanstd = _nan_reduction("nanstd", jnp.nanstd, "The standard deviation")
nanmax = _nan_reduction("nanmax", jnp.nanmax, "The largest value")
nanmin = _nan_reduction("nanmin", jnp.nanmin, "The smallest value")


@operation("sort")
def sort(x, axis=-1):
    """``x`` sorted ascending along ``axis``."""
    return jnp.sort(as_array(x), axis=axis)


@operation("argsort")
def argsort(x, axis=-1):
    """The indices that sort ``x`` ascending along ``axis`` (int32)."""
    x = as_array(x)
    return jnp.argsort(x, axis=None if x.ndim == 0 else axis)


@operation("trace")
def trace(x, offset=0, axis1=0, axis2=1):
    """The sum of the diagonal ``offset`` of the planes ``(axis1, axis2)`` of ``x``."""
    return jnp.trace(as_array(x), offset=offset, axis1=axis1, axis2=axis2)


@operation("nanargmax")
def nanargmax(x, axis=None, keepdims=False):
    """The index of the largest non-NaN value along ``axis`` (of the flattened ``x`` when None),
    int32; -1 where every value is NaN."""
    x = as_array(x)
    return _nan_arg(x, jnp.nanargmax(x, axis=axis, keepdims=keepdims), axis, keepdims)


@operation("nanargmin")
def nanargmin(x, axis=None, keepdims=False):
    """The index of the smallest non-NaN value along ``axis`` (of the flattened ``x`` when None),
    int32; -1 where every value is NaN."""
    x = as_array(x)
    return _nan_arg(x, jnp.nanargmin(x, axis=axis, keepdims=keepdims), axis, keepdims)


def _nan_arg(x, index, axis, keepdims):
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return index.astype(jnp.int32)
    all_nan = jnp.all(jnp.isnan(x), axis=axis, keepdims=keepdims)
    return jnp.where(all_nan, -1, index).astype(jnp.int32)


@operation("nancumsum")
def nancumsum(x, axis=None, dtype=None):
    """Running sums along ``axis`` (of the flattened ``x`` when None), NaNs counted as 0."""
    return jnp.nancumsum(as_array(x), axis=axis, dtype=dtype)


@operation("nancumprod")
def nancumprod(x, axis=None, dtype=None):
    """Running products along ``axis`` (of the flattened ``x`` when None), NaNs counted as 1."""
    return jnp.nancumprod(as_array(x), axis=axis, dtype=dtype)


@operation("nanmedian")
def nanmedian(x, axis=None, keepdims=False):
    """The median of the non-NaN values of ``x`` over ``axis``; integers give float32."""
    x = as_array(x)
    return jnp.nanmedian(x.astype(float_dtype(x.dtype)), axis=_axis(x, axis), keepdims=keepdims)


@operation("nanquantile")
def nanquantile(x, q, axis=None, method="linear", keepdims=False):
    """The ``q``-th quantiles (``q`` in [0, 1], scalar or 1-D) of the non-NaN values of ``x``."""
    x = as_array(x)
    return jnp.nanquantile(x.astype(float_dtype(x.dtype)), as_array(q), axis=_axis(x, axis), method=method,
                           keepdims=keepdims)


@operation("nanpercentile")
def nanpercentile(x, q, axis=None, method="linear", keepdims=False):
    """The ``q``-th percentiles (``q`` in [0, 100], scalar or 1-D) of the non-NaN values of ``x``."""
    x = as_array(x)
    return jnp.nanpercentile(x.astype(float_dtype(x.dtype)), as_array(q), axis=_axis(x, axis), method=method,
                             keepdims=keepdims)


@operation("argpartition")
def argpartition(x, kth, axis=-1):
    """Indices that put the ``kth`` smallest value of ``x`` along ``axis`` (of the flattened ``x``
    when None) in place ``kth``, smaller values before and larger after (int32)."""
    x = as_array(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return jnp.argpartition(x, kth, axis=axis).astype(jnp.int32)


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
