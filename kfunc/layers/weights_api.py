"""The weights side of a layer: declaring them, listing them in Keras's order, reading and
setting their values, and turning them into the ``Variables(params, state)`` pytrees that the
pure functions take (``init``, ``get_variables``, ``set_variables``).

``Layer`` inherits this; it expects ``self._own_variables`` (the layer's own weights, in
declaration order), ``self.sublayers``, ``self.name``, ``self.built`` and the dtype properties.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kfunc import constraints as constraints_lib
from kfunc import initializers as initializers_lib
from kfunc import regularizers as regularizers_lib
from kfunc.errors import LayerConfigError, WeightsError, describe_layer
from kfunc.core.tree_paths import get_path, tree_from_paths
from kfunc.core.variable import Variable


class Variables(NamedTuple):
    """A model's weights as two nested dicts keyed by layer name, then weight name.

    ``params``: trainable weights (kernels, biases), what gradients are taken with respect to.
    ``state``: non-trainable weights (BatchNorm's moving statistics), returned updated by ``apply``.
    """

    params: dict
    state: dict




def _add_weight_arguments(layer, args: tuple, shape, initializer, dtype, name):
    """``(shape, initializer, dtype, name)`` from Keras 3's positional ``(shape, initializer,
    dtype)`` or Keras 2's ``(name, shape, initializer)``, each given once."""
    if len(args) > 3:
        raise LayerConfigError(
            f"{describe_layer(layer)}: add_weight() takes at most 3 positional arguments (shape, initializer, "
            f"dtype), received {len(args)}; pass the others by keyword."
        )
    keras2 = bool(args) and isinstance(args[0], str)
    names = ("name", "shape", "initializer") if keras2 else ("shape", "initializer", "dtype")
    given = {"shape": shape, "initializer": initializer, "dtype": dtype, "name": name}
    for argument, value in zip(names, args, strict=False):
        if given[argument] is not None:
            raise LayerConfigError(
                f"{describe_layer(layer)}: add_weight() received '{argument}' both positionally and as a "
                "keyword; pass it once."
            )
        given[argument] = value
    shape = () if given["shape"] is None else given["shape"]
    return shape, given["initializer"], given["dtype"], given["name"]


class WeightsAPI:
    """Weights of a layer and of the layers inside it (mixed into ``Layer``)."""

    # ------------------------------------------------------------------ weights
    def add_weight(
        self,
        *args,
        shape=None,
        initializer=None,
        dtype=None,
        trainable: bool = True,
        autocast: bool = True,
        regularizer=None,
        constraint=None,
        aggregation: str = "none",
        overwrite_with_gradient: bool = False,
        name: str | None = None,
    ) -> Variable:
        """Declare a weight; returns the ``Variable`` (usable in ``call`` through ``kfunc.ops``,
        operators or ``.value``).

        Keras 3's signature: ``add_weight(shape=None, initializer=None, dtype=None, trainable=True,
        autocast=True, regularizer=None, constraint=None, name=None)``, ``shape`` (default ``()``),
        ``initializer`` and ``dtype`` also positional. Keras 2's ``add_weight(name, shape,
        initializer)`` (a name first) keeps working. ``initializer`` defaults to
        ``"glorot_uniform"`` for floating weights and ``"zeros"`` otherwise; ``dtype`` to the layer's
        variable dtype; ``name`` to ``"variable"``, ``"variable_1"``, ... unique within the layer.
        ``autocast``: under a mixed policy ``call`` reads the weight in the compute dtype.
        ``regularizer`` (``x -> penalty``, e.g. ``'l2'``) adds to the training loss while the weight
        is trainable; ``constraint`` (``w -> w'``, e.g. ``'max_norm'``) projects it after each update.
        """
        shape, initializer, dtype, name = _add_weight_arguments(self, args, shape, initializer, dtype, name)
        if overwrite_with_gradient:
            raise LayerConfigError(
                f"{describe_layer(self)}: add_weight(overwrite_with_gradient=True) (float8 training) is not "
                "supported by kfunc; leave it False."
            )
        dtype = jnp.dtype(dtype if dtype is not None else self.dtype)
        if initializer is None:
            initializer = "glorot_uniform" if jnp.issubdtype(dtype, jnp.floating) else "zeros"
        if name is None:
            name = self._unused_weight_name("variable")
        elif any(v.name == name for v in self._own_variables):
            raise LayerConfigError(
                f"{describe_layer(self)} already has a weight named '{name}'; give each weight a distinct "
                "name (or none: unnamed weights are numbered)."
            )
        variable = Variable(
            initializers_lib.get(initializer),
            shape,
            dtype,
            trainable=trainable,
            autocast=autocast,
            name=name,
            owner_name=self.name,
            regularizer=regularizers_lib.get(regularizer),
            constraint=constraints_lib.get(constraint),
            aggregation=aggregation,
        )
        self._own_variables.append(variable)
        return variable

    def add_variable(self, shape=None, initializer=None, dtype=None, trainable: bool = True, autocast: bool = True,
                     regularizer=None, constraint=None, name: str | None = None) -> Variable:
        """Keras 3's alias of ``add_weight`` (the same arguments, keyword or positional)."""
        return self.add_weight(shape=shape, initializer=initializer, dtype=dtype, trainable=trainable,
                               autocast=autocast, regularizer=regularizer, constraint=constraint, name=name)

    def _track_variable(self, variable: Variable) -> None:
        """Adopt a ``Variable`` made directly (``self.w = kfunc.Variable(...)``) as a weight."""
        if any(v is variable for v in self._own_variables):
            return
        if any(v.name == variable.name for v in self._own_variables):
            variable.name = self._unused_weight_name(variable.name)
        if variable.owner_name is None:
            variable.owner_name = self.name
        self._own_variables.append(variable)

    def _unused_weight_name(self, base: str) -> str:
        taken = {v.name for v in self._own_variables}
        if base not in taken:
            return base
        index = 1
        while f"{base}_{index}" in taken:
            index += 1
        return f"{base}_{index}"

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

