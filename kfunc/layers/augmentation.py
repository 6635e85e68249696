"""Random image augmentation, active only in training: RandomFlip, RandomRotation,
RandomTranslation, RandomZoom, RandomContrast, RandomBrightness.

Input: a batch of images ``(batch, rows, cols, channels)`` (or channels first), output the same
shape in the compute dtype. At inference (``training=False``, the default of ``predict``,
``evaluate`` and a plain call) each layer only casts to the compute dtype. In training each
example gets its own random transformation drawn from the ``key`` the layer receives
(``uses_key``; ``fit`` provides one, ``apply(..., training=True, key=...)`` takes one; ``seed``,
when given, is folded into it). Unlike Keras 3, a direct call does not augment unless it passes
``training=True`` and a key: kfunc keeps no hidden random state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import LayerConfigError
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.conv import check_data_format
from kfunc.layers.image_preprocessing import image_axes
from kfunc.layers.image_transform import (
    FILL_MODES,
    INTERPOLATIONS,
    affine_transform,
    rotation_transforms,
    translation_transforms,
    zoom_transforms,
)
from kfunc.layers.input_spec import InputSpec
from kfunc.layers.regularization import training_key


def factor_range(value, argument: str, layer_class: str, low: float, high: float, *, number_means: str = "symmetric",
                 open_low: bool = False) -> tuple[float, float]:
    """A number ``f`` -> ``(-|f|, |f|)`` (``number_means='same'``: ``(f, f)``), or a pair sorted
    ``(lower, upper)``; every value within ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    def ok(v):
        return (not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating))
                and (low < v if open_low else low <= v) and v <= high)

    pair = tuple(value) if isinstance(value, (list, tuple)) else None
    if pair is not None and len(pair) == 2 and all(ok(v) for v in pair):
        return tuple(sorted(float(v) for v in pair))
    if pair is None and ok(value):
        value = float(value)
        return (value, value) if number_means == "same" else (-abs(value), abs(value))
    bracket = "(" if open_low else "["
    raise LayerConfigError(
        f"{layer_class}: {argument} must be a number or a pair of numbers in {bracket}{low}, {high}], "
        f"received {value!r}."
    )


class RandomImageLayer(Layer):
    """Shared by the augmentation layers: casting, the training switch and the key."""

    uses_key = True

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.data_format = check_data_format(data_format, type(self).__name__)
        self.input_spec = InputSpec(
            ndim=4, hint=f"{type(self).__name__} takes a batch of images (batch, rows, cols, channels)."
        )

    def call(self, inputs, training=False, key=None):
        inputs = inputs.astype(self.compute_dtype)
        if not training:
            return inputs
        return self.augment(inputs, training_key(self, key, self.seed))

    def augment(self, images, key):
        """The training-mode transformation of ``images`` drawn with ``key``."""
        raise NotImplementedError(f"{type(self).__name__} must define augment(images, key).")

    def image_size(self, images) -> tuple[int, int]:
        h_axis, w_axis = image_axes(self.data_format)
        return images.shape[h_axis], images.shape[w_axis]

    def per_image(self, key, batch: int, low: float, high: float):
        """One uniform draw in ``[low, high)`` per image, ``(batch,)`` float32."""
        return jax.random.uniform(key, (batch,), jnp.float32, low, high)

    def get_config(self):
        return super().get_config() | {"seed": self.seed, "data_format": self.data_format}


class RandomFlip(RandomImageLayer):
    """Flips each image with probability 1/2: ``mode`` is ``'horizontal'`` (left-right),
    ``'vertical'`` (up-down) or ``'horizontal_and_vertical'`` (both at once, or neither, as Keras 3)."""

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed, data_format, **kwargs)
        self.mode = checks.one_of(mode, self.MODES, "mode", "RandomFlip")

    def augment(self, images, key):
        flips = jax.random.uniform(key, (images.shape[0],) + (1,) * (images.ndim - 1)) <= 0.5
        h_axis, w_axis = image_axes(self.data_format)
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            images = jnp.where(flips, jnp.flip(images, axis=w_axis), images)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            images = jnp.where(flips, jnp.flip(images, axis=h_axis), images)
        return images

    def get_config(self):
        return super().get_config() | {"mode": self.mode}


