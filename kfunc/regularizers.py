"""Weight and activity regularizers with Keras's names, defaults and formulas.

A regularizer is a callable ``x -> scalar penalty`` (any such function works too). A layer adds
the penalty of each regularized trainable weight, and of each output for an
``activity_regularizer`` (divided by the batch size), to the training loss.

    Dense(64, kernel_regularizer="l2")                  # L2(0.01): 0.01 * sum(kernel ** 2)
    Dense(64, kernel_regularizer=L1L2(l1=1e-5, l2=1e-4))

Strings: ``'l1'`` is ``L1(0.01)``, ``'l2'`` is ``L2(0.01)``, ``'l1_l2'`` is ``L1L2(0.01, 0.01)``
(the defaults Keras documents for these strings), ``'orthogonal_regularizer'`` is
``OrthogonalRegularizer()``; class names (``'L2'``) build the class with its own defaults.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from kfunc import config_object
from kfunc.config_object import ConfigObject
from kfunc.errors import LayerConfigError

EPSILON = 1e-7  # Keras's backend.epsilon(), the floor of a norm in OrthogonalRegularizer


def _factor(value, name: str, owner: str) -> float:
    """A non-negative finite penalty factor as a float (``None`` means 0)."""
    if value is None:
        return 0.0
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or math.isnan(value) or math.isinf(value) or value < 0:
        raise LayerConfigError(f"{owner}: {name} must be a non-negative finite number, received {value!r}.")
    return float(value)


class Regularizer(ConfigObject):
    """Base class: ``__call__(x)`` returns a scalar penalty for an array ``x`` of any shape."""

    def __call__(self, x):
        return jnp.zeros((), jnp.asarray(x).dtype)


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x ** 2)``; a zero factor leaves its term out."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(l1, "l1", "L1L2")
        self.l2 = _factor(l2, "l2", "L1L2")

    def __call__(self, x):
        x = jnp.asarray(x)
        penalty = jnp.zeros((), x.dtype)
        if self.l1:
            penalty = penalty + jnp.asarray(self.l1, x.dtype) * jnp.sum(jnp.abs(x))
        if self.l2:
            penalty = penalty + jnp.asarray(self.l2, x.dtype) * jnp.sum(jnp.square(x))
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|x|)``."""

    def __init__(self, l1=0.01):
        self.l1 = _factor(0.01 if l1 is None else l1, "l1", "L1")

    def __call__(self, x):
        x = jnp.asarray(x)
        return jnp.asarray(self.l1, x.dtype) * jnp.sum(jnp.abs(x))

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(x ** 2)``."""

    def __init__(self, l2=0.01):
        self.l2 = _factor(0.01 if l2 is None else l2, "l2", "L2")

    def __call__(self, x):
        x = jnp.asarray(x)
        return jnp.asarray(self.l2, x.dtype) * jnp.sum(jnp.square(x))

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode='rows'``) or columns of a 2-D weight towards orthogonality.

    Penalty: ``factor * 0.5 * sum(|<u_i, u_j>|, i != j) / (n * (n - 1) / 2)`` over the ``n``
    L2-normalized rows (columns) ``u``; a norm below ``EPSILON`` counts as ``EPSILON``.
    """

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _factor(factor, "factor", "OrthogonalRegularizer")
        if mode not in ("rows", "columns"):
            raise LayerConfigError(
                f"OrthogonalRegularizer: mode must be 'rows' or 'columns', received {mode!r}."
            )
        self.mode = mode

    def __call__(self, x):
        x = jnp.asarray(x)
        if x.ndim != 2:
            raise LayerConfigError(
                f"OrthogonalRegularizer applies to 2-D weights, received shape {tuple(x.shape)}; use it on "
                "a Dense kernel (in, units) or reshape the weight."
            )
        vectors = x if self.mode == "rows" else x.T
        # x * rsqrt(sum of squares), capped at 1/EPSILON: Keras's normalize, same rounding.
        squares = jnp.sum(jnp.square(vectors), axis=1, keepdims=True)
        inverse_norm = jnp.minimum(lax.rsqrt(squares), 1.0 / EPSILON)
        unit = vectors * inverse_norm
        size = unit.shape[0]
        product = (unit @ unit.T) * (1.0 - jnp.eye(size, dtype=x.dtype))
        pairs = size * (size - 1.0) / 2.0
        return jnp.asarray(self.factor, x.dtype) * 0.5 * jnp.sum(jnp.abs(product)) / pairs

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


# Keras's aliases: the classes under snake-case names.
l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer

REGULARIZERS: dict[str, type[Regularizer]] = {
    cls.__name__: cls for cls in (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)
}
_STRINGS = {
    "l1": L1,
    "l2": L2,
    "l1_l2": lambda: L1L2(l1=0.01, l2=0.01),
    "l1l2": L1L2,
    "orthogonal_regularizer": OrthogonalRegularizer,
    **{name: cls for name, cls in REGULARIZERS.items() if cls is not Regularizer},
}


FAMILY = config_object.Family(
    kind="regularizer", base="Regularizer", module="regularizers", signature="x -> scalar penalty",
    table=REGULARIZERS, strings=_STRINGS,
)


def serialize(regularizer) -> dict | None:
    """``{"class_name": ..., "config": {...}}`` for a regularizer object (Keras's layout)."""
    return config_object.serialize(regularizer)


def deserialize(config: dict):
    """The regularizer that ``serialize`` described."""
    return config_object.deserialize(config, FAMILY)


def get(identifier):
    """``None``, a name (``'l2'``), a ``serialize`` dict, a class, an instance or any callable
    ``x -> scalar``; returns a callable or ``None``."""
    return config_object.get(identifier, FAMILY)
