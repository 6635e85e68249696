"""Numeric preprocessing layers: Rescaling, Normalization (with ``adapt``), UnitNormalization.

They keep the input's shape ``(batch, ...)`` and pass masks on. ``Normalization``'s statistics
are non-trainable weights named as Keras 3 names them (``mean``, ``variance``, ``count``), so
``set_weights`` / ``get_weights`` move them between kfunc and Keras.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers.base import Layer

_EPSILON = 1e-7  # Keras's backend.epsilon(): the smallest standard deviation divided by


def _plain(value):
    """A number or a nested list (JSON-ready) for an array-like config value."""
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()


class Rescaling(Layer):
    """``inputs * scale + offset``, computed in the layer's compute dtype (integer images too).

    ``scale`` and ``offset``: numbers, or per-channel lists that broadcast against the last axis.
    """

    _passes_masks = True

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for argument, value in (("scale", scale), ("offset", offset)):
            try:
                ok = np.issubdtype(np.asarray(value).dtype, np.number) and not isinstance(value, bool)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise LayerConfigError(
                    f"Rescaling: {argument} must be a number or a list of numbers (one per channel), "
                    f"received {value!r}."
                )
        self.scale = _plain(scale)
        self.offset = _plain(offset)

    def call(self, inputs):
        dtype = self.compute_dtype
        return inputs.astype(dtype) * jnp.asarray(self.scale, dtype) + jnp.asarray(self.offset, dtype)

    def get_config(self):
        return super().get_config() | {"scale": self.scale, "offset": self.offset}


def _first_of_pair(batch):
    """The features of a batch given as ``(x, y)`` or ``(x, y, sample_weight)``, as Keras's adapt."""
    return batch[0] if isinstance(batch, tuple) else batch


