"""Merge layers and their function forms: Concatenate, Add, Subtract, Multiply, Average,
Maximum, Minimum, Dot; ``concatenate([a, b], axis=-1)``, ``add([a, b])`` ...

Each takes a list of at least two tensors of shape ``(batch, ...)``. Masks, as in Keras: the
elementwise merges give the OR of their inputs' masks (None unless every input has one),
``Concatenate`` joins them (an input without a mask counts as unmasked), ``Dot`` drops them.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
from jax import lax

from kfunc.errors import LayerInputError, LayerInputTypeError, describe_layer
from kfunc.layers.base import Layer


class Merge(Layer):
    """Base: checks that the inputs are a list of >= ``min_inputs`` tensors with compatible shapes."""

    min_inputs = 2
    max_inputs = None

    def check_input_shapes(self, input_shapes, input_dtypes):
        if not isinstance(input_shapes, list):
            raise LayerInputTypeError(
                f"{describe_layer(self)} must be called on a list of tensors, e.g. "
                f"{type(self).__name__.lower()}([a, b]), but received a single tensor of shape {input_shapes}."
            )
        count = len(input_shapes)
        if count < self.min_inputs or (self.max_inputs is not None and count > self.max_inputs):
            wanted = f"exactly {self.max_inputs}" if self.max_inputs == self.min_inputs else f"at least {self.min_inputs}"
            raise LayerInputError(
                f"{describe_layer(self)} needs {wanted} inputs, but received {count} (shapes {input_shapes})."
            )
        self.check_shapes(input_shapes)

    def check_shapes(self, shapes):
        """Elementwise merges: equal shapes, or sizes of 1 that broadcast."""
        ranks = {len(s) for s in shapes}
        problem = len(ranks) > 1
        if not problem:
            for axis in range(1, len(shapes[0])):
                sizes = {s[axis] for s in shapes if s[axis] is not None and s[axis] != 1}
                problem = problem or len(sizes) > 1
        if problem:
            raise LayerInputError(
                f"{describe_layer(self)} needs inputs of the same shape (or sizes of 1 that broadcast), "
                f"but received shapes {shapes}. Reshape or project the inputs (e.g. with Dense) to a common shape."
            )

    def call(self, inputs):
        return functools.reduce(self.combine, inputs)

    def combine(self, a, b):
        raise NotImplementedError(f"{type(self).__name__} must define combine(a, b).")

    def compute_mask(self, inputs, mask=None):
        """``(batch, timesteps)``: a step is kept where any input keeps it."""
        if mask is None or any(m is None for m in mask):
            return None
        return functools.reduce(jnp.logical_or, mask)


def _combine_masked(combine, inputs, masks):
    """Maximum/Minimum over inputs with masks ``(batch, timesteps)``: a masked step of one input
    takes the other's value, so it never wins the comparison (Keras 3's rule)."""
    output, output_mask = None, None
    for x, mask in zip(inputs, masks, strict=True):
        if mask is not None:
            mask = jnp.broadcast_to(mask[..., None], x.shape)
        if output is None:
            output, output_mask = x, mask
            continue
        if mask is not None:
            x = jnp.where(mask, x, output)
        if output_mask is not None:
            output = jnp.where(output_mask, output, x)
        output_mask = jnp.logical_or(output_mask, mask) if mask is not None and output_mask is not None else None
        output = combine(output, x)
    return output


class Add(Merge):
    def combine(self, a, b):
        return a + b


class Subtract(Merge):
    """``inputs[0] - inputs[1]``; exactly two inputs."""

    max_inputs = 2

    def combine(self, a, b):
        return a - b


class Multiply(Merge):
    def combine(self, a, b):
        return a * b


class Maximum(Merge):
    def call(self, inputs, mask=None):
        if mask is None:
            return functools.reduce(self.combine, inputs)
        return _combine_masked(self.combine, inputs, mask)

    def combine(self, a, b):
        return jnp.maximum(a, b)


class Minimum(Maximum):
    def combine(self, a, b):
        return jnp.minimum(a, b)


class Average(Merge):
    def call(self, inputs):
        return functools.reduce(jnp.add, inputs) / len(inputs)


class Concatenate(Merge):
    """Joins along ``axis``; every other axis must match."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def check_shapes(self, shapes):
        rank = len(shapes[0])
        axis = self.axis % rank if -rank <= self.axis < rank else None
        mismatch = axis is None or axis == 0 or any(len(s) != rank for s in shapes)
        if not mismatch:
            for other in range(1, rank):
                if other != axis:
                    sizes = {s[other] for s in shapes if s[other] is not None}
                    mismatch = mismatch or len(sizes) > 1
        if mismatch:
            raise LayerInputError(
                f"{describe_layer(self)} joins along axis {self.axis}, which needs inputs of the same rank whose "
                f"sizes match on every other (non-batch) axis, but received shapes {shapes}."
            )

    def call(self, inputs):
        return jnp.concatenate(inputs, axis=self.axis)

    def compute_mask(self, inputs, mask=None):
        """Each input's mask widened to the input's shape (all True where it has none), joined along
        ``axis``; a step is kept where any of its entries is: ``(batch, ...)`` without the last axis."""
        if mask is None or all(m is None for m in mask):
            return None
        full = []
        for x, m in zip(inputs, mask, strict=True):
            if m is None:
                m = jnp.ones(x.shape, bool)
            elif m.ndim < x.ndim:
                m = jnp.broadcast_to(m[..., None], x.shape)
            full.append(m)
        return jnp.any(jnp.concatenate(full, axis=self.axis), axis=-1)

    def get_config(self):
        return super().get_config() | {"axis": self.axis}


class Dot(Merge):
    """Batched dot product of two tensors along ``axes`` (one per input, or one for both).

    ``(batch, n)`` with ``(batch, n)`` gives ``(batch, 1)``; ``normalize=True`` gives cosine similarity.
    """

    max_inputs = 2

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes = (int(axes), int(axes)) if isinstance(axes, int) else tuple(int(a) for a in axes)
        self.normalize = bool(normalize)

    def _resolved_axes(self, shapes):
        return tuple(a % len(s) for a, s in zip(self.axes, shapes, strict=True))

    def check_shapes(self, shapes):
        axes = self._resolved_axes(shapes)
        sizes = [s[a] for s, a in zip(shapes, axes, strict=True)]
        if 0 in axes or (None not in sizes and sizes[0] != sizes[1]):
            raise LayerInputError(
                f"{describe_layer(self)} contracts axes {self.axes}, whose sizes must match (and not be the "
                f"batch axis), but received shapes {shapes}."
            )

    def call(self, inputs):
        x, y = inputs
        ax, ay = self._resolved_axes([x.shape, y.shape])
        if self.normalize:
            x = x / jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=ax, keepdims=True), 1e-12))
            y = y / jnp.sqrt(jnp.maximum(jnp.sum(y * y, axis=ay, keepdims=True), 1e-12))
        out = lax.dot_general(x, y, (((ax,), (ay,)), ((0,), (0,))))
        return out[:, None] if out.ndim == 1 else out

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return super().get_config() | {"axes": self.axes, "normalize": self.normalize}


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis=axis)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def dot(inputs, axes, normalize=False, **kwargs):
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
