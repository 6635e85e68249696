"""Pooling: Max/AveragePooling1D/2D/3D and their global forms.

Windows slide over the spatial axes of ``(batch, *spatial, channels)`` (or channels first).
Average pooling with ``padding='same'`` divides by the number of real (unpadded) values, as Keras.

Windows that tile the input (``strides == pool_size``, ``'valid'``, the usual ``MaxPooling2D(2)``)
are computed as a reshape and a reduction: the same numbers, and a gradient XLA's CPU backend
computes 4.5x faster than the ``select_and_scatter`` of ``reduce_window`` (18 ms against 81 ms
for 128 maps of 24x24x64).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.conv import check_data_format
from kfunc.layers.input_spec import InputSpec


class BasePooling(Layer):
    rank = 2
    reduction = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = checks.int_tuple(pool_size, self.rank, "pool_size", cls)
        self.strides = self.pool_size if strides is None else checks.int_tuple(strides, self.rank, "strides", cls)
        self.padding = checks.one_of(padding, ("valid", "same"), "padding", cls)
        self.data_format = check_data_format(data_format, cls)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _window(self, sizes):
        return (1, 1) + sizes if self.data_format == "channels_first" else (1,) + sizes + (1,)

    def _tiled(self, inputs):
        """Non-overlapping windows: crop to whole windows, split each axis, reduce the window axes."""
        start = 2 if self.data_format == "channels_first" else 1
        index = [slice(None)] * inputs.ndim
        shape = list(inputs.shape[:start])
        for axis, size in enumerate(self.pool_size):
            extent = inputs.shape[start + axis]
            index[start + axis] = slice(0, extent // size * size)
            shape += [extent // size, size]
        shape += list(inputs.shape[start + self.rank :])
        windows = inputs[tuple(index)].reshape(shape)
        window_axes = tuple(start + 2 * axis + 1 for axis in range(self.rank))
        return jnp.max(windows, axis=window_axes) if self.reduction == "max" else jnp.mean(windows, axis=window_axes)

    def call(self, inputs):
        start = 2 if self.data_format == "channels_first" else 1
        spatial = inputs.shape[start : start + self.rank]
        if self.padding == "valid" and self.strides == self.pool_size and all(isinstance(n, int) for n in spatial):
            return self._tiled(inputs)
        window, strides = self._window(self.pool_size), self._window(self.strides)
        padding = self.padding.upper()
        # NumPy (not traced) init values: lax.reduce_window only recognises max/add, and so can
        # differentiate them, when the init value is a constant.
        if self.reduction == "max":
            low = np.array(-np.inf, inputs.dtype)
            return lax.reduce_window(inputs, low, lax.max, window, strides, padding)
        zero = np.array(0, inputs.dtype)
        summed = lax.reduce_window(inputs, zero, lax.add, window, strides, padding)
        if self.padding == "valid":
            return summed / np.prod(self.pool_size)
        counts_shape = tuple(s if w > 1 else 1 for s, w in zip(inputs.shape, window))
        counts = lax.reduce_window(jnp.ones(counts_shape, inputs.dtype), zero, lax.add, window, strides, padding)
        return summed / counts

    def get_config(self):
        return super().get_config() | {
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
        }


class MaxPooling1D(BasePooling):
    rank, reduction = 1, "max"


class MaxPooling2D(BasePooling):
    rank, reduction = 2, "max"


class MaxPooling3D(BasePooling):
    rank, reduction = 3, "max"


class AveragePooling1D(BasePooling):
    rank, reduction = 1, "mean"


class AveragePooling2D(BasePooling):
    rank, reduction = 2, "mean"


class AveragePooling3D(BasePooling):
    rank, reduction = 3, "mean"


class BaseGlobalPooling(Layer):
    """``(batch, *spatial, channels)`` -> ``(batch, channels)`` (or kept as size-1 axes)."""

    rank = 2
    reduction = "max"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def call(self, inputs):
        start = 2 if self.data_format == "channels_first" else 1
        axes = tuple(range(start, start + self.rank))
        reduce = jnp.max if self.reduction == "max" else jnp.mean
        return reduce(inputs, axis=axes, keepdims=self.keepdims)

    def get_config(self):
        return super().get_config() | {"data_format": self.data_format, "keepdims": self.keepdims}


class GlobalMaxPooling1D(BaseGlobalPooling):
    rank, reduction = 1, "max"


class GlobalMaxPooling2D(BaseGlobalPooling):
    rank, reduction = 2, "max"


class GlobalMaxPooling3D(BaseGlobalPooling):
    rank, reduction = 3, "max"


class GlobalAveragePooling1D(BaseGlobalPooling):
    """The mean over timesteps; with a mask ``(batch, timesteps)`` the mean over the kept steps
    only (Keras's rule; the other global poolings ignore masks, as in Keras). The output has no mask."""

    rank, reduction = 1, "mean"

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        steps = 2 if self.data_format == "channels_first" else 1
        keep = jnp.expand_dims(mask, 1 if steps == 2 else 2)
        weights = keep.astype(inputs.dtype)
        total = jnp.sum(jnp.where(keep, inputs, 0), axis=steps, keepdims=self.keepdims)
        return total / jnp.sum(weights, axis=steps, keepdims=self.keepdims)

    def compute_mask(self, inputs, mask=None):
        return None


class GlobalAveragePooling2D(BaseGlobalPooling):
    rank, reduction = 2, "mean"


class GlobalAveragePooling3D(BaseGlobalPooling):
    rank, reduction = 3, "mean"
