"""Affine resampling of image batches, shared by RandomRotation, RandomTranslation and RandomZoom.

A transform is 6 numbers per image, ``[a0, a1, a2, b0, b1, b2]``: the output pixel at column
``x`` and row ``y`` takes the input's value at column ``a0 * x + a1 * y + a2`` and row
``b0 * x + b1 * y + b2`` (the first 6 of Keras's / TensorFlow's 8-number projective transforms,
whose last two are 0 for affine maps). Points that fall outside the image are filled as
``fill_mode`` says: ``'reflect'`` (d c b a | a b c d), ``'wrap'``, ``'nearest'`` (edge value) or
``'constant'`` (``fill_value``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = {"nearest": 0, "bilinear": 1}  # spline order of map_coordinates


def affine_transform(images, transforms, *, interpolation: str, fill_mode: str, fill_value: float,
                     data_format: str = "channels_last"):
    """``images (batch, rows, cols, channels)`` (or channels first) resampled by ``transforms (batch, 6)``."""
    if data_format == "channels_first":
        images = jnp.moveaxis(images, 1, -1)
    rows, cols = images.shape[1], images.shape[2]
    y, x = jnp.meshgrid(jnp.arange(rows, dtype=transforms.dtype), jnp.arange(cols, dtype=transforms.dtype),
                        indexing="ij")

    def one_image(image, t):
        source_cols = t[0] * x + t[1] * y + t[2]
        source_rows = t[3] * x + t[4] * y + t[5]

        def one_channel(plane):
            return jax.scipy.ndimage.map_coordinates(
                plane, [source_rows, source_cols], order=INTERPOLATIONS[interpolation], mode=fill_mode,
                cval=fill_value,
            )

        return jax.vmap(one_channel, in_axes=-1, out_axes=-1)(image)

    outputs = jax.vmap(one_image)(images, transforms).astype(images.dtype)
    return jnp.moveaxis(outputs, -1, 1) if data_format == "channels_first" else outputs


def rotation_transforms(degrees, rows: int, cols: int):
    """Transforms ``(batch, 6)`` rotating each image by ``degrees (batch,)`` about its centre
    (positive angles turn the picture counter-clockwise as displayed, rows running down, as
    Keras 3 documents)."""
    radians = degrees * (math.pi / 180.0)
    cos, sin = jnp.cos(radians), jnp.sin(radians)
    cx, cy = 0.5 * (cols - 1), 0.5 * (rows - 1)
    return jnp.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos], axis=-1)


def translation_transforms(dx, dy):
    """Transforms moving each image right by ``dx`` and down by ``dy`` pixels (each ``(batch,)``)."""
    ones, zeros = jnp.ones_like(dx), jnp.zeros_like(dx)
    return jnp.stack([ones, zeros, -dx, zeros, ones, -dy], axis=-1)


def zoom_transforms(zoom_x, zoom_y, rows: int, cols: int):
    """Transforms sampling ``zoom`` times the image's extent about its centre: a factor above 1
    shows more of the plane (the picture shrinks), below 1 magnifies. Each ``(batch,)``."""
    zeros = jnp.zeros_like(zoom_x)
    return jnp.stack(
        [zoom_x, zeros, (cols - 1) / 2.0 * (1.0 - zoom_x), zeros, zoom_y, (rows - 1) / 2.0 * (1.0 - zoom_y)], axis=-1
    )
