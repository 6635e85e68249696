"""The one graph interpreter: runs a model's nodes on values.

Shape inference (``jax.eval_shape`` over ``Model.call``), lowering (tracing ``Model.call`` under
``jax.jit``) and eager calls all go through ``run_graph``; only the values differ (abstract,
traced or concrete).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax

from kfunc.graph.build import GraphPlan
from kfunc.graph.node import Node, replace_symbolic
from kfunc.graph.tensor import SymbolicTensor


def run_graph(
    plan: GraphPlan,
    input_tensors: Sequence[SymbolicTensor],
    input_values: Sequence,
    output_structure,
    call_node: Callable[[int, Node, tuple, dict], object],
):
    """Evaluate ``output_structure`` given values for ``input_tensors``.

    ``call_node(position, node, args, kwargs)`` computes one node, where ``args``/``kwargs`` are the
    node's call arguments with symbolic tensors replaced by values; it returns the call's result
    (a value or a structure of values shaped like ``node.output_structure``).
    """
    values: dict[SymbolicTensor, object] = dict(zip(input_tensors, input_values, strict=True))
    for position, node in enumerate(plan.nodes):
        args, kwargs = node.substitute(values)
        result = call_node(position, node, args, kwargs)
        leaves = jax.tree_util.tree_leaves(result)
        if len(leaves) != len(node.outputs):
            raise RuntimeError(
                f"Layer '{node.layer.name}' returned {len(leaves)} values when called on arrays but "
                f"{len(node.outputs)} when called on symbolic tensors; a layer's call must return "
                "the same structure every time."
            )
        values.update(zip(node.outputs, leaves, strict=True))
    return replace_symbolic(output_structure, values.__getitem__)
