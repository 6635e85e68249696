"""Finding runs of repeated blocks in a graph, so that lowering can run them as one ``lax.scan``.

A Python loop of layer calls (``for _ in range(n): x = add([x, Dense(64)(LayerNormalization()(x))])``)
records ``n`` blocks of nodes that differ only in their layers' names and weights. Such a run
lowers to one scan over the blocks' weights stacked on a new leading axis: the block is traced
and compiled once, whatever ``n`` is.

Detection is exact; a block is part of a run only when, node for node against the run's first
block (its *template*), it has:

- a layer of the same class, with the same configuration apart from ``name`` (which covers
  ``trainable``, the dtype policy, initializers, regularizers and constraints), with no
  sublayers, called only in this node of the graph (no shared layer) and with weights of the
  same names, shapes, dtypes and trainability;
- the same call: arguments of the same structure, static arguments equal, and each symbolic
  argument the same tensor relative to the block (the block's entry or the same output of the
  same earlier node of the block);
- outputs of the same shapes and dtypes.

The block's one entry is the previous block's exit (its last node's only output), whose shape
and dtype it keeps; no tensor computed inside a block other than a run's last exit is read
outside its block or is a model output. Masks are checked when the run executes (a masked entry,
or a block that creates a mask, runs unrolled), as are losses that layers add while called.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from kfunc.graph.node import Node
from kfunc.graph.tensor import SymbolicTensor, is_symbolic

MIN_BLOCKS = 2  # a run of fewer blocks gains nothing from a scan


class FoldedRun(NamedTuple):
    """``count`` consecutive blocks of ``length`` nodes starting at ``plan.nodes[start]``.

    ``blocks[i]``: the nodes of block ``i`` (``blocks[0]`` is the template that the scan runs);
    ``entry``: the tensor the first block reads; ``exit``: the last block's output, the only
    tensor of the run read after it. ``template_exit``: the template block's output.
    """

    start: int
    length: int
    count: int
    blocks: tuple
    entry: SymbolicTensor
    exit: SymbolicTensor
    template_exit: SymbolicTensor

    @property
    def stop(self) -> int:
        """Position in ``plan.nodes`` just after the run."""
        return self.start + self.length * self.count

    @property
    def template_layers(self) -> list:
        return [node.layer for node in self.blocks[0]]

    def block_layer_names(self) -> list[list[str]]:
        """The layer names of each block, in node order."""
        return [[node.layer.name for node in block] for block in self.blocks]


def _config_without_name(layer):
    try:
        config = dict(layer.get_config())
    except Exception:  # a custom layer without a usable config cannot be proven identical
        return None
    config.pop("name", None)
    return config


def _same_value(a, b) -> bool:
    """Whether two configuration values are equal (arrays compared by value)."""
    try:
        leaves_a, tree_a = jax.tree_util.tree_flatten(a)
        leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    except Exception:
        return False
    if tree_a != tree_b:
        return False
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if hasattr(x, "shape") or hasattr(y, "shape"):
            if not (hasattr(x, "shape") and hasattr(y, "shape") and x.shape == y.shape and x.dtype == y.dtype):
                return False
            if not bool((jax.numpy.asarray(x) == jax.numpy.asarray(y)).all()):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


def _weight_signature(layer) -> tuple:
    return tuple((v.name, tuple(v.shape), str(v.dtype), bool(v.trainable)) for v in layer.weights)


class _Usage(NamedTuple):
    consumers: dict  # id(tensor) -> list of consumer node ids
    node_count: dict  # id(layer) -> nodes of the layer in the plan
    outputs: set  # ids of the model's output tensors
    configs: dict  # id(layer) -> its configuration without the name (computed once)

    def config_of(self, layer):
        if id(layer) not in self.configs:
            self.configs[id(layer)] = _config_without_name(layer)
        return self.configs[id(layer)]


def _usage(nodes, outputs) -> _Usage:
    consumers: dict[int, list[int]] = {}
    node_count: dict[int, int] = {}
    for node in nodes:
        node_count[id(node.layer)] = node_count.get(id(node.layer), 0) + 1
        for tensor in node.inputs:
            consumers.setdefault(id(tensor), []).append(id(node))
    return _Usage(consumers, node_count, {id(t) for t in outputs}, {})


def _foldable_layer(layer, usage: _Usage) -> bool:
    return (
        not getattr(layer, "is_input_layer", False)
        and not layer.sublayers
        and usage.node_count[id(layer)] == 1
        and getattr(layer, "activity_regularizer", None) is None
    )


def _block_form(block: tuple[Node, ...], entry: SymbolicTensor, usage: _Usage):
    """A hashable-free description of ``block`` relative to ``entry``, or None when the nodes do
    not form a block (another input from outside, an output read elsewhere, a shared layer)."""
    local: dict[int, tuple] = {id(entry): ("entry",)}
    members = {id(node) for node in block}
    form = []
    for j, node in enumerate(block):
        if not _foldable_layer(node.layer, usage):
            return None
        for tensor in node.inputs:
            if id(tensor) not in local:
                return None
        call = jax.tree_util.tree_map(
            lambda leaf: ("tensor", local[id(leaf)]) if is_symbolic(leaf) else leaf,
            (node.args, node.kwargs),
            is_leaf=is_symbolic,
        )
        outputs = tuple((t.shape, str(t.dtype)) for t in node.outputs)
        form.append((type(node.layer), usage.config_of(node.layer), _weight_signature(node.layer), call, outputs))
        for k, tensor in enumerate(node.outputs):
            local[id(tensor)] = ("node", j, k)
    last = block[-1]
    if len(last.outputs) != 1:
        return None
    exit_tensor = last.outputs[0]
    if exit_tensor.shape != entry.shape or exit_tensor.dtype != entry.dtype:
        return None
    for node in block:
        for tensor in node.outputs:
            if tensor is exit_tensor:
                continue
            readers = usage.consumers.get(id(tensor), [])
            if id(tensor) in usage.outputs or any(r not in members for r in readers):
                return None
    return form


def _same_form(a, b) -> bool:
    if len(a) != len(b):
        return False
    for (cls_a, config_a, weights_a, call_a, out_a), (cls_b, config_b, weights_b, call_b, out_b) in zip(a, b, strict=True):
        if cls_a is not cls_b or config_a is None or config_b is None:
            return False
        if weights_a != weights_b or out_a != out_b:
            return False
        if not _same_value(config_a, config_b) or not _same_value(call_a, call_b):
            return False
    return True


def _exit_only_read_by_next(exit_tensor, next_block, usage: _Usage) -> bool:
    """The exit of a block that is not the run's last: read only inside the next block."""
    members = {id(node) for node in next_block}
    readers = usage.consumers.get(id(exit_tensor), [])
    return id(exit_tensor) not in usage.outputs and all(r in members for r in readers)


