"""Recurrent cells: SimpleRNNCell, GRUCell, LSTMCell (one timestep each) and StackedRNNCells.

A cell is called on one timestep: ``cell(inputs (batch, features), states) -> (output, new_states)``
with ``states`` a list of ``(batch, units)`` arrays (``[h]``, LSTM ``[h, c]``); ``RNN(cell)`` runs
it over a sequence. The built-in cells split their step in two, so that ``RNN`` (and ``LSTM``,
``GRU``, ``SimpleRNN``, which are ``RNN`` over these cells) can project every timestep's input in
one matrix product before the scan: ``project(inputs)`` (any leading axes) and
``recurrent_step(projected, states, recurrent_mask)``. This file holds the only implementation of
their maths. Weights follow Keras: ``kernel (features, g*units)``, ``recurrent_kernel
(units, g*units)``, ``bias (g*units,)``; gates i, f, c, o (LSTM) and z, r, h (GRU, whose bias is
``(2, 3*units)`` with ``reset_after``).

Dropout: ``dropout`` on the inputs and ``recurrent_dropout`` on the state, one mask per sequence
(the same at every timestep, as Keras's cells), drawn from the random key the cell is called with.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc import activations, constraints, regularizers
from kfunc import initializers as initializers_lib
from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec


class UnitForgetBias(initializers_lib.Initializer):
    """LSTM bias: the base initializer, but ones for the forget gate (Keras's unit_forget_bias)."""

    def __init__(self, base, units):
        self.base, self.units = initializers_lib.get(base), units

    @property
    def supports_numpy(self) -> bool:
        return getattr(self.base, "supports_numpy", False)

    def sample(self, source, shape, dtype):
        u, xp = self.units, source.xp
        if isinstance(self.base, initializers_lib.Initializer):
            first, rest = self.base.sample(source, (u,), dtype), self.base.sample(source, (2 * u,), dtype)
        else:
            first, rest = self.base(source.next_key(), (u,), dtype), self.base(source.next_key(), (2 * u,), dtype)
        return xp.concatenate([first, xp.ones((u,), dtype), rest])


def dropout_mask(key, rate: float, shape, dtype):
    """Inverted-dropout multipliers of ``shape``: 0 with probability ``rate``, else ``1/(1-rate)``."""
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return keep.astype(dtype) / (1.0 - rate)


def _masked(x, mask):
    return x if mask is None else x * mask


class GatedCell(Layer):
    """What the built-in cells share: arguments, weights, dropout masks and the split step.

    Subclasses set ``gates`` and ``state_count`` and define ``recurrent_step``.
    """

    gates = 1
    state_count = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.units = checks.positive_int(units, "units", cls)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = checks.rate(dropout, "dropout", cls)
        self.recurrent_dropout = checks.rate(recurrent_dropout, "recurrent_dropout", cls)
        self.seed = seed

    @property
    def uses_key(self) -> bool:
        return self.dropout > 0 or self.recurrent_dropout > 0

    @property
    def state_size(self):
        """``units`` for one state, ``[units, units]`` for LSTM's two (Keras's convention)."""
        return self.units if self.state_count == 1 else [self.units] * self.state_count

    @property
    def output_size(self) -> int:
        return self.units

    # ------------------------------------------------------------------ weights
    def bias_shape(self):
        return (self.gates * self.units,)

    def bias_init(self):
        return self.bias_initializer

    def kernel_shapes(self, input_shape):
        """``(kernel shape, recurrent kernel shape)`` for one timestep's ``input_shape``."""
        features = checks.known_size(input_shape[-1], "feature axis (last)", self, input_shape)
        return (features, self.gates * self.units), (self.units, self.gates * self.units)

    def build(self, input_shape):
        kernel_shape, recurrent_shape = self.kernel_shapes(input_shape)
        self.kernel = self.add_weight("kernel", kernel_shape, self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", recurrent_shape, self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = self.add_weight("bias", self.bias_shape(), self.bias_init(), regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None
        features = kernel_shape[-2]
        self.input_spec = InputSpec(
            axes={-1: features},
            hint=f"The kernel was built for {features} features per timestep: use a new layer for other inputs.",
        )

    # ------------------------------------------------------------------ the step, in two parts
    def input_bias(self):
        return self.bias.value if self.bias is not None else 0.0

    def project(self, inputs):
        """``inputs @ kernel + bias``: ``(..., features) -> (..., gates*units)``."""
        return inputs @ self.kernel.value + self.input_bias()

    def recurrent_step(self, projected, states: tuple, recurrent_mask=None):
        """One timestep from the projected input ``(batch, gates*units)`` and the previous
        ``states`` (a tuple of ``(batch, units)``): ``(output, new_states)``."""
        raise NotImplementedError(f"{type(self).__name__} must define recurrent_step().")

    def state_shape(self, projected_shape) -> tuple:
        """The shape of each state for a projected timestep of ``projected_shape``."""
        return tuple(projected_shape[:-1]) + (self.units,)

    def dropout_masks(self, input_shape, state_shape, dtype, training, key):
        """``(input_mask, recurrent_mask)`` multipliers (None where not dropping), the same at every step."""
        if not training or not self.uses_key:
            return None, None
        if key is None:
            raise LayerConfigError(
                f"{describe_layer(self)} uses dropout and needs a random key in training mode: pass "
                "key=jax.random.key(...) to apply(), or use fit(), which provides one."
            )
        if self.seed is not None:
            key = jax.random.fold_in(key, self.seed)
        input_key, recurrent_key = jax.random.split(key)
        input_mask = dropout_mask(input_key, self.dropout, input_shape, dtype) if self.dropout else None
        recurrent_mask = (
            dropout_mask(recurrent_key, self.recurrent_dropout, state_shape, dtype) if self.recurrent_dropout else None
        )
        return input_mask, recurrent_mask

    def get_initial_state(self, batch_size=None):
        """Zero states ``(batch_size, units)``, one per state."""
        return [jnp.zeros((batch_size, self.units), self.compute_dtype) for _ in range(self.state_count)]

    def call(self, inputs, states, training=False, key=None):
        """One timestep: ``inputs (batch, features)``, ``states`` a list of ``(batch, units)`` (or one
        array); returns ``(output (batch, units), new_states)`` in the structure ``states`` came in."""
        listed = isinstance(states, (list, tuple))
        previous = tuple(states) if listed else (states,)
        if len(previous) != self.state_count:
            raise LayerInputError(
                f"{describe_layer(self)} expects {self.state_count} state array(s), received {len(previous)}."
            )
        projected = jax.eval_shape(self.project, jax.ShapeDtypeStruct(inputs.shape, inputs.dtype))
        state_shape = self.state_shape(projected.shape)
        input_mask, recurrent_mask = self.dropout_masks(inputs.shape, state_shape, inputs.dtype, training, key)
        output, new_states = self.recurrent_step(self.project(_masked(inputs, input_mask)), previous, recurrent_mask)
        return output, (list(new_states) if listed else new_states[0])

    def get_config(self):
        return super().get_config() | {
            "units": self.units,
            "activation": activations.name_of(self.activation) or self.activation,
            "recurrent_activation": activations.name_of(self.recurrent_activation) or self.recurrent_activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "recurrent_regularizer": self.recurrent_regularizer,
            "bias_regularizer": self.bias_regularizer,
            "kernel_constraint": self.kernel_constraint,
            "recurrent_constraint": self.recurrent_constraint,
            "bias_constraint": self.bias_constraint,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }


class SimpleRNNCell(GatedCell):
    """``h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)``; state ``[h]``."""

    def __init__(self, units, activation="tanh", **kwargs):
        if "recurrent_activation" in kwargs:
            raise LayerConfigError("SimpleRNNCell has no recurrent_activation; it applies only activation.")
        super().__init__(units, activation=activation, **kwargs)

    def recurrent_step(self, projected, states, recurrent_mask=None):
        (h,) = states
        h = self.activation(projected + _masked(h, recurrent_mask) @ self.recurrent_kernel.value)
        return h, (h,)

    def get_config(self):
        config = super().get_config()
        del config["recurrent_activation"]
        return config


class LSTMCell(GatedCell):
    """Long short-term memory step; states ``[h, c]``; gates i, f, c, o in the weights' columns."""

    gates = 4
    state_count = 2

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def bias_init(self):
        return UnitForgetBias(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer

    def recurrent_product(self, h):
        """``h (batch, units) @ recurrent_kernel``; ConvLSTM convolves instead."""
        return h @ self.recurrent_kernel.value

    def recurrent_step(self, projected, states, recurrent_mask=None):
        h, c = states
        z = projected + self.recurrent_product(_masked(h, recurrent_mask))
        i, f, g, o = jnp.split(z, 4, axis=-1)
        act, gate = self.activation, self.recurrent_activation
        c = gate(f) * c + gate(i) * act(g)
        h = gate(o) * act(c)
        return h, (h, c)

    def get_config(self):
        return super().get_config() | {"unit_forget_bias": self.unit_forget_bias}


class GRUCell(GatedCell):
    """Gated recurrent unit step; gates z, r, h; state ``[h]``. ``reset_after=True`` (Keras's
    default) applies the reset gate after the recurrent product and keeps a separate recurrent
    bias: bias ``(2, 3*units)``."""

    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        if self.bias is None:
            return 0.0
        bias = self.bias.value
        return bias[0] if self.reset_after else bias

    def recurrent_step(self, projected, states, recurrent_mask=None):
        (h,) = states
        u = self.units
        recurrent_kernel = self.recurrent_kernel.value
        x_z, x_r, x_h = projected[:, :u], projected[:, u : 2 * u], projected[:, 2 * u :]
        h_in = _masked(h, recurrent_mask)
        gate = self.recurrent_activation
        if self.reset_after:
            recurrent = h_in @ recurrent_kernel
            if self.bias is not None:
                recurrent = recurrent + self.bias.value[1]
            r_z, r_r, r_h = recurrent[:, :u], recurrent[:, u : 2 * u], recurrent[:, 2 * u :]
            z, r = gate(x_z + r_z), gate(x_r + r_r)
            candidate = self.activation(x_h + r * r_h)
        else:
            z = gate(x_z + h_in @ recurrent_kernel[:, :u])
            r = gate(x_r + h_in @ recurrent_kernel[:, u : 2 * u])
            candidate = self.activation(x_h + (r * h_in) @ recurrent_kernel[:, 2 * u :])
        h = z * h + (1.0 - z) * candidate
        return h, (h,)

    def get_config(self):
        return super().get_config() | {"reset_after": self.reset_after}


def _is_cell(cell) -> bool:
    return callable(getattr(cell, "call", None)) and hasattr(cell, "state_size")


class StackedRNNCells(Layer):
    """Cells applied one after the other at each timestep: each cell's output is the next one's
    input. ``state_size`` is the list of the cells' state sizes, and the states are a list with
    one entry per cell (that cell's own state or list of states); the output is the last cell's."""

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells) if isinstance(cells, (list, tuple)) else None
        if not cells or not all(isinstance(c, Layer) and _is_cell(c) for c in cells):
            raise LayerConfigError(
                "StackedRNNCells: cells must be a non-empty list of cell layers, each with a call(inputs, states) "
                "method and a state_size attribute."
            )
        self.cells = cells

    @property
    def uses_key(self) -> bool:
        return any(getattr(cell, "uses_key", False) for cell in self.cells)

    @property
    def state_size(self):
        return [cell.state_size for cell in self.cells]

    @property
    def output_size(self):
        return cell_output_size(self.cells[-1])

    def build(self, input_shape):
        for cell in self.cells:
            if not cell.built:
                cell._build_from(tuple(input_shape))
            input_shape = (input_shape[0], cell_output_size(cell))

    def get_initial_state(self, batch_size=None):
        return [initial_cell_state(cell, batch_size, self.compute_dtype) for cell in self.cells]

    def call(self, inputs, states, training=False, key=None):
        """``inputs (batch, features)``, ``states`` one entry per cell; ``(output, new_states)``."""
        if len(states) != len(self.cells):
            raise LayerInputError(
                f"{describe_layer(self)} has {len(self.cells)} cells but received {len(states)} state entries; "
                "pass one entry (a state or a list of states) per cell."
            )
        new_states = []
        for index, (cell, cell_states) in enumerate(zip(self.cells, states, strict=True)):
            cell_key = None if key is None else jax.random.fold_in(key, index)
            inputs, cell_states = call_cell(cell, inputs, cell_states, training=training, key=cell_key)
            new_states.append(cell_states)
        return inputs, new_states

    def get_config(self):
        return super().get_config() | {"cells": [copy_cell(cell) for cell in self.cells]}


def cell_output_size(cell) -> int:
    """The size of a cell's output: ``output_size``, else its (first) state size."""
    size = getattr(cell, "output_size", None)
    if size is None:
        size = cell.state_size[0] if isinstance(cell.state_size, (list, tuple)) else cell.state_size
    return size


def initial_cell_state(cell, batch_size, dtype):
    """A cell's zero state(s): its ``get_initial_state`` if it has one, else zeros per ``state_size``."""
    own = getattr(cell, "get_initial_state", None)
    if own is not None:
        return own(batch_size=batch_size)
    size = cell.state_size
    if isinstance(size, (list, tuple)):
        return [jnp.zeros((batch_size, s), dtype) for s in size]
    return jnp.zeros((batch_size, size), dtype)


def call_cell(cell, inputs, states, *, training, key):
    """One step of ``cell`` on arrays: ``(output, new_states)`` (through ``Layer`` so a user cell
    gets its inputs cast and only the keyword arguments its ``call`` takes)."""
    return cell._call_arrays((inputs, states), {"training": training, "key": key})


def copy_cell(cell):
    """A new, unbuilt cell with ``cell``'s configuration (configs describe layers, never share them)."""
    try:
        return type(cell).from_config(cell.get_config())
    except TypeError as error:
        raise LayerConfigError(
            f"{describe_layer(cell)} cannot be rebuilt from its get_config() ({error}); define get_config() "
            "returning its constructor arguments, as Keras requires of a cell held by RNN."
        ) from error