class Normalization(Layer):
    """``(inputs - mean) / sqrt(variance)`` per index of the ``axis`` axes (``invert=True``: the
    inverse, ``mean + inputs * sqrt(variance)``).

    ``axis``: the axes that keep their own statistics (default -1: one mean per feature of
    ``(batch, ..., features)``); ``None`` for one mean over everything. ``mean`` and ``variance``
    given: fixed statistics and no weights. Otherwise the weights ``mean`` and ``variance``
    (the sizes of the kept axes) and ``count`` (a scalar) are non-trainable and set by
    ``adapt(data)``; before ``adapt`` the layer is the identity (mean 0, variance 1).
    """

    _passes_masks = True

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axis = (int(axis),)
        elif isinstance(axis, (list, tuple)) and all(isinstance(a, (int, np.integer)) for a in axis):
            axis = tuple(int(a) for a in axis)
        else:
            raise LayerConfigError(f"Normalization: axis must be an int, a tuple of ints or None, received {axis!r}.")
        self.axis = axis
        self.invert = bool(invert)
        if (mean is None) != (variance is None):
            raise LayerConfigError(
                "Normalization: give both mean and variance (fixed statistics) or neither (statistics from "
                f"adapt), received mean={mean!r} and variance={variance!r}."
            )
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise LayerConfigError(
                    f"Normalization: mean and variance must have the same shape, received {np.shape(mean)} "
                    f"and {np.shape(variance)}."
                )
            if np.ndim(mean) > len(self.axis):
                raise LayerConfigError(
                    f"Normalization: mean of shape {np.shape(mean)} has more axes than axis={self.axis} keeps; "
                    "give one value per index of the kept axes."
                )
        self.input_mean = None if mean is None else _plain(mean)
        self.input_variance = None if variance is None else _plain(variance)

    # ------------------------------------------------------------------ building
    def build(self, input_shape):
        rank = len(input_shape)
        if any(not -rank <= a < rank for a in self.axis):
            raise LayerConfigError(
                f"{describe_layer(self)}: axis {self.axis} is out of range for inputs of shape "
                f"{tuple(input_shape)}; use axes from {-rank} to {rank - 1}."
            )
        self._kept_axes = tuple(sorted(a % rank for a in self.axis))
        unknown = [a for a in self._kept_axes if input_shape[a] is None]
        if unknown:
            raise LayerConfigError(
                f"{describe_layer(self)} keeps statistics per index of axes {self._kept_axes}, but axis "
                f"{unknown[0]} of the input shape {tuple(input_shape)} is unknown; give the Input that size."
            )
        self._built_shape = tuple(input_shape)
        self._reduced_axes = tuple(a for a in range(rank) if a not in self._kept_axes)
        self._broadcast_shape = tuple(input_shape[a] if a in self._kept_axes else 1 for a in range(rank))
        statistics_shape = tuple(int(input_shape[a]) for a in self._kept_axes)
        if self.input_mean is None:
            self.mean = self.add_weight("mean", statistics_shape, "zeros", trainable=False, dtype=jnp.float32)
            self.variance = self.add_weight("variance", statistics_shape, "ones", trainable=False, dtype=jnp.float32)
            self.count = self.add_weight("count", (), "zeros", trainable=False, dtype=jnp.int32)
        else:
            self._fixed = tuple(self._fixed_statistic(v, statistics_shape) for v in (self.input_mean, self.input_variance))

    def _fixed_statistic(self, value, statistics_shape) -> np.ndarray:
        """A given mean or variance, aligned with the last kept axes, in the broadcast shape."""
        value = np.asarray(value, np.float32)
        aligned = [1] * len(self._broadcast_shape)
        for offset in range(1, value.ndim + 1):
            aligned[self._kept_axes[-offset]] = value.shape[-offset]
        try:
            return np.broadcast_to(value.reshape(aligned), self._broadcast_shape)
        except ValueError:
            raise LayerConfigError(
                f"{describe_layer(self)}: a mean/variance of shape {value.shape} does not fit the kept axes of "
                f"size {statistics_shape}; give a scalar or one value per index."
            ) from None

    # ------------------------------------------------------------------ adapt
    def adapt(self, data) -> None:
        """Set ``mean``, ``variance`` and ``count`` from ``data``: an array ``(samples, ...)``, or
        an iterable of such batches (``(x, y)`` pairs use ``x``). Builds the layer if needed."""
        if self.input_mean is not None:
            raise LayerConfigError(
                f"{describe_layer(self)} was given fixed mean and variance, so adapt() has nothing to set; "
                "create Normalization() without them to learn them from data."
            )
        batches = [data] if hasattr(data, "shape") else data
        if not hasattr(batches, "__iter__"):
            raise LayerInputError(
                f"{describe_layer(self)}: adapt() takes an array or an iterable of array batches, received "
                f"{type(data).__name__}."
            )
        total, mean, m2 = 0, None, None  # Chan et al.'s parallel combination, in float64
        for batch in batches:
            batch = np.asarray(_first_of_pair(batch), np.float64)
            if not self.built:
                self._build_from(batch.shape)
            self._check_adapt_shape(batch.shape)
            count = math.prod(batch.shape[a] for a in self._reduced_axes)
            batch_mean = batch.mean(axis=self._reduced_axes)
            batch_m2 = batch.var(axis=self._reduced_axes) * count
            if mean is None:
                total, mean, m2 = count, batch_mean, batch_m2
                continue
            delta = batch_mean - mean
            combined = total + count
            mean = mean + delta * (count / combined)
            m2 = m2 + batch_m2 + delta**2 * (total * count / combined)
            total = combined
        if mean is None:
            raise LayerInputError(f"{describe_layer(self)}: adapt() received no batches; pass at least one array.")
        self.mean.set_value(np.asarray(mean, np.float32))
        self.variance.set_value(np.asarray(m2 / total, np.float32))
        self.count.set_value(np.asarray(total, np.int32))

    def _check_adapt_shape(self, shape) -> None:
        fits = len(shape) == len(self._built_shape) and all(
            shape[a] == self._built_shape[a] for a in self._kept_axes
        )
        if not fits:
            raise LayerInputError(
                f"{describe_layer(self)}: adapt() received data of shape {tuple(shape)}, but the layer was built "
                f"for inputs of shape {self._built_shape} (statistics per index of axes {self._kept_axes}); "
                "pass data of that shape."
            )

    # ------------------------------------------------------------------ calling
    def call(self, inputs):
        dtype = self.compute_dtype
        inputs = inputs.astype(dtype)
        if self.input_mean is not None:
            mean, variance = (jnp.asarray(v, dtype) for v in self._fixed)
        else:
            mean = jnp.reshape(self.mean.value, self._broadcast_shape).astype(dtype)
            variance = jnp.reshape(self.variance.value, self._broadcast_shape).astype(dtype)
        scale = jnp.maximum(jnp.sqrt(variance), jnp.asarray(_EPSILON, dtype))
        return mean + inputs * scale if self.invert else (inputs - mean) / scale

    def get_config(self):
        return super().get_config() | {
            "axis": self.axis,
            "invert": self.invert,
            "mean": self.input_mean,
            "variance": self.input_variance,
        }


class UnitNormalization(Layer):
    """Scales each vector along ``axis`` (an int or a list of ints) to unit L2 norm:
    ``x / sqrt(sum(x ** 2))``, with a zero vector left zero."""

    _passes_masks = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)) and all(isinstance(a, (int, np.integer)) for a in axis):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise LayerConfigError(f"UnitNormalization: axis must be an int or a list of ints, received {axis!r}.")

    def check_input_shapes(self, input_shapes, input_dtypes):
        rank = len(input_shapes)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if any(not -rank <= a < rank for a in axes):
            raise LayerInputError(
                f"{describe_layer(self)}: axis {self.axis} is out of range for inputs of shape {input_shapes}."
            )

    def call(self, inputs):
        axes = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        squares = jnp.sum(jnp.square(inputs), axis=axes, keepdims=True)
        # rsqrt capped at 1/epsilon (epsilon 1e-12): a zero vector stays zero instead of NaN.
        return inputs * jnp.minimum(jax.lax.rsqrt(squares), jnp.asarray(1e12, inputs.dtype))

    def get_config(self):
        return super().get_config() | {"axis": self.axis}
