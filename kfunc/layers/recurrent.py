"""Recurrent layers: SimpleRNN, GRU, LSTM, each one ``lax.scan`` over time.

Input ``(batch, timesteps, features)``. Output ``(batch, units)``, or ``(batch, timesteps, units)``
with ``return_sequences``; ``return_state`` appends the final states (``[h]``, LSTM ``[h, c]``).
A mask ``(batch, timesteps)`` (from ``Embedding(mask_zero=True)`` or ``Masking``) makes a padded
step keep the previous states and repeat the previous output (zeros with ``zero_output_for_mask``);
the sequence output keeps the mask, the last output and the states carry none.
Weights follow Keras: ``kernel (features, g*units)``, ``recurrent_kernel (units, g*units)``,
``bias (g*units,)`` with gates i, f, c, o (LSTM, g=4) and z, r, h (GRU, g=3, bias ``(2, 3*units)``
when ``reset_after``). The input projection of every timestep is one matrix product before the scan.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from kfunc import activations, constraints, regularizers
from kfunc import initializers as initializers_lib
from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec


class RNN(Layer):
    """Shared machinery; subclasses set ``gates`` and ``state_count`` and define ``step``."""

    gates = 1
    state_count = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                 zero_output_for_mask=False, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        cls = type(self).__name__
        if stateful:
            raise LayerConfigError(
                f"{cls}(stateful=True) is not supported: pass the previous final states as initial_state= "
                "instead (the pure apply makes carrying them explicit)."
            )
        self.units = checks.positive_int(units, "units", cls)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.dropout = checks.rate(dropout, "dropout", cls)
        self.recurrent_dropout = checks.rate(recurrent_dropout, "recurrent_dropout", cls)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.input_spec = InputSpec(ndim=3)

    @property
    def uses_key(self) -> bool:
        return self.dropout > 0 or self.recurrent_dropout > 0

    def bias_shape(self):
        return (self.gates * self.units,)

    def bias_init(self):
        return self.bias_initializer

    def build(self, input_shape):
        features = checks.known_size(input_shape[-1], "feature axis (last)", self, input_shape)
        width = self.gates * self.units
        self.kernel = self.add_weight("kernel", (features, width), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width), self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = self.add_weight("bias", self.bias_shape(), self.bias_init(), regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None
        self.input_spec = InputSpec(
            ndim=3, axes={-1: features},
            hint=f"The kernel was built for {features} features per timestep: use a new layer for other inputs.",
        )

    def input_bias(self):
        return self.bias.value if self.bias is not None else 0.0

    def step(self, states, projected, recurrent_kernel, recurrent_mask):
        """One timestep: ``states`` tuple of ``(batch, units)``, ``projected (batch, g*units)``.
        Returns ``(new_states, output)``."""
        raise NotImplementedError(f"{type(self).__name__} must define step().")

    def _initial_states(self, inputs, initial_state):
        batch = inputs.shape[0]
        if initial_state is None:
            return tuple(jnp.zeros((batch, self.units), inputs.dtype) for _ in range(self.state_count))
        states = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != self.state_count or any(tuple(s.shape[1:]) != (self.units,) for s in states):
            raise LayerInputError(
                f"{describe_layer(self)}: initial_state must be {self.state_count} array(s) of shape "
                f"(batch, {self.units}), received shapes {[tuple(s.shape) for s in states]}."
            )
        return tuple(jnp.asarray(s, inputs.dtype) for s in states)

    def _masks(self, inputs, training, key):
        """Dropout masks for the inputs and the recurrent state, the same at every timestep."""
        if not training or not self.uses_key:
            return None, None
        if key is None:
            raise LayerConfigError(
                f"{describe_layer(self)} uses dropout and needs a random key in training mode: pass "
                "key=jax.random.key(...) to apply(), or use fit(), which provides one."
            )
        input_key, recurrent_key = jax.random.split(key)
        batch = inputs.shape[0]

        def mask(k, rate, width):
            if rate == 0:
                return None
            keep = jax.random.bernoulli(k, 1.0 - rate, (batch, width))
            return keep.astype(inputs.dtype) / (1.0 - rate)

        return mask(input_key, self.dropout, inputs.shape[-1]), mask(recurrent_key, self.recurrent_dropout, self.units)

    def call(self, inputs, initial_state=None, mask=None, training=False, key=None):
        input_mask, recurrent_mask = self._masks(inputs, training, key)
        if input_mask is not None:
            inputs = inputs * input_mask[:, None, :]
        projected = inputs @ self.kernel.value + self.input_bias()
        projected = jnp.swapaxes(projected, 0, 1)  # (timesteps, batch, g*units)
        if self.go_backwards:
            projected = projected[::-1]
        recurrent_kernel = self.recurrent_kernel.value

        def scan_step(states, projected_t):
            return self.step(states, projected_t, recurrent_kernel, recurrent_mask)

        def masked_scan_step(states, step_inputs):
            projected_t, keep = step_inputs  # keep: (batch, 1)
            new_states, output = scan_step(states, projected_t)
            new_states = tuple(jnp.where(keep, new, old) for new, old in zip(new_states, states, strict=True))
            previous = jnp.zeros_like(output) if self.zero_output_for_mask else states[0]
            return new_states, jnp.where(keep, output, previous)

        states = self._initial_states(inputs, initial_state)
        if mask is None:
            final_states, sequence = lax.scan(scan_step, states, projected, unroll=self.unroll)
        else:
            keep = self._step_mask(inputs, mask)
            final_states, sequence = lax.scan(masked_scan_step, states, (projected, keep), unroll=self.unroll)
        output = jnp.swapaxes(sequence, 0, 1) if self.return_sequences else sequence[-1]
        if self.return_state:
            return [output, *final_states]
        return output

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
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }


def _masked(h, mask):
    return h if mask is None else h * mask


class SimpleRNN(RNN):
    """``h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)``."""

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def step(self, states, projected, recurrent_kernel, recurrent_mask):
        (h,) = states
        h = self.activation(projected + _masked(h, recurrent_mask) @ recurrent_kernel)
        return (h,), h


class _UnitForgetBias(initializers_lib.Initializer):
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


class LSTM(RNN):
    """Long short-term memory; states ``[h, c]``; gates i, f, c, o in the weights' columns."""

    gates = 4
    state_count = 2

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def bias_init(self):
        return _UnitForgetBias(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer

    def step(self, states, projected, recurrent_kernel, recurrent_mask):
        h, c = states
        z = projected + _masked(h, recurrent_mask) @ recurrent_kernel
        i, f, g, o = jnp.split(z, 4, axis=-1)
        act, gate = self.activation, self.recurrent_activation
        c = gate(f) * c + gate(i) * act(g)
        h = gate(o) * act(c)
        return (h, c), h

    def get_config(self):
        return super().get_config() | {"unit_forget_bias": self.unit_forget_bias}


class GRU(RNN):
    """Gated recurrent unit; gates z, r, h. ``reset_after=True`` (Keras's default) applies the reset
    gate after the recurrent product and keeps a separate recurrent bias: bias ``(2, 3*units)``."""

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

    def step(self, states, projected, recurrent_kernel, recurrent_mask):
        (h,) = states
        u = self.units
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
        return (h,), h

    def get_config(self):
        return super().get_config() | {"reset_after": self.reset_after}
