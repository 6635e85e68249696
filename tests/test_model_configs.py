"""Model configs as Keras 3 has them: get_config holds the graph, from_config / model_from_json
build it (from kfunc's or Keras's configs), clone_model makes fresh layers, the registry and
custom_object_scope resolve user classes, and a config naming code outside them is refused."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kfunc  # noqa: E402
from kfunc import layers  # noqa: E402
from kfunc.saving import ConfigError, UnknownObjectError  # noqa: E402

X = np.linspace(-1.0, 1.0, 8, dtype="float32").reshape(2, 4)


def _two_branch(lib):
    inputs = lib.Input((4,), name="x")
    left = lib.layers.Dense(3, activation="relu", name="left")(inputs)
    right = lib.layers.Dense(3, name="right")(inputs)
    merged = lib.layers.Concatenate(name="merge")([left, right])
    return lib.Model(inputs, lib.layers.Dense(1, name="out")(merged), name="two_branch")


def test_get_config_has_keras_3_graph_keys():
    config = _two_branch(kfunc).get_config()
    theirs = _two_branch(keras).get_config()
    assert set(theirs) <= set(config) | {"dtype"}
    assert [entry["name"] for entry in config["layers"]] == [entry["name"] for entry in theirs["layers"]]
    assert config["input_layers"] == list(theirs["input_layers"]) and config["output_layers"] == list(theirs["output_layers"])
    merge = next(entry for entry in config["layers"] if entry["name"] == "merge")
    assert [t["config"]["keras_history"] for t in merge["inbound_nodes"][0]["args"][0]] == [["left", 0, 0], ["right", 0, 0]]


def test_keras_made_configs_build_in_kfunc_with_the_same_outputs():
    theirs = _two_branch(keras)
    for ours in (kfunc.Model.from_config(theirs.get_config()), kfunc.models.model_from_json(theirs.to_json())):
        ours.set_weights(theirs.get_weights())
        np.testing.assert_allclose(ours.predict(X, verbose=0), theirs.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert kfunc.Sequential.from_config(sequential.get_config()).input_shape == (None, 4)


def test_nested_and_sequential_models_round_trip():
    inner = _two_branch(kfunc)
    outer_input = kfunc.Input((4,))
    outer = kfunc.Model(outer_input, layers.Dense(2)(inner(outer_input)))
    rebuilt = kfunc.Model.from_config(outer.get_config())
    rebuilt.set_weights(outer.get_weights())
    np.testing.assert_allclose(rebuilt.predict(X, verbose=0), outer.predict(X, verbose=0), rtol=1e-6)
    unbuilt = kfunc.Sequential([layers.Dense(3), layers.Dense(1)])
    assert not kfunc.Sequential.from_config(unbuilt.get_config()).built
    unbuilt.build((None, 4))
    assert unbuilt.get_config()["build_input_shape"] == (None, 4)
    assert kfunc.models.model_from_json(unbuilt.to_json()).input_shape == (None, 4)


def test_clone_model_makes_new_weights_and_keeps_sharing():
    shared = layers.Dense(2)
    inputs = kfunc.Input((2,))
    model = kfunc.Model(inputs, layers.Add()([shared(inputs), shared(shared(inputs))]))
    clone = kfunc.models.clone_model(model)
    assert len(clone.weights) == 2 and all(a is not b for a, b in zip(clone.weights, model.weights, strict=True))
    clone.set_weights(model.get_weights())
    x = np.ones((1, 2), "float32")
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    replace_dense = lambda layer: layers.Dense(2, name="fresh") if isinstance(layer, layers.Dense) else layers.Add()  # noqa: E731
    renamed = kfunc.models.clone_model(model, clone_function=replace_dense)
    assert [l.name for l in renamed.layers if isinstance(l, layers.Dense)] == ["fresh"]
    sequential = kfunc.Sequential([kfunc.Input((3,)), layers.Dense(2)])
    cloned = kfunc.models.clone_model(sequential, input_tensors=kfunc.Input((3,)))
    assert cloned.input_shape == (None, 3) and cloned.layers[0] is not sequential.layers[0]


def test_registered_and_scoped_custom_layers():
    @kfunc.saving.register_keras_serializable(package="ConfigTests")
    class Doubling(layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    inputs = kfunc.Input((2,))
    config = kfunc.Model(inputs, Doubling()(inputs)).get_config()
    assert config["layers"][1]["registered_name"] == "ConfigTests>Doubling"
    assert kfunc.saving.get_custom_objects()["ConfigTests>Doubling"] is Doubling
    assert isinstance(kfunc.Model.from_config(config).layers[1], Doubling)
    del kfunc.saving.get_custom_objects()["ConfigTests>Doubling"]
    with pytest.raises(ConfigError, match="'ConfigTests>Doubling' is neither registered"):
        kfunc.Model.from_config(config)
    with kfunc.utils.custom_object_scope({"ConfigTests>Doubling": Doubling}):
        assert isinstance(kfunc.Model.from_config(config).layers[1], Doubling)


def test_serialize_and_deserialize_objects():
    dense = layers.Dense(3, kernel_regularizer=kfunc.regularizers.L2(0.1))
    config = kfunc.layers.serialize(dense)
    assert config["module"] == "keras.layers" and config["class_name"] == "Dense"
    copy = kfunc.layers.deserialize(config)
    assert copy.units == 3 and copy.kernel_regularizer.l2 == pytest.approx(0.1)
    assert kfunc.saving.deserialize_keras_object(keras.saving.serialize_keras_object(keras.activations.relu)) is kfunc.activations.relu
    initializer = kfunc.saving.deserialize_keras_object(kfunc.saving.serialize_keras_object(kfunc.initializers.RandomNormal(stddev=0.5)))
    assert initializer.stddev == 0.5


def test_hostile_configs_are_refused():
    with pytest.raises(ConfigError, match="of module 'os' is not part of Keras.*never imports or runs code"):
        kfunc.saving.deserialize_keras_object({"module": "os", "class_name": "function", "config": "system",
                                               "registered_name": None})
    with pytest.raises(ConfigError, match="'eval' is neither one of kfunc's activations nor registered"):
        kfunc.saving.deserialize_keras_object({"module": "builtins", "class_name": "function", "config": "eval",
                                               "registered_name": "function"})
    with pytest.raises(UnknownObjectError, match="'os.system', which is neither built into kfunc nor registered"):
        kfunc.layers.deserialize({"module": "keras.layers", "class_name": "os.system", "config": {}})
    config = _two_branch(kfunc).get_config()
    config["layers"][1]["config"]["activation"] = {"class_name": "__lambda__", "config": {"value": "bytecode"}}
    with pytest.raises(ConfigError, match="a lambda function .*which kfunc does not load"):
        kfunc.Model.from_config(config)
    with pytest.raises(ConfigError, match="Lambda layer"):
        kfunc.layers.deserialize({"module": "keras.layers", "class_name": "Lambda", "config": {"function": "x"}})
    with pytest.raises(ConfigError, match="has no input_layers"):
        kfunc.Model.from_config({"name": "m", "layers": []})
    with pytest.raises(ConfigError, match="not valid JSON"):
        kfunc.models.model_from_json("{not json")
