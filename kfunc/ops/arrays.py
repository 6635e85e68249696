"""Turning op arguments into JAX arrays, and the dtype rules Keras 3 applies to results."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.config import epsilon, floatx  # noqa: F401 (the ops read Keras's settings at each call)


def as_array(x, dtype=None) -> jax.Array:
    """``x`` (array, Python number, nested list) as a JAX array, cast to ``dtype`` when given."""
    if isinstance(x, jax.Array) and (dtype is None or x.dtype == dtype):
        return x
    return jnp.asarray(x, dtype=None if dtype is None else standardize_dtype(dtype))


def standardize_dtype(dtype) -> str | None:
    """A dtype (string, NumPy/JAX type, Python ``float``/``int``/``bool``) as its name, e.g.
    ``"float32"``; ``None`` stays ``None``. Python ``float`` is Keras's floatx, ``int`` int32."""
    if dtype is None:
        return None
    if dtype is float:
        return floatx()
    if dtype is int:
        return "int32"
    if dtype is bool:
        return "bool"
    if hasattr(dtype, "name") and not isinstance(dtype, str) and not isinstance(dtype, type):
        return np.dtype(dtype).name
    return jnp.dtype(dtype).name


def float_dtype(dtype) -> jnp.dtype:
    """The dtype a float-valued op (``exp``, ``mean``, ``floor``) computes in: floating and
    complex dtypes stay, integers and booleans become floatx (Keras's ``result_type(x, float)``)."""
    dtype = jnp.dtype(dtype)
    return dtype if jnp.issubdtype(dtype, jnp.inexact) else jnp.dtype(floatx())


def as_float_array(x) -> jax.Array:
    """``x`` as an array of ``float_dtype`` (integers and booleans cast to floatx)."""
    x = as_array(x)
    return x.astype(float_dtype(x.dtype))


def canonical_axis(axis, ndim: int):
    """``axis`` (an int, a list or tuple of ints, or None) with lists made tuples for jnp."""
    return tuple(axis) if isinstance(axis, list) else axis
