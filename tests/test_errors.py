"""Build-time errors: one clear sentence naming the layer, the input, expected vs received, the fix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kfunc.errors import (
    LayerConfigError,
    LayerInputError,
    LayerInputTypeError,
    SymbolicTensorError,
    WeightsError,
)
from kfunc.layers import (
    Add,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Input,
    add,
    concatenate,
    subtract,
)
from kfunc.models import Model


def test_dense_reused_on_a_different_width():
    dense = Dense(4, name="proj")
    dense(Input(shape=(32,)))
    with pytest.raises(
        LayerInputError,
        match=r"Layer 'proj' \(Dense\): input 0 must have size 32 on axis -1 .*received shape \(None, 16\)\. "
        r"A Dense kernel is \(32, 4\): use a new Dense layer",
    ):
        dense(Input(shape=(16,)))


def test_conv_reused_on_other_channels():
    conv = Conv2D(8, 3, name="c")
    conv(Input(shape=(8, 8, 3)))
    with pytest.raises(LayerInputError, match=r"Layer 'c' \(Conv2D\): input 0 must have size 3 on axis -1.*\(None, 8, 8, 4\)"):
        conv(Input(shape=(8, 8, 4)))


def test_concatenate_mismatch_lists_all_shapes_and_axis():
    a, b, c = Input(shape=(4, 5)), Input(shape=(4, 5)), Input(shape=(3, 5))
    with pytest.raises(
        LayerInputError,
        match=r"Layer 'concatenate' \(Concatenate\) joins along axis -1.*received shapes "
        r"\[\(None, 4, 5\), \(None, 4, 5\), \(None, 3, 5\)\]",
    ):
        concatenate([a, b, c])


def test_add_mismatch_lists_all_shapes():
    with pytest.raises(LayerInputError, match=r"Layer 'add' \(Add\) needs inputs of the same shape.*\[\(None, 3\), \(None, 4\)\]"):
        add([Input(shape=(3,)), Input(shape=(4,))])


def test_merge_needs_a_list_of_at_least_two():
    a = Input(shape=(3,))
    with pytest.raises(LayerInputError, match=r"Layer 'add' \(Add\) needs at least 2 inputs, but received 1"):
        add([a])
    with pytest.raises(LayerInputTypeError, match=r"Layer 'concatenate' \(Concatenate\) must be called on a list of tensors"):
        Concatenate()(a)
    with pytest.raises(LayerInputError, match=r"Layer 'subtract' \(Subtract\) needs exactly 2 inputs, but received 3"):
        subtract([a, a, a])


def test_float_into_embedding():
    """Float ids are cast as in Keras 3 (tests/test_layers_keras3_a.py); a fractional one is refused."""
    Embedding(100, 8)(Input(shape=(10,)))
    with pytest.raises(
        LayerInputError,
        match=r"Layer 'embedding_1' \(Embedding\): ids must be whole numbers, but the float input holds 0.5",
    ):
        Embedding(100, 8)(np.array([[0.5, 1.0]], np.float32))


def test_embedding_input_length_checked():
    with pytest.raises(LayerInputError, match=r"must have size 10 on axis 1.*\(None, 12\)"):
        Embedding(100, 8, input_length=10)(Input(shape=(12,), dtype="int32"))


def test_non_tensor_passed_to_a_layer():
    with pytest.raises(LayerInputTypeError, match=r"Layer 'dense' \(Dense\) expects input 0 to be .*received int 5"):
        Dense(3)(5)
    a = Input(shape=(3,))
    with pytest.raises(LayerInputTypeError, match=r"Layer 'add' \(Add\) expects input 1 to be a symbolic tensor.*ndarray of shape \(2, 3\)"):
        Add()([a, np.zeros((2, 3))])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape": 784}, r"received the int 784; write shape=\(784,\)"),
        ({"shape": (0, 3)}, r"size 0 at axis 0 is not a positive integer"),
        ({"shape": (-1,)}, r"size -1 at axis 0 is not a positive integer"),
        ({"shape": (2.5,)}, r"size 2.5 at axis 0"),
        ({"shape": "abc"}, r"must be a tuple of sizes"),
        ({}, r"Input needs a shape"),
        ({"shape": (3,), "dtype": "string"}, r"dtype 'string' is not a numeric dtype"),
        ({"shape": (3,), "dtype": "complex64"}, r"dtype 'complex64' is not a numeric dtype"),
        ({"shape": (3,), "batch_size": 0}, r"batch_size must be a positive integer"),
    ],
)
def test_bad_input_shapes_and_dtypes(kwargs, message):
    with pytest.raises(LayerConfigError, match=message):
        Input(**kwargs)


def test_unknown_keyword_argument_names_the_layer():
    with pytest.raises(LayerConfigError, match=r"Layer 'dense' \(Dense\) got unexpected keyword argument\(s\) \['unitz'\]"):
        Dense(3, unitz=4)


@pytest.mark.parametrize("operation", [np.asarray, jnp.asarray, bool, iter, len])
def test_symbolic_tensors_refuse_to_be_arrays(operation):
    x = Input(shape=(3,), name="features")
    with pytest.raises(SymbolicTensorError, match=r"'features'.*(Lambda|shape)"):
        operation(x)


def test_symbolic_equality_is_known_only_for_one_tensor():
    # `==` records an `equal` op node (Keras 3 ops); its truth value is known for a tensor compared
    # with itself (the guide's `assert layer.output == encoded`), refused for two tensors.
    a, b = Input(shape=(3,)), Input(shape=(3,))
    assert bool(a == a) is True and bool(a != a) is False
    with pytest.raises(SymbolicTensorError, match="truth value"):
        bool(a == b)


def test_dropout_in_training_needs_a_key():
    inputs = Input(shape=(4,))
    model = Model(inputs, Dropout(0.5)(inputs))
    params, state = model.get_variables()
    with pytest.raises(LayerConfigError, match=r"Layer 'dropout' \(Dropout\) needs a random key in training mode"):
        model.apply(params, state, jnp.ones((2, 4)), training=True)
    out, _ = model.apply(params, state, jnp.ones((2, 4)), training=True, key=jax.random.key(0))
    assert set(np.unique(np.asarray(out))) <= {0.0, 2.0}


def test_set_weights_mismatch_lists_paths_and_shapes():
    inputs = Input(shape=(3,))
    model = Model(inputs, Dense(2, name="d")(inputs))
    with pytest.raises(WeightsError, match=r"has 2 weights \['d/kernel', 'd/bias'\], but set_weights received 1"):
        model.set_weights([np.zeros((3, 2))])
    with pytest.raises(WeightsError, match=r"d/kernel: expected \(3, 2\), received \(2, 3\)"):
        model.set_weights([np.zeros((2, 3)), np.zeros(2)])


def test_model_called_on_wrong_number_of_inputs():
    a, b = Input(shape=(2,), name="a"), Input(shape=(2,), name="b")
    model = Model([a, b], add([a, b]))
    with pytest.raises(LayerInputError, match=r"expects 2 input\(s\) \['a', 'b'\], but received 1"):
        model(Input(shape=(2,)))
    with pytest.raises(LayerInputError, match=r"input 0 \('a'\) must have shape \(None, 2\), but received shape \(None, 3\)"):
        model([Input(shape=(3,)), Input(shape=(2,))])


def test_unknown_activation_and_initializer():
    with pytest.raises(LayerConfigError, match=r"Unknown activation 'relux'"):
        Dense(3, activation="relux")
    with pytest.raises(LayerConfigError, match=r"Unknown initializer 'glorot'"):
        Dense(3, kernel_initializer="glorot")(Input(shape=(2,)))


def test_valid_convolution_on_an_input_smaller_than_its_kernel():
    with pytest.raises(LayerInputError, match=r"Layer 'c' \(Conv2D\): spatial axis 0 of the input has size 2, smaller than the kernel's extent 3"):
        Conv2D(4, 3, name="c")(Input(shape=(2, 8, 1)))
