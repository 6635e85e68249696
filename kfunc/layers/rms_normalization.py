"""RMSNormalization (Zhang & Sennrich, 2019), Keras 3's layer.

``outputs = inputs * rsqrt(mean(square(inputs), axis) + epsilon) * scale``, computed in at least
float32 (as Keras does, so half-precision inputs normalize stably) and returned in the input's
dtype. Unlike ``LayerNormalization(rms_scaling=True)`` there is no centering and ``epsilon`` is
added inside the square root of the mean square.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.errors import LayerConfigError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec


class RMSNormalization(Layer):
    """Root-mean-square normalization over ``axis`` (an int or a list of ints).

    Input ``(batch, ..., features)``, output the same shape. Weight: ``scale`` with the sizes of
    the normalized axes (ones at first). A mask passes through unchanged.
    """

    _passes_masks = True

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        valid = isinstance(axis, int) or (
            isinstance(axis, (list, tuple)) and axis and all(isinstance(a, int) and not isinstance(a, bool)
                                                             for a in axis)
        )
        if not valid or isinstance(axis, bool):
            raise LayerConfigError(f"RMSNormalization: axis must be an int or a list of ints, received {axis!r}.")
        self.axis = axis if isinstance(axis, int) else list(axis)
        self.epsilon = float(epsilon)

    def _axes(self, ndim: int, shape) -> tuple[int, ...]:
        axes = [self.axis] if isinstance(self.axis, int) else self.axis
        if any(not -ndim <= a < ndim for a in axes) or any(a % ndim == 0 for a in axes):
            raise LayerConfigError(
                f"{describe_layer(self)}: axis={self.axis} must name axes after the batch axis of inputs of shape "
                f"{tuple(shape)}."
            )
        return tuple(sorted(a % ndim for a in axes))

    def build(self, input_shape):
        axes = self._axes(len(input_shape), input_shape)
        shape = tuple(checks.known_size(input_shape[a], f"axis {a}", self, input_shape) for a in axes)
        self.scale = self.add_weight("scale", shape, "ones")
        self._normalized_axes = axes
        self.input_spec = InputSpec(ndim=len(input_shape), axes=dict(zip(axes, shape, strict=True)))

    def call(self, inputs):
        axes = self._normalized_axes
        compute = jnp.promote_types(inputs.dtype, jnp.float32)
        x = inputs.astype(compute)
        # The scale's axes placed where they normalize, size 1 elsewhere.
        scale_shape = [inputs.shape[a] if a in axes else 1 for a in range(inputs.ndim)]
        scale = jnp.reshape(self.scale.value.astype(compute), scale_shape)
        inverse_rms = jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axes, keepdims=True) + self.epsilon)
        return (x * inverse_rms * scale).astype(inputs.dtype)

    def get_config(self):
        return super().get_config() | {"axis": self.axis, "epsilon": self.epsilon}
