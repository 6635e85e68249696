"""Cross-cutting checks over the table of layer cases (``layer_cases.py``).

For a case, from one ``jax.jit`` of the layer's ``apply`` and its gradient: the symbolic output
shape equals the jitted output's shape; jit equals eager; gradients of a scalar of the outputs are
finite (and reach every weight and float input). And the numbers equal Keras 3's (weights copied
with ``set_weights``) or a NumPy reference. By default both run for one case per kfunc.layers
module (each case costs a compile); the slow run (``pytest -m slow``) checks every other case.
"""

from __future__ import annotations

import functools
import inspect
import os
import zlib
from typing import Any, NamedTuple

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from layer_cases import CASES, LayerCase, layer_class_family, layer_module_family, representative_ids  # noqa: E402

import kfunc  # noqa: E402
from kfunc.graph.tensor import is_symbolic  # noqa: E402
from kfunc.core.tree_paths import get_path  # noqa: E402

BATCH = 3
WEIGHT_SCALE = 0.5


def _rng(case: LayerCase, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(case.id.encode()) * 10 + salt)


def _is_integer(dtype) -> bool:
    return np.issubdtype(np.dtype(dtype), np.integer)


def _random_inputs(case: LayerCase, rng: np.random.Generator):
    """Arrays of shape ``(BATCH, *shape)``: one array, or a list for multi-input layers."""
    arrays = []
    for shape in case.shapes:
        full = (BATCH,) + tuple(shape)
        if _is_integer(case.dtype):
            arrays.append(rng.integers(0, case.int_high, size=full).astype(case.dtype))
        else:
            arrays.append(rng.standard_normal(full).astype(case.dtype))
    return arrays if case.multi_input else arrays[0]


def _random_weights(layer, rng: np.random.Generator) -> list[np.ndarray]:
    """Random values for every weight (zero biases and unit gammas would hide mistakes)."""
    values = []
    for variable in layer.weights:
        if "variance" in variable.name:
            value = rng.uniform(0.5, 1.5, variable.shape)
        else:
            value = WEIGHT_SCALE * rng.standard_normal(variable.shape)
        values.append(value.astype(variable.dtype))
    return values


def _leaves(tree) -> list:
    return jax.tree_util.tree_leaves(tree, is_leaf=is_symbolic)


class Prepared(NamedTuple):
    case: LayerCase
    layer: Any
    symbolic_outputs: Any
    weights: list[np.ndarray]
    params: dict
    state: dict
    inputs: Any
    jit_outputs: Any
    jit_state: dict
    grads: Any  # (grads w.r.t. params, grads w.r.t. float inputs or None), or None if it raised
    grad_error: BaseException | None


def _weighted_sum(outputs, cotangents):
    return sum(jnp.sum(o.astype(jnp.float32) * c) for o, c in zip(_leaves(outputs), cotangents, strict=True))


_PREPARED: dict[str, Prepared] = {}


def _prepared(case: LayerCase) -> Prepared:
    """``_prepare(case)``, made once per case and test session."""
    if case.id not in _PREPARED:
        _PREPARED[case.id] = _prepare(case)
    return _PREPARED[case.id]


def _prepare(case: LayerCase) -> Prepared:
    """The case's layer built on ``kfunc.Input`` tensors, random weights and inputs, and, from one
    ``jax.jit`` of ``apply`` and its gradient: the outputs, the new state and the gradients.

    The default run's Keras comparison of a case reuses what its consistency test made (compiling
    costs most of this file's time on small CPUs)."""
    kfunc.utils.clear_session()
    kfunc.utils.set_random_seed(0)
    layer = case.make_kfunc()
    symbolic_inputs = [kfunc.Input(shape=shape, dtype=case.dtype) for shape in case.shapes]
    symbolic_outputs = case.call(layer, symbolic_inputs if case.multi_input else symbolic_inputs[0])
    rng = _rng(case)
    weights = _random_weights(layer, rng)
    layer.set_weights(weights)
    params, state = layer.get_variables()
    inputs = _random_inputs(case, rng)

    def apply(params, state, inputs):
        return case.call(functools.partial(layer.apply, params, state, training=case.training), inputs)

    # The scalar whose gradient test c checks: the outputs weighted by fixed random numbers (a plain
    # sum has zero gradient through a softmax or a training-mode BatchNorm's gamma, which would hide
    # a gradient that does not flow).
    output_structs = jax.eval_shape(apply, params, state, inputs)[0]
    cotangents = [jnp.asarray(rng.standard_normal(s.shape), jnp.float32) for s in _leaves(output_structs)]

    def scalar(params, inputs):
        outputs, new_state = apply(params, state, inputs)
        return _weighted_sum(outputs, cotangents), (outputs, new_state)

    # One compilation gives the jitted outputs and the gradients (compiling costs most of the time
    # on small CPUs). Should the gradient fail to compile, apply is jitted alone and test c reports it.
    argnums = (0,) if _is_integer(case.dtype) else (0, 1)
    try:
        grad_fn = jax.jit(jax.grad(scalar, argnums=argnums, has_aux=True))
        grads, (jit_outputs, jit_state) = grad_fn(params, inputs)
        grads, grad_error = (grads[0], grads[1] if len(grads) > 1 else None), None
    except Exception as error:  # noqa: BLE001 - re-raised by test_gradients_are_finite
        grads, grad_error = None, error
        jit_outputs, jit_state = jax.jit(apply)(params, state, inputs)
    return Prepared(
        case, layer, symbolic_outputs, weights, params, state, inputs,
        jit_outputs, jit_state, grads, grad_error,
    )


