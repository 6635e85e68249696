"""Random augmentation of image regions, active only in training: RandomCrop, RandomErasing and
RandomGaussianBlur (Keras 3's names and arguments).

Input ``(batch, rows, cols, channels)`` (or channels first), output in the compute dtype; each
image gets its own draw from the layer's key (see ``kfunc.layers.augmentation``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from kfunc.errors import LayerConfigError
from kfunc.layers import checks
from kfunc.layers.augmentation import RandomImageLayer, _value_range
from kfunc.layers.color_augmentation import bounded_factor
from kfunc.layers.image_preprocessing import aspect_crop_box, crop_images, image_axes, resize_images
from kfunc.layers.regularization import training_key


def box_masks(images, data_format: str, side_fractions, key):
    """``(batch, rows, cols, 1)`` (or ``(batch, 1, rows, cols)``) booleans: per image, a box whose
    width and height are ``side_fractions (batch, 2)`` of the image's, placed uniformly at random."""
    h_axis, w_axis = image_axes(data_format)
    rows, cols = images.shape[h_axis], images.shape[w_axis]
    batch = images.shape[0]
    lengths = side_fractions * jnp.asarray([cols, rows], side_fractions.dtype)
    starts = jax.random.uniform(key, (batch, 2)) * (jnp.asarray([cols, rows], lengths.dtype) - lengths)
    x = jnp.arange(cols, dtype=lengths.dtype)[None, None, :]
    y = jnp.arange(rows, dtype=lengths.dtype)[None, :, None]
    inside = ((x >= starts[:, 0, None, None]) & (x < (starts[:, 0] + lengths[:, 0])[:, None, None])
              & (y >= starts[:, 1, None, None]) & (y < (starts[:, 1] + lengths[:, 1])[:, None, None]))
    return inside[:, None] if data_format == "channels_first" else inside[..., None]


def bernoulli_per_image(key, batch: int, probability_range: tuple[float, float]):
    """Keras 3's draw: a probability from ``probability_range``, then a coin with it, per image."""
    probability_key, coin_key = jax.random.split(key)
    probability = jax.random.uniform(probability_key, (batch,), minval=probability_range[0],
                                     maxval=probability_range[1])
    return jax.random.uniform(coin_key, (batch,)) < probability


class RandomCrop(RandomImageLayer):
    """Crops a random ``(height, width)`` box of each image in training. An image not larger than
    the target on both sides is instead cropped to the target's aspect ratio about its centre and
    resized (bilinear). At inference every image gets that centred aspect crop and resize, so the
    output is ``(batch, height, width, channels)`` in both modes (Keras 3 returns the uncropped
    image at inference, whatever its declared output shape)."""

    def __init__(self, height, width, seed=None, data_format=None, name=None, **kwargs):
        super().__init__(seed, data_format, name=name, **kwargs)
        self.height = checks.positive_int(height, "height", "RandomCrop")
        self.width = checks.positive_int(width, "width", "RandomCrop")

    def call(self, inputs, training=False, key=None):
        images = inputs.astype(self.compute_dtype)
        rows, cols = self.image_size(images)
        if training and rows > self.height and cols > self.width:
            return self.augment(images, training_key(self, key, self.seed))
        box = aspect_crop_box(rows, cols, self.height, self.width)
        cropped = crop_images(images, self.data_format, *box)
        if box[2:] == (self.height, self.width):
            return cropped
        return resize_images(cropped, self.data_format, self.height, self.width, "bilinear").astype(images.dtype)

    def augment(self, images, key):
        rows, cols = self.image_size(images)
        batch = images.shape[0]
        tops = jax.random.randint(jax.random.fold_in(key, 0), (batch,), 0, rows - self.height + 1)
        lefts = jax.random.randint(jax.random.fold_in(key, 1), (batch,), 0, cols - self.width + 1)
        last = jnp.moveaxis(images, 1, -1) if self.data_format == "channels_first" else images

        def crop_one(image, top, left):
            return lax.dynamic_slice(image, (top, left, 0), (self.height, self.width, image.shape[-1]))

        cropped = jax.vmap(crop_one)(last, tops, lefts)
        return jnp.moveaxis(cropped, -1, 1) if self.data_format == "channels_first" else cropped

    def get_config(self):
        return super().get_config() | {"height": self.height, "width": self.width}


