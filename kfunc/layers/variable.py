"""Variables: the weights a layer owns, and how pure functions lend them values.

A ``Variable`` is declared by ``Layer.add_weight`` (name, shape, dtype, initializer, trainable)
and owns a current value, created lazily from its seeding ticket the first time it is read.

The pure functions (``Layer.apply``, ``kfunc.lower``) never read those owned values: they
``bind`` each variable to a value taken from a parameter pytree for the duration of one call,
so that ``layer.call`` (built-in or user-written, reading ``self.kernel``) computes on the
pytree's arrays, tracers included. ``assign`` inside a binding records an update (BatchNorm's
moving statistics) that the pure function returns as new state; it never touches the owned value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from kfunc import seeding
from kfunc.errors import WeightsError
from kfunc.layers.autocast import current_dtype

_UNBOUND = object()


class Binding:
    """The values lent to a set of variables during one pure call, and the updates it made."""

    __slots__ = ("updates",)

    def __init__(self):
        self.updates: dict[Variable, jax.Array] = {}


class Variable:
    """A weight: ``shape`` e.g. ``(in, out)`` for a Dense kernel, and its current value.

    Arrays operations accept it directly (``x @ layer.kernel``): it converts to its value.
    ``autocast``: whether a floating weight reads as the compute dtype of a mixed-precision layer
    (``kfunc.layers.autocast``); ``dtype`` stays the stored dtype either way.
    """

    def __init__(self, name: str, shape, dtype, initializer, *, trainable: bool, owner_name: str,
                 autocast: bool = True, regularizer=None, constraint=None):
        self.name = name
        self.regularizer = regularizer  # x -> scalar penalty added to the training loss, or None
        self.constraint = constraint  # w -> projected w after each optimizer update, or None
        self.shape = tuple(int(d) for d in shape)
        self.dtype = jnp.dtype(dtype)
        self.initializer = initializer
        self.trainable = trainable
        self.autocast = bool(autocast)
        self.owner_name = owner_name
        self._ticket = seeding.next_ticket()
        self._value = None
        self._bound = _UNBOUND
        self._binding: Binding | None = None

    @property
    def path(self) -> str:
        """``"dense_1/kernel"``."""
        return f"{self.owner_name}/{self.name}"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_materialized(self) -> bool:
        return self._value is not None

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
        layer's call, a floating weight reads in the compute dtype (``kfunc.layers.autocast``)."""
        value = self.stored_value
        target = current_dtype()
        floating = jnp.issubdtype(value.dtype, jnp.floating)
        if target is not None and self.autocast and floating and value.dtype != target:
            return value.astype(target)
        return value

    @property
    def stored_value(self) -> jax.Array:
        """The value in the weight's own dtype, never cast: bound inside a pure call, else owned."""
        if self._bound is not _UNBOUND:
            return self._bound
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

    def assign(self, value) -> None:
        """Set the value: recorded as a state update inside a pure call, stored otherwise."""
        if self._bound is not _UNBOUND:
            value = jnp.asarray(value, self.dtype)
            self._check_shape(value.shape)
            self._bound = value
            self._binding.updates[self] = value
            return
        self.set_value(value)

    def set_value(self, value) -> None:
        """Replace the owned value (shape and dtype checked)."""
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

    def __repr__(self):
        return f"<Variable path={self.path} shape={self.shape} dtype={self.dtype.name}>"

    # Arithmetic forwards to the value, so Keras-style ``call`` code can use variables directly.
    def __add__(self, other):
        return self.value + other

    def __radd__(self, other):
        return other + self.value

    def __sub__(self, other):
        return self.value - other

    def __rsub__(self, other):
        return other - self.value

    def __mul__(self, other):
        return self.value * other

    def __rmul__(self, other):
        return other * self.value

    def __truediv__(self, other):
        return self.value / other

    def __rtruediv__(self, other):
        return other / self.value

    def __matmul__(self, other):
        return self.value @ other

    def __rmatmul__(self, other):
        return other @ self.value

    def __neg__(self):
        return -self.value

    def __pow__(self, other):
        return self.value**other

    def __getitem__(self, index):
        return self.value[index]

    def __len__(self):
        return self.shape[0]

    @property
    def T(self):
        return self.value.T


@contextlib.contextmanager
def bind(variables: Sequence[Variable], values: Sequence) -> Iterator[Binding]:
    """Lend ``values[i]`` to ``variables[i]`` while the block runs; restore afterwards.

    Bindings nest (a pure call inside another one): each variable's previous binding comes back.
    """
    binding = Binding()
    saved = [(v._bound, v._binding) for v in variables]
    try:
        for variable, value in zip(variables, values, strict=True):
            variable._bound = value
            variable._binding = binding
        yield binding
    finally:
        for variable, (bound, owner) in zip(variables, saved, strict=True):
            variable._bound = bound
            variable._binding = owner
