"""Deterministic image layers: Resizing and CenterCrop, on batches of images
``(batch, height, width, channels)`` (or ``(batch, channels, height, width)`` with
``data_format='channels_first'``). Same at training and inference; no weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.errors import LayerConfigError
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.conv import check_data_format
from kfunc.layers.input_spec import InputSpec

RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic")


def image_axes(data_format: str) -> tuple[int, int]:
    """The (height, width) axes of a batch of images."""
    return (2, 3) if data_format == "channels_first" else (1, 2)


def aspect_crop_box(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int, int, int]:
    """``(top, left, crop_height, crop_width)``: the largest centred box of the target's aspect ratio."""
    crop_height = max(min(height, int(width * target_height / target_width)), 1)
    crop_width = max(min(width, int(height * target_width / target_height)), 1)
    return int((height - crop_height) / 2), int((width - crop_width) / 2), crop_height, crop_width


def crop_images(images, data_format: str, top: int, left: int, height: int, width: int):
    index = [slice(None)] * images.ndim
    h_axis, w_axis = image_axes(data_format)
    index[h_axis], index[w_axis] = slice(top, top + height), slice(left, left + width)
    return images[tuple(index)]


def pad_to_aspect(images, data_format: str, target_height: int, target_width: int, fill_value: float):
    """Pad the short side equally on both ends with ``fill_value`` to approach the target's aspect ratio."""
    h_axis, w_axis = image_axes(data_format)
    height, width = images.shape[h_axis], images.shape[w_axis]
    pad_top = int((max(height, int(width * target_height / target_width)) - height) / 2)
    pad_left = int((max(width, int(height * target_width / target_height)) - width) / 2)
    widths = [(0, 0)] * images.ndim
    if pad_top > 0:
        widths[h_axis] = (pad_top, pad_top)
    elif pad_left > 0:
        widths[w_axis] = (pad_left, pad_left)
    return jnp.pad(images, widths, constant_values=jnp.asarray(fill_value, images.dtype))


def resize_images(images, data_format: str, height: int, width: int, interpolation: str, antialias: bool = False):
    """``jax.image.resize`` of the height and width axes; integer images are rounded and clipped back."""
    shape = list(images.shape)
    h_axis, w_axis = image_axes(data_format)
    shape[h_axis], shape[w_axis] = height, width
    dtype = images.dtype
    if jnp.issubdtype(dtype, jnp.integer):
        info = jnp.iinfo(dtype)
        resized = jax.image.resize(images.astype(jnp.float32), shape, method=interpolation, antialias=antialias)
        return jnp.clip(jnp.round(resized), info.min, info.max).astype(dtype)
    return jax.image.resize(images, shape, method=interpolation, antialias=antialias)


def _size(value, argument: str, layer_class: str) -> int:
    return checks.positive_int(value, argument, layer_class)


class Resizing(Layer):
    """Resizes images to ``(height, width)`` with ``interpolation``.

    ``crop_to_aspect_ratio``: first crop the largest centred box of the target's aspect ratio (no
    distortion); ``pad_to_aspect_ratio``: first pad the short side with ``fill_value``.
    Input ``(batch, rows, cols, channels)``, output ``(batch, height, width, channels)``.
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                 fill_mode="constant", fill_value=0.0, antialias=False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.height = _size(height, "height", "Resizing")
        self.width = _size(width, "width", "Resizing")
        self.interpolation = checks.one_of(interpolation, RESIZE_INTERPOLATIONS, "interpolation", "Resizing")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise LayerConfigError(
                "Resizing: crop_to_aspect_ratio and pad_to_aspect_ratio exclude each other; set at most one to True."
            )
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode = checks.one_of(fill_mode, ("constant",), "fill_mode", "Resizing")
        self.fill_value = float(fill_value)
        self.antialias = bool(antialias)
        self.data_format = check_data_format(data_format, "Resizing")
        self.input_spec = InputSpec(ndim=4, hint="Resizing takes a batch of images (batch, rows, cols, channels).")

    def call(self, inputs):
        h_axis, w_axis = image_axes(self.data_format)
        if self.crop_to_aspect_ratio:
            box = aspect_crop_box(inputs.shape[h_axis], inputs.shape[w_axis], self.height, self.width)
            inputs = crop_images(inputs, self.data_format, *box)
        elif self.pad_to_aspect_ratio:
            inputs = pad_to_aspect(inputs, self.data_format, self.height, self.width, self.fill_value)
        return resize_images(inputs, self.data_format, self.height, self.width, self.interpolation, self.antialias)

    def get_config(self):
        return super().get_config() | {
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "antialias": self.antialias,
            "data_format": self.data_format,
        }


class CenterCrop(Layer):
    """Crops the centred ``(height, width)`` box of each image; an image smaller than that on a
    side is instead cropped to the target's aspect ratio and resized (bilinear), as Keras 3 does.
    Output in the compute dtype, ``(batch, height, width, channels)``.
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.height = _size(height, "height", "CenterCrop")
        self.width = _size(width, "width", "CenterCrop")
        self.data_format = check_data_format(data_format, "CenterCrop")
        self.input_spec = InputSpec(ndim=4, hint="CenterCrop takes a batch of images (batch, rows, cols, channels).")

    def call(self, inputs):
        inputs = inputs.astype(self.compute_dtype)
        h_axis, w_axis = image_axes(self.data_format)
        height, width = inputs.shape[h_axis], inputs.shape[w_axis]
        if height >= self.height and width >= self.width:
            top, left = (height - self.height) // 2, (width - self.width) // 2
            return crop_images(inputs, self.data_format, top, left, self.height, self.width)
        box = aspect_crop_box(height, width, self.height, self.width)
        cropped = crop_images(inputs, self.data_format, *box)
        return resize_images(cropped, self.data_format, self.height, self.width, "bilinear")

    def get_config(self):
        return super().get_config() | {"height": self.height, "width": self.width, "data_format": self.data_format}

