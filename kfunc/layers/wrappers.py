"""Wrappers: the ``Wrapper`` base class, TimeDistributed (a layer or whole model at every
timestep) and Bidirectional."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import added_losses, checks
from kfunc.layers.base import Layer
from kfunc.layers.signatures import call_parameters
from kfunc.layers.recurrent import RNN


class Wrapper(Layer):
    """Base class of the layers that wrap another layer (Keras 3's ``keras.layers.Wrapper``):
    holds ``layer``, builds it with the wrapper, and saves it in ``get_config`` under ``"layer"``.

    Called as it is, a ``Wrapper`` runs the wrapped layer unchanged (Keras 3's base class cannot
    be called), so a subclass overrides only what it changes: ``call``, ``build``, ``get_config``.
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise LayerConfigError(
                f"{type(self).__name__} wraps a layer, received {type(layer).__name__} {layer!r}; pass a layer "
                "instance such as Dense(4)."
            )
        super().__init__(**kwargs)
        self.layer = layer

    @property
    def uses_key(self) -> bool:
        return self.layer.uses_key

    def build(self, input_shape):
        if not self.layer.built:
            self.layer._build_from(input_shape)

    def call(self, inputs, training=False, key=None):
        return self.layer._call_arrays((inputs,), {"training": training, "key": key})

    def get_config(self):
        return super().get_config() | {"layer": self.layer}


class TimeDistributed(Wrapper):
    """Applies ``layer`` to every timestep: ``(batch, time, ...)`` -> ``(batch, time, ...out)``;
    the weights are the inner layer's.

    A stateless inner layer is mapped over time with ``jax.vmap`` (measured on CPU with
    ``benchmarks/time_distributed.py``: 3-24% faster than folding); one with state or randomness
    (BatchNormalization, Dropout, a model holding them) sees time folded into the batch, one call
    on ``(batch * time, ...)``, so its statistics span every timestep and each timestep gets its
    own dropout mask, as in Keras 2 (Keras 3 maps such layers over time too, normalizing each
    timestep separately).

    A mask ``(batch, time, ...)`` passes through; an inner layer whose ``call`` takes ``mask``
    receives each timestep's slice of it.
    """

    _passes_masks = True

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise LayerConfigError(
                f"TimeDistributed wraps a layer or a model, received {type(layer).__name__} {layer!r}."
            )
        super().__init__(layer, **kwargs)

    def check_input_shapes(self, input_shapes, input_dtypes):
        if not isinstance(input_shapes, tuple) or len(input_shapes) < 3:
            raise LayerInputError(
                f"{describe_layer(self)} needs one input of rank >= 3, (batch, time, ...), but received "
                f"shape {input_shapes}."
            )

    def build(self, input_shape):
        if not self.layer.built:
            self.layer._build_from((None,) + tuple(input_shape[2:]))

    def call(self, inputs, training=False, key=None, mask=None):
        arguments = {"training": training, "key": key}
        inner_mask = mask if mask is not None and mask.ndim > 2 and "mask" in call_parameters(type(self.layer))[0] else None

        def call_inner(step, step_mask):
            extra = {} if step_mask is None else {"mask": step_mask}
            # Keras 3 runs the wrapped layer's own computation: its activity regularizer is not applied.
            with added_losses.without_activity_of(self.layer):
                return self.layer._call_arrays((step,), arguments | extra)

        if not self.layer.uses_key and not self.layer.non_trainable_weights:
            # Losses added inside the map (add_loss) leave it summed over timesteps.
            outputs = added_losses.vmap_collecting(call_inner, in_axes=1, out_axes=1)(inputs, inner_mask)
        else:
            batch, steps = inputs.shape[0], inputs.shape[1]
            fold = lambda a: None if a is None else a.reshape((batch * steps,) + a.shape[2:])  # noqa: E731
            with added_losses.folded_collecting(steps):
                folded = call_inner(fold(inputs), fold(inner_mask))
            outputs = folded.reshape((batch, steps) + folded.shape[1:]) if hasattr(folded, "shape") else folded
        if not hasattr(outputs, "shape"):
            raise LayerInputError(
                f"{describe_layer(self)}: the wrapped layer '{self.layer.name}' must return one tensor."
            )
        return outputs


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Wrapper):
    """Runs a recurrent layer forwards and a copy backwards and merges their outputs.

    ``merge_mode``: ``'concat'`` (default), ``'sum'``, ``'mul'``, ``'ave'`` or ``None`` (a list of both).
    Backward sequences are put back in forward time order before merging. Weights: the forward
    layer's, then the backward layer's.
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, RNN):
            raise LayerConfigError(
                f"Bidirectional wraps a recurrent layer (LSTM, GRU, SimpleRNN), received {type(layer).__name__}."
            )
        super().__init__(layer, **kwargs)
        # The wrapped layer is only the template of the forward and backward copies, which own the
        # weights: it is not a sublayer.
        self._sublayer_slots.pop("layer", None)
        self.merge_mode = checks.one_of(merge_mode, _MERGE_MODES, "merge_mode", "Bidirectional")
        config = layer.get_config()
        config["name"] = "forward_" + layer.name
        self.forward_layer = type(layer)(**config)
        if backward_layer is None:
            config = dict(config, name="backward_" + layer.name, go_backwards=not layer.go_backwards)
            backward_layer = type(layer)(**config)
        elif not isinstance(backward_layer, RNN) or backward_layer.go_backwards == layer.go_backwards:
            raise LayerConfigError("Bidirectional: backward_layer must be a recurrent layer with the opposite go_backwards.")
        self.backward_layer = backward_layer
        # Keras: with a mask, padded steps of returned sequences are zeros in both directions.
        for direction in (self.forward_layer, self.backward_layer):
            direction.zero_output_for_mask = direction.return_sequences
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state

    @property
    def uses_key(self) -> bool:
        return self.forward_layer.uses_key or self.backward_layer.uses_key

    def build(self, input_shape):
        self.forward_layer._build_from(input_shape)
        self.backward_layer._build_from(input_shape)

    def call(self, inputs, initial_state=None, mask=None, training=False, key=None):
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        forward_key = backward_key = None
        if key is not None:
            forward_key, backward_key = jax.random.split(key)
        forward = self.forward_layer._call_arrays(
            (inputs,), {"initial_state": forward_state, "mask": mask, "training": training, "key": forward_key}
        )
        backward = self.backward_layer._call_arrays(
            (inputs,), {"initial_state": backward_state, "mask": mask, "training": training, "key": backward_key}
        )
        states = []
        if self.return_state:
            forward, *forward_states = forward
            backward, *backward_states = backward
            states = forward_states + backward_states
        if self.return_sequences:
            backward = backward[:, ::-1]
        merged = self._merge(forward, backward)
        if not states:
            return merged
        return [*merged, *states] if self.merge_mode is None else [merged, *states]

    def compute_mask(self, inputs, mask=None):
        """The input mask on returned sequences (on both with ``merge_mode=None``); none on states."""
        leaves = jax.tree_util.tree_leaves(mask)
        mask = leaves[0] if leaves else None
        sequence_mask = mask if self.return_sequences else None
        output_masks = [sequence_mask, sequence_mask] if self.merge_mode is None else [sequence_mask]
        if self.return_state:
            output_masks += [None] * (2 * self.forward_layer.state_count)
        return output_masks if len(output_masks) > 1 else output_masks[0]

    def _merge(self, forward, backward):
        if self.merge_mode == "concat":
            return jnp.concatenate([forward, backward], axis=-1)
        if self.merge_mode == "sum":
            return forward + backward
        if self.merge_mode == "mul":
            return forward * backward
        if self.merge_mode == "ave":
            return (forward + backward) / 2
        return [forward, backward]

    def get_config(self):
        # The forward layer stands for the wrapped one; from_config takes its "forward_" prefix off.
        return super().get_config() | {
            "layer": self.forward_layer,
            "merge_mode": self.merge_mode,
            "backward_layer": self.backward_layer,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = config.get("layer")
        if isinstance(layer, Layer) and layer.name.startswith("forward_") and not layer.built:
            layer.name = layer.name[len("forward_"):]
        return cls(**config)
