"""``kfunc.ops`` against ``keras.ops`` (Keras 3, JAX backend): the same call on the same inputs
gives the same values (rtol 1e-5) and the same dtype; every kfunc op has Keras's name and
argument names; Variables are read as their value. The default run compares one case per op
name (every op once); the slow run (``pytest -m slow``) the other cases (dtypes, arguments)."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from op_cases import CASES, T3, F, V, one_case_per_op_module, op_of

import kfunc
from kfunc import ops
from kfunc.errors import SymbolicTensorError


def _leaves(result):
    return jax.tree_util.tree_leaves(result, is_leaf=lambda x: isinstance(x, (int, float, bool)))


def assert_same(ours, theirs, rtol=1e-5):
    ours, theirs = _leaves(ours), _leaves(theirs)
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        mine_array, reference_array = np.asarray(mine), np.asarray(reference)
        assert mine_array.dtype == reference_array.dtype, (mine_array.dtype, reference_array.dtype)
        assert mine_array.shape == reference_array.shape
        if mine_array.dtype.kind in "fc":
            np.testing.assert_allclose(mine_array, reference_array, rtol=rtol, atol=1e-6)
        else:
            np.testing.assert_array_equal(mine_array, reference_array)


_DEFAULT_IDS = one_case_per_op_module(CASES, ops)


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=case.id, marks=() if case.id in _DEFAULT_IDS else pytest.mark.slow) for case in CASES],
)
def test_op_matches_keras(case):
    ours = op_of(ops, case.name)(*case.args, **case.kwargs)
    theirs = op_of(keras.ops, case.name)(*case.args, **case.kwargs)
    assert_same(ours, theirs)


CONTROL_FLOW = [
    ("cond", lambda o: o.cond(jnp.asarray(F.sum() > 0), lambda: F * 2, lambda: -F)),
    ("switch", lambda o: o.switch(1, [lambda x: x + 1, lambda x: x * 3], F)),
    ("scan", lambda o: o.scan(lambda c, x: (c + x, c * x), jnp.zeros(3), T3[0].T)),
    ("scan-reverse", lambda o: o.scan(lambda c, x: (c + x, c), jnp.zeros(()), V, reverse=True)),
    ("associative_scan", lambda o: o.associative_scan(lambda a, b: a + b, T3, axis=1)),
    ("map", lambda o: o.map(lambda x: x.sum(), T3)),
    ("fori_loop", lambda o: o.fori_loop(0, 4, lambda i, x: x * 2 + i, F)),
    ("while_loop", lambda o: o.while_loop(lambda x, n: n < 5, lambda x, n: (x * 2, n + 1), (F, 0))),
    ("while_loop-single", lambda o: o.while_loop(lambda x: x.sum() < 50, lambda x: x + 1, jnp.abs(F[0]))),
    ("while_loop-max", lambda o: o.while_loop(lambda x: True, lambda x: x + 1, jnp.zeros(()), maximum_iterations=3)),
    ("vectorized_map", lambda o: o.vectorized_map(lambda x: x @ x, T3[0])),
]


@pytest.mark.parametrize("call", [c for _, c in CONTROL_FLOW], ids=[n for n, _ in CONTROL_FLOW])
def test_control_flow_matches_keras(call):
    assert_same(call(ops), call(keras.ops))


def test_names_and_arguments_are_keras():
    names = [n for n in ops.OPERATIONS if n != "image.resize"]
    missing = [n for n in names if not hasattr(keras.ops, n)]
    assert not missing, f"not Keras 3 op names: {missing}"
    for name in [*names, "image.resize"]:
        mine = list(inspect.signature(op_of(ops, name)).parameters)
        theirs = list(inspect.signature(op_of(keras.ops, name)).parameters)
        assert mine == theirs, (name, mine, theirs)
    for namespace in ("nn", "numpy", "linalg", "image"):
        extra = [n for n in getattr(ops, namespace).__all__ if not hasattr(getattr(keras.ops, namespace), n)]
        assert not extra, (namespace, extra)


def test_static_answers_and_conversions():
    x = np.ones((2, 3), "float32")
    assert ops.shape(x) == (2, 3) and ops.ndim(x) == 2 and ops.dtype(x) == keras.ops.dtype(x) == "float32"
    assert ops.is_tensor(jnp.ones(2)) and not ops.is_tensor([1.0])
    converted = ops.convert_to_numpy(jnp.arange(3))
    assert isinstance(converted, np.ndarray) and converted.tolist() == [0, 1, 2]
    symbolic = kfunc.Input((3,), name="features")
    assert ops.shape(symbolic) == keras.ops.shape(keras.Input((3,))) == (None, 3)
    assert ops.ndim(symbolic) == 2 and ops.dtype(symbolic) == "float32"
    assert ops.convert_to_tensor(symbolic) is symbolic and not ops.is_tensor(symbolic)
    with pytest.raises(SymbolicTensorError, match=r"convert_to_numpy cannot convert symbolic tensor 'features'.*predict"):
        ops.convert_to_numpy(symbolic)


def test_variables_are_read_as_their_value():
    layer = kfunc.layers.Dense(2)
    layer(np.ones((1, 3), "float32"))
    kernel = layer.kernel
    x = np.ones((4, 3), "float32")
    np.testing.assert_allclose(ops.matmul(x, kernel), x @ np.asarray(kernel), rtol=1e-6)
    np.testing.assert_allclose(ops.concatenate([kernel, kernel], axis=0), np.concatenate([kernel, kernel]), rtol=1e-6)



class Linear(kfunc.layers.Layer):
    """Keras 3 style: the weight goes straight into ops."""

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1], 2), "ones")

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + ops.sum(self.w)


def test_variables_inside_a_pure_call_are_the_traced_parameters():
    layer = Linear()
    x = np.arange(6, dtype="float32").reshape(2, 3)
    layer(x)
    params, state = layer.get_variables()

    def loss(params):
        return ops.sum(layer.apply(params, state, x)[0])

    gradient = jax.jit(jax.grad(loss))(params)
    # d/dw of sum(x @ w) + 4 * sum(w): column sums of x, plus 4 for every entry.
    expected = np.repeat(x.sum(0)[:, None], 2, axis=1) + 4
    np.testing.assert_allclose(gradient["w"], expected, rtol=1e-6)


def test_pool_strides_default_to_the_pool_size():
    # Keras 3.15's JAX pooling fails when strides is None; its documented default is pool_size.
    images = np.arange(2 * 4 * 6 * 1, dtype="float32").reshape(2, 4, 6, 1)
    for pool in (ops.max_pool, ops.average_pool):
        np.testing.assert_array_equal(pool(images, (2, 3)), pool(images, (2, 3), strides=(2, 3)))
    np.testing.assert_array_equal(ops.max_pool(images, 2)[0, :, :, 0], [[7, 9, 11], [19, 21, 23]])


def test_op_errors_name_the_op_and_the_fix():
    with pytest.raises(ValueError, match=r"segment_sum needs num_segments"):
        ops.segment_sum(np.ones(3), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"image.resize: interpolation must be one of"):
        ops.image.resize(np.ones((4, 4, 1)), (2, 2), interpolation="area")
    with pytest.raises(ValueError, match=r"conv: padding must be 'valid' or 'same', received 'full'"):
        ops.conv(np.ones((1, 4, 1)), np.ones((2, 1, 1)), padding="full")
    with pytest.raises(ValueError, match=r"categorical_crossentropy: target and output must have the same shape"):
        ops.categorical_crossentropy(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"where needs x1 and x2"):
        ops.where(np.ones(3) > 0)
    with pytest.raises(ValueError, match=r"multi_hot needs num_classes"):
        ops.multi_hot(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"cholesky: the decomposition failed"):
        ops.cholesky(-np.eye(2, dtype="float32"))
