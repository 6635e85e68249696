"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector, ZeroPadding1D/2D/3D, Cropping1D/2D/3D,
UpSampling1D/2D/3D. None of them has weights; shapes exclude the batch axis in arguments."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.conv import check_data_format
from kfunc.layers.input_spec import InputSpec


class Flatten(Layer):
    """``(batch, d1, d2, ...)`` -> ``(batch, d1 * d2 * ...)``."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format, "Flatten")

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = jnp.moveaxis(inputs, 1, -1)
        return inputs.reshape(inputs.shape[0], -1)

    def get_config(self):
        return super().get_config() | {"data_format": self.data_format}


class Reshape(Layer):
    """``(batch, ...)`` -> ``(batch, *target_shape)``; one size may be -1 (inferred)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target = tuple(target_shape) if isinstance(target_shape, (tuple, list)) else None
        if target is None or any(not isinstance(d, (int, np.integer)) or (d <= 0 and d != -1) for d in target) or list(target).count(-1) > 1:
            raise LayerConfigError(
                f"Reshape: target_shape must be a tuple of positive ints with at most one -1, received {target_shape!r}."
            )
        self.target_shape = tuple(int(d) for d in target)

    def check_input_shapes(self, input_shapes, input_dtypes):
        known = [d for d in input_shapes[1:]]
        if any(d is None for d in known):
            return
        size, target = int(np.prod(known)), int(np.prod([d for d in self.target_shape if d != -1]))
        fits = size % target == 0 if -1 in self.target_shape else size == target
        if not fits:
            raise LayerInputError(
                f"{describe_layer(self)}: cannot reshape input of shape {input_shapes} ({size} values per "
                f"example) to target_shape {self.target_shape}."
            )

    def call(self, inputs):
        return inputs.reshape((inputs.shape[0],) + self.target_shape)

    def get_config(self):
        return super().get_config() | {"target_shape": self.target_shape}


class Permute(Layer):
    """Permutes the non-batch axes: ``dims`` is a permutation of ``1..rank`` (1-indexed)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise LayerConfigError(f"Permute: dims must be a permutation of 1..{len(dims)}, received {dims}.")
        self.dims = dims
        self.input_spec = InputSpec(ndim=len(dims) + 1)

    def call(self, inputs):
        return jnp.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        return super().get_config() | {"dims": self.dims}


class RepeatVector(Layer):
    """``(batch, features)`` -> ``(batch, n, features)``."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = checks.positive_int(n, "n", "RepeatVector")
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs):
        return jnp.repeat(inputs[:, None, :], self.n, axis=1)

    def get_config(self):
        return super().get_config() | {"n": self.n}


def _pairs(padding, rank: int, cls: str):
    """An int, a tuple of ``rank`` ints, or a tuple of ``rank`` (before, after) pairs."""
    if isinstance(padding, (int, np.integer)):
        padding = (padding,) * rank
    padding = tuple(padding)
    if rank == 1 and len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
        padding = (padding,)  # Keras's 1D form: (before, after)
    if len(padding) != rank:
        raise LayerConfigError(f"{cls}: expected {rank} paddings, received {padding!r}.")
    pairs = []
    for p in padding:
        pair = checks.int_tuple(p, 2, "padding", cls, allow_zero=True)
        pairs.append(pair)
    return tuple(pairs)


class _SpatialLayer(Layer):
    rank = 2

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format, type(self).__name__)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def spatial_axes(self):
        start = 2 if self.data_format == "channels_first" else 1
        return tuple(range(start, start + self.rank))


class _ZeroPadding(_SpatialLayer):
    """Pads the spatial axes with zeros; ``padding`` as int, per-axis ints, or (before, after) pairs."""

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        self.padding = _pairs(padding, self.rank, type(self).__name__)

    def call(self, inputs):
        widths = [(0, 0)] * inputs.ndim
        for axis, pair in zip(self.spatial_axes(), self.padding, strict=True):
            widths[axis] = pair
        return jnp.pad(inputs, widths)

    def get_config(self):
        return super().get_config() | {"padding": self.padding, "data_format": self.data_format}


class ZeroPadding1D(_ZeroPadding):
    rank = 1


class ZeroPadding2D(_ZeroPadding):
    rank = 2


class ZeroPadding3D(_ZeroPadding):
    rank = 3


class _Cropping(_SpatialLayer):
    """Removes ``(before, after)`` entries from each spatial axis."""

    def __init__(self, cropping=1, data_format=None, **kwargs):
        super().__init__(data_format, **kwargs)
        self.cropping = _pairs(cropping, self.rank, type(self).__name__)

    def check_input_shapes(self, input_shapes, input_dtypes):
        super().check_input_shapes(input_shapes, input_dtypes)
        for axis, (before, after) in zip(self.spatial_axes(), self.cropping, strict=True):
            size = input_shapes[axis]
            if size is not None and before + after >= size:
                raise LayerInputError(
                    f"{describe_layer(self)}: cropping {(before, after)} removes all of axis {axis} of "
                    f"input shape {input_shapes}."
                )

    def call(self, inputs):
        index = [slice(None)] * inputs.ndim
        for axis, (before, after) in zip(self.spatial_axes(), self.cropping, strict=True):
            index[axis] = slice(before, inputs.shape[axis] - after)
        return inputs[tuple(index)]

    def get_config(self):
        return super().get_config() | {"cropping": self.cropping, "data_format": self.data_format}


class Cropping1D(_Cropping):
    rank = 1


class Cropping2D(_Cropping):
    rank = 2


class _UpSampling(_SpatialLayer):
    """Repeats each spatial entry ``size`` times (nearest), or interpolates (bilinear, 2D)."""

    def __init__(self, size=2, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(data_format, **kwargs)
        self.size = checks.int_tuple(size, self.rank, "size", type(self).__name__)
        self.interpolation = checks.one_of(interpolation, ("nearest", "bilinear"), "interpolation", type(self).__name__)

    def call(self, inputs):
        if self.interpolation == "nearest":
            for axis, repeats in zip(self.spatial_axes(), self.size, strict=True):
                inputs = jnp.repeat(inputs, repeats, axis=axis)
            return inputs
        shape = list(inputs.shape)
        for axis, repeats in zip(self.spatial_axes(), self.size, strict=True):
            shape[axis] *= repeats
        return jax.image.resize(inputs, tuple(shape), method="bilinear", antialias=False)

    def get_config(self):
        return super().get_config() | {"size": self.size, "data_format": self.data_format, "interpolation": self.interpolation}


class UpSampling1D(_UpSampling):
    rank = 1

    def __init__(self, size=2, **kwargs):
        super().__init__(size, **kwargs)


class UpSampling2D(_UpSampling):
    rank = 2


class Cropping3D(_Cropping):
    """Input ``(batch, depth, rows, cols, channels)``; ``cropping`` as for ``Cropping2D``, three axes."""

    rank = 3


class UpSampling3D(_UpSampling):
    """Input ``(batch, depth, rows, cols, channels)``; repeats each entry ``size`` times per axis."""

    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size, data_format, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("interpolation")  # nearest only, as Keras 3's UpSampling3D
        return config
