"""BatchNormalization, LayerNormalization, GroupNormalization (Keras's weights, order and defaults)."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc import constraints, regularizers
from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec


def _axes(axis, ndim):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


def _add_gamma_and_beta(layer, shape) -> None:
    """``layer.gamma`` (if ``scale``) and ``layer.beta`` (if ``center``) of ``shape``, with the layer's
    initializers, regularizers and constraints; never autocast (float32 under a mixed policy)."""
    layer.gamma = layer.add_weight("gamma", shape, layer.gamma_initializer, autocast=False,
                                   regularizer=layer.gamma_regularizer,
                                   constraint=layer.gamma_constraint) if layer.scale else None
    layer.beta = layer.add_weight("beta", shape, layer.beta_initializer, autocast=False,
                                  regularizer=layer.beta_regularizer,
                                  constraint=layer.beta_constraint) if layer.center else None


class BatchNormalization(Layer):
    """Normalizes over the batch (and all axes but ``axis``).

    Training: batch statistics, and ``moving_mean``/``moving_variance`` (state) move by
    ``momentum``. Inference, or a frozen layer: the moving statistics.
    Weights: gamma, beta (trainable), moving_mean, moving_variance (state), each ``(features,)``.
    A mask ``(batch, timesteps)`` on ``(batch, timesteps, features)`` inputs keeps padded steps
    out of the batch statistics (Keras 3) and passes on.
    """

    _passes_masks = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_regularizer, self.gamma_regularizer = regularizers.get(beta_regularizer), regularizers.get(gamma_regularizer)
        self.beta_constraint, self.gamma_constraint = constraints.get(beta_constraint), constraints.get(gamma_constraint)
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer

    def build(self, input_shape):
        axes = _axes(self.axis, len(input_shape))
        shape = tuple(checks.known_size(input_shape[a], f"axis {a}", self, input_shape) for a in axes)
        # autocast=False: under a mixed policy the statistics and gamma/beta stay float32, and so
        # does the normalization (Keras 3); only the output is cast to the compute dtype.
        _add_gamma_and_beta(self, shape)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False,
                                           autocast=False)
        self.moving_variance = self.add_weight("moving_variance", shape, self.moving_variance_initializer,
                                               trainable=False, autocast=False)
        self.input_spec = InputSpec(ndim=len(input_shape), axes={a: s for a, s in zip(axes, shape, strict=True)})

    def _moments(self, x, reduce_axes, mask):
        """Mean and variance over ``reduce_axes``, leaving out masked steps (every row of the batch
        is a real sample: the training step never pads a batch)."""
        if mask is None:
            return jnp.mean(x, axis=reduce_axes), jnp.var(x, axis=reduce_axes)
        if mask.ndim != x.ndim - 1:
            raise LayerInputError(
                f"{describe_layer(self)}: the mask must have one axis less than the inputs {tuple(x.shape)}, "
                f"but has shape {tuple(mask.shape)}."
            )
        weight = jnp.broadcast_to(mask[..., None], x.shape).astype(x.dtype)
        epsilon = 1e-7  # Keras's masked statistics divide by (count + epsilon)
        kept = jnp.sum(weight, axis=reduce_axes, keepdims=True) + epsilon
        mean = jnp.sum(jnp.where(weight > 0, x, 0) * weight, axis=reduce_axes, keepdims=True) / kept
        variance = jnp.sum(jnp.where(weight > 0, x - mean, 0) ** 2 * weight, axis=reduce_axes, keepdims=True) / kept
        return jnp.squeeze(mean, reduce_axes), jnp.squeeze(variance, reduce_axes)

    def _broadcast(self, value, ndim, axes):
        shape = [1] * ndim
        for a, s in zip(axes, value.shape, strict=True):
            shape[a] = s
        return value.reshape(shape)

    def call(self, inputs, training=False, mask=None):
        axes = _axes(self.axis, inputs.ndim)
        reduce_axes = tuple(a for a in range(inputs.ndim) if a not in axes)
        compute = jnp.promote_types(inputs.dtype, jnp.float32)
        x = inputs.astype(compute)
        if training and self.trainable:
            mean, variance = self._moments(x, reduce_axes, mask)
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
            "beta_regularizer": self.beta_regularizer, "gamma_regularizer": self.gamma_regularizer,
            "beta_constraint": self.beta_constraint, "gamma_constraint": self.gamma_constraint,
        }


class LayerNormalization(Layer):
    """Normalizes each example over ``axis`` (default the last); gamma/beta of that shape."""

    _passes_masks = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_regularizer, self.gamma_regularizer = regularizers.get(beta_regularizer), regularizers.get(gamma_regularizer)
        self.beta_constraint, self.gamma_constraint = constraints.get(beta_constraint), constraints.get(gamma_constraint)

    def build(self, input_shape):
        axes = _axes(self.axis, len(input_shape))
        shape = tuple(checks.known_size(input_shape[a], f"axis {a}", self, input_shape) for a in axes)
        _add_gamma_and_beta(self, shape)
        self.input_spec = InputSpec(ndim=len(input_shape), axes={a: s for a, s in zip(axes, shape, strict=True)})

    # As in Keras 3, inputs are not cast to the compute dtype first: the statistics use the inputs
    # at their own precision (at least float32), and only the output is cast to the compute dtype.
    _autocast = False

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
        return out.astype(self.compute_dtype)

    def get_config(self):
        return super().get_config() | {
            "axis": self.axis, "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
            "beta_initializer": self.beta_initializer, "gamma_initializer": self.gamma_initializer,
            "beta_regularizer": self.beta_regularizer, "gamma_regularizer": self.gamma_regularizer,
            "beta_constraint": self.beta_constraint, "gamma_constraint": self.gamma_constraint,
        }


class GroupNormalization(Layer):
    """Normalizes each example over groups of channels.

    The ``C`` channels of ``axis`` are split into ``groups`` consecutive groups of ``C // groups``;
    each group is normalized with the mean and variance over its channels and every other non-batch
    axis, then scaled by ``gamma (C,)`` and shifted by ``beta (C,)``. ``groups=-1``: one group per
    channel (instance normalization); ``groups=1``: layer normalization over all non-batch axes.
    Input ``(batch, ..., C, ...)``; output of the same shape.
    """

    _passes_masks = True

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        if isinstance(groups, bool) or not hasattr(groups, "__index__") or (groups <= 0 and groups != -1):
            raise LayerConfigError(
                f"GroupNormalization: groups must be a positive integer (or -1 for one group per channel), "
                f"received {groups!r}."
            )
        if isinstance(axis, bool) or not hasattr(axis, "__index__"):
            raise LayerConfigError(
                f"GroupNormalization: axis must be one integer, the channel axis (e.g. -1 or 1), received {axis!r}."
            )
        super().__init__(**kwargs)
        self.groups, self.axis = int(groups), int(axis)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_regularizer, self.gamma_regularizer = regularizers.get(beta_regularizer), regularizers.get(gamma_regularizer)
        self.beta_constraint, self.gamma_constraint = constraints.get(beta_constraint), constraints.get(gamma_constraint)

    def _groups_for(self, channels: int) -> int:
        return channels if self.groups == -1 else self.groups

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise LayerConfigError(
                f"{describe_layer(self)}: axis={self.axis} is not a channel axis of the input shape {input_shape} "
                f"(axis 0 is the batch): pass an axis in 1..{ndim - 1} or -{ndim - 1}..-1."
            )
        axis = self.axis % ndim
        channels = checks.known_size(input_shape[axis], f"axis {self.axis}", self, input_shape)
        groups = self._groups_for(channels)
        if channels % groups:
            raise LayerConfigError(
                f"{describe_layer(self)}: groups={groups} must divide the {channels} channels of axis {self.axis} "
                f"(input shape {input_shape}); choose a divisor of {channels}, or groups=-1 for one per channel."
            )
        # autocast=False, and no input cast below: as LayerNormalization (and Keras 3), statistics and
        # gamma/beta stay float32 under a mixed policy; only the output is in the compute dtype.
        _add_gamma_and_beta(self, (channels,))
        self.input_spec = InputSpec(ndim=ndim, axes={axis: channels})

    _autocast = False

    def call(self, inputs):
        axis = self.axis % inputs.ndim
        channels = inputs.shape[axis]
        groups = self._groups_for(channels)
        x = inputs.astype(jnp.promote_types(inputs.dtype, jnp.float32))
        grouped = x.reshape(x.shape[:axis] + (groups, channels // groups) + x.shape[axis + 1:])
        # Statistics over everything but the batch and the group index.
        reduce_axes = tuple(a for a in range(1, grouped.ndim) if a != axis)
        mean = jnp.mean(grouped, axis=reduce_axes, keepdims=True)
        variance = jnp.var(grouped, axis=reduce_axes, keepdims=True)
        out = ((grouped - mean) * (1.0 / jnp.sqrt(variance + self.epsilon))).reshape(x.shape)
        shape = [1] * inputs.ndim
        shape[axis] = channels
        if self.gamma is not None:
            out = out * self.gamma.value.astype(out.dtype).reshape(shape)
        if self.beta is not None:
            out = out + self.beta.value.astype(out.dtype).reshape(shape)
        return out.astype(self.compute_dtype)

    def get_config(self):
        return super().get_config() | {
            "groups": self.groups, "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
            "scale": self.scale, "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
            "beta_regularizer": self.beta_regularizer, "gamma_regularizer": self.gamma_regularizer,
            "beta_constraint": self.beta_constraint, "gamma_constraint": self.gamma_constraint,
        }
