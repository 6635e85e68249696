"""AlphaDropout: dropout that keeps the mean and variance of self-normalizing (SELU) activations."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.regularization import training_key

# SELU's constants: a dropped unit is set to SELU's negative saturation value -scale * alpha.
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


class AlphaDropout(Layer):
    """In training, sets each unit to ``-scale * alpha`` (SELU's lower limit) with probability
    ``rate`` and applies the affine map ``a * x + b`` that restores zero mean and unit variance;
    identity otherwise. Any input shape ``(batch, ...)``; ``noise_shape`` (``None`` for sizes
    taken from the input) shares the draw along axes of size 1, as in ``Dropout``.
    """

    uses_key = True
    _passes_masks = True  # Keras: supports_masking

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        # Keras accepts rate=1, whose affine map divides by zero: [0, 1) here, as for Dropout.
        self.rate = checks.rate(rate, "rate", "AlphaDropout")
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.seed = seed

    def call(self, inputs, training=False, key=None):
        if not training or self.rate == 0.0:
            return inputs
        key = training_key(self, key, self.seed)
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(inputs.shape, self.noise_shape, strict=True))
        kept = jax.random.uniform(key, shape) >= self.rate
        dropped_value = -_SELU_ALPHA * _SELU_SCALE
        a = ((1.0 - self.rate) * (1.0 + self.rate * dropped_value**2)) ** -0.5
        b = -a * dropped_value * self.rate
        outputs = jnp.where(kept, inputs, jnp.asarray(dropped_value, inputs.dtype))
        return (a * outputs + b).astype(inputs.dtype)

    def get_config(self):
        return super().get_config() | {"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}

