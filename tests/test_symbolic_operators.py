"""Python operators and indexing on symbolic tensors (Keras 3's KerasTensor behaviour): each
records an op node; models built with them match Keras 3 and save and load; what a symbolic
tensor cannot do is refused with a message that says what to do instead."""

import numpy as np
import pytest

import kfunc
from kfunc import ops
from kfunc.errors import SymbolicTensorError
from kfunc.graph.tensor import SymbolicTensor

keras = pytest.importorskip("keras")

rng = np.random.default_rng(5)
A = rng.normal(size=(4, 3)).astype("float32")
B = rng.uniform(0.5, 2.0, size=(4, 3)).astype("float32")


def arithmetic(ops, a, b):
    """The same expression for kfunc and Keras symbolic tensors (``ops``: ``kfunc.ops`` or
    ``keras.ops``): every operator Keras 3 defines."""
    total = (a + b) * 2.0 - b / 3.0 + 1.0 / b - 2 ** (a * 0.1) + a**2 - (-a) + abs(a) + (1.0 - a) * b
    total = total + (a // b) + (a % b) + (3.0 // b) + (5.0 % b) + round(a * 10) / 10
    compared = ops.cast((a < b) & (a >= -1.0) | ~(b > 1.5) ^ (a <= 0.0), "float32")
    product = a @ ops.transpose(b) @ b
    sliced = a[:, 1:] + a[:, ::2] + a[..., -2:] + a[:, None, 0] + a[1:3, 0:2].reshape((1, -1))[:, :2]
    return [total, compared, product, sliced, (a != b) | (a > b), a[:, 0]]


def test_operators_build_the_graph_keras_builds():
    a, b = kfunc.Input((3,), batch_size=4), kfunc.Input((3,), batch_size=4)
    ka, kb = keras.Input((3,), batch_size=4), keras.Input((3,), batch_size=4)
    ours, theirs = arithmetic(ops, a, b), arithmetic(keras.ops, ka, kb)
    assert [(t.shape, t.dtype.name) for t in ours] == [(tuple(t.shape), t.dtype) for t in theirs]
    model = kfunc.Model([a, b], ours)
    reference = keras.Model([ka, kb], theirs).predict([A, B], verbose=0)
    for mine, expected in zip(model([A, B]), reference, strict=True):
        np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-6)


def test_reflected_operators_with_numbers_and_numpy_on_the_left():
    x = kfunc.Input((3,))
    results = [2 + x, 2 - x, 2 * x, 2 / x, 2 // x, 2 % x, 2**x, np.float32(2) * x, np.ones(3, "float32") - x,
               np.ones((3, 2), "float32").T @ x[0:1, :, None][0]]
    model = kfunc.Model(x, results)
    outputs = model.predict(B, verbose=0)
    expected = [2 + B, 2 - B, 2 * B, 2 / B, 2 // B, 2 % B, 2**B, 2 * B, 1 - B, np.ones((2, 3)) @ B[0][:, None]]
    for mine, reference in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-5)


@pytest.mark.parametrize(
    "key, shape",
    [
        ((slice(None), 0), (4, 5)),
        (1, (3, 5)),
        (-1, (3, 5)),
        ((Ellipsis, 1), (4, 3)),
        ((slice(None), None, slice(1, None, 2)), (4, 1, 1, 5)),
        ((slice(None, None, -1), Ellipsis, slice(None, 2)), (4, 3, 2)),
        ((0, None, Ellipsis, None), (1, 3, 5, 1)),
        ((slice(1, 3), [0, 2]), (2, 2, 5)),
    ],
    ids=["column", "int", "negative", "ellipsis", "newaxis-stride", "reverse", "newaxes", "fancy"],
)
def test_indexing_matches_numpy_and_saves(key, shape, tmp_path):
    data = rng.normal(size=(4, 3, 5)).astype("float32")
    x = kfunc.Input(batch_shape=(4, 3, 5))
    y = x[key]
    assert y.shape == shape == data[key].shape
    model = kfunc.Model(x, y)
    np.testing.assert_array_equal(model(data), data[key])
    model.save(tmp_path / "indexing.keras")
    np.testing.assert_array_equal(kfunc.models.load_model(tmp_path / "indexing.keras")(data), data[key])


def test_a_symbolic_index():
    x = kfunc.Input(batch_shape=(4, 3))
    rows = kfunc.Input(batch_shape=(2,), dtype="int32")
    model = kfunc.Model([x, rows], x[rows])
    np.testing.assert_array_equal(model([A, np.array([3, 1], "int32")]), A[[3, 1]])


def test_shape_dtype_ndim_and_keras_tensor_methods():
    x = kfunc.Input((6,), dtype="float32")
    assert (x.shape, x.dtype, x.ndim) == ((None, 6), np.dtype("float32"), 2)
    reshaped = x.reshape((-1, 2, 3))
    assert reshaped.shape == (None, 2, 3) and reshaped.squeeze().shape == (None, 2, 3)
    assert x[:, :1].squeeze(axis=-1).shape == (None,)
    assert +x is x and isinstance(-x, SymbolicTensor) and isinstance(abs(x), SymbolicTensor)
    assert (x < 0).dtype == np.dtype(bool) and (x > 0).layer.operation_name == "greater"


def test_the_guides_equality_check_and_identity_semantics():
    inputs = kfunc.Input((4,))
    layer = kfunc.layers.Dense(2)
    encoded = layer(inputs)
    assert layer.output == encoded  # the classic guide's check
    assert bool(layer.output != encoded) is False
    other = kfunc.layers.Dense(2)(inputs)
    equal = encoded == other
    assert isinstance(equal, SymbolicTensor) and equal.layer.operation_name == "equal"
    with pytest.raises(SymbolicTensorError, match=r"truth value of symbolic tensor 'equal_1' is unknown.*use `is`"):
        bool(equal)
    # Hashing stays by identity, so tensors key dicts and sets; comparisons with non-tensors are
    # plain Python (False), not graph nodes.
    assert {encoded: 1, other: 2}[other] == 2 and len({encoded, other, encoded}) == 2
    assert encoded in [encoded] and (encoded == None) is False and (encoded != "a") is True
    with pytest.raises(TypeError):
        encoded + "a"


@pytest.mark.parametrize(
    "refused, match",
    [
        (bool, r"truth value of symbolic tensor 'features' is unknown.*kfunc.ops.where or kfunc.ops.cond"),
        (iter, r"'features' cannot be iterated over.*x\[:, 0\].*kfunc.ops.unstack"),
        (len, r"len\(\) of symbolic tensor 'features' is not defined; use its .shape"),
        (np.asarray, r"'features' cannot be converted to a NumPy array.*kfunc.ops functions and Python operators"),
        (lambda x: np.ones(3) + np.asarray(x), r"cannot be converted to a NumPy array"),
        (int, r"'features' has no value to convert to an int.*kfunc.ops.cast"),
        (float, r"'features' has no value to convert to a float"),
        (lambda x: range(x), r"'features' has no value to convert to an int"),
    ],
    ids=["bool", "iter", "len", "array", "numpy", "int", "float", "index"],
)
def test_refusals_say_what_to_do(refused, match):
    x = kfunc.Input((3,), name="features")
    with pytest.raises(SymbolicTensorError, match=match):
        refused(x)


def test_jax_conversion_is_refused_with_the_ops_advice():
    import jax.numpy as jnp

    x = kfunc.Input((3,), name="features")
    with pytest.raises(SymbolicTensorError, match=r"'features' cannot be used in a jax.numpy function.*kfunc.ops"):
        jnp.asarray(x)
