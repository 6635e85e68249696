"""How a layer called on symbolic tensors records itself (``SymbolicCalls``, a mixin of
``Layer``): the output ``(shape, dtype)`` structure, from the layer's ``compute_output_spec`` or
``compute_output_shape`` when it declares one (as Keras 3 uses them) or by tracing its ``call``
with ``jax.eval_shape``; the masks its outputs carry; and the ``Node`` joining the input tensors to
new ``SymbolicTensor`` outputs.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from kfunc.errors import LayerInputTypeError, describe_layer
from kfunc.graph.infer import infer_outputs
from kfunc.graph.masks import align_masks, call_with_input_masks, mask_arguments, warn_if_mask_dropped
from kfunc.graph.node import Node, flatten_symbolic
from kfunc.graph.tensor import KerasTensor, SymbolicTensor, is_spec_only, is_symbolic
from kfunc.layers import added_losses
from kfunc.layers.signatures import accepted_parameters
from kfunc.core.variable import bind


def tracing_call(compute_output_shape):
    """Marks the default ``compute_output_shape``, which traces ``call``: a layer whose own method
    is not marked declares its output shapes, and ``call`` is not traced to find them."""
    compute_output_shape.traces_call = True
    return compute_output_shape


class SymbolicCalls:
    """The symbolic half of ``Layer.__call__``; the layer provides ``_input_leaves``,
    ``_shapes_of``, ``_dtypes_of``, ``_build_from``, ``_other_build_shapes``,
    ``check_input_shapes``, ``_call_arrays`` and the masking API."""

    def _call_symbolic(self, args: tuple, kwargs: dict):
        # The node keeps its own copy of the call's lists, tuples and dicts: a caller that later
        # mutates the list it passed (``parts.reverse()``) cannot change the recorded graph.
        args, kwargs = jax.tree_util.tree_map(lambda leaf: leaf, (tuple(args), dict(kwargs)), is_leaf=is_symbolic)
        inputs = args[0]
        self._input_leaves(inputs, symbolic=True)
        tensors = flatten_symbolic((args, kwargs))
        self._refuse_spec_only(tensors)
        shapes = self._shapes_of(inputs, batch_none=False)
        if not self.built:
            self._build_from(shapes, self._other_build_shapes(args, kwargs))
        self.check_input_shapes(shapes, self._dtypes_of(inputs))
        # The masks the inputs carry reach `call` now as they will at run time (Keras 3).
        masks = {t: t.mask_spec for t in tensors if t.mask_spec is not None}
        structs, output_masks = self._output_structs_and_masks(args, kwargs, masks)
        node_index = len(self._inbound_nodes)
        leaves, treedef = jax.tree_util.tree_flatten(structs)
        mask_specs = [_mask_spec_for(m, s.shape) for m, s in zip(align_masks(output_masks, len(leaves)), leaves,
                                                                   strict=True)]
        outputs = tuple(
            SymbolicTensor(s.shape, s.dtype, self._output_name(node_index, i, len(leaves)), self, node_index, i,
                           mask_spec=mask_specs[i])
            for i, s in enumerate(leaves)
        )
        node = Node(
            layer=self,
            index=node_index,
            args=args,
            kwargs=kwargs,
            inputs=tuple(tensors),
            outputs=outputs,
            output_structure=jax.tree_util.tree_unflatten(treedef, outputs),
        )
        self._inbound_nodes.append(node)
        return node.output_structure

    def _refuse_spec_only(self, tensors) -> None:
        for index, tensor in enumerate(tensors):
            if is_spec_only(tensor):
                raise LayerInputTypeError(
                    f"{describe_layer(self)} received, as input {index}, KerasTensor '{tensor.name}' of shape "
                    f"{tensor.shape}, which is a spec only (made by KerasTensor(shape, dtype), not by Input or a "
                    "layer), so no graph leads to it; call the layer on kfunc.Input(shape=...) or another layer's "
                    "output, or use layer.compute_output_shape(shape) to only ask for the output shape."
                )

    def _output_structs(self, args: tuple, kwargs: dict):
        """The ``(shape, dtype)`` structure a call on the symbolic ``args`` returns (no masks)."""
        return self._output_structs_and_masks(args, kwargs, {})[0]

    def _output_structs_and_masks(self, args: tuple, kwargs: dict, masks: dict):
        """``(structs, output_masks)``: the ``(shape, dtype)`` structure a call on the symbolic
        ``args`` returns, and the ``(shape, dtype)`` of the masks its outputs carry (None, or as
        ``compute_mask`` returns them). ``masks``: input tensor -> its mask spec. The structs come
        from the layer's own ``compute_output_spec`` or ``compute_output_shape`` when it defines
        one (as Keras 3 uses them instead of tracing), else by tracing ``call`` with the masks
        (``infer_outputs``)."""
        cls = type(self)
        if getattr(cls, "compute_output_spec", None) is not None:
            spec_masks = {t: KerasTensor(m.shape, m.dtype, name=f"{t.name}_mask") for t, m in masks.items()}
            spec_kwargs, _ = mask_arguments(self, args, kwargs, kwargs, spec_masks)
            accepted = accepted_parameters(cls.compute_output_spec)
            spec_kwargs = {k: v for k, v in spec_kwargs.items() if k in kwargs or accepted is None or k in accepted}
            specs = self.compute_output_spec(*args, **spec_kwargs)
            structs = jax.tree_util.tree_map(
                lambda spec: _Spec(tuple(spec.shape), jnp.dtype(spec.dtype)), specs, is_leaf=_has_shape_and_dtype
            )
            return structs, self._infer_output_masks(args, kwargs, masks)
        if not getattr(cls.compute_output_shape, "traces_call", False):
            shapes = self.compute_output_shape(self._shapes_of(args[0], batch_none=False))
            structs = _map_shape_structure(lambda shape: _Spec(shape, self.compute_dtype), shapes)
            return structs, self._infer_output_masks(args, kwargs, masks)
        if not masks and not self.supports_masking:
            return infer_outputs(self, args, kwargs, self._abstract_call, self.weights), None
        call = functools.partial(self._abstract_masked_call, args, kwargs)
        return infer_outputs(self, args, kwargs, call, self.weights, masks)

    def _abstract_call(self, variable_values, args: tuple, kwargs: dict, mask_values=None):
        """The array call with ``self.weights`` bound to ``variable_values``, for shape inference;
        losses added meanwhile are abstract values, collected and dropped."""
        with bind(self.weights, variable_values), added_losses.collecting():
            return self._call_arrays(args, kwargs)

    def _abstract_masked_call(self, call_args, call_kwargs, variable_values, args, kwargs, mask_values):
        """``(outputs, output_masks)`` of the array call of ``call_args``/``call_kwargs`` (symbolic)
        on their values ``args``/``kwargs``, with the masks of ``mask_values`` passed as at run
        time (``kfunc.graph.masks``); for shape inference, as ``_abstract_call``."""
        with bind(self.weights, variable_values), added_losses.collecting():
            return call_with_input_masks(self, call_args, call_kwargs, args, kwargs, mask_values)

    def _infer_output_masks(self, args: tuple, kwargs: dict, masks: dict):
        """The ``(shape, dtype)`` of the masks ``compute_mask`` gives, for a layer whose output
        shapes it declares itself (``call`` is not traced)."""
        if not self.supports_masking:
            if masks:
                warn_if_mask_dropped(self, mask_arguments(self, args, kwargs, kwargs, masks)[1])
            return None

        def output_masks(variable_values, arg_values, kwarg_values, mask_values):
            _, previous = mask_arguments(self, args, kwargs, kwarg_values, mask_values)
            with bind(self.weights, variable_values):
                return self.compute_mask(arg_values[0], previous)

        return infer_outputs(self, args, kwargs, output_masks, self.weights, masks)

    def _output_name(self, node_index: int, output_index: int, count: int) -> str:
        name = self.name if node_index == 0 else f"{self.name}#{node_index}"
        return name if count == 1 else f"{name}[{output_index}]"


class _Spec:
    """``(shape, dtype)`` of an output, ``None`` for unknown sizes; a pytree leaf."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtype


def _mask_spec_for(mask, tensor_shape):
    """The ``(shape, dtype)`` of an output's mask (None if it has none), with the sizes the output
    knows filled in (a mask's axis ``i`` is its tensor's axis ``i``: ``(batch, timesteps)``), so
    the next layer traces the mask and the tensor with matching sizes."""
    if not _has_shape_and_dtype(mask):
        return None
    known = (tuple(tensor_shape) + (None,) * len(mask.shape))[: len(mask.shape)]
    shape = tuple(t if m is None else m for m, t in zip(mask.shape, known, strict=True))
    return _Spec(shape, mask.dtype)


def _has_shape_and_dtype(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def is_shape(value) -> bool:
    """Whether ``value`` is one shape: a tuple or list of ints and ``None``."""
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, int) for d in value)


def _map_shape_structure(fn, shapes):
    """``fn`` on each shape (a tuple of ints and ``None``) of a structure of shapes."""
    return jax.tree_util.tree_map(lambda s: fn(tuple(s)), shapes, is_leaf=is_shape)
