"""Statistics and normalization of ``keras.ops.nn``: ``moments``, ``batch_normalization``,
``normalize``, ``layer_normalization``, ``rms_normalization``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.ops.arrays import as_array
from kfunc.ops.arrays import epsilon as default_epsilon
from kfunc.ops.operation import operation


@operation("moments")
def moments(x, axes, keepdims=False, synchronized=False):
    """``(mean, variance)`` of ``x`` over ``axes`` (a list of ints); float16/bfloat16 inputs are
    reduced in float32 and the results cast back."""
    if synchronized:
        raise ValueError("kfunc.ops.moments: synchronized=True has no meaning in JAX; average across devices "
                         "by sharding the batch instead.")
    x = as_array(x)
    axes = tuple(axes) if isinstance(axes, (list, tuple)) else axes
    original = x.dtype
    low_precision = original in (jnp.float16, jnp.bfloat16)
    if low_precision:
        x = x.astype(jnp.float32)
    mean = jnp.mean(x, axes, keepdims=keepdims)
    variance = jnp.var(x, axis=axes, keepdims=keepdims)
    if low_precision:
        # Clip to float16's range before the cast, so a large statistic saturates instead of overflowing.
        limit = float(jnp.finfo(jnp.float16).max)
        mean = jnp.clip(mean, -limit, limit).astype(original)
        variance = jnp.clip(variance, -limit, limit).astype(original)
    return mean, variance


@operation("batch_normalization")
def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    """``(x - mean) / sqrt(variance + epsilon) * scale + offset``, the 1-D statistics, ``offset``
    and ``scale`` (length ``x.shape[axis]``) broadcast along ``axis``."""
    x, mean, variance = as_array(x), as_array(mean), as_array(variance)
    shape = [1] * x.ndim
    shape[axis] = mean.shape[0]
    mean, variance = jnp.reshape(mean, shape), jnp.reshape(variance, shape)
    inverse = jax.lax.rsqrt(variance + epsilon)
    if scale is not None:
        inverse = inverse * jnp.reshape(as_array(scale), shape)
    shift = -mean * inverse
    if offset is not None:
        shift = shift + jnp.reshape(as_array(offset), shape)
    return x * inverse + shift


@operation("normalize")
def normalize(x, axis=-1, order=2, epsilon=None):
    """``x / max(norm(x), epsilon)`` with the ``order``-norm over ``axis`` (epsilon: 1e-7)."""
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"kfunc.ops.normalize: order must be an int >= 1, received {order!r}.")
    x = as_array(x)
    if x.ndim == 0:
        x = jnp.expand_dims(x, 0)
    epsilon = default_epsilon() if epsilon is None else epsilon
    if order == 2:
        inverse = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
        return x * jnp.minimum(inverse, 1.0 / epsilon)
    norm = jnp.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / jnp.maximum(norm, epsilon)


def _compute_dtype(x):
    """At least float32, so half-precision inputs are normalized accurately (cast back after)."""
    return jnp.promote_types(x.dtype, jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32


def _normalized_axes(x, axis) -> tuple[int, ...]:
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    return tuple(sorted(a % x.ndim for a in axes))


def _along(parameter, x, axes):
    """``gamma``/``beta``/``scale`` of shape ``x.shape[axes]`` reshaped to broadcast against ``x``
    (a parameter already of ``x``'s rank, or one for the last axis only, is used as it is)."""
    parameter = as_array(parameter, x.dtype)
    if parameter.ndim == x.ndim or axes == (x.ndim - 1,):
        return parameter
    shape = [1] * x.ndim
    for a in axes:
        shape[a] = x.shape[a]
    return jnp.reshape(parameter, shape)


@operation("layer_normalization")
def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, **kwargs):
    """``(x - mean) / sqrt(variance + epsilon) * gamma + beta``, the statistics over ``axis`` (an
    int or a list of ints) of each example; ``gamma``/``beta``: the shape of ``x`` on ``axis``.
    Computed in at least float32, the result in ``x``'s dtype (epsilon: ``config.epsilon()``)."""
    if kwargs.pop("rms_scaling", False):
        raise ValueError(
            "kfunc.ops.layer_normalization: rms_scaling=True (deprecated in Keras 3, it scales by the variance) is "
            "not supported; use kfunc.ops.rms_normalization(x, scale, axis, epsilon) instead."
        )
    if kwargs:
        raise TypeError(f"kfunc.ops.layer_normalization got unexpected keyword arguments {sorted(kwargs)}.")
    x = as_array(x)
    original = x.dtype
    x = x.astype(_compute_dtype(x))
    epsilon = default_epsilon() if epsilon is None else epsilon
    axes = _normalized_axes(x, axis)
    mean = jnp.mean(x, axis=axes, keepdims=True)
    variance = jnp.var(x, axis=axes, keepdims=True)
    inverse = jax.lax.rsqrt(variance + epsilon)
    if gamma is not None:
        inverse = inverse * _along(gamma, x, axes)
    shift = -mean * inverse
    if beta is not None:
        shift = shift + _along(beta, x, axes)
    return (x * inverse + shift).astype(original)


@operation("rms_normalization")
def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    """``x / sqrt(mean(x**2) + epsilon) * scale``, the mean over ``axis`` (an int or a list of
    ints); ``scale`` broadcasts against ``x``. Computed in at least float32, the result in ``x``'s
    dtype (epsilon: ``config.epsilon()``)."""
    x = as_array(x)
    original = x.dtype
    x = x.astype(_compute_dtype(x))
    if x.ndim == 0:
        x = jnp.expand_dims(x, 0)
    epsilon = default_epsilon() if epsilon is None else epsilon
    axes = _normalized_axes(x, axis)
    outputs = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axes, keepdims=True) + epsilon)
    if scale is not None:
        outputs = outputs * as_array(scale, x.dtype)
    return outputs.astype(original)


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
