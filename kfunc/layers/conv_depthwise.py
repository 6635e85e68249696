"""Depthwise and separable convolutions: DepthwiseConv1D/2D, SeparableConv1D/2D (Keras's weights).

A depthwise convolution convolves every input channel with its own ``depth_multiplier`` kernels:
``kernel (*kernel_size, in_channels, depth_multiplier)``; output channel
``c * depth_multiplier + m`` comes from input channel ``c``, as in Keras. A separable convolution
follows it with a pointwise (1x1) convolution mixing the channels:
``depthwise_kernel (*kernel_size, in_channels, depth_multiplier)``,
``pointwise_kernel (*(1,) * rank, in_channels * depth_multiplier, filters)``, ``bias (filters,)``.

The window, padding, ``channels_first`` handling, bias and activation are ``conv.ConvWindow``'s.
Two lowerings, chosen like the regular convolutions' (``conv.LOWERING``): XLA's convolution with
one feature group per input channel, or, on CPU, a sum over the kernel's offsets of each
offset's window slice (``conv.window_slices``) times that offset's per-channel weights. XLA's
grouped convolution is slow on CPU, its kernel gradient inside a compiled loop (the training step)
most of all: ``python benchmarks/depthwise.py`` (a 3x3 depthwise convolution of 64 images of
28x28x32, forward and backward, 2-core Xeon) measured 84 ms against 52 ms for the slices in one
jitted call, and 1.67 s against 27 ms per step inside a ``fori_loop``.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc import constraints, regularizers
from kfunc.layers import checks
from kfunc.layers.conv import ConvWindow, by_platform, window_slices
from kfunc.layers.input_spec import InputSpec


def depthwise_by_slices(inputs, kernel, strides, dilation, pairs):
    """``inputs (batch, *spatial, channels)``, ``kernel (*kernel_size, channels, multiplier)`` ->
    ``(batch, *out_spatial, channels * multiplier)``; ``pairs``: ``(before, after)`` padding per
    spatial axis."""
    rank = kernel.ndim - 2
    channels, multiplier = kernel.shape[-2:]
    padded = jnp.pad(inputs, [(0, 0), *pairs, (0, 0)])
    taps = kernel.reshape(-1, channels, multiplier)
    total = None
    for window, tap in zip(window_slices(padded, kernel.shape[:rank], strides, dilation), taps, strict=True):
        term = window[..., None] * tap  # (batch, *out_spatial, channels, multiplier)
        total = term if total is None else total + term
    return total.reshape(total.shape[:-2] + (channels * multiplier,))


class BaseDepthwiseConv(ConvWindow):
    """Each input channel convolved with ``depth_multiplier`` kernels of its own.

    Input ``(batch, *spatial, channels)`` (``channels_last``), output
    ``(batch, *out_spatial, channels * depth_multiplier)``. Weights: ``kernel
    (*kernel_size, channels, depth_multiplier)``, ``bias (channels * depth_multiplier,)``. Unlike
    the regular convolutions, ``strides`` and ``dilation_rate`` may both exceed 1 (as in Keras).
    """

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         activity_regularizer=activity_regularizer, **kwargs)
        self.depth_multiplier = checks.positive_int(depth_multiplier, "depth_multiplier", type(self).__name__)
        self.depthwise_initializer = depthwise_initializer
        self.bias_initializer = bias_initializer
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _input_channels(self, input_shape) -> int:
        channels = checks.known_size(input_shape[self.channel_axis], "channel axis", self, input_shape)
        self.input_spec = InputSpec(
            ndim=self.rank + 2,
            axes={self.channel_axis: channels},
            hint=f"The kernels were built for {channels} input channels: use a new layer for other inputs.",
        )
        return channels

    def build(self, input_shape):
        channels = self._input_channels(input_shape)
        shape = self.kernel_size + (channels, self.depth_multiplier)
        self.kernel = self.add_weight("kernel", shape, self.depthwise_initializer, regularizer=self.depthwise_regularizer,
                                      constraint=self.depthwise_constraint)
        outputs = channels * self.depth_multiplier
        self.bias = self.add_weight("bias", (outputs,), self.bias_initializer, regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None

    def depthwise_convolve(self, inputs, kernel):
        """``kernel (*kernel_size, channels, multiplier)`` over inputs of this layer's data_format."""
        spatial = self.spatial_sizes(inputs.shape)
        pairs = self.window_padding(spatial) if all(isinstance(n, int) for n in spatial) else None

        def slices(x, k):
            return self.on_channels_last(lambda y: depthwise_by_slices(y, k, self.strides, self.dilation_rate, pairs), x)

        def grouped(x, k):
            channels, multiplier = k.shape[-2:]
            # One feature group per input channel; a group's ``multiplier`` outputs are adjacent,
            # which is the order of Keras's (channels, multiplier) kernel axes flattened.
            return self.xla_convolve(x, k.reshape(k.shape[:-2] + (1, channels * multiplier)), groups=channels)

        return by_platform(spatial, slices, grouped, inputs, kernel)

    def call(self, inputs):
        return self.add_bias_and_activate(self.depthwise_convolve(inputs, self.kernel.value))

    def get_config(self):
        return super().get_config() | self.window_config() | {
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": self.depthwise_initializer,
            "bias_initializer": self.bias_initializer,
            "depthwise_regularizer": self.depthwise_regularizer,
            "bias_regularizer": self.bias_regularizer,
            "depthwise_constraint": self.depthwise_constraint,
            "bias_constraint": self.bias_constraint,
        }


