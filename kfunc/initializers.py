"""Weight initializers with Keras's names and defaults.

An initializer is a callable ``(key, shape, dtype) -> array``, the contract of
``jax.nn.initializers``, so any of those can be passed too. Fans follow Keras: for a kernel of
shape ``(..., in, out)`` the receptive field is the product of the leading dimensions.

The built-in initializers write their math once against a small random source, so they also
draw from a NumPy ``Generator`` (``key`` may be one). Weights that layers create for themselves
(Keras style) are drawn that way: on the host, without compiling an XLA program per weight shape
(on CPU each such compile of JAX's threefry generator costs seconds). The pure
``init(key)`` draws with ``jax.random`` as usual.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import LayerConfigError


class _JaxSource:
    """Random draws from a JAX key, split per draw."""

    xp = jnp

    def __init__(self, key):
        self.key = key

    def next_key(self):
        self.key, key = jax.random.split(self.key)
        return key

    def normal(self, shape, dtype):
        return jax.random.normal(self.next_key(), shape, dtype)

    def uniform(self, shape, dtype, low, high):
        return jax.random.uniform(self.next_key(), shape, dtype, low, high)

    def truncated_normal(self, shape, dtype):
        return jax.random.truncated_normal(self.next_key(), -2.0, 2.0, shape, dtype)


class _NumpySource:
    """The same draws from a NumPy ``Generator``, on the host."""

    xp = np

    def __init__(self, generator: np.random.Generator):
        self.generator = generator

    def normal(self, shape, dtype):
        return self.generator.standard_normal(shape).astype(dtype)

    def uniform(self, shape, dtype, low, high):
        return self.generator.uniform(low, high, shape).astype(dtype)

    def truncated_normal(self, shape, dtype):
        values = self.generator.standard_normal(shape)
        outside = np.abs(values) > 2.0
        while outside.any():
            values[outside] = self.generator.standard_normal(int(outside.sum()))
            outside = np.abs(values) > 2.0
        return values.astype(dtype)


def random_source(key):
    return _NumpySource(key) if isinstance(key, np.random.Generator) else _JaxSource(key)


def _checked_seed(seed, initializer: str):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise LayerConfigError(
            f"{initializer}: seed must be None or a non-negative int, received {seed!r}; a seeded initializer "
            "draws the same values at every call, an unseeded one draws from the key it is given."
        )
    return seed


def _seeded_source(key, seed: int):
    """Keras 3's seeded initializer: the same draws at every call, whatever key is passed (a host
    generator stays on the host, a JAX key stays in JAX, so both paths are deterministic)."""
    if isinstance(key, np.random.Generator):
        return _NumpySource(np.random.default_rng(seed))
    return _JaxSource(jax.random.key(seed))


class Initializer:
    """Base class: ``sample(source, shape, dtype)`` written once for JAX and NumPy sources."""

    supports_numpy = True

    seed = None  # random initializers take seed=; with an int every call draws the same values

    def __call__(self, key, shape, dtype=jnp.float32):
        source = random_source(key) if self.seed is None else _seeded_source(key, self.seed)
        return self.sample(source, tuple(shape), jnp.dtype(dtype))

    def sample(self, source, shape, dtype):
        raise NotImplementedError(f"{type(self).__name__} must define sample(source, shape, dtype).")

    def get_config(self) -> dict:
        return dict(self.__dict__)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def sample(self, source, shape, dtype):
        return source.xp.zeros(shape, dtype)


class Ones(Initializer):
    def sample(self, source, shape, dtype):
        return source.xp.ones(shape, dtype)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def sample(self, source, shape, dtype):
        return source.xp.full(shape, self.value, dtype)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = mean, stddev
        self.seed = _checked_seed(seed, "RandomNormal")

    def sample(self, source, shape, dtype):
        return (self.mean + self.stddev * source.normal(shape, dtype)).astype(dtype)


class TruncatedNormal(Initializer):
    """Normal values more than two standard deviations from the mean are redrawn."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = mean, stddev
        self.seed = _checked_seed(seed, "TruncatedNormal")

    def sample(self, source, shape, dtype):
        return (self.mean + self.stddev * source.truncated_normal(shape, dtype)).astype(dtype)


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval = minval, maxval
        self.seed = _checked_seed(seed, "RandomUniform")

    def sample(self, source, shape, dtype):
        return source.uniform(shape, dtype, self.minval, self.maxval)


