"""``to_categorical`` and ``normalize``: Keras 3's label and vector helpers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.config import epsilon
from kfunc.errors import ArgumentError


def to_categorical(x, num_classes=None):
    """One-hot rows for class ids ``x`` of shape ``(...)`` or ``(..., 1)``: ``(..., num_classes)``.

    ``num_classes`` defaults to ``max(x) + 1``. As in Keras 3, NumPy (or list) input gives a NumPy
    float64 array; a JAX array gives a JAX array in ``floatx()`` (``num_classes`` then required).
    """
    if isinstance(x, jax.Array):
        if x.ndim > 1 and x.shape[-1] == 1:
            x = x[..., 0]
        if num_classes is None:
            raise ArgumentError("to_categorical: pass num_classes= for a JAX array (its maximum is not known under jit).")
        return jax.nn.one_hot(x, int(num_classes), dtype=jnp.dtype(jnp.float32))
    ids = np.asarray(x)
    if ids.size and not np.array_equal(ids, np.round(ids)):
        raise ArgumentError(f"to_categorical expects integer class ids, received values such as {ids.ravel()[:3]}.")
    ids = ids.astype(np.int64)
    shape = ids.shape[:-1] if ids.ndim > 1 and ids.shape[-1] == 1 else ids.shape
    flat = ids.reshape(-1)
    count = int(num_classes) if num_classes else int(flat.max()) + 1 if flat.size else 0
    if flat.size and (flat.min() < 0 or flat.max() >= count):
        raise ArgumentError(
            f"to_categorical: class ids must lie in [0, {count}) for num_classes={count}, received ids from "
            f"{flat.min()} to {flat.max()}."
        )
    one_hot = np.zeros((flat.size, count))
    one_hot[np.arange(flat.size), flat] = 1
    return one_hot.reshape(shape + (count,))


def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis`` (rows of norm 0 are left as they are).
    NumPy input gives NumPy; JAX input gives JAX (dividing by ``max(norm, epsilon())``)."""
    if isinstance(x, np.ndarray):
        norm = np.atleast_1d(np.linalg.norm(x, order, axis))
        norm[norm == 0] = 1
        return x / np.expand_dims(norm, axis if axis is not None else -1)
    x = jnp.asarray(x)
    norm = jnp.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / jnp.maximum(norm, epsilon())
