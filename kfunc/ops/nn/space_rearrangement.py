"""Moving values between space and channels, ``keras.ops.nn``: ``depth_to_space`` (pixel
shuffle), ``space_to_depth``, and the sliding-block ops ``unfold`` (im2col) and ``fold`` (col2im).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.ops.arrays import as_array
from kfunc.ops.nn.convolution import _data_format, _per_axis
from kfunc.ops.operation import operation


def _check_images(x, op: str):
    if x.ndim != 4:
        raise ValueError(f"kfunc.ops.{op} expects 4-D images (batch, height, width, channels), received shape "
                         f"{tuple(x.shape)}.")


@operation("depth_to_space")
def depth_to_space(x, block_size, data_format="channels_last"):
    """``(batch, h, w, c)`` -> ``(batch, h * block_size, w * block_size, c / block_size**2)``:
    each pixel's channels become a ``block_size x block_size`` block (``channels_first``:
    ``(batch, c, h, w)`` in and out)."""
    x = as_array(x)
    _check_images(x, "depth_to_space")
    data_format = _data_format(data_format, "depth_to_space")
    b = block_size
    channels = x.shape[-1] if data_format == "channels_last" else x.shape[1]
    if channels % (b * b):
        raise ValueError(f"kfunc.ops.depth_to_space: the {channels} channels must be a multiple of block_size**2 = "
                         f"{b * b} (input shape {tuple(x.shape)}).")
    if data_format == "channels_last":
        n, h, w, c = x.shape
        x = x.reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)
        return x.reshape(n, h * b, w * b, c // (b * b))
    n, c, h, w = x.shape
    x = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // (b * b), h * b, w * b)


@operation("space_to_depth")
def space_to_depth(x, block_size, data_format="channels_last"):
    """``(batch, h, w, c)`` -> ``(batch, h / block_size, w / block_size, c * block_size**2)``, the
    inverse of ``depth_to_space`` (``channels_first``: ``(batch, c, h, w)`` in and out)."""
    x = as_array(x)
    _check_images(x, "space_to_depth")
    data_format = _data_format(data_format, "space_to_depth")
    b = block_size
    h, w = x.shape[1:3] if data_format == "channels_last" else x.shape[2:4]
    if h % b or w % b:
        raise ValueError(f"kfunc.ops.space_to_depth: height and width must be multiples of block_size={b}, "
                         f"received shape {tuple(x.shape)}.")
    if data_format == "channels_last":
        n, h, w, c = x.shape
        x = x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
        return x.reshape(n, h // b, w // b, c * b * b)
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * b * b, h // b, w // b)


def _pairs(kernel_size, dilation, padding, stride):
    return tuple(_per_axis(value, 2) for value in (kernel_size, dilation, padding, stride))


@operation("unfold")
def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """The sliding ``kernel_size`` blocks of channels-first images ``(batch, c, h, w)`` as columns:
    ``(batch, c * kh * kw, blocks)`` (PyTorch's ``unfold``; each argument an int or a pair)."""
    x = as_array(x)
    if x.ndim != 4:
        raise ValueError(f"kfunc.ops.unfold expects channels-first images (batch, channels, height, width), "
                         f"received shape {tuple(x.shape)}.")
    kernel, dilation, padding, stride = _pairs(kernel_size, dilation, padding, stride)
    x = jnp.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    patches = jax.lax.conv_general_dilated_patches(
        x, filter_shape=kernel, window_strides=stride, padding="VALID", rhs_dilation=dilation,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )
    return patches.reshape(patches.shape[0], patches.shape[1], -1)


@operation("fold")
def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The inverse arrangement of ``unfold``: columns ``(batch, c * kh * kw, blocks)`` summed back
    into images ``(batch, c, *output_size)``; overlapping blocks add up (PyTorch's ``fold``)."""
    x = as_array(x)
    (height, width), kernel, dilation, padding, stride = (_per_axis(output_size, 2),
                                                          *_pairs(kernel_size, dilation, padding, stride))
    n, columns, blocks = x.shape
    channels = columns // (kernel[0] * kernel[1])
    counts = [(size + 2 * p - d * (k - 1) - 1) // s + 1
              for size, k, d, p, s in zip((height, width), kernel, dilation, padding, stride, strict=True)]
    if channels * kernel[0] * kernel[1] != columns or counts[0] * counts[1] != blocks:
        raise ValueError(
            f"kfunc.ops.fold: input shape {tuple(x.shape)} does not fit kernel_size={kernel} and output_size="
            f"{(height, width)}: expected (batch, channels * {kernel[0] * kernel[1]}, {counts[0] * counts[1]})."
        )
    x = x.reshape(n, channels, kernel[0], kernel[1], counts[0], counts[1])
    padded = jnp.zeros((n, channels, height + 2 * padding[0], width + 2 * padding[1]), x.dtype)
    # Add each kernel offset's plane of values at its strided, dilated positions (kh * kw scatters).
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            top, left = i * dilation[0], j * dilation[1]
            padded = padded.at[:, :, top:top + stride[0] * (counts[0] - 1) + 1:stride[0],
                               left:left + stride[1] * (counts[1] - 1) + 1:stride[1]].add(x[:, :, i, j])
    return padded[:, :, padding[0]:padding[0] + height, padding[1]:padding[1] + width]


__all__ = ["depth_to_space", "space_to_depth", "unfold", "fold"]
