"""kfunc.activations: every Keras 3 activation as a function attribute, compared with Keras 3, and
get / serialize / deserialize."""

import numpy as np
import pytest

import kfunc
from kfunc import activations

keras = pytest.importorskip("keras")

NOT_FUNCTIONS = {"get", "serialize", "deserialize"}
KERAS_ACTIVATIONS = sorted(n for n in dir(keras.activations) if not n.startswith("_") and n not in NOT_FUNCTIONS)

X = np.linspace(-7.0, 7.0, 48, dtype="float32").reshape(4, 12)

# Arguments beyond x that exercise each activation's options (Keras 3's names).
VARIANTS = {
    "relu": [{}, {"negative_slope": 0.1}, {"max_value": 6.0}, {"threshold": 1.5},
             {"negative_slope": 0.1, "max_value": 3.0, "threshold": -0.5}, {"max_value": 6}],
    "leaky_relu": [{}, {"negative_slope": 0.05}],
    "elu": [{}, {"alpha": 0.5}],
    "celu": [{}, {"alpha": 2.0}],
    "gelu": [{}, {"approximate": True}],
    "glu": [{}, {"axis": 0}],
    "softmax": [{}, {"axis": 0}],
    "log_softmax": [{}, {"axis": 0}],
    "sparsemax": [{}, {"axis": 0}],
    "squareplus": [{}, {"b": 1}],
    "hard_shrink": [{}, {"threshold": 2.0}],
    "soft_shrink": [{}, {"threshold": 2.0}],
    "threshold": [{"threshold": 0.5, "default_value": -1.0}],
}


def test_every_keras_activation_is_an_attribute():
    missing = [n for n in KERAS_ACTIVATIONS if not callable(getattr(activations, n, None))]
    assert missing == []


@pytest.mark.parametrize("name", [n for n in KERAS_ACTIVATIONS if n != "sparsemax"])
def test_activation_matches_keras(name):
    for kwargs in VARIANTS.get(name, [{}]):
        ours = np.asarray(getattr(activations, name)(X, **kwargs))
        theirs = np.asarray(getattr(keras.activations, name)(X, **kwargs))
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (name, kwargs)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=f"{name}{kwargs}")


def _sparsemax_reference(row: np.ndarray) -> np.ndarray:
    """The simplex projection by its definition: tau with sum(max(row - tau, 0)) == 1, by bisection."""
    low, high = row.min() - 1.0, row.max()
    for _ in range(200):
        tau = (low + high) / 2
        low, high = (tau, high) if np.maximum(row - tau, 0).sum() > 1 else (low, tau)
    return np.maximum(row - (low + high) / 2, 0)


def test_sparsemax_is_the_simplex_projection():
    # Keras 3.15's sparsemax sums the cumulative sums of the support to find its threshold, so its
    # rows do not sum to 1 once two or more entries are kept ([0.5, 0.6, -1] -> [0.15, 0.25, 0]);
    # kfunc computes the projection of the paper (-> [0.45, 0.55, 0]). Where one entry is kept
    # both agree.
    for axis in (-1, 0):
        ours = np.moveaxis(np.asarray(activations.sparsemax(X, axis=axis)), axis, -1)
        expected = np.stack([_sparsemax_reference(r) for r in np.moveaxis(X, axis, -1).astype("float64")])
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    one_kept = np.array([[5.0, 0.1, -2.0], [0.0, 3.0, 1.0]], "float32")
    np.testing.assert_allclose(activations.sparsemax(one_kept), keras.activations.sparsemax(one_kept), atol=1e-6)
    np.testing.assert_allclose(activations.sparsemax(np.array([[0.5, 0.6, -1.0]], "float32")), [[0.45, 0.55, 0.0]],
                               rtol=1e-5)


def test_sparsemax_rows_sum_to_one_with_exact_zeros():
    out = np.asarray(activations.sparsemax(X))
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-6)
    assert (out == 0).any()


def test_lookup_by_name_and_aliases():
    assert activations.get("relu") is activations.relu
    assert activations.get("swish") is activations.silu
    assert activations.get("hard_swish") is activations.hard_silu
    assert activations.get(None) is activations.linear
    fn = lambda x: x * 2
    assert activations.get(fn) is fn
    for name in KERAS_ACTIVATIONS:
        assert activations.get(name) is getattr(activations, name)


def test_serialize_round_trip_matches_keras_names():
    for name in KERAS_ACTIVATIONS:
        fn = getattr(activations, name)
        assert activations.serialize(fn) == keras.activations.serialize(getattr(keras.activations, name))
        assert activations.deserialize(activations.serialize(fn)) is fn
    # Keras 3's dict form of a built-in function.
    assert activations.deserialize({"module": "keras.activations", "class_name": "function", "config": "gelu",
                                    "registered_name": None}) is activations.gelu
    assert activations.get({"class_name": "function", "config": "tanh"}) is activations.tanh


def test_custom_activation_deserializes_through_custom_objects():
    def doubled(x):
        return 2 * x

    assert activations.deserialize("doubled", custom_objects={"doubled": doubled}) is doubled


def test_errors_name_what_was_expected():
    with pytest.raises(ValueError, match="Unknown activation 'relux'; expected one of"):
        activations.get("relux")
    with pytest.raises(ValueError, match="is not a built-in activation; register it with"):
        activations.serialize(lambda x: x)
    with pytest.raises(ValueError, match="expects a name or Keras's"):
        activations.deserialize(3)
    with pytest.raises(ValueError, match="Unknown activation 'os.system'"):
        activations.deserialize("os.system")
    with pytest.raises(ValueError, match="axis 0 of the input must have an even size, received shape"):
        activations.glu(np.zeros((3, 2), "float32"), axis=0)


def test_layers_take_the_new_functions_and_save_their_names():
    inputs = kfunc.Input((4,))
    layer = kfunc.layers.Dense(3, activation=activations.gelu)
    kfunc.Model(inputs, layer(inputs))
    assert layer.get_config()["activation"] == "gelu"
    assert kfunc.layers.Dense(2, activation="sparsemax").activation is activations.sparsemax


def test_low_precision_softmax_keeps_its_dtype():
    out = activations.softmax(X.astype("bfloat16"))
    assert str(out.dtype) == "bfloat16"
    np.testing.assert_allclose(np.asarray(out, "float32").sum(-1), 1.0, rtol=1e-2)
