"""EinsumDense: a dense layer whose product is any einsum equation (Keras 3's layer).

``EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")`` maps inputs
``(batch, T, c)`` to ``(batch, T, 64)`` with a kernel ``(c, 64)`` and a bias ``(64,)``. Equations
take one of three forms, as in Keras: ``"ab,bc->ac"`` (every axis named), ``"...b,bc->...c"``
(leading axes elided) or ``"ab...,bc->ac..."`` (trailing axes elided). ``output_shape`` is the
output's shape without the batch axis (and without the elided axes); ``None`` entries take the
input's size. The kernel's axes follow the kernel term's letters; the bias covers the output axes
from the first letter of ``bias_axes`` on, with size 1 on axes not named in it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from kfunc import activations, constraints, regularizers
from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers.base import Layer
from kfunc.layers.input_spec import InputSpec

_FORMS = (
    (re.compile(r"^([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$"), None),
    (re.compile(r"^\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)$"), "left"),
    (re.compile(r"^([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\.$"), "right"),
)


class EinsumShapes(NamedTuple):
    """What an equation, an input shape and ``output_shape`` determine."""

    kernel: tuple[int, ...]
    bias: tuple[int, ...] | None
    output: tuple  # the full output shape, batch axis first


def parse_equation(equation: str):
    """``(input_term, kernel_term, output_term, elided)`` with ``elided`` None, 'left' or 'right'."""
    for pattern, elided in _FORMS:
        found = pattern.match(equation.replace(" ", "")) if isinstance(equation, str) else None
        if found:
            return (*found.groups(), elided)
    raise LayerConfigError(
        f"EinsumDense: equation must have the form 'ab,bc->ac', '...b,bc->...c' or 'ab...,bc->ac...', "
        f"received {equation!r}."
    )


def einsum_shapes(layer, equation: str, bias_axes, input_shape, output_shape) -> EinsumShapes:
    """Kernel, bias and output shapes for ``input_shape`` (batch axis included)."""
    input_term, kernel_term, output_term, elided_side = parse_equation(equation)
    input_shape = tuple(input_shape)
    elided = len(input_shape) - len(input_term)
    if elided < 0 or (elided_side is None and elided != 0):
        raise LayerInputError(
            f"{describe_layer(layer)}: the equation {equation!r} names {len(input_term)} input axes, but the "
            f"input has shape {input_shape}; use an input of that rank or '...' in the equation."
        )
    if elided_side == "left":
        full = [input_shape[0], *input_shape[1:elided], *output_shape]
        output_axes = {c: len(full) - len(output_term) + i for i, c in enumerate(output_term)}
        input_axes = {c: elided + i for i, c in enumerate(input_term)}
    else:
        full = [input_shape[0], *output_shape] + (list(input_shape[len(input_shape) - elided:]) if elided else [])
        output_axes = {c: i for i, c in enumerate(output_term)}
        input_axes = {c: i for i, c in enumerate(input_term)}
    if len(full) != len(output_term) + elided:
        raise LayerConfigError(
            f"{describe_layer(layer)}: output_shape={tuple(output_shape)} must give the {len(output_term) - 1} "
            f"output axes after the batch axis that the equation {equation!r} names."
        )
    for letter, axis in output_axes.items():
        if letter in input_axes:
            size = input_shape[input_axes[letter]]
            if full[axis] is None:
                full[axis] = size
            elif size is not None and full[axis] != size:
                raise LayerConfigError(
                    f"{describe_layer(layer)}: axis '{letter}' appears in the input with size {size} and in "
                    f"output_shape with size {full[axis]}; they must be equal (or None in output_shape)."
                )
        elif letter not in kernel_term:
            raise LayerConfigError(
                f"{describe_layer(layer)}: output axis '{letter}' of {equation!r} is in neither the input "
                f"term '{input_term}' nor the kernel term '{kernel_term}'."
            )
    kernel = []
    for letter in kernel_term:
        if letter in output_axes:
            kernel.append(full[output_axes[letter]])
        elif letter in input_axes:
            kernel.append(input_shape[input_axes[letter]])
        else:
            raise LayerConfigError(
                f"{describe_layer(layer)}: kernel axis '{letter}' of {equation!r} is in neither the input nor "
                "the output term; every kernel axis must be sized by one of them."
            )
        if kernel[-1] is None:
            raise LayerConfigError(
                f"{describe_layer(layer)}: the size of kernel axis '{letter}' is unknown for input shape "
                f"{input_shape}; give it in output_shape or give the Input that size."
            )
    bias = None
    if bias_axes is not None:
        unknown = [c for c in bias_axes if c not in output_term]
        if unknown or not bias_axes:
            raise LayerConfigError(
                f"{describe_layer(layer)}: bias_axes={bias_axes!r} must name axes of the output term "
                f"'{output_term}'."
            )
        first = min(output_term.index(c) for c in bias_axes)
        bias = [full[output_axes[c]] if c in bias_axes else 1 for c in output_term[first:]]
        if elided_side == "right":
            bias += [1] * elided
        bias = tuple(bias)
    return EinsumShapes(tuple(int(k) for k in kernel), bias, tuple(full))


class EinsumDense(Layer):
    """``activation(einsum(equation, inputs, kernel) + bias)``; see the module docstring.

    Weights (Keras's names and order): ``kernel`` shaped by the kernel term, ``bias`` (only with
    ``bias_axes``). Input and output shapes follow ``equation`` and ``output_shape``.
    """

    def __init__(self, equation, output_shape, activation=None, bias_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        parse_equation(equation)
        self.equation = equation.replace(" ", "")
        self.partial_output_shape = _output_shape(output_shape)
        if bias_axes is not None and not isinstance(bias_axes, str):
            raise LayerConfigError(
                f"EinsumDense: bias_axes must be None or a string of output-axis letters, received {bias_axes!r}."
            )
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        shapes = einsum_shapes(self, self.equation, self.bias_axes, input_shape, self.partial_output_shape)
        self.kernel = self.add_weight("kernel", shapes.kernel, self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", shapes.bias, self.bias_initializer, regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if shapes.bias is not None else None
        input_term, kernel_term, _, elided_side = parse_equation(self.equation)
        offset = len(input_shape) - len(input_term) if elided_side == "left" else 0
        self.input_spec = InputSpec(
            ndim=len(input_shape),
            axes={offset + i: input_shape[offset + i] for i, c in enumerate(input_term) if c in kernel_term},
            hint=f"The kernel {shapes.kernel} was built for inputs {tuple(input_shape)}: use a new layer for others.",
        )

    def call(self, inputs):
        outputs = jnp.einsum(self.equation, inputs, self.kernel.value)
        if self.bias is not None:
            outputs = outputs + self.bias.value
        return self.activation(outputs)

    def get_config(self):
        return super().get_config() | {
            "output_shape": self.partial_output_shape,
            "equation": self.equation,
            "activation": activations.name_of(self.activation) or self.activation,
            "bias_axes": self.bias_axes,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
            "kernel_constraint": self.kernel_constraint,
            "bias_constraint": self.bias_constraint,
        }


def _output_shape(value) -> tuple:
    values = (value,) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if values is None or any(
        v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0) for v in values
    ):
        raise LayerConfigError(
            f"EinsumDense: output_shape must be a positive int or a tuple of positive ints or None (the output's "
            f"shape after the batch axis), received {value!r}."
        )
    return tuple(None if v is None else int(v) for v in values)
