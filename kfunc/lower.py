"""``lower(model)``: a model as two pure JAX functions over parameter pytrees.

    lowered = kfunc.lower(model)
    params, state = lowered.init(jax.random.key(0))
    outputs, new_state = lowered.apply(params, state, inputs, training=False, key=None)

``apply`` walks the graph in Python only while JAX traces it: under ``jax.jit`` the compiled
program is the layers' array operations and nothing else. Both functions compose with
``jax.grad``, ``jax.vmap``, ``jax.jit`` shardings and ``jax.export``.

Runs of repeated blocks (``kfunc.folding``) run as one ``lax.scan`` each, so the
program's size does not grow with the depth; ``apply_stacked`` takes the weights in the stacked
layout that training keeps, ``lower``'s ``apply`` takes the model's own layout and stacks them
inside the trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from kfunc.core.tree_paths import get_path, tree_from_paths
from kfunc.core.variable import bind
from kfunc.errors import LayerConfigError
from kfunc.layers import added_losses
from kfunc.layers.base import Layer
from kfunc.layers.weights_api import Variables
from kfunc.folding import BlockFolding


class Lowered(NamedTuple):
    """``init(key) -> Variables(params, state)``;
    ``apply(params, state, inputs, *, training=False, key=None) -> (outputs, new_state)``."""

    init: Callable
    apply: Callable


def lower(model: Layer, *, fold_repeated_blocks: bool = True) -> Lowered:
    """The pure ``(init, apply)`` of a built model (or any built layer).

    ``fold_repeated_blocks``: run each run of structurally identical blocks as one ``lax.scan``
    (the same numbers; compile time independent of the depth). The pytrees keep the model's
    layout either way; ``apply`` stacks the blocks' weights inside the trace.
    """
    if not isinstance(model, Layer):
        raise LayerConfigError(f"lower() expects a kfunc Model or layer, received {type(model).__name__}.")
    model._require_built("lower()")
    folding = BlockFolding.of(model) if fold_repeated_blocks else None

    def init(key) -> Variables:
        """Fresh ``Variables(params, state)`` drawn with ``key``."""
        return model.init(key)

    def apply(params, state, inputs, *, training: bool = False, key=None):
        """``(outputs, new_state)``; ``inputs`` in the model's input structure or a dict by name."""
        if folding is None:
            return model.apply(params, state, inputs, training=training, key=key)
        outputs, new_state = apply_stacked(model, folding, folding.stack_tree(params), folding.stack_tree(state),
                                           inputs, training=training, key=key)
        return outputs, folding.unstack_tree(new_state)

    return Lowered(init=init, apply=apply)


def apply_stacked(model, folding: BlockFolding, params: dict, state: dict, inputs, *, training: bool = False,
                  key=None, return_masks: bool = False, remat=False):
    """``model.apply`` on weights in ``folding``'s stacked layout: ``(outputs, new_state)``
    (``new_state`` stacked too), plus the output masks with ``return_masks``. ``remat``: recompute
    each folded block's activations in the backward pass (see ``kfunc.folding.remat_policy``)."""
    folded = folding.folded_variable_ids()
    pairs = [(v, p) for v, p in model.variable_paths() if id(v) not in folded]
    values = [get_path(params if v.trainable else state, p, model) for v, p in pairs]
    call = folding.call(params, state, remat=remat)
    model._input_leaves(inputs, symbolic=False)
    with bind([v for v, _ in pairs], values) as binding, added_losses.pure_call():
        outputs, masks = model.call_with_masks(inputs, training=training, key=key, folded=call)
    updated = [(p, binding.updates.get(v, x)) for (v, p), x in zip(pairs, values, strict=True) if not v.trainable]
    new_state = tree_from_paths(updated) | call.new_state
    return (outputs, new_state, masks) if return_masks else (outputs, new_state)
