"""ConvLSTM1D, ConvLSTM2D and ConvLSTM3D: LSTMs whose input and recurrent products are convolutions (Keras 3).

Input ``(batch, timesteps, *spatial, channels)`` (``channels_last``) or ``(batch, timesteps,
channels, *spatial)``; output ``(batch, *out_spatial, filters)`` or, with ``return_sequences``,
``(batch, timesteps, *out_spatial, filters)`` (channels first: filters before the spatial axes);
``return_state`` appends the final ``[h, c]``, each shaped like one output step. The input
convolution has ``strides``, ``padding`` and ``dilation_rate``; the recurrent one is strided 1 with
``"same"`` padding. Weights (Keras's): ``kernel (*kernel_size, channels, 4*filters)``,
``recurrent_kernel (*kernel_size, filters, 4*filters)``, ``bias (4*filters,)``; gates i, f, c, o.
The LSTM gating is ``LSTMCell``'s; the convolution of every timestep's input is one call before
the scan.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from kfunc import naming
from kfunc.errors import LayerConfigError
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.conv import check_data_format, dimension_numbers, padding_pairs
from kfunc.layers.input_spec import InputSpec
from kfunc.layers.recurrent import RNN
from kfunc.layers.rnn_cells import LSTMCell


def _convolve(inputs, kernel, strides, dilation, padding):
    """``inputs (..., *spatial, in)`` convolved with ``kernel (*k, in, out)`` (channels last), any
    number of leading axes (folded into one batch axis)."""
    rank = kernel.ndim - 2
    leading = inputs.shape[: inputs.ndim - rank - 1]
    flat = inputs.reshape((int(np.prod(leading)),) + inputs.shape[len(leading):])
    pairs = padding_pairs(flat.shape[1:-1], kernel.shape[:rank], strides, dilation, padding)
    outputs = lax.conv_general_dilated(flat, kernel, strides, pairs, rhs_dilation=dilation,
                                       dimension_numbers=dimension_numbers(rank, "channels_last"))
    return outputs.reshape(leading + outputs.shape[1:])


class ConvLSTMCell(LSTMCell):
    """One ConvLSTM timestep on channels-last inputs ``(batch, *spatial, channels)``; states
    ``[h, c]`` of shape ``(batch, *out_spatial, filters)``."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, **kwargs):
        cls = kwargs.pop("layer_class", f"ConvLSTM{rank}D")
        super().__init__(filters, **kwargs)
        self.rank = rank
        self.kernel_size = checks.int_tuple(kernel_size, rank, "kernel_size", cls)
        self.strides = checks.int_tuple(strides, rank, "strides", cls)
        self.padding = checks.one_of(padding, ("valid", "same"), "padding", cls)
        self.dilation_rate = checks.int_tuple(dilation_rate, rank, "dilation_rate", cls)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise LayerConfigError(
                f"{cls}: strides > 1 cannot be combined with dilation_rate > 1, received strides={self.strides} "
                f"and dilation_rate={self.dilation_rate}; set one of them to 1."
            )

    def kernel_shapes(self, input_shape):
        for axis in range(1, len(input_shape) - 1):
            checks.known_size(input_shape[axis], f"spatial axis {axis}", self, input_shape)
        channels = checks.known_size(input_shape[-1], "channel axis", self, input_shape)
        width = self.gates * self.units
        return self.kernel_size + (channels, width), self.kernel_size + (self.units, width)

    def project(self, inputs):
        projected = _convolve(inputs, self.kernel.value, self.strides, self.dilation_rate, self.padding)
        return projected + self.input_bias()

    def recurrent_product(self, h):
        ones = (1,) * self.rank
        return _convolve(h, self.recurrent_kernel.value, ones, ones, "same")


class ConvLSTM(RNN):
    """The ConvLSTM layers' shared arguments and channels-first handling; ``rank`` set by subclasses."""

    _owns_cell_weights = True
    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation="tanh", recurrent_activation="sigmoid", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", unit_forget_bias=True,
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, name=None, dtype=None, **kwargs):
        cls = type(self).__name__
        name = name if name is not None else naming.unique_name(naming.to_snake_case(cls))
        self.data_format = check_data_format(data_format, cls)
        cell = ConvLSTMCell(
            self.rank, filters, kernel_size, strides=strides, padding=padding, dilation_rate=dilation_rate,
            activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint, dropout=dropout,
            recurrent_dropout=recurrent_dropout, seed=seed, name=name, dtype=dtype, layer_class=cls,
        )
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, name=name, dtype=dtype, **kwargs)

    @property
    def filters(self) -> int:
        return self.cell.units

    def __getattr__(self, name):
        if name in ("kernel", "recurrent_kernel", "bias", "kernel_size", "strides", "padding", "dilation_rate"):
            cell = self.__dict__.get("cell")
            if cell is not None:
                return getattr(cell, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _channels_last(self, x, from_axis: int):
        """Moves the channel axis at ``from_axis`` to the end (channels_first inputs)."""
        return jnp.moveaxis(x, from_axis, -1)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.data_format == "channels_first":
            shape = shape[:2] + shape[3:] + shape[2:3]
        if len(shape) != self.rank + 3:
            raise LayerConfigError(
                f"{type(self).__name__} '{self.name}': inputs must have rank {self.rank + 3}, (batch, timesteps, "
                f"{'spatial, ' * self.rank}channels), but received shape {tuple(input_shape)}."
            )
        super().build(shape)
        channel_axis = 2 if self.data_format == "channels_first" else -1
        self.input_spec = InputSpec(
            ndim=self.rank + 3,
            axes={channel_axis: self.cell.kernel.shape[-2]}
            | {axis: size for axis, size in enumerate(input_shape) if axis > 1 and size is not None},
            hint="The kernel was built for inputs of this size: use a new layer for other inputs.",
        )

    def call(self, inputs, initial_state=None, mask=None, training=False, key=None):
        if self.data_format == "channels_last":
            return super().call(inputs, initial_state=initial_state, mask=mask, training=training, key=key)
        if initial_state is not None:
            initial_state = [self._channels_last(s, 1) for s in initial_state]
        outputs = super().call(self._channels_last(inputs, 2), initial_state=initial_state, mask=mask,
                               training=training, key=key)
        back = lambda x, sequence: jnp.moveaxis(x, -1, 2 if sequence else 1)
        if self.return_state:
            output, *states = outputs
            return [back(output, self.return_sequences)] + [back(s, False) for s in states]
        return back(outputs, self.return_sequences)

    def get_config(self):
        config = self.cell.get_config()
        for key in ("name", "trainable", "dtype", "units"):
            config.pop(key, None)
        sequence = self._sequence_config()
        sequence.pop("zero_output_for_mask")
        return Layer.get_config(self) | {
            "filters": self.filters, "kernel_size": self.cell.kernel_size, "strides": self.cell.strides,
            "padding": self.cell.padding, "data_format": self.data_format, "dilation_rate": self.cell.dilation_rate,
        } | config | sequence


class ConvLSTM1D(ConvLSTM):
    """ConvLSTM over ``(batch, timesteps, steps, channels)`` sequences; see the module docstring."""

    rank = 1


class ConvLSTM2D(ConvLSTM):
    """ConvLSTM over ``(batch, timesteps, rows, cols, channels)`` sequences; see the module docstring."""

    rank = 2


class ConvLSTM3D(ConvLSTM):
    """ConvLSTM over ``(batch, timesteps, depth, rows, cols, channels)`` sequences; see the module docstring."""

    rank = 3
