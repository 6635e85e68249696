"""The layout training keeps a model's variables in: the model's own (one entry per layer), or,
when repeated blocks are folded (``kfunc.folding``), the stacked one, where each run's template
layers hold every block's weights ``(count, *shape)``. ``TrainingLayout`` decides which runs
training folds (under a distribution, those whose blocks are placed alike) and converts the
training state between the two layouts, placing stacked weights as their blocks' weights are."""

from __future__ import annotations

from kfunc import distribution as distribution_lib
from kfunc.distribution import place_like_weights, weight_shardings
from kfunc.folding import BlockFolding


class TrainingLayout:
    """Which runs of repeated blocks a trainer folds, and its state's layout conversions."""

    def __init__(self, model, fold_repeated_blocks: bool):
        self.model = model
        self.fold_repeated_blocks = bool(fold_repeated_blocks)
        self._cache = None  # (graph plan, distribution, folding)

    def folding(self) -> BlockFolding | None:
        """The model's runs of repeated blocks that training folds; under a distribution only
        the runs whose blocks' weights are all placed alike (see ``stacked``)."""
        if not self.fold_repeated_blocks:
            return None
        if not getattr(self.model, "built", False):
            return None
        if not hasattr(self.model, "_graph") or not getattr(self.model, "_graph_network", True):
            return None  # a subclassed model runs its own call: there is no graph of blocks to fold
        plan, current = self.model._graph().plan, distribution_lib.distribution()
        cached = self._cache
        if cached is None or cached[0] is not plan or cached[1] is not current:
            folding = BlockFolding.of(self.model)
            if folding is not None and current is not None:
                folding = folding.keep_runs(lambda run: _blocks_placed_alike(self.model, run, current))
            self._cache = (plan, current, folding)
        return self._cache[2]

    def stacked(self, params: dict, state: dict, opt_state=None):
        """``((params, state), opt_state)`` of the model's layout as the compiled functions read
        them: folded blocks' weights stacked ``(count, *shape)`` (``opt_state``'s copies of the
        params too; it may be None), under a distribution placed as the blocks' weights are, the
        stacked axis unsplit."""
        folding = self.folding()
        if folding is None:
            return (params, state), opt_state
        stacked = [folding.stack_tree(params), folding.stack_tree(state)]
        if opt_state is not None:
            stacked.append(folding.stack_like_params(opt_state, params))
        current = distribution_lib.distribution()
        if current is not None:
            shardings = folding.stack_shardings(weight_shardings(self.model, current))
            stacked = [place_like_weights(tree, shardings, current) for tree in stacked]
        return (stacked[0], stacked[1]), (stacked[2] if opt_state is not None else None)

    def model_layout(self, train):
        """A ``TrainState`` in the stacked layout -> the same in the model's layout."""
        folding = self.folding()
        if folding is None:
            return train
        return train._replace(params=folding.unstack_tree(train.params), state=folding.unstack_tree(train.state),
                              opt_state=folding.unstack_like_params(train.opt_state, train.params))


def _blocks_placed_alike(model, run, current) -> bool:
    """Whether ``current`` places every block of ``run`` as its first (same spec for each weight)."""
    paths = {id(v): "/".join(p) for v, p in model.variable_paths()}

    def specs(block):
        return [tuple(current.weight_spec(paths[id(v)], tuple(v.shape))) for node in block for v in node.layer.weights]

    first = specs(run.blocks[0])
    return all(specs(block) == first for block in run.blocks[1:])
