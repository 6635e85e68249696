"""Whole-model files: ``model.save`` / ``kfunc.models.load_model`` round trips, the registry,
compile settings and optimizer state, atomic writes; every layer case of the table round-trips
(its config and weights by default; its outputs for one case per module of kfunc.layers by
default, for every other case in the slow run)."""

from __future__ import annotations

import json
import os
import zipfile

import jax
import numpy as np
import optax
import pytest
from layer_cases import CASES, LayerCase, layer_module_family, representative_ids

import kfunc
from kfunc import layers as L
from kfunc.models import Model, Sequential, load_model
from kfunc.saving import (
    ModelFileError,
    RegistrationError,
    SavingError,
    UnknownObjectError,
    register,
)
from kfunc.saving import registry as registry_lib
from kfunc.saving.model_config import model_spec

BATCH = 3


def _arrays(tree):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def _assert_same_outputs(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _round_trip(model, tmp_path, name="m.kfunc", **load_kwargs):
    path = tmp_path / name
    model.save(path)
    return load_model(path, **load_kwargs)


def _quiet_summary(model) -> str:
    return model.summary(print_fn=lambda line: None)


# ---------------------------------------------------------------------- graphs
def _rich_model():
    """Two named inputs, a shared layer (two nodes), a nested model called twice, a nested
    Sequential, an LSTM with initial_state and return_state, BatchNorm state, dict outputs."""
    a = kfunc.Input(shape=(6,), name="a")
    b = kfunc.Input(shape=(6,), name="b")
    shared = L.Dense(4, activation="relu", name="shared")
    ha, hb = shared(a), shared(b)
    inner_input = kfunc.Input(shape=(4,), name="inner_input")
    inner = Model(inner_input, L.Dense(3, activation="tanh", name="inner_dense")(inner_input), name="inner")
    merged = L.concatenate([inner(ha), inner(hb)], name="merged")
    stack = Sequential([L.Dense(5, input_shape=(6,), name="stack_dense"), L.BatchNormalization(name="stack_bn")], name="stack")
    sequence = L.RepeatVector(3, name="repeat")(merged)
    h0, c0 = L.Dense(2, name="h0")(a), L.Dense(2, name="c0")(b)
    lstm_out, h, c = L.LSTM(2, return_state=True, name="lstm")(sequence, initial_state=[h0, c0])
    main = L.Dense(1, name="main")(L.concatenate([lstm_out, h, c, stack(a)]))
    return Model({"a": a, "b": b}, {"main": main, "aux": merged}, name="rich")


def _rich_inputs(rng):
    return {"a": rng.standard_normal((BATCH, 6)).astype("float32"), "b": rng.standard_normal((BATCH, 6)).astype("float32")}


def test_functional_round_trip_keeps_graph_weights_and_outputs(tmp_path):
    model = _rich_model()
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape).astype(w.dtype) for w in model.get_weights()])
    inputs = _rich_inputs(rng)
    loaded = _round_trip(model, tmp_path)
    assert type(loaded) is Model and loaded.name == "rich"
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.input_names == model.input_names and loaded.output_names == model.output_names
    assert len(loaded.get_layer("shared")._inbound_nodes) == 2
    assert len(loaded.get_layer("inner")._inbound_nodes) == 2
    assert _quiet_summary(loaded) == _quiet_summary(model)
    for x, y in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
    _assert_same_outputs(model.predict(inputs, batch_size=BATCH), loaded.predict(inputs, batch_size=BATCH))


def test_file_is_one_zip_of_config_and_weight_arrays(tmp_path):
    model = _rich_model()
    model.save(tmp_path / "m.kfunc")
    with zipfile.ZipFile(tmp_path / "m.kfunc") as archive:
        names = set(archive.namelist())
    assert "config.json" in names
    assert {"weights/shared/kernel.npy", "weights/inner/inner_dense/bias.npy", "weights/stack/stack_bn/moving_mean.npy"} <= names
    assert [n for n in names if n.startswith("optimizer/")] == []  # never compiled


def test_sequential_round_trips_top_level_and_deferred(tmp_path):
    model = Sequential([L.Dense(4, activation="relu", input_shape=(3,)), L.Dropout(0.5), L.Dense(2)], name="seq")
    x = np.random.default_rng(1).standard_normal((BATCH, 3)).astype("float32")
    loaded = _round_trip(model, tmp_path)
    assert type(loaded) is Sequential and [x.name for x in loaded.layers] == [x.name for x in model.layers]
    _assert_same_outputs(model.predict(x), loaded.predict(x))

    deferred = Sequential([L.Dense(3)], name="deferred")
    unbuilt = _round_trip(deferred, tmp_path, "deferred.kfunc")
    assert not unbuilt.built and unbuilt.layers[0].units == 3
    deferred.predict(x)  # built from the data
    _assert_same_outputs(deferred.predict(x), _round_trip(deferred, tmp_path, "built.kfunc").predict(x))


