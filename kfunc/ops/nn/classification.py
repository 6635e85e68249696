"""Class encodings and crossentropies of ``keras.ops.nn``: ``one_hot``, ``multi_hot`` and the
three crossentropies (per-example losses, no reduction over the batch)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.ops.arrays import epsilon, floatx, as_array, standardize_dtype
from kfunc.ops.operation import operation


@operation("one_hot")
def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """Integer labels ``x`` (any shape) as one-hot vectors of length ``num_classes`` on a new
    ``axis``; out-of-range labels (e.g. -1) give all zeros. floatx unless ``dtype`` is given."""
    if sparse:
        raise ValueError("kfunc.ops.one_hot: sparse=True is not supported; kfunc's arrays are dense.")
    return jax.nn.one_hot(as_array(x), num_classes, axis=axis, dtype=standardize_dtype(dtype) or floatx())


@operation("multi_hot")
def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False, **kwargs):
    """Integer labels ``inputs`` ``(batch, labels)`` (or ``(labels,)``) as one vector per example of
    length ``num_classes`` with 1 at every label present. ``num_tokens`` is accepted for
    ``num_classes``, as Keras 3."""
    if num_classes is None and "num_tokens" in kwargs:
        num_classes = kwargs.pop("num_tokens")
    if num_classes is None:
        raise ValueError("kfunc.ops.multi_hot needs num_classes (the length of each multi-hot vector).")
    if sparse or kwargs:
        raise ValueError(f"kfunc.ops.multi_hot: unsupported arguments sparse={sparse!r}, {sorted(kwargs)}.")
    inputs = as_array(inputs)
    encoded = one_hot(inputs.astype(jnp.int32), num_classes, axis=axis, dtype=dtype)
    return jnp.max(encoded, axis=1 if inputs.ndim > 1 else 0)


def _same_shape(name: str, target, output) -> None:
    if target.shape != output.shape:
        raise ValueError(
            f"kfunc.ops.{name}: target and output must have the same shape, received target.shape="
            f"{target.shape} and output.shape={output.shape}."
        )


@operation("binary_crossentropy")
def binary_crossentropy(target, output, from_logits=False):
    """Element-wise ``-(t log p + (1 - t) log(1 - p))`` of probabilities ``output`` (clipped to
    ``[eps, 1 - eps]``), or of logits with ``from_logits``; same shape as the arguments."""
    target, output = as_array(target), as_array(output)
    _same_shape("binary_crossentropy", target, output)
    if from_logits:
        return -target * jax.nn.log_sigmoid(output) - (1.0 - target) * jax.nn.log_sigmoid(-output)
    output = jnp.clip(output, epsilon(), 1.0 - epsilon())
    return -(target * jnp.log(output) + (1.0 - target) * jnp.log(1.0 - output))


def _log_probabilities(output, from_logits: bool, axis: int):
    if from_logits:
        return jax.nn.log_softmax(output, axis=axis)
    output = output / jnp.sum(output, axis, keepdims=True)
    return jnp.log(jnp.clip(output, epsilon(), 1.0 - epsilon()))


@operation("categorical_crossentropy")
def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """``-sum(target * log(p))`` over ``axis``: ``target`` one-hot (or soft) labels and ``output``
    probabilities (renormalized, clipped) or logits, both ``(..., classes)``; shape ``(...)``."""
    target, output = as_array(target), as_array(output)
    _same_shape("categorical_crossentropy", target, output)
    if target.ndim < 1:
        raise ValueError("kfunc.ops.categorical_crossentropy: target and output must have at least one axis.")
    return -jnp.sum(target * _log_probabilities(output, from_logits, axis), axis=axis)


@operation("sparse_categorical_crossentropy")
def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """``-log(p[target])``: ``target`` integer labels ``(...)`` (or ``(..., 1)``), ``output``
    probabilities or logits ``(..., classes)``; shape ``(...)``."""
    target, output = as_array(target, "int32"), as_array(output)
    if target.ndim == output.ndim and target.shape[-1] == 1:
        target = jnp.squeeze(target, axis=-1)
    if output.ndim < 1 or target.shape != output.shape[:-1]:
        raise ValueError(
            "kfunc.ops.sparse_categorical_crossentropy: target must have the shape of output without its last "
            f"axis, received target.shape={target.shape} and output.shape={output.shape}."
        )
    log_probabilities = _log_probabilities(output, from_logits, axis)
    labels = jax.nn.one_hot(target, output.shape[axis], axis=axis)
    return -jnp.sum(labels * log_probabilities, axis=axis)


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
