"""Dtype policies: which dtype a layer stores its weights in and which it computes in (Keras 3's).

    kfunc.mixed_precision.set_global_policy("mixed_bfloat16")
    layer = kfunc.layers.Dense(10)        # takes the global policy when it is created
    layer.variable_dtype, layer.compute_dtype   # float32, bfloat16

A policy named after a dtype (``"float32"``, ``"bfloat16"``, ``"float16"``) stores and computes in
that dtype; ``"mixed_bfloat16"`` and ``"mixed_float16"`` store weights in float32 and compute in
the half-precision dtype. Under a mixed policy a layer casts its floating inputs to the compute
dtype and reads its floating weights in the compute dtype (``kfunc.core.autocast``); the
float32 weights are what gradients are taken with respect to and what the optimizer updates.
Under ``"mixed_float16"``, ``compile()`` wraps the optimizer in a
``kfunc.optimizers.LossScaleOptimizer`` (as Keras 3 does; ``auto_scale_loss=False`` opts out), so
that float16 gradients of small losses do not underflow to zero.

The global policy is one value for the process (Keras keeps one per thread); layers read it once,
when they are created, and ``kfunc.utils.clear_session()`` forgets it as Keras's ``clear_session``
does. While no policy is set, the global policy is the one named after ``floatx()`` (one source:
``kfunc.config.set_floatx`` changes the dtype new layers store weights in, as in Keras 3).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.errors import PolicyError  # noqa: F401 (re-exported)

_MIXED = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def _describe(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:57] + '...' if len(text) > 60 else text}"


def _dtype_name(value) -> str | None:
    """The numeric dtype ``value`` names (``"float32"``, ``jnp.bfloat16``, ``np.dtype``), or None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        dtype = jnp.dtype(value)
    except (TypeError, ValueError):
        return None
    return dtype.name if dtype.kind in "biuf" or dtype.name == "bfloat16" else None


class DTypePolicy:
    """A layer's variable dtype and compute dtype, by policy name.

    ``name``: ``"mixed_bfloat16"``, ``"mixed_float16"``, or a numeric dtype name such as
    ``"float32"`` (variable and compute dtype both that dtype); ``None`` copies the global policy.
    ``variable_dtype`` and ``compute_dtype`` are dtype names (strings), as in Keras.
    """

    def __init__(self, name: str | None = None):
        if name is None:
            name = global_policy().name
        if not isinstance(name, str):
            raise PolicyError(
                f"DTypePolicy expects a policy name such as 'mixed_bfloat16' or 'float32', but received "
                f"{_describe(name)}; pass the name as a string."
            )
        if name in _MIXED:
            self._name, self._compute, self._variable = name, _MIXED[name], "float32"
            return
        dtype = _dtype_name(name)
        if dtype is None:
            raise PolicyError(
                f"DTypePolicy cannot interpret '{name}' as a policy: expected 'mixed_bfloat16', "
                "'mixed_float16' or a numeric dtype name such as 'float32', 'bfloat16' or 'float16'."
            )
        self._name = self._compute = self._variable = dtype

    @property
    def name(self) -> str:
        return self._name

    @property
    def compute_dtype(self) -> str:
        """The dtype layers compute in: their inputs are cast to it and weights read in it."""
        return self._compute

    @property
    def variable_dtype(self) -> str:
        """The dtype layers create (and the optimizer updates) their weights in."""
        return self._variable

    @property
    def is_mixed(self) -> bool:
        """Whether weights are stored in another dtype than the one computed in."""
        return self._compute != self._variable

    def get_config(self) -> dict:
        return {"name": self._name}

    @classmethod
    def from_config(cls, config: dict) -> DTypePolicy:
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self):
        return hash(("DTypePolicy", self._name))

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'


# Keras's legacy name (``keras.mixed_precision.Policy``).
Policy = DTypePolicy

_FLOATX_CHOICES = ("bfloat16", "float16", "float32", "float64")
_floatx = "float32"
_floatx_policy = DTypePolicy(_floatx)
_global: DTypePolicy | None = None  # None: the policy named after floatx(), as in Keras 3