class RandomErasing(RandomImageLayer):
    """Replaces a random box of each image, with a probability drawn per image from ``factor``
    (a number ``f``: ``[0, f]``; a pair within [0, 1]), by ``fill_value`` (a number or one value per
    channel; ``None``: Gaussian noise times ``value_range[1]``), clipped to ``value_range``. The
    box's width and height are the square roots of fractions drawn from ``scale`` (within [0, 1])."""

    def __init__(self, factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255), seed=None,
                 data_format=None, **kwargs):
        super().__init__(seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "RandomErasing", 0.0, 1.0)
        self.scale = bounded_factor(scale, "scale", "RandomErasing", 0.0, 1.0)
        if fill_value is not None and not (
            isinstance(fill_value, (int, float)) and not isinstance(fill_value, bool)
            or isinstance(fill_value, (list, tuple)) and len(fill_value) == 3
        ):
            raise LayerConfigError(
                f"RandomErasing: fill_value must be None, a number or a list of 3 numbers (one per channel), "
                f"received {fill_value!r}."
            )
        self.fill_value = fill_value
        self.value_range = _value_range(value_range, "RandomErasing")

    def augment(self, images, key):
        scale_key, box_key, apply_key, noise_key = jax.random.split(key, 4)
        batch = images.shape[0]
        sides = jnp.sqrt(jax.random.uniform(scale_key, (batch, 2), minval=self.scale[0], maxval=self.scale[1]))
        masks = box_masks(images, self.data_format, sides, box_key)
        if self.fill_value is None:
            fill = jax.random.normal(noise_key, images.shape, images.dtype) * self.value_range[1]
        else:
            fill = jnp.asarray(self.fill_value, images.dtype)
            if fill.ndim and self.data_format == "channels_first":
                fill = fill[:, None, None]
        fill = jnp.clip(fill, *self.value_range)
        erase = bernoulli_per_image(apply_key, batch, self.factor)[:, None, None, None] & masks
        return jnp.where(erase, fill, images)

    def get_config(self):
        return super().get_config() | {
            "factor": self.factor,
            "scale": self.scale,
            "fill_value": self.fill_value,
            "value_range": self.value_range,
        }


def gaussian_kernel(size: int, sigma):
    """A normalized 1-D Gaussian of ``size`` taps with standard deviation ``sigma``."""
    offsets = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2.0
    weights = jnp.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / jnp.sum(weights)


class RandomGaussianBlur(RandomImageLayer):
    """Blurs each image, with a probability drawn per image from ``factor`` (a number ``f``:
    ``[0, f]``; a pair within [0, 1]), by a Gaussian of ``kernel_size`` taps (odd; a number or a
    pair ``(horizontal, vertical)``) whose horizontal and vertical standard deviations are drawn
    from ``sigma`` (a number ``s``: ``[0, s]``; a pair within [0, 1]); zero padding at the borders.
    Every image is then clipped to ``value_range``."""

    def __init__(self, factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255), data_format=None, seed=None,
                 **kwargs):
        super().__init__(seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "RandomGaussianBlur", 0.0, 1.0)
        sizes = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else (kernel_size, kernel_size)
        if len(sizes) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 and s % 2 for s in sizes):
            raise LayerConfigError(
                f"RandomGaussianBlur: kernel_size must be an odd positive integer or a pair of them, received "
                f"{kernel_size!r}."
            )
        self.kernel_size = sizes
        self.sigma = bounded_factor(sigma, "sigma", "RandomGaussianBlur", 0.0, 1.0)
        self.value_range = _value_range(value_range, "RandomGaussianBlur")

    def augment(self, images, key):
        apply_key, sigma_key = jax.random.split(key)
        batch = images.shape[0]
        # 1e-6 keeps a zero sigma finite, as in Keras 3.
        sigmas = jax.random.uniform(sigma_key, (batch, 2), minval=self.sigma[0], maxval=self.sigma[1]) + 1e-6
        last = jnp.moveaxis(images, 1, -1) if self.data_format == "channels_first" else images
        channels = last.shape[-1]

        def blur_one(image, sigma):
            kernel = jnp.outer(gaussian_kernel(self.kernel_size[1], sigma[1]),
                               gaussian_kernel(self.kernel_size[0], sigma[0])).astype(image.dtype)
            kernel = jnp.tile(kernel[:, :, None, None], (1, 1, 1, channels))
            return lax.conv_general_dilated(image[None], kernel, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            feature_group_count=channels)[0]

        blurred = jax.vmap(blur_one)(last, sigmas)
        blurred = jnp.moveaxis(blurred, -1, 1) if self.data_format == "channels_first" else blurred
        chosen = bernoulli_per_image(apply_key, batch, self.factor)[:, None, None, None]
        return jnp.clip(jnp.where(chosen, blurred, images), *self.value_range)

    def get_config(self):
        return super().get_config() | {
            "factor": self.factor,
            "kernel_size": self.kernel_size,
            "sigma": self.sigma,
            "value_range": self.value_range,
        }