# ---------------------------------------------------------------------- the table itself
def test_table_covers_every_layer_class():
    """Every concrete layer class exported by ``kfunc.layers`` is built by some case."""
    wanted = {
        cls
        for name, cls in vars(kfunc.layers).items()
        if inspect.isclass(cls) and issubclass(cls, kfunc.layers.Layer) and not name.startswith("_")
    }
    # The base class, the input layer and the abstract recurrent base are not layers one calls.
    wanted -= {kfunc.layers.Layer, kfunc.layers.InputLayer, kfunc.layers.RNN}
    built = set()
    for case in CASES:
        try:
            layer = case.make_kfunc()
        except Exception:  # noqa: BLE001 - that case's own tests report the error
            continue
        stack = [layer]
        while stack:
            current = stack.pop()
            built.add(type(current))
            stack.extend(current.sublayers)
            if hasattr(current, "forward_layer"):
                stack.append(current.forward_layer)
    missing = sorted(cls.__name__ for cls in wanted - built)
    assert not missing, f"layer classes without a case: {missing}"


# ---------------------------------------------------------------------- a. shapes
def _check_symbolic_shape_matches_jit(prepared: Prepared):
    symbolic, real = prepared.symbolic_outputs, prepared.jit_outputs
    assert jax.tree_util.tree_structure(symbolic) == jax.tree_util.tree_structure(real), (
        f"symbolic output structure {symbolic!r} differs from the real one "
        f"{jax.tree_util.tree_structure(real)}"
    )
    for index, (tensor, array) in enumerate(zip(_leaves(symbolic), _leaves(real), strict=True)):
        assert array.shape[0] == BATCH, f"output {index}: batch axis lost, shape {array.shape}"
        assert tensor.shape == (None,) + tuple(array.shape[1:]), (
            f"output {index}: symbolic shape {tensor.shape}, real shape {array.shape}"
        )
        assert tensor.dtype == array.dtype, (
            f"output {index}: symbolic dtype {tensor.dtype}, real {array.dtype}"
        )


# ---------------------------------------------------------------------- b. jit equals eager
def _assert_trees_close(actual, expected, *, rtol, atol, what):
    actual_leaves, expected_leaves = _leaves(actual), _leaves(expected)
    assert len(actual_leaves) == len(expected_leaves), (
        f"{what}: {len(actual_leaves)} arrays vs {len(expected_leaves)} expected"
    )
    for index, (a, e) in enumerate(zip(actual_leaves, expected_leaves, strict=True)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, f"{what}, array {index}: shape {a.shape}, expected {e.shape}"
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"{what}, array {index}")


def _check_jit_equals_eager(prepared: Prepared):
    p = prepared
    eager_outputs, eager_state = p.case.call(
        functools.partial(p.layer.apply, p.params, p.state, training=p.case.training), p.inputs
    )
    _assert_trees_close(p.jit_outputs, eager_outputs, rtol=1e-6, atol=1e-6, what="jit vs eager apply")
    _assert_trees_close(p.jit_state, eager_state, rtol=1e-6, atol=1e-6, what="jit vs eager new_state")
    if not p.case.training:
        # Inference leaves the state as it was.
        _assert_trees_close(p.jit_state, p.state, rtol=0, atol=0, what="inference new_state")


# ---------------------------------------------------------------------- c. gradients
def _check_gradients_are_finite(prepared: Prepared):
    """Gradients (under jit, as fit() takes them) w.r.t. every weight and float input: finite, and
    not all zero (a weight that never reaches the output would be a wiring bug)."""
    p = prepared
    if p.grad_error is not None:
        raise AssertionError(f"the gradient does not compile: {p.grad_error!r}") from p.grad_error
    grad_params, grad_inputs = p.grads
    assert jax.tree_util.tree_structure(grad_params) == jax.tree_util.tree_structure(p.params)
    flat_params = jax.tree_util.tree_flatten_with_path(grad_params)[0]
    assert len(flat_params) == len([v for v in p.layer.weights if v.trainable])
    for path, g in flat_params:
        name = jax.tree_util.keystr(path)
        assert np.all(np.isfinite(g)), f"gradient of {name} is not finite"
        assert np.any(np.asarray(g) != 0), (
            f"gradient of {name} is zero everywhere: the weight does not reach the output"
        )
    if grad_inputs is not None:
        assert len(_leaves(grad_inputs)) == len(p.case.shapes)
        for index, g in enumerate(_leaves(grad_inputs)):
            assert np.all(np.isfinite(g)), f"gradient of input {index} is not finite"
            assert np.any(np.asarray(g) != 0), f"gradient of input {index} is zero everywhere"