def _run_at(nodes, position: int, length: int, usage: _Usage) -> FoldedRun | None:
    """The longest run of blocks of ``length`` nodes starting at ``position``, if there are two."""
    first = nodes[position]
    entries = [t for t in first.inputs]
    if len({id(t) for t in entries}) != 1 or position + 2 * length > len(nodes):
        return None
    entry = entries[0]
    template = tuple(nodes[position : position + length])
    form = _block_form(template, entry, usage)
    if form is None:
        return None
    blocks = [template]
    exits = [template[-1].outputs[0]]
    cursor = position + length
    while cursor + length <= len(nodes):
        block = tuple(nodes[cursor : cursor + length])
        candidate = _block_form(block, exits[-1], usage)
        if candidate is None or not _same_form(form, candidate):
            break
        if not _exit_only_read_by_next(exits[-1], block, usage):
            break
        blocks.append(block)
        exits.append(block[-1].outputs[0])
        cursor += length
    if len(blocks) < MIN_BLOCKS:
        return None
    return FoldedRun(position, length, len(blocks), tuple(blocks), entry, exits[-1], exits[0])


def find_repeated_blocks(nodes, outputs, *, max_block_length: int = 64) -> tuple[FoldedRun, ...]:
    """The runs of repeated blocks in ``nodes`` (a graph plan's nodes, inputs first) whose
    ``outputs`` are the model's outputs; at each position the block length covering the most
    nodes wins, and runs never overlap."""
    usage = _usage(nodes, outputs)
    runs: list[FoldedRun] = []
    position = 0
    while position < len(nodes):
        best = None
        for length in range(1, min(max_block_length, (len(nodes) - position) // 2) + 1):
            run = _run_at(nodes, position, length, usage)
            if run is not None and (best is None or run.length * run.count > best.length * best.count):
                best = run
        if best is None:
            position += 1
            continue
        runs.append(best)
        position = best.stop
    return tuple(runs)


def layers_in_runs(runs) -> set[int]:
    """``id`` of every layer inside a run's blocks."""
    return {id(node.layer) for run in runs for block in run.blocks for node in block}


