"""Weight initializers with Keras's names and defaults.

An initializer is a callable ``(key, shape, dtype) -> array``, the same contract as
``jax.nn.initializers``, so any of those can be passed too. Fans follow Keras: for a kernel of
shape ``(..., in, out)`` the receptive field is the product of the leading dimensions.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import LayerConfigError


class Initializer:
    """Base class: a configurable ``(key, shape, dtype) -> array``."""

    def __call__(self, key, shape, dtype=jnp.float32):
        raise NotImplementedError(f"{type(self).__name__} must define __call__(key, shape, dtype).")

    def get_config(self) -> dict:
        return dict(self.__dict__)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def __call__(self, key, shape, dtype=jnp.float32):
        return jnp.zeros(shape, dtype)


class Ones(Initializer):
    def __call__(self, key, shape, dtype=jnp.float32):
        return jnp.ones(shape, dtype)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, key, shape, dtype=jnp.float32):
        return jnp.full(shape, self.value, dtype)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05):
        self.mean, self.stddev = mean, stddev

    def __call__(self, key, shape, dtype=jnp.float32):
        return self.mean + self.stddev * jax.random.normal(key, shape, dtype)


class TruncatedNormal(Initializer):
    """Normal values more than two standard deviations from the mean are redrawn."""

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean, self.stddev = mean, stddev

    def __call__(self, key, shape, dtype=jnp.float32):
        return self.mean + self.stddev * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05):
        self.minval, self.maxval = minval, maxval

    def __call__(self, key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, self.minval, self.maxval)


def compute_fans(shape) -> tuple[float, float]:
    """Keras's fans: ``(in * receptive_field, out * receptive_field)`` for ``(..., in, out)``."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive_field = float(np.prod(shape[:-2])) if len(shape) > 2 else 1.0
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class VarianceScaling(Initializer):
    """Samples with variance ``scale / fan``; ``mode`` picks the fan, ``distribution`` the law."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise LayerConfigError(f"VarianceScaling mode must be fan_in, fan_out or fan_avg, received {mode!r}.")
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise LayerConfigError(
                "VarianceScaling distribution must be truncated_normal, untruncated_normal or uniform, "
                f"received {distribution!r}."
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, key, shape, dtype=jnp.float32):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "truncated_normal":
            # 0.879... is the standard deviation of a standard normal truncated to (-2, 2).
            stddev = np.sqrt(variance) / 0.87962566103423978
            return stddev * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
        if self.distribution == "untruncated_normal":
            return np.sqrt(variance) * jax.random.normal(key, shape, dtype)
        limit = np.sqrt(3.0 * variance)
        return jax.random.uniform(key, shape, dtype, -limit, limit)


class GlorotUniform(VarianceScaling):
    def __init__(self):
        super().__init__(1.0, "fan_avg", "uniform")

    def get_config(self):
        return {}


class GlorotNormal(VarianceScaling):
    def __init__(self):
        super().__init__(1.0, "fan_avg", "truncated_normal")

    def get_config(self):
        return {}


class HeNormal(VarianceScaling):
    def __init__(self):
        super().__init__(2.0, "fan_in", "truncated_normal")

    def get_config(self):
        return {}


class HeUniform(VarianceScaling):
    def __init__(self):
        super().__init__(2.0, "fan_in", "uniform")

    def get_config(self):
        return {}


class LecunNormal(VarianceScaling):
    def __init__(self):
        super().__init__(1.0, "fan_in", "truncated_normal")

    def get_config(self):
        return {}


class LecunUniform(VarianceScaling):
    def __init__(self):
        super().__init__(1.0, "fan_in", "uniform")

    def get_config(self):
        return {}


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix over ``(prod(shape[:-1]), shape[-1])``, times ``gain``."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, key, shape, dtype=jnp.float32):
        return jax.nn.initializers.orthogonal(scale=self.gain, column_axis=-1)(key, shape, dtype)


class Identity(Initializer):
    """``gain`` times the identity matrix; 2-D shapes only."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, key, shape, dtype=jnp.float32):
        if len(shape) != 2:
            raise LayerConfigError(f"The identity initializer needs a 2-D shape, received {tuple(shape)}.")
        return self.gain * jnp.eye(*shape, dtype=dtype)


INITIALIZERS: dict[str, type[Initializer]] = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "normal": RandomNormal,
    "truncated_normal": TruncatedNormal,
    "random_uniform": RandomUniform,
    "uniform": RandomUniform,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
    "identity": Identity,
}


def get(identifier) -> Callable:
    """A name (``'glorot_uniform'``), an ``Initializer`` or any ``(key, shape, dtype)`` callable."""
    if isinstance(identifier, str):
        try:
            return INITIALIZERS[identifier]()
        except KeyError:
            raise LayerConfigError(
                f"Unknown initializer '{identifier}'; expected one of {sorted(INITIALIZERS)} or a "
                "callable (key, shape, dtype) -> array."
            ) from None
    if callable(identifier):
        return identifier
    raise LayerConfigError(
        f"An initializer must be a name or a callable (key, shape, dtype), received "
        f"{type(identifier).__name__} {identifier!r}."
    )
