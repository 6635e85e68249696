"""Convolutions: Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose (Keras kernel layouts).

``channels_last`` inputs are ``(batch, *spatial, channels)``; kernels are
``(*kernel_size, in_channels // groups, filters)`` and, for transposed convolutions,
``(*kernel_size, filters, in_channels)``, as in Keras, so weights move between the two.
``ConvWindow`` holds what they share with the depthwise and separable convolutions
(``conv_depthwise.py``): the window's arguments, padding, ``channels_first``, bias and activation.

Two lowerings compute the same convolution. ``"xla"``: ``lax.conv_general_dilated``. ``"patches"``
(im2col): one strided slice of the padded input per kernel offset, concatenated, then one matrix
product with the kernel. On XLA's CPU backend the patches lowering is the faster one (measured
here for a 3x3, 32->64 channel convolution on 128 images of 26x26: forward and backward 144 ms
against 308 ms), and XLA's kernel gradient inside a compiled loop, which the training step is,
runs about 15x slower than outside one (5.5 s against 0.35 s), which the patches lowering does
not. ``LOWERING = "auto"`` picks patches on CPU and XLA's convolution on accelerators, per target
platform when the program is lowered (``by_platform``).

Large patch matrices are built a chunk of the batch at a time (``lax.map``, each chunk
rematerialized in the backward pass): a fresh 85 MB temporary cost more to allocate and fill
here than the matrix product itself (the 3x3, 32->64 convolution above: 92 ms forward and
backward in chunks of 8 images, against 157 ms in one piece; PyTorch: 77 ms).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from kfunc import activations, constraints, regularizers
from kfunc.config import image_data_format
from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec
from kfunc.ops.nn.convolution import transpose_padding

_SPATIAL = {1: "W", 2: "HW", 3: "DHW"}

LOWERING = "auto"  # "auto", "patches" or "xla"
PATCH_CHUNK_BYTES = 6 * 1024 * 1024  # largest patch matrix built at once


def padding_pairs(sizes, kernel_size, strides, dilation, padding: str) -> list[tuple[int, int]]:
    """``(before, after)`` padding per spatial axis for Keras's 'valid', 'same' and 'causal'."""
    pairs = []
    for n, k, s, d in zip(sizes, kernel_size, strides, dilation, strict=True):
        span = (k - 1) * d + 1
        if padding == "valid":
            pairs.append((0, 0))
        elif padding == "causal":
            pairs.append((span - 1, 0))
        else:
            total = max((-(-n // s) - 1) * s + span - n, 0)
            pairs.append((total // 2, total - total // 2))
    return pairs


def _chunks(batch, bytes_per_example: int) -> int:
    """The fewest batch chunks (a divisor of ``batch``) whose patch matrix fits PATCH_CHUNK_BYTES."""
    if not isinstance(batch, int) or batch * bytes_per_example <= PATCH_CHUNK_BYTES:
        return 1
    wanted = -(-batch * bytes_per_example // PATCH_CHUNK_BYTES)
    return next((c for c in range(wanted, batch + 1) if batch % c == 0), batch)


def convolve_with_patches(inputs, kernel, strides, dilation, pairs):
    """im2col: ``inputs (batch, *spatial, in)`` and ``kernel (*k, in, out)`` -> ``(batch, *out_spatial, out)``."""
    rank = kernel.ndim - 2
    sizes = [n + a + b for n, (a, b) in zip(inputs.shape[1:-1], pairs, strict=True)]
    outputs = [(n - (k - 1) * d - 1) // s + 1 for n, k, d, s in zip(sizes, kernel.shape[:rank], dilation, strides, strict=True)]
    per_example = int(np.prod(outputs)) * int(np.prod(kernel.shape[:-1])) * inputs.dtype.itemsize
    batch = inputs.shape[0]
    chunks = _chunks(batch, per_example)
    if chunks == 1:
        return _patches_product(inputs, kernel, strides, dilation, pairs)
    pieces = inputs.reshape((chunks, batch // chunks) + inputs.shape[1:])
    product = jax.checkpoint(lambda piece: _patches_product(piece, kernel, strides, dilation, pairs))
    result = lax.map(product, pieces)
    return result.reshape((batch,) + result.shape[2:])


def window_slices(padded, window, strides, dilation) -> list:
    """What each kernel offset sees: for ``padded (batch, *spatial, channels)`` (already padded),
    one strided slice ``(batch, *out_spatial, channels)`` per offset of a ``window``-sized kernel,
    in the row-major order of the kernel's leading axes (the order of ``kernel.reshape(-1, ...)``)."""
    sizes = padded.shape[1:-1]
    outputs = [(n - (k - 1) * d - 1) // s + 1 for n, k, d, s in zip(sizes, window, dilation, strides, strict=True)]
    slices = []
    for offsets in itertools.product(*(range(k) for k in window)):
        starts = [o * d for o, d in zip(offsets, dilation, strict=True)]
        limits = [start + (out - 1) * s + 1 for start, out, s in zip(starts, outputs, strides, strict=True)]
        slices.append(lax.slice(padded, [0, *starts, 0], [padded.shape[0], *limits, padded.shape[-1]], [1, *strides, 1]))
    return slices


def _patches_product(inputs, kernel, strides, dilation, pairs):
    rank = kernel.ndim - 2
    padded = jnp.pad(inputs, [(0, 0), *pairs, (0, 0)])
    slices = window_slices(padded, kernel.shape[:rank], strides, dilation)
    patches = slices[0] if len(slices) == 1 else jnp.concatenate(slices, axis=-1)
    return patches @ kernel.reshape(-1, kernel.shape[-1])


def by_platform(spatial_sizes, patches, xla, *operands):
    """``patches(*operands)`` on CPU, ``xla(*operands)`` elsewhere, decided when the program is
    lowered for its platform (``lax.platform_dependent``): a function lowered for CPU holds only
    the slicing, one lowered for a GPU only XLA's convolution, and a multi-platform export made
    on a CPU carries both and picks per device. ``LOWERING`` forces one; sizes that are not
    static (symbolic shapes) always take XLA's convolution."""
    if LOWERING == "xla" or not all(isinstance(n, int) for n in spatial_sizes):
        return xla(*operands)
    if LOWERING == "patches":
        return patches(*operands)
    return lax.platform_dependent(*operands, cpu=patches, default=xla)


def dimension_numbers(rank: int, data_format: str) -> tuple[str, str, str]:
    """lax dimension numbers for a ``rank``-D convolution with Keras's kernel layout."""
    spatial = _SPATIAL[rank]
    data = "NC" + spatial if data_format == "channels_first" else "N" + spatial + "C"
    return data, spatial + "IO", data


def check_data_format(data_format, layer_class: str) -> str:
    """``data_format`` checked; None takes ``kfunc.config.image_data_format()`` (Keras 3's default)."""
    data_format = data_format or image_data_format()
    return checks.one_of(data_format, ("channels_last", "channels_first"), "data_format", layer_class)


class ConvWindow(Layer):
    """What every convolution shares (the regular, transposed, depthwise and separable ones): a
    window (``kernel_size``, ``strides``, ``dilation_rate``, ``padding``) slid over the spatial
    axes of ``(batch, *spatial, channels)`` inputs (``(batch, channels, *spatial)`` for
    ``channels_first``), then ``self.bias`` (set by ``build``, or ``None``) and the activation.
    ``rank`` is the number of spatial axes."""

    rank = 2
    transposed = False
    paddings = ("valid", "same")

    def __init__(self, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        n = self.rank
        self.kernel_size = checks.int_tuple(kernel_size, n, "kernel_size", cls)
        self.strides = checks.int_tuple(strides, n, "strides", cls)
        self.padding = checks.one_of(padding, self.paddings, "padding", cls)
        self.data_format = check_data_format(data_format, cls)
        self.dilation_rate = checks.int_tuple(dilation_rate, n, "dilation_rate", cls)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.input_spec = InputSpec(ndim=n + 2)

    @property
    def channel_axis(self) -> int:
        return 1 if self.data_format == "channels_first" else -1

    def spatial_sizes(self, shape) -> tuple:
        """The spatial sizes of an input of ``shape`` (batch included)."""
        return tuple(shape[2:] if self.data_format == "channels_first" else shape[1:-1])

    def check_input_shapes(self, input_shapes, input_dtypes):
        super().check_input_shapes(input_shapes, input_dtypes)
        if self.transposed or self.padding != "valid" or not isinstance(input_shapes, tuple):
            return
        spatial = self.spatial_sizes(input_shapes)
        for axis, (size, k, d) in enumerate(zip(spatial, self.kernel_size, self.dilation_rate, strict=True)):
            span = (k - 1) * d + 1
            if isinstance(size, int) and size < span:
                raise LayerInputError(
                    f"{describe_layer(self)}: spatial axis {axis} of the input has size {size}, smaller than the "
                    f"kernel's extent {span} (kernel_size={self.kernel_size}, padding='valid'), in input shape "
                    f"{input_shapes}. Use padding='same' or a larger input."
                )

    def on_channels_last(self, function, inputs):
        """``function`` of ``(batch, *spatial, channels)`` arrays, applied to inputs of this data_format."""
        if self.data_format != "channels_first":
            return function(inputs)
        return jnp.moveaxis(function(jnp.moveaxis(inputs, 1, -1)), -1, 1)

    def window_padding(self, spatial) -> list[tuple[int, int]]:
        return padding_pairs(spatial, self.kernel_size, self.strides, self.dilation_rate, self.padding)

    def xla_convolve(self, inputs, kernel, groups: int = 1):
        """XLA's convolution of inputs with ``kernel (*kernel_size, in_channels // groups, out_channels)``."""
        if self.padding == "same":
            padding = "SAME"
        else:
            padding = self.window_padding((None,) * self.rank)
        return lax.conv_general_dilated(
            inputs,
            kernel,
            window_strides=self.strides,
            padding=padding,
            rhs_dilation=self.dilation_rate,
            dimension_numbers=dimension_numbers(self.rank, self.data_format),
            feature_group_count=groups,
        )

    def add_bias_and_activate(self, outputs):
        if self.bias is not None:
            bias = self.bias.value
            if self.data_format == "channels_first":
                bias = bias.reshape((-1,) + (1,) * self.rank)
            outputs = outputs + bias
        return self.activation(outputs)

    def window_config(self) -> dict:
        """The config entries of the arguments ``ConvWindow.__init__`` takes."""
        return {
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.name_of(self.activation) or self.activation,
            "use_bias": self.use_bias,
        }


class BaseConv(ConvWindow):
    """Shared by the regular and transposed convolutions: ``filters`` outputs, one ``kernel``."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         activity_regularizer=activity_regularizer, **kwargs)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        cls = type(self).__name__
        self.filters = checks.positive_int(filters, "filters", cls)
        self.groups = checks.positive_int(groups, "groups", cls)
        if self.filters % self.groups:
            raise LayerConfigError(f"{cls}: filters ({self.filters}) must be divisible by groups ({self.groups}).")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise LayerConfigError(f"{cls}: strides > 1 cannot be combined with dilation_rate > 1.")
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def build(self, input_shape):
        channels = checks.known_size(input_shape[self.channel_axis], "channel axis", self, input_shape)
        if channels % self.groups:
            raise LayerConfigError(
                f"Layer '{self.name}' ({type(self).__name__}): input channels ({channels}) must be divisible "
                f"by groups ({self.groups})."
            )
        if self.transposed:
            shape = self.kernel_size + (self.filters, channels)
        else:
            shape = self.kernel_size + (channels // self.groups, self.filters)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer, regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None
        self.input_spec = InputSpec(
            ndim=self.rank + 2,
            axes={self.channel_axis: channels},
            hint=f"The kernel was built for {channels} input channels: use a new layer for other inputs.",
        )

    def convolve(self, inputs, kernel):
        spatial = self.spatial_sizes(inputs.shape)
        if self.groups != 1:
            return self.xla_convolve(inputs, kernel, self.groups)
        pairs = self.window_padding(spatial) if all(isinstance(n, int) for n in spatial) else None

        def patches(x, k):
            return self.on_channels_last(lambda y: convolve_with_patches(y, k, self.strides, self.dilation_rate, pairs), x)

        return by_platform(spatial, patches, lambda x, k: self.xla_convolve(x, k, self.groups), inputs, kernel)

    def call(self, inputs):
        return self.add_bias_and_activate(self.convolve(inputs, self.kernel.value))

    def get_config(self):
        return super().get_config() | {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "groups": self.groups,
            "activation": activations.name_of(self.activation) or self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
            "kernel_constraint": self.kernel_constraint,
            "bias_constraint": self.bias_constraint,
        }


class Conv1D(BaseConv):
    """Input ``(batch, steps, channels)``; ``padding='causal'`` pads only the past."""

    rank = 1
    paddings = ("valid", "same", "causal")


class Conv2D(BaseConv):
    """Input ``(batch, rows, cols, channels)``, output ``(batch, new_rows, new_cols, filters)``."""

    rank = 2


class Conv3D(BaseConv):
    """Input ``(batch, depth, rows, cols, channels)``."""

    rank = 3


class BaseConvTranspose(BaseConv):
    transposed = True

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, 1, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
        self.output_padding = (
            None if output_padding is None
            else checks.int_tuple(output_padding, self.rank, "output_padding", type(self).__name__, allow_zero=True)
        )

    def convolve(self, inputs, kernel):
        pads = [
            transpose_padding(k, s, d, self.padding, None if self.output_padding is None else self.output_padding[i])
            for i, (k, s, d) in enumerate(zip(self.kernel_size, self.strides, self.dilation_rate, strict=True))
        ]
        return lax.conv_transpose(
            inputs,
            kernel,
            self.strides,
            padding=pads,
            rhs_dilation=self.dilation_rate,
            dimension_numbers=dimension_numbers(self.rank, self.data_format),
            transpose_kernel=True,
        )

    def get_config(self):
        config = super().get_config() | {"output_padding": self.output_padding}
        config.pop("groups")
        return config


class Conv1DTranspose(BaseConvTranspose):
    rank = 1


class Conv2DTranspose(BaseConvTranspose):
    """Kernel ``(rows, cols, filters, in_channels)``; upsamples by ``strides``."""

    rank = 2


class Conv3DTranspose(BaseConvTranspose):
    """Input ``(batch, depth, rows, cols, channels)``; kernel ``(kd, kh, kw, filters, in_channels)``;
    upsamples each spatial axis by ``strides``."""

    rank = 3
