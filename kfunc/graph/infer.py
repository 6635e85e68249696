"""Shape and dtype inference: ``jax.eval_shape`` over the layer's own array call.

Unknown sizes (``None``) become symbolic dimensions (``jax.export.symbolic_shape``): the batch is
one symbol shared by every input, and an unknown size at axis ``i`` is the symbol ``d<i>``, so two
``(None, None, 8)`` sequences can be added. Output dimensions that stay symbolic come back as
``None``. Should a layer use an operation that symbolic sizes do not support, inference retries
with two sets of concrete sizes and marks the dimensions that changed as ``None``.

Masks the inputs carry (``SymbolicTensor.mask_spec``) are abstract arguments too, with the same
symbols at the same axes as their tensors, so a ``call`` that branches on ``mask`` is traced in
the branch the run takes, and the masks a layer returns come back as ``(shape, dtype)``.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from kfunc import seeding
from kfunc.errors import KfuncError, LayerInputError, describe_layer
from kfunc.graph.tensor import is_symbolic

_MAX_RANK = 16


@functools.cache
def _symbols():
    names = ", ".join(["batch"] + [f"d{i}" for i in range(1, _MAX_RANK)])
    return jax.export.symbolic_shape(names)


def _symbolic_struct(tensor) -> jax.ShapeDtypeStruct:
    symbols = _symbols()
    shape = tuple(symbols[axis] if d is None else d for axis, d in enumerate(tensor.shape))
    return jax.ShapeDtypeStruct(shape, tensor.dtype)


def _concrete_struct(tensor, unknown_size: int) -> jax.ShapeDtypeStruct:
    shape = tuple(unknown_size + axis if d is None else d for axis, d in enumerate(tensor.shape))
    return jax.ShapeDtypeStruct(shape, tensor.dtype)


def _evaluate(call, variables, args, kwargs, to_struct, masks):
    """``jax.eval_shape`` of ``call(variable_values, args, kwargs, mask_values)`` with the
    variables, the symbolic tensors (each replaced by ``to_struct(t)``) and the masks
    (``masks``: tensor -> mask spec, replaced by ``to_struct(spec)``) abstract."""
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=is_symbolic)
    positions = [i for i, leaf in enumerate(leaves) if is_symbolic(leaf)]
    structs = [to_struct(leaves[i]) for i in positions]
    masked = list(masks)
    mask_structs = [to_struct(masks[t]) for t in masked]
    variable_structs = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in variables]

    def run(variable_values, traced, traced_masks):
        filled = list(leaves)
        for position, value in zip(positions, traced, strict=True):
            filled[position] = value
        call_args, call_kwargs = jax.tree_util.tree_unflatten(treedef, filled)
        mask_values = dict(zip(masked, traced_masks, strict=True))
        # Random draws only need a shape here: a fixed key serves a layer that always draws.
        with seeding.call_key_scope(jax.random.key(0)):
            return call(variable_values, call_args, call_kwargs, mask_values)

    return jax.eval_shape(run, variable_structs, structs, mask_structs)


def _known(dim):
    return int(dim) if isinstance(dim, (int, np.integer)) else None


def infer_outputs(layer, args: tuple, kwargs: dict, call, variables, masks: dict | None = None):
    """The structure of ``jax.ShapeDtypeStruct``-like ``(shape, dtype)`` the call would return.

    ``call(variable_values, args, kwargs, mask_values)`` computes the layer on arrays with
    ``variables`` (each with ``.shape``/``.dtype``) bound to ``variable_values`` and
    ``mask_values`` (symbolic input tensor -> its mask array) for the inputs in ``masks``
    (symbolic tensor -> its ``mask_spec``); ``layer`` names it in errors.

    Returns a pytree whose leaves are ``jax.ShapeDtypeStruct`` with ``None`` for unknown sizes
    (stored as a plain tuple in ``.shape``).
    """
    masks = masks or {}
    try:
        result = _evaluate(call, variables, args, kwargs, _symbolic_struct, masks)
        return jax.tree_util.tree_map(
            lambda s: _Struct(tuple(_known(d) for d in s.shape), s.dtype), result
        )
    except KfuncError:
        raise
    except Exception as symbolic_error:  # retry with concrete sizes below
        first_error = symbolic_error
    try:
        small = _evaluate(call, variables, args, kwargs, lambda t: _concrete_struct(t, 2), masks)
        large = _evaluate(call, variables, args, kwargs, lambda t: _concrete_struct(t, 5), masks)
    except KfuncError:
        raise
    except Exception as error:
        shapes = [t.shape for t in jax.tree_util.tree_leaves(args, is_leaf=is_symbolic) if is_symbolic(t)]
        raise LayerInputError(
            f"{describe_layer(layer)} cannot be called on inputs of shape "
            f"{shapes[0] if len(shapes) == 1 else shapes}: {_first_line(error)}"
        ) from first_error

    def merge(a, b):
        shape = tuple(da if da == db else None for da, db in zip(a.shape, b.shape, strict=True))
        return _Struct(shape, a.dtype)

    return jax.tree_util.tree_map(merge, small, large)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class _Struct:
    """``(shape, dtype)`` where shape may hold ``None``; a pytree leaf."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype
