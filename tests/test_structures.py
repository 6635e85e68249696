"""Inputs, outputs, data, losses, loss weights and metrics in any nesting of lists, tuples,
namedtuples and dicts, matched by structure as Keras 3 does; ``Input(optional=True)``."""

from collections import namedtuple

import numpy as np
import pytest

import kfunc
from kfunc import layers
from kfunc.data.arrays import DataError
from kfunc.errors import GraphError, LayerInputError
from kfunc.train.losses import TrainingConfigError

keras = pytest.importorskip("keras")

rng = np.random.default_rng(7)
Heads = namedtuple("Heads", ["total", "parts"])


def two_heads(lib):
    """The issue's model: a dict of outputs written in unsorted key order."""
    i = lib.layers.Input(shape=(4,), name="features")
    return lib.Model(i, {"score": lib.layers.Dense(1, name="score_dense")(i),
                         "cls": lib.layers.Dense(2, activation="softmax", name="cls_dense")(i)})


def test_dict_outputs_in_any_order_take_dict_labels():
    """The issue's report: correct dict labels were refused (paired with the other output)."""
    model = two_heads(kfunc)
    model.compile("sgd", loss={"score": "mse", "cls": "categorical_crossentropy"}, loss_weights={"cls": 0.5, "score": 2.0})
    x = rng.random((6, 4), dtype=np.float32)
    y = {"score": rng.random((6, 1), dtype=np.float32), "cls": np.eye(2, dtype=np.float32)[[0, 1, 1, 0, 1, 0]]}
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    predicted = model.predict(x)
    score = np.mean((predicted["score"] - y["score"]) ** 2)
    cls = np.mean(-np.sum(y["cls"] * np.log(predicted["cls"]), axis=-1))
    assert logs["score_loss"] == pytest.approx(score, rel=1e-5) and logs["cls_loss"] == pytest.approx(cls, rel=1e-5)
    assert logs["loss"] == pytest.approx(2.0 * score + 0.5 * cls, rel=1e-5)


@pytest.mark.slow
def test_dict_outputs_in_any_order_train_as_keras():
    x = rng.random((8, 4), dtype=np.float32)
    y = {"score": rng.random((8, 1), dtype=np.float32), "cls": np.eye(2, dtype=np.float32)[rng.integers(0, 2, 8)]}
    models = {}
    for lib in (kfunc, keras):
        model = two_heads(lib)
        model.compile(lib.optimizers.SGD(0.1), loss={"score": "mse", "cls": "categorical_crossentropy"},
                      loss_weights={"cls": 0.5, "score": 2.0})
        models[lib] = model
    models[kfunc].set_weights(models[keras].get_weights())
    logs = {lib: m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history for lib, m in models.items()}
    np.testing.assert_allclose(logs[kfunc]["loss"], logs[keras]["loss"], rtol=1e-5)
    for ours, theirs in zip(models[kfunc].get_weights(), models[keras].get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    predicted = models[kfunc].predict(x)
    assert set(predicted) == {"score", "cls"} and predicted["cls"].shape == (8, 2)


def test_labels_only_for_the_outputs_that_have_a_loss():
    model = two_heads(kfunc)
    model.compile("sgd", loss={"cls": "categorical_crossentropy"})
    x = rng.random((6, 4), dtype=np.float32)
    labels = np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 1, 0]]
    by_dict = model.evaluate(x, {"cls": labels}, verbose=0)
    assert model.evaluate(x, [labels], verbose=0) == pytest.approx(by_dict)  # flat: the outputs with a loss
    assert model.evaluate(x, {"cls": labels, "score": None}, verbose=0) == pytest.approx(by_dict)
    with pytest.raises(DataError, match=r"y for model '.*' has no values for outputs \['cls'\], which have a loss"):
        model.evaluate(x, {"score": np.ones((6, 1))}, verbose=0)


@pytest.fixture(scope="module")
def nested():
    """``Model([a, [b, c]], Heads(total, {"q": .., "p": ..}))``, compiled with losses mirroring it."""
    a, b, c = (kfunc.Input((2,), name=n) for n in ("a", "b", "c"))
    total = layers.Add(name="total")([a, b])
    parts = {"q": layers.Dense(1, name="q_dense")(c), "p": layers.Dense(3, name="p_dense")(c)}
    model = kfunc.Model([a, [b, c]], Heads(total, parts))
    model.compile("sgd", loss=Heads(None, {"q": "mse", "p": "mse"}), loss_weights={"1/q": 1.0, "1/p": 0.5},
                  metrics=Heads(None, {"q": ["mae"], "p": None}))
    x = [rng.random((5, 2), dtype=np.float32) for _ in range(3)]
    return model, [x[0], (x[1], x[2])]


def test_nested_structures_are_kept_and_flattened_as_keras(nested):
    model, x = nested
    assert model.output_names == ["total", "1/p", "1/q"]  # dict keys sorted, Keras's leaf names
    assert [t.name for t in model.inputs] == ["a", "b", "c"]
    predicted = model.predict(x)
    assert isinstance(predicted, Heads) and set(predicted.parts) == {"p", "q"}
    called = model([x[0], [x[1][0], x[1][1]]])
    np.testing.assert_allclose(predicted.parts["p"], called.parts["p"], rtol=1e-6)
    np.testing.assert_allclose(predicted.total, x[0] + x[1][0], rtol=1e-6)
    # A flat list in input order and a dict by input name are the same inputs.
    np.testing.assert_allclose(model.predict([x[0], *x[1]]).parts["q"], predicted.parts["q"], rtol=1e-6)
    np.testing.assert_allclose(model.predict({"a": x[0], "b": x[1][0], "c": x[1][1]}).total, predicted.total)
    outer_inputs = [kfunc.Input((2,)), [kfunc.Input((2,)), kfunc.Input((2,))]]
    outer = kfunc.Model(outer_inputs, model(outer_inputs))
    assert isinstance(outer.output, Heads) and outer.output.parts["p"].shape == (None, 3)


def test_nested_labels_losses_and_metrics(nested):
    model, x = nested
    y = {"p": np.ones((5, 3), np.float32), "q": np.zeros((5, 1), np.float32)}
    logs = model.evaluate(x, Heads(None, y), verbose=0, return_dict=True)
    assert list(logs) == ["loss", "1/p_loss", "1/q_loss", "1/q_mae"]
    predicted = model.predict(x)
    p_loss = np.mean((predicted.parts["p"] - 1) ** 2)
    q_loss = np.mean(predicted.parts["q"] ** 2)
    assert logs["1/p_loss"] == pytest.approx(p_loss, rel=1e-5)
    assert logs["loss"] == pytest.approx(q_loss + 0.5 * p_loss, rel=1e-5)
    assert logs["1/q_mae"] == pytest.approx(np.mean(np.abs(predicted.parts["q"])), rel=1e-5)
    # The same labels as a (total, parts) tuple, and by output name.
    assert model.evaluate(x, (None, y), verbose=0, return_dict=True) == pytest.approx(logs)
    assert model.evaluate(x, {"1/p": y["p"], "1/q": y["q"]}, verbose=0, return_dict=True) == pytest.approx(logs)


def test_dicts_in_dicts_as_inputs():
    inputs = {"image": {"left": kfunc.Input((2,), name="left"), "right": kfunc.Input((2,), name="right")},
              "meta": kfunc.Input((1,), name="meta")}
    merged = layers.Concatenate()([inputs["image"]["right"], inputs["image"]["left"], inputs["meta"]])
    model = kfunc.Model(inputs, layers.Dense(1)(merged))
    data = {"image": {"left": np.zeros((3, 2)), "right": np.ones((3, 2))}, "meta": np.full((3, 1), 2.0)}
    kernel, bias = model.get_weights()[-2:]
    expected = np.concatenate([np.ones((3, 2)), np.zeros((3, 2)), np.full((3, 1), 2.0)], axis=1) @ kernel + bias
    np.testing.assert_allclose(model.predict(data), expected, rtol=1e-5)
    np.testing.assert_allclose(model({"left": data["image"]["left"], "right": data["image"]["right"],
                                      "meta": data["meta"]}), expected, rtol=1e-5)


def test_wrong_structures_are_refused_with_what_was_expected(nested):
    model, x = nested
    with pytest.raises(LayerInputError, match=r"expects 3 input\(s\) \['a', 'b', 'c'\], but received 2 value\(s\) "
                                               r"\[shape \(5, 2\), shape \(5, 2\)\]; the inputs are structured as "
                                               r"\[a, \[b, c\]\]"):
        model([x[0], x[1][0]])
    with pytest.raises(DataError, match=r"must give 3 arrays, one per output \['total', '1/p', '1/q'\], but received 1"):
        model.evaluate(x, [np.ones((5, 3))], verbose=0)
    with pytest.raises(DataError, match=r"keyed by output names .*the dict given is missing \['1/q'\] and has "
                                        r"unknown keys \['r'\]"):
        model.evaluate(x, {"1/p": np.ones((5, 3)), "r": np.ones((5, 1))}, verbose=0)
    with pytest.raises(TrainingConfigError, match=r"loss has keys \['r'\] that are not output names; the outputs are "
                                                  r"\['total', '1/p', '1/q'\] \(model '.*' returns Heads\(total, "):
        model.compile("sgd", loss={"r": "mse"})
    with pytest.raises(GraphError, match=r"outputs\[1\]\['p'\] must be a symbolic tensor"):
        kfunc.Model(model.inputs, [model.outputs[0], {"p": np.ones(3)}])


def test_dict_inputs_given_as_a_list_only_when_unambiguous():
    zeta, alpha = kfunc.Input((2,), name="zeta"), kfunc.Input((3,), name="alpha")
    model = kfunc.Model({"zeta": zeta, "alpha": alpha}, layers.Concatenate()([zeta, alpha]))
    out = model.predict({"zeta": np.ones((1, 2)), "alpha": np.zeros((1, 3))})
    np.testing.assert_array_equal(out, [[1, 1, 0, 0, 0]])
    with pytest.raises(LayerInputError, match=r"structured as \{'zeta': zeta, 'alpha': alpha\}: pass a dict keyed"):
        model([np.zeros((1, 3)), np.ones((1, 2))])


class AddIfGiven(layers.Layer):
    def call(self, x, y=None):
        return x if y is None else x + y


@pytest.fixture(scope="module")
def optional_model():
    first = kfunc.Input((2,), name="input1")
    second = kfunc.Input((2,), name="input2", optional=True)
    model = kfunc.Model({"input1": first, "input2": second}, layers.Dense(1, name="head")(AddIfGiven()(first, second)))
    model.compile("sgd", "mse")
    return model


def test_optional_input_given_as_none_at_call_predict_and_fit(optional_model):
    model = optional_model
    x = rng.random((4, 2), dtype=np.float32)
    kernel, bias = model.get_layer("head").get_weights()
    np.testing.assert_allclose(model({"input1": x, "input2": None}), x @ kernel + bias, rtol=1e-5)
    np.testing.assert_allclose(model([x, None]), x @ kernel + bias, rtol=1e-5)
    np.testing.assert_allclose(model.predict({"input1": x}), x @ kernel + bias, rtol=1e-5)  # left out of the dict
    np.testing.assert_allclose(model.predict({"input1": x, "input2": x}), (x + x) @ kernel + bias, rtol=1e-5)
    history = model.fit({"input1": x, "input2": None}, np.ones((4, 1)), epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    config = model.get_layer("input2").get_config()
    assert config["optional"] is True and kfunc.layers.InputLayer(**config).optional


def test_none_for_a_required_input_is_refused(optional_model):
    i = kfunc.Input((3,), name="x")
    model = kfunc.Model(i, layers.Dense(1)(i))
    model.compile("sgd", "mse")
    with pytest.raises(DataError, match=r"Input 'x' of model '.*' is not optional, but None was passed; pass an "
                                        r"array of shape \(None, 3\), or declare it with Input\(..., optional=True\)"):
        model.fit([None], np.ones((4, 1)), verbose=0)
    with pytest.raises(LayerInputError, match=r"input 'x' is not optional, but None was passed"):
        model(None)


@pytest.mark.parametrize("structure", ["single", "list", "tuple", "dict", "nested"])
def test_input_and_output_shape_are_flat_lists_as_in_keras(structure):
    def shapes(lib):
        q, r = lib.Input((4, 3), name="q"), lib.Input((2,), name="r")
        a, b = lib.layers.Dense(2)(q), lib.layers.Dense(5)(r)
        wrap = {"single": lambda u, v: u, "list": lambda u, v: [u, v], "tuple": lambda u, v: (u, v),
                "dict": lambda u, v: {"v": v, "u": u}, "nested": lambda u, v: [u, [v, u]]}[structure]
        inputs = {"single": q, "nested": [q, [r]]}[structure] if structure in ("single", "nested") else wrap(q, r)
        model = lib.Model(inputs, wrap(a, b) if structure != "single" else a)
        return model.input_shape, model.output_shape

    assert shapes(kfunc) == shapes(keras)
