"""Activation functions of ``keras.ops.nn`` (also at ``keras.ops``), element-wise unless an
``axis`` is named; ``x`` of any shape, result of the same shape and dtype."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc import activations as functions  # the array functions; the ops add symbolic calls
from kfunc.ops.arrays import as_array, as_float_array
from kfunc.ops.operation import operation


def _activation(name: str, function, doc: str):
    def activation(x):
        return function(as_array(x))

    activation.__name__ = activation.__qualname__ = name
    activation.__doc__ = f"{doc}, element-wise."
    return operation(name)(activation)


relu = _activation("relu", functions.relu, "``max(x, 0)``")
relu6 = _activation("relu6", functions.relu6, "``min(max(x, 0), 6)``")
sigmoid = _activation("sigmoid", functions.sigmoid, "``1 / (1 + exp(-x))``")
softplus = _activation("softplus", functions.softplus, "``log(1 + exp(x))``")
softsign = _activation("softsign", functions.softsign, "``x / (1 + |x|)``")
silu = _activation("silu", functions.silu, "``x * sigmoid(x)``")
swish = _activation("swish", functions.silu, "``x * sigmoid(x)`` (alias of ``silu``)")
log_sigmoid = _activation("log_sigmoid", functions.log_sigmoid, "``log(sigmoid(x))``, computed stably")
hard_sigmoid = _activation("hard_sigmoid", functions.hard_sigmoid, "``relu6(x + 3) / 6``")
hard_silu = _activation("hard_silu", functions.hard_silu, "``x * hard_sigmoid(x)``")
hard_swish = _activation("hard_swish", functions.hard_silu, "``x * hard_sigmoid(x)`` (alias of ``hard_silu``)")
selu = _activation("selu", functions.selu, "Scaled ELU: ``1.0507 * elu(x, 1.67326)``")
hard_tanh = _activation("hard_tanh", functions.hard_tanh, "``x`` clipped to [-1, 1]")
tanh_shrink = _activation("tanh_shrink", functions.tanh_shrink, "``x - tanh(x)``")
sparse_plus = _activation(
    "sparse_plus",
    lambda x: jnp.where(x <= -1, 0.0, jnp.where(x >= 1, x, 0.25 * (x + 1) ** 2)).astype(x.dtype),
    "0 below -1, ``x`` above 1, ``(x + 1)**2 / 4`` between",
)


@operation("leaky_relu")
def leaky_relu(x, negative_slope=0.2):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    return functions.leaky_relu(as_array(x), negative_slope=negative_slope)


@operation("elu")
def elu(x, alpha=1.0):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere."""
    return functions.elu(as_array(x), alpha=alpha)


@operation("celu")
def celu(x, alpha=1.0):
    """``max(x, 0) + min(alpha * (exp(x / alpha) - 1), 0)``."""
    return functions.celu(as_array(x), alpha=alpha)


@operation("gelu")
def gelu(x, approximate=True):
    """Gaussian error linear unit ``x * P(X <= x)``; ``approximate``: the tanh form (Keras 3's
    default for ``ops.gelu``; ``kfunc.activations.gelu`` defaults to the exact erf form)."""
    return functions.gelu(as_array(x), approximate=approximate)


@operation("glu")
def glu(x, axis=-1):
    """Gated linear unit: ``a * sigmoid(b)`` of the two halves of ``x`` along ``axis``."""
    return functions.glu(as_array(x), axis=axis)


@operation("squareplus")
def squareplus(x, b=4):
    """``(x + sqrt(x**2 + b)) / 2``."""
    x = as_array(x)
    return (x + jnp.sqrt(jnp.square(x) + b)) / 2


@operation("hard_shrink")
def hard_shrink(x, threshold=0.5):
    """``x`` where ``|x| > threshold``, else 0."""
    x = as_array(x)
    return jnp.where(jnp.abs(x) > threshold, x, jnp.zeros_like(x))


@operation("soft_shrink")
def soft_shrink(x, threshold=0.5):
    """``x - threshold`` above ``threshold``, ``x + threshold`` below ``-threshold``, else 0."""
    x = as_array(x)
    return jnp.where(x > threshold, x - threshold, jnp.where(x < -threshold, x + threshold, jnp.zeros_like(x)))


@operation("threshold")
def threshold(x, threshold, default_value):
    """``x`` where ``x > threshold``, else ``default_value``."""
    x = as_array(x)
    return jnp.where(x > threshold, x, jnp.asarray(default_value, x.dtype))


@operation("softmax")
def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` over ``axis`` (an int or a tuple of ints)."""
    return jax.nn.softmax(as_array(x), axis=tuple(axis) if isinstance(axis, list) else axis)


@operation("log_softmax")
def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` over ``axis``, the log of ``softmax``, computed stably."""
    return jax.nn.log_softmax(as_array(x), axis=tuple(axis) if isinstance(axis, list) else axis)


@operation("sparse_sigmoid")
def sparse_sigmoid(x):
    """``0`` below -1, ``1`` above 1 and ``(x + 1) / 2`` between, element-wise; integers give
    floatx."""
    x = as_float_array(x)
    return jnp.clip((x + 1) / 2, 0, 1).astype(x.dtype)


@operation("sparsemax")
def sparsemax(x, axis=-1):
    """The Euclidean projection of ``x`` onto the probability simplex along ``axis``
    (Martins & Astudillo, 2016): ``max(x - tau, 0)`` with ``tau`` chosen so each slice sums to 1,
    many entries exactly 0. (Keras 3.15's JAX sparsemax computes ``tau`` from the sum of the
    running sums instead, so its slices do not sum to 1; kfunc follows the paper.)"""
    x = as_float_array(x)
    axis = axis % x.ndim
    descending = -jnp.sort(-x, axis=axis)
    running_sum = jnp.cumsum(descending, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    rank = jnp.arange(1, x.shape[axis] + 1, dtype=x.dtype).reshape(shape)
    in_support = 1 + rank * descending > running_sum  # sorted entries that stay above the threshold
    support_size = jnp.sum(in_support, axis=axis, keepdims=True)
    support_sum = jnp.take_along_axis(running_sum, support_size - 1, axis=axis)
    threshold = (support_sum - 1) / support_size.astype(x.dtype)
    return jnp.maximum(x - threshold, 0)


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
