"""The node API of the guide: ``layer.output``, ``get_output_at(i)``, ``input_shape`` ...

Each call of a layer on symbolic tensors adds a node, indexed 0, 1, 2 ... With one node the
plain properties answer; with several, ``input``/``output`` are ill-defined (use the ``_at``
methods) and the shape properties answer only while every node agrees.
"""

from __future__ import annotations

from kfunc.errors import NodeAccessError


def _shape_structure(structure):
    if isinstance(structure, (list, tuple)):
        return [t.shape for t in structure]
    if isinstance(structure, dict):
        return {k: t.shape for k, t in structure.items()}
    return structure.shape


class NodeAccess:
    """Mixin for ``Layer``: reads ``self._inbound_nodes``."""

    def _node(self, node_index: int, attribute: str):
        nodes = self._inbound_nodes
        if not isinstance(node_index, int) or not 0 <= node_index < len(nodes):
            raise ValueError(
                f"Asked to get {attribute} at node {node_index}, but layer '{self.name}' has "
                f"{len(nodes)} inbound node(s) (indices 0 to {len(nodes) - 1})."
            )
        return nodes[node_index]

    def get_input_at(self, node_index: int):
        """The input tensor(s) of the ``node_index``-th call."""
        return self._node(node_index, "input").call_inputs

    def get_output_at(self, node_index: int):
        """The output tensor(s) of the ``node_index``-th call."""
        return self._node(node_index, "output").output_structure

    def get_input_shape_at(self, node_index: int):
        return _shape_structure(self.get_input_at(node_index))

    def get_output_shape_at(self, node_index: int):
        return _shape_structure(self.get_output_at(node_index))

    def _single_node(self, what: str, method: str):
        nodes = self._inbound_nodes
        if not nodes:
            raise NodeAccessError(
                f"Layer {self.name} has never been called and thus has no defined {what}."
            )
        if len(nodes) > 1:
            raise NodeAccessError(
                f'Layer {self.name} has multiple inbound nodes, hence the notion of "layer {what}" '
                f"is ill-defined. Use `{method}(node_index)` instead."
            )
        return nodes[0]

    def _agreed_shape(self, what: str, method: str, shape_at):
        nodes = self._inbound_nodes
        if not nodes:
            raise NodeAccessError(
                f"Layer {self.name} has never been called and thus has no defined {what}."
            )
        shapes = [shape_at(i) for i in range(len(nodes))]
        if any(s != shapes[0] for s in shapes[1:]):
            raise NodeAccessError(
                f'Layer {self.name} has multiple inbound nodes with different {what}s {shapes}, hence '
                f'the notion of "{what}" is ill-defined. Use `{method}(node_index)` instead.'
            )
        return shapes[0]

    @property
    def input(self):
        return self._single_node("input", "get_input_at").call_inputs

    @property
    def output(self):
        return self._single_node("output", "get_output_at").output_structure

    @property
    def input_shape(self):
        return self._agreed_shape("input shape", "get_input_shape_at", self.get_input_shape_at)

    @property
    def output_shape(self):
        return self._agreed_shape("output shape", "get_output_shape_at", self.get_output_shape_at)

    @property
    def inbound_nodes(self):
        return list(self._inbound_nodes)

