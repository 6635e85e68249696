"""Subclassed models: ``class MyModel(kfunc.Model)`` whose ``__init__`` makes layers and whose
``call(inputs, training=False)`` computes with them, as in Keras 3.

A subclass of ``Model`` that defines ``call`` gets ``SubclassedModel`` as its base in place of
the functional ``Model`` (``Model.__init_subclass__``), so ``MyModel()`` needs no inputs and
outputs. The model runs its own ``call`` in Python, which JAX traces: ``apply`` binds the
parameter pytree to the weights (``kfunc.core.binding``) and calls ``call`` with ``training`` as
a Python bool, so ``if training:`` branches choose what is traced, in ``fit`` as in ``predict``.
The layers are the attributes set in ``__init__`` (lists and dicts of layers too), and the
weights come in Keras 3's order: the model's own, then each layer's in assignment order.

The model is built on its first call on arrays or symbolic tensors, by ``build(input_shape)``,
or by the first ``fit`` / ``evaluate`` / ``predict`` (from the data). Building makes one
``Input`` per input (batch size ``None``) and calls the model on them once: the sublayers build
as ``call`` reaches them, and the symbolic outputs give ``model.outputs`` and the output names
that ``compile`` pairs losses with (``compile`` before the build waits for it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kfunc import config as config_lib
from kfunc.errors import GraphError, LayerConfigError, describe_layer
from kfunc.core.structures import flatten_with_paths
from kfunc.graph.node import flatten_symbolic
from kfunc.graph.tensor import is_symbolic
from kfunc.layers.base import Layer
from kfunc.layers.input import Input
from kfunc.models.custom_steps import refuse_custom_step
from kfunc.models.functional import Model
from kfunc.random.seed_generator import holds_seed_generator


class _Structure(NamedTuple):
    """The model's inputs (``Input`` tensors in the structure ``call`` takes) and the outputs of
    its call on them (in the structure ``call`` returns), each also flat."""

    input_structure: object
    output_structure: object
    flat_inputs: list
    flat_outputs: list
    input_paths: list  # the path (dict keys and positions) of each flat input, as Model's graph has them
    output_paths: list

    @classmethod
    def of(cls, inputs, outputs) -> _Structure:
        input_pairs = flatten_with_paths(inputs, is_leaf=is_symbolic)
        output_pairs = flatten_with_paths(outputs, is_leaf=is_symbolic)
        return cls(inputs, outputs, [t for _, t in input_pairs], [t for _, t in output_pairs],
                   [p for p, _ in input_pairs], [p for p, _ in output_pairs])


class SubclassedModel(Model):
    """The base of ``Model`` subclasses that define ``call``; see the module docstring."""

    _build_marks_built = True
    _graph_network = False  # computes with `call`: there is no graph of layer nodes to walk

    @classmethod
    def adopt(cls, user_class: type) -> None:
        """Make ``cls`` the base of ``user_class`` (and of each class between it and ``Model``)."""
        for klass in user_class.__mro__:
            if Model in klass.__bases__:
                klass.__bases__ = tuple(cls if base is Model else base for base in klass.__bases__)

    def __init__(self, *args, name=None, trainable=True, **kwargs):
        if args or "inputs" in kwargs or "outputs" in kwargs:
            # Keras 3 would keep the given graph for its layers but run the subclass's call instead;
            # then the graph kfunc saves, summarises and lowers would not be what runs, so refuse.
            raise GraphError(
                f"Model {type(self).__name__} defines call(), so it computes with call and takes no inputs and "
                "outputs (received them; kfunc does not run a call() over a given graph); either remove call() so "
                "the graph from inputs to outputs runs, or create the layers in __init__ and use them in call() "
                f"without passing inputs and outputs to {type(self).__name__}()."
            )
        Layer.__init__(self, name=name, trainable=trainable, **kwargs)
        self._compiled_cache = {}
        self._structure = None
        self._pending_compile = None

    def call(self, inputs, training=False):
        raise NotImplementedError(
            f"Model '{self.name}' ({type(self).__name__}) does not define call(inputs, training=False); a "
            "subclassed Model computes its outputs there."
        )

    # ------------------------------------------------------------------ building
    def build(self, input_shape) -> None:
        """Build for inputs of ``input_shape``: ``(None, features)``, or a list / dict of shapes
        for several inputs (the structure ``call`` takes). Floating inputs of ``floatx``."""
        self._record_structure(self._make_inputs(input_shape, None))

    def _build_from(self, input_shape, other_shapes: dict | None = None, dtypes=None) -> None:
        if type(self).build is not SubclassedModel.build:  # the user's build makes weights first
            self.build(input_shape, **(other_shapes or {}))
        self._record_structure(self._make_inputs(input_shape, dtypes))
        self.built = True

    def _build_from_values(self, inputs) -> None:
        """Build from the first arrays the model meets (their shapes and, for integer inputs such
        as token ids, their dtypes)."""
        shapes = _map_leaves(lambda v: tuple(np.shape(v)), inputs)
        dtypes = _map_leaves(lambda v: np.dtype(v.dtype) if hasattr(v, "dtype") else None, inputs)
        self._build_from(shapes, dtypes=dtypes)

    def _build_from_data(self, x) -> None:
        if self._structure is not None or x is None:
            return
        if not all(hasattr(leaf, "shape") for leaf in _leaves(x)):
            return  # the data checks will say what is wrong
        self._build_from_values(x)

    def _make_inputs(self, input_shape, dtypes):
        """``Input`` tensors for ``input_shape`` (a shape, or a list / dict of shapes), batch size
        ``None``; integer and boolean ``dtypes`` are kept, floating inputs are ``floatx``."""

        def make(shape, dtype, name):
            if not isinstance(shape, (tuple, list)) or not shape:
                raise LayerConfigError(
                    f"{describe_layer(self)}: an input shape must be a tuple with the batch axis first, e.g. "
                    f"(None, 16), received {shape!r}."
                )
            keep = dtype is not None and not np.issubdtype(dtype, np.floating)
            return Input(batch_shape=(None,) + tuple(shape)[1:], dtype=dtype if keep else config_lib.floatx(),
                         name=name)

        if isinstance(input_shape, dict):
            dtypes = dtypes if isinstance(dtypes, dict) else {}
            return {key: make(shape, dtypes.get(key), str(key)) for key, shape in input_shape.items()}
        if _is_shape(input_shape):
            return make(input_shape, dtypes, f"{self.name}_input")
        dtypes = dtypes if isinstance(dtypes, (list, tuple)) else [None] * len(input_shape)
        return [make(shape, dtype, f"{self.name}_input_{i + 1}")
                for i, (shape, dtype) in enumerate(zip(input_shape, dtypes, strict=True))]

    def _record_structure(self, inputs) -> None:
        """Call the model once on ``inputs`` (``Input`` tensors): builds the sublayers as ``call``
        reaches them and records the outputs."""
        if self._structure is not None:
            return
        self.built = True  # the symbolic call below must not build again
        try:
            outputs = Layer._call_symbolic(self, (inputs,), {})
        except Exception:
            self.built = False
            raise
        self._structure = _Structure.of(inputs, outputs)
        self._compiled_cache = {}
        self._check_unique_layer_names()
        if self._pending_compile is not None:
            args, kwargs = self._pending_compile
            self._pending_compile = None
            self.compile(*args, **kwargs)

    def _check_unique_layer_names(self) -> None:
        seen: dict[str, Layer] = {}
        for layer in self.sublayers:
            other = seen.setdefault(layer.name, layer)
            if other is not layer:
                raise GraphError(
                    f"Model '{self.name}' ({type(self).__name__}): two of its layers are named '{layer.name}' "
                    f"({type(other).__name__} and {type(layer).__name__}); weights are keyed by layer name, so "
                    "pass a distinct name= to one of them."
                )

    def _graph(self) -> _Structure:
        if self._structure is None:
            shape = self.__dict__.get("_build_input_shape")
            if not (self.built and shape is not None):
                raise GraphError(
                    f"Model '{self.name}' ({type(self).__name__}) is not built yet, so its inputs and outputs are "
                    "unknown: call it on data (model(x), fit, predict) or call model.build(input_shape) first."
                )
            self._record_structure(self._make_inputs(shape, None))
        return self._structure

    # ------------------------------------------------------------------ structure
    @property
    def layers(self) -> list[Layer]:
        """The layers held as attributes, in assignment order (Keras 3's ``model.layers``)."""
        return Layer.sublayers.fget(self)

    @property
    def sublayers(self) -> list[Layer]:
        return Layer.sublayers.fget(self)

    @property
    def uses_key(self) -> bool:
        return _any_uses_key(self)

    def folded_blocks(self) -> list:
        """Always empty: only graph models have node runs that lower to one ``lax.scan``."""
        return []

    @property
    def output_names(self) -> list[str]:
        """Dict outputs: their keys; otherwise ``output_1``, ``output_2`` ... in output order."""
        graph = self._graph()
        if isinstance(graph.output_structure, dict):  # keys sorted, as the flat outputs are
            return ["/".join(str(key) for key in path) for path in graph.output_paths]
        return [f"output_{i + 1}" for i in range(len(graph.flat_outputs))]

    @property
    def output_paths(self) -> list[tuple]:
        return list(self._graph().output_paths)

    # ------------------------------------------------------------------ calling
    def _call_arrays(self, args, kwargs):
        inputs = args[0]
        if not self.built:
            self._input_leaves(inputs, symbolic=False)
            self._build_from_values(inputs)
        elif self._structure is not None:
            inputs = self._as_call_inputs(inputs)
        return Layer._call_arrays(self, (inputs,) + tuple(args[1:]), kwargs)

    def _as_call_inputs(self, inputs):
        """Inputs given as a dict keyed by input name (as ``fit`` and ``predict`` pass them) in
        the structure ``call`` takes; anything else unchanged."""
        structure = self._structure.input_structure
        if isinstance(inputs, dict) and not isinstance(structure, dict) and set(inputs) == set(self.input_names):
            values = self.match_inputs(inputs)
            return values[0] if flatten_symbolic(structure) == [structure] else values
        return inputs

    def _masked_call(self, args, kwargs, previous_mask):
        # The outputs of `call` carry no masks (arrays hold none): a loss covers every step.
        return self._call_arrays(args, kwargs), None

    def call_with_masks(self, inputs, *, training=False, key=None, mask=None):
        return self(inputs, training=training, key=key), None

    def compute_mask(self, inputs, mask=None):
        return None

    # ------------------------------------------------------------------ training
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, **kwargs):
        """As ``Model.compile``; before the model is built, the settings wait for the build
        (the first ``fit`` / ``evaluate`` / ``predict`` or call), which needs the outputs."""
        refuse_custom_step(self, "train_step", "compile")
        if self._structure is None and not (self.built and "_build_input_shape" in self.__dict__):
            self._pending_compile = ((optimizer, loss, loss_weights, metrics), kwargs)
            self._trainer = None
            return
        super().compile(optimizer, loss, loss_weights, metrics, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        self._build_from_data(x)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._build_from_data(x)
        return super().evaluate(x, y, *args, **kwargs)

    def get_build_config(self) -> dict | None:
        """``{"input_shape": ...}`` (shapes with ``None`` batch, in the structure ``call`` takes)
        and the dtypes of the inputs, once built; what ``build_from_config`` builds from."""
        if not self.built:
            return None
        structure = self._graph().input_structure
        shapes = _map_leaves(lambda t: list(t.shape), structure, leaf=_is_tensor)
        dtypes = _map_leaves(lambda t: t.dtype.name, structure, leaf=_is_tensor)
        return {"input_shape": shapes, "input_dtype": dtypes}

    def build_from_config(self, config: dict | None) -> None:
        if config and not self.built:
            shapes = _map_leaves(lambda s: tuple(s), config["input_shape"], leaf=_is_shape)
            dtypes = config.get("input_dtype")
            dtypes = None if dtypes is None else _map_leaves(np.dtype, dtypes, leaf=lambda v: isinstance(v, str))
            self._build_from(shapes, dtypes=dtypes)

    def get_config(self) -> dict:
        """Keras 3's base config of a layer (``name``, ``trainable``, ``dtype``): a subclassed model
        has no graph to describe; subclasses add their ``__init__`` arguments to it."""
        return Layer.get_config(self)

    @classmethod
    def from_config(cls, config: dict):
        """``cls(**config)``: the model ``get_config()`` describes, unbuilt (Keras 3's default)."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _any_uses_key(model) -> bool:
    """Whether the model (a ``SeedGenerator`` it holds) or any layer inside it draws random numbers."""
    if holds_seed_generator(model):
        return True
    return any(layer.uses_key for layer in model.sublayers)


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer)) for d in value)


def _is_tensor(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _leaves(value) -> list:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _map_leaves(fn, value, *, leaf=_is_tensor):
    """``fn`` on each leaf of a dict / list / tuple structure (tuples become lists)."""
    if leaf(value):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_leaves(fn, v, leaf=leaf) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_leaves(fn, v, leaf=leaf) for v in value]
    return fn(value)


Model._subclassed_base = SubclassedModel
