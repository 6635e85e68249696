"""Random geometric augmentation, active only in training: RandomShear (affine),
RandomPerspective (projective) and RandomElasticTransform (a smooth random displacement field),
with Keras 3's names and arguments.

Input ``(batch, rows, cols, channels)`` (or channels first), output the same shape in the
compute dtype. A projective transform is 8 numbers per image ``[a0, a1, a2, b0, b1, b2, c0,
c1]``: the output pixel at column ``x`` and row ``y`` takes the input's value at column
``(a0 x + a1 y + a2) / k`` and row ``(b0 x + b1 y + b2) / k``, ``k = c0 x + c1 y + 1`` (the
affine maps of ``image_transform`` are those with ``c0 = c1 = 0``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from kfunc.errors import LayerConfigError
from kfunc.layers import checks
from kfunc.layers.augmentation import AffineAugmentation, RandomImageLayer, _value_range, factor_range
from kfunc.layers.color_augmentation import bounded_factor
from kfunc.layers.image_transform import INTERPOLATIONS
from kfunc.layers.region_augmentation import bernoulli_per_image, gaussian_kernel


class RandomShear(AffineAugmentation):
    """Shears each image about its top-left corner: the output pixel ``(x, y)`` samples the input
    at ``(x + sx * y, y + sy * x)``, ``sx`` drawn from ``x_factor`` and ``sy`` from ``y_factor``
    (a number ``f``: ``[-f, f]``; a pair within [-1, 1]), both negated for a random half of the images."""

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 data_format=None, seed=None, **kwargs):
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         data_format=data_format, **kwargs)
        # A saved config holds the signed pair a number becomes, hence the range [-1, 1].
        self.x_factor = factor_range(x_factor, "x_factor", "RandomShear", -1.0, 1.0)
        self.y_factor = factor_range(y_factor, "y_factor", "RandomShear", -1.0, 1.0)

    def transforms(self, key, batch, rows, cols):
        sign_key, x_key, y_key = jax.random.split(key, 3)
        sign = jnp.where(jax.random.uniform(sign_key, (batch,)) > 0.5, -1.0, 1.0)
        shear_x = sign * self.per_image(x_key, batch, *self.x_factor)
        shear_y = sign * self.per_image(y_key, batch, *self.y_factor)
        ones, zeros = jnp.ones_like(shear_x), jnp.zeros_like(shear_x)
        return jnp.stack([ones, shear_x, zeros, shear_y, ones, zeros], axis=-1)

    def get_config(self):
        return super().get_config() | {"x_factor": self.x_factor, "y_factor": self.y_factor}


def homographies(start_points, end_points):
    """``(batch, 8)`` projective transforms taking each of the 4 ``end_points (batch, 4, 2)``
    (output ``(x, y)``) to the matching ``start_points`` (input positions)."""
    sx, sy = start_points[..., 0], start_points[..., 1]
    ex, ey = end_points[..., 0], end_points[..., 1]
    zeros, ones = jnp.zeros_like(ex), jnp.ones_like(ex)
    # Each correspondence gives two linear equations in the 8 unknowns.
    x_rows = jnp.stack([ex, ey, ones, zeros, zeros, zeros, -sx * ex, -sx * ey], axis=-1)
    y_rows = jnp.stack([zeros, zeros, zeros, ex, ey, ones, -sy * ex, -sy * ey], axis=-1)
    system = jnp.concatenate([x_rows, y_rows], axis=1)
    targets = jnp.concatenate([sx, sy], axis=-1)[..., None]
    return jnp.linalg.solve(system, targets)[..., 0]


def projective_transform(images, transforms, *, interpolation: str, fill_value: float, data_format: str):
    """``images (batch, rows, cols, channels)`` (or channels first) resampled through
    ``transforms (batch, 8)``; points outside the image read ``fill_value``."""
    if data_format == "channels_first":
        images = jnp.moveaxis(images, 1, -1)
    rows, cols = images.shape[1], images.shape[2]
    y, x = jnp.meshgrid(jnp.arange(rows, dtype=transforms.dtype), jnp.arange(cols, dtype=transforms.dtype),
                        indexing="ij")

    def one_image(image, t):
        scale = t[6] * x + t[7] * y + 1.0
        source_cols = (t[0] * x + t[1] * y + t[2]) / scale
        source_rows = (t[3] * x + t[4] * y + t[5]) / scale

        def one_channel(plane):
            return jax.scipy.ndimage.map_coordinates(
                plane, [source_rows, source_cols], order=INTERPOLATIONS[interpolation], mode="constant",
                cval=fill_value,
            )

        return jax.vmap(one_channel, in_axes=-1, out_axes=-1)(image)

    outputs = jax.vmap(one_image)(images, transforms).astype(images.dtype)
    return jnp.moveaxis(outputs, -1, 1) if data_format == "channels_first" else outputs


class RandomPerspective(RandomImageLayer):
    """Warps each image, with a probability drawn per image from ``factor`` (a number ``f``:
    ``[0, f]``; a pair within [0, 1]), by the perspective map that moves its four corners ``(x, y)``
    to ``(x, y) * (1 + d)``, each ``d`` drawn from ``[-scale / 2, scale / 2]`` (``scale`` in [0, 1]);
    uncovered pixels read ``fill_value``."""

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_value=0.0, seed=None, data_format=None,
                 **kwargs):
        super().__init__(seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "RandomPerspective", 0.0, 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 1:
            raise LayerConfigError(f"RandomPerspective: scale must be a number in [0, 1], received {scale!r}.")
        self.scale = scale
        self.interpolation = checks.one_of(interpolation, tuple(INTERPOLATIONS), "interpolation", "RandomPerspective")
        self.fill_value = fill_value

    def augment(self, images, key):
        apply_key, corner_key = jax.random.split(key)
        batch = images.shape[0]
        rows, cols = self.image_size(images)
        corners = jnp.asarray([[0.0, 0.0], [cols - 1, 0.0], [0.0, rows - 1], [cols - 1, rows - 1]], jnp.float32)
        start = jnp.broadcast_to(corners, (batch, 4, 2))
        moves = jax.random.uniform(corner_key, (batch, 4, 2), minval=-0.5 * self.scale, maxval=0.5 * self.scale)
        warped = projective_transform(images, homographies(start, start + start * moves),
                                      interpolation=self.interpolation, fill_value=float(self.fill_value),
                                      data_format=self.data_format)
        chosen = bernoulli_per_image(apply_key, batch, self.factor)[:, None, None, None]
        return jnp.where(chosen, warped, images)

    def get_config(self):
        return super().get_config() | {
            "factor": self.factor,
            "scale": self.scale,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


ELASTIC_FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


def _smooth_fields(fields, sigma, size: int):
    """``fields (batch, rows, cols)`` blurred by a ``size``-tap Gaussian of ``sigma`` along both
    axes (zero padding, as Keras 3's gaussian_blur)."""
    taps = gaussian_kernel(size, sigma)
    kernel = jnp.outer(taps, taps)[:, :, None, None]
    return lax.conv_general_dilated(fields[..., None], kernel, (1, 1), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))[..., 0]