def get(identifier) -> DTypePolicy:
    """The policy ``identifier`` describes, as layers read their ``dtype=`` argument.

    ``None``: the global policy. A ``DTypePolicy``: itself. A policy name or dtype name
    (``"mixed_bfloat16"``, ``"float32"``) or a dtype (``jnp.float16``, ``np.dtype("float32")``).
    A config dict: ``{"name": ...}`` or Keras 3's serialized form
    ``{"class_name": "DTypePolicy", "config": {"name": ...}, ...}``.
    """
    if identifier is None:
        return global_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, str):
        return DTypePolicy(identifier)
    if isinstance(identifier, dict):
        return _from_dict(identifier)
    name = _dtype_name(identifier)
    if name is None:
        raise PolicyError(
            f"A dtype policy must be a policy name such as 'mixed_bfloat16', a dtype such as 'float32', "
            f"or a DTypePolicy, but received {_describe(identifier)}."
        )
    return DTypePolicy(name)


def _from_dict(config: dict) -> DTypePolicy:
    if "class_name" in config:
        if config.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
            raise PolicyError(
                f"A dtype policy config names class {config.get('class_name')!r}; kfunc reads only "
                "'DTypePolicy' (quantized Keras policies are not supported)."
            )
        config = config.get("config")
    if not isinstance(config, dict) or set(config) != {"name"}:
        raise PolicyError(
            f"A dtype policy config must be {{'name': ...}} or Keras's {{'class_name': 'DTypePolicy', "
            f"'config': {{'name': ...}}}}, but received {_describe(config)}."
        )
    return DTypePolicy(config["name"])


def floatx() -> str:
    """The default float dtype (``"float32"`` unless set): the dtype of layers' weights while no
    global policy is set, and of ``kfunc.random`` draws without ``dtype=`` (Keras's ``floatx``)."""
    return _floatx


def set_floatx(value) -> None:
    """Make ``value`` (``"float16"``, ``"bfloat16"``, ``"float32"`` or ``"float64"``) the default float
    dtype; layers created afterwards without ``dtype=`` store weights in it unless a global policy
    is set (``set_global_policy`` wins, as in Keras 3)."""
    global _floatx, _floatx_policy
    name = _dtype_name(value)
    if name not in _FLOATX_CHOICES:
        raise PolicyError(
            f"set_floatx expects one of {list(_FLOATX_CHOICES)}, but received {_describe(value)}."
        )
    if name == "float64" and not jax.config.jax_enable_x64:
        raise PolicyError(
            "set_floatx('float64') needs 64-bit JAX arrays, which are disabled: call "
            "jax.config.update('jax_enable_x64', True) first."
        )
    _floatx, _floatx_policy = name, DTypePolicy(name)


def set_global_policy(policy) -> None:
    """Make ``policy`` (a ``DTypePolicy`` or a policy name) the policy of layers created from now on."""
    global _global
    if not isinstance(policy, (DTypePolicy, str)):
        raise PolicyError(
            f"set_global_policy expects a policy name such as 'mixed_bfloat16' or a DTypePolicy, but "
            f"received {_describe(policy)}."
        )
    _global = get(policy)


def global_policy() -> DTypePolicy:
    """The policy layers created without ``dtype=`` take: the one set, else ``floatx()``'s."""
    return _global if _global is not None else _floatx_policy


def reset_global_policy() -> None:
    """Forget the policy set, back to ``floatx()``'s (what ``kfunc.utils.clear_session`` does)."""
    global _global
    _global = None


# Keras 3's current names for the same two functions (``keras.config.set_dtype_policy``).
set_dtype_policy = set_global_policy
dtype_policy = global_policy


def at_least_float32(x):
    """``x`` cast to float32 when it is a floating array of lower precision (bfloat16, float16);
    any other value unchanged. Losses, metrics and model outputs go through this."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating) and jnp.dtype(dtype).itemsize < 4:
        return x.astype(jnp.float32)
    return x


__all__ = [
    "DTypePolicy",
    "Policy",
    "PolicyError",
    "dtype_policy",
    "floatx",
    "get",
    "global_policy",
    "set_dtype_policy",
    "set_floatx",
    "set_global_policy",
]
