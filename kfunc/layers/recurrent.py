"""Recurrent layers: RNN(cell), and SimpleRNN, GRU, LSTM (RNN over their cells), one ``lax.scan``.

Input ``(batch, timesteps, features)``. Output ``(batch, units)``, or ``(batch, timesteps, units)``
with ``return_sequences``; ``return_state`` appends the final states (``[h]``, LSTM ``[h, c]``;
one entry per cell for ``StackedRNNCells``). A mask ``(batch, timesteps)`` (from
``Embedding(mask_zero=True)`` or ``Masking``) makes a padded step keep the previous states and
repeat the previous output (zeros with ``zero_output_for_mask``); the sequence output keeps the
mask, the last output and the states carry none.

The built-in cells (``kfunc.layers.rnn_cells``) hold the maths; for them the input projection of
every timestep is one matrix product before the scan. Any other cell (a ``Layer`` with
``state_size`` and ``call(inputs, states) -> (output, new_states)``, or ``StackedRNNCells``) is
called once per step inside the scan. A cell gets the same random key at every step (dropout masks
drawn once per sequence, as Keras's cells do).

``SimpleRNN``, ``GRU`` and ``LSTM`` own their cell's weights (paths ``lstm/kernel``, as before and
as Keras's ``lstm.kernel``): ``kernel (features, g*units)``, ``recurrent_kernel (units, g*units)``,
``bias (g*units,)`` (GRU with ``reset_after``: ``(2, 3*units)``). ``RNN(cell)`` keeps the cell as a
sublayer (``rnn/simple_rnn_cell/kernel``, as Keras).
"""

from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp
from jax import lax

from kfunc import naming
from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec
from kfunc.layers.rnn_cells import (
    GatedCell,
    GRUCell,
    LSTMCell,
    SimpleRNNCell,
    StackedRNNCells,
    call_cell,
    copy_cell,
    initial_cell_state,
)

_CELL_ARGUMENTS = (
    "activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
    "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
    "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed",
)


