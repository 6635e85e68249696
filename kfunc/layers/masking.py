"""Masking: marks the timesteps whose features all equal ``mask_value`` as padding."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.layers.base import Layer


class Masking(Layer):
    """``(batch, timesteps, features)`` -> the same shape, with padded steps set to zero.

    A step is padding when every feature equals ``mask_value``; the output carries the mask
    ``(batch, timesteps)`` (True for real steps) that downstream layers respect: RNNs skip
    padded steps and carry their state over them, ``GlobalAveragePooling1D`` averages the real
    steps, attention ignores padded keys, losses ignore padded targets.
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def _keep(self, inputs, keepdims: bool):
        return jnp.any(jnp.not_equal(inputs, self.mask_value), axis=-1, keepdims=keepdims)

    def call(self, inputs):
        return inputs * self._keep(inputs, keepdims=True).astype(inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        return self._keep(inputs, keepdims=False)

    def get_config(self):
        return super().get_config() | {"mask_value": self.mask_value}
