"""kfunc.config and kfunc.backend against Keras 3: settings, their effect on new layers, dtype helpers."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import backend, config

keras = pytest.importorskip("keras")


@pytest.fixture(autouse=True)
def _restore_settings():
    yield
    config.set_floatx("float32")
    config.set_epsilon(1e-7)
    config.set_image_data_format("channels_last")
    kfunc.mixed_precision.reset_global_policy()


def test_defaults_match_keras():
    assert config.floatx() == keras.config.floatx() == "float32"
    assert config.epsilon() == keras.config.epsilon() == 1e-7
    assert config.image_data_format() == keras.config.image_data_format() == "channels_last"
    assert config.backend() == backend.backend() == "jax"


def test_floatx_is_the_dtype_of_new_layers_unless_a_policy_is_set():
    config.set_floatx("float16")
    inputs = kfunc.Input((3,))
    dense = kfunc.layers.Dense(2)
    dense(inputs)
    assert dense.dtype_policy.name == "float16" and dense.kernel.value.dtype == jnp.float16
    assert kfunc.random.normal((2,)).dtype == jnp.float16
    # As in Keras 3: an explicit global policy wins; clear_session forgets it but keeps floatx.
    config.set_dtype_policy("mixed_bfloat16")
    assert kfunc.layers.Dense(2).dtype_policy.name == "mixed_bfloat16"
    backend.clear_session()
    assert kfunc.layers.Dense(2).dtype_policy.name == "float16"
    assert config.floatx() == "float16"


def test_image_data_format_is_the_default_data_format_of_image_layers():
    config.set_image_data_format("channels_first")
    conv = kfunc.layers.Conv2D(4, 3)
    pool = kfunc.layers.MaxPooling2D()
    assert conv.data_format == pool.data_format == "channels_first"
    outputs = conv(kfunc.Input((2, 8, 8)))
    assert outputs.shape == (None, 4, 6, 6)
    assert kfunc.layers.Conv2D(4, 3, data_format="channels_last").data_format == "channels_last"


def test_epsilon_is_settable():
    config.set_epsilon(1e-5)
    assert config.epsilon() == backend.epsilon() == 1e-5


def test_setters_refuse_bad_values():
    with pytest.raises(ValueError, match=r"set_floatx expects one of \['bfloat16', 'float16', 'float32', 'float64'\]"):
        config.set_floatx("int32")
    with pytest.raises(ValueError, match="set_image_data_format expects one of"):
        config.set_image_data_format("channels_middle")
    with pytest.raises(ValueError, match="set_epsilon expects a positive float"):
        config.set_epsilon(-1.0)
    with pytest.raises(RuntimeError, match="kfunc never runs code stored in a model file"):
        config.enable_unsafe_deserialization()


def test_float64_needs_x64():
    import jax

    if jax.config.jax_enable_x64:
        pytest.skip("64-bit arrays are enabled here")
    with pytest.raises(ValueError, match="needs 64-bit JAX arrays"):
        config.set_floatx("float64")


def test_clear_session_restarts_names_and_uids():
    kfunc.layers.Dense(1)
    assert backend.get_uid("thing") == 1 and backend.get_uid("thing") == 2
    backend.clear_session()
    assert kfunc.layers.Dense(1).name == "dense"
    assert backend.get_uid("thing") == 1
    assert kfunc.utils.clear_session is backend.clear_session


def test_is_keras_tensor():
    inputs = kfunc.Input((3,))
    assert backend.is_keras_tensor(inputs)
    assert backend.is_keras_tensor(kfunc.layers.Dense(2)(inputs))
    assert not backend.is_keras_tensor(np.zeros(3))


DTYPES = ["bool", "uint8", "int8", "int16", "int32", "uint32", "bfloat16", "float16", "float32", int, float, bool]


def test_standardize_dtype_matches_keras():
    for dtype in DTYPES + [None, np.float16, jnp.bfloat16, np.dtype("int8"), "int"]:
        assert backend.standardize_dtype(dtype) == keras.backend.standardize_dtype(dtype), dtype
    with pytest.raises(ValueError, match="is not a dtype; pass a name such as 'float32'"):
        backend.standardize_dtype("floaty")


def test_result_type_matches_keras():
    for a, b in itertools.product(DTYPES, DTYPES):
        assert backend.result_type(a, b) == keras.backend.result_type(a, b), (a, b)
    assert backend.result_type() == keras.backend.result_type() == "float32"


def test_dtype_predicates_match_keras():
    for dtype in DTYPES:
        assert backend.is_float_dtype(dtype) == keras.backend.is_float_dtype(dtype), dtype
        assert backend.is_int_dtype(dtype) == keras.backend.is_int_dtype(dtype), dtype