def test_model_cut_from_intermediate_tensors_round_trips(tmp_path):
    inputs = kfunc.Input(shape=(4,))
    middle = L.Dense(3, name="first")(inputs)
    outputs = L.Dense(2, name="second")(middle)
    cut = Model(middle, outputs, name="cut")
    x = np.ones((BATCH, 3), "float32")
    loaded = _round_trip(cut, tmp_path)
    assert loaded.input_names == cut.input_names
    _assert_same_outputs(cut.predict(x), loaded.predict(x))


def test_a_nested_model_sharing_the_outer_input_round_trips(tmp_path):
    inputs = kfunc.Input(shape=(3,))
    inner = Model(inputs, L.Dense(2, name="inner_dense")(inputs), name="inner")
    outer = Model(inputs, L.Dense(1, name="head")(inner(inputs)), name="outer")
    x = np.arange(6, dtype="float32").reshape(2, 3)
    _assert_same_outputs(outer.predict(x), _round_trip(outer, tmp_path).predict(x))


def test_time_distributed_over_a_model_round_trips(tmp_path):
    frame = kfunc.Input(shape=(4,))
    encoder = Model(frame, L.Dense(3, activation="relu", name="frame_dense")(frame), name="frame_encoder")
    clips = kfunc.Input(shape=(5, 4))
    model = Model(clips, L.GRU(2, name="gru")(L.TimeDistributed(encoder, name="frames")(clips)))
    x = np.random.default_rng(2).standard_normal((BATCH, 5, 4)).astype("float32")
    _assert_same_outputs(model.predict(x), _round_trip(model, tmp_path).predict(x))


def test_a_layer_shared_across_nested_models_cannot_be_saved(tmp_path):
    inputs = kfunc.Input(shape=(3,))
    dense = L.Dense(3, name="everywhere")
    inner = Model(inputs, dense(inputs), name="inner")
    outer_input = kfunc.Input(shape=(3,))
    outer = Model(outer_input, dense(inner(outer_input)), name="outer")
    with pytest.raises(SavingError, match="'everywhere'.*two places"):
        outer.save(tmp_path / "m.kfunc")
    assert not (tmp_path / "m.kfunc").exists()


# ---------------------------------------------------------------------- registry
@register("test_saving>double")
def double(x):
    return 2.0 * x


