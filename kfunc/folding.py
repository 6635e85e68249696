"""Repeated blocks of a model run as one ``lax.scan`` over their weights stacked on a new axis.

``BlockFolding.of(model)`` finds the runs (``kfunc.graph.fold``) and converts pytrees between
the model's layout (one entry per layer name, what ``get_weights``, saving and Keras see) and the
*stacked* layout that training keeps: the entry of each layer of a run's first block (its
template) holds that layer's weights for every block, stacked on a new leading axis ``(count,
...)``, and the entries of the other blocks' layers are absent. ``FoldedCall`` is what one trace
needs to run the graph on the stacked layout: ``Model.call_with_masks(..., folded=...)`` hands it
each run's entry value and it returns the run's exit.

Random keys stay those of the unrolled graph: the node at position ``p`` of the graph draws from
``fold_in(key, p)`` whether it runs unrolled or inside the scan (``p`` is then computed from the
traced block index), so each block has its own dropout key and the results are identical.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

from kfunc.core.variable import bind
from kfunc.errors import TrainingConfigError
from kfunc.graph.fold import FoldedRun, find_repeated_blocks
from kfunc.layers import added_losses

REMAT_POLICIES = {
    "nothing_saveable": jax.checkpoint_policies.nothing_saveable,
    "dots_saveable": jax.checkpoint_policies.dots_saveable,
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "everything_saveable": jax.checkpoint_policies.everything_saveable,
}


def remat_policy(remat):
    """``remat`` (False, True, a policy name of ``REMAT_POLICIES`` or a ``jax.checkpoint_policies``
    function) as ``(enabled, policy)``; True recomputes everything (``nothing_saveable``)."""
    if remat is False or remat is None:
        return False, None
    if remat is True:
        return True, jax.checkpoint_policies.nothing_saveable
    if isinstance(remat, str):
        if remat not in REMAT_POLICIES:
            raise TrainingConfigError(
                f"compile: remat={remat!r} is not a known policy; use True, False or one of {sorted(REMAT_POLICIES)}."
            )
        return True, REMAT_POLICIES[remat]
    if callable(remat):
        return True, remat
    raise TrainingConfigError(f"compile: remat must be a bool, a policy name or a jax.checkpoint_policies function, received {remat!r}.")


class _Unfoldable(Exception):
    """Raised while tracing a block that cannot run in a scan after all (it made a mask or added a loss)."""


@jax.jit
def _stack(*values):
    """One leaf of the blocks' leaves, stacked on a new leading axis (one dispatch per leaf)."""
    return jnp.stack(values)


@jax.jit
def _block_of(stacked, index):
    """Block ``index``'s leaf of a stacked leaf ``(blocks, *shape) -> shape``. The index is traced,
    so one compile per leaf shape serves every block (a program returning all blocks' slices at
    once takes XLA about 0.7 s to compile at 64 blocks)."""
    return jax.lax.dynamic_index_in_dim(stacked, index, keepdims=False)


def _unstack(stacked) -> tuple:
    """The blocks' leaves of a stacked leaf, one small cached dispatch per block."""
    return tuple(_block_of(stacked, index) for index in range(stacked.shape[0]))


