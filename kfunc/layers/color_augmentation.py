"""Random colour augmentation, active only in training (Keras 3's names and arguments):
RandomGrayscale, RandomInvert, Solarization, RandomHue, RandomSaturation,
RandomColorDegeneration, RandomPosterization, RandomSharpness and RandomColorJitter.

Input ``(batch, rows, cols, channels)`` (or channels first), RGB where the layer needs colour;
output the same shape in the compute dtype. Pixel values live in ``value_range`` (default
``(0, 255)``). At inference each layer only casts; in training every image gets its own draw from
the layer's key (see ``kfunc.layers.augmentation``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from kfunc.errors import LayerConfigError
from kfunc.layers.augmentation import RandomBrightness, RandomContrast, RandomImageLayer, _value_range
from kfunc.layers.color import channel_axis, hsv_to_rgb, rescale_range, rgb_to_grayscale, rgb_to_hsv

KERAS_EPSILON = 1e-7  # keras.config.epsilon(), which RandomSaturation's factor mapping adds


def bounded_factor(value, argument: str, layer_class: str, low: float, high: float) -> tuple[float, float]:
    """Keras 3's factor convention: a number ``f`` -> ``(max(-|f|, low), |f|)``, a pair -> sorted;
    every value within ``[low, high]``."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high

    if isinstance(value, (list, tuple)) and len(value) == 2 and all(number(v) for v in value):
        return tuple(sorted(value))
    if number(value):
        return (max(-abs(value), low), abs(value))
    raise LayerConfigError(
        f"{layer_class}: {argument} must be a number or a pair of numbers in [{low}, {high}], received {value!r}; "
        f"pass e.g. {argument}={high}."
    )


def _per_image(values, ndim: int = 4):
    """``(batch,)`` values shaped to broadcast against a batch of images."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


class ColorImageLayer(RandomImageLayer):
    """Shared by the layers that take ``value_range`` (a pair, kept sorted as Keras 3 does)."""

    def __init__(self, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed, data_format, **kwargs)
        self.value_range = _value_range(value_range, type(self).__name__)

    def get_config(self):
        return super().get_config() | {"value_range": self.value_range}


class RandomGrayscale(RandomImageLayer):
    """Turns each image to grayscale (luma, repeated over the channels) with probability ``factor``."""

    def __init__(self, factor=0.5, data_format=None, seed=None, **kwargs):
        super().__init__(seed, data_format, **kwargs)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 1:
            raise LayerConfigError(f"RandomGrayscale: factor is a probability in [0, 1], received {factor!r}.")
        self.factor = factor

    def augment(self, images, key):
        chosen = _per_image(jax.random.uniform(key, (images.shape[0],)) < self.factor)
        gray = jnp.broadcast_to(rgb_to_grayscale(images, self.data_format), images.shape)
        return jnp.where(chosen, gray, images)

    def get_config(self):
        config = super().get_config() | {"factor": self.factor}
        config.pop("seed")  # Keras 3 does not save RandomGrayscale's seed
        return config


class RandomInvert(ColorImageLayer):
    """Replaces each image ``x`` by ``value_range[1] - x`` with a probability drawn per image from
    ``factor`` (a number ``f``: ``[0, f]``; a pair within [0, 1])."""

    def __init__(self, factor=1.0, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(value_range, seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "RandomInvert", 0.0, 1.0)

    def augment(self, images, key):
        probability_key, threshold_key = jax.random.split(key)
        batch = images.shape[0]
        probability = jax.random.uniform(probability_key, (batch,), minval=self.factor[0], maxval=self.factor[1])
        inverted = _per_image(jax.random.uniform(threshold_key, (batch,)) < probability)
        return jnp.where(inverted, self.value_range[1] - images, images)

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


class Solarization(ColorImageLayer):
    """On the 0-255 scale: adds a value drawn from ``addition_factor * 255`` and clips, then
    inverts (``255 - x``) the pixels at or above a threshold drawn from ``threshold_factor * 255``.
    Factors are numbers ``f`` (``[0, f]``) or pairs within [0, 1]; the defaults (0, 0) invert every
    pixel. (Keras 3 leaves the lower end of a pair unscaled; kfunc scales both ends by 255.)"""

    def __init__(self, addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(value_range, seed, kwargs.pop("data_format", None), **kwargs)
        self.addition_factor = bounded_factor(addition_factor, "addition_factor", "Solarization", 0.0, 1.0)
        self.threshold_factor = bounded_factor(threshold_factor, "threshold_factor", "Solarization", 0.0, 1.0)

    def augment(self, images, key):
        addition_key, threshold_key = jax.random.split(key)
        batch = images.shape[0]
        additions = jax.random.uniform(addition_key, (batch,), minval=self.addition_factor[0] * 255,
                                       maxval=self.addition_factor[1] * 255)
        thresholds = jax.random.uniform(threshold_key, (batch,), minval=self.threshold_factor[0] * 255,
                                        maxval=self.threshold_factor[1] * 255)
        pixels = jnp.clip(rescale_range(images, self.value_range, (0, 255)) + _per_image(additions), 0, 255)
        solarized = jnp.where(pixels < _per_image(thresholds), pixels, 255 - pixels)
        return rescale_range(solarized, (0, 255), self.value_range).astype(images.dtype)

    def get_config(self):
        return super().get_config() | {
            "addition_factor": self.addition_factor,
            "threshold_factor": self.threshold_factor,
        }


class RandomHue(ColorImageLayer):
    """Rotates each image's hue by half a turn times a magnitude drawn from ``factor`` (a number
    ``f``: ``[0, f]``; a pair within [0, 1]), in a random direction; RGB images."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(value_range, seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "RandomHue", 0.0, 1.0)

    def augment(self, images, key):
        return shift_hue(images, self.hue_shifts(key, images.shape[0]), self.value_range, self.data_format)

    def hue_shifts(self, key, batch: int):
        """``(batch,)`` hue shifts in turns."""
        direction_key, magnitude_key = jax.random.split(key)
        direction = jnp.where(jax.random.uniform(direction_key, (batch,)) > 0.5, -1.0, 1.0)
        return 0.5 * direction * jax.random.uniform(magnitude_key, (batch,), minval=self.factor[0],
                                                    maxval=self.factor[1])

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