# ---------------------------------------------------------------------- a-c together
# One case per kfunc.layers module by default (each case costs a compile); the slow run checks every case.
_DEFAULT_CONSISTENCY_IDS = representative_ids(CASES, layer_module_family)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=() if c.id in _DEFAULT_CONSISTENCY_IDS else pytest.mark.slow) for c in CASES],
)
def test_shapes_jit_eager_and_gradients_agree(case: LayerCase):
    """Checks a, b and c on one compilation of the case; every failing check is reported."""
    p = _prepared(case)
    failures = []
    for check in (_check_symbolic_shape_matches_jit, _check_jit_equals_eager, _check_gradients_are_finite):
        try:
            check(p)
        except AssertionError as error:
            failures.append(f"{check.__name__.removeprefix('_check_')}: {error}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------- d. numbers vs Keras
def _skip_keras_initializers(keras, keras_layer) -> None:
    """Let the Keras layer start from NumPy zeros instead of its random initializers.

    ``set_weights`` overwrites every weight right after the build; drawing them first would only
    compile Keras's random initializers once per weight shape (about half a second each on 2 CPU
    cores), which would dominate this file's run time. The zeros are an ``Initializer`` because
    MultiHeadAttention copies its initializers with ``from_config`` for its sublayers.
    """

    class NumpyZeros(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return np.zeros(shape, dtype)

    flatten = getattr(keras_layer, "_flatten_layers", None)  # private: without it, only slower
    for layer in flatten(include_self=True, recursive=True) if flatten else []:
        for name, value in list(vars(layer).items()):
            if isinstance(value, keras.initializers.Initializer):
                setattr(layer, name, NumpyZeros())


def _keras_outputs(p: Prepared):
    """The Keras layer (weights copied from kfunc's with ``set_weights``) and its outputs."""
    keras = pytest.importorskip("keras")
    case = p.case
    keras_layer = case.make_keras()
    _skip_keras_initializers(keras, keras_layer)
    keras_inputs = [keras.Input(shape=shape, dtype=case.dtype) for shape in case.shapes]
    case.call(keras_layer, keras_inputs if case.multi_input else keras_inputs[0])
    keras_layer.set_weights(p.weights)
    inputs = [np.asarray(x) for x in p.inputs] if case.multi_input else np.asarray(p.inputs)
    if case.training:
        # Eager, so that Keras updates its moving statistics in place, as one training step would.
        outputs = case.call(keras_layer, inputs, training=True)
    else:
        # Keras's functional call, jitted: one compilation instead of one per operation.
        trainable = [v.value for v in keras_layer.trainable_variables]
        non_trainable = [v.value for v in keras_layer.non_trainable_variables]

        def stateless(trainable, non_trainable, inputs):
            return case.call(functools.partial(keras_layer.stateless_call, trainable, non_trainable), inputs)

        outputs, _ = jax.jit(stateless)(trainable, non_trainable, inputs)
    return keras_layer, jax.tree_util.tree_map(np.asarray, outputs)


# One case per kfunc.layers module by default; the slow run compares every other case.
_DEFAULT_REFERENCE_IDS = representative_ids(CASES, layer_module_family)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=() if c.id in _DEFAULT_REFERENCE_IDS else pytest.mark.slow) for c in CASES],
)
def test_matches_reference(case: LayerCase):
    p = _prepared(case)
    case = p.case
    if case.make_keras is None:
        inputs = [np.asarray(x) for x in p.inputs] if case.multi_input else np.asarray(p.inputs)
        expected = case.reference(inputs)
        _assert_trees_close(
            p.jit_outputs, expected, rtol=case.rtol, atol=case.atol, what="kfunc vs NumPy reference"
        )
        return
    keras_layer, expected = _keras_outputs(p)
    assert len(_leaves(expected)) == len(_leaves(p.jit_outputs)), (
        f"Keras returns {len(_leaves(expected))} arrays, kfunc {len(_leaves(p.jit_outputs))}"
    )
    _assert_trees_close(
        p.jit_outputs, expected, rtol=case.rtol, atol=case.atol, what="kfunc vs Keras outputs"
    )
    if case.training:
        # The moving statistics kfunc returns as new_state equal Keras's after one training call.
        state_paths = [path for v, path in p.layer.variable_paths() if not v.trainable]
        updated = [get_path(p.jit_state, path, p.layer) for path in state_paths]
        keras_updated = [np.asarray(v) for v in keras_layer.non_trainable_weights]
        assert len(updated) == len(keras_updated) > 0
        _assert_trees_close(
            updated, keras_updated, rtol=case.rtol, atol=case.atol, what="moving statistics vs Keras"
        )
        # ... and actually moved (training updated them).
        before = [get_path(p.state, path, p.layer) for path in state_paths]
        assert any(not np.allclose(a, b) for a, b in zip(updated, before, strict=True))
