"""JaxLayer and FlaxLayer: a pure JAX function with its parameters, or a Flax linen module, as a
layer of a kfunc graph (Keras 3's ``keras.layers.JaxLayer`` / ``FlaxLayer``).

``JaxLayer(call_fn, init_fn=None, params=None, state=None, seed=None)``: ``call_fn`` takes, by
these exact names, ``params`` (trainable), ``state`` (non-trainable; then it returns
``(outputs, new_state)``), ``rng`` (a random key in training, ``None`` at inference), ``inputs``
(required: the layer's input, an array or a list of arrays) and ``training``. ``init_fn(rng,
inputs, training)`` (``inputs`` required) returns the initial params (and state, as a tuple, when
``call_fn`` takes ``state``); it is called with arrays of ones shaped like the inputs (unknown sizes
as 1) and ``training=True``. Alternatively ``params`` / ``state`` give the initial values.

Every array leaf of the params (state) pytree becomes a trainable (non-trainable) weight of the
layer, named by its path in the tree (``"params.Dense_0.kernel"``), in the tree's flattening order
(Keras's ``get_weights()`` order), so ``fit`` trains them and ``get_weights``/``set_weights`` move
them; other leaves are kept as they are. Each weight's initializer runs ``init_fn`` with the key
it is given and keeps its own leaf, so ``model.init(key)`` draws new values.

Saving names code: a model file refers to ``call_fn``, ``init_fn`` (and a Flax module) by their
registered names (``kfunc.saving.register``); loading never imports anything.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers.base import Layer

_CALL_ARGUMENTS = ("params", "state", "rng", "inputs", "training")
_INIT_ARGUMENTS = ("rng", "inputs", "training")


def _arguments(fn, what: str, allowed: tuple[str, ...], cls: str) -> list[str]:
    """The parameter names of ``fn``, checked against ``allowed`` (``inputs`` required)."""
    if not callable(fn):
        raise LayerConfigError(f"{cls}: {what} must be a function, received {type(fn).__name__} {fn!r:.60}.")
    names = list(inspect.signature(fn).parameters)
    unknown = [n for n in names if n not in allowed]
    if unknown or "inputs" not in names:
        raise LayerConfigError(
            f"{cls}: {what} must take arguments named from {list(allowed)}, 'inputs' among them, but its "
            f"arguments are {names}; wrap it in a function with those argument names."
        )
    return names


def _is_weight_leaf(leaf) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct, bool, int, float))


def _leaf_name(path) -> str:
    parts = []
    for key in path:
        for attribute in ("key", "idx", "name"):
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
        else:
            parts.append(str(key))
    return ".".join(parts) or "value"


class _TreeLeaf:
    """The initializer of one weight: leaf ``index`` of ``tree_fn(key)`` (``init_fn``'s params or
    state, or the values given to the layer)."""

    def __init__(self, tree_fn, index: int):
        self.tree_fn, self.index = tree_fn, index

    def __call__(self, key, shape, dtype):
        leaf = jax.tree_util.tree_leaves(self.tree_fn(key))[self.index]
        return jnp.asarray(leaf, dtype).reshape(shape)


class JaxLayer(Layer):
    """A pure JAX function with its params as a layer; see the module docstring."""

    def __init__(self, call_fn, init_fn=None, params=None, state=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.call_fn, self.init_fn, self.seed = call_fn, init_fn, seed
        self.call_fn_arguments = _arguments(call_fn, "call_fn", _CALL_ARGUMENTS, cls)
        if init_fn is not None:
            self.init_fn_arguments = _arguments(init_fn, "init_fn", _INIT_ARGUMENTS, cls)
        self.has_state = "state" in self.call_fn_arguments
        needs_weights = "params" in self.call_fn_arguments or self.has_state
        if needs_weights and init_fn is None and params is None and state is None:
            raise LayerConfigError(
                f"{cls}: call_fn takes params or state, so give init_fn, or params (and state) to start from."
            )
        self._params_tree = self._state_tree = None
        if params is not None or state is not None:
            given = (params, state)
            self._add_tree_weights(lambda key: given, given)
            self.built = True

    @property
    def uses_key(self) -> bool:
        return "rng" in self.call_fn_arguments

    @property
    def params(self):
        """The params pytree with the layer's weights (``Variable``) at its array leaves."""
        return self._params_tree

    @property
    def state(self):
        return self._state_tree

    # ------------------------------------------------------------------ weights
    def _add_tree_weights(self, trees_fn, example) -> None:
        """Weights for every array leaf of ``example = (params, state)``; ``trees_fn(key)`` gives
        the values of both trees for a key."""
        built = []
        for position, (tree, trainable) in enumerate(zip(example, (True, False), strict=True)):
            if tree is None:
                built.append(None)
                continue
            leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
            leaves = []
            for index, (path, leaf) in enumerate(leaves_with_paths):
                if not _is_weight_leaf(leaf):
                    leaves.append(leaf)
                    continue
                dtype = np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype))
                initializer = _TreeLeaf(lambda key, p=position: trees_fn(key)[p], index)
                leaves.append(self.add_weight(
                    _leaf_name(path), getattr(leaf, "shape", np.shape(leaf)), initializer, trainable=trainable,
                    dtype=None if np.issubdtype(dtype, np.floating) else dtype,
                ))
            built.append(jax.tree_util.tree_unflatten(treedef, leaves))
        self._params_tree, self._state_tree = built

    def _init_rng(self, key):
        return key

    def _initial_trees(self, key, inputs):
        """``(params, state)`` from ``init_fn``."""
        arguments = {"rng": self._init_rng(key), "inputs": inputs, "training": True}
        result = self.init_fn(*[arguments[name] for name in self.init_fn_arguments])
        if self.has_state:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise LayerConfigError(
                    f"{describe_layer(self)}: call_fn takes state, so init_fn must return (params, state), "
                    f"but it returned {type(result).__name__}."
                )
            return result
        return result, None

    def build(self, input_shape):
        if self.init_fn is None:
            return
        is_shape = lambda s: isinstance(s, tuple) and all(d is None or isinstance(d, int) for d in s)
        inputs = jax.tree_util.tree_map(lambda s: jnp.ones([1 if d is None else d for d in s]), input_shape,
                                        is_leaf=is_shape)

        def trees(key):
            return self._initial_trees(key, inputs)

        self._add_tree_weights(trees, jax.eval_shape(trees, jax.random.key(0)))

    # ------------------------------------------------------------------ calling
    def _call_rng(self, training, key):
        if not training:
            return None
        if key is None:
            raise LayerConfigError(
                f"{describe_layer(self)}: call_fn takes rng, so training needs a random key: pass "
                "key=jax.random.key(...) to apply(), or use fit(), which provides one."
            )
        return key

    def call(self, inputs, training=False, key=None):
        if key is not None and self.seed is not None:
            key = jax.random.fold_in(key, self.seed)
        values = lambda tree: jax.tree_util.tree_map(
            lambda leaf: leaf.value if hasattr(leaf, "assign") else leaf, tree, is_leaf=lambda x: hasattr(x, "assign")
        )
        arguments = {"params": values(self._params_tree), "state": values(self._state_tree), "inputs": inputs,
                     "training": training}
        if "rng" in self.call_fn_arguments:
            arguments["rng"] = self._call_rng(training, key)
        result = self.call_fn(*[arguments[name] for name in self.call_fn_arguments])
        if not self.has_state:
            return result
        outputs, new_state = result
        self._assign_state(new_state)
        return outputs

    def _assign_state(self, new_state) -> None:
        variables = jax.tree_util.tree_leaves(self._state_tree, is_leaf=lambda x: hasattr(x, "assign"))
        variables = [v for v in variables if hasattr(v, "assign")]
        values = jax.tree_util.tree_leaves(new_state)
        if len(values) != len(variables):
            raise LayerInputError(
                f"{describe_layer(self)}: call_fn returned a state of {len(values)} arrays, but the state it "
                f"started from has {len(variables)}; return the new state in the structure of the old one."
            )
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)

    def get_config(self):
        return super().get_config() | {"call_fn": self.call_fn, "init_fn": self.init_fn, "seed": self.seed}


