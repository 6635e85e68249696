"""Keras 3's small data-structure utilities: the ``(x, y, sample_weight)`` packing that custom
``train_step`` code and data pipelines use, and the Input tensors a symbolic tensor depends on."""

from __future__ import annotations

from kfunc.errors import ArgumentError, GraphError
from kfunc.graph.tensor import SymbolicTensor, is_symbolic


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """``x`` alone (as a 1-tuple when ``x`` is itself a list or tuple, so that unpacking gives it
    back whole), ``(x, y)`` or ``(x, y, sample_weight)``."""
    if y is None:
        return (x,) if isinstance(x, (list, tuple)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data):
    """``(x, y, sample_weight)`` from a batch: a tuple (or list) of 1 to 3 items, or ``x`` alone;
    the missing items are ``None``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return (data, None, None)
    if 1 <= len(data) <= 3:
        return data + (None,) * (3 - len(data))
    raise ArgumentError(
        f"unpack_x_y_sample_weight expects x, (x,), (x, y) or (x, y, sample_weight), received a tuple of "
        f"{len(data)} items; pack the inputs of a multi-input model into one list first."
    )


def get_source_inputs(tensor) -> list[SymbolicTensor]:
    """The ``Input`` tensors ``tensor`` is computed from, each once, in the order a depth-first
    walk over the calls' inputs meets them (a list, also for a single input)."""
    if not is_symbolic(tensor):
        raise GraphError(
            f"get_source_inputs expects a symbolic tensor (from Input(...) or a layer call), received "
            f"{type(tensor).__name__}."
        )
    sources, seen_nodes, seen_tensors = [], set(), set()
    stack = [tensor]
    while stack:
        current = stack.pop()
        node = current.node
        if not node.inputs:  # an InputLayer's node: the tensor is a source
            if id(current) not in seen_tensors:
                seen_tensors.add(id(current))
                sources.append(current)
            continue
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        stack.extend(reversed(node.inputs))
    return sources
