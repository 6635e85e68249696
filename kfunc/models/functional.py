"""Model: a graph from input tensors to output tensors, usable as a layer.

``Model(inputs, outputs)`` orders and checks the graph once (``build_graph``); ``call`` runs it
on arrays with the one interpreter (``run_graph``). Called on new symbolic tensors a Model adds
one node and keeps its weights, like any layer; it can be cut from intermediate tensors of
another graph and shares the weights of the layers it contains.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from kfunc.core.structures import (
    describe_structure, flatten_with_paths, is_container, leaves, map_leaves, matched_by_paths, path_text,
)
from kfunc.errors import GraphError, LayerInputError, describe_layer, describe_value
from kfunc.graph.build import GraphPlan, build_graph
from kfunc.graph.fold import find_repeated_blocks
from kfunc.graph.masks import call_node_with_masks, has_mask
from kfunc.graph.run import run_graph
from kfunc.graph.tensor import SymbolicTensor, is_symbolic
from kfunc.layers.base import Layer
from kfunc.mixed_precision import at_least_float32
from kfunc.models.custom_steps import fit_steps, refusing_custom_steps
from kfunc.models.training_api import TrainingAPI


def _structure(value, role: str, model_name: str):
    """``value`` (a tensor, or any nesting of lists, tuples, namedtuples and dicts of tensors)
    checked and copied, container types kept, so the model's ``input``/``output`` and ``predict``'s
    results have the structure the user gave, as in Keras 3."""
    found = flatten_with_paths(value, is_leaf=is_symbolic)
    if not found or any(is_container(leaf) for _, leaf in found):
        raise GraphError(f"Model '{model_name}': `{role}` is empty; give at least one tensor.")
    for path, tensor in found:
        if not isinstance(tensor, SymbolicTensor):
            raise GraphError(
                f"Model '{model_name}': {role}{path_text(path)} must be a symbolic tensor (from Input(...) "
                f"or a layer call), but received {describe_value(tensor)}."
            )
    return map_leaves(lambda tensor: tensor, value, is_leaf=is_symbolic)


def _leaf_names(structure, paths: list, tensors: list) -> list[str]:
    """Keras 3's name of each leaf: its layer's name for a leaf in a list, the dict key for a
    leaf in a dict, joined with '/' below the top level (``{"a": [t]}`` -> ``'a/<layer of t>'``);
    tensor names where two leaves would share a name (two outputs of one layer)."""
    names = []
    for path, tensor in zip(paths, tensors, strict=True):
        parts = list(path) or [tensor.layer.name]
        if isinstance(parts[-1], int):
            parts[-1] = tensor.layer.name
        names.append("/".join(str(part) for part in parts))
    if len(set(names)) != len(names):
        names = [t.name for t in tensors]
    return names


def _value_text(value) -> str:
    return "None" if value is None else f"shape {tuple(getattr(value, 'shape', ()))}" if hasattr(value, "shape") else type(value).__name__


def _is_optional(tensor) -> bool:
    """Whether the model input ``tensor`` comes from ``Input(..., optional=True)``."""
    return bool(getattr(tensor.layer, "optional", False)) and tensor.layer.is_input_layer


def _missing_input(model, tensor) -> LayerInputError:
    return LayerInputError(
        f"{describe_layer(model)}: input '{tensor.name}' is not optional, but None was passed; pass an "
        f"array of shape {tensor.shape}, or declare it with Input(..., optional=True)."
    )


def _mixed_outputs_in_float32(output_structure, outputs):
    """The model's outputs, those computed by a mixed-precision layer (bfloat16 or float16) cast
    to float32, that layer's variable dtype: a model's results, and so its losses and metrics,
    come out in float32 as Keras advises for the last layer. A nested model's outputs go through
    here too; the next layer casts them back to its compute dtype."""

    def cast(tensor, value):
        if not tensor.layer.is_input_layer and tensor.layer.dtype_policy.is_mixed:
            return at_least_float32(value)
        return value

    return jax.tree_util.tree_map(cast, output_structure, outputs, is_leaf=is_symbolic)


class _Graph(NamedTuple):
    input_structure: object
    output_structure: object
    flat_inputs: list  # in the structure's flattening order (dict keys sorted, as Keras 3)
    flat_outputs: list
    plan: GraphPlan
    input_paths: list  # the path of each flat input in ``input_structure``
    output_paths: list


class Model(TrainingAPI, Layer):
    """``Model(inputs, outputs)``: single tensors or any nesting of lists, tuples, namedtuples and
    dicts of them (``Model([a, [b, c]], {"score": s, "cls": c})``)."""

    _build_marks_built = False  # a graph model is built by its graph (Sequential: by its input)
    # The base of subclassed models (``kfunc.models.subclassed`` sets it): a subclass of Model that
    # defines ``call`` computes with it, as Keras 3's Model subclasses do, and gets this base.
    _subclassed_base = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        base = Model._subclassed_base
        if base is not None and cls.call is not Model.call and not issubclass(cls, base):
            base.adopt(cls)

    def __init__(self, inputs=None, outputs=None, *, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        if inputs is None or outputs is None:
            raise GraphError(
                f"Model '{self.name}' ({type(self).__name__}) needs inputs and outputs: Model(inputs=Input(...), "
                "outputs=...). For a stack of layers without an explicit input, use Sequential; for a model "
                "that computes in Python, subclass Model and define call(inputs, training=False)."
            )
        self._set_graph(inputs, outputs)

    # Keras 3's customisation by overriding train_step / test_step / predict_step is refused with
    # what to write instead (``kfunc.models.custom_steps``): kfunc compiles one pure step.
    compile = refusing_custom_steps(TrainingAPI.compile, lambda arguments: ("train_step",))
    fit = refusing_custom_steps(TrainingAPI.fit, fit_steps)
    evaluate = refusing_custom_steps(TrainingAPI.evaluate, lambda arguments: ("test_step",))
    predict = refusing_custom_steps(TrainingAPI.predict, lambda arguments: ("predict_step",))
    predict_on_batch = refusing_custom_steps(TrainingAPI.predict_on_batch, lambda arguments: ("predict_step",))

    def _set_graph(self, inputs, outputs) -> None:
        input_structure = _structure(inputs, "inputs", self.name)
        output_structure = _structure(outputs, "outputs", self.name)
        input_paths, flat_inputs = zip(*flatten_with_paths(input_structure, is_leaf=is_symbolic), strict=True)
        output_paths, flat_outputs = zip(*flatten_with_paths(output_structure, is_leaf=is_symbolic), strict=True)
        plan = build_graph(list(flat_inputs), list(flat_outputs), model_name=self.name)
        self._graph_cache = _Graph(input_structure, output_structure, list(flat_inputs), list(flat_outputs), plan,
                                   list(input_paths), list(output_paths))
        self.built = True
        self._compiled_cache = {}

    def _graph(self) -> _Graph:
        """The checked graph (Sequential connects layers added since the last call first)."""
        return self._graph_cache

    # ------------------------------------------------------------------ structure
    @property
    def layers(self) -> list[Layer]:
        """Every layer of the graph once, input layers included, in Keras's order."""
        return list(self._graph().plan.layers)

    @property
    def sublayers(self) -> list[Layer]:
        return list(self._graph().plan.layers) if self.built else []

    @property
    def inputs(self) -> list[SymbolicTensor]:
        return list(self._graph().flat_inputs)

    @property
    def outputs(self) -> list[SymbolicTensor]:
        return list(self._graph().flat_outputs)

    @property
    def input(self):
        return self._graph().input_structure

    @property
    def output(self):
        return self._graph().output_structure

    @property
    def input_shape(self):
        """As Keras 3: the input's shape, or a flat list of the inputs' shapes (whatever their
        nesting: lists, tuples or dicts)."""
        return _flat_shapes(self._graph().flat_inputs)

    @property
    def output_shape(self):
        """As Keras 3: the output's shape, or a flat list of the outputs' shapes."""
        return _flat_shapes(self._graph().flat_outputs)

    @property
    def input_names(self) -> list[str]:
        """A name per flat input: the dict keys of a dict of inputs, else the input tensors' names."""
        graph = self._graph()
        if all(len(p) == 1 and not isinstance(p[0], int) for p in graph.input_paths):
            return [p[0] for p in graph.input_paths]
        return [t.name for t in graph.flat_inputs]

    @property
    def output_names(self) -> list[str]:
        """A name per flat output, as Keras 3 names losses and logs: the layer's name for an output
        in a list, the key for an output in a dict (``'a/b'`` when nested)."""
        graph = self._graph()
        return _leaf_names(graph.output_structure, graph.output_paths, graph.flat_outputs)

    @property
    def output_paths(self) -> list[tuple]:
        """The path (dict keys and positions) of each flat output in ``model.output``."""
        return list(self._graph().output_paths)

    @property
    def input_paths(self) -> list[tuple]:
        """The path (dict keys and positions) of each flat input in ``model.input``."""
        return list(self._graph().input_paths)

    def structure_text(self, role: str) -> str:
        """The model's inputs or outputs (``role``) written out by name, for error messages."""
        graph = self._graph()
        structure = graph.input_structure if role == "inputs" else graph.output_structure
        names = dict(zip(map(id, graph.flat_inputs if role == "inputs" else graph.flat_outputs),
                         self.input_names if role == "inputs" else self.output_names, strict=True))
        return describe_structure(structure, lambda t: names[id(t)], is_leaf=is_symbolic)

    @property
    def uses_key(self) -> bool:
        return any(layer.uses_key for layer in self.sublayers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer of the graph by name or by position in ``layers``."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"Model '{self.name}' has no layer named '{name}'; it has {[l.name for l in self.layers]}.")

    # ------------------------------------------------------------------ calling
    def match_inputs(self, inputs) -> list:
        """Values for the model's inputs as a flat list aligned with ``self.inputs``. Accepted, as in
        Keras 3: the model's input structure (lists, tuples and namedtuples interchangeable), a
        dict keyed by input name, or the values flat in ``self.inputs`` order; ``None`` for an
        ``Input(optional=True)`` left out."""
        graph = self._graph()
        names = self.input_names
        is_value = lambda v: not is_container(v)  # noqa: E731
        matched = matched_by_paths(inputs, graph.input_paths, is_leaf=is_value)
        if matched is not None:
            return matched
        if isinstance(inputs, dict):
            return self._inputs_by_name(inputs, names)
        if len(names) == 1:
            return [inputs[0]] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else [inputs]
        flat = leaves(inputs, is_leaf=is_value)
        # A dict of inputs is flattened in sorted key order: a flat list is unambiguous only when
        # the dict was written in that order (Keras 3 refuses it otherwise, too).
        keys_sorted = not isinstance(graph.input_structure, dict) or list(graph.input_structure) == names
        if isinstance(inputs, (list, tuple)) and len(flat) == len(names) and keys_sorted:
            return flat
        received = describe_structure(inputs, _value_text, is_leaf=is_value)
        hint = (
            "pass them in that structure, as a flat list in this order, or as a dict keyed by those names"
            if keys_sorted
            else "pass a dict keyed by those names"
        )
        raise LayerInputError(
            f"{describe_layer(self)} expects {len(names)} input(s) {names}, but received {len(flat)} value(s) "
            f"{received}; the inputs are structured as {self.structure_text('inputs')}: {hint}."
        )

    def _inputs_by_name(self, inputs: dict, names: list[str]) -> list:
        optional = {n for n, t in zip(names, self._graph().flat_inputs, strict=True) if _is_optional(t)}
        missing = [n for n in names if n not in inputs and n not in optional]
        unknown = [k for k in inputs if k not in names]
        if missing or unknown:
            raise LayerInputError(
                f"{describe_layer(self)} expects inputs named {names}; the dict given is missing "
                f"{missing} and has unknown keys {unknown}."
            )
        return [inputs.get(n) for n in names]

    def _check_input_value(self, index: int, tensor: SymbolicTensor, value):
        shape = tuple(value.shape)
        expected = tensor.shape
        compatible = len(shape) == len(expected) and all(
            e is None or not isinstance(s, int) or s == e for s, e in zip(shape, expected, strict=True)
        )
        if not compatible:
            shown = tuple(s if isinstance(s, int) else None for s in shape)
            raise LayerInputError(
                f"{describe_layer(self)}: input {index} ('{tensor.name}') must have shape {expected}, "
                f"but received shape {shown}."
            )
        if value.dtype != tensor.dtype:
            value = jnp.asarray(value, tensor.dtype)
        return value

    def call(self, inputs, training=False, key=None, mask=None):
        """Run the graph on arrays: ``inputs`` in the model's input structure (or a dict by name);
        returns outputs in the model's output structure. ``mask``: masks of the inputs
        (``(batch, timesteps)`` booleans, in the inputs' structure), as Keras's ``Model.call``."""
        return self.call_with_masks(inputs, training=training, key=key, mask=mask)[0]

    def call_with_masks(self, inputs, *, training=False, key=None, mask=None, folded=None):
        """``(outputs, output_masks)``: ``call``'s outputs and the mask of each (None where an
        output carries none), both in the model's output structure. ``folded``: a
        ``kfunc.folding.FoldedCall`` that runs the repeated blocks as scans (weights in the
        stacked layout; see ``kfunc.lower``)."""
        graph = self._graph()
        values = []
        for index, (tensor, value) in enumerate(zip(graph.flat_inputs, self.match_inputs(inputs), strict=True)):
            if value is None and not _is_optional(tensor):
                raise _missing_input(self, tensor)
            # An optional input left out reaches the layers it feeds as None (Keras 3).
            values.append(None if value is None else self._check_input_value(index, tensor, value))
        input_masks = None
        if has_mask(mask):
            input_masks = self.match_inputs(mask) if isinstance(mask, (list, tuple, dict)) else [mask]

        def call_node(position, node, args, kwargs, masks):
            layer = node.layer
            kwargs = dict(kwargs)
            kwargs.setdefault("training", training)
            if layer.uses_key and "key" not in kwargs:
                kwargs["key"] = None if key is None else jax.random.fold_in(key, position)
            return call_node_with_masks(layer, node, args, kwargs, masks)

        call_run = None if folded is None else (lambda run, value, mask: folded.run(run, value, mask, call_node))
        outputs, output_masks = run_graph(
            graph.plan, graph.flat_inputs, values, graph.output_structure, call_node, input_masks,
            folded_runs=() if folded is None else folded.runs, call_run=call_run,
        )
        return _mixed_outputs_in_float32(graph.output_structure, outputs), output_masks

    def _input_leaves(self, inputs, *, symbolic: bool) -> list:
        # None stands for an optional input left out; `call` checks that the input is optional.
        present = [leaf for leaf in leaves(inputs) if leaf is not None]
        return super()._input_leaves(present, symbolic=symbolic)

    @staticmethod
    def _shapes_of(inputs, *, batch_none: bool):
        """The shape of each input, in the inputs' (any nested) structure."""

        def shape(leaf):
            if leaf is None:
                return None
            s = tuple(leaf.shape)
            return (None,) + s[1:] if batch_none and s else s

        return map_leaves(shape, inputs)

    @staticmethod
    def _dtypes_of(inputs):
        return map_leaves(lambda leaf: None if leaf is None else leaf.dtype, inputs)

    def _masked_call(self, args, kwargs, previous_mask):
        self._input_leaves(args[0], symbolic=False)
        kwargs = self._accepted_kwargs(kwargs)
        kwargs["mask"] = kwargs.get("mask", previous_mask)
        return self.call_with_masks(*args, **kwargs)

    def compute_mask(self, inputs, mask=None):
        """The output masks of the graph for these inputs and input masks."""
        return self.call_with_masks(inputs, mask=mask)[1]

    def _call_arrays(self, args, kwargs):
        # The graph checks each input itself (shape, dtype, names), in `call`.
        self._input_leaves(args[0], symbolic=False)
        return self.call(*args, **self._accepted_kwargs(kwargs))

    def folded_blocks(self) -> list[list[list[str]]]:
        """The runs of structurally identical blocks that ``kfunc.lower`` and training (with
        ``compile(fold_repeated_blocks=True)``, the default) run as one ``lax.scan`` each: per run,
        the layer names of each block, e.g. ``[[["layer_normalization", "dense", "add"], ...]]``."""
        if not self.built or not getattr(self, "_graph_network", True):
            return []  # no graph yet (a Sequential waiting for data) or none at all (a subclassed model)
        graph = self._graph()
        return [list(run.block_layer_names()) for run in find_repeated_blocks(graph.plan.nodes, graph.flat_outputs)]

    def to_dot(self, show_shapes=False, show_dtype=False, show_layer_names=True, expand_nested=False,
               rankdir="TB", dpi=96) -> str:
        """The graph as Graphviz DOT source text; the arguments are ``kfunc.utils.plot_model``'s."""
        from kfunc.plotting import model_to_dot

        return model_to_dot(self, show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                            expand_nested=expand_nested, rankdir=rankdir, dpi=dpi)

    def export(self, path, *, example_inputs=None, params="baked", platforms=None):
        """Write the inference function to ``path`` with ``jax.export``; see ``kfunc.export.export``."""
        from kfunc.export import export

        return export(self, path, example_inputs=example_inputs, params=params, platforms=platforms)

    # ------------------------------------------------------------------ configs
    def get_config(self) -> dict:
        """The whole graph in Keras 3's format: ``name``, ``trainable``, ``layers`` (each layer's
        config and its ``inbound_nodes``), ``input_layers`` and ``output_layers``."""
        from kfunc.saving.keras_format import model_config

        return model_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The model ``config`` describes (from kfunc's or Keras 3's ``get_config``), with new
        weights; classes resolve only through kfunc, the registry and ``custom_objects``."""
        from kfunc.saving.serialization import model_from_config

        return model_from_config(cls, config, custom_objects)

    def to_json(self, **kwargs) -> str:
        """The model's config as JSON text (``kwargs`` go to ``json.dumps``); see ``models.model_from_json``."""
        from kfunc.saving.serialization import model_to_json

        return model_to_json(self, **kwargs)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, inputs={self.input_names}, outputs={self.output_names}>"


def _flat_shapes(tensors) -> tuple | list[tuple]:
    """One tensor's shape, or a list of the shapes of several (Keras 3's ``input_shape``)."""
    shapes = [t.shape for t in tensors]
    return shapes[0] if len(shapes) == 1 else shapes