class BlockFolding(NamedTuple):
    """The runs of repeated blocks of one model and the layout conversions they need."""

    runs: tuple[FoldedRun, ...]

    @classmethod
    def of(cls, model) -> BlockFolding | None:
        """The model's runs, or None when it has none (or is not a graph model)."""
        graph = getattr(model, "_graph", None)
        if graph is None or not model.built or not getattr(model, "_graph_network", True):
            return None  # a subclassed model's `call` runs in Python: no graph nodes to fold
        built = graph()
        runs = find_repeated_blocks(built.plan.nodes, built.flat_outputs)
        return cls(runs) if runs else None

    # ------------------------------------------------------------------ what is folded
    def folded_variable_ids(self) -> set[int]:
        """``id`` of every weight of every block of every run."""
        return {id(v) for run in self.runs for block in run.blocks for node in block for v in node.layer.weights}

    def _layer_names(self, run: FoldedRun) -> list[list[str]]:
        """``[j][i]``: the name of node ``j``'s layer in block ``i``."""
        return [[block[j].layer.name for block in run.blocks] for j in range(run.length)]

    def describe(self) -> list[str]:
        """One line per run, e.g. ``"64 blocks of 3 layers (layer_normalization, dense, add) ..."``."""
        lines = []
        for run in self.runs:
            first = ", ".join(node.layer.name for node in run.blocks[0])
            last = ", ".join(node.layer.name for node in run.blocks[-1])
            lines.append(f"{run.count} blocks of {run.length} layer(s), from ({first}) to ({last}): one lax.scan")
        return lines

    def keep_runs(self, keep) -> BlockFolding | None:
        """Only the runs for which ``keep(run)`` holds; None when none is left."""
        runs = tuple(run for run in self.runs if keep(run))
        return BlockFolding(runs) if runs else None

    # ------------------------------------------------------------------ layouts
    def stack_tree(self, tree: dict, combine=_stack) -> dict:
        """A model-layout dict keyed by layer name (params, state, or an optimizer state's copy of
        params) in the stacked layout; layers absent from ``tree`` stay absent. ``combine(*leaves)``
        makes one leaf of the blocks' leaves (default: stack them on a new leading axis)."""
        tree = dict(tree)
        for run in self.runs:
            for names in self._layer_names(run):
                if names[0] not in tree:
                    continue
                tree[names[0]] = jax.tree_util.tree_map(combine, *[tree.pop(name) for name in names])
        return tree

    def unstack_tree(self, tree: dict) -> dict:
        """The inverse of ``stack_tree`` (keys in the model's layer order are not needed: dicts
        of the model layout are keyed by name)."""
        tree = dict(tree)
        for run in self.runs:
            for names in self._layer_names(run):
                if names[0] not in tree:
                    continue
                stacked = tree.pop(names[0])
                leaves, treedef = jax.tree_util.tree_flatten(stacked)
                per_block = [_unstack(leaf) for leaf in leaves]
                for i, name in enumerate(names):
                    tree[name] = jax.tree_util.tree_unflatten(treedef, [blocks[i] for blocks in per_block])
        return tree

    def stack_shardings(self, shardings: dict) -> dict:
        """``{tree path text: (sharding, shape)}`` of the model layout's weights (what
        ``kfunc.distribution.weight_shardings`` gives) for the stacked layout: a template layer's
        entries placed as that layer's weights with the stacked axis unsplit, ``(count, *shape)``;
        the other blocks' entries gone (their placements are the template's)."""
        shardings = dict(shardings)
        for run in self.runs:
            for names in self._layer_names(run):
                template = f"['{names[0]}']"
                for name in names[1:]:
                    for path in [p for p in shardings if p.startswith(f"['{name}']")]:
                        del shardings[path]
                for path in [p for p in shardings if p.startswith(template)]:
                    sharding, shape = shardings[path]
                    stacked = NamedSharding(sharding.mesh, PartitionSpec(None, *sharding.spec))
                    shardings[path] = (stacked, (run.count, *shape))
        return shardings

    def _convert_params_like(self, tree, keys: set, convert):
        """``convert`` applied to every dict inside ``tree`` whose keys are exactly ``keys`` (an
        optimizer state's copies of the params: Adam's moments, a trace, masked states)."""
        is_params_like = lambda node: isinstance(node, dict) and set(node) == keys
        return jax.tree_util.tree_map(
            lambda node: convert(node) if is_params_like(node) else node, tree, is_leaf=is_params_like
        )

    def stack_like_params(self, tree, params: dict):
        """``tree`` (e.g. an optimizer state) with each copy of the model-layout ``params`` stacked."""
        return self._convert_params_like(tree, set(params), self.stack_tree)

    def unstack_like_params(self, tree, stacked_params: dict):
        """``tree`` with each copy of the stacked-layout ``stacked_params`` unstacked."""
        return self._convert_params_like(tree, set(stacked_params), self.unstack_tree)

    def stacked_rules(self, rules):
        """A ``WeightRules`` (paths to regularizers and constraints) for the stacked layout: a
        template weight's rule maps over the stacked axis (its penalty is the sum of the blocks'
        penalties), the other blocks' entries go (their rules are the template's: same config)."""
        templates, others = set(), set()
        for run in self.runs:
            for names in self._layer_names(run):
                templates.add(names[0])
                others.update(names[1:])

        def penalty_over_blocks(regularizer):
            return lambda stacked: jnp.sum(jax.vmap(lambda w: jnp.sum(jnp.asarray(regularizer(w))))(stacked))

        def adapt(pairs, wrap):
            return tuple((p, wrap(f) if p[0] in templates else f) for p, f in pairs if p[0] not in others)

        return rules._replace(penalties=adapt(rules.penalties, penalty_over_blocks),
                              constraints=adapt(rules.constraints, jax.vmap))

    def stacked_values(self, run: FoldedRun, params: dict, state: dict) -> list:
        """The stacked value of each template weight of ``run`` (``run.template_layers``' weights in order)."""
        values = []
        for layer in run.template_layers:
            for variable in layer.weights:
                values.append((params if variable.trainable else state)[layer.name][variable.name])
        return values

    def call(self, params: dict, state: dict, *, remat=False) -> FoldedCall:
        """What one trace on stacked ``params``/``state`` needs (new states collect in it)."""
        return FoldedCall(self, params, state, remat_policy(remat))


