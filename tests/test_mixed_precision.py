"""Mixed precision: dtype policies, bfloat16 compute with float32 weights, the float32 islands
(softmax, normalization statistics, losses, model outputs), saving, and training accuracy."""

from __future__ import annotations

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import layers as L
from kfunc.errors import LayerConfigError
from kfunc.mixed_precision import DTypePolicy, PolicyError, get, global_policy, set_global_policy
from kfunc.models import Model, load_model
from kfunc.train.step import Batch, Carry, TrainState

BF16 = jnp.dtype("bfloat16")
F32 = jnp.dtype("float32")
rng = np.random.default_rng(3)


@pytest.fixture(autouse=True)
def _restore_global_policy():
    """Every test leaves the global policy as it found it (float32), also when it fails."""
    previous = global_policy()
    yield
    set_global_policy(previous)


# ---------------------------------------------------------------------- jaxpr helpers
def _equations(jaxpr):
    """Every equation of a (closed) jaxpr and of the jaxprs nested in it (jit calls, scan bodies)."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    yield from _equations(sub)


def _operand_dtypes(jaxpr, primitive: str) -> list[tuple[str, ...]]:
    return [
        tuple(str(v.aval.dtype) for v in eqn.invars)
        for eqn in _equations(jaxpr)
        if eqn.primitive.name == primitive
    ]


def _dtypes(tree) -> set[str]:
    return {str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(tree)}


# ---------------------------------------------------------------------- policies
@pytest.mark.parametrize(
    ("name", "compute", "variable"),
    [
        ("float32", "float32", "float32"),
        ("bfloat16", "bfloat16", "bfloat16"),
        ("float16", "float16", "float16"),
        ("mixed_bfloat16", "bfloat16", "float32"),
        ("mixed_float16", "float16", "float32"),
    ],
)
def test_policy_names_give_compute_and_variable_dtypes(name, compute, variable):
    policy = DTypePolicy(name)
    assert (policy.name, policy.compute_dtype, policy.variable_dtype) == (name, compute, variable)
    assert policy.is_mixed == name.startswith("mixed_")
    assert repr(policy) == f'<DTypePolicy "{name}">'
    assert DTypePolicy.from_config(policy.get_config()) == policy
    assert get(name) == policy and hash(get(name)) == hash(policy)


def test_get_accepts_policies_names_dtypes_and_keras_configs():
    keras_form = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"},
                  "registered_name": None}
    assert get(keras_form) == DTypePolicy("mixed_bfloat16")
    assert get({"name": "float16"}) == DTypePolicy("float16")
    assert get(jnp.bfloat16) == DTypePolicy("bfloat16")
    assert get(np.dtype("float32")) == DTypePolicy("float32")
    policy = DTypePolicy("mixed_float16")
    assert get(policy) is policy
    assert get(None) is global_policy()
    set_global_policy("mixed_bfloat16")
    assert DTypePolicy().name == "mixed_bfloat16"  # no name: a copy of the global policy


def test_policy_errors():
    with pytest.raises(PolicyError, match=r"DTypePolicy expects a policy name .* but received int 3; pass"):
        DTypePolicy(3)
    with pytest.raises(PolicyError, match=r"cannot interpret 'mixed_int8' as a policy: expected 'mixed_bfloat16'"):
        DTypePolicy("mixed_int8")
    with pytest.raises(PolicyError, match=r"A dtype policy must be .* but received object"):
        get(object())
    with pytest.raises(PolicyError, match=r"names class 'QuantizedDTypePolicy'; kfunc reads only 'DTypePolicy'"):
        get({"class_name": "QuantizedDTypePolicy", "config": {"mode": "int8", "source_name": "float32"}})
    with pytest.raises(PolicyError, match=r"config must be \{'name': \.\.\.\} .* but received dict"):
        get({"name": "float32", "extra": 1})
    with pytest.raises(PolicyError, match=r"set_global_policy expects a policy name .* received float 0.5"):
        set_global_policy(0.5)
    with pytest.raises(LayerConfigError, match=r"Layer 'dense' \(Dense\): dtype='float33' is not a dtype or a dtype policy"):
        L.Dense(2, dtype="float33")


def test_layers_take_the_global_policy_when_created():
    set_global_policy("mixed_bfloat16")
    mixed = L.Dense(3)
    explicit = L.Dense(3, dtype="float32")
    set_global_policy("float32")
    later = L.Dense(3)
    assert mixed.dtype_policy == DTypePolicy("mixed_bfloat16")
    assert (mixed.dtype, mixed.variable_dtype, mixed.compute_dtype) == (F32, F32, BF16)
    assert explicit.compute_dtype == later.compute_dtype == F32
    by_object = L.Dense(3, dtype=DTypePolicy("mixed_float16"))
    by_dtype = L.Dense(3, dtype=jnp.bfloat16)
    assert (by_object.compute_dtype, by_object.dtype) == (jnp.float16, F32)
    assert (by_dtype.compute_dtype, by_dtype.dtype) == (BF16, BF16)
    # Weights are created in the variable dtype.
    mixed(np.ones((2, 4), np.float32))
    assert mixed.kernel.dtype == F32 and mixed.get_weights()[0].dtype == np.float32
    set_global_policy("mixed_float16")
    kfunc.utils.clear_session()  # resets the global policy, as Keras's clear_session does
    assert global_policy().name == "float32"


# ---------------------------------------------------------------------- Keras parity
def test_mixed_dense_and_layer_norm_match_keras_with_the_same_weights():
    """Tolerance: bfloat16 keeps 8 significant bits (a rounding step of 2**-8 = 0.4% relative).
    Keras and kfunc cast the same float32 weights and inputs to bfloat16 and run the same JAX
    operations, but XLA may round a fused matmul + bias at a different point, so results may differ
    by a rounding step or two; 1.6e-2 relative (plus 1e-2 absolute near zero) allows two."""
    keras = pytest.importorskip("keras")
    x = rng.normal(size=(6, 5)).astype(np.float32)
    for build in (lambda M: M.Dense(4, activation="tanh", dtype="mixed_bfloat16"),
                  lambda M: M.LayerNormalization(dtype="mixed_bfloat16")):
        ours, theirs = build(L), build(keras.layers)
        ours(x)
        theirs(x)
        weights = [rng.normal(size=w.shape).astype(np.float32) for w in ours.get_weights()]
        ours.set_weights(weights)
        theirs.set_weights(weights)
        assert (ours.compute_dtype, ours.variable_dtype) == (theirs.compute_dtype, theirs.variable_dtype)
        got, expected = ours(x), keras.ops.convert_to_numpy(theirs(x))
        assert got.dtype == BF16 and expected.dtype == BF16
        np.testing.assert_allclose(np.asarray(got, np.float32), expected.astype(np.float32), rtol=1.6e-2, atol=1e-2)


# ---------------------------------------------------------------------- the compiled train step
def _dense_conv_lstm_model():
    image = kfunc.Input((5, 5, 1), name="image")
    sequence = kfunc.Input((3, 2), name="sequence")
    features = L.Flatten()(L.Conv2D(2, 3, activation="relu")(image))
    merged = L.concatenate([features, L.LSTM(3)(sequence)])
    return Model([image, sequence], L.Dense(4, activation="softmax")(L.Dense(6, activation="relu")(merged)))


def _dense_conv_lstm_data(n=8):
    return [rng.random((n, 5, 5, 1), dtype=np.float32), rng.random((n, 3, 2), dtype=np.float32)], \
        rng.integers(0, 4, n).astype(np.int32)


def _train_step_jaxpr(model, inputs, labels):
    """The jaxpr and result shapes of the model's compiled train step (built by ``fit``)."""
    trainer = model._trainer
    builder = next(iter(trainer._compiled.values())).builder
    params, state = model.get_variables()
    carry = Carry(TrainState(params, state, trainer.opt_state, trainer.step, trainer.dropout_key),
                  builder.init_metrics(), jnp.zeros((), bool))
    batch = Batch(dict(zip(model.input_names, inputs, strict=True)), (labels,), (None,))
    return jax.make_jaxpr(builder.train_step)(carry, batch), jax.eval_shape(builder.train_step, carry, batch)


