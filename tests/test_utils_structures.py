"""kfunc.utils' structure helpers against Keras 3's."""

import numpy as np
import pytest

import kfunc
from kfunc import layers, utils
from kfunc.errors import ArgumentError, GraphError

keras = pytest.importorskip("keras")

X, Y, W = np.ones((2, 3)), np.zeros((2,)), np.full((2,), 0.5)


@pytest.mark.parametrize("args", [(X,), ([X, X],), (X, Y), (X, Y, W), ((X, X), Y), (X, None, W)])
def test_pack_matches_keras(args):
    ours, theirs = utils.pack_x_y_sample_weight(*args), keras.utils.pack_x_y_sample_weight(*args)
    assert type(ours) is type(theirs)
    assert len(ours) == len(theirs) if isinstance(ours, tuple) else ours is theirs


@pytest.mark.parametrize("data", [X, (X,), [X, Y], (X, Y), (X, Y, W)])
def test_unpack_matches_keras(data):
    ours, theirs = utils.unpack_x_y_sample_weight(data), keras.utils.unpack_x_y_sample_weight(data)
    assert [o is t for o, t in zip(ours, theirs, strict=True)] == [True, True, True]


def test_unpack_refuses_four_items():
    with pytest.raises(ArgumentError, match="received a tuple of 4 items"):
        utils.unpack_x_y_sample_weight((X, Y, W, W))


def _graph(lib):
    a, b = lib.Input((2,), name="a"), lib.Input((2,), name="b")
    hidden = lib.layers.Dense(2)(a)
    return a, b, lib.layers.Add()([b, hidden, lib.layers.Dense(2)(hidden)])


def test_get_source_inputs_matches_keras_order():
    ours, theirs = _graph(kfunc), _graph(keras)
    assert [t.name for t in utils.get_source_inputs(ours[2])] == ["b", "a"]
    assert [t.name for t in keras.utils.get_source_inputs(theirs[2])] == ["b", "a"]
    assert utils.get_source_inputs(ours[0]) == [ours[0]]
    with pytest.raises(GraphError, match="expects a symbolic tensor"):
        utils.get_source_inputs(X)
