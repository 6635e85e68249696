"""Weight constraints with Keras's names, defaults and numerics.

A constraint is a callable ``w -> w'`` of the same shape (any such function works too), applied
to its weight after every optimizer update inside the compiled training step.

    Dense(64, kernel_constraint=MaxNorm(3))   # each column of the (in, 64) kernel: norm <= 3
    Conv2D(8, 3, kernel_constraint=UnitNorm(axis=[0, 1, 2]))   # each filter: unit norm

``axis`` names the axes a norm is taken over (an int or a list), so ``axis=0`` on a Dense kernel
``(in, units)`` constrains the ``in`` weights of each unit.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc import config_object
from kfunc.config_object import ConfigObject

EPSILON = 1e-7  # Keras's backend.epsilon(): added to a norm before dividing by it


def _axes(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w, axis):
    """``sqrt(sum(w ** 2))`` over ``axis``, kept for broadcasting."""
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=_axes(axis), keepdims=True))


class Constraint(ConfigObject):
    """Base class: ``__call__(w)`` returns the projected weight, same shape."""

    def __call__(self, w):
        return w


class MaxNorm(Constraint):
    """Rescales slices whose norm over ``axis`` exceeds ``max_value``: ``w * clip(n, 0, max) / (eps + n)``."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w):
        w = jnp.asarray(w)
        norms = _norms(w, self.axis)
        return w * (jnp.clip(norms, 0, self.max_value) / (EPSILON + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Negative weights become zero."""

    def __call__(self, w):
        return jnp.maximum(jnp.asarray(w), 0)


class UnitNorm(Constraint):
    """Slices over ``axis`` divided by their norm: ``w / (eps + n)``."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = jnp.asarray(w)
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves each slice's norm ``n`` over ``axis`` to ``rate * clip(n, min, max) + (1 - rate) * n``."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w):
        w = jnp.asarray(w)
        norms = _norms(w, self.axis)
        desired = self.rate * jnp.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (EPSILON + norms))

    def get_config(self):
        return {
            "min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis,
        }


# Keras's aliases: the classes under snake-case names.
max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm

CONSTRAINTS: dict[str, type[Constraint]] = {
    cls.__name__: cls for cls in (Constraint, MaxNorm, NonNeg, UnitNorm, MinMaxNorm)
}
_STRINGS = {
    "max_norm": MaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
    "min_max_norm": MinMaxNorm,
    **{name: cls for name, cls in CONSTRAINTS.items() if cls is not Constraint},
}


FAMILY = config_object.Family(
    kind="constraint", base="Constraint", module="constraints", signature="w -> projected w",
    table=CONSTRAINTS, strings=_STRINGS,
)


def serialize(constraint) -> dict | None:
    """``{"class_name": ..., "config": {...}}`` for a constraint object (Keras's layout)."""
    return config_object.serialize(constraint)


def deserialize(config: dict):
    """The constraint that ``serialize`` described."""
    return config_object.deserialize(config, FAMILY)


def get(identifier):
    """``None``, a name (``'max_norm'``), a ``serialize`` dict, a class, an instance or any
    callable ``w -> w'``; returns a callable or ``None``."""
    return config_object.get(identifier, FAMILY)
