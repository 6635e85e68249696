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
    call_node: Callable[[int, Node, tuple, dict, dict], tuple],
    input_masks: Sequence | None = None,
    folded_runs: Sequence = (),
    call_run: Callable | None = None,
):
    """Evaluate ``output_structure`` given values (and optional masks) for ``input_tensors``.

    ``call_node(position, node, args, kwargs, masks)`` computes one node, where ``args``/``kwargs``
    are the node's call arguments with symbolic tensors replaced by values and ``masks`` maps every
    tensor computed so far to its mask (or None); it returns ``(result, output_masks)``: the call's
    result (a value or a structure shaped like ``node.output_structure``) and a list of masks
    aligned with ``node.outputs``. Returns ``(outputs, output_masks)`` in ``output_structure``.

    ``folded_runs`` (``kfunc.graph.fold.FoldedRun``) with ``call_run(run, entry_value, entry_mask)``:
    each run's nodes are computed by one call that returns ``(value, mask)`` of ``run.exit`` (the
    tensors inside a run are read by no node after it).
    """
    values: dict[SymbolicTensor, object] = dict(zip(input_tensors, input_values, strict=True))
    masks: dict[SymbolicTensor, object] = dict(
        zip(input_tensors, input_masks if input_masks is not None else [None] * len(input_tensors), strict=True)
    )
    runs = {run.start: run for run in folded_runs} if call_run is not None else {}
    position = 0
    while position < len(plan.nodes):
        run = runs.get(position)
        if run is not None:
            values[run.exit], masks[run.exit] = call_run(run, values[run.entry], masks[run.entry])
            position = run.stop
            continue
        node = plan.nodes[position]
        args, kwargs = node.substitute(values)
        result, output_masks = call_node(position, node, args, kwargs, masks)
        position += 1
        leaves = jax.tree_util.tree_leaves(result)
        if len(leaves) != len(node.outputs):
            raise RuntimeError(
                f"Layer '{node.layer.name}' returned {len(leaves)} values when called on arrays but "
                f"{len(node.outputs)} when called on symbolic tensors; a layer's call must return "
                "the same structure every time."
            )
        values.update(zip(node.outputs, leaves, strict=True))
        masks.update(zip(node.outputs, output_masks, strict=True))
    outputs = replace_symbolic(output_structure, values.__getitem__)
    # Masks may be None, which pytrees treat as empty: map over the tensors, not the masks.
    output_masks = jax.tree_util.tree_map(lambda t: masks[t], output_structure, is_leaf=lambda x: isinstance(x, SymbolicTensor))
    return outputs, output_masks