def test_train_step_computes_in_bfloat16_and_keeps_float32_weights(monkeypatch):
    # XLA's convolution primitive (the CPU default is an im2col matrix product, a dot_general).
    monkeypatch.setattr(kfunc.layers.conv, "LOWERING", "xla")
    set_global_policy("mixed_bfloat16")
    model = _dense_conv_lstm_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    inputs, labels = _dense_conv_lstm_data()
    model.fit(inputs, labels, batch_size=8, epochs=1, verbose=0)
    jaxpr, result = _train_step_jaxpr(model, inputs, labels)

    dots = _operand_dtypes(jaxpr, "dot_general")  # Dense and LSTM, forward and backward
    convs = _operand_dtypes(jaxpr, "conv_general_dilated")
    assert dots and all(d == ("bfloat16", "bfloat16") for d in dots), dots
    assert convs and all(c == ("bfloat16", "bfloat16") for c in convs), convs
    scans = [e for e in _equations(jaxpr) if e.primitive.name == "scan"]
    assert any(("bfloat16", "bfloat16") in _operand_dtypes(e.params["jaxpr"], "dot_general") for e in scans)
    # Softmax exponentiates in float32; the loss and the metrics add up float32 values.
    assert {d for e in _operand_dtypes(jaxpr, "exp") for d in e} == {"float32"}
    assert _dtypes(result.metrics) <= {"float32", "int32"}
    # The optimizer reads float32 gradients and writes float32 weights.
    assert _dtypes(result.train.params) == {"float32"}
    assert _dtypes(jax.tree_util.tree_leaves(result.train.opt_state)) <= {"float32", "int32"}
    assert {w.dtype for w in model.get_weights()} == {np.dtype("float32")}
    predicted = model.predict(inputs)
    assert predicted.dtype == np.float32 and np.allclose(predicted.sum(-1), 1.0, atol=2e-2)


