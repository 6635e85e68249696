"""Node: one call of a layer on symbolic tensors, as recorded in the graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax

from kfunc.graph.tensor import SymbolicTensor, is_symbolic


@dataclass(frozen=True, eq=False)
class Node:
    """``layer(*args, **kwargs)`` was called and produced ``outputs``.

    ``args``/``kwargs`` keep the call exactly as written (symbolic tensors inside lists, dicts,
    keyword arguments such as ``initial_state``); ``inputs`` lists the symbolic tensors among them
    in order, which are the node's edges in the graph. ``output_structure`` is what the call
    returned (a tensor, or a list/tuple/dict of them); ``outputs`` is that flattened.
    """

    layer: Any
    index: int
    args: tuple
    kwargs: dict
    inputs: tuple[SymbolicTensor, ...]
    outputs: tuple[SymbolicTensor, ...]
    output_structure: Any

    @property
    def call_inputs(self):
        """The first positional argument as the user passed it: a tensor or a list of tensors."""
        return self.args[0] if self.args else None

    def substitute(self, values: dict) -> tuple[tuple, dict]:
        """``(args, kwargs)`` with every symbolic tensor replaced by ``values[tensor]``."""
        return replace_symbolic((self.args, self.kwargs), values.__getitem__)

    def parent_nodes(self) -> list[Node]:
        """The nodes that produced this node's inputs (without duplicates, in input order)."""
        seen, parents = set(), []
        for tensor in self.inputs:
            node = tensor.node
            if id(node) not in seen:
                seen.add(id(node))
                parents.append(node)
        return parents


def flatten_symbolic(structure) -> list[SymbolicTensor]:
    """Every symbolic tensor in a nested structure of lists, tuples and dicts, in order."""
    leaves = jax.tree_util.tree_leaves(structure, is_leaf=is_symbolic)
    return [leaf for leaf in leaves if is_symbolic(leaf)]


def replace_symbolic(structure, replace):
    """The same structure with each symbolic tensor ``t`` replaced by ``replace(t)``."""
    return jax.tree_util.tree_map(
        lambda leaf: replace(leaf) if is_symbolic(leaf) else leaf, structure, is_leaf=is_symbolic
    )