class RandomElasticTransform(RandomImageLayer):
    """Displaces each pixel of an image, with a probability drawn per image from ``factor`` (a
    number ``f``: ``[0, f]``; a pair within [0, 1]), by a smooth random field: Gaussian noise of
    standard deviation ``sigma`` blurred by a Gaussian of ``sigma`` and scaled by ``alpha``, with
    ``alpha = 0.1 * max(rows, cols) * s`` and ``sigma = 0.05 * min(rows, cols) * s``, ``s`` drawn
    once per step from ``scale`` (a number: ``[0, s]``; a pair within [0, 1]). Outside the image,
    ``fill_mode`` (``'reflect'``, ``'mirror'``, ``'wrap'``, ``'nearest'``, ``'constant'`` with
    ``fill_value``); the result is clipped to ``value_range``. The blur has the taps of the largest
    sigma ``scale`` allows (a static size; Keras 3 sizes it by the drawn sigma), and the two
    displacement components are drawn independently (Keras 3 draws them from one seed, equal)."""

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed, data_format, **kwargs)
        cls = "RandomElasticTransform"
        self.factor = bounded_factor(factor, "factor", cls, 0.0, 1.0)
        self.scale = bounded_factor(scale, "scale", cls, 0.0, 1.0)
        self.interpolation = checks.one_of(interpolation, tuple(INTERPOLATIONS), "interpolation", cls)
        self.fill_mode = checks.one_of(fill_mode, ELASTIC_FILL_MODES, "fill_mode", cls)
        self.fill_value = fill_value
        self.value_range = _value_range(value_range, cls)

    def augment(self, images, key):
        if self.scale[1] == 0 or self.factor[1] == 0:
            return images
        apply_key, scale_key, noise_key = jax.random.split(key, 3)
        batch = images.shape[0]
        rows, cols = self.image_size(images)
        strength = jax.random.uniform(scale_key, (), minval=self.scale[0], maxval=self.scale[1])
        alpha = max(rows, cols) * 0.1 * strength
        sigma = jnp.maximum(min(rows, cols) * 0.05 * strength, 1e-6)
        size = int(6 * min(rows, cols) * 0.05 * self.scale[1]) | 1
        noise = jax.random.normal(noise_key, (2, batch, rows, cols)) * sigma
        shift_x, shift_y = (alpha * _smooth_fields(field, sigma, size) for field in noise)
        y, x = jnp.meshgrid(jnp.arange(rows, dtype=jnp.float32), jnp.arange(cols, dtype=jnp.float32), indexing="ij")
        last = jnp.moveaxis(images, 1, -1) if self.data_format == "channels_first" else images

        def one_image(image, dx, dy):
            def one_channel(plane):
                return jax.scipy.ndimage.map_coordinates(
                    plane, [y + dy, x + dx], order=INTERPOLATIONS[self.interpolation], mode=self.fill_mode,
                    cval=self.fill_value,
                )

            return jax.vmap(one_channel, in_axes=-1, out_axes=-1)(image)

        warped = jax.vmap(one_image)(last, shift_x, shift_y).astype(images.dtype)
        warped = jnp.moveaxis(warped, -1, 1) if self.data_format == "channels_first" else warped
        chosen = bernoulli_per_image(apply_key, batch, self.factor)[:, None, None, None]
        return jnp.clip(jnp.where(chosen, warped, images), *self.value_range)

    def get_config(self):
        return super().get_config() | {
            "factor": self.factor,
            "scale": self.scale,
            "interpolation": self.interpolation,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "value_range": self.value_range,
        }
