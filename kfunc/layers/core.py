"""Core layers: Dense, Activation, Dropout, Lambda, Embedding."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from kfunc import activations, constraints, regularizers
from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` on the last axis.

    Input ``(batch, ..., in)``, output ``(batch, ..., units)``; kernel ``(in, units)``, bias ``(units,)``.
    A mask on the input passes through unchanged.
    """

    _passes_masks = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = checks.positive_int(units, "units", "Dense")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        in_features = checks.known_size(input_shape[-1], "last dimension", self, input_shape)
        self.kernel = self.add_weight("kernel", (in_features, self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer, regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None
        self.input_spec = InputSpec(
            min_ndim=2,
            axes={-1: in_features},
            hint=f"A Dense kernel is ({in_features}, {self.units}): use a new Dense layer for inputs of another width.",
        )

    def call(self, inputs):
        outputs = inputs @ self.kernel.value
        if self.bias is not None:
            outputs = outputs + self.bias.value
        return self.activation(outputs)

    def get_config(self):
        return super().get_config() | {
            "units": self.units,
            "activation": activations.name_of(self.activation) or self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
            "kernel_constraint": self.kernel_constraint,
            "bias_constraint": self.bias_constraint,
        }


class Activation(Layer):
    """Applies an activation function elementwise; shape (and mask) unchanged."""

    _passes_masks = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return super().get_config() | {"activation": activations.name_of(self.activation) or self.activation}


class Dropout(Layer):
    """In training, zeroes each unit with probability ``rate`` and scales the rest by ``1/(1-rate)``.

    ``noise_shape`` (with ``None`` for sizes taken from the input) shares the mask along axes of
    size 1. Needs ``key`` in training; identity otherwise.
    """

    uses_key = True
    _passes_masks = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = checks.rate(rate, "rate", "Dropout")
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.seed = seed

    def call(self, inputs, training=False, key=None):
        if not training or self.rate == 0.0:
            return inputs
        if key is None:
            raise LayerConfigError(
                f"{describe_layer(self)} needs a random key in training mode: pass key=jax.random.key(...) "
                "to apply(), or use fit(), which provides one."
            )
        if self.seed is not None:
            key = jax.random.fold_in(key, self.seed)
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(inputs.shape, self.noise_shape, strict=True))
        keep = jax.random.bernoulli(key, 1.0 - self.rate, shape)
        return jnp.where(keep, inputs / (1.0 - self.rate), jnp.zeros((), inputs.dtype))

    def get_config(self):
        return super().get_config() | {"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class Lambda(Layer):
    """Wraps a function of arrays, ``function(inputs, **arguments)``, as a layer without weights.

    The output shape is inferred by tracing the function; ``output_shape`` (without the batch axis),
    when given, is checked against it. As in Keras, the function receives ``mask=`` and
    ``training=`` when its signature names them; the output's mask is ``mask(inputs, previous_mask)``
    (a function) or ``mask`` itself (a fixed mask), and without ``mask=`` the layer drops the
    input's mask (with a warning).
    """

    def __init__(self, function: Callable, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise LayerConfigError(f"Lambda needs a function of arrays, received {type(function).__name__}.")
        self.function = function
        self.output_shape_hint = tuple(output_shape) if output_shape is not None else None
        self.mask = mask
        self.supports_masking = mask is not None
        self.arguments = dict(arguments or {})
        try:
            names = inspect.signature(function).parameters
        except (TypeError, ValueError):  # a builtin without a signature
            names = {}
        self._function_takes = {name for name in ("mask", "training") if name in names}

    def call(self, inputs, mask=None, training=None):
        extra = {"mask": mask, "training": training}
        return self.function(inputs, **self.arguments, **{k: extra[k] for k in self._function_takes})

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def _call_symbolic(self, args, kwargs):
        outputs = super()._call_symbolic(args, kwargs)
        if self.output_shape_hint is not None and hasattr(outputs, "shape"):
            if outputs.shape[1:] != self.output_shape_hint:
                raise LayerInputError(
                    f"{describe_layer(self)}: the function returns shape {outputs.shape}, but "
                    f"output_shape={self.output_shape_hint} was given (without the batch axis)."
                )
        return outputs

    def get_config(self):
        # The function itself: a model file names it by its registered name (kfunc.saving.register).
        return super().get_config() | {
            "function": self.function,
            "output_shape": self.output_shape_hint,
            "mask": self.mask,
            "arguments": dict(self.arguments),
        }


class Embedding(Layer):
    """Looks up rows of ``embeddings (input_dim, output_dim)`` by integer index.

    Input ``(batch, ...)`` integers in ``[0, input_dim)``, output ``(batch, ..., output_dim)``.
    Float ids (e.g. from ``Input(shape=(None,))``, float32 by default) are cast to int32 as Keras
    does; on concrete arrays a float id with a fractional part is refused (inside ``jit`` values
    cannot be inspected, and the cast truncates, as in Keras).
    ``mask_zero=True``: index 0 is padding; the output carries the mask ``inputs != 0``
    ``(batch, ...)`` that downstream layers (RNNs, pooling, attention, losses) respect.
    """

    _autocast = False

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, input_length=None, **kwargs):
        if input_length is not None:
            kwargs.setdefault("input_shape", (input_length,))
        super().__init__(**kwargs)
        self.input_dim = checks.positive_int(input_dim, "input_dim", "Embedding")
        self.output_dim = checks.positive_int(output_dim, "output_dim", "Embedding")
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length
        self.input_spec = self._spec()

    def _spec(self):
        axes = {1: self.input_length} if self.input_length is not None else {}
        return InputSpec(min_ndim=1, axes=axes)

    def check_input_shapes(self, input_shapes, input_dtypes):
        super().check_input_shapes(input_shapes, input_dtypes)
        dtype = np.dtype(input_dtypes)
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
            raise LayerInputError(
                f"{describe_layer(self)}: input 0 must hold integer ids (an integer or float dtype), but received "
                f"dtype {dtype.name} (shape {input_shapes}); declare the input as Input(shape=..., dtype='int32')."
            )

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            "embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer,
            regularizer=self.embeddings_regularizer, constraint=self.embeddings_constraint,
        )

    def call(self, inputs):
        if jnp.issubdtype(inputs.dtype, jnp.floating) and not isinstance(inputs, jax.core.Tracer):
            fractional = np.asarray(inputs) % 1 != 0
            if fractional.any():
                raise LayerInputError(
                    f"{describe_layer(self)}: ids must be whole numbers, but the float input holds "
                    f"{float(np.asarray(inputs)[fractional].flat[0])!r}; pass integer ids (float ids are cast, as in Keras, "
                    "only when they have no fractional part)."
                )
        if inputs.dtype not in (jnp.int32, jnp.int64):
            inputs = inputs.astype(jnp.int32)
        return jnp.take(self.embeddings.value, inputs, axis=0)

    def compute_mask(self, inputs, mask=None):
        return jnp.not_equal(inputs, 0) if self.mask_zero else None

    def get_config(self):
        return super().get_config() | {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": self.embeddings_initializer,
            "embeddings_regularizer": self.embeddings_regularizer,
            "embeddings_constraint": self.embeddings_constraint,
            "mask_zero": self.mask_zero,
            "input_length": self.input_length,
        }
