"""Image layers driven by each image's own pixel statistics: AutoContrast and Equalization.

Input ``(batch, rows, cols, channels)`` (or channels first) with pixel values in
``value_range``; output the same shape in the compute dtype. No randomness and no weights.
AutoContrast applies at training and at inference (as Keras 3's); Equalization, like Keras 3's,
applies only in training and passes images through at inference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.errors import LayerConfigError
from kfunc.layers.augmentation import _value_range
from kfunc.layers.base import Layer
from kfunc.layers.color import rescale_range
from kfunc.layers.conv import check_data_format
from kfunc.layers.image_preprocessing import image_axes
from kfunc.layers.input_spec import InputSpec


class _ImageStatisticsLayer(Layer):
    def __init__(self, value_range=(0, 255), data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.value_range = _value_range(value_range, cls)
        self.data_format = check_data_format(data_format, cls)
        self.input_spec = InputSpec(ndim=4, hint=f"{cls} takes a batch of images (batch, rows, cols, channels).")

    def get_config(self):
        return super().get_config() | {"value_range": self.value_range, "data_format": self.data_format}


class AutoContrast(_ImageStatisticsLayer):
    """Stretches every channel of every image linearly so that its darkest pixel becomes
    ``value_range[0]`` and its brightest ``value_range[1]``; a constant channel is left as it is."""

    def call(self, inputs):
        images = rescale_range(inputs.astype(self.compute_dtype), self.value_range, (0, 255))
        axes = image_axes(self.data_format)
        low = jnp.min(images, axis=axes, keepdims=True)
        high = jnp.max(images, axis=axes, keepdims=True)
        spread = high - low
        stretched = jnp.clip((images - low) * (255.0 / jnp.where(spread > 0, spread, 1.0)), 0.0, 255.0)
        stretched = rescale_range(stretched, (0, 255), self.value_range)
        return jnp.where(spread > 0, stretched, inputs.astype(self.compute_dtype))


class Equalization(_ImageStatisticsLayer):
    """Histogram equalization of each channel of each image in training: pixels are binned into
    ``bins`` bins over ``value_range`` and mapped through the channel's cumulative histogram, so
    that the output's levels spread evenly over ``value_range``. A channel with a single occupied
    bin is left as it is. Keras 3 pools the histogram over the whole batch; kfunc equalizes each
    image on its own (the same result for a batch of one)."""

    def __init__(self, value_range=(0, 255), bins=256, data_format=None, **kwargs):
        super().__init__(value_range, data_format, **kwargs)
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise LayerConfigError(f"Equalization: bins must be an integer >= 2, received {bins!r}.")
        self.bins = bins

    def call(self, inputs, training=False):
        images = inputs.astype(self.compute_dtype)
        if not training:
            return images
        channels_last = jnp.moveaxis(images, 1, -1) if self.data_format == "channels_first" else images
        pixels = rescale_range(channels_last, self.value_range, (0, 255))
        # (batch, channels, rows * cols): one histogram per image and channel.
        planes = jnp.moveaxis(pixels, -1, 1).reshape(pixels.shape[0], pixels.shape[-1], -1)
        equalized = jax.vmap(jax.vmap(self._equalize_plane))(planes)
        equalized = jnp.moveaxis(equalized.reshape(jnp.moveaxis(pixels, -1, 1).shape), 1, -1)
        equalized = rescale_range(equalized, (0, 255), self.value_range).astype(images.dtype)
        return jnp.moveaxis(equalized, -1, 1) if self.data_format == "channels_first" else equalized

    def _equalize_plane(self, plane):
        """``plane (pixels,)`` on the 0-255 scale, equalized."""
        bins = self.bins
        indices = jnp.clip((plane * (bins - 1) / 255.0).astype(jnp.int32), 0, bins - 1)
        histogram = jnp.zeros((bins,), jnp.int32).at[indices].add(1)
        cdf = jnp.cumsum(histogram)
        cdf_min = cdf[jnp.argmax(cdf > 0)]
        denominator = cdf[-1] - cdf_min
        denominator = jnp.where(denominator == 0, 1, denominator)
        lookup = jnp.clip(jnp.round((cdf - cdf_min) * 255 / denominator), 0, 255).astype(plane.dtype)
        mapped = lookup[indices]
        return jnp.where(jnp.count_nonzero(histogram) <= 1, plane, mapped)

    def get_config(self):
        return super().get_config() | {"bins": self.bins}