def test_model_outputs_are_float32_also_nested():
    set_global_policy("mixed_bfloat16")
    inputs = kfunc.Input((4,))
    last = L.Dense(3)(L.Dense(5, activation="relu")(inputs))
    inner = Model(inputs, last)
    outer_input = kfunc.Input((4,))
    outer = Model(outer_input, L.Dense(2)(inner(outer_input)))
    x = rng.random((2, 4), dtype=np.float32)
    assert last.dtype == BF16  # the last layer's own tensor: it computes in bfloat16
    assert inner(x).dtype == F32 and inner.predict(x).dtype == np.float32
    assert inner.apply(*inner.get_variables(), x)[0].dtype == F32
    assert outer.predict(x).dtype == np.float32
    # The nested model hands float32 on; the next layer casts it back to its compute dtype.
    dots = _operand_dtypes(jax.make_jaxpr(lambda v: outer.apply(*v, x)[0])(outer.get_variables()), "dot_general")
    assert dots == [("bfloat16", "bfloat16")] * 3


def test_softmax_and_normalization_statistics_stay_float32():
    set_global_policy("mixed_bfloat16")
    x = rng.normal(size=(4, 3, 6)).astype(np.float32)
    for layer in (L.Dense(6, activation="softmax"), L.Activation("softmax"), L.Activation("log_softmax")):
        layer(x)
        jaxpr = jax.make_jaxpr(lambda v, layer=layer: layer.apply(*v, x)[0])(layer.get_variables())
        assert {d for e in _operand_dtypes(jaxpr, "exp") for d in e} == {"float32"}
        assert jaxpr.out_avals[0].dtype == BF16  # the layer's output is in its compute dtype
    for layer in (L.BatchNormalization(), L.LayerNormalization(), L.GroupNormalization(groups=2)):
        layer(x)
        assert _dtypes(layer.get_variables()) == {"float32"}
        jaxpr = jax.make_jaxpr(lambda v, layer=layer: layer.apply(*v, x, training=True))(layer.get_variables())
        reductions = _operand_dtypes(jaxpr, "reduce_sum")
        assert reductions and all(r == ("float32",) for r in reductions), (layer.name, reductions)
        output, new_state = jaxpr.out_avals[0], jaxpr.out_avals[1:]
        assert output.dtype == BF16 and all(s.dtype == F32 for s in new_state)
    # Training moves BatchNormalization's float32 moving statistics by float32 statistics of its
    # inputs, which it receives in bfloat16 (as Keras; Layer- and GroupNormalization take them as given).
    bn = L.BatchNormalization(momentum=0.5)
    bn(x)
    _, state = bn.apply(*bn.get_variables(), x, training=True)
    rounded = x.astype(jnp.bfloat16).astype(np.float32)
    np.testing.assert_allclose(state["moving_mean"], 0.5 * rounded.mean(axis=(0, 1)), rtol=1e-5, atol=1e-7)


def test_one_mixed_layer_in_a_float32_model():
    inputs = kfunc.Input((4,))
    hidden = L.Dense(5, activation="relu")(inputs)
    mixed = L.Dense(5, dtype="mixed_bfloat16", name="mixed")
    outputs = L.Dense(2)(mixed(hidden))
    model = Model(inputs, outputs)
    x = rng.random((3, 4), dtype=np.float32)
    jaxpr = jax.make_jaxpr(lambda v: model.apply(*v, x)[0])(model.get_variables())
    assert _operand_dtypes(jaxpr, "dot_general") == [
        ("float32", "float32"), ("bfloat16", "bfloat16"), ("float32", "float32")
    ]
    assert model.predict(x).dtype == np.float32
    assert _dtypes(model.get_variables()) == {"float32"}
    assert [layer.dtype_policy.name for layer in model.layers[1:]] == ["float32", "mixed_bfloat16", "float32"]
    # A mixed layer last: the model still returns float32.
    last_mixed = Model(inputs, mixed(hidden))
    assert last_mixed.predict(x).dtype == np.float32


