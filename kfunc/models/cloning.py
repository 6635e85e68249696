"""``clone_model``: the same architecture with new layers, and so new, freshly initialised weights.

A functional model is cloned by calling a clone of each layer on the clones of its input tensors,
node by node in the graph's order (a layer called twice is cloned once, so sharing survives); a
Sequential by stacking clones of its layers on a new input. ``clone_function(layer)`` replaces
the default clone (a new layer from the layer's config, with the layers it holds cloned too);
``call_function(layer, *args, **kwargs)`` replaces each call; ``recursive=True`` clones nested
models through ``clone_model`` with the same functions (Keras 3's arguments).
"""

from __future__ import annotations

import jax

from kfunc.errors import ArgumentError
from kfunc.graph.tensor import SymbolicTensor, is_symbolic
from kfunc.layers.base import Layer
from kfunc.layers.input import Input
from kfunc.models.functional import Model
from kfunc.models.sequential import Sequential


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False, **kwargs):
    """A new model of the same architecture as ``model`` (functional or Sequential), with new layers.

    ``input_tensors``: symbolic tensors (from ``Input``) to build the clone on, in the model's
    input structure (one tensor for a Sequential); new inputs of the same shapes when ``None``.
    """
    cache = kwargs.pop("cache", None)
    if kwargs:
        raise ArgumentError(f"clone_model() got unexpected keyword argument(s) {sorted(kwargs)}.")
    if not isinstance(model, Model):
        raise ArgumentError(
            f"clone_model expects a functional or Sequential model, received {type(model).__name__} {model!r:.60}."
        )
    if clone_function is not None and not callable(clone_function):
        raise ArgumentError(f"clone_model: clone_function must be callable, received {clone_function!r:.60}.")
    clone = _cloner(clone_function, call_function, recursive, {} if cache is None else cache)
    if isinstance(model, Sequential):
        if call_function is not None:
            raise ArgumentError(
                f"clone_model: call_function applies to functional models; Sequential '{model.name}' calls each "
                "layer on the previous output."
            )
        return _clone_sequential(model, clone, input_tensors)
    return _clone_functional(model, clone, input_tensors, call_function)


def clone_layer(layer: Layer) -> Layer:
    """A new layer from ``layer``'s config; the layers the config holds (a wrapper's layer) are
    cloned too, so the clone shares no weights with ``layer``."""
    if isinstance(layer, Model):
        return clone_model(layer)

    def fresh(value):
        if isinstance(value, Layer):
            return clone_layer(value)
        if isinstance(value, list):
            return [fresh(v) for v in value]
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return tuple(fresh(v) for v in value)
        if isinstance(value, dict):
            return {k: fresh(v) for k, v in value.items()}
        return value

    return type(layer).from_config(fresh(layer.get_config()))


def _cloner(clone_function, call_function, recursive: bool, cache: dict):
    """``layer -> clone``, each layer cloned once per ``clone_model`` call."""

    def clone(layer):
        if id(layer) not in cache:
            if recursive and isinstance(layer, Model):
                cache[id(layer)] = clone_model(layer, clone_function=clone_function, recursive=True, cache=cache,
                                               call_function=None if isinstance(layer, Sequential) else call_function)
            else:
                made = (clone_function or clone_layer)(layer)
                if not isinstance(made, Layer):
                    raise ArgumentError(
                        f"clone_model: clone_function must return a layer; for '{layer.name}' "
                        f"({type(layer).__name__}) it returned {type(made).__name__}."
                    )
                cache[id(layer)] = made
        return cache[id(layer)]

    return clone


def _new_input(tensor: SymbolicTensor) -> SymbolicTensor:
    name = tensor.layer.name if tensor.layer.is_input_layer else None
    return Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=name)


def _clone_functional(model: Model, clone, input_tensors, call_function) -> Model:
    graph = model._graph()
    if input_tensors is None:
        new_inputs = [_new_input(t) for t in graph.flat_inputs]
    else:
        new_inputs = jax.tree_util.tree_leaves(input_tensors, is_leaf=is_symbolic)
        if len(new_inputs) != len(graph.flat_inputs) or not all(is_symbolic(t) for t in new_inputs):
            raise ArgumentError(
                f"clone_model: Model '{model.name}' has {len(graph.flat_inputs)} input(s) {model.input_names}; "
                f"input_tensors must hold as many symbolic tensors, received {input_tensors!r:.80}."
            )
    mapping = {id(old): new for old, new in zip(graph.flat_inputs, new_inputs, strict=True)}
    swap = lambda structure: jax.tree_util.tree_map(  # noqa: E731
        lambda leaf: mapping[id(leaf)] if is_symbolic(leaf) else leaf, structure, is_leaf=is_symbolic
    )
    for node in graph.plan.nodes:
        layer = clone(node.layer)
        args, kwargs = swap(node.args), swap(node.kwargs)
        outputs = call_function(layer, *args, **kwargs) if call_function is not None else layer(*args, **kwargs)
        new_outputs = jax.tree_util.tree_leaves(outputs, is_leaf=is_symbolic)
        for old, new in zip(node.outputs, new_outputs, strict=True):
            mapping[id(old)] = new
    return Model(swap(graph.input_structure), swap(graph.output_structure), name=model.name, trainable=model.trainable)


def _clone_sequential(model: Sequential, clone, input_tensors) -> Sequential:
    layers = [clone(layer) for layer in model.layers]
    if input_tensors is not None:
        tensors = input_tensors if isinstance(input_tensors, (list, tuple)) else [input_tensors]
        if len(tensors) != 1 or not is_symbolic(tensors[0]) or not tensors[0].layer.is_input_layer:
            raise ArgumentError(
                f"clone_model: Sequential '{model.name}' takes one input tensor from kfunc.Input(...) as "
                f"input_tensors, received {input_tensors!r:.80}."
            )
        layers = [tensors[0], *layers]
    elif model._input_tensor is not None:
        layers = [_new_input(model._input_tensor), *layers]
    return Sequential(layers, name=model.name, trainable=model.trainable)