def compute_fans(shape, input_axes=None, output_axes=None) -> tuple[float, float]:
    """Keras's fans: ``(in * receptive_field, out * receptive_field)`` for ``(..., in, out)``, or
    the products of the sizes along ``input_axes`` and ``output_axes`` when both are given."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return float(np.prod([shape[a] for a in input_axes])), float(np.prod([shape[a] for a in output_axes]))
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive_field = float(np.prod(shape[:-2])) if len(shape) > 2 else 1.0
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class VarianceScaling(Initializer):
    """Samples with variance ``scale / fan``; ``mode`` picks the fan, ``distribution`` the law."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, input_axes=None,
                 output_axes=None):
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
        self.seed = _checked_seed(seed, type(self).__name__)
        self.input_axes, self.output_axes = input_axes, output_axes

    def sample(self, source, shape, dtype):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "truncated_normal":
            # 0.879... is the standard deviation of a standard normal truncated to (-2, 2).
            stddev = np.sqrt(variance) / 0.87962566103423978
            return (stddev * source.truncated_normal(shape, dtype)).astype(dtype)
        if self.distribution == "untruncated_normal":
            return (np.sqrt(variance) * source.normal(shape, dtype)).astype(dtype)
        limit = np.sqrt(3.0 * variance)
        return source.uniform(shape, dtype, -limit, limit)


def _fixed_variance_scaling(class_name: str, scale: float, mode: str, distribution: str) -> type:
    """Keras's named variance-scaling initializers: no arguments of their own."""

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}

    return type(class_name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config})


GlorotUniform = _fixed_variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _fixed_variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeNormal = _fixed_variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
HeUniform = _fixed_variance_scaling("HeUniform", 2.0, "fan_in", "uniform")
LecunNormal = _fixed_variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")
LecunUniform = _fixed_variance_scaling("LecunUniform", 1.0, "fan_in", "uniform")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix over ``(prod(shape[:-1]), shape[-1])``, times ``gain``."""

    def __init__(self, gain=1.0, seed=None):
        self.gain = gain
        self.seed = _checked_seed(seed, "Orthogonal")

    def sample(self, source, shape, dtype):
        xp = source.xp
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        normal = source.normal((max(rows, cols), min(rows, cols)), jnp.float32)
        q, r = xp.linalg.qr(normal)
        q = q * xp.sign(xp.diagonal(r))  # makes the distribution uniform over orthogonal matrices
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype)


class Identity(Initializer):
    """``gain`` times the identity matrix; 2-D shapes only."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def sample(self, source, shape, dtype):
        if len(shape) != 2:
            raise LayerConfigError(f"The identity initializer needs a 2-D shape, received {tuple(shape)}.")
        return (self.gain * source.xp.eye(*shape)).astype(dtype)


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


# Keras 3's other spellings of the same classes: ``keras.initializers.glorot_uniform`` is the class
# ``GlorotUniform``, and ``IdentityInitializer`` / ``OrthogonalInitializer`` name ``Identity`` /
# ``Orthogonal``.
globals().update(INITIALIZERS)
IdentityInitializer = Identity
OrthogonalInitializer = Orthogonal


def _class_named(name: str, custom_objects) -> type | None:
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    by_class_name = {cls.__name__: cls for cls in INITIALIZERS.values()}
    return INITIALIZERS.get(name) or by_class_name.get(name)


def serialize(initializer) -> dict:
    """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` of a built-in
    initializer, which ``deserialize`` and ``get`` turn back into an equal one."""
    cls = type(initializer)
    if not isinstance(initializer, Initializer) or _class_named(cls.__name__, None) is not cls:
        raise LayerConfigError(
            f"kfunc.initializers.serialize expects a built-in Initializer, received {initializer!r:.60}; a custom "
            "initializer is saved by the model file under its kfunc.saving.register name."
        )
    return {"module": "keras.initializers", "class_name": cls.__name__, "config": initializer.get_config(),
            "registered_name": None}


def deserialize(config, custom_objects=None) -> Initializer:
    """The initializer ``config`` describes: a name (``"he_normal"``, ``"HeNormal"``) or Keras 3's
    ``{"class_name": ..., "config": {...}}``. Classes resolve through ``custom_objects`` and the
    built-in table only (nothing is imported by name)."""
    name, arguments = config, {}
    if isinstance(config, dict):
        name, arguments = config.get("class_name"), config.get("config") or {}
    cls = _class_named(name, custom_objects) if isinstance(name, str) else None
    if cls is None or not isinstance(arguments, dict):
        raise LayerConfigError(
            f"kfunc.initializers.deserialize: {config!r:.80} names no initializer; expected one of "
            f"{sorted(INITIALIZERS)}, Keras's {{'class_name': ..., 'config': {{...}}}}, or a class in custom_objects."
        )
    return cls.from_config(arguments) if hasattr(cls, "from_config") else cls(**arguments)


def get(identifier) -> Callable:
    """A name (``'glorot_uniform'``), Keras 3's ``{"class_name", "config"}`` dict, an ``Initializer``
    or any ``(key, shape, dtype)`` callable."""
    if isinstance(identifier, dict):
        return deserialize(identifier)
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
