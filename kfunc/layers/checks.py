"""Argument checks shared by layer constructors, with messages that name the layer class."""

from __future__ import annotations

import numpy as np

from kfunc.errors import LayerConfigError


def positive_int(value, argument: str, layer_class: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise LayerConfigError(f"{layer_class}: {argument} must be a positive integer, received {value!r}.")
    return int(value)


def rate(value, argument: str, layer_class: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not 0 <= value < 1:
        raise LayerConfigError(
            f"{layer_class}: {argument} is the probability of dropping a unit and must be in [0, 1), "
            f"received {value!r}."
        )
    return float(value)


def int_tuple(value, n: int, argument: str, layer_class: str, *, allow_zero: bool = False) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints -> a tuple of ``n`` ints (each > 0, or >= 0)."""
    values = (value,) * n if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    lowest = 0 if allow_zero else 1
    if (
        values is None
        or len(values) != n
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lowest for v in values)
    ):
        kind = "non-negative" if allow_zero else "positive"
        raise LayerConfigError(
            f"{layer_class}: {argument} must be a {kind} int or a tuple of {n} {kind} ints, received {value!r}."
        )
    return tuple(int(v) for v in values)


def one_of(value, options, argument: str, layer_class: str):
    if isinstance(value, str):
        value = value.lower()
    if value not in options:
        raise LayerConfigError(f"{layer_class}: {argument} must be one of {list(options)}, received {value!r}.")
    return value


def known_size(size, axis_name: str, layer, shape) -> int:
    """A size the layer's weights depend on must be known (not ``None``)."""
    if size is None:
        raise LayerConfigError(
            f"Layer '{layer.name}' ({type(layer).__name__}) needs the {axis_name} of its input to be "
            f"known to create its weights, but the input shape is {shape}. Give the Input that size."
        )
    return int(size)
