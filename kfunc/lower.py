"""``lower(model)``: a model as two pure JAX functions over parameter pytrees.

    lowered = kfunc.lower(model)
    params, state = lowered.init(jax.random.key(0))
    outputs, new_state = lowered.apply(params, state, inputs, training=False, key=None)

``apply`` walks the graph in Python only while JAX traces it: under ``jax.jit`` the compiled
program is the layers' array operations and nothing else. Both functions compose with
``jax.grad``, ``jax.vmap``, ``jax.jit`` shardings and ``jax.export``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from kfunc.errors import LayerConfigError
from kfunc.layers.base import Layer
from kfunc.layers.weights_api import Variables


class Lowered(NamedTuple):
    """``init(key) -> Variables(params, state)``;
    ``apply(params, state, inputs, *, training=False, key=None) -> (outputs, new_state)``."""

    init: Callable
    apply: Callable


def lower(model: Layer) -> Lowered:
    """The pure ``(init, apply)`` of a built model (or any built layer)."""
    if not isinstance(model, Layer):
        raise LayerConfigError(f"lower() expects a kfunc Model or layer, received {type(model).__name__}.")
    model._require_built("lower()")

    def init(key) -> Variables:
        """Fresh ``Variables(params, state)`` drawn with ``key``."""
        return model.init(key)

    def apply(params, state, inputs, *, training: bool = False, key=None):
        """``(outputs, new_state)``; ``inputs`` in the model's input structure or a dict by name."""
        return model.apply(params, state, inputs, training=training, key=key)

    return Lowered(init=init, apply=apply)