class FlaxLayer(JaxLayer):
    """A Flax linen ``module`` as a layer (``method``: the method to call, default ``__call__``;
    ``variables``: initial variables, else ``module.init`` at build). The ``params`` collection is
    trainable; every other collection (``batch_stats`` ...) is non-trainable state, updated by the
    call. Training passes ``rngs={"dropout": key}``; the method's ``training`` argument, if any,
    receives the mode."""

    def __init__(self, module, method=None, variables=None, **kwargs):
        try:
            from flax.linen import DenyList
        except ImportError as error:
            raise ImportError(
                "FlaxLayer needs Flax, which is not installed: pip install flax (or pip install 'kfunc[flax]')."
            ) from error
        self.module, self.method = module, method
        mutable = DenyList(["params"])
        target = getattr(module, method) if isinstance(method, str) else (method or module.__call__)
        takes_training = "training" in inspect.signature(target).parameters

        def call_fn(params, state, rng, inputs, training):
            extra = {"training": training} if takes_training else {}
            return module.apply(_merge(params, state), inputs, rngs=rng, method=method, mutable=mutable, **extra)

        def init_fn(rng, inputs, training):
            extra = {"training": training} if takes_training else {}
            return _split(module.init(rng, inputs, method=method, **extra))

        params, state = _split(variables) if variables is not None else (None, None)
        super().__init__(call_fn, init_fn=init_fn, params=params, state=state, **kwargs)

    @property
    def uses_key(self) -> bool:
        return True

    def _init_rng(self, key):
        return {"params": jax.random.fold_in(key, 0), "dropout": jax.random.fold_in(key, 1)}

    def _call_rng(self, training, key):
        return {"dropout": key} if training and key is not None else {}

    def get_config(self):
        config = super().get_config()
        for name in ("call_fn", "init_fn"):
            config.pop(name)
        method = self.method
        if getattr(method, "__self__", None) is self.module:
            method = method.__name__  # a bound method of the module is saved by name, as Keras does
        return config | {"module": self.module, "method": method}


def _split(variables):
    """Flax variables -> ``(params, state)``: the ``params`` collection, and the others."""
    variables = dict(variables)
    params = {"params": variables.pop("params")} if "params" in variables else {}
    return params, variables


def _merge(params, state):
    return {**(params or {}), **(state or {})}