@register("test_saving>Scale")
class Scale(L.Layer):
    """A custom layer with one weight and a constructor argument."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.offset = self.add_weight("offset", (input_shape[-1],), "zeros")

    def call(self, inputs):
        return self.factor * inputs + self.offset.value

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


def test_registered_lambda_activation_and_layer_round_trip(tmp_path):
    inputs = kfunc.Input(shape=(4,))
    h = L.Lambda(double, name="doubled")(inputs)
    h = L.Dense(3, activation=double, name="dense_double")(h)
    outputs = Scale(0.5, name="scale")(h)
    model = Model(inputs, outputs)
    model.get_layer("scale").set_weights([np.arange(3, dtype="float32")])
    loaded = _round_trip(model, tmp_path)
    assert loaded.get_layer("doubled").function is double
    assert loaded.get_layer("dense_double").activation is double
    assert isinstance(loaded.get_layer("scale"), Scale) and loaded.get_layer("scale").factor == 0.5
    x = np.ones((BATCH, 4), "float32")
    _assert_same_outputs(model.predict(x), loaded.predict(x))


def test_unregistered_function_loads_only_through_custom_objects(tmp_path):
    def triple(x):
        return 3.0 * x

    inputs = kfunc.Input(shape=(2,))
    model = Model(inputs, L.Lambda(triple)(inputs))
    model.save(tmp_path / "m.kfunc")
    with pytest.raises(UnknownObjectError, match=r"'triple'.*kfunc\.saving\.register"):
        load_model(tmp_path / "m.kfunc")
    loaded = load_model(tmp_path / "m.kfunc", custom_objects={"triple": triple})
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 2), "float32")), [[3.0, 3.0]])


def test_an_unregistered_lambda_cannot_be_saved(tmp_path):
    inputs = kfunc.Input(shape=(2,))
    model = Model(inputs, L.Lambda(lambda x: x + 1.0, name="plus_one")(inputs))
    with pytest.raises(SavingError, match=r"'plus_one'.*lambda.*kfunc\.saving\.register"):
        model.save(tmp_path / "m.kfunc")


def test_an_unregistered_class_named_like_a_built_in_cannot_be_saved(tmp_path):
    class Dense(L.Layer):
        def call(self, inputs):
            return inputs

    inputs = kfunc.Input(shape=(2,))
    model = Model(inputs, Dense(name="fake")(inputs))
    with pytest.raises(SavingError, match="'fake'.*its name 'Dense' is taken"):
        model.save(tmp_path / "m.kfunc")


def test_register_forms_and_errors():
    def square(x):
        return x * x

    try:
        assert register(square) is square and registry_lib.registered_name(square) == "square"
        assert register(name="test_saving>square2")(square) is square
        with pytest.raises(RegistrationError, match="built-in kfunc layer"):
            register("Dense")(square)
        with pytest.raises(RegistrationError, match="no usable name"):
            register(lambda x: x)
        with pytest.raises(RegistrationError, match="already registered"):
            register("test_saving>double")(square)
    finally:
        registry_lib.unregister("square")
        registry_lib.unregister("test_saving>square2")


# ---------------------------------------------------------------------- compile and optimizer state
def _classifier(optimizer=None):
    kfunc.utils.clear_session()
    kfunc.utils.set_random_seed(0)
    inputs = kfunc.Input(shape=(8,))
    h = L.Dense(16, activation="relu")(inputs)
    h = L.BatchNormalization()(h)
    h = L.Dropout(0.3)(h)
    outputs = L.Dense(3, activation="softmax")(h)
    model = Model(inputs, outputs)
    model.compile(optimizer=optimizer or kfunc.optimizers.Adam(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _classification_data():
    rng = np.random.default_rng(3)
    return rng.standard_normal((64, 8)).astype("float32"), rng.integers(0, 3, 64)


def test_fit_after_load_continues_exactly(tmp_path):
    """2 epochs, save, load, 1 epoch == 3 epochs in one go (optimizer moments, step count,
    BatchNorm statistics and the dropout key all carried over)."""
    x, y = _classification_data()
    straight = _classifier()
    straight.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    interrupted = _classifier()
    interrupted.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    resumed = _round_trip(interrupted, tmp_path)
    assert resumed.optimizer.iterations == 8
    resumed.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert resumed.optimizer.iterations == 12
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_compile_settings_are_restored(tmp_path):
    inputs = kfunc.Input(shape=(3,))
    first = L.Dense(1, name="first")(inputs)
    second = L.Dense(2, activation="softmax", name="second")(inputs)
    model = Model(inputs, [first, second])
    model.compile(
        optimizer=kfunc.optimizers.SGD(learning_rate=0.05, momentum=0.9, clipnorm=1.0),
        loss=["mae", kfunc.losses.CategoricalCrossentropy(label_smoothing=0.1)],
        loss_weights=[0.5, 2.0],
        metrics={"second": ["accuracy"]},
    )
    loaded = _round_trip(model, tmp_path)
    optimizer = loaded.optimizer
    assert type(optimizer) is kfunc.optimizers.SGD
    assert (optimizer.learning_rate, optimizer.momentum, optimizer.clipnorm) == (0.05, 0.9, 1.0)
    outputs = loaded._trainer.config.outputs
    assert outputs[0].loss is kfunc.losses.get("mae") and outputs[1].loss.get_config()["label_smoothing"] == 0.1
    assert [o.loss_weight for o in outputs] == [0.5, 2.0]
    assert [o.metric_ids for o in outputs] == [(), ("accuracy",)]
    assert load_model(tmp_path / "m.kfunc", compile=False)._trainer is None


def test_a_callable_loss_must_be_registered_to_compile_on_load(tmp_path):
    def my_loss(y_true, y_pred):
        return (y_true - y_pred) ** 2

    inputs = kfunc.Input(shape=(2,))
    model = Model(inputs, L.Dense(1)(inputs))
    model.compile(optimizer="adam", loss=my_loss)
    model.save(tmp_path / "m.kfunc")
    with pytest.raises(UnknownObjectError, match=r"'my_loss'.*register"):
        load_model(tmp_path / "m.kfunc")
    assert load_model(tmp_path / "m.kfunc", compile=False)._trainer is None
    assert load_model(tmp_path / "m.kfunc", custom_objects={"my_loss": my_loss})._trainer.config.outputs[0].loss is my_loss


def test_an_optax_optimizer_is_not_saved_and_says_so(tmp_path):
    inputs = kfunc.Input(shape=(2,))
    model = Model(inputs, L.Dense(1)(inputs))
    model.compile(optimizer=optax.sgd(0.1), loss="mse")
    with pytest.warns(UserWarning, match="without its compile"):
        model.save(tmp_path / "m.kfunc")
    assert load_model(tmp_path / "m.kfunc")._trainer is None


def test_include_optimizer_false_and_overwrite_false(tmp_path):
    model = _classifier()
    model.save(tmp_path / "m.kfunc", include_optimizer=False)
    assert load_model(tmp_path / "m.kfunc")._trainer is None
    with pytest.raises(SavingError, match="overwrite=False"):
        model.save(tmp_path / "m.kfunc", overwrite=False)


# ---------------------------------------------------------------------- atomic writes
def _temporaries(folder) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(".tmp-")]


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    model = _classifier()
    path = tmp_path / "m.kfunc"
    model.save(path)
    assert _temporaries(tmp_path) == []
    before = path.read_bytes()
    saved_weights = model.get_weights()
    model.set_weights([np.zeros_like(w) for w in saved_weights])
    original, calls = np.lib.format.write_array, []

    def write_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    monkeypatch.undo()
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert _temporaries(tmp_path) == []
    for a, b in zip(load_model(path).get_weights(), saved_weights, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- every layer case
def _case_model(case: LayerCase):
    layer = case.make_kfunc()
    if isinstance(layer, L.Lambda):
        register(f"layer_cases>{case.id}")(layer.function)
    inputs = [kfunc.Input(shape=shape, dtype=case.dtype) for shape in case.shapes]
    outputs = case.call(layer, inputs if case.multi_input else inputs[0])
    return Model(inputs, outputs, name=f"case_{case.id}")


def _case_inputs(case: LayerCase, rng):
    arrays = []
    for shape in case.shapes:
        full = (BATCH,) + tuple(shape)
        if np.issubdtype(np.dtype(case.dtype), np.integer):
            arrays.append(rng.integers(0, case.int_high, size=full).astype(case.dtype))
        else:
            arrays.append(rng.standard_normal(full).astype(case.dtype))
    return arrays if case.multi_input else arrays[0]


def _saved_and_loaded_case(case: LayerCase, tmp_path):
    """The case's layer in a model with random weights, that model loaded back, and inputs."""
    model = _case_model(case)
    rng = np.random.default_rng(7)
    model.set_weights([(0.5 * rng.standard_normal(w.shape) + 1.0).astype(w.dtype) for w in model.get_weights()])
    return model, _round_trip(model, tmp_path), _case_inputs(case, rng)