class AffineAugmentation(RandomImageLayer):
    """Shared by the layers that resample images through an affine map (``image_transform``)."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(seed, data_format, **kwargs)
        cls = type(self).__name__
        self.fill_mode = checks.one_of(fill_mode, FILL_MODES, "fill_mode", cls)
        self.interpolation = checks.one_of(interpolation, tuple(INTERPOLATIONS), "interpolation", cls)
        self.fill_value = float(fill_value)

    def augment(self, images, key):
        rows, cols = self.image_size(images)
        transforms = self.transforms(key, images.shape[0], rows, cols)
        return affine_transform(images, transforms, interpolation=self.interpolation, fill_mode=self.fill_mode,
                                fill_value=self.fill_value, data_format=self.data_format)

    def transforms(self, key, batch: int, rows: int, cols: int):
        """``(batch, 6)`` affine transforms, drawn with ``key``."""
        raise NotImplementedError(f"{type(self).__name__} must define transforms(key, batch, rows, cols).")

    def get_config(self):
        return super().get_config() | {
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


class RandomRotation(AffineAugmentation):
    """Rotates each image about its centre by a random fraction of a full turn drawn from
    ``factor`` (a number ``f``: ``[-f, f]``; a pair: ``[lower, upper]``; e.g. 0.25 is 90 degrees)."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = factor_range(factor, "factor", "RandomRotation", -1.0, 1.0)

    def transforms(self, key, batch, rows, cols):
        degrees = self.per_image(key, batch, self.factor[0] * 360.0, self.factor[1] * 360.0)
        return rotation_transforms(degrees, rows, cols)

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


class RandomTranslation(AffineAugmentation):
    """Shifts each image by random fractions of its height and width: ``height_factor`` and
    ``width_factor`` as numbers ``f`` (``[-f, f]``) or pairs, within ``[-1, 1]``; positive moves
    down / right."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_range = factor_range(height_factor, "height_factor", "RandomTranslation", -1.0, 1.0)
        self.width_range = factor_range(width_factor, "width_factor", "RandomTranslation", -1.0, 1.0)

    def transforms(self, key, batch, rows, cols):
        key_rows, key_cols = jax.random.split(key)
        dy = self.per_image(key_rows, batch, *self.height_range) * rows
        dx = self.per_image(key_cols, batch, *self.width_range) * cols
        return translation_transforms(dx, dy)

    def get_config(self):
        return super().get_config() | {"height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomZoom(AffineAugmentation):
    """Zooms each image about its centre: the sampled extent is ``1 + f`` times the image, ``f``
    drawn from ``height_factor`` (a number: ``[-f, f]``; a pair; within ``(-1, 1]``), so positive
    factors zoom out and negative zoom in. ``width_factor=None`` keeps the aspect ratio."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_range = factor_range(height_factor, "height_factor", "RandomZoom", -1.0, 1.0, open_low=True)
        self.width_range = (
            None if width_factor is None
            else factor_range(width_factor, "width_factor", "RandomZoom", -1.0, 1.0, open_low=True)
        )

    def transforms(self, key, batch, rows, cols):
        key_rows, key_cols = jax.random.split(key)
        zoom_y = 1.0 + self.per_image(key_rows, batch, *self.height_range)
        zoom_x = zoom_y if self.width_range is None else 1.0 + self.per_image(key_cols, batch, *self.width_range)
        return zoom_transforms(zoom_x, zoom_y, rows, cols)

    def get_config(self):
        return super().get_config() | {"height_factor": self.height_factor, "width_factor": self.width_factor}


def _value_range(value_range, layer_class: str) -> list[float]:
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
        raise LayerConfigError(
            f"{layer_class}: value_range must be a pair (lowest, highest) of pixel values, e.g. (0, 255), "
            f"received {value_range!r}."
        )
    return sorted(float(v) for v in value_range)


class RandomContrast(RandomImageLayer):
    """Scales each image's deviation from its per-channel mean by a factor drawn from
    ``[1 - lower, 1 + upper]`` (``factor`` a number ``f`` in [0, 1]: lower = upper = f, as Keras
    documents; or a pair), then clips to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, kwargs.pop("data_format", None), **kwargs)
        self.factor = factor_range(factor, "factor", "RandomContrast", 0.0, 1.0, number_means="same")
        self.value_range = _value_range(value_range, "RandomContrast")

    def augment(self, images, key):
        factors = self.per_image(key, images.shape[0], 1.0 - self.factor[0], 1.0 + self.factor[1])
        factors = factors.reshape((-1, 1, 1, 1)).astype(images.dtype)
        mean = jnp.mean(images, axis=image_axes(self.data_format), keepdims=True)
        return jnp.clip((images - mean) * factors + mean, *self.value_range)

    def get_config(self):
        return super().get_config() | {"factor": self.factor, "value_range": self.value_range}


class RandomBrightness(RandomImageLayer):
    """Adds to each image a value drawn from ``factor`` (a number ``f``: ``[-f, f]``; a pair; within
    [-1, 1]) times the width of ``value_range``, then clips to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed, kwargs.pop("data_format", None), **kwargs)
        self.factor = factor_range(factor, "factor", "RandomBrightness", -1.0, 1.0)
        self.value_range = _value_range(value_range, "RandomBrightness")

    def augment(self, images, key):
        low, high = self.value_range
        delta = self.per_image(key, images.shape[0], *self.factor) * (high - low)
        return jnp.clip(images + delta.reshape((-1, 1, 1, 1)).astype(images.dtype), low, high)

    def get_config(self):
        return super().get_config() | {"factor": self.factor, "value_range": self.value_range}
