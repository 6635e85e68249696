"""Adaptive pooling ops and layers against Keras 3 (bins of PyTorch's rule, overlapping when the
output size does not divide the input size)."""

import numpy as np
import pytest

import kfunc
from kfunc import layers, ops

keras = pytest.importorskip("keras")

SHAPES = [  # (input shape with batch, output_size, data_format)
    ((2, 7, 3), (3,), "channels_last"),
    ((2, 3, 7), 4, "channels_first"),
    ((2, 3, 2), 5, "channels_last"),  # more bins than positions
    ((2, 7, 5, 3), (3, 2), "channels_last"),
    ((1, 2, 5, 6, 4), (2, 4, 3), "channels_first"),
]


@pytest.mark.parametrize("name", ["adaptive_average_pool", "adaptive_max_pool"])
@pytest.mark.parametrize("shape,output_size,data_format", SHAPES)
def test_ops_match_keras(name, shape, output_size, data_format):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    ours = getattr(ops, name)(x, output_size, data_format=data_format)
    theirs = getattr(keras.ops, name)(x, output_size, data_format=data_format)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6, atol=1e-7)


def test_symbolic_use_infers_the_shape_and_runs_in_a_model():
    inputs = kfunc.Input((None, 3))  # any length: the output size is fixed
    model = kfunc.Model(inputs, ops.adaptive_max_pool(inputs, 2))
    assert model.output_shape == (None, 2, 3)
    x = np.arange(2 * 5 * 3, dtype="float32").reshape(2, 5, 3)
    np.testing.assert_array_equal(model.predict(x, verbose=0), keras.ops.adaptive_max_pool(x, 2))


def test_layer_config_matches_keras():
    ours, theirs = layers.AdaptiveMaxPooling2D(3), keras.layers.AdaptiveMaxPooling2D(3)
    for key in ("output_size", "data_format"):
        assert ours.get_config()[key] == theirs.get_config()[key]


def test_bad_output_size_is_refused():
    with pytest.raises(ValueError, match=r"output_size must be a positive int or 1 of them, received \(0,\)"):
        ops.adaptive_average_pool(np.ones((1, 4, 2)), (0,))
    with pytest.raises(Exception, match="AdaptiveAveragePooling2D.*output_size"):
        layers.AdaptiveAveragePooling2D((2, 2, 2))