# ---------------------------------------------------------------------- config and files
def test_policy_round_trips_through_config_and_model_files(tmp_path):
    keras = pytest.importorskip("keras")
    set_global_policy("mixed_bfloat16")
    model = _dense_conv_lstm_model()
    assert model.layers[-1].get_config()["dtype"] == "mixed_bfloat16"
    assert L.Dense.from_config(model.layers[-1].get_config()).dtype_policy.name == "mixed_bfloat16"
    # Keras 3 writes the policy as a serialized object; kfunc reads that form too.
    keras_dtype = keras.layers.Dense(3, dtype="mixed_bfloat16").get_config()["dtype"]
    assert isinstance(keras_dtype, dict)
    assert L.Dense(3, dtype=keras_dtype).dtype_policy == DTypePolicy("mixed_bfloat16")
    inputs, _ = _dense_conv_lstm_data(3)
    expected = model.predict(inputs)
    path = tmp_path / "mixed.kfunc"
    model.save(path)
    set_global_policy("float32")
    loaded = load_model(path)
    assert {layer.dtype_policy.name for layer in loaded.layers if not layer.is_input_layer} == {"mixed_bfloat16"}
    np.testing.assert_array_equal(loaded.predict(inputs), expected)
    with zipfile.ZipFile(path) as archive:
        entries = json.loads(archive.read("config.json"))["weights"]
    assert {entry["dtype"] for entry in entries} == {"float32"}


def test_summary_export_and_data_parallel_fit_under_a_mixed_policy(tmp_path):
    set_global_policy("mixed_bfloat16")
    inputs = kfunc.Input((8,))
    model = Model(inputs, L.Dense(4, activation="softmax")(L.Dense(16, activation="relu")(inputs)))
    lines = []
    model.summary(print_fn=lines.append)
    assert any("Total params: 212 (848.00 B)" in line for line in lines), lines
    x = rng.normal(size=(32, 8)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 32)]
    forward = kfunc.export.load(model.export(tmp_path / "mixed.kfx", params="argument").source)
    exported = forward(x)
    assert exported.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(exported), model.predict(x))
    assert {np.asarray(w).dtype for w in forward.weights} == {np.dtype("float32")}
    if len(jax.devices()) < 4:
        return
    start = model.get_weights()
    # SGD, not Adam: Adam's first steps are +-learning_rate whatever the gradient's size, so a
    # rounding difference in a near-zero gradient would flip a whole step.
    model.compile("sgd", "categorical_crossentropy")
    one_device = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history["loss"]
    reference = model.get_weights()
    model.set_weights(start)
    model.compile("sgd", "categorical_crossentropy")
    with kfunc.distribution.DataParallel().scope():
        spread = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history["loss"]
    # Each device sums its rows' bfloat16 products, rounded to bfloat16 (2**-8 relative), before
    # the float32 mean over devices: gradients of size up to ~5 may differ by ~0.02, and the two
    # SGD steps of 0.01 move a weight by up to ~4e-4 differently.
    np.testing.assert_allclose(spread, one_device, rtol=1e-2)
    for a, b in zip(model.get_weights(), reference, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-3)


# ---------------------------------------------------------------------- training
ACCURACY_MARGIN = 0.02  # measured: 0 to 0.005 apart over seeds 0-3 (0.942 to 0.975 accuracy)


def _digits_accuracy(policy: str) -> float:
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    kfunc.utils.clear_session()
    set_global_policy(policy)
    kfunc.utils.set_random_seed(0)
    inputs = kfunc.Input((64,))
    model = Model(inputs, L.Dense(10, activation="softmax")(L.Dense(32, activation="relu")(inputs)))
    model.compile(kfunc.optimizers.Adam(learning_rate=0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1400], y[:1400], batch_size=64, epochs=5, verbose=0)
    assert {w.dtype for w in model.get_weights()} == {np.dtype("float32")}
    return model.evaluate(x[1400:], y[1400:], verbose=0, return_dict=True)["accuracy"]


@pytest.mark.slow  # trains two MLPs on 1400 digits: an accuracy run
def test_digits_mlp_under_mixed_bfloat16_reaches_the_float32_accuracy():
    """An MLP on sklearn's 8x8 digits (1400 train, 397 test, 5 epochs): the mixed_bfloat16 run's
    test accuracy is within ACCURACY_MARGIN (2 points, 8 of 397 digits) of the float32 run's."""
    reference = _digits_accuracy("float32")
    mixed = _digits_accuracy("mixed_bfloat16")
    assert reference > 0.9
    assert abs(mixed - reference) <= ACCURACY_MARGIN, (mixed, reference)
