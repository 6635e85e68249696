"""Layer: configuration, the weights it declares, and two ways to call it.

- Called on symbolic tensors (``Dense(64)(inputs)``) it builds its weights from the input shapes,
  infers its output shapes with ``jax.eval_shape`` over its own call, and records a ``Node``.
- Called on arrays it computes: ``call`` reads its weights through ``Variable.value``.

The pure functions are ``init(key) -> Variables(params, state)`` and
``apply(params, state, *inputs, training=False, key=None) -> (outputs, new_state)``: ``apply``
binds every weight to the pytree's leaf for one array call, so the result depends on its
arguments only and composes with ``jax.jit``, ``jax.grad`` and ``jax.vmap``.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kfunc import initializers as initializers_lib
from kfunc import naming
from kfunc.errors import (
    LayerConfigError,
    LayerInputTypeError,
    WeightsError,
    describe_layer,
    describe_value,
)
from kfunc.graph.infer import infer_outputs
from kfunc.graph.node import Node, flatten_symbolic
from kfunc.graph.tensor import SymbolicTensor, is_symbolic
from kfunc.layers.node_api import NodeAccess
from kfunc.layers.tree_paths import get_path, tree_from_paths
from kfunc.layers.variable import Variable, bind


class Variables(NamedTuple):
    """A model's weights as two nested dicts keyed by layer name, then weight name.

    ``params``: trainable weights (kernels, biases), what gradients are taken with respect to.
    ``state``: non-trainable weights (BatchNorm's moving statistics), returned updated by ``apply``.
    """

    params: dict
    state: dict


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, (str, bytes))


class Layer(NodeAccess):
    """Base class of every layer (and of ``Model``).

    Subclasses define ``build(input_shape)`` (declare weights with ``add_weight``) and
    ``call(inputs, ...)`` (compute on arrays; may accept ``training`` and ``key``).
    Class attribute ``uses_key``: whether ``call`` draws random numbers in training.
    """

    uses_key = False
    is_input_layer = False
    _autocast = True

    def __init__(
        self,
        *,
        name: str | None = None,
        trainable: bool = True,
        dtype=None,
        input_shape=None,
        batch_input_shape=None,
        batch_size: int | None = None,
        input_dim: int | None = None,
        **unknown,
    ):
        object.__setattr__(self, "_sublayer_slots", {})
        self.name = name if name is not None else naming.unique_name(naming.to_snake_case(type(self).__name__))
        if not isinstance(self.name, str) or not self.name:
            raise LayerConfigError(f"A layer name must be a non-empty string, received {self.name!r}.")
        if unknown:
            raise LayerConfigError(
                f"{describe_layer(self)} got unexpected keyword argument(s) {sorted(unknown)}; check "
                "the spelling against the Keras documentation of this layer."
            )
        self.trainable = bool(trainable)
        self.dtype = jnp.dtype(dtype if dtype is not None else jnp.float32)
        self.built = False
        self._own_variables: list[Variable] = []
        self._inbound_nodes: list[Node] = []
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size,) + tuple(input_shape)
        self._batch_input_shape = tuple(batch_input_shape) if batch_input_shape is not None else None
        self.input_spec = None

    # ------------------------------------------------------------------ sublayers
    def __setattr__(self, name, value):
        slots = self.__dict__.get("_sublayer_slots")
        if slots is not None and not name.startswith("_"):
            if isinstance(value, Layer) or (
                isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value)
            ):
                slots[name] = value
            else:
                slots.pop(name, None)
        object.__setattr__(self, name, value)

    @property
    def sublayers(self) -> list[Layer]:
        """Layers held as attributes (e.g. ``TimeDistributed.layer``), in assignment order."""
        found = []
        for value in self._sublayer_slots.values():
            found.extend(value if isinstance(value, (list, tuple)) else [value])
        return found

    # ------------------------------------------------------------------ weights
    def add_weight(
        self,
        name: str,
        shape,
        initializer="glorot_uniform",
        *,
        trainable: bool = True,
        dtype=None,
    ) -> Variable:
        """Declare a weight of ``shape``; returns the ``Variable`` (usable as an array in ``call``)."""
        if any(v.name == name for v in self._own_variables):
            raise LayerConfigError(f"{describe_layer(self)} already has a weight named '{name}'.")
        variable = Variable(
            name,
            shape,
            dtype if dtype is not None else self.dtype,
            initializers_lib.get(initializer),
            trainable=trainable,
            owner_name=self.name,
        )
        self._own_variables.append(variable)
        return variable

    @property
    def weights(self) -> list[Variable]:
        """All weights in Keras's order: own trainable, own non-trainable, then sublayers'."""
        ordered = [v for v in self._own_variables if v.trainable]
        ordered += [v for v in self._own_variables if not v.trainable]
        seen = {id(v) for v in ordered}
        for layer in self.sublayers:
            for variable in layer.weights:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    ordered.append(variable)
        return ordered

    @property
    def trainable_weights(self) -> list[Variable]:
        """Weights the optimizer updates: none if the layer (or a parent) is frozen."""
        if not self.trainable:
            return []
        found = [v for v in self._own_variables if v.trainable]
        seen = {id(v) for v in found}
        for layer in self.sublayers:
            for variable in layer.trainable_weights:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    found.append(variable)
        return found

    @property
    def non_trainable_weights(self) -> list[Variable]:
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    variables = weights

    def get_weights(self) -> list[np.ndarray]:
        """The weights' values as NumPy arrays, in ``self.weights`` order (Keras's)."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights) -> None:
        """Set every weight from a list in ``self.weights`` order; shapes must match exactly."""
        variables = self.weights
        weights = list(weights)
        if len(weights) != len(variables):
            raise WeightsError(
                f"{describe_layer(self)} has {len(variables)} weights "
                f"{[v.path for v in variables]}, but set_weights received {len(weights)} arrays."
            )
        mismatched = [
            f"{v.path}: expected {v.shape}, received {tuple(np.shape(w))}"
            for v, w in zip(variables, weights, strict=True)
            if tuple(np.shape(w)) != v.shape
        ]
        if mismatched:
            raise WeightsError(f"{describe_layer(self)}: set_weights shape mismatch for " + "; ".join(mismatched) + ".")
        for variable, value in zip(variables, weights, strict=True):
            variable.set_value(value)

    def count_params(self) -> int:
        return int(sum(v.size for v in self.weights))

    # ------------------------------------------------------------------ pure functions
    def variable_paths(self) -> list[tuple[Variable, tuple[str, ...]]]:
        """Each weight once, with its path in the params/state trees, e.g. ``("dense", "kernel")``.

        A weight reachable along several paths (a layer shared by two nested models) is stored
        at the first one, in ``weights`` order.
        """
        pairs: list[tuple[Variable, tuple[str, ...]]] = []
        seen: set[int] = set()
        stack: list[tuple[Layer, tuple[str, ...]]] = [(self, ())]
        while stack:
            layer, prefix = stack.pop()
            for variable in [v for v in layer._own_variables if v.trainable] + [
                v for v in layer._own_variables if not v.trainable
            ]:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    pairs.append((variable, prefix + (variable.name,)))
            stack.extend((sub, prefix + (sub.name,)) for sub in reversed(layer.sublayers))
        return pairs

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise LayerConfigError(
                f"{describe_layer(self)} has no weights yet, so {what} is not possible: call it on an "
                "Input (or arrays) first, or call build(input_shape)."
            )

    def init(self, key: jax.Array) -> Variables:
        """Fresh weights drawn with ``key`` (``fold_in(key, i)`` for the i-th weight), computed by
        one compiled function per set of weights."""
        self._require_built("init(key)")
        pairs = self.variable_paths()
        signature = tuple(id(v) for v, _ in pairs)
        cached = self.__dict__.get("_init_cache")
        if cached is None or cached[0] != signature:

            def draw(key):
                values = [v.initial_value(jax.random.fold_in(key, i)) for i, (v, _) in enumerate(pairs)]
                return self._to_variables(pairs, values)

            cached = self._init_cache = (signature, jax.jit(draw))
        return cached[1](key)

    def get_variables(self) -> Variables:
        """The layer's current weights as ``Variables(params, state)`` pytrees."""
        pairs = self.variable_paths()
        return self._to_variables(pairs, [v.value for v, _ in pairs])

    def set_variables(self, variables: Variables) -> None:
        """Store ``Variables(params, state)`` (e.g. after training with the pure functions)."""
        params, state = variables
        for variable, path in self.variable_paths():
            variable.set_value(get_path(params if variable.trainable else state, path, self))

    @staticmethod
    def _to_variables(pairs, values) -> Variables:
        params = tree_from_paths([(p, x) for (v, p), x in zip(pairs, values, strict=True) if v.trainable])
        state = tree_from_paths([(p, x) for (v, p), x in zip(pairs, values, strict=True) if not v.trainable])
        return Variables(params, state)

    def apply(self, params: dict, state: dict, *args, training: bool = False, key=None, **kwargs):
        """Pure call: ``(outputs, new_state)`` from weights given as pytrees and array inputs."""
        self._require_built("apply")
        pairs = self.variable_paths()
        values = [get_path(params if v.trainable else state, p, self) for v, p in pairs]
        variables = [v for v, _ in pairs]
        with bind(variables, values) as binding:
            outputs = self._call_arrays(args, dict(kwargs, training=training, key=key))
        updated = [binding.updates.get(v, x) for v, x in zip(variables, values, strict=True)]
        return outputs, self._to_variables(pairs, updated).state

    # ------------------------------------------------------------------ building
    def build(self, input_shape) -> None:
        """Declare weights for inputs of ``input_shape`` (a tuple, or a list of tuples)."""

    def _build_from(self, input_shape, other_shapes: dict | None = None) -> None:
        self.build(input_shape, **(other_shapes or {}))
        self.built = True

    def _other_build_shapes(self, args: tuple, kwargs: dict) -> dict:
        """Shapes for ``build``'s parameters after the first that are named ``<argument>_shape``
        (Keras 3's convention: ``build(query_shape, value_shape, key_shape=None)`` receives the
        shapes of ``call(query, value, key=None)``'s arguments); empty for most layers."""
        wanted = _build_shape_parameters(type(self))
        if not wanted:
            return {}
        names = _call_argument_names(type(self))
        given = dict(zip(names, args)) | {k: v for k, v in kwargs.items() if k in names}
        return {
            parameter: self._shapes_of(given[parameter[: -len("_shape")]], batch_none=False)
            for parameter in wanted
            if given.get(parameter[: -len("_shape")]) is not None
        }

    def check_input_shapes(self, input_shapes, input_dtypes) -> None:
        """Raise a clear error when inputs don't fit; default: check ``self.input_spec``."""
        if self.input_spec is None:
            return
        specs = self.input_spec if isinstance(self.input_spec, (list, tuple)) else [self.input_spec]
        shapes = input_shapes if isinstance(input_shapes, list) else [input_shapes]
        dtypes = input_dtypes if isinstance(input_dtypes, list) else [input_dtypes]
        for index, (spec, shape, dtype) in enumerate(zip(specs, shapes, dtypes)):
            if spec is not None:
                spec.check(self, index, shape, dtype)

    # ------------------------------------------------------------------ calling
    def call(self, inputs, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs, ...).")

    def __call__(self, *args, **kwargs):
        if not args and "inputs" in kwargs:
            args = (kwargs.pop("inputs"),)
        if not args:
            raise LayerInputTypeError(f"{describe_layer(self)} was called without inputs.")
        if flatten_symbolic((args, kwargs)):
            return self._call_symbolic(args, kwargs)
        return self._call_arrays(args, kwargs)

    def _input_leaves(self, inputs, *, symbolic: bool) -> list:
        leaves = jax.tree_util.tree_leaves(inputs, is_leaf=lambda x: is_symbolic(x) or x is None)
        for index, leaf in enumerate(leaves):
            ok = is_symbolic(leaf) if symbolic else _is_array(leaf) and not is_symbolic(leaf)
            if not ok:
                expected = (
                    "a symbolic tensor (from Input(...) or another layer's output) like the others"
                    if symbolic
                    else "a symbolic tensor (from Input(...) or another layer) or an array"
                )
                raise LayerInputTypeError(
                    f"{describe_layer(self)} expects input {index} to be {expected}, but received "
                    f"{describe_value(leaf)}. Pass kfunc.Input(...) tensors to build a model, or NumPy/JAX "
                    "arrays to compute."
                )
        return leaves

    @staticmethod
    def _shapes_of(inputs, *, batch_none: bool):
        """The shape of each input, in the inputs' structure (a tuple, or a list/dict of tuples)."""

        def shape(leaf):
            s = tuple(leaf.shape)
            return (None,) + s[1:] if batch_none and s else s

        return _map_inputs(shape, inputs)

    @staticmethod
    def _dtypes_of(inputs):
        return _map_inputs(lambda leaf: leaf.dtype, inputs)

    def _call_symbolic(self, args: tuple, kwargs: dict):
        inputs = args[0]
        self._input_leaves(inputs, symbolic=True)
        shapes = self._shapes_of(inputs, batch_none=False)
        if not self.built:
            self._build_from(shapes, self._other_build_shapes(args, kwargs))
        self.check_input_shapes(shapes, self._dtypes_of(inputs))
        structs = infer_outputs(self, args, kwargs)
        node_index = len(self._inbound_nodes)
        leaves, treedef = jax.tree_util.tree_flatten(structs)
        outputs = tuple(
            SymbolicTensor(s.shape, s.dtype, self._output_name(node_index, i, len(leaves)), self, node_index, i)
            for i, s in enumerate(leaves)
        )
        node = Node(
            layer=self,
            index=node_index,
            args=args,
            kwargs=kwargs,
            inputs=tuple(flatten_symbolic((args, kwargs))),
            outputs=outputs,
            output_structure=jax.tree_util.tree_unflatten(treedef, outputs),
        )
        self._inbound_nodes.append(node)
        return node.output_structure

    def _output_name(self, node_index: int, output_index: int, count: int) -> str:
        name = self.name if node_index == 0 else f"{self.name}#{node_index}"
        return name if count == 1 else f"{name}[{output_index}]"

    def _call_arrays(self, args: tuple, kwargs: dict):
        inputs = args[0]
        self._input_leaves(inputs, symbolic=False)
        if not self.built:
            self._build_from(self._shapes_of(inputs, batch_none=False), self._other_build_shapes(args, kwargs))
        self.check_input_shapes(self._shapes_of(inputs, batch_none=True), self._dtypes_of(inputs))
        if self._autocast:
            inputs = jax.tree_util.tree_map(self._autocast_one, inputs)
        return self.call(inputs, *args[1:], **self._accepted_kwargs(kwargs))

    def _autocast_one(self, x):
        dtype = getattr(x, "dtype", None)
        if dtype is not None and jnp.issubdtype(dtype, jnp.floating) and dtype != self.dtype:
            return jnp.asarray(x, self.dtype)
        return x

    def _accepted_kwargs(self, kwargs: dict) -> dict:
        accepted, takes_any = _call_parameters(type(self))
        if takes_any:
            return kwargs
        for name in kwargs:
            if name not in accepted and name not in ("training", "key", "mask"):
                raise LayerConfigError(
                    f"{describe_layer(self)}: call() got an unexpected keyword argument '{name}'; "
                    f"it accepts {sorted(accepted)}."
                )
        return {k: v for k, v in kwargs.items() if k in accepted}

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = self._batch_input_shape
        return config

    @classmethod
    def from_config(cls, config: dict):
        """The layer ``get_config()`` describes (unbuilt: weights come with the first call)."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _map_inputs(fn, inputs):
    """``fn`` on each input of a tensor, list, tuple or dict of inputs (one level deep)."""
    if isinstance(inputs, dict):
        return {k: fn(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [fn(x) for x in inputs]
    return fn(inputs)


_PARAMETER_CACHE: dict[type, tuple[frozenset, bool]] = {}


def _call_parameters(cls: type) -> tuple[frozenset, bool]:
    """Names ``cls.call`` accepts as keywords, and whether it takes ``**kwargs``."""
    cached = _PARAMETER_CACHE.get(cls)
    if cached is None:
        parameters = list(inspect.signature(cls.call).parameters.values())[2:]
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        names = frozenset(
            p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        cached = _PARAMETER_CACHE[cls] = (names, takes_any)
    return cached


def _build_shape_parameters(cls: type) -> tuple[str, ...]:
    """``build``'s parameters after ``input_shape`` whose names end in ``_shape``."""
    parameters = list(inspect.signature(cls.build).parameters.values())[2:]
    return tuple(p.name for p in parameters if p.name.endswith("_shape"))


def _call_argument_names(cls: type) -> list[str]:
    """``call``'s parameter names, ``self`` left out, in order."""
    return list(inspect.signature(cls.call).parameters)[1:]
