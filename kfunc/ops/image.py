"""Image ops of ``keras.ops.image``: ``resize``.

``images``: ``(batch, height, width, channels)`` or one image ``(height, width, channels)`` for
``data_format="channels_last"`` (the default); channels come first after the batch axis for
``"channels_first"``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.ops.arrays import as_array
from kfunc.ops.operation import operation

RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic")


def _fit_aspect_ratio(images, target, height_axis: int, *, crop: bool, fill_value):
    """``images`` center-cropped (``crop``) or padded with ``fill_value`` to the aspect ratio of
    ``target`` = ``(height, width)``, as Keras 3 does before resizing."""
    height, width = images.shape[height_axis], images.shape[height_axis + 1]
    target_height, target_width = target
    new_height = int(width * target_height / target_width)
    new_width = int(height * target_width / target_height)
    if crop:
        new_height, new_width = max(min(height, new_height), 1), max(min(width, new_width), 1)
        top, left = (height - new_height) // 2, (width - new_width) // 2
        index = [slice(None)] * images.ndim
        index[height_axis] = slice(top, top + new_height)
        index[height_axis + 1] = slice(left, left + new_width)
        return images[tuple(index)]
    top, left = max(height, new_height) - height, max(width, new_width) - width
    pads = [(0, 0)] * images.ndim
    # Keras pads the same amount, half the difference rounded down, on both sides; only the
    # axis that is too short for the aspect ratio.
    if top // 2 > 0:
        pads[height_axis] = (top // 2, top // 2)
    elif left // 2 > 0:
        pads[height_axis + 1] = (left // 2, left // 2)
    return jnp.pad(images, pads, constant_values=jnp.asarray(fill_value, images.dtype))


@operation("image.resize")
def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None):
    """``images`` resized to ``size`` = ``(height, width)`` with ``interpolation`` (one of
    ``RESIZE_INTERPOLATIONS``); ``antialias`` filters when downsampling; ``crop_to_aspect_ratio``
    / ``pad_to_aspect_ratio`` first crop or pad (with ``fill_value``) to the target's aspect ratio."""
    data_format = "channels_last" if data_format is None else data_format
    if interpolation not in RESIZE_INTERPOLATIONS:
        raise ValueError(
            f"kfunc.ops.image.resize: interpolation must be one of {RESIZE_INTERPOLATIONS}, received {interpolation!r}."
        )
    if fill_mode != "constant":
        raise ValueError(f"kfunc.ops.image.resize: fill_mode must be 'constant', received {fill_mode!r}.")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("kfunc.ops.image.resize: give crop_to_aspect_ratio or pad_to_aspect_ratio, not both.")
    if len(size) != 2:
        raise ValueError(f"kfunc.ops.image.resize: size must be (height, width), received {size!r}.")
    images = as_array(images)
    if images.ndim not in (3, 4):
        raise ValueError(
            "kfunc.ops.image.resize: images must be (batch, height, width, channels) or (height, width, channels), "
            f"received shape {images.shape}."
        )
    height_axis = images.ndim - 3 if data_format == "channels_last" else images.ndim - 2
    if crop_to_aspect_ratio or pad_to_aspect_ratio:
        images = _fit_aspect_ratio(images, tuple(size), height_axis, crop=crop_to_aspect_ratio, fill_value=fill_value)
    shape = list(images.shape)
    shape[height_axis : height_axis + 2] = size
    return jax.image.resize(images, tuple(shape), method=interpolation, antialias=antialias)


__all__ = ["resize"]
