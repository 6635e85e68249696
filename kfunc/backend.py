"""``kfunc.backend``: the ``keras.backend`` names that custom-layer code commonly uses.

Settings (``floatx``, ``epsilon``, ``image_data_format`` and their setters) are ``kfunc.config``'s;
dtype helpers follow Keras 3 (``standardize_dtype(None)`` is ``floatx()``, Python ``int`` is
``"int32"``, promotion as JAX's, which Keras 3 adopted); ``clear_session`` resets kfunc's global
state as Keras's does.
"""

from __future__ import annotations

import gc

import jax.numpy as jnp

from kfunc import naming
from kfunc.config import (
    backend,
    epsilon,
    floatx,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)
from kfunc.errors import ArgumentError
from kfunc.graph.tensor import is_symbolic
from kfunc.mixed_precision import reset_global_policy
from kfunc.random.seed_generator import reset_global_seed_generator

_PYTHON_TYPES = {bool: "bool", int: "int32", float: "float32", complex: "complex64", "int": "int32"}


def clear_session(free_memory=True) -> None:
    """Restart default names (the next ``Dense`` is ``dense`` again), forget the global dtype policy
    (back to ``floatx()``'s) and the global random generator, as Keras's ``clear_session`` does;
    ``free_memory``: also run Python's garbage collector."""
    naming.reset_names()
    reset_global_policy()
    reset_global_seed_generator()
    if free_memory:
        gc.collect()


def get_uid(prefix="") -> int:
    """1 the first time ``prefix`` is asked for, then 2, 3 ... (``clear_session`` restarts it)."""
    return naming.next_uid(prefix)


def is_keras_tensor(x) -> bool:
    """Whether ``x`` is a symbolic tensor (what ``kfunc.Input`` and layers called on it return)."""
    return is_symbolic(x)


def standardize_dtype(dtype) -> str:
    """The dtype's name: ``None`` -> ``floatx()``, Python ``int`` -> ``"int32"``, ``float`` ->
    ``"float32"``, ``jnp.bfloat16`` / ``np.float16`` / ``"float16"`` -> their name."""
    if dtype is None:
        return floatx()
    named = _PYTHON_TYPES.get(dtype) if isinstance(dtype, (type, str)) else None
    if named is not None:
        return named
    try:
        return jnp.dtype(dtype).name
    except (TypeError, ValueError):
        raise ArgumentError(
            f"standardize_dtype: {dtype!r:.60} is not a dtype; pass a name such as 'float32' or 'int32', a NumPy "
            "or JAX dtype, or a Python type."
        ) from None


def result_type(*dtypes) -> str:
    """The dtype an operation on values of these dtypes returns (``floatx()`` for none);
    Python types count as weak, as in Keras 3: ``result_type(float, "float16")`` is ``"float16"``."""
    if not dtypes:
        return floatx()
    resolved = [d if isinstance(d, type) and d in _PYTHON_TYPES else standardize_dtype(d) for d in dtypes]
    return jnp.result_type(*resolved).name


def is_float_dtype(dtype) -> bool:
    """Whether ``dtype`` is a (b)float dtype."""
    return standardize_dtype(dtype).startswith(("float", "bfloat"))


def is_int_dtype(dtype) -> bool:
    """Whether ``dtype`` is a signed or unsigned integer dtype (not ``bool``)."""
    return standardize_dtype(dtype).startswith(("int", "uint"))


__all__ = [
    "backend",
    "clear_session",
    "epsilon",
    "floatx",
    "get_uid",
    "image_data_format",
    "is_float_dtype",
    "is_int_dtype",
    "is_keras_tensor",
    "result_type",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "standardize_dtype",
]
