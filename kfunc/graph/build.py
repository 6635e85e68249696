"""From a model's input and output tensors to an ordered, checked graph.

Walks the nodes backwards from the outputs with an explicit stack (no recursion, so a chain of
any depth works, in time linear in its size), and orders layers the way Keras does (by depth
from the outputs, then by first visit), so ``model.layers`` and ``get_weights()`` line up with a
Keras model of the same architecture.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from kfunc.errors import GraphError
from kfunc.graph.node import Node
from kfunc.graph.tensor import SymbolicTensor


class GraphPlan(NamedTuple):
    """``nodes``: the layer calls to run, in an order where inputs come first.
    ``layers``: each layer once, in Keras's order (input layers included)."""

    nodes: tuple[Node, ...]
    layers: tuple


def _is_input_node(node: Node) -> bool:
    return getattr(node.layer, "is_input_layer", False)


def _names(tensors) -> list[str]:
    return [t.name for t in tensors]


def build_graph(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor], *, model_name: str) -> GraphPlan:
    """Order and check the graph from ``inputs`` to ``outputs`` (flat lists of tensors)."""
    declared = {}
    for position, tensor in enumerate(inputs):
        if id(tensor) in declared:
            raise GraphError(
                f"Model '{model_name}': input '{tensor.name}' is listed twice in `inputs` (positions "
                f"{declared[id(tensor)]} and {position}); list each input once."
            )
        declared[id(tensor)] = position

    finished: set[int] = set()
    in_progress: set[int] = set()
    post_order: list[Node] = []
    first_visit: dict[int, int] = {}  # id(layer) -> order of first visit, as Keras sorts layers
    reached_inputs: set[int] = set()

    def enter(tensor: SymbolicTensor, consumer: Node | None):
        """The stack frame for ``tensor``'s node, or ``None`` when there is nothing to visit."""
        node = tensor.node
        if id(tensor) in declared:
            reached_inputs.add(id(tensor))
            if not _is_input_node(node):  # an intermediate tensor cut out as a model input
                finished.add(id(node))
                return None
        elif _is_input_node(node):
            needed_by = (
                f"first needed by layer '{consumer.layer.name}' ({type(consumer.layer).__name__})"
                if consumer is not None
                else "which is itself listed as an output"
            )
            raise GraphError(
                f"Model '{model_name}' is disconnected: its outputs need Input '{tensor.name}' "
                f"(shape {tensor.shape}), {needed_by}, but it is not among the model's inputs "
                f"{_names(inputs)}. Add it to `inputs=`."
            )
        if id(node) in finished:
            return None
        if id(node) in in_progress:
            raise GraphError(f"Model '{model_name}': tensor '{tensor.name}' is part of a cycle.")
        first_visit.setdefault(id(node.layer), len(first_visit))
        in_progress.add(id(node))
        children = () if _is_input_node(node) else node.inputs
        return node, iter(children)

    for output in outputs:
        frame = enter(output, None)
        stack = [frame] if frame else []
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                in_progress.discard(id(node))
                finished.add(id(node))
                post_order.append(node)
            else:
                frame = enter(child, node)
                if frame:
                    stack.append(frame)

    unused = [t for t in inputs if id(t) not in reached_inputs]
    if unused:
        raise GraphError(
            f"Model '{model_name}': input(s) {_names(unused)} are not used by any output "
            f"{_names(outputs)}. Remove them from `inputs=` or connect them to an output."
        )

    _check_computable(inputs, post_order, model_name)
    layers = _order_layers_like_keras(post_order, first_visit)
    _check_unique_names(layers, model_name)
    nodes = tuple(node for node in post_order if not _is_input_node(node))
    return GraphPlan(nodes=nodes, layers=layers)


def _check_computable(inputs, post_order: list[Node], model_name: str) -> None:
    available = {id(t) for t in inputs}
    for node in post_order:
        if _is_input_node(node):
            available.update(id(t) for t in node.outputs)
            continue
        for tensor in node.inputs:
            if id(tensor) not in available:
                raise GraphError(
                    f"Model '{model_name}' is disconnected: layer '{node.layer.name}' "
                    f"({type(node.layer).__name__}) needs tensor '{tensor.name}', which cannot be "
                    f"computed from the model's inputs {_names(inputs)}."
                )
        available.update(id(t) for t in node.outputs)


def _order_layers_like_keras(post_order: list[Node], first_visit: dict[int, int]) -> tuple:
    """Layers by decreasing depth (distance from the outputs), ties by first visit."""
    in_graph = {id(n) for n in post_order}
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    layer_by_id = {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        layer_by_id[id(node.layer)] = node.layer
        node_depth[id(node)] = depth
        if _is_input_node(node):
            continue
        for parent in node.parent_nodes():
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    by_depth = defaultdict(list)
    for layer_id, depth in layer_depth.items():
        by_depth[depth].append(layer_id)
    ordered = []
    for depth in sorted(by_depth, reverse=True):
        ordered.extend(sorted(by_depth[depth], key=first_visit.__getitem__))
    return tuple(layer_by_id[i] for i in ordered)


def _check_unique_names(layers, model_name: str) -> None:
    seen: dict[str, object] = {}
    for layer in layers:
        other = seen.setdefault(layer.name, layer)
        if other is not layer:
            raise GraphError(
                f"Model '{model_name}': the name '{layer.name}' is used by two different layers "
                f"({type(other).__name__} and {type(layer).__name__}); layer names must be unique "
                "within a model. Pass a distinct name= to one of them."
            )
