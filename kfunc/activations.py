"""Keras 3's activation functions (``kfunc.activations.relu(x)``), functions of a JAX array of any
shape returning an array of the same shape (``glu`` halves ``axis``); and how layers look them up by
name: ``get('relu')``, ``serialize(fn)`` -> ``'relu'``, ``deserialize('relu')``.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from kfunc.errors import ArgumentError, LayerConfigError


def _at_least_float32(x):
    """``x`` in float32 when it is a lower-precision float (sums of softmax run in float32)."""
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32)) if jnp.issubdtype(x.dtype, jnp.floating) else x


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """``x`` where ``x > threshold`` (else 0), capped at ``max_value``; below the threshold, a slope of
    ``negative_slope`` times ``x - threshold`` is added (Keras 3's generalized ReLU)."""
    x = jnp.asarray(x)
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return jax.nn.relu(x)
    if negative_slope != 0.0 and max_value is None and threshold == 0.0:
        return jax.nn.leaky_relu(x, negative_slope=negative_slope)
    below = jax.nn.relu(threshold - x)
    out = jnp.where(x > threshold, x, jnp.zeros_like(x))
    if max_value is not None:
        out = jnp.clip(out, jnp.zeros((), x.dtype), jnp.asarray(max_value, x.dtype))
    return out - negative_slope * below if negative_slope != 0.0 else out


def leaky_relu(x, negative_slope=0.2):
    return jax.nn.leaky_relu(x, negative_slope=negative_slope)


def relu6(x):
    return jax.nn.relu6(x)


def elu(x, alpha=1.0):
    return jax.nn.elu(x, alpha=alpha)


def selu(x):
    return jax.nn.selu(x)


def celu(x, alpha=1.0):
    return jax.nn.celu(x, alpha=alpha)


def softplus(x):
    return jax.nn.softplus(x)


def softsign(x):
    return jax.nn.soft_sign(x)


def squareplus(x, b=4):
    """``(x + sqrt(x**2 + b)) / 2``: a smooth ReLU."""
    return jax.nn.squareplus(x, b=b)


def sparse_plus(x):
    """0 below -1, ``x`` above 1, ``(x + 1)**2 / 4`` between."""
    return jax.nn.sparse_plus(x)


def silu(x):
    return jax.nn.silu(x)


swish = silu


def gelu(x, approximate=False):
    """GELU; exact (erf) by default as in Keras, the tanh approximation with ``approximate=True``."""
    return jax.nn.gelu(x, approximate=approximate)


def glu(x, axis=-1):
    """Gated linear unit: ``a * sigmoid(b)`` of the two halves of ``axis`` (whose size must be even)."""
    x = jnp.asarray(x)
    if x.shape[axis] % 2:
        raise ArgumentError(
            f"kfunc.activations.glu: axis {axis} of the input must have an even size, received shape {x.shape}."
        )
    return jax.nn.glu(x, axis=axis)


def tanh(x):
    return jnp.tanh(x)


def tanh_shrink(x):
    return x - jnp.tanh(x)


def hard_tanh(x):
    return jax.nn.hard_tanh(x)


def sigmoid(x):
    return jax.nn.sigmoid(x)


def sparse_sigmoid(x):
    """0 below -1, 1 above 1, ``(x + 1) / 2`` between."""
    return jax.nn.sparse_sigmoid(x)


def log_sigmoid(x):
    return jax.nn.log_sigmoid(x)


def exponential(x):
    return jnp.exp(x)


def hard_sigmoid(x):
    """Keras 3's ``relu6(x + 3) / 6``."""
    return jax.nn.relu6(jnp.asarray(x) + 3.0) / 6.0


def hard_silu(x):
    return jnp.asarray(x) * hard_sigmoid(x)


hard_swish = hard_silu


def hard_shrink(x, threshold=0.5):
    """``x`` where ``|x| > threshold``, else 0."""
    x = jnp.asarray(x)
    return jnp.where(jnp.abs(x) > threshold, x, jnp.zeros_like(x))


def soft_shrink(x, threshold=0.5):
    """``x`` moved ``threshold`` towards 0, and 0 where ``|x| <= threshold``."""
    x = jnp.asarray(x)
    return jnp.where(jnp.abs(x) > threshold, x - jnp.sign(x) * threshold, jnp.zeros_like(x))


def threshold(x, threshold, default_value):
    """``x`` where ``x > threshold``, else ``default_value``."""
    x = jnp.asarray(x)
    return jnp.where(x > threshold, x, jnp.asarray(default_value, x.dtype))


def mish(x):
    return x * jnp.tanh(jax.nn.softplus(x))


def softmax(x, axis=-1):
    """Softmax over ``axis``; the sum runs in float32 when ``x`` is lower precision."""
    x = jnp.asarray(x)
    return jax.nn.softmax(_at_least_float32(x), axis=axis).astype(x.dtype)


def log_softmax(x, axis=-1):
    """Log-softmax over ``axis``; like ``softmax``, in float32 when ``x`` is lower precision."""
    x = jnp.asarray(x)
    return jax.nn.log_softmax(_at_least_float32(x), axis=axis).astype(x.dtype)


def sparsemax(x, axis=-1):
    """The Euclidean projection of ``x`` onto the probability simplex along ``axis``: like softmax,
    sums to 1, but exactly 0 for the small entries (Martins & Astudillo, 2016)."""
    x = jnp.asarray(x)
    moved = jnp.moveaxis(x, axis, -1)
    ranked = -jnp.sort(-moved, axis=-1)  # descending
    running = jnp.cumsum(ranked, axis=-1)
    k = jnp.arange(1, moved.shape[-1] + 1, dtype=moved.dtype)
    in_support = 1.0 + k * ranked > running
    support_size = jnp.sum(in_support, axis=-1, keepdims=True)
    total = jnp.take_along_axis(running, support_size - 1, axis=-1)
    tau = (total - 1.0) / support_size.astype(moved.dtype)
    return jnp.moveaxis(jnp.maximum(moved - tau, 0.0), -1, axis)


# Every built-in activation by its Keras name; the first name of a function is its serialized name.
ACTIVATIONS: dict[str, Callable] = {
    "linear": linear,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "relu6": relu6,
    "elu": elu,
    "selu": selu,
    "celu": celu,
    "softplus": softplus,
    "softsign": softsign,
    "squareplus": squareplus,
    "sparse_plus": sparse_plus,
    "silu": silu,
    "swish": silu,
    "gelu": gelu,
    "glu": glu,
    "tanh": tanh,
    "tanh_shrink": tanh_shrink,
    "hard_tanh": hard_tanh,
    "sigmoid": sigmoid,
    "sparse_sigmoid": sparse_sigmoid,
    "log_sigmoid": log_sigmoid,
    "exponential": exponential,
    "hard_sigmoid": hard_sigmoid,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "hard_shrink": hard_shrink,
    "soft_shrink": soft_shrink,
    "threshold": threshold,
    "mish": mish,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "sparsemax": sparsemax,
}


def _unknown_name(identifier) -> LayerConfigError:
    return LayerConfigError(
        f"Unknown activation '{identifier}'; expected one of {sorted(ACTIVATIONS)} or a function of an array."
    )


def get(identifier) -> Callable:
    """``None`` -> linear, a name -> its function, a ``serialize`` result -> its function, a
    callable -> itself."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        if identifier not in ACTIVATIONS:
            raise _unknown_name(identifier)
        return ACTIVATIONS[identifier]
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise LayerConfigError(
        f"An activation must be a name or a function, received {type(identifier).__name__} "
        f"{identifier!r}."
    )


def name_of(function: Callable) -> str | None:
    """The Keras name of a built-in activation, or ``None`` for a user function."""
    for name, known in ACTIVATIONS.items():
        if known is function:
            return name
    return None


def serialize(activation) -> str:
    """The Keras name of a built-in activation (``serialize(relu) == "relu"``), which ``deserialize``
    and ``get`` turn back into it. A user function is saved by the model file's own encoder, under
    the name it was registered with (``kfunc.saving.register``)."""
    name = name_of(activation)
    if name is None:
        raise ArgumentError(
            f"kfunc.activations.serialize: {activation!r:.60} is not a built-in activation; register it with "
            "@kfunc.saving.register and save the layer using it (its config names it), or pass it by "
            "custom_objects= to deserialize."
        )
    return name


def deserialize(config, custom_objects=None) -> Callable:
    """The activation ``config`` names: a name from ``serialize``, or Keras 3's
    ``{"class_name": "function", "config": name, ...}``. Names resolve through ``custom_objects`` and
    the built-in table only (nothing is imported by name)."""
    name = config
    if isinstance(config, dict):
        name = config.get("config")
    if not isinstance(name, str):
        raise ArgumentError(
            f"kfunc.activations.deserialize expects a name or Keras's {{'class_name': 'function', 'config': name}}, "
            f"received {config!r:.80}."
        )
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name not in ACTIVATIONS:
        raise _unknown_name(name)
    return ACTIVATIONS[name]
