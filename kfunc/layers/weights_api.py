"""The weights side of a layer: declaring them, listing them in Keras's order, reading and
setting their values, and turning them into the ``Variables(params, state)`` pytrees that the
pure functions take (``init``, ``get_variables``, ``set_variables``).

``Layer`` inherits this; it expects ``self._own_variables`` (the layer's own weights, in
declaration order), ``self.sublayers``, ``self.name``, ``self.built`` and the dtype properties.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from kfunc import constraints as constraints_lib
from kfunc import initializers as initializers_lib
from kfunc import regularizers as regularizers_lib
from kfunc.errors import LayerConfigError, WeightsError, describe_layer
from kfunc.layers.tree_paths import get_path, tree_from_paths
from kfunc.layers.variable import Variable


class Variables(NamedTuple):
    """A model's weights as two nested dicts keyed by layer name, then weight name.

    ``params``: trainable weights (kernels, biases), what gradients are taken with respect to.
    ``state``: non-trainable weights (BatchNorm's moving statistics), returned updated by ``apply``.
    """

    params: dict
    state: dict




class WeightsAPI:
    """Weights of a layer and of the layers inside it (mixed into ``Layer``)."""

    # ------------------------------------------------------------------ weights
    def add_weight(
        self,
        name: str,
        shape,
        initializer="glorot_uniform",
        *,
        trainable: bool = True,
        dtype=None,
        autocast: bool = True,
        regularizer=None,
        constraint=None,
    ) -> Variable:
        """Declare a weight of ``shape``; returns the ``Variable`` (usable as an array in ``call``).

        Stored in ``dtype`` (default: the layer's variable dtype). ``autocast``: under a mixed
        policy ``call`` reads the weight in the compute dtype; ``False`` keeps its own dtype.
        ``regularizer`` (``x -> penalty``, e.g. ``'l2'``) adds to the training loss while the weight
        is trainable; ``constraint`` (``w -> w'``, e.g. ``'max_norm'``) projects it after each update.
        """
        if any(v.name == name for v in self._own_variables):
            raise LayerConfigError(f"{describe_layer(self)} already has a weight named '{name}'.")
        variable = Variable(
            name,
            shape,
            dtype if dtype is not None else self.dtype,
            initializers_lib.get(initializer),
            trainable=trainable,
            owner_name=self.name,
            autocast=autocast,
            regularizer=regularizers_lib.get(regularizer),
            constraint=constraints_lib.get(constraint),
        )
        self._own_variables.append(variable)
        return variable

    @property
    def weights(self) -> list[Variable]:
        """All weights in Keras's order: own trainable, own non-trainable, then sublayers'."""
        ordered = [v for v in self._own_variables if v.trainable]
        ordered += [v for v in self._own_variables if not v.trainable]
        seen = {id(v) for v in ordered}
        for layer in self.sublayers:
            for variable in layer.weights:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    ordered.append(variable)
        return ordered

    @property
    def trainable_weights(self) -> list[Variable]:
        """Weights the optimizer updates: none if the layer (or a parent) is frozen."""
        if not self.trainable:
            return []
        found = [v for v in self._own_variables if v.trainable]
        seen = {id(v) for v in found}
        for layer in self.sublayers:
            for variable in layer.trainable_weights:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    found.append(variable)
        return found

    @property
    def non_trainable_weights(self) -> list[Variable]:
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    variables = weights

    def get_weights(self) -> list[np.ndarray]:
        """The weights' values as NumPy arrays, in ``self.weights`` order (Keras's)."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights) -> None:
        """Set every weight from a list in ``self.weights`` order; shapes must match exactly."""
        variables = self.weights
        weights = list(weights)
        if len(weights) != len(variables):
            raise WeightsError(
                f"{describe_layer(self)} has {len(variables)} weights "
                f"{[v.path for v in variables]}, but set_weights received {len(weights)} arrays."
            )
        mismatched = [
            f"{v.path}: expected {v.shape}, received {tuple(np.shape(w))}"
            for v, w in zip(variables, weights, strict=True)
            if tuple(np.shape(w)) != v.shape
        ]
        if mismatched:
            raise WeightsError(f"{describe_layer(self)}: set_weights shape mismatch for " + "; ".join(mismatched) + ".")
        for variable, value in zip(variables, weights, strict=True):
            variable.set_value(value)

    def count_params(self) -> int:
        return int(sum(v.size for v in self.weights))

    # ------------------------------------------------------------------ pure functions
    def variable_paths(self) -> list[tuple[Variable, tuple[str, ...]]]:
        """Each weight once, with its path in the params/state trees, e.g. ``("dense", "kernel")``.

        A weight reachable along several paths (a layer shared by two nested models) is stored
        at the first one, in ``weights`` order.
        """
        pairs: list[tuple[Variable, tuple[str, ...]]] = []
        seen: set[int] = set()
        stack: list[tuple[WeightsAPI, tuple[str, ...]]] = [(self, ())]
        while stack:
            layer, prefix = stack.pop()
            for variable in [v for v in layer._own_variables if v.trainable] + [
                v for v in layer._own_variables if not v.trainable
            ]:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    pairs.append((variable, prefix + (variable.name,)))
            stack.extend((sub, prefix + (sub.name,)) for sub in reversed(layer.sublayers))
        return pairs

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise LayerConfigError(
                f"{describe_layer(self)} has no weights yet, so {what} is not possible: call it on an "
                "Input (or arrays) first, or call build(input_shape)."
            )

    def init(self, key: jax.Array) -> Variables:
        """Fresh weights drawn with ``key`` (``fold_in(key, i)`` for the i-th weight), computed by
        one compiled function per set of weights."""
        self._require_built("init(key)")
        pairs = self.variable_paths()
        signature = tuple(id(v) for v, _ in pairs)
        cached = self.__dict__.get("_init_cache")
        if cached is None or cached[0] != signature:

            def draw(key):
                values = [v.initial_value(jax.random.fold_in(key, i)) for i, (v, _) in enumerate(pairs)]
                return self._to_variables(pairs, values)

            cached = self._init_cache = (signature, jax.jit(draw))
        return cached[1](key)

    def get_variables(self) -> Variables:
        """The layer's current weights as ``Variables(params, state)`` pytrees."""
        pairs = self.variable_paths()
        return self._to_variables(pairs, [v.stored_value for v, _ in pairs])

    def set_variables(self, variables: Variables) -> None:
        """Store ``Variables(params, state)`` (e.g. after training with the pure functions)."""
        params, state = variables
        for variable, path in self.variable_paths():
            variable.set_value(get_path(params if variable.trainable else state, path, self))

    @staticmethod
    def _to_variables(pairs, values) -> Variables:
        params = tree_from_paths([(p, x) for (v, p), x in zip(pairs, values, strict=True) if v.trainable])
        state = tree_from_paths([(p, x) for (v, p), x in zip(pairs, values, strict=True) if not v.trainable])
        return Variables(params, state)

