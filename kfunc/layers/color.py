"""Colour-space helpers for the image layers: value-range rescaling, grayscale and HSV.

Images are batches ``(batch, rows, cols, channels)`` (``channels_last``) or ``(batch, channels,
rows, cols)`` (``channels_first``), float. RGB images have 3 channels; HSV images hold hue in
``[0, 1)`` (a full turn), saturation in ``[0, 1]`` and value on the RGB scale.
"""

from __future__ import annotations

import jax.numpy as jnp

# ITU-R 601 luma weights, the ones TensorFlow and Keras 3 use for rgb_to_grayscale.
LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)


def channel_axis(data_format: str) -> int:
    return 1 if data_format == "channels_first" else -1


def rescale_range(images, source: tuple[float, float], target: tuple[float, float]):
    """``images`` mapped linearly from the ``source`` (low, high) range to the ``target`` range."""
    if tuple(source) == tuple(target):
        return images
    unit = (images - source[0]) / (source[1] - source[0])
    return unit * (target[1] - target[0]) + target[0]


def rgb_to_grayscale(images, data_format: str):
    """Luma of RGB ``images``, one channel ``(batch, rows, cols, 1)``; 1-channel images unchanged."""
    axis = channel_axis(data_format)
    if images.shape[axis] == 1:
        return images
    weights = jnp.asarray(LUMA_WEIGHTS, images.dtype)
    return jnp.expand_dims(jnp.tensordot(jnp.moveaxis(images, axis, -1), weights, axes=1), axis)


def rgb_to_hsv(images, data_format: str):
    """RGB -> HSV (hue a fraction of a turn, red at 0), channels stay on ``channel_axis``."""
    axis = channel_axis(data_format)
    red, green, blue = (jnp.take(images, i, axis=axis) for i in range(3))
    value = jnp.maximum(jnp.maximum(red, green), blue)
    chroma = value - jnp.minimum(jnp.minimum(red, green), blue)
    saturation = jnp.where(value > 0, chroma / jnp.where(value > 0, value, 1.0), 0.0)
    sixth = 1.0 / (6.0 * jnp.where(chroma > 0, chroma, 1.0))
    # Which sector the hue lies in depends on the largest channel (red wins ties, then green).
    hue = jnp.where(value == green, (blue - red) * sixth + 1.0 / 3.0, (red - green) * sixth + 2.0 / 3.0)
    hue = jnp.where(value == red, (green - blue) * sixth, hue)
    hue = jnp.where(chroma > 0, hue, 0.0)
    hue = jnp.where(hue < 0.0, hue + 1.0, hue)
    return jnp.stack([hue, saturation, value], axis=axis)


def hsv_to_rgb(images, data_format: str):
    """HSV -> RGB, the inverse of ``rgb_to_hsv``."""
    axis = channel_axis(data_format)
    hue, saturation, value = (jnp.take(images, i, axis=axis) for i in range(3))
    sector = jnp.mod(hue, 1.0) * 6.0
    red = jnp.clip(jnp.abs(sector - 3.0) - 1.0, 0.0, 1.0)
    green = jnp.clip(2.0 - jnp.abs(sector - 2.0), 0.0, 1.0)
    blue = jnp.clip(2.0 - jnp.abs(sector - 4.0), 0.0, 1.0)
    grey = 1.0 - saturation
    return jnp.stack([(grey + saturation * c) * value for c in (red, green, blue)], axis=axis)