class FoldedCall:
    """One trace's stacked values; ``run(...)`` computes a run, ``new_state`` holds each run's
    updated non-trainable weights (``{template layer name: {weight name: (count, ...)}}``)."""

    def __init__(self, folding: BlockFolding, params: dict, state: dict, remat):
        self.folding = folding
        self.runs = folding.runs
        self.params, self.state = params, state
        self.remat, self.policy = remat
        self.new_state: dict = {}

    def run(self, run: FoldedRun, entry_value, entry_mask, call_node):
        """``(exit value, exit mask)`` of ``run`` from its entry; ``call_node`` is the graph
        interpreter's ``call_node(position, node, args, kwargs, masks)``."""
        variables = [v for layer in run.template_layers for v in layer.weights]
        values = self.folding.stacked_values(run, self.params, self.state)
        if entry_mask is None:
            try:
                return self._scan(run, variables, values, entry_value, call_node)
            except _Unfoldable:
                pass
        return self._unrolled(run, variables, values, entry_value, entry_mask, call_node)

    def _block_body(self, run: FoldedRun, variables, call_node):
        template = run.blocks[0]

        def body(carry, xs):
            index, block_values = xs
            with bind(variables, block_values) as binding, added_losses.collecting() as added:
                values = {run.entry: carry}
                masks = {run.entry: None}
                for j, node in enumerate(template):
                    args, kwargs = node.substitute(values)
                    position = run.start + index * run.length + j
                    result, output_masks = call_node(position, node, args, kwargs, masks)
                    if any(m is not None for m in output_masks):
                        raise _Unfoldable
                    values.update(zip(node.outputs, jax.tree_util.tree_leaves(result), strict=True))
                    masks.update(zip(node.outputs, output_masks, strict=True))
            if added.entries:
                raise _Unfoldable
            exit_value = values[run.template_exit]
            new_states = [binding.updates.get(v, x) for v, x in zip(variables, block_values, strict=True) if not v.trainable]
            return exit_value.astype(carry.dtype), new_states

        if self.remat:
            return jax.checkpoint(body, policy=self.policy, prevent_cse=False)
        return body

    def _scan(self, run: FoldedRun, variables, values, entry_value, call_node):
        body = self._block_body(run, variables, call_node)
        indices = jnp.arange(run.count, dtype=jnp.int32)
        exit_value, new_states = lax.scan(body, entry_value, (indices, values))
        stateful = [v for v in variables if not v.trainable]
        self._store(run, dict(zip([id(v) for v in stateful], new_states, strict=True)))
        return exit_value, None

    def _store(self, run: FoldedRun, updated: dict) -> None:
        for layer in run.template_layers:
            for variable in layer.weights:
                if not variable.trainable:
                    self.new_state.setdefault(layer.name, {})[variable.name] = updated[id(variable)]

    def _unrolled(self, run: FoldedRun, variables, values, entry_value, entry_mask, call_node):
        """The run node by node (block ``i`` bound to slice ``i`` of the stacked weights), for the
        cases a scan cannot take: a masked entry, a block that makes masks or adds losses."""
        value, mask = entry_value, entry_mask
        per_block_state = []
        for i, block in enumerate(run.blocks):
            block_variables = [v for node in block for v in node.layer.weights]
            sliced = [x[i] for x in values]
            with bind(block_variables, sliced) as binding:
                tensors = {run.blocks[i][0].inputs[0]: value}
                masks = {run.blocks[i][0].inputs[0]: mask}
                for j, node in enumerate(block):
                    args, kwargs = node.substitute(tensors)
                    result, output_masks = call_node(run.start + i * run.length + j, node, args, kwargs, masks)
                    tensors.update(zip(node.outputs, jax.tree_util.tree_leaves(result), strict=True))
                    masks.update(zip(node.outputs, output_masks, strict=True))
            exit_tensor = block[-1].outputs[0]
            value, mask = tensors[exit_tensor], masks[exit_tensor]
            per_block_state.append([binding.updates.get(v, x) for v, x in zip(block_variables, sliced, strict=True)
                                    if not v.trainable])
        stateful = [v for v in variables if not v.trainable]
        if stateful:
            stacked = [jnp.stack(column) for column in zip(*per_block_state, strict=True)]
            self._store(run, dict(zip([id(v) for v in stateful], stacked, strict=True)))
        return value, mask
