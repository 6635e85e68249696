"""Graph pictures: ``model.to_dot()`` gives the model's layers and connections as Graphviz DOT
text, ``kfunc.utils.plot_model`` saves them (``.dot``/``.gv`` as text; ``.png``, ``.svg``,
``.pdf`` ... rendered by Graphviz's ``dot`` program).

One DOT node per layer of the model (input layers included, also for ``Sequential``), one edge
per tensor a layer call consumes. A shared layer is one node with an edge from each call's
inputs; edges leaving a layer that runs more than once in the model, or that has several
outputs, are labelled ``[node][tensor]`` as in ``summary()``. A nested model is one node, or
with ``expand_nested=True`` a ``subgraph cluster_...`` holding its layers, with the outer
edges wired to its input layers and from its output layers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NamedTuple

from kfunc.io.atomic import atomic_write

RANKDIRS = ("TB", "LR", "BT", "RL")
TEXT_FORMATS = ("dot", "gv")
RENDERED_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "gif", "ps", "eps")
INSTALL_GRAPHVIZ = (
    "install Graphviz (`apt-get install graphviz`, `brew install graphviz`, `conda install "
    "graphviz`, or https://graphviz.org/download/) so that the `dot` program is on PATH, or "
    "write a .dot file instead"
)


def dot_string(text: str) -> str:
    """``text`` as a quoted DOT string: quotes and backslashes escaped, line breaks as ``\\n``.

    ``<``, ``>``, ``{``, ``|`` need no escaping inside a quoted (non-HTML, non-record) label."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n") + '"'


def _shape_text(structure) -> str:
    if isinstance(structure, dict):
        return "{" + ", ".join(f"{k}: {tuple(v)}" for k, v in structure.items()) + "}"
    if isinstance(structure, list):
        return "[" + ", ".join(str(tuple(s)) for s in structure) + "]"
    return str(tuple(structure))


def _dtype_text(structure) -> str:
    names = [t.dtype.name for t in _leaves(structure)]
    return names[0] if len(set(names)) == 1 else "[" + ", ".join(names) + "]"


def _leaves(structure) -> list:
    if isinstance(structure, dict):
        return list(structure.values())
    return list(structure) if isinstance(structure, (list, tuple)) else [structure]


def _per_node(texts: list[str]) -> str:
    """The node's text, or "multiple" when the model's calls of a shared layer disagree."""
    return texts[0] if len(set(texts)) == 1 else "multiple"


def _type_name(layer) -> str:
    inner = getattr(layer, "layer", None)  # wrappers: TimeDistributed(Dense)
    if inner is not None and hasattr(inner, "_inbound_nodes"):
        return f"{type(layer).__name__}({type(inner).__name__})"
    return type(layer).__name__


class _Options(NamedTuple):
    show_shapes: bool
    show_dtype: bool
    show_layer_names: bool
    expand_nested: bool


class _DotWriter:
    """Writes one model's nodes and edges; nested models recurse with a longer id prefix."""

    def __init__(self, options: _Options):
        self.options = options
        self.lines: list[str] = []

    def expands(self, layer) -> bool:
        return self.options.expand_nested and hasattr(layer, "_graph")

    def label(self, layer, nodes) -> str:
        type_name = _type_name(layer)
        lines = [f"{layer.name} ({type_name})" if self.options.show_layer_names else type_name]
        calls = [layer._inbound_nodes[0]] if layer.is_input_layer else nodes
        if self.options.show_shapes:
            indices = [n.index for n in calls]
            lines.append("input: " + _per_node([_shape_text(layer.get_input_shape_at(i)) for i in indices]))
            lines.append("output: " + _per_node([_shape_text(layer.get_output_shape_at(i)) for i in indices]))
        if self.options.show_dtype:
            lines.append("dtype: " + _per_node([_dtype_text(n.output_structure) for n in calls]))
        return "\n".join(lines)

    def write_model(self, model, prefix: str, indent: str) -> None:
        plan = model._graph().plan
        nodes_by_layer: dict[int, list] = {}
        for node in plan.nodes:
            nodes_by_layer.setdefault(id(node.layer), []).append(node)
        for layer in plan.layers:
            nodes = nodes_by_layer.get(id(layer), [])
            if self.expands(layer):
                self.lines.append(f"{indent}subgraph {dot_string('cluster_' + prefix + layer.name)} {{")
                self.lines.append(f"{indent}  label={dot_string(self.label(layer, nodes))};")
                self.lines.append(f'{indent}  style="rounded,dashed";')
                self.write_model(layer, f"{prefix}{layer.name}/", indent + "  ")
                self.lines.append(f"{indent}}}")
            else:
                label = dot_string(self.label(layer, nodes))
                self.lines.append(f"{indent}{dot_string(prefix + layer.name)} [label={label}];")
        layers = {id(layer) for layer in plan.layers}
        for node in plan.nodes:
            seen: set[int] = set()
            for tensor in node.inputs:
                if id(tensor) in seen:
                    continue  # add([x, x]): one edge
                seen.add(id(tensor))
                source = self.source(tensor, model, prefix, layers)
                if source is None:
                    continue  # a model input cut from another graph: drawn by the enclosing model
                label = self.edge_label(tensor, nodes_by_layer)
                for target in self.targets(node, tensor, prefix):
                    attributes = f" [label={dot_string(label)}]" if label else ""
                    self.lines.append(f"{indent}{dot_string(source)} -> {dot_string(target)}{attributes};")

    def edge_label(self, tensor, nodes_by_layer) -> str:
        layer = tensor.layer
        calls = 1 if layer.is_input_layer else len(nodes_by_layer.get(id(layer), []))
        if calls > 1 or len(tensor.node.outputs) > 1:
            return f"[{tensor.node_index}][{tensor.output_index}]"
        return ""

    def source(self, tensor, model, prefix: str, layers: set[int]) -> str | None:
        """The DOT id of the node drawing the layer that produced ``tensor`` inside ``model``."""
        layer = tensor.layer
        if id(layer) not in layers:
            return None
        if self.expands(layer):
            inner = layer.outputs[tensor.output_index]
            inner_layers = {id(sub) for sub in layer._graph().plan.layers}
            return self.source(inner, layer, f"{prefix}{layer.name}/", inner_layers)
        return prefix + layer.name

    def targets(self, node, tensor, prefix: str) -> list[str]:
        """The DOT ids that receive ``tensor`` as an input of ``node``: the layer's own node, or
        for an expanded nested model the input layer (or the layers) that take it inside."""
        layer = node.layer
        if not self.expands(layer):
            return [prefix + layer.name]
        inner_prefix = f"{prefix}{layer.name}/"
        plan = layer._graph().plan
        inner_layers = {id(sub) for sub in plan.layers}
        received = []
        for outer, inner in zip(layer.match_inputs(node.call_inputs), layer.inputs, strict=True):
            if outer is not tensor:
                continue
            if id(inner.layer) in inner_layers:
                received.append(inner_prefix + inner.layer.name)
                continue
            for inner_node in plan.nodes:  # an input cut from an intermediate tensor
                if any(t is inner for t in inner_node.inputs):
                    received.extend(self.targets(inner_node, inner, inner_prefix))
        return received