class RNN(Layer):
    """Runs ``cell`` (a cell layer, or a list of them, stacked) over the timesteps of the input.

    ``go_backwards`` visits the steps last to first (returned sequences are in that order, as in
    Keras); ``unroll`` unrolls the scan; ``stateful`` is refused (carry the final states yourself
    through ``initial_state``). Each RNN owns its cell: a cell already held by another RNN is
    replaced by a new cell of the same configuration (reuse the RNN layer to share weights).
    """

    _owns_cell_weights = False  # SimpleRNN, GRU, LSTM: the cell's weights are the layer's own

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, activity_regularizer=None, **kwargs):
        cls = type(self).__name__
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not (isinstance(cell, Layer) and callable(getattr(cell, "call", None)) and hasattr(cell, "state_size")):
            raise LayerConfigError(
                f"{cls}: cell must be a Layer with a state_size attribute and a call(inputs, states) method "
                f"(or a list of them), received {type(cell).__name__}."
            )
        if stateful:
            raise LayerConfigError(
                f"{cls}(stateful=True) is not supported: pass the previous final states as initial_state= "
                "instead (the pure apply makes carrying them explicit)."
            )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        owner = getattr(cell, "_owning_rnn", None)
        if owner is not None and owner() is not None:
            # Each RNN owns its cell (Bidirectional builds both directions from one config): a cell
            # given to a second RNN is a new cell of the same configuration. Reuse the RNN layer
            # itself to share weights.
            cell = copy_cell(cell)
        cell._owning_rnn = weakref.ref(self)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.input_spec = InputSpec(min_ndim=3)

    @property
    def sublayers(self) -> list[Layer]:
        found = super().sublayers
        return [layer for layer in found if layer is not self.cell] if self._owns_cell_weights else found

    @property
    def uses_key(self) -> bool:
        return bool(getattr(self.cell, "uses_key", False))

    @property
    def state_size(self) -> list:
        size = self.cell.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    @property
    def state_count(self) -> int:
        return len(self.state_size)

    def build(self, input_shape):
        if self._owns_cell_weights:
            self.cell.name = self.name  # the weights' paths read "lstm/kernel"
        if not self.cell.built:
            self.cell._build_from((input_shape[0],) + tuple(input_shape[2:]))
        if self._owns_cell_weights:
            self._own_variables = self.cell._own_variables
        axes, hint = {}, ""
        kernel = getattr(self.cell, "kernel", None)
        if isinstance(self.cell, GatedCell) and kernel is not None:
            axes = {-1: kernel.shape[-2]}
            hint = (f"The kernel was built for {kernel.shape[-2]} features per timestep: use a new layer "
                    "for other inputs.")
        self.input_spec = InputSpec(ndim=len(input_shape), axes=axes, hint=hint)

    # ------------------------------------------------------------------ calling
    def call(self, inputs, initial_state=None, mask=None, training=False, key=None):
        """``inputs (batch, timesteps, ...)``; ``initial_state`` a list of arrays (one per state);
        ``mask (batch, timesteps)`` booleans."""
        steps = jnp.swapaxes(inputs, 0, 1)  # (timesteps, batch, ...)
        if isinstance(self.cell, GatedCell):
            steps, zeros, step = self._projected_steps(inputs, steps, training, key)
        else:
            zeros = None

            def step(states, step_inputs):
                output, new_states = call_cell(self.cell, step_inputs, list(states), training=training, key=key)
                return output, self._restructure(new_states, states)

        states = self._initial_states(inputs, initial_state, zeros)
        if self.go_backwards:
            steps = steps[::-1]

        def scan_step(states, step_inputs):
            output, new_states = step(states, step_inputs)
            return new_states, output

        def masked_scan_step(states, step_inputs):
            step_inputs, keep = step_inputs  # keep: (batch, 1)
            output, new_states = step(states, step_inputs)
            new_states = jax.tree_util.tree_map(lambda new, old: _where(keep, new, old), new_states, states)
            previous = jnp.zeros_like(output) if self.zero_output_for_mask else _previous_output(states)
            return new_states, _where(keep, output, previous)

        if mask is None:
            final_states, sequence = lax.scan(scan_step, states, steps, unroll=self.unroll)
        else:
            keep = self._step_mask(inputs, mask)
            final_states, sequence = lax.scan(masked_scan_step, states, (steps, keep), unroll=self.unroll)
        output = jnp.swapaxes(sequence, 0, 1) if self.return_sequences else sequence[-1]
        if self.return_state:
            return [output, *final_states]
        return output

    def _projected_steps(self, inputs, steps, training, key):
        """For a built-in cell: every timestep's input projection at once, the zero states, and
        the step function on projected inputs."""
        cell = self.cell
        step_shape = steps.shape[1:]
        projected_shape = jax.eval_shape(cell.project, jax.ShapeDtypeStruct(step_shape, inputs.dtype)).shape
        state_shape = cell.state_shape(projected_shape)
        input_mask, recurrent_mask = cell.dropout_masks(step_shape, state_shape, inputs.dtype, training, key)
        if input_mask is not None:
            steps = steps * input_mask
        projected = cell.project(steps)  # (timesteps, batch, ..., gates*units)
        zeros = tuple(jnp.zeros(state_shape, projected.dtype) for _ in range(cell.state_count))

        def step(states, projected_t):
            return cell.recurrent_step(projected_t, states, recurrent_mask)

        return projected, zeros, step

    def _initial_states(self, inputs, initial_state, zeros):
        """The states the scan starts from: ``zeros`` (a tuple of arrays, built-in cells), the cell's
        zero states, or ``initial_state`` checked against them."""
        if zeros is None:
            zeros = _as_tuple(initial_cell_state(self.cell, inputs.shape[0], inputs.dtype))
        if initial_state is None:
            return zeros
        given = jax.tree_util.tree_leaves(initial_state)
        expected = jax.tree_util.tree_leaves(zeros)
        if len(given) != len(expected) or any(
            tuple(g.shape[1:]) != tuple(e.shape[1:]) for g, e in zip(given, expected, strict=False)
        ):
            raise LayerInputError(
                f"{describe_layer(self)}: initial_state must be {len(expected)} array(s) of shape(s) "
                f"{[('batch', *e.shape[1:]) for e in expected]}, received shapes {[tuple(g.shape) for g in given]}."
            )
        treedef = jax.tree_util.tree_structure(zeros)
        return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(g, e.dtype) for g, e in zip(given, expected,
                                                                                                   strict=True)])

    def _restructure(self, new_states, states):
        """A cell's new states in the structure of the carried ``states`` (a lone array becomes a
        one-state tuple, as Keras wraps it)."""
        leaves = jax.tree_util.tree_leaves(new_states)
        treedef = jax.tree_util.tree_structure(states)
        if len(leaves) != treedef.num_leaves:
            raise LayerInputError(
                f"{describe_layer(self)}: the cell '{self.cell.name}' returned {len(leaves)} state array(s), but "
                f"its state_size {self.cell.state_size} declares {treedef.num_leaves}; return new states "
                "matching state_size."
            )
        return jax.tree_util.tree_unflatten(treedef, leaves)

    def _step_mask(self, inputs, mask):
        """The mask as ``(timesteps, batch, 1)`` booleans, in the order the scan visits the steps."""
        mask = jax.tree_util.tree_leaves(mask)[0]
        if tuple(mask.shape[:2]) != tuple(inputs.shape[:2]):
            raise LayerInputError(
                f"{describe_layer(self)}: the mask must have shape (batch, timesteps) = {tuple(inputs.shape[:2])}, "
                f"but received shape {tuple(mask.shape)}."
            )
        # A step with more mask axes (a sequence of sentences) counts while any of its entries does (Keras).
        mask = jnp.any(mask.astype(bool), axis=tuple(range(2, mask.ndim))) if mask.ndim > 2 else mask.astype(bool)
        keep = jnp.swapaxes(mask, 0, 1)[..., None]
        return keep[::-1] if self.go_backwards else keep

    def compute_mask(self, inputs, mask=None):
        mask = jax.tree_util.tree_leaves(mask)[0] if mask is not None and jax.tree_util.tree_leaves(mask) else None
        output_mask = mask if self.return_sequences else None
        return [output_mask] + [None] * self.state_count if self.return_state else output_mask

    def _sequence_config(self) -> dict:
        return {
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": False,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }

    def get_config(self):
        return super().get_config() | self._sequence_config() | {"cell": copy_cell(self.cell)}


def _as_tuple(states):
    return tuple(states) if isinstance(states, (list, tuple)) else (states,)


def _where(keep, new, old):
    keep = keep.reshape(keep.shape + (1,) * (new.ndim - keep.ndim))
    return jnp.where(keep, new, old)


def _previous_output(states):
    """What a padded step outputs: the first state (of the last cell, for stacked cells), as Keras."""
    last = states[-1] if isinstance(states[0], (list, tuple)) else states[0]
    return jax.tree_util.tree_leaves(last)[0]


class _CellRNN(RNN):
    """A Keras recurrent layer that is ``RNN`` over a new built-in cell whose weights it owns; its
    config is the cell's arguments and the sequence flags (Keras's ``LSTM(units, ...)``)."""

    _owns_cell_weights = True
    cell_class: type = GatedCell

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False, zero_output_for_mask=False,
                 name=None, dtype=None, **kwargs):
        name = name if name is not None else naming.unique_name(naming.to_snake_case(type(self).__name__))
        cell_kwargs = {k: kwargs.pop(k) for k in _CELL_ARGUMENTS + self.extra_cell_arguments if k in kwargs}
        if self.cell_class is not SimpleRNNCell:
            cell_kwargs["recurrent_activation"] = recurrent_activation
        try:
            cell = self.cell_class(units, activation=activation, name=name, dtype=dtype, **cell_kwargs)
        except LayerConfigError as error:
            raise LayerConfigError(
                str(error).replace(f"{self.cell_class.__name__}:", f"{type(self).__name__}:")
            ) from None
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         zero_output_for_mask=zero_output_for_mask, name=name, dtype=dtype, **kwargs)

    extra_cell_arguments: tuple[str, ...] = ()

    @classmethod
    def forwarded_arguments(cls) -> tuple[str, ...]:
        """Constructor keywords passed on to the cell (what a config may hold besides the RNN's own)."""
        return _CELL_ARGUMENTS + cls.extra_cell_arguments

    def __getattr__(self, name):
        # Keras's layer.units, layer.kernel, layer.dropout ... read the cell's.
        if name in ("kernel", "recurrent_kernel", "bias", "units") + _CELL_ARGUMENTS + self.extra_cell_arguments:
            cell = self.__dict__.get("cell")
            if cell is not None:
                return getattr(cell, name)
        # Anything else: the normal lookup again, so a property's own AttributeError (e.g. the
        # node API's "multiple inbound nodes") reaches the caller unchanged.
        return object.__getattribute__(self, name)

    def get_config(self):
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        if self.cell_class is SimpleRNNCell:
            cell_config["recurrent_activation"] = "sigmoid"  # kept for configs saved before the cells existed
        return Layer.get_config(self) | cell_config | self._sequence_config()


class SimpleRNN(_CellRNN):
    """``h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)``: ``RNN(SimpleRNNCell)``."""

    cell_class = SimpleRNNCell

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)


class LSTM(_CellRNN):
    """Long short-term memory, ``RNN(LSTMCell)``; states ``[h, c]``; gates i, f, c, o."""

    cell_class = LSTMCell
    extra_cell_arguments = ("unit_forget_bias",)


class GRU(_CellRNN):
    """Gated recurrent unit, ``RNN(GRUCell)``; gates z, r, h; ``reset_after=True`` (Keras's default)
    keeps a separate recurrent bias: bias ``(2, 3*units)``."""

    cell_class = GRUCell
    extra_cell_arguments = ("reset_after",)
