"""Noise layers active only in training: SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout.

Like ``Dropout`` (``kfunc/layers/core.py``) they draw from the ``key`` that ``apply`` (or ``fit``)
passes in training mode (``uses_key = True``; ``seed``, when given, is folded into it) and are the
identity at inference. Shapes are unchanged.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from kfunc.errors import LayerConfigError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.conv import check_data_format
from kfunc.layers.core import Dropout
from kfunc.layers.input_spec import InputSpec


def training_key(layer, key, seed):
    """The key a training-mode call draws from: ``key`` with ``seed`` folded in; an error if absent."""
    if key is None:
        raise LayerConfigError(
            f"{describe_layer(layer)} needs a random key in training mode: pass key=jax.random.key(...) "
            "to apply(), or use fit(), which provides one."
        )
    return key if seed is None else jax.random.fold_in(key, seed)


def _unit_interval(value, argument: str, layer_class: str, meaning: str) -> float:
    """A number in [0, 1], the range Keras accepts for ``GaussianNoise.stddev``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value <= 1:
        raise LayerConfigError(
            f"{layer_class}: {argument} is {meaning} and must be a number in [0, 1], received {value!r}."
        )
    return float(value)


class BaseSpatialDropout(Dropout):
    """Dropout of whole channels: one keep/drop draw per example and channel, shared over the
    spatial axes, for feature maps whose neighbouring values are strongly correlated."""

    rank = 2
    has_data_format = True

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        cls = type(self).__name__
        checks.rate(rate, "rate", cls)  # checked here too, so that the message names this class
        self.data_format = check_data_format(data_format, cls)
        spatial = (1,) * self.rank
        if self.data_format == "channels_first":
            noise_shape = (None, None, *spatial)
        else:
            noise_shape = (None, *spatial, None)
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")  # derived from rank and data_format
        if self.has_data_format:
            config["data_format"] = self.data_format
        return config


class SpatialDropout1D(BaseSpatialDropout):
    """Input ``(batch, steps, channels)``; drops whole channels (the same ones at every step)."""

    rank = 1
    has_data_format = False

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)


class SpatialDropout2D(BaseSpatialDropout):
    """Input ``(batch, rows, cols, channels)`` (or ``(batch, channels, rows, cols)``); drops whole
    feature maps."""

    rank = 2


class SpatialDropout3D(BaseSpatialDropout):
    """Input ``(batch, depth, rows, cols, channels)`` (or channels first); drops whole feature volumes."""

    rank = 3


class GaussianNoise(Layer):
    """In training, adds zero-mean Gaussian noise of standard deviation ``stddev`` to every value;
    identity otherwise. Any input shape ``(batch, ...)``."""

    uses_key = True
    _passes_masks = True  # Keras: supports_masking

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.stddev = _unit_interval(stddev, "stddev", "GaussianNoise", "the standard deviation of the noise")
        self.seed = seed

    def call(self, inputs, training=False, key=None):
        if not training or self.stddev == 0.0:
            return inputs
        key = training_key(self, key, self.seed)
        return inputs + self.stddev * jax.random.normal(key, inputs.shape, inputs.dtype)

    def get_config(self):
        return super().get_config() | {"stddev": self.stddev, "seed": self.seed}


class GaussianDropout(Layer):
    """In training, multiplies every value by Gaussian noise of mean 1 and standard deviation
    ``sqrt(rate / (1 - rate))`` (the variance of dropout at ``rate``); identity otherwise.
    Any input shape ``(batch, ...)``."""

    uses_key = True
    _passes_masks = True  # Keras: supports_masking

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        # Keras accepts rate=1, whose noise has infinite deviation: [0, 1) here, as for Dropout.
        self.rate = checks.rate(rate, "rate", "GaussianDropout")
        self.seed = seed

    def call(self, inputs, training=False, key=None):
        if not training or self.rate == 0.0:
            return inputs
        key = training_key(self, key, self.seed)
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = 1.0 + stddev * jax.random.normal(key, inputs.shape, inputs.dtype)
        return inputs * noise

    def get_config(self):
        return super().get_config() | {"rate": self.rate, "seed": self.seed}