def shift_hue(images, shifts, value_range, data_format: str):
    """``images`` with hue moved by ``shifts (batch,)`` turns (wrapping), clipped to ``value_range``."""
    axis = channel_axis(data_format)
    hsv = rgb_to_hsv(rescale_range(images, value_range, (0, 1)), data_format)
    hue = jnp.take(hsv, 0, axis=axis) + _per_image(shifts, hsv.ndim - 1).astype(hsv.dtype)
    hue = jnp.where(hue > 1.0, hue - 1.0, jnp.where(hue < 0.0, hue + 1.0, hue))
    hsv = jnp.concatenate([jnp.expand_dims(hue, axis), jnp.delete(hsv, 0, axis=axis, assume_unique_indices=True)],
                          axis=axis)
    return rescale_range(jnp.clip(hsv_to_rgb(hsv, data_format), 0, 1), (0, 1), value_range).astype(images.dtype)


class RandomSaturation(ColorImageLayer):
    """Scales each image's saturation by ``f / (1 - f)``, ``f`` drawn from ``factor`` (a number:
    ``[-f, f]``; a pair within [-1, 1]; 0.5 keeps the image, 0 or less makes it gray, 1 fully
    saturates); RGB images. The scaled saturation is clipped to [0, 1]."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(value_range, seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "RandomSaturation", -1.0, 1.0)

    def augment(self, images, key):
        return scale_saturation(images, self.saturation_scales(key, images.shape[0]), self.data_format)

    def saturation_scales(self, key, batch: int):
        drawn = jax.random.uniform(key, (batch,), minval=self.factor[0], maxval=self.factor[1])
        return drawn / (1.0 - drawn + KERAS_EPSILON)

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


def scale_saturation(images, scales, data_format: str):
    """``images`` whose HSV saturation is multiplied by ``scales (batch,)`` and clipped to [0, 1]."""
    axis = channel_axis(data_format)
    hsv = rgb_to_hsv(images, data_format)
    saturation = jnp.clip(jnp.take(hsv, 1, axis=axis) * _per_image(scales, hsv.ndim - 1).astype(hsv.dtype), 0, 1)
    hsv = jnp.stack([jnp.take(hsv, 0, axis=axis), saturation, jnp.take(hsv, 2, axis=axis)], axis=axis)
    return hsv_to_rgb(hsv, data_format).astype(images.dtype)


class RandomColorDegeneration(ColorImageLayer):
    """Blends each image towards its grayscale version by a fraction drawn from ``factor`` (a
    number: ``[-f, f]``; a pair within [-1, 1]; 1 is fully gray, negatives push colours apart),
    clipped to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(value_range, seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "RandomColorDegeneration", -1.0, 1.0)

    def augment(self, images, key):
        blend = _per_image(jax.random.uniform(key, (images.shape[0],), minval=self.factor[0], maxval=self.factor[1]))
        gray = rgb_to_grayscale(images, self.data_format)
        return jnp.clip(images + blend.astype(images.dtype) * (gray - images), *self.value_range)

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


