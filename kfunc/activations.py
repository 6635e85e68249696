"""Activation functions by their Keras names: ``get('relu')`` returns a function of an array."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from kfunc.errors import LayerConfigError


def linear(x):
    return x


def hard_sigmoid(x):
    """Keras 3's ``relu6(x + 3) / 6``."""
    return jax.nn.relu6(x + 3.0) / 6.0


def hard_silu(x):
    return x * hard_sigmoid(x)


def gelu(x):
    """Exact (erf) GELU, Keras's default ``approximate=False``."""
    return jax.nn.gelu(x, approximate=False)


def leaky_relu(x):
    """Keras's ``leaky_relu`` with its default ``negative_slope=0.2``."""
    return jax.nn.leaky_relu(x, negative_slope=0.2)


def mish(x):
    return x * jnp.tanh(jax.nn.softplus(x))


def softmax(x):
    """Softmax over the last axis; the sum runs in float32 when ``x`` is lower precision."""
    return jax.nn.softmax(x.astype(jnp.promote_types(x.dtype, jnp.float32)), axis=-1).astype(x.dtype)


def log_softmax(x):
    """Log-softmax over the last axis; like ``softmax``, in float32 when ``x`` is lower precision."""
    return jax.nn.log_softmax(x.astype(jnp.promote_types(x.dtype, jnp.float32)), axis=-1).astype(x.dtype)


ACTIVATIONS: dict[str, Callable] = {
    "linear": linear,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "gelu": gelu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "exponential": jnp.exp,
    "hard_sigmoid": hard_sigmoid,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "leaky_relu": leaky_relu,
    "mish": mish,
    "softmax": softmax,
    "log_softmax": log_softmax,
}


def get(identifier) -> Callable:
    """``None`` -> linear, a name -> its function, a callable -> itself."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        try:
            return ACTIVATIONS[identifier]
        except KeyError:
            raise LayerConfigError(
                f"Unknown activation '{identifier}'; expected one of {sorted(ACTIVATIONS)} or a "
                "function of an array."
            ) from None
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
