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

import functools
import zlib
from typing import Any

import jax
import jax.numpy as jnp

from kfunc import mixed_precision, naming, seeding
from kfunc import regularizers as regularizers_lib
from kfunc.errors import (
    LayerConfigError,
    LayerInputTypeError,
    describe_layer,
    describe_value,
)
from kfunc.graph.node import Node, flatten_symbolic
from kfunc.graph.tensor import SymbolicTensor, is_symbolic
from kfunc.layers import added_losses
from kfunc.core.autocast import autocast
from kfunc.core.call_context import enclosing_training, training_scope
from kfunc.layers.node_api import NodeAccess
from kfunc.layers.signatures import build_shape_parameters, call_argument_names, call_parameters
from kfunc.layers.symbolic_call import SymbolicCalls, is_shape, tracing_call
from kfunc.core.tree_paths import get_path
from kfunc.core.variable import Variable, bind
from kfunc.layers.weights_api import WeightsAPI
from kfunc.random.seed_generator import holds_seed_generator


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, (str, bytes))


class Layer(NodeAccess, WeightsAPI, SymbolicCalls):
    """Base class of every layer (and of ``Model``).

    Subclasses define ``build(input_shape)`` (declare weights with ``add_weight``) and
    ``call(inputs, ...)`` (compute on arrays; may accept ``training`` and ``key``).
    ``uses_key``: whether ``call`` draws random numbers in training (a class attribute of the
    built-in random layers; a layer holding a ``kfunc.random.SeedGenerator`` does too).
    """

    is_input_layer = False
    _autocast = True
    activity_regularizer = None  # a penalty on each output, divided by the batch size (Keras)

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
        activity_regularizer=None,
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
        self.activity_regularizer = regularizers_lib.get(activity_regularizer)
        try:
            self._dtype_policy = mixed_precision.get(dtype)
        except mixed_precision.PolicyError as error:
            raise LayerConfigError(
                f"{describe_layer(self)}: dtype={dtype!r} is not a dtype or a dtype policy; pass a policy "
                "name such as 'mixed_bfloat16' or 'float32', a dtype, or a DTypePolicy."
            ) from error
        self.built = False
        self._own_variables: list[Variable] = []
        self._inbound_nodes: list[Node] = []
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size,) + tuple(input_shape)
        self._batch_input_shape = tuple(batch_input_shape) if batch_input_shape is not None else None
        self.input_spec = None

    @property
    def uses_key(self) -> bool:
        return holds_seed_generator(self)

    # ------------------------------------------------------------------ dtypes
    @property
    def dtype_policy(self) -> mixed_precision.DTypePolicy:
        """The layer's ``DTypePolicy``: its ``dtype=`` argument, or the global policy at creation."""
        return self._dtype_policy

    @property
    def dtype(self):
        """The dtype weights are stored in (Keras's alias of ``variable_dtype``)."""
        return jnp.dtype(self._dtype_policy.variable_dtype)

    @property
    def variable_dtype(self):
        return jnp.dtype(self._dtype_policy.variable_dtype)

    @property
    def compute_dtype(self):
        """The dtype of the computation: floating inputs are cast to it before ``call``."""
        return jnp.dtype(self._dtype_policy.compute_dtype)

    # ------------------------------------------------------------------ sublayers
    def __setattr__(self, name, value):
        slots = self.__dict__.get("_sublayer_slots")
        if isinstance(value, Variable) and "_own_variables" in self.__dict__:
            self._track_variable(value)
        if slots is not None and not name.startswith("_"):
            # A layer, or a list / tuple / dict holding layers at any depth (Keras 3 tracks these);
            # an empty list or dict too, since layers are often appended to it afterwards.
            if isinstance(value, Layer) or (
                isinstance(value, (list, tuple, dict)) and (not value or layers_in(value))
            ):
                slots[name] = value
            else:
                slots.pop(name, None)
        object.__setattr__(self, name, value)

    @property
    def sublayers(self) -> list[Layer]:
        """Layers held as attributes (e.g. ``TimeDistributed.layer``, or in lists and dicts held
        as attributes), in assignment order, each once."""
        found, seen = [], set()
        for value in self._sublayer_slots.values():
            for layer in layers_in(value):
                if id(layer) not in seen:
                    seen.add(id(layer))
                    found.append(layer)
        return found

    # ------------------------------------------------------------------ added losses
    def add_loss(self, loss) -> None:
        """Add a scalar ``loss`` (computed in ``call`` from its inputs or weights) to the training
        loss of the model this layer runs in; ``layer.losses`` lists it after an eager call."""
        added_losses.add_loss(self, loss)

    @property
    def losses(self) -> list:
        """Keras's ``layer.losses``: scalars added by the most recent eager call on arrays
        (``add_loss``, activity regularizers; this layer's and the layers' inside it), then each
        regularized trainable weight's penalty at its current value."""
        return added_losses.layer_losses(self)

    def apply(self, params: dict, state: dict, *args, training: bool = False, key=None, return_masks: bool = False,
              **kwargs):
        """Pure call: ``(outputs, new_state)`` from weights given as pytrees and array inputs;
        ``(outputs, new_state, output_masks)`` with ``return_masks`` (None where an output has no mask)."""
        self._require_built("apply")
        pairs = self.variable_paths()
        values = [get_path(params if v.trainable else state, p, self) for v, p in pairs]
        variables = [v for v, _ in pairs]
        call_kwargs = dict(kwargs, training=training, key=key)
        with bind(variables, values) as binding, added_losses.pure_call():
            if return_masks:
                outputs, masks = self._masked_call(args, call_kwargs, kwargs.get("mask"))
            else:
                outputs = self._call_arrays(args, call_kwargs)
        updated = [binding.updates.get(v, x) for v, x in zip(variables, values, strict=True)]
        new_state = self._to_variables(pairs, updated).state
        return (outputs, new_state, masks) if return_masks else (outputs, new_state)

    # ------------------------------------------------------------------ building
    # Whether a ``build`` defined by a subclass marks the layer built when it returns (Keras 3:
    # ``layer.build(shape)`` called directly builds the layer once; its first call does not
    # build it again). Models that track being built themselves turn it off.
    _build_marks_built = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if build is not None and cls._build_marks_built and not getattr(build, "_marks_built", False):
            cls.build = _marking_built(build)

    def build(self, input_shape) -> None:
        """Declare weights for inputs of ``input_shape`` (a tuple, or a list of tuples); marks the
        layer built."""
        self.__dict__.setdefault("_build_input_shape", input_shape)
        self.built = True

    def _build_from(self, input_shape, other_shapes: dict | None = None) -> None:
        self.build(input_shape, **(other_shapes or {}))
        self.built = True

    @tracing_call
    def compute_output_shape(self, input_shape):
        """The output shape (a tuple with ``None`` for unknown sizes, or a structure of them) for
        inputs of ``input_shape`` (``(batch, ...)``, or a list / dict of such shapes), found by
        tracing ``call`` as the symbolic call does; builds the layer first if needed."""
        inputs = _map_shapes(lambda shape: SymbolicTensor(shape, self.compute_dtype, "shape", None, 0, 0), input_shape)
        if not self.built:
            self._build_from(_map_shapes(tuple, input_shape))
        structs = self._output_structs((inputs,), {})
        return jax.tree_util.tree_map(lambda s: tuple(s.shape), structs)

    def _other_build_shapes(self, args: tuple, kwargs: dict) -> dict:
        """Shapes for ``build``'s parameters after the first that are named ``<argument>_shape``
        (Keras 3's convention: ``build(query_shape, value_shape, key_shape=None)`` receives the
        shapes of ``call(query, value, key=None)``'s arguments); empty for most layers."""
        wanted = build_shape_parameters(type(self))
        if not wanted:
            return {}
        names = call_argument_names(type(self))
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

    # ------------------------------------------------------------------ masks
    @property
    def supports_masking(self) -> bool:
        """Whether the layer passes masks on (``compute_mask``); True for layers that define
        ``compute_mask`` or set ``self.supports_masking = True``, as in Keras 3."""
        explicit = self.__dict__.get("_supports_masking")
        if explicit is not None:
            return explicit
        return type(self).compute_mask is not Layer.compute_mask or type(self)._passes_masks

    @supports_masking.setter
    def supports_masking(self, value: bool) -> None:
        self.__dict__["_supports_masking"] = bool(value)

    _passes_masks = False  # built-in layers that keep the timesteps set this instead of the property

    def compute_mask(self, inputs, mask=None):
        """The mask of the output, ``(batch, timesteps)`` booleans or None, given the inputs and
        their mask; by default the input mask, unchanged."""
        return mask

    def _masked_call(self, args: tuple, kwargs: dict, previous_mask):
        """``(outputs, output_masks)`` of one call on arrays; ``kwargs`` already hold the masks
        ``call`` receives (see ``kfunc.graph.masks``)."""
        outputs = self._call_arrays(args, kwargs)
        if not self.supports_masking:
            return outputs, None
        return outputs, self.compute_mask(args[0], previous_mask)

    def __call__(self, *args, **kwargs):
        if not args and "inputs" in kwargs:
            args = (kwargs.pop("inputs"),)
        if not args:
            raise LayerInputTypeError(f"{describe_layer(self)} was called without inputs.")
        if flatten_symbolic((args, kwargs)):
            return self._call_symbolic(args, kwargs)
        with added_losses.eager_call(self):
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

    def _call_arrays(self, args: tuple, kwargs: dict):
        inputs = args[0]
        self._input_leaves(inputs, symbolic=False)
        if not self.built:
            self._build_from(self._shapes_of(inputs, batch_none=False), self._other_build_shapes(args, kwargs))
        self.check_input_shapes(self._shapes_of(inputs, batch_none=True), self._dtypes_of(inputs))
        if self._autocast:
            inputs = jax.tree_util.tree_map(self._autocast_one, inputs)
        # Under a mixed policy the weights read in the compute dtype while `call` runs; otherwise
        # as stored, also when an enclosing mixed layer's scope is open.
        policy = self._dtype_policy
        kwargs = self._with_enclosing_call(kwargs)
        # The call's key (if any) is where kfunc.random draws through a SeedGenerator come from.
        with autocast(jnp.dtype(policy.compute_dtype) if policy.is_mixed else None), \
                seeding.call_key_scope(kwargs.get("key")), training_scope(kwargs.get("training")):
            outputs = self.call(inputs, *args[1:], **self._accepted_kwargs(kwargs))
        if self.activity_regularizer is not None:
            added_losses.add_activity_loss(self, outputs)
        return outputs

    # The keyword of ``call`` that takes the random key (MultiHeadAttention's ``key`` is a tensor).
    _random_key_argument = "key"

    def _with_enclosing_call(self, kwargs: dict) -> dict:
        """``kwargs`` with what a layer called inside another layer's ``call`` inherits, as in
        Keras 3: the enclosing ``training`` flag when none is given, and a key of its own drawn
        from the enclosing call's key (folded with this layer's name and its draw count) when it
        draws random numbers and was given none."""
        if kwargs.get("training") is None and enclosing_training() is not None:
            kwargs = dict(kwargs, training=enclosing_training())
        argument = self._random_key_argument
        if kwargs.get(argument) is None and self.uses_key:
            scope = seeding.current_call_key()
            if scope is not None:
                own = jax.random.fold_in(scope.key, zlib.crc32(self.name.encode()) & 0x7FFFFFFF)
                kwargs = dict(kwargs, **{argument: jax.random.fold_in(own, scope.next_draw(self))})
        return kwargs

    def _autocast_one(self, x):
        """A floating input cast to the compute dtype; any other input unchanged."""
        dtype = getattr(x, "dtype", None)
        if dtype is not None and jnp.issubdtype(dtype, jnp.floating) and dtype != self.compute_dtype:
            return jnp.asarray(x, self.compute_dtype)
        return x

    def _accepted_kwargs(self, kwargs: dict) -> dict:
        accepted, takes_any = call_parameters(type(self))
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
        config = {"name": self.name, "trainable": self.trainable, "dtype": self._dtype_policy.name}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = self._batch_input_shape
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = self.activity_regularizer
        return config

    @classmethod
    def from_config(cls, config: dict):
        """The layer ``get_config()`` describes (unbuilt: weights come with the first call)."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def layers_in(value) -> list:
    """The layers in ``value``: itself if a layer, else those inside a list, tuple or dict (at
    any depth, in order)."""
    if isinstance(value, Layer):
        return [value]
    found = []
    if isinstance(value, (list, tuple, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            found.extend(layers_in(item))
    return found


def _marking_built(build):
    """``build`` that marks the layer built and remembers its input shape when it returns."""

    @functools.wraps(build)
    def build_and_mark(self, *args, **kwargs):
        build(self, *args, **kwargs)
        if args:
            self.__dict__.setdefault("_build_input_shape", args[0])
        self.built = True

    build_and_mark._marks_built = True
    return build_and_mark


def _map_shapes(fn, shapes):
    """``fn`` on each shape of a shape, a list / tuple of shapes or a dict of shapes."""
    if isinstance(shapes, dict):
        return {k: _map_shapes(fn, v) for k, v in shapes.items()}
    if is_shape(shapes):
        return fn(tuple(shapes))
    return [_map_shapes(fn, s) for s in shapes]


def _map_inputs(fn, inputs):
    """``fn`` on each input of a tensor, list, tuple or dict of inputs (one level deep)."""
    if isinstance(inputs, dict):
        return {k: fn(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [fn(x) for x in inputs]
    return fn(inputs)