class RandomPosterization(ColorImageLayer):
    """Keeps a random number of the most significant bits of each 8-bit pixel: a number of bits
    drawn per image from ``factor`` (a number ``f``: ``[1, f)``, or exactly ``f`` when that range is
    empty; a pair within [1, 8], upper end excluded unless equal)."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(value_range, seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "RandomPosterization", 1, 8)

    def augment(self, images, key):
        low, high = (int(v) for v in self.factor)
        batch = images.shape[0]
        bits = jnp.full((batch,), low, jnp.uint8) if low == high else jax.random.randint(
            key, (batch,), low, high).astype(jnp.uint8)
        shift = _per_image(jnp.uint8(8) - bits)
        pixels = rescale_range(images, self.value_range, (0, 255)).astype(jnp.uint8)
        posterized = jnp.left_shift(jnp.right_shift(pixels, shift), shift).astype(images.dtype)
        return rescale_range(posterized, (0, 255), self.value_range).astype(images.dtype)

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


class RandomSharpness(ColorImageLayer):
    """Sharpens or blurs each image: with ``s = 2 f``, ``f`` drawn from ``factor`` (a number:
    ``[0, f]``; a pair within [0, 1]), the output is ``smooth + s * (image - smooth)``, ``smooth`` the
    image under a 3x3 smoothing kernel (zero padded); 0.5 keeps the image. Clipped to ``value_range``."""

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(value_range, seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "RandomSharpness", 0.0, 1.0)

    def augment(self, images, key):
        strength = 2.0 * jax.random.uniform(key, (images.shape[0],), minval=self.factor[0], maxval=self.factor[1])
        last = jnp.moveaxis(images, 1, -1) if self.data_format == "channels_first" else images
        channels = last.shape[-1]
        kernel = jnp.full((3, 3), 1.0 / 13.0, images.dtype).at[1, 1].set(5.0 / 13.0)
        kernel = jnp.tile(kernel[:, :, None, None], (1, 1, 1, channels))
        smooth = lax.conv_general_dilated(last, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                          feature_group_count=channels)
        sharpened = jnp.clip(last + (1.0 - _per_image(strength).astype(last.dtype)) * (smooth - last),
                             *self.value_range)
        return jnp.moveaxis(sharpened, -1, 1) if self.data_format == "channels_first" else sharpened

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


class RandomColorJitter(ColorImageLayer):
    """RandomBrightness, RandomContrast, RandomSaturation and RandomHue in that order, each only
    when its factor is given (same meanings as those layers' ``factor``), all on ``value_range``."""

    def __init__(self, value_range=(0, 255), brightness_factor=None, contrast_factor=None, saturation_factor=None,
                 hue_factor=None, seed=None, data_format=None, **kwargs):
        super().__init__(value_range, seed, data_format, **kwargs)
        self.brightness_factor, self.contrast_factor = brightness_factor, contrast_factor
        self.saturation_factor, self.hue_factor = saturation_factor, hue_factor
        # Private: the steps are configuration of this layer, not sublayers with weights or configs.
        self._steps = [
            layer(factor, value_range=value_range, data_format=self.data_format)
            if layer in (RandomSaturation, RandomHue) else layer(factor, value_range=value_range)
            for layer, factor in ((RandomBrightness, brightness_factor), (RandomContrast, contrast_factor),
                                  (RandomSaturation, saturation_factor), (RandomHue, hue_factor))
            if factor is not None
        ]
        for step in self._steps:
            step.data_format = self.data_format

    def augment(self, images, key):
        for index, step in enumerate(self._steps):
            images = step.augment(images, jax.random.fold_in(key, index))
        return images

    def get_config(self):
        return super().get_config() | {
            "brightness_factor": self.brightness_factor,
            "contrast_factor": self.contrast_factor,
            "saturation_factor": self.saturation_factor,
            "hue_factor": self.hue_factor,
        }
