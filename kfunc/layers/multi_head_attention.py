"""MultiHeadAttention: Keras 3's layer, weights laid out as its ``EinsumDense`` projections.

``call(query (batch, T, dim), value (batch, S, dim_v), key (batch, S, dim_k) = value)`` returns
``(batch, T, dim)`` (or ``(batch, T, *output_shape)``). Weights, in Keras's ``get_weights()``
order, under the sublayers ``query``, ``key``, (``gate``,) ``value``, ``attention_output``:
kernels ``(dim, num_heads, key_dim)``, ``(dim_k, num_heads, key_dim)``,
(``(dim, num_heads, value_dim)``,) ``(dim_v, num_heads, value_dim)`` and
``(num_heads, value_dim, *output_shape)``, each with a bias of the kernel's output axes.

Naming: Keras's ``call`` takes the attention key tensor as ``key``, which is the name other kfunc
layers use for the random key. Here the random key for dropout is ``dropout_key=`` on direct
calls; ``fit`` and ``apply(..., key=...)`` deliver it by themselves, and a ``key`` tensor is
always passed on as the third positional argument.
"""

from __future__ import annotations

import inspect
import math
import string

import jax
import jax.numpy as jnp
import numpy as np

from kfunc import activations, constraints, regularizers
from kfunc.errors import (
    LayerConfigError,
    LayerInputError,
    LayerInputTypeError,
    describe_layer,
    describe_value,
)
from kfunc.layers import checks
from kfunc.layers.attention import attention_dropout, causal_mask, sizes_differ
from kfunc.layers.base import Layer


class _Projection(Layer):
    """``activation(tensordot(inputs, kernel) + bias)`` over the last ``len(contracted)`` axes, as
    Keras's ``EinsumDense`` inside ``MultiHeadAttention``: kernel ``(*contracted, *output_axes)``,
    bias ``output_axes``. Input ``(batch, ..., *contracted)``, output ``(batch, ..., *output_axes)``."""

    def __init__(self, contracted_rank, output_axes, *, use_bias, activation=None, **weight_options):
        layer_options = {k: weight_options.pop(k) for k in ("name", "dtype")}
        super().__init__(**layer_options)
        self.contracted_rank = contracted_rank
        self.output_axes = tuple(output_axes)
        self.use_bias = use_bias
        self.activation = activations.get(activation)
        self.weight_options = weight_options  # {kernel,bias}_{initializer,regularizer,constraint}

    def build(self, input_shape):
        contracted = tuple(input_shape[len(input_shape) - self.contracted_rank:])
        self.kernel = self._weight("kernel", contracted + self.output_axes)
        self.bias = self._weight("bias", self.output_axes) if self.use_bias else None

    def _weight(self, name, shape):
        options = self.weight_options
        return self.add_weight(name, shape, options[f"{name}_initializer"],
                               regularizer=options[f"{name}_regularizer"], constraint=options[f"{name}_constraint"])

    def call(self, inputs):
        rank = self.contracted_rank
        contracted = (list(range(inputs.ndim - rank, inputs.ndim)), list(range(rank)))
        outputs = jnp.tensordot(inputs, self.kernel.value, axes=contracted)
        if self.bias is not None:
            outputs = outputs + self.bias.value
        return self.activation(outputs)