# One case per kfunc.layers module by default; the slow run round-trips every case.
_DEFAULT_OUTPUT_IDS = representative_ids(CASES, layer_module_family)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=() if c.id in _DEFAULT_OUTPUT_IDS else pytest.mark.slow) for c in CASES],
)
def test_every_layer_case_round_trips_its_config_and_weights(case: LayerCase, tmp_path):
    """Nothing is run: the loaded layer has the class, name, config and weights that were saved."""
    model, loaded, _ = _saved_and_loaded_case(case, tmp_path)
    layer, restored = model.layers[-1], loaded.layers[-1]
    assert type(restored) is type(layer) and restored.name == layer.name
    assert [v.path for v in restored.weights] == [v.path for v in layer.weights]
    assert json.dumps(model_spec(loaded)) == json.dumps(model_spec(model))
    for saved, read in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert saved.dtype == read.dtype
        np.testing.assert_array_equal(saved, read)


# Running a case costs its compilations: one case per module of kfunc.layers by default.


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=() if c.id in _DEFAULT_OUTPUT_IDS else pytest.mark.slow) for c in CASES],
)
def test_every_layer_case_computes_the_same_after_loading(case: LayerCase, tmp_path):
    model, loaded, inputs = _saved_and_loaded_case(case, tmp_path)
    _assert_same_outputs(model(inputs), loaded(inputs))


def test_round_trip_rejects_nothing_but_reports_file_errors_as_model_file_errors(tmp_path):
    with pytest.raises(ModelFileError, match="no-such-file"):
        load_model(tmp_path / "no-such-file.kfunc")
