"""Variables: the weights a layer owns, and how pure functions lend them values.

A ``Variable`` is Keras 3's: ``Variable(initializer_or_value, shape=None, dtype=None,
trainable=True, autocast=True, name=None)``, created by ``Layer.add_weight`` or directly. It owns a
current value, drawn lazily from its seeding ticket the first time it is read.

The pure functions (``Layer.apply``, ``kfunc.lower``) never read or write those owned values: a
trace lends each variable a value taken from a parameter pytree through a *binding* that lives in
a ``contextvars`` context of that trace (``kfunc.core.binding``), never on the shared ``Variable``.
So ``layer.call`` (built-in or user-written, reading ``self.kernel``) computes on the pytree's
arrays, tracers included, and two threads applying different parameters to one model at the same
time each see their own. ``assign`` inside a binding records an update (BatchNorm's moving
statistics) that the pure function returns as new state; it never touches the owned value.

What JAX no longer allows: a Variable passed straight to a ``jax.numpy`` function
(``jnp.matmul(x, v)``) is refused by JAX; use ``v.value``, ``kfunc.ops`` or an operator (``x @ v``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kfunc import initializers as initializers_lib
from kfunc import seeding
from kfunc.core.autocast import current_dtype
from kfunc.core.binding import bind, bound_value, record_update
from kfunc.errors import WeightsError
from kfunc.naming import unique_name

__all__ = ["Variable", "bind"]


class Variable:
    """A weight: ``shape`` e.g. ``(in, out)`` for a Dense kernel, and its current value.

    ``initializer``: an initializer (name, object or ``(key, shape, dtype) -> array``), then
    ``shape`` is required; or an array-like initial value (its shape and dtype are taken).
    ``autocast``: whether a floating weight reads as the compute dtype of a mixed-precision layer
    (``kfunc.core.autocast``); ``dtype`` stays the stored dtype either way. ``regularizer``
    (``w -> penalty``) and ``constraint`` (``w -> w'``) are used by training.
    """

    def __init__(self, initializer, shape=None, dtype=None, trainable: bool = True, autocast: bool = True,
                 name: str | None = None, *, regularizer=None, constraint=None, owner_name: str | None = None,
                 aggregation: str | None = "none", synchronization: str | None = "auto"):
        name = name if name is not None else unique_name("variable")
        if not isinstance(name, str) or not name or "/" in name:
            raise WeightsError(
                f"A Variable name must be a non-empty string without '/', received {name!r}; pass e.g. "
                "name='kernel'."
            )
        self.name = name
        self.owner_name = owner_name
        self.trainable = bool(trainable)
        self.autocast = bool(autocast)
        self.regularizer = regularizer
        self.constraint = constraint
        self.aggregation = "none" if aggregation is None else aggregation
        self.synchronization = "none" if synchronization is None else synchronization
        self._value = None
        if isinstance(initializer, str) or callable(initializer):
            if shape is None:
                raise WeightsError(
                    f"Variable '{name}' was given the initializer {initializer!r:.60} but no shape; pass "
                    "shape=(...), or an array as the initial value."
                )
            self.initializer = initializers_lib.get(initializer)
            self.shape = _as_shape(shape, name)
            self.dtype = jnp.dtype(dtype if dtype is not None else "float32")
        else:
            value = jnp.asarray(initializer, dtype)
            if jnp.iscomplexobj(value):
                raise WeightsError(f"Variable '{name}' received a complex value; kfunc weights are real.")
            if shape is not None and _as_shape(shape, name) != tuple(value.shape):
                raise WeightsError(
                    f"Variable '{name}' was given shape {tuple(shape)} and a value of shape {value.shape}; "
                    "they must agree."
                )
            self.initializer = initializers_lib.get("zeros")
            self.shape = tuple(int(d) for d in value.shape)
            self.dtype = value.dtype
            self._value = value
        self._ticket = seeding.next_ticket()

    # ------------------------------------------------------------------ description
    @property
    def path(self) -> str:
        """``"dense_1/kernel"`` (the owning layer's name, then the weight's)."""
        return f"{self.owner_name}/{self.name}" if self.owner_name else self.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_materialized(self) -> bool:
        return self._value is not None

    def __repr__(self):
        return f"<Variable path={self.path} shape={self.shape} dtype={self.dtype.name}>"

    # Variables are compared by identity when used as keys; `==` is elementwise, as in Keras 3.
    __hash__ = object.__hash__

    # ------------------------------------------------------------------ values
    def initial_value(self, key) -> jax.Array:
        """A fresh value drawn from the initializer with ``key`` (a JAX key, or a NumPy generator
        for built-in initializers); shape ``self.shape``."""
        value = self.initializer(key, self.shape, self.dtype)
        if tuple(value.shape) != self.shape:
            raise WeightsError(
                f"The initializer of weight '{self.path}' returned shape {value.shape}, expected "
                f"{self.shape}."
            )
        return value if value.dtype == self.dtype else value.astype(self.dtype)

    @property
    def value(self) -> jax.Array:
        """The bound value inside a pure call, the owned value otherwise; inside a mixed-precision
        layer's call, a floating weight reads in the compute dtype (``kfunc.core.autocast``)."""
        value = self.stored_value
        target = current_dtype()
        floating = jnp.issubdtype(value.dtype, jnp.floating)
        if target is not None and self.autocast and floating and value.dtype != target:
            return value.astype(target)
        return value

    @property
    def stored_value(self) -> jax.Array:
        """The value in the weight's own dtype, never cast: bound inside a pure call, else owned."""
        found, value = bound_value(self)
        if found:
            return value
        if self._value is None:
            self._value = self._first_value()
        return self._value

    def _first_value(self) -> jax.Array:
        """The owned value, drawn from this weight's seeding ticket (on the host when possible).

        Computed eagerly even when first read inside a trace (a sublayer built lazily in its
        parent's ``call`` during shape inference), so a tracer is never stored as the value.
        """
        with jax.ensure_compile_time_eval():
            if getattr(self.initializer, "supports_numpy", False):
                generator = seeding.generator_from_ticket(self._ticket)
                return jnp.asarray(self.initial_value(generator))
            return self.initial_value(seeding.key_from_ticket(self._ticket))

    def assign(self, value) -> Variable:
        """Set the value: recorded as a state update of the pure call in progress, if any (the
        owned value stays as it is), stored otherwise. Returns the variable."""
        value = jnp.asarray(value, self.dtype)
        self._check_shape(value.shape)
        if not record_update(self, value):
            self._value = value
        return self

    def assign_add(self, value) -> Variable:
        return self.assign(self.stored_value + jnp.asarray(value, self.dtype))

    def assign_sub(self, value) -> Variable:
        return self.assign(self.stored_value - jnp.asarray(value, self.dtype))

    def set_value(self, value) -> None:
        """Replace the owned value (shape and dtype checked), also inside a pure call."""
        value = jnp.asarray(value, self.dtype)
        self._check_shape(value.shape)
        self._value = value

    def _check_shape(self, shape) -> None:
        if tuple(shape) != self.shape:
            raise WeightsError(
                f"Weight '{self.path}' has shape {self.shape}; received a value of shape "
                f"{tuple(shape)}."
            )

    def numpy(self) -> np.ndarray:
        return np.asarray(self.stored_value)

    def __array__(self, dtype=None, copy=None):
        array = np.asarray(self.stored_value)
        return array if dtype is None else array.astype(dtype)

    def __jax_array__(self):
        return self.value

    def __int__(self):
        return int(self.value)

    def __float__(self):
        return float(self.value)

    def __bool__(self):
        return bool(self.value)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        return self.value[index]

    @property
    def T(self):
        return self.value.T

    def astype(self, dtype):
        return self.value.astype(dtype)


def _as_shape(shape, name: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    except (TypeError, ValueError):
        dims = None
    if dims is None or any(d < 0 for d in dims):
        raise WeightsError(
            f"Variable '{name}' needs a fully known shape of non-negative ints, received {shape!r}."
        )
    return dims


def _forward(operator: str, reflected: bool = False):
    """``Variable.<operator>`` applied to the current value (an array operator of JAX)."""

    def method(self, *other):
        return getattr(self.value, operator)(*other)

    method.__name__ = operator
    return method


for _name in (
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
    "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__", "__rpow__", "__matmul__",
    "__rmatmul__", "__and__", "__rand__", "__or__", "__ror__", "__xor__", "__rxor__", "__neg__", "__pos__",
    "__abs__", "__invert__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__round__",
):
    setattr(Variable, _name, _forward(_name))
del _name
