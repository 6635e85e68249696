"""BatchNormalization and LayerNormalization (Keras's weights, order and defaults)."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec


def _axes(axis, ndim):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


class BatchNormalization(Layer):
    """Normalizes over the batch (and all axes but ``axis``).

    Training: batch statistics, and ``moving_mean``/``moving_variance`` (state) move by
    ``momentum``. Inference, or a frozen layer: the moving statistics.
    Weights: gamma, beta (trainable), moving_mean, moving_variance (state), each ``(features,)``.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer

    def build(self, input_shape):
        axes = _axes(self.axis, len(input_shape))
        shape = tuple(checks.known_size(input_shape[a], f"axis {a}", self, input_shape) for a in axes)
        self.gamma = self.add_weight("gamma", shape, self.gamma_initializer) if self.scale else None
        self.beta = self.add_weight("beta", shape, self.beta_initializer) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape, self.moving_variance_initializer, trainable=False)
        self.input_spec = InputSpec(ndim=len(input_shape), axes={a: s for a, s in zip(axes, shape, strict=True)})

    def _broadcast(self, value, ndim, axes):
        shape = [1] * ndim
        for a, s in zip(axes, value.shape, strict=True):
            shape[a] = s
        return value.reshape(shape)

    def call(self, inputs, training=False):
        axes = _axes(self.axis, inputs.ndim)
        reduce_axes = tuple(a for a in range(inputs.ndim) if a not in axes)
        compute = jnp.promote_types(inputs.dtype, jnp.float32)
        x = inputs.astype(compute)
        if training and self.trainable:
            mean = jnp.mean(x, axis=reduce_axes)
            variance = jnp.var(x, axis=reduce_axes)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean.value * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance.value * m + variance * (1.0 - m))
        else:
            mean, variance = self.moving_mean.value, self.moving_variance.value
        def b(value):
            return self._broadcast(value, inputs.ndim, axes)

        out = (x - b(mean)) * (1.0 / jnp.sqrt(b(variance) + self.epsilon))
        if self.gamma is not None:
            out = out * b(self.gamma.value)
        if self.beta is not None:
            out = out + b(self.beta.value)
        return out.astype(inputs.dtype)

    def get_config(self):
        return super().get_config() | {
            "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
            "center": self.center, "scale": self.scale,
            "beta_initializer": self.beta_initializer, "gamma_initializer": self.gamma_initializer,
            "moving_mean_initializer": self.moving_mean_initializer,
            "moving_variance_initializer": self.moving_variance_initializer,
        }


class LayerNormalization(Layer):
    """Normalizes each example over ``axis`` (default the last); gamma/beta of that shape."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer

    def build(self, input_shape):
        axes = _axes(self.axis, len(input_shape))
        shape = tuple(checks.known_size(input_shape[a], f"axis {a}", self, input_shape) for a in axes)
        self.gamma = self.add_weight("gamma", shape, self.gamma_initializer) if self.scale else None
        self.beta = self.add_weight("beta", shape, self.beta_initializer) if self.center else None
        self.input_spec = InputSpec(ndim=len(input_shape), axes={a: s for a, s in zip(axes, shape, strict=True)})

    def call(self, inputs):
        axes = _axes(self.axis, inputs.ndim)
        x = inputs.astype(jnp.promote_types(inputs.dtype, jnp.float32))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        variance = jnp.var(x, axis=axes, keepdims=True)
        out = (x - mean) * (1.0 / jnp.sqrt(variance + self.epsilon))
        shape = [1] * inputs.ndim
        for a in axes:
            shape[a] = inputs.shape[a]
        if self.gamma is not None:
            out = out * self.gamma.value.reshape(shape)
        if self.beta is not None:
            out = out + self.beta.value.reshape(shape)
        return out.astype(inputs.dtype)

    def get_config(self):
        return super().get_config() | {
            "axis": self.axis, "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
            "beta_initializer": self.beta_initializer, "gamma_initializer": self.gamma_initializer,
        }
