"""Keras 3's ``keras.random`` functions, on JAX arrays.

Each takes ``seed=``: an int (the same numbers at every call), a ``SeedGenerator`` (new numbers at
every call; inside a layer's ``call`` with a key, drawn from that key), a JAX key, or None (the
global generator; only outside ``jax.jit``). Float results default to ``kfunc.config.floatx()``.
With an int seed or a generator used eagerly, the numbers equal Keras 3's on JAX bit for bit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.errors import ArgumentError
from kfunc.mixed_precision import floatx
from kfunc.random.seed_generator import draw_key


def _float_dtype(dtype, function: str):
    dtype = jnp.dtype(dtype or floatx())
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ArgumentError(f"kfunc.random.{function}: dtype must be a floating dtype such as 'float32', received {dtype}.")
    return dtype


def _shape(shape) -> tuple:
    return tuple(int(d) for d in shape) if isinstance(shape, (list, tuple)) else (int(shape),)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of shape ``shape`` from a normal distribution of ``mean`` and ``stddev``."""
    dtype = _float_dtype(dtype, "normal")
    return jax.random.normal(draw_key(seed), _shape(shape), dtype) * stddev + mean


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples of shape ``shape``, uniform in ``[minval, maxval)``."""
    dtype = _float_dtype(dtype, "uniform")
    return jax.random.uniform(draw_key(seed), _shape(shape), dtype, minval=minval, maxval=maxval)


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers of shape ``shape``, uniform in ``[minval, maxval)``."""
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise ArgumentError(f"kfunc.random.randint: dtype must be an integer dtype such as 'int32', received {dtype}.")
    return jax.random.randint(draw_key(seed), _shape(shape), minval, maxval, dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal samples of shape ``shape`` redrawn beyond two standard deviations (Keras's bounds)."""
    dtype = _float_dtype(dtype, "truncated_normal")
    return jax.random.truncated_normal(draw_key(seed), -2.0, 2.0, _shape(shape), dtype) * stddev + mean


def dropout(inputs, rate, noise_shape=None, seed=None):
    """``inputs`` (any shape) with each value zeroed with probability ``rate`` and the others scaled
    by ``1 / (1 - rate)``. ``noise_shape``: the shape of the keep/drop draw, broadcast to
    ``inputs.shape`` (a ``None`` entry takes the input's size on that axis)."""
    inputs = jnp.asarray(inputs)
    if rate == 1.0:
        return jnp.zeros_like(inputs)
    if rate == 0.0:
        return inputs
    keep = 1.0 - rate
    if noise_shape is None:
        noise_shape = inputs.shape
    else:
        noise_shape = tuple(size if drawn is None else int(drawn)
                            for size, drawn in zip(inputs.shape, noise_shape, strict=True))
    kept = jax.random.bernoulli(draw_key(seed), keep, noise_shape)
    return jax.lax.select(jnp.broadcast_to(kept, inputs.shape), inputs / keep, jnp.zeros_like(inputs))


def shuffle(x, axis=0, seed=None):
    """``x`` with its entries along ``axis`` in a random order."""
    return jax.random.permutation(draw_key(seed), jnp.asarray(x), axis, independent=True)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """``(batch, num_samples)`` class indices drawn from the rows of ``logits``
    ``(batch, num_classes)`` (unnormalized log-probabilities)."""
    logits = jnp.asarray(logits)
    if logits.ndim != 2:
        raise ArgumentError(
            f"kfunc.random.categorical: logits must be 2-D (batch_size, num_classes), received shape {logits.shape}."
        )
    drawn = jax.random.categorical(draw_key(seed), logits[..., None], axis=1,
                                   shape=(logits.shape[0], int(num_samples)))
    return drawn.astype(dtype)


def gamma(shape, alpha, dtype=None, seed=None):
    """Samples of shape ``shape`` from a gamma distribution of concentration ``alpha``."""
    dtype = _float_dtype(dtype, "gamma")
    return jax.random.gamma(draw_key(seed), alpha, _shape(shape), dtype)


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Samples of shape ``shape``: successes in ``counts`` trials of probability ``probabilities``
    (both broadcast to ``shape``)."""
    dtype = _float_dtype(dtype, "binomial")
    return jax.random.binomial(draw_key(seed), jnp.asarray(counts), jnp.asarray(probabilities), _shape(shape), dtype)


def beta(shape, alpha, beta, dtype=None, seed=None):
    """Samples of shape ``shape`` from a beta distribution of parameters ``alpha`` and ``beta``."""
    dtype = _float_dtype(dtype, "beta")
    return jax.random.beta(draw_key(seed), jnp.asarray(alpha), jnp.asarray(beta), _shape(shape), dtype)
