"""How masks flow along the graph's edges, as in Keras 3.

A mask is a boolean array ``(batch, timesteps)`` (True: keep the step) attached to a tensor's
value. ``Embedding(mask_zero=True)`` and ``Masking`` create one; layers that support masking pass
it on (or transform it) through ``compute_mask``; layers whose ``call`` takes a ``mask`` argument
receive it. Masks exist only as values: the interpreter carries them beside the values while JAX
traces, so a model without masks compiles to exactly what it did before.

Which masks a layer receives follows Keras 3's rule: a call with one tensor argument gets that
argument's masks as ``mask=`` (when ``call`` has that parameter and it was not given); a call with
several tensor arguments gets ``<argument>_mask=`` for each ``call`` parameter so named
(``MultiHeadAttention``'s ``query_mask``, ``value_mask``, ``key_mask``). The output masks come
from ``compute_mask(first_argument, previous_mask)`` of layers that support masking, where
``previous_mask`` is the ``mask`` passed, or else the first argument's masks.
"""

from __future__ import annotations

import inspect
import warnings

import jax

from kfunc.graph.node import Node, flatten_symbolic, replace_symbolic


def has_mask(masks) -> bool:
    """Whether a mask structure (a mask, None, or a list/tuple/dict of them) holds any mask."""
    return any(m is not None for m in jax.tree_util.tree_leaves(masks))


def _call_parameters(layer) -> list[str]:
    return list(inspect.signature(type(layer).call).parameters)[1:]


def call_node_with_masks(layer, node: Node, args: tuple, kwargs: dict, masks: dict):
    """Call ``layer`` on the node's values ``args``/``kwargs`` with the masks Keras would pass.

    ``masks``: symbolic tensor -> mask array or None, for every tensor computed so far.
    Returns ``(result, output_masks)``, ``output_masks`` a list aligned with ``node.outputs``.
    """
    result, output_masks = call_with_input_masks(layer, node.args, node.kwargs, args, kwargs, masks)
    return result, align_masks(output_masks, len(node.outputs))


def call_with_input_masks(layer, call_args: tuple, call_kwargs: dict, args: tuple, kwargs: dict, masks: dict):
    """``(result, output_masks)`` of ``layer`` called on ``args``/``kwargs`` (the values of the
    symbolic ``call_args``/``call_kwargs``) with the masks Keras would pass; the one rule for the
    run (values are arrays) and for shape inference while the graph is built (values are traced).
    ``output_masks`` is what the layer's ``compute_mask`` returned (None if it passes none)."""
    kwargs, previous = mask_arguments(layer, call_args, call_kwargs, kwargs, masks)
    result, output_masks = layer._masked_call(args, kwargs, previous)
    warn_if_mask_dropped(layer, previous)
    return result, output_masks


def mask_arguments(layer, call_args: tuple, call_kwargs: dict, kwargs: dict, masks: dict):
    """``(kwargs, previous_mask)``: ``kwargs`` with the ``mask=`` / ``<argument>_mask=`` entries
    ``call`` receives, and the mask ``compute_mask`` gets (the ``mask`` passed, or else the first
    argument's masks). ``masks``: symbolic tensor -> its mask (an array, a spec, or None)."""
    mask_args, mask_kwargs = replace_symbolic((call_args, call_kwargs), lambda t: masks.get(t))
    parameters = _call_parameters(layer)
    tensor_arguments: dict[str, object] = {}
    for position, argument in enumerate(call_args):
        if flatten_symbolic(argument):
            name = parameters[position] if position < len(parameters) else f"argument {position}"
            tensor_arguments[name] = mask_args[position]
    for name, argument in call_kwargs.items():
        if flatten_symbolic(argument):
            tensor_arguments[name] = mask_kwargs[name]

    kwargs = dict(kwargs)
    if len(tensor_arguments) == 1:
        (only,) = tensor_arguments.values()
        if "mask" in parameters and kwargs.get("mask") is None and has_mask(only):
            kwargs["mask"] = only
    else:
        for name, argument_masks in tensor_arguments.items():
            wanted = f"{name}_mask"
            if wanted in parameters and kwargs.get(wanted) is None and has_mask(argument_masks):
                kwargs[wanted] = argument_masks

    previous = kwargs.get("mask")
    if previous is None and mask_args and has_mask(mask_args[0]):
        previous = mask_args[0]
    return kwargs, previous


def warn_if_mask_dropped(layer, previous_mask) -> None:
    """Keras 3's warning when a layer that does not support masking receives a masked input."""
    if has_mask(previous_mask) and not layer.supports_masking:
        warnings.warn(
            f"Layer '{layer.name}' ({type(layer).__name__}) does not support masking, but its input "
            "carries a mask: the mask is dropped and layers after it will not see it.",
            stacklevel=3,
        )


def align_masks(output_masks, count: int) -> list:
    """A layer's output masks as a list of ``count`` entries (None where an output has none)."""
    if output_masks is None:
        return [None] * count
    if isinstance(output_masks, dict):
        flat = list(output_masks.values())
    elif isinstance(output_masks, (list, tuple)):
        flat = list(output_masks)
    else:
        flat = [output_masks]
    return (flat + [None] * count)[:count]