class DepthwiseConv1D(BaseDepthwiseConv):
    """Input ``(batch, steps, channels)``, output ``(batch, new_steps, channels * depth_multiplier)``."""

    rank = 1


class DepthwiseConv2D(BaseDepthwiseConv):
    """Input ``(batch, rows, cols, channels)``, output
    ``(batch, new_rows, new_cols, channels * depth_multiplier)``."""

    rank = 2


class BaseSeparableConv(BaseDepthwiseConv):
    """A depthwise convolution, then a pointwise (1x1) convolution to ``filters`` channels.

    Input ``(batch, *spatial, channels)``, output ``(batch, *out_spatial, filters)``. Weights, in
    Keras's order: ``depthwise_kernel (*kernel_size, channels, depth_multiplier)``,
    ``pointwise_kernel (*(1,) * rank, channels * depth_multiplier, filters)``, ``bias (filters,)``.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        self.filters = checks.positive_int(filters, "filters", type(self).__name__)
        self.pointwise_initializer = pointwise_initializer
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, input_shape):
        channels = self._input_channels(input_shape)
        depthwise_shape = self.kernel_size + (channels, self.depth_multiplier)
        pointwise_shape = (1,) * self.rank + (channels * self.depth_multiplier, self.filters)
        self.depthwise_kernel = self.add_weight("depthwise_kernel", depthwise_shape, self.depthwise_initializer,
                                                regularizer=self.depthwise_regularizer,
                                                constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_weight("pointwise_kernel", pointwise_shape, self.pointwise_initializer,
                                                regularizer=self.pointwise_regularizer,
                                                constraint=self.pointwise_constraint)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer, regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None

    def call(self, inputs):
        depthwise = self.depthwise_convolve(inputs, self.depthwise_kernel.value)
        pointwise = self.pointwise_kernel.value.reshape(-1, self.filters)  # (channels * multiplier, filters)
        return self.add_bias_and_activate(self.on_channels_last(lambda x: x @ pointwise, depthwise))

    def get_config(self):
        return super().get_config() | {
            "filters": self.filters,
            "pointwise_initializer": self.pointwise_initializer,
            "pointwise_regularizer": self.pointwise_regularizer,
            "pointwise_constraint": self.pointwise_constraint,
        }


class SeparableConv1D(BaseSeparableConv):
    """Input ``(batch, steps, channels)``, output ``(batch, new_steps, filters)``."""

    rank = 1


class SeparableConv2D(BaseSeparableConv):
    """Input ``(batch, rows, cols, channels)``, output ``(batch, new_rows, new_cols, filters)``."""

    rank = 2
