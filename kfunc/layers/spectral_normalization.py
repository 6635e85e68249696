"""SpectralNormalization (Miyato et al., 2018): a wrapper dividing a layer's kernel by its largest
singular value, estimated by power iteration (Keras 3's layer).

In training, ``power_iterations`` steps refine the estimate ``u (1, out)`` of the kernel's leading
singular vector (non-trainable state ``vector_u``, returned updated), and the wrapped layer runs
with ``kernel / sigma`` (``sigma = v W u^T`` with ``W`` the kernel as ``(-1, out)``; ``u`` and ``v``
carry no gradient). The normalized kernel is assigned to the kernel as Keras does: on an eager
call on arrays it is stored, inside a pure ``apply`` (and so in ``fit``) it only feeds that call,
as with Keras's JAX backend, and the optimizer updates the unnormalized kernel. At inference the
wrapped layer runs as it is. A kernel of zeros is left alone. Wraps any layer with a ``kernel``
(Dense, Conv*) or ``embeddings`` (Embedding) weight.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc import initializers
from kfunc.errors import LayerConfigError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec

_EPSILON = 1e-7  # Keras's backend epsilon: the smallest norm a vector is divided by


def _l2_normalize(x):
    """``x / ||x||`` over all entries, the norm at least ``_EPSILON`` (Keras's ``normalize``)."""
    inverse_norm = jnp.minimum(jax.lax.rsqrt(jnp.sum(jnp.square(x))), 1.0 / _EPSILON)
    return x * inverse_norm


class SpectralNormalization(Layer):
    """``SpectralNormalization(layer, power_iterations=1)``; see the module docstring.

    Input and output: the wrapped layer's. Weights (Keras's order): the wrapped layer's kernel,
    ``vector_u (1, kernel.shape[-1])`` (non-trainable, truncated normal with stddev 0.02), then the
    wrapped layer's other weights.
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        if not isinstance(layer, Layer):
            raise LayerConfigError(
                f"SpectralNormalization wraps a layer with a kernel (Dense, Conv2D ...), received "
                f"{type(layer).__name__} {layer!r:.60}."
            )
        super().__init__(**kwargs)
        self.power_iterations = checks.positive_int(power_iterations, "power_iterations", "SpectralNormalization")
        self.layer = layer

    @property
    def uses_key(self) -> bool:
        return self.layer.uses_key

    def _kernel(self):
        for name in ("kernel", "embeddings"):
            weight = getattr(self.layer, name, None)
            if weight is not None and hasattr(weight, "assign"):
                return weight
        raise LayerConfigError(
            f"{describe_layer(self)}: the wrapped layer '{self.layer.name}' ({type(self.layer).__name__}) has "
            "neither a 'kernel' nor an 'embeddings' weight to normalize; wrap a Dense, convolution or Embedding layer."
        )

    def build(self, input_shape):
        if not self.layer.built:
            self.layer._build_from(input_shape)
        kernel = self._kernel()
        self.vector_u = self.add_weight("vector_u", (1, kernel.shape[-1]), initializers.TruncatedNormal(stddev=0.02),
                                        trainable=False, dtype=kernel.dtype)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: input_shape[-1]})

    @property
    def weights(self):
        """Keras's order: the normalized kernel, ``vector_u``, then the wrapped layer's other weights
        (Keras tracks the kernel as the wrapper's own weight)."""
        found = super().weights
        if not self.built:
            return found
        kernel = self._kernel()
        return [kernel] + [w for w in found if w is not kernel]

    def normalized_weights(self):
        """``(new vector_u (1, out), kernel / sigma)`` from the current values."""
        kernel = self._kernel().value
        matrix = kernel.reshape(-1, kernel.shape[-1])
        u = self.vector_u.value.astype(matrix.dtype)
        for _ in range(self.power_iterations):
            v = _l2_normalize(u @ matrix.T)
            u = _l2_normalize(v @ matrix)
        u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
        sigma = (v @ matrix) @ u.T  # (1, 1)
        return u, kernel / sigma.reshape(())

    def call(self, inputs, training=False, key=None):
        if training:
            kernel = self._kernel()
            new_u, new_kernel = self.normalized_weights()
            untouched = jnp.all(kernel.value == 0)  # a zero kernel has no direction to estimate
            self.vector_u.assign(jnp.where(untouched, self.vector_u.value, new_u.astype(self.vector_u.dtype)))
            kernel.assign(jnp.where(untouched, kernel.value, new_kernel).astype(kernel.dtype))
        outputs = self.layer._call_arrays((inputs,), {"training": training, "key": key})
        return outputs.astype(inputs.dtype)

    def get_config(self):
        return super().get_config() | {"layer": self.layer, "power_iterations": self.power_iterations}
