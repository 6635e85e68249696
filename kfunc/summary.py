"""``model.summary()``: one row per layer (name and type, output shape, parameters and, for
functional models, the tensors it is connected to), then the parameter totals and their size.

Shared layers show every call inside the model in "Connected to" as ``layer[node][tensor]``;
nested models are one row, or their layers indented below them with ``expand_nested=True``.
"""

from __future__ import annotations

import numpy as np

from kfunc import registry


def _shape_text(structure) -> str:
    if isinstance(structure, (list, tuple)) and structure and isinstance(structure[0], (list, tuple)):
        return ", ".join(str(tuple(s)) for s in structure)
    if isinstance(structure, dict):
        return ", ".join(str(tuple(s)) for s in structure.values())
    return str(tuple(structure))


def _bytes(count: int, itemsize: int = 4) -> str:
    size = float(count * itemsize)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def _model_nodes(model) -> dict[int, list]:
    """For each layer (by id), the nodes of it that this model's graph runs, in order."""
    nodes: dict[int, list] = {}
    for node in model._graph().plan.nodes:
        nodes.setdefault(id(node.layer), []).append(node)
    return nodes


def _connections(node) -> list[str]:
    return [f"{t.layer.name}[{t.node_index}][{t.output_index}]" for t in node.inputs]


def _output_shape(layer, nodes) -> str:
    if layer.is_input_layer:
        return _shape_text(layer.output.shape)
    if not nodes:  # a layer a subclassed model calls in Python: its shape from the shape it was built for
        return _shape_from_build(layer)
    shapes = [_shape_text(layer.get_output_shape_at(n.index)) for n in nodes]
    return shapes[0] if len(set(shapes)) == 1 else "multiple"


def _shape_from_build(layer) -> str:
    """The output shape for the input shape ``layer`` was built with (``?`` when it is not built
    or the shape cannot be computed, as Keras 3 shows it)."""
    shape = layer.__dict__.get("_build_input_shape")
    if shape is None:
        return "?"

    def known(structure):
        if isinstance(structure, dict):
            return {k: known(v) for k, v in structure.items()}
        if isinstance(structure, (list, tuple)) and structure and isinstance(structure[0], (list, tuple, dict)):
            return [known(s) for s in structure]
        return tuple(d if isinstance(d, (int, np.integer)) else None for d in structure)

    try:
        return _shape_text(layer.compute_output_shape((None,) + known(shape)[1:] if isinstance(shape, tuple) else known(shape)))
    except Exception:  # noqa: BLE001 - a display detail: an unknown shape is shown as Keras shows it
        return "?"


def _is_model(layer) -> bool:
    """Whether ``layer`` is a kfunc Model (the class ``kfunc.models`` registered as Functional)."""
    return isinstance(layer, registry.builtins("layer")["Functional"])


def summary_rows(model, *, expand_nested: bool = False, depth: int = 0) -> list[tuple[str, str, str, list[str]]]:
    """``(name (type), output shape, params, connected-to lines)`` for each row."""
    rows = []
    # A Sequential that has not met its input yet (Keras 3 shows its layers as unbuilt).
    built = model.built
    functional = hasattr(model, "_graph") and getattr(model, "_graph_network", True) and built
    nodes_by_layer = _model_nodes(model) if functional else {}
    for layer in model.layers:
        nodes = nodes_by_layer.get(id(layer), [])
        connected = [line for node in nodes for line in _connections(node)] if nodes else ["-"]
        indent = "  " * depth
        shape = _output_shape(layer, nodes) if built else "?"
        params = f"{layer.count_params():,}" if built or layer.built else "0 (unbuilt)"
        rows.append((f"{indent}{layer.name} ({type(layer).__name__})", shape, params, connected))
        if expand_nested and _is_model(layer):
            rows.extend(summary_rows(layer, expand_nested=True, depth=depth + 1))
    return rows


def summary_text(model, *, line_length: int = 98, expand_nested: bool = False, show_trainable: bool = False) -> str:
    rows = summary_rows(model, expand_nested=expand_nested)
    # Sequential and subclassed models are a sequence of layers (Keras 3 shows no connections).
    with_connections = not isinstance(model, registry.builtins("layer")["Sequential"]) and getattr(
        model, "_graph_network", True
    )
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if with_connections else [])
    fractions = [0.33, 0.22, 0.12, 0.33] if with_connections else [0.45, 0.35, 0.2]
    widths = [max(12, int(line_length * f)) for f in fractions]

    def line(cells):
        return "".join(str(c)[: w - 1].ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    out = [f'Model: "{model.name}"', "_" * line_length, line(headers), "=" * line_length]
    for index, (name, shape, params, connected) in enumerate(rows):
        cells = [name, shape, params] + ([connected[0]] if with_connections else [])
        out.append(line(cells))
        for extra in connected[1:] if with_connections else []:
            out.append(line(["", "", "", extra]))
        out.append(("=" if index == len(rows) - 1 else "_") * line_length)
    trainable = sum(v.size for v in model.trainable_weights)
    total = model.count_params()
    itemsize = int(np.mean([v.dtype.itemsize for v in model.weights])) if model.weights else 4
    out += [
        f"Total params: {total:,} ({_bytes(total, itemsize)})",
        f"Trainable params: {trainable:,} ({_bytes(trainable, itemsize)})",
        f"Non-trainable params: {total - trainable:,} ({_bytes(total - trainable, itemsize)})",
        "_" * line_length,
    ]
    trainer = getattr(model, "_trainer", None)
    folds = hasattr(model, "folded_blocks") and (trainer is None or trainer.fold_repeated_blocks)
    folded = model.folded_blocks() if folds else []
    for blocks in folded:  # kfunc: how lowering runs the repeated blocks
        out.append(f"Folded: {len(blocks)} repeated blocks [{', '.join(blocks[0])}] ... [{', '.join(blocks[-1])}] "
                   "run as one lax.scan")
    if folded:
        out.append("_" * line_length)
    return "\n".join(out)