class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention (Vaswani et al., 2017), Keras 3's arguments.

    ``attention_axes``: the axes of the query attended over (default: every axis between batch and
    features); the others act as batch axes. ``dropout`` drops attention probabilities in training.
    Masks: boolean, ``True`` = attend; ``query_mask (batch, T)``, ``value_mask``/``key_mask
    (batch, S)`` (rank-3 inputs), ``attention_mask (batch, T, S)`` (broadcast over heads), and
    ``use_causal_mask``/``sliding_window`` (rank-3 inputs), all combined with "and". A query whose
    keys are all masked gets, as in Keras, zero probabilities (its output is the output bias) when
    the scores are returned, ``dropout`` is set or the inputs have rank > 3, and otherwise the
    same weight on every key.
    """

    _passes_masks = True  # the output keeps the query's mask, as in Keras

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, sliding_window=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 use_gate=False, seed=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        cls = "MultiHeadAttention"
        self.num_heads = checks.positive_int(num_heads, "num_heads", cls)
        self.key_dim = checks.positive_int(key_dim, "key_dim", cls)
        self.value_dim = self.key_dim if value_dim is None else checks.positive_int(value_dim, "value_dim", cls)
        self.dropout = checks.rate(dropout, "dropout", cls)
        self.use_bias = bool(use_bias)
        self.output_shape_arg = _output_shape(output_shape)
        self.attention_axes = _axes(attention_axes)
        self.sliding_window = (
            None if sliding_window is None else checks.positive_int(sliding_window, "sliding_window", cls)
        )
        if flash_attention:
            raise LayerConfigError(
                "MultiHeadAttention(flash_attention=True) is not supported by kfunc: attention is computed "
                "with XLA einsums; leave flash_attention=None."
            )
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.use_gate = bool(use_gate)
        self.seed = seed

    @property
    def uses_key(self) -> bool:
        return self.dropout > 0

    _random_key_argument = "dropout_key"  # `key` is the attention key tensor, as in Keras

    # ------------------------------------------------------------------ calling
    def __call__(self, *args, **kwargs):
        # The query, value and key tensors travel positionally, so that `key=` in a node's or an
        # apply's keywords is only ever the random key (see the module docstring).
        try:
            bound = _CALL_SIGNATURE.bind_partial(*args, **kwargs)
        except TypeError as error:
            raise LayerInputTypeError(
                f"{describe_layer(self)}: {error}; call it as layer(query, value, key=None, ...)."
            ) from None
        arguments = dict(bound.arguments)
        tensors = [arguments.pop(name, None) for name in ("query", "value", "key")]
        for index, (name, tensor) in enumerate(zip(("query", "value", "key"), tensors, strict=True)):
            if tensor is None and index < 2:
                raise LayerInputTypeError(f"{describe_layer(self)} was called without a {name} tensor.")
            if index == 2 and tensor is not None and _is_random_key(tensor):
                raise LayerInputTypeError(
                    f"{describe_layer(self)}: key= is the attention key tensor, as in Keras, but received a "
                    "random key; pass the random key for dropout as dropout_key=."
                )
            if tensor is not None and not (hasattr(tensor, "shape") and hasattr(tensor, "dtype")):
                raise LayerInputTypeError(
                    f"{describe_layer(self)}: {name} must be a tensor or an array, but received "
                    f"{describe_value(tensor)}."
                )
        tensors = tensors if tensors[2] is not None else tensors[:2]
        return super().__call__(*tensors, **arguments)

    def _call_arrays(self, args, kwargs):
        kwargs = dict(kwargs)
        random_key = kwargs.pop("key", None)
        if random_key is not None and jnp.issubdtype(getattr(random_key, "dtype", jnp.uint32), jnp.floating):
            raise LayerInputTypeError(
                f"{describe_layer(self)}: the key tensor must be passed positionally to apply(), "
                "apply(params, state, query, value, key); apply's key= is the random key."
            )
        if random_key is not None and kwargs.get("dropout_key") is None:
            kwargs["dropout_key"] = random_key
        return super()._call_arrays(args, kwargs)

    # ------------------------------------------------------------------ building
    def _check_shapes(self, query, value, key):
        """Ranks and sizes that attention needs; ``None`` or symbolic sizes match anything."""
        shapes = {"query": _shown(query), "value": _shown(value), "key": _shown(key)}
        for index, (name, shape) in enumerate(shapes.items()):
            if len(shape) < 3:
                raise LayerInputError(
                    f"{describe_layer(self)}: {name} (input {index}) must have rank >= 3, "
                    f"(batch, timesteps, features), but received shape {shape}."
                )
        if len({len(s) for s in shapes.values()}) != 1:
            raise LayerInputError(
                f"{describe_layer(self)}: query, value and key must have the same rank, but received shapes "
                f"{shapes['query']}, {shapes['value']} and {shapes['key']}."
            )
        if any(sizes_differ(a, b) for a, b in zip(value[1:-1], key[1:-1], strict=True)):
            raise LayerInputError(
                f"{describe_layer(self)}: value and key must have the same shape except the last axis, but "
                f"received value shape {shapes['value']} and key shape {shapes['key']}."
            )
        if self.built:
            attended = set(self._axes)
            for axis in range(1, len(query) - 1):
                if axis not in attended and sizes_differ(query[axis], value[axis]):
                    raise LayerInputError(
                        f"{describe_layer(self)}: axis {axis} is not an attention axis, so query and value must "
                        f"have the same size there, but received query shape {shapes['query']} and value "
                        f"shape {shapes['value']}."
                    )
            for name, shape, dense in (("query", query, self.query_dense), ("value", value, self.value_dense),
                                       ("key", key, self.key_dense)):
                expected = dense.kernel.shape[0]
                if sizes_differ(shape[-1], expected):
                    raise LayerInputError(
                        f"{describe_layer(self)} was built for {name} tensors of {expected} features, but "
                        f"received {name} shape {shapes[name]}; use a new layer for inputs of another width."
                    )

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        self._check_shapes(query_shape, value_shape, key_shape)
        rank = len(query_shape)
        axes = tuple(range(1, rank - 1)) if self.attention_axes is None else tuple(
            a + rank if a < 0 else a for a in self.attention_axes
        )
        if not axes or any(not 1 <= a <= rank - 2 for a in axes) or len(set(axes)) != len(axes):
            raise LayerConfigError(
                f"{describe_layer(self)}: attention_axes={self.attention_axes} must name distinct axes of the "
                f"query between batch and features, 1 to {rank - 2} (or -{rank - 1} to -2), for query shape "
                f"{tuple(query_shape)}."
            )
        self._axes = axes
        self._dot_equation, self._combine_equation = _attention_equations(rank + 1, axes)
        sizes = {}
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            sizes[name] = checks.known_size(shape[-1], f"last dimension (features) of the {name}", self, shape)
        common = {
            "use_bias": self.use_bias, "dtype": self.dtype_policy,
            "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer, "bias_regularizer": self.bias_regularizer,
            "kernel_constraint": self.kernel_constraint, "bias_constraint": self.bias_constraint,
        }
        heads = self.num_heads
        # Assignment order is the weights' order: Keras's query, key, gate, value, attention_output.
        self.query_dense = _Projection(1, (heads, self.key_dim), name="query", **common)
        self.key_dense = _Projection(1, (heads, self.key_dim), name="key", **common)
        if self.use_gate:
            self.gate_dense = _Projection(1, (heads, self.value_dim), activation="sigmoid", name="gate", **common)
        self.value_dense = _Projection(1, (heads, self.value_dim), name="value", **common)
        output_axes = self.output_shape_arg or (sizes["query"],)
        self.output_dense = _Projection(2, output_axes, name="attention_output", **common)
        for dense, shape in ((self.query_dense, query_shape), (self.key_dense, key_shape),
                             (self.value_dense, value_shape), (self.output_dense, (heads, self.value_dim))):
            dense._build_from(tuple(shape))
        if self.use_gate:
            self.gate_dense._build_from(tuple(query_shape))

    # ------------------------------------------------------------------ computing
    @staticmethod
    def _project(dense: _Projection, inputs):
        return dense._call_arrays((inputs,), {})

    def _attention_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask):
        """The boolean mask, broadcastable to ``(batch, <other axes>, T..., S...)``, or ``None``."""
        rank3 = {"query_mask": query_mask, "value_mask": value_mask, "key_mask": key_mask,
                 "use_causal_mask": use_causal_mask or None, "sliding_window": self.sliding_window}
        given = [name for name, v in rank3.items() if v is not None]
        if given and query.ndim != 3:
            raise LayerInputError(
                f"{describe_layer(self)}: {', '.join(given)} need rank-3 inputs (batch, timesteps, features), "
                f"but the query has shape {_shown(query.shape)}; pass attention_mask instead."
            )
        parts = []
        if query_mask is not None:
            parts.append(jnp.expand_dims(jnp.asarray(query_mask).astype(bool), -1))  # (batch, T, 1)
        for mask in (value_mask, key_mask):
            if mask is not None:
                parts.append(jnp.expand_dims(jnp.asarray(mask).astype(bool), -2))  # (batch, 1, S)
        if use_causal_mask:
            parts.append(causal_mask(query.shape[1], value.shape[1]))
        if self.sliding_window is not None:
            shape = (1, query.shape[1], value.shape[1])
            rows, columns = (jax.lax.broadcasted_iota(jnp.int32, shape, axis) for axis in (1, 2))
            parts.append(jnp.abs(rows - columns) < self.sliding_window)
        if attention_mask is not None:
            parts.append(jnp.asarray(attention_mask).astype(bool))
        if not parts:
            return None
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part
        return combined

    def _masked_softmax(self, scores, mask, *, empty_rows_attend_nothing: bool):
        """Softmax over the key axes (the last ``len(axes)``); masked entries get probability 0.

        A query with every key masked gets zero probabilities if ``empty_rows_attend_nothing``,
        else the same probability for every key (what a plain masked softmax gives)."""
        softmax_axes = tuple(range(scores.ndim - len(self._axes), scores.ndim))
        if mask is None:
            return jax.nn.softmax(scores, axis=softmax_axes)
        if mask.ndim > scores.ndim:
            raise LayerInputError(
                f"{describe_layer(self)}: the attention mask has shape {_shown(mask.shape)}, more axes than the "
                f"attention scores {_shown(scores.shape)} (batch, heads, T, S); pass attention_mask as "
                "(batch, T, S)."
            )
        # The mask has no heads axis: insert axes just before the query's attention axes.
        position = max(mask.ndim - 2 * len(self._axes), 0)
        mask = mask.reshape(mask.shape[:position] + (1,) * (scores.ndim - mask.ndim) + mask.shape[position:])
        negative = jnp.asarray(-3e4 if scores.dtype == jnp.float16 else -1e9, scores.dtype)
        probabilities = jax.nn.softmax(jnp.where(mask, scores, negative), axis=softmax_axes)
        if not empty_rows_attend_nothing:
            return probabilities
        return jnp.where(mask, probabilities, jnp.zeros((), probabilities.dtype))

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
             return_attention_scores=False, training=None, use_causal_mask=False, *, dropout_key=None):
        """``query (batch, T, dim)``, ``value (batch, S, dim_v)``, ``key (batch, S, dim_k)``; returns
        ``(batch, T, dim)`` and, with ``return_attention_scores``, the probabilities
        ``(batch, num_heads, T, S)`` (before dropout). ``dropout_key``: the random key in training."""
        value = self._autocast_one(value)
        key = value if key is None else self._autocast_one(key)
        self._check_shapes(query.shape, value.shape, key.shape)
        mask = self._attention_mask(query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask)
        scale = jnp.asarray(1.0 / math.sqrt(self.key_dim), query.dtype)
        projected_query = self._project(self.query_dense, query) * scale
        scores = jnp.einsum(self._dot_equation, self._project(self.key_dense, key), projected_query)
        # Keras's own two paths differ for a query whose keys are all masked: its fused attention
        # (no dropout, no scores returned, rank-3 inputs) averages every value there, its explicit
        # softmax gives zero weights. The same choice here keeps the numbers equal to Keras's.
        fused_in_keras = self.dropout == 0 and not return_attention_scores and query.ndim == 3
        probabilities = self._masked_softmax(scores, mask, empty_rows_attend_nothing=not fused_in_keras)
        dropped = probabilities
        if training and self.dropout > 0:
            dropped = attention_dropout(self, probabilities, rate=self.dropout, seed=self.seed, key=dropout_key,
                                        key_argument="dropout_key")
        attended = jnp.einsum(self._combine_equation, dropped, self._project(self.value_dense, value))
        if self.use_gate:
            attended = attended * self._project(self.gate_dense, query)
        outputs = self._project(self.output_dense, attended)
        return (outputs, probabilities) if return_attention_scores else outputs

    def get_config(self):
        return super().get_config() | {
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self.output_shape_arg,
            "attention_axes": self.attention_axes,
            "sliding_window": self.sliding_window,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
            "kernel_constraint": self.kernel_constraint,
            "bias_constraint": self.bias_constraint,
            "use_gate": self.use_gate,
            "seed": self.seed,
        }


_CALL_SIGNATURE = inspect.signature(MultiHeadAttention.call).replace(
    parameters=list(inspect.signature(MultiHeadAttention.call).parameters.values())[1:]
)


def _attention_equations(rank: int, axes: tuple[int, ...]) -> tuple[str, str]:
    """Einsum equations for projected tensors of ``rank`` axes ``(batch, ..., heads, channels)``.

    Scores: ``key, query -> (batch and other non-attended axes, heads, query axes, key axes)``;
    combination: ``probabilities, value -> query-shaped``. The query's attended axes get letters
    of their own in the key, every other axis (channels included) is shared.
    """
    letters = iter(string.ascii_lowercase)
    query = [next(letters) for _ in range(rank)]
    source = [next(letters) if i in axes else query[i] for i in range(rank)]
    shared = [query[i] for i in range(rank - 1) if i not in axes]  # batch, other axes, heads
    scores = "".join(shared + [query[i] for i in axes] + [source[i] for i in axes])
    query_s, source_s = "".join(query), "".join(source)
    return f"{source_s},{query_s}->{scores}", f"{scores},{source_s}->{query_s}"


def _output_shape(value):
    if value is None or value == () or value == []:
        return None
    values = (value,) if isinstance(value, (int, np.integer)) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0 for v in values):
        raise LayerConfigError(
            f"MultiHeadAttention: output_shape must be a positive int or a tuple of positive ints (the output's "
            f"shape after the batch and query axes), received {value!r}."
        )
    return tuple(int(v) for v in values)


def _axes(value):
    if value is None:
        return None
    values = (value,) if isinstance(value, (int, np.integer)) else value
    if not isinstance(values, (list, tuple)) or not values or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values
    ):
        raise LayerConfigError(
            f"MultiHeadAttention: attention_axes must be None, an int or a tuple of ints, received {value!r}."
        )
    return tuple(int(v) for v in values)


def _is_random_key(value) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _shown(shape) -> tuple:
    """A shape for messages: sizes unknown at this point (symbolic while shapes are inferred) as None."""
    return tuple(d if isinstance(d, int) else None for d in shape)

