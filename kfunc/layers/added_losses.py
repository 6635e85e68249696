"""Losses that layers add while they are called: ``add_loss(value)`` and activity regularization.

Python runs only while JAX traces, so these values are collected by a ``LossCollector`` that is
active for the duration of one call (a context variable, never state on a layer): the training
step opens one around the pure ``apply`` and adds what it holds to the loss. An eager call on
arrays (``layer(x)``) opens one too and afterwards keeps the concrete values on the layers it
ran, which is what ``layer.losses`` reads, as in Keras (the most recent call's losses). Values
that are tracers (a call inside the user's own ``jax.jit``) are never kept on a layer.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import LayerConfigError, describe_layer, describe_value

_ACTIVE: contextvars.ContextVar[LossCollector | None] = contextvars.ContextVar("kfunc_losses", default=None)
_NO_ACTIVITY: contextvars.ContextVar[frozenset] = contextvars.ContextVar("kfunc_skip", default=frozenset())


class LossCollector:
    """The losses added during one call, in order, each with the layer that added it.

    ``rows_per_sample``: how many rows of the arrays seen inside stand for one sample
    (``TimeDistributed`` folding ``timesteps`` into the batch), so penalties still divide by
    the number of samples. Every row is a real sample: the training step never pads a batch.
    """

    def __init__(self, rows_per_sample: int = 1):
        self.entries: list[tuple[object, jax.Array]] = []
        self.rows_per_sample = rows_per_sample

    def add(self, layer, value) -> None:
        self.entries.append((layer, value))

    @property
    def values(self) -> list:
        return [value for _, value in self.entries]

    def total(self) -> jax.Array:
        """The sum of every value (each summed to a scalar), float32."""
        total = jnp.zeros((), jnp.float32)
        for value in self.values:
            total = total + _as_float_sum(value)
        return total


def _as_float_sum(value) -> jax.Array:
    value = jnp.asarray(value)
    dtype = value.dtype if jnp.issubdtype(value.dtype, jnp.floating) else jnp.float32
    return jnp.sum(value.astype(dtype)).astype(jnp.float32)


def active() -> LossCollector | None:
    """The collector of the call in progress, if any."""
    return _ACTIVE.get()


@contextlib.contextmanager
def collecting() -> Iterator[LossCollector]:
    """Collect the losses added inside the block (nested collectors shadow outer ones)."""
    collector = LossCollector()
    token = _ACTIVE.set(collector)
    try:
        yield collector
    finally:
        _ACTIVE.reset(token)


def _is_tracer(value) -> bool:
    return isinstance(value, jax.core.Tracer)


@contextlib.contextmanager
def eager_call(layer) -> Iterator[None]:
    """Around ``layer(arrays)``: the outermost such call collects, then (if every value is
    concrete) replaces the kept losses of ``layer`` and every layer inside it."""
    if _ACTIVE.get() is not None:
        yield
        return
    with collecting() as collector:
        yield
    if any(_is_tracer(value) for value in collector.values):
        return
    for member in layer_tree(layer):
        member._eager_losses = [value for owner, value in collector.entries if owner is member]


@contextlib.contextmanager
def pure_call() -> Iterator[None]:
    """Around a pure ``apply``: losses go to the caller's collector, or nowhere (never to layers)."""
    if _ACTIVE.get() is not None:
        yield
        return
    with collecting():
        yield


def layer_tree(layer) -> list:
    """``layer`` and every layer inside it (sublayers, a model's layers), each once."""
    found, seen, stack = [], set(), [layer]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        stack.extend(reversed(current.sublayers))
    return found


