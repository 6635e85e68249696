"""Activation layers with arguments: Softmax, ReLU, LeakyReLU, PReLU, ELU, and Identity.

Each keeps the input's shape ``(batch, ...)`` and passes its mask on, as Keras 3's do. Only
``PReLU`` has a weight: ``alpha``, shaped like one example with the ``shared_axes`` set to 1.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from kfunc import constraints, regularizers
from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec


def _non_negative(value, argument: str, layer_class: str, meaning: str, *, allow_none: bool = False):
    """A number >= 0 (or ``None`` where ``allow_none``), as a float."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value < 0:
        raise LayerConfigError(
            f"{layer_class}: {argument} is {meaning} and must be a number >= 0"
            f"{' or None' if allow_none else ''}, received {value!r}."
        )
    return float(value)


def _large_negative(dtype) -> float:
    """A logit that softmax turns into (almost) zero without overflowing ``dtype``."""
    return -3e4 if jnp.dtype(dtype) == jnp.float16 else -1e9


class Softmax(Layer):
    """``exp(x) / sum(exp(x))`` over ``axis`` (an int or a list of ints).

    ``call(inputs, mask=None)``: ``mask`` (booleans, or numbers where > 0.5 means keep) broadcasts
    to ``inputs`` from the trailing axes; masked positions get probability 0. A mask the graph
    carries (e.g. from ``Embedding(mask_zero=True)``) arrives as ``mask`` too, as in Keras 3.
    """

    _passes_masks = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            axis = [int(a) for a in axis]
        elif isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise LayerConfigError(f"Softmax: axis must be an int or a list of ints, received {axis!r}.")
        else:
            axis = int(axis)
        self.axis = axis

    def _check_mask(self, inputs, mask) -> None:
        broadcastable = mask.ndim <= inputs.ndim and all(
            m in (1, i) for m, i in zip(mask.shape[::-1], inputs.shape[::-1], strict=False)
        )
        if not broadcastable:
            raise LayerInputError(
                f"{describe_layer(self)}: the mask of shape {tuple(mask.shape)} must broadcast to the inputs of "
                f"shape {tuple(inputs.shape)} from the last axis (each mask size 1 or equal to the input's); "
                "pass a mask of the inputs' shape, or reshape it, e.g. mask[..., None]."
            )

    def call(self, inputs, mask=None):
        if mask is not None:
            mask = jnp.asarray(mask)
            self._check_mask(inputs, mask)
            if mask.dtype != jnp.bool_:
                mask = mask > 0.5
            inputs = jnp.where(mask, inputs, jnp.asarray(_large_negative(inputs.dtype), inputs.dtype))
        axes = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        # The sum runs in float32 at least, as kfunc.activations.softmax does.
        wide = inputs.astype(jnp.promote_types(inputs.dtype, jnp.float32))
        outputs = jnp.exp(wide - jax.nn.logsumexp(wide, axis=axes, keepdims=True)).astype(inputs.dtype)
        if mask is not None:
            outputs = jnp.where(mask, outputs, jnp.zeros((), outputs.dtype))
        return outputs

    def get_config(self):
        return super().get_config() | {"axis": self.axis}


class ReLU(Layer):
    """``max_value`` caps the output; below ``threshold`` the output is
    ``negative_slope * (x - threshold)``; ``x`` otherwise (Keras 3's formula)."""

    _passes_masks = True

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _non_negative(max_value, "max_value", "ReLU", "the largest output", allow_none=True)
        self.negative_slope = _non_negative(negative_slope, "negative_slope", "ReLU", "the slope below the threshold")
        self.threshold = _non_negative(threshold, "threshold", "ReLU", "the input below which the slope applies")

    def call(self, inputs):
        zero = jnp.zeros((), inputs.dtype)
        outputs = jnp.where(inputs > self.threshold, inputs, zero) if self.threshold else jnp.maximum(inputs, zero)
        if self.max_value is not None:
            outputs = jnp.minimum(outputs, jnp.asarray(self.max_value, inputs.dtype))
        if self.negative_slope:
            outputs = outputs - self.negative_slope * jnp.maximum(self.threshold - inputs, zero)
        return outputs

    def get_config(self):
        return super().get_config() | {
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


class LeakyReLU(Layer):
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise."""

    _passes_masks = True

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2's name, still accepted (with a warning) by Keras 3
            negative_slope = kwargs.pop("alpha")
            warnings.warn("LeakyReLU: the argument `alpha` is deprecated; use `negative_slope`.", stacklevel=2)
        super().__init__(**kwargs)
        self.negative_slope = _non_negative(negative_slope, "negative_slope", "LeakyReLU", "the slope below 0")

    def call(self, inputs):
        return jax.nn.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return super().get_config() | {"negative_slope": self.negative_slope}


class PReLU(Layer):
    """``x`` for ``x >= 0``, ``alpha * x`` otherwise, with a learned ``alpha``.

    ``alpha`` has the shape of one example, ``input_shape[1:]``, with size 1 on each of
    ``shared_axes`` (1-indexed input axes, e.g. ``[1, 2]`` shares one slope per channel of
    ``(batch, rows, cols, channels)`` images).
    """

    _passes_masks = True

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = alpha_initializer
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1 for a in axes):
                raise LayerConfigError(
                    f"PReLU: shared_axes must be input axes counted from 1 (the axis after the batch), "
                    f"received {shared_axes!r}."
                )
            self.shared_axes = [int(a) for a in axes]

    def build(self, input_shape):
        rank = len(input_shape)
        shared = set(self.shared_axes or ())
        if shared and max(shared) >= rank:
            raise LayerConfigError(
                f"{describe_layer(self)}: shared_axes {self.shared_axes} name axes beyond the input's "
                f"(shape {tuple(input_shape)}); use axes from 1 to {rank - 1}."
            )
        shape = []
        for axis in range(1, rank):
            if axis in shared:
                shape.append(1)
            else:
                size = input_shape[axis]
                if size is None:
                    raise LayerConfigError(
                        f"{describe_layer(self)} needs a known size on axis {axis} of its input to create alpha, "
                        f"but the input shape is {tuple(input_shape)}; give the Input that size or add the "
                        "axis to shared_axes."
                    )
                shape.append(int(size))
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer, regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint)
        self.input_spec = InputSpec(
            ndim=rank,
            axes={axis: input_shape[axis] for axis in range(1, rank) if axis not in shared},
            hint="alpha was built for inputs of that shape: use a new PReLU layer for other inputs.",
        )

    def call(self, inputs):
        zero = jnp.zeros((), inputs.dtype)
        return jnp.maximum(inputs, zero) - self.alpha.value * jnp.maximum(-inputs, zero)

    def get_config(self):
        return super().get_config() | {
            "alpha_initializer": self.alpha_initializer,
            "alpha_regularizer": self.alpha_regularizer,
            "alpha_constraint": self.alpha_constraint,
            "shared_axes": self.shared_axes,
        }


class ELU(Layer):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""

    _passes_masks = True

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
            raise LayerConfigError(f"ELU: alpha is the scale of the negative part and must be a number, received {alpha!r}.")
        self.alpha = float(alpha)

    def call(self, inputs):
        return jax.nn.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return super().get_config() | {"alpha": self.alpha}


class Identity(Layer):
    """Returns its inputs unchanged (any structure, masks included): a placeholder layer."""

    _passes_masks = True

    def call(self, inputs):
        return inputs
