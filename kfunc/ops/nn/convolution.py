"""Convolutions and pooling of ``keras.ops.nn``.

``inputs``: ``(batch, *spatial, channels)`` for ``data_format="channels_last"`` (the default) or
``(batch, channels, *spatial)``, with 1 to 3 spatial axes. Kernels are Keras's layout
``(*kernel_size, in_channels, out_channels)`` (``conv``), ``(*kernel_size, in_channels,
multiplier)`` (``depthwise_conv``) and ``(*kernel_size, out_channels, in_channels)``
(``conv_transpose``). ``strides``, ``dilation_rate`` and ``pool_size``: an int or one per spatial
axis; ``padding``: "valid" or "same".
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from kfunc.ops.arrays import as_array
from kfunc.ops.operation import operation

_DATA_FORMATS = ("channels_last", "channels_first")


def _data_format(data_format, op: str) -> str:
    data_format = "channels_last" if data_format is None else data_format
    if data_format not in _DATA_FORMATS:
        raise ValueError(f"kfunc.ops.{op}: data_format must be one of {_DATA_FORMATS}, received {data_format!r}.")
    return data_format


def _per_axis(value, rank: int) -> tuple[int, ...]:
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _padding(padding, op: str) -> str:
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"kfunc.ops.{op}: padding must be 'valid' or 'same', received {padding!r}.")
    return padding.upper()


def _dimension_numbers(rank: int, data_format: str):
    spatial = "DHW"[-rank:]
    image = f"N{spatial}C" if data_format == "channels_last" else f"NC{spatial}"
    return image, f"{spatial}IO", image


def _convolve(inputs, kernel, strides, padding, data_format, dilation_rate, groups, op):
    rank = inputs.ndim - 2
    return jax.lax.conv_general_dilated(
        inputs,
        kernel,
        _per_axis(strides, rank),
        _padding(padding, op) if isinstance(padding, str) else padding,
        rhs_dilation=_per_axis(dilation_rate, rank),
        dimension_numbers=_dimension_numbers(rank, data_format),
        feature_group_count=groups,
    )


def _channels(inputs, data_format: str) -> int:
    return inputs.shape[-1] if data_format == "channels_last" else inputs.shape[1]


@operation("conv")
def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """N-D convolution; input channels a multiple of the kernel's ``in_channels`` makes a grouped
    convolution. Output ``(batch, *new_spatial, out_channels)`` (channels_last)."""
    data_format = _data_format(data_format, "conv")
    kernel = as_array(kernel)
    inputs = as_array(inputs, kernel.dtype)
    channels = _channels(inputs, data_format)
    if channels % kernel.shape[-2]:
        raise ValueError(
            f"kfunc.ops.conv: the {channels} input channels are not a multiple of the kernel's in_channels "
            f"{kernel.shape[-2]} (kernel shape {kernel.shape})."
        )
    groups = channels // kernel.shape[-2]
    return _convolve(inputs, kernel, strides, padding, data_format, dilation_rate, groups, "conv")


@operation("depthwise_conv")
def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Each input channel convolved with its own ``multiplier`` filters; output channels
    ``in_channels * multiplier``."""
    data_format = _data_format(data_format, "depthwise_conv")
    inputs, kernel = as_array(inputs), as_array(kernel)
    channels = _channels(inputs, data_format)
    if kernel.shape[-2] != channels:
        raise ValueError(
            f"kfunc.ops.depthwise_conv: the kernel's in_channels {kernel.shape[-2]} must equal the {channels} "
            f"input channels (kernel shape {kernel.shape})."
        )
    kernel = jnp.reshape(kernel, kernel.shape[:-2] + (1, channels * kernel.shape[-1]))
    return _convolve(inputs, kernel, strides, padding, data_format, dilation_rate, channels, "depthwise_conv")


@operation("separable_conv")
def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1):
    """``depthwise_conv`` followed by a 1x1 ``conv`` with ``pointwise_kernel``
    ``(1, ..., in_channels * multiplier, out_channels)``."""
    depthwise = depthwise_conv(inputs, depthwise_kernel, strides, padding, data_format, dilation_rate)
    return conv(depthwise, pointwise_kernel, 1, "valid", data_format, 1)


def transpose_padding(kernel: int, stride: int, dilation: int, padding: str, output_padding):
    """``(left, right)`` padding of the dilated input that gives Keras's transposed-conv length:
    valid: ``(n - 1) * s + max(k, s)`` (plus ``output_padding`` if given); same: ``n * s`` (or
    ``(n - 1) * s + k % 2 + output_padding``), ``k`` being the dilated kernel size."""
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        return k - 1, k - 1 + extra
    total = stride + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, k - 1)
    return left, total - left


@operation("conv_transpose")
def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None,
                   dilation_rate=1):
    """The transpose (gradient) of ``conv``: upsamples by ``strides``; kernel
    ``(*kernel_size, out_channels, in_channels)``."""
    data_format = _data_format(data_format, "conv_transpose")
    _padding(padding, "conv_transpose")
    inputs, kernel = as_array(inputs), as_array(kernel)
    rank = inputs.ndim - 2
    strides, dilation = _per_axis(strides, rank), _per_axis(dilation_rate, rank)
    extra = (None,) * rank if output_padding is None else _per_axis(output_padding, rank)
    pads = [
        transpose_padding(k, s, d, padding.lower(), p)
        for k, s, d, p in zip(kernel.shape[:rank], strides, dilation, extra, strict=True)
    ]
    return jax.lax.conv_transpose(
        inputs, kernel, strides, padding=pads, rhs_dilation=dilation,
        dimension_numbers=_dimension_numbers(rank, data_format), transpose_kernel=True,
    )


def _pool(inputs, pool_size, strides, padding, data_format, op, initial, reduce):
    data_format = _data_format(data_format, op)
    inputs = as_array(inputs)
    rank = inputs.ndim - 2
    pool_size = _per_axis(pool_size, rank)
    strides = pool_size if strides is None else _per_axis(strides, rank)

    def full(spatial):  # a per-spatial-axis tuple as one entry per input axis
        return (1, *spatial, 1) if data_format == "channels_last" else (1, 1, *spatial)

    window, steps = full(pool_size), full(strides)
    pooled = jax.lax.reduce_window(inputs, jnp.asarray(initial, inputs.dtype), reduce, window, steps,
                                   _padding(padding, op))
    return pooled, window, steps


@operation("max_pool")
def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """The maximum of each ``pool_size`` window, windows ``strides`` apart (``pool_size`` when None)."""
    pooled, _, _ = _pool(inputs, pool_size, strides, padding, data_format, "max_pool", -jnp.inf, jax.lax.max)
    return pooled


@operation("average_pool")
def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """The mean of each ``pool_size`` window; with "same" padding, of the window's real entries."""
    pooled, window, steps = _pool(inputs, pool_size, strides, padding, data_format, "average_pool", 0.0, jax.lax.add)
    if padding.lower() == "valid":
        return pooled / math.prod(window)
    inputs = as_array(inputs)
    ones = jnp.ones([size if w != 1 else 1 for size, w in zip(inputs.shape, window, strict=True)], inputs.dtype)
    counts = jax.lax.reduce_window(ones, jnp.asarray(0.0, inputs.dtype), jax.lax.add, window, steps, "SAME")
    return pooled / counts


__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