def add_loss(layer, loss) -> None:
    """``layer.add_loss(loss)``: ``loss`` a scalar (or arrays, each summed into the total)."""
    leaves = jax.tree_util.tree_leaves(loss)
    for leaf in leaves:
        numeric = isinstance(leaf, (int, float, np.number)) and not isinstance(leaf, bool)
        array = hasattr(leaf, "shape") and hasattr(leaf, "dtype") and _numeric_dtype(leaf.dtype)
        if not (numeric or array):
            raise LayerConfigError(
                f"{describe_layer(layer)}: add_loss expects a numeric scalar or array computed in call(), "
                f"received {describe_value(leaf)}."
            )
    collector = _ACTIVE.get()
    for leaf in leaves:
        if collector is not None:
            collector.add(layer, leaf)
        elif not _is_tracer(leaf):
            # Outside any call (Keras allows it): kept until the layer's next eager call.
            layer.__dict__.setdefault("_eager_losses", []).append(jnp.asarray(leaf))


def _numeric_dtype(dtype) -> bool:
    try:
        return jnp.issubdtype(dtype, jnp.number)
    except TypeError:
        return False


def add_activity_loss(layer, outputs) -> None:
    """``layer.activity_regularizer`` of each output, divided by that output's batch size."""
    regularizer = getattr(layer, "activity_regularizer", None)
    collector = _ACTIVE.get()
    if regularizer is None or collector is None or id(layer) in _NO_ACTIVITY.get():
        return
    for output in jax.tree_util.tree_leaves(outputs):
        if not hasattr(output, "shape") or not jnp.issubdtype(output.dtype, jnp.inexact):
            continue
        if output.ndim == 0:
            collector.add(layer, regularizer(output))
            continue
        penalty = jnp.asarray(regularizer(output))
        count = output.shape[0] / collector.rows_per_sample
        count = jnp.asarray(count, penalty.dtype)
        # Keras's divide_no_nan: an empty batch adds nothing.
        collector.add(layer, jnp.where(count > 0, penalty / jnp.where(count > 0, count, 1), 0))


@contextlib.contextmanager
def without_activity_of(layer) -> Iterator[None]:
    """``layer``'s own activity regularizer is not applied inside the block (TimeDistributed
    calls the wrapped layer's computation directly, as Keras does)."""
    token = _NO_ACTIVITY.set(_NO_ACTIVITY.get() | {id(layer)})
    try:
        yield
    finally:
        _NO_ACTIVITY.reset(token)


@contextlib.contextmanager
def folded_collecting(steps: int) -> Iterator[None]:
    """Inside the block, arrays hold ``steps`` rows per sample (``(batch * steps, ...)``, sample
    ``b`` at rows ``b * steps ...``): activity penalties are summed over the steps and divided by
    the number of samples, as Keras computes them one timestep at a time."""
    outer = _ACTIVE.get()
    if outer is None:
        yield
        return
    with collecting() as inner:
        inner.rows_per_sample = outer.rows_per_sample * steps
        yield
    for owner, value in inner.entries:
        outer.add(owner, value)


def vmap_collecting(fn: Callable, *, in_axes, out_axes) -> Callable:
    """``jax.vmap(fn)`` whose added losses leave the vmap: each is summed over the mapped axis
    and added to the active collector under the layer that added it (a loss per mapped step)."""

    def call(*args):
        owners: list = []

        outer = _ACTIVE.get()

        def inner(*inner_args):
            with collecting() as collector:
                result = fn(*inner_args)
            owners[:] = [owner for owner, _ in collector.entries]
            return result, [jnp.asarray(value) for value in collector.values]

        result, values = jax.vmap(inner, in_axes=in_axes, out_axes=(out_axes, 0))(*args)
        if outer is not None:
            for owner, value in zip(owners, values, strict=True):
                outer.add(owner, jnp.sum(value, axis=0))
        return result

    return call


def layer_losses(layer) -> list:
    """Keras's ``layer.losses``: the kept losses of the last eager call (this layer's, then those of
    the layers inside it), then the penalty of each regularized trainable weight at its current value."""
    found = []
    for member in layer_tree(layer):
        found.extend(member.__dict__.get("_eager_losses", ()))
    for variable in layer.trainable_weights:
        if variable.regularizer is not None:
            found.append(variable.regularizer(variable.value))
    return found