def model_to_dot(model, *, show_shapes=False, show_dtype=False, show_layer_names=True,
                 expand_nested=False, rankdir="TB", dpi=96) -> str:
    """The DOT source (a ``str``) of ``model``'s graph; see ``plot_model`` for the arguments."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"plot_model: rankdir must be one of {list(RANKDIRS)}, received {rankdir!r}.")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or dpi <= 0:
        raise ValueError(f"plot_model: dpi must be a positive number, received {dpi!r}.")
    writer = _DotWriter(_Options(bool(show_shapes), bool(show_dtype), bool(show_layer_names), bool(expand_nested)))
    writer.write_model(model, "", "  ")
    head = [
        f"digraph {dot_string(model.name)} {{",
        f'  graph [rankdir={rankdir}, dpi={dpi}, fontname="Helvetica"];',
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    return "\n".join(head + writer.lines + ["}"]) + "\n"


def render_dot(dot_text: str, fmt: str) -> bytes:
    """``dot_text`` rendered by Graphviz's ``dot -T<fmt>``; the source goes in on stdin."""
    program = shutil.which("dot")
    if program is None:
        raise ImportError(f"plot_model needs Graphviz to write a .{fmt} file: {INSTALL_GRAPHVIZ}.")
    completed = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                               capture_output=True, check=False)
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"Graphviz `dot -T{fmt}` failed (exit status {completed.returncode}): {message}")
    return completed.stdout


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=True,
               expand_nested=False, rankdir="TB", dpi=96) -> None:
    """Save a picture of ``model``'s graph to ``to_file`` (Keras's arguments and defaults).

    The extension chooses the format: ``.dot``/``.gv`` write the DOT text (no Graphviz needed);
    ``.png``, ``.svg``, ``.pdf``, ``.jpg``, ``.gif``, ``.ps``, ``.eps`` are rendered by Graphviz's
    ``dot`` program, and without it an ``ImportError`` says what to install; no extension means
    ``.png``, as in Keras. The file is written atomically: it is complete or left as it was.
    ``show_shapes`` adds each layer's input and output shapes ("multiple" where the calls of a
    shared layer differ), ``show_dtype`` its output dtype, ``expand_nested`` draws nested models
    as clusters of their layers; ``rankdir`` is ``"TB"`` (top to bottom) or ``"LR"``, ``"BT"``,
    ``"RL"``. Returns ``None`` (Keras returns an IPython image in notebooks; use
    ``IPython.display.Image(to_file)`` there); ``model.to_dot()`` gives the DOT text.
    """
    extension = os.path.splitext(os.fspath(to_file))[1].lower().lstrip(".") or "png"
    if extension not in TEXT_FORMATS + RENDERED_FORMATS:
        raise ValueError(
            f"plot_model cannot write '{to_file}': the extension .{extension} is not one of "
            f"{['.' + f for f in TEXT_FORMATS + RENDERED_FORMATS]}."
        )
    text = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                        show_layer_names=show_layer_names, expand_nested=expand_nested,
                        rankdir=rankdir, dpi=dpi)
    data = text.encode("utf-8") if extension in TEXT_FORMATS else render_dot(text, extension)
    with atomic_write(to_file, "wb") as stream:
        stream.write(data)
