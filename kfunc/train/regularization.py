"""Weight regularizers and constraints of a model, as pure functions of its params pytree.

The training step adds ``penalty(params)`` to the loss (inside the differentiated function, so
the gradient includes it) and applies ``constrain(params)`` after each optimizer update. Only
trainable weights count, as in Keras: a frozen layer's weights are neither penalized nor
projected. The regularizers and constraints are read from the model once, when the step is
built; they are Python constants of the compiled step, so nothing recompiles per step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from kfunc.errors import LayerConfigError
from kfunc.core.tree_paths import get_path


class WeightRules(NamedTuple):
    """``penalties``: ``(path, regularizer)`` per regularized trainable weight; ``constraints``:
    ``(path, constraint)`` per constrained one; paths into the params tree, e.g. ``("dense", "kernel")``."""

    penalties: tuple
    constraints: tuple
    owner: object  # the model, for error messages

    @classmethod
    def of(cls, model) -> WeightRules:
        trainable = {id(v) for v in model.trainable_weights}
        pairs = [(v, p) for v, p in model.variable_paths() if v.trainable and id(v) in trainable]
        return cls(
            tuple((p, v.regularizer) for v, p in pairs if v.regularizer is not None),
            tuple((p, v.constraint) for v, p in pairs if v.constraint is not None),
            model,
        )

    def penalty(self, params) -> jnp.ndarray:
        """The sum of every weight penalty, a float32 scalar (0 when there is none)."""
        total = jnp.zeros((), jnp.float32)
        for path, regularizer in self.penalties:
            value = jnp.asarray(regularizer(get_path(params, path, self.owner)))
            total = total + jnp.sum(value).astype(jnp.float32)
        return total

    def constrain(self, params) -> dict:
        """``params`` with each constrained weight replaced by its projection (same dtype)."""
        for path, constraint in self.constraints:
            weight = get_path(params, path, self.owner)
            projected = jnp.asarray(constraint(weight))
            if projected.shape != weight.shape:
                raise LayerConfigError(
                    f"The constraint {constraint!r:.60} of weight '{'/'.join(path)}' returned shape "
                    f"{projected.shape} for a weight of shape {weight.shape}; a constraint must keep the "
                    "shape."
                )
            params = _replace(params, path, projected.astype(weight.dtype))
        return params


def _replace(tree: dict, path: tuple, value) -> dict:
    """A copy of the nested dict ``tree`` with ``tree[path] = value`` (only the path's dicts copied)."""
    if len(path) == 1:
        return {**tree, path[0]: value}
    return {**tree, path[0]: _replace(tree[path[0]], path[1:], value)}
