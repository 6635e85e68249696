"""Regularizers and constraints: values and projections against Keras 3, the training loss
(weight penalties, activity regularizers, add_loss) against Keras's fit and evaluate, constraints
after fit steps, model.losses, save/load, errors and compile counts."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import kfunc
from kfunc import constraints, regularizers
from kfunc.errors import LayerConfigError
from kfunc.layers import Conv2D, Dense, Layer
from kfunc.models import load_model
from kfunc.saving import UnknownObjectError, register
from kfunc.saving import registry as registry_lib
from kfunc.testing import count_compilations

rng = np.random.default_rng(0)


def _close(a, b, rtol=1e-5, atol=1e-7):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------- numerics against Keras
REGULARIZER_PAIRS = [
    (lambda R: R.L1(0.3), "l1"),
    (lambda R: R.L2(0.1), "l2"),
    (lambda R: R.L1L2(l1=0.01, l2=0.02), "l1l2"),
    (lambda R: R.L1L2(), "l1l2_zero"),
    (lambda R: R.OrthogonalRegularizer(0.05), "orthogonal_rows"),
    (lambda R: R.OrthogonalRegularizer(0.2, mode="columns"), "orthogonal_columns"),
]


@pytest.mark.parametrize("build", [p[0] for p in REGULARIZER_PAIRS], ids=[p[1] for p in REGULARIZER_PAIRS])
def test_regularizer_values_match_keras(build):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    x[2] = 0.0  # a zero row: the orthogonal regularizer's norm floor
    ours, theirs = build(regularizers), build(keras.regularizers)
    _close(ours(x), theirs(jnp.asarray(x)))  # a backend array: Keras's NumPy path differs
    assert ours.get_config() == pytest.approx(theirs.get_config())


def test_string_identifiers_use_keras_defaults():
    assert regularizers.get("l1").get_config() == {"l1": 0.01}
    assert regularizers.get("l2").get_config() == {"l2": 0.01}
    assert regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}  # Keras's documented defaults
    assert regularizers.get("L1L2").get_config() == {"l1": 0.0, "l2": 0.0}  # the class's own, as in Keras
    assert regularizers.get("orthogonal_regularizer").get_config() == {"factor": 0.01, "mode": "rows"}
    assert regularizers.get(None) is None and constraints.get(None) is None
    assert regularizers.l1_l2 is regularizers.L1L2 and constraints.max_norm is constraints.MaxNorm
    assert constraints.get("max_norm").get_config() == {"max_value": 2, "axis": 0}
    assert constraints.get("unit_norm").get_config() == {"axis": 0}
    assert constraints.get("min_max_norm").get_config() == {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0}
    assert isinstance(constraints.get("non_neg"), constraints.NonNeg)


def test_get_accepts_dicts_classes_instances_and_callables():
    l2 = regularizers.L2(0.3)
    assert regularizers.get(l2) is l2
    assert regularizers.get(regularizers.serialize(l2)) == l2
    assert regularizers.get({"class_name": "L1", "config": {"l1": 0.2}}) == regularizers.L1(0.2)
    assert regularizers.get(regularizers.L1) == regularizers.L1()
    assert regularizers.get(abs) is abs
    assert constraints.get(constraints.serialize(constraints.MaxNorm(3, axis=[0, 1]))) == constraints.MaxNorm(3, [0, 1])
    assert constraints.get({"class_name": "UnitNorm", "config": {"axis": 1}}) == constraints.UnitNorm(1)


CONSTRAINT_PAIRS = [
    (lambda C: C.MaxNorm(2.0), (6, 3), "max_norm"),
    (lambda C: C.MaxNorm(0.5, axis=[0, 1, 2]), (2, 2, 3, 4), "max_norm_conv_filters"),
    (lambda C: C.NonNeg(), (4, 3), "non_neg"),
    (lambda C: C.UnitNorm(axis=1), (4, 3), "unit_norm_rows"),
    (lambda C: C.MinMaxNorm(0.5, 1.0, rate=0.7), (6, 3), "min_max_norm"),
]


@pytest.mark.parametrize("build,shape", [p[:2] for p in CONSTRAINT_PAIRS], ids=[p[2] for p in CONSTRAINT_PAIRS])
def test_constraint_projections_match_keras(build, shape):
    w = (2.0 * rng.standard_normal(shape)).astype(np.float32)
    w[..., 0] = 0.0  # a zero column: the epsilon in the denominator
    _close(build(constraints)(w), build(keras.constraints)(w))


# ---------------------------------------------------------------------- layer arguments
LAYER_ARGUMENT_CASES = [
    ("embedding", lambda L: L.Embedding(6, 3, embeddings_regularizer="l2", embeddings_constraint="unit_norm"), (4,)),
    ("conv2d_transpose", lambda L: L.Conv2DTranspose(2, 2, kernel_regularizer="l1", bias_regularizer="l2",
                                                     activity_regularizer="l2", kernel_constraint="max_norm"), (3, 3, 2)),
    ("gru", lambda L: L.GRU(2, kernel_regularizer="l2", recurrent_regularizer="l1", bias_regularizer="l2",
                            recurrent_constraint="non_neg"), (3, 2)),
    ("batch_norm", lambda L: L.BatchNormalization(beta_regularizer="l1", gamma_regularizer="l2",
                                                  gamma_constraint="non_neg"), (3,)),
    ("layer_norm", lambda L: L.LayerNormalization(beta_regularizer="l2", beta_constraint="max_norm"), (3,)),
    ("group_norm", lambda L: L.GroupNormalization(groups=2, gamma_regularizer="l1", beta_constraint="non_neg"), (4,)),
    ("depthwise_conv2d", lambda L: L.DepthwiseConv2D(2, depthwise_regularizer="l2", bias_regularizer="l1",
                                                     depthwise_constraint="unit_norm"), (3, 3, 2)),
    ("separable_conv1d", lambda L: L.SeparableConv1D(2, 2, depthwise_regularizer="l1", pointwise_regularizer="l2",
                                                     pointwise_constraint="max_norm"), (4, 2)),
]


@pytest.mark.parametrize("build,shape", [c[1:] for c in LAYER_ARGUMENT_CASES], ids=[c[0] for c in LAYER_ARGUMENT_CASES])
def test_layer_arguments_give_keras_penalties_and_configs(build, shape):
    ours, theirs = build(kfunc.layers), build(keras.layers)
    integer = isinstance(ours, kfunc.layers.Embedding)
    x = rng.integers(0, 6, (2, *shape)) if integer else rng.standard_normal((2, *shape)).astype(np.float32)
    theirs(x)
    ours(x)
    ours.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in ours.get_weights()])
    theirs.set_weights(ours.get_weights())
    ours(x), theirs(x)
    _close(sorted(float(v) for v in ours.losses), sorted(float(v) for v in theirs.losses))
    # activity_regularizer: in the config when set (the base Layer's rule; some Keras layers list None).
    keras_keys = {k for k in theirs.get_config() if k.endswith(("_regularizer", "_constraint"))} - {"activity_regularizer"}
    assert keras_keys <= set(ours.get_config()), keras_keys - set(ours.get_config())
    for key, value in ours.get_config().items():
        if key.endswith(("_regularizer", "_constraint")):
            expected = theirs.get_config()[key]
            assert (value is None) == (expected is None), key
            if value is not None:
                assert regularizers.serialize(value)["class_name"] == expected["class_name"], key


# ---------------------------------------------------------------------- training against Keras
def _regularized_model(L, R):
    inputs = L.Input((4,))
    hidden = L.layers.Dense(3, activation="relu", kernel_regularizer="l2", activity_regularizer=R.L1(0.01))(inputs)
    outputs = L.layers.Dense(1, kernel_regularizer=R.L1L2(0.01, 0.02), bias_regularizer="l1")(hidden)
    return L.Model(inputs, outputs)


def test_fit_and_evaluate_losses_include_the_penalties_like_keras():
    x = rng.standard_normal((10, 4)).astype(np.float32)  # 10 rows: the last batch of 4 is partial
    y = rng.standard_normal((10, 1)).astype(np.float32)
    reference, model = _regularized_model(keras, keras.regularizers), _regularized_model(kfunc, regularizers)
    model.set_weights(reference.get_weights())
    reference.compile(optimizer="sgd", loss="mse")
    model.compile(optimizer="sgd", loss="mse")
    _close(model.evaluate(x, y, batch_size=4, verbose=0), reference.evaluate(x, y, batch_size=4, verbose=0))
    expected = reference.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    got = model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    _close(got, expected)
    for ours, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
        _close(ours, theirs, atol=1e-6)


def test_evaluate_is_the_plain_loss_plus_the_l2_penalty():
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, Dense(2, kernel_regularizer=regularizers.L2(0.5))(inputs))
    model.compile(optimizer="sgd", loss="mse")
    kernel, bias = model.get_weights()
    plain = np.mean((x @ kernel + bias - y) ** 2)
    _close(model.evaluate(x, y, batch_size=8, verbose=0), plain + 0.5 * np.sum(kernel**2))


def test_model_losses_lists_weight_penalties_and_the_last_eager_calls_losses():
    layer = Dense(5, kernel_initializer="ones", kernel_regularizer=regularizers.L1(0.01),
                  activity_regularizer=regularizers.L2(0.01))
    reference = keras.layers.Dense(5, kernel_initializer="ones", kernel_regularizer=keras.regularizers.L1(0.01),
                                   activity_regularizer=keras.regularizers.L2(0.01))
    x = 2.0 * np.ones((5, 5), np.float32)
    layer(x), reference(x)
    _close([float(v) for v in layer.losses], [float(v) for v in reference.losses])  # [5.0 (activity / 5), 0.25]
    assert float(sum(layer.losses)) == pytest.approx(5.25)
    layer(2.0 * x[:1])  # the next eager call replaces the activity loss: 0.01 * 5 * 20 ** 2 / 1
    assert [float(v) for v in layer.losses] == pytest.approx([20.0, 0.25])


def test_model_losses_of_a_functional_model_match_keras():
    x = rng.standard_normal((6, 4)).astype(np.float32)
    reference, model = _regularized_model(keras, keras.regularizers), _regularized_model(kfunc, regularizers)
    model.set_weights(reference.get_weights())
    assert len(model.losses) == 3  # before any call: the weight penalties only
    model(x), reference(x)
    _close([float(v) for v in model.losses], [float(v) for v in reference.losses])
    params, state = model.get_variables()
    jax.jit(model.apply)(params, state, x)  # a pure call never changes layer.losses
    _close([float(v) for v in model.losses], [float(v) for v in reference.losses])


class _KerasSquarePenalty(keras.layers.Layer):
    def call(self, x):
        self.add_loss(0.1 * keras.ops.sum(x**2))
        return 2.0 * x

    def compute_output_shape(self, shape):
        return shape


@register("test_regularizers>SquarePenalty")
class _SquarePenalty(Layer):
    """Adds ``0.1 * sum(x ** 2)`` of its input batch to the loss; returns ``2 * x``."""

    def call(self, x):
        self.add_loss(0.1 * jnp.sum(x**2))
        return 2.0 * x


def _add_loss_model(L, penalty):
    inputs = L.Input((3, 4))
    hidden = L.layers.TimeDistributed(L.layers.Dense(2, activity_regularizer="l2"))(inputs)
    hidden = L.layers.TimeDistributed(penalty())(hidden)  # a loss per timestep, summed
    return L.Model(inputs, penalty()(hidden))


def test_add_loss_and_time_distributed_losses_match_keras_fit():
    x = rng.standard_normal((8, 3, 4)).astype(np.float32)
    y = rng.standard_normal((8, 3, 2)).astype(np.float32)
    reference, model = _add_loss_model(keras, _KerasSquarePenalty), _add_loss_model(kfunc, _SquarePenalty)
    model.set_weights(reference.get_weights())
    reference.compile(optimizer="sgd", loss="mse")
    model.compile(optimizer="sgd", loss="mse")
    _close(model.evaluate(x, y, batch_size=4, verbose=0), reference.evaluate(x, y, batch_size=4, verbose=0))
    expected = reference.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    _close(model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"], expected)
    model(x), reference(x)
    _close(float(sum(model.losses)), float(sum(reference.losses)))


def test_a_frozen_layers_weights_are_neither_penalized_nor_constrained():
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    inputs = kfunc.Input((3,))
    frozen = Dense(2, kernel_regularizer=regularizers.L2(10.0), kernel_constraint=constraints.NonNeg())
    model = kfunc.Model(inputs, frozen(inputs))
    frozen.trainable = False
    model.compile(optimizer="sgd", loss="mse")
    kernel, bias = model.get_weights()
    _close(model.evaluate(x, y, batch_size=8, verbose=0), np.mean((x @ kernel + bias - y) ** 2))
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    np.testing.assert_array_equal(model.get_weights()[0], kernel)  # negative entries stay
    assert model.losses == []


# ---------------------------------------------------------------------- constraints in fit
def _constrained_model(L, C):
    inputs = L.Input((4,))
    hidden = L.layers.Dense(3, kernel_constraint=C.MaxNorm(0.5), bias_constraint="non_neg")(inputs)
    outputs = L.layers.Dense(1, kernel_constraint=C.UnitNorm(), bias_constraint=C.MinMaxNorm(0.1, 0.2, rate=0.5))(hidden)
    return L.Model(inputs, outputs)


def test_constraints_after_each_update_match_keras_fit():
    x = rng.standard_normal((10, 4)).astype(np.float32)
    y = rng.standard_normal((10, 1)).astype(np.float32)
    reference, model = _constrained_model(keras, keras.constraints), _constrained_model(kfunc, constraints)
    model.set_weights(reference.get_weights())
    reference.compile(optimizer="adam", loss="mse")
    model.compile(optimizer="adam", loss="mse")
    expected = reference.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    _close(model.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"], expected)
    for ours, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
        _close(ours, theirs, atol=1e-6)


def test_max_norm_non_neg_and_unit_norm_hold_after_fit_steps():
    x = rng.standard_normal((32, 5, 5, 2)).astype(np.float32)
    y = rng.standard_normal((32, 3, 3, 4)).astype(np.float32) * 10.0
    inputs = kfunc.Input((5, 5, 2))
    hidden = Conv2D(4, 3, kernel_constraint=constraints.UnitNorm(axis=[0, 1, 2]), bias_constraint="non_neg")(inputs)
    outputs = Dense(4, kernel_constraint=constraints.MaxNorm(1.0), bias_constraint="non_neg")(hidden)
    model = kfunc.Model(inputs, outputs)
    model.compile(optimizer=kfunc.optimizers.SGD(learning_rate=0.5), loss="mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    conv_kernel, conv_bias, dense_kernel, dense_bias = model.get_weights()
    _close(np.sqrt(np.sum(conv_kernel**2, axis=(0, 1, 2))), np.ones(4), rtol=1e-5)
    assert np.all(np.sqrt(np.sum(dense_kernel**2, axis=0)) <= 1.0 + 1e-6)
    assert np.all(conv_bias >= 0) and np.all(dense_bias >= 0)


def test_regularization_compiles_the_train_step_once():
    x = rng.standard_normal((20, 4)).astype(np.float32)
    y = rng.standard_normal((20, 1)).astype(np.float32)
    model = _regularized_model(kfunc, regularizers)
    model.compile(optimizer="adam", loss="mse")
    with count_compilations() as first:
        model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert first.of("run_train_steps") == 1
    with count_compilations() as second:
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert second.count == 0, second.names


# ---------------------------------------------------------------------- saving
@register("test_regularizers>scaled_l1")
def _scaled_l1(x):
    return 0.05 * jnp.sum(jnp.abs(x))


@register("test_regularizers>CenterPenalty")
class _CenterPenalty(regularizers.Regularizer):
    def __init__(self, strength=0.1):
        self.strength = strength

    def __call__(self, x):
        return self.strength * jnp.sum(jnp.mean(x, axis=0) ** 2)

    def get_config(self):
        return {"strength": self.strength}


def test_regularizers_and_constraints_round_trip_through_save_and_load(tmp_path):
    inputs = kfunc.Input((6,))
    hidden = Dense(4, kernel_regularizer=regularizers.OrthogonalRegularizer(0.1, mode="columns"),
                   bias_regularizer=_scaled_l1, activity_regularizer=_CenterPenalty(0.3),
                   kernel_constraint=constraints.MinMaxNorm(0.2, 0.9, rate=0.5, axis=[0]))(inputs)
    outputs = Dense(2, kernel_regularizer="l1_l2", bias_constraint="non_neg")(hidden)
    model = kfunc.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.kfunc")
    loaded = load_model(tmp_path / "m.kfunc")
    for ours, theirs in zip(model.layers[1:], loaded.layers[1:], strict=True):
        assert ours.get_config() == theirs.get_config()
    assert loaded.layers[1].bias_regularizer is _scaled_l1
    model(x), loaded(x)
    _close([float(v) for v in loaded.losses], [float(v) for v in model.losses])
    _close(loaded.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"],
           model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"])


def test_an_unregistered_regularizer_function_cannot_be_loaded(tmp_path):
    def mystery_penalty(x):
        return jnp.sum(x)

    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, Dense(2, kernel_regularizer=mystery_penalty)(inputs))
    model.save(tmp_path / "m.kfunc")
    with pytest.raises(UnknownObjectError, match="mystery_penalty"):
        load_model(tmp_path / "m.kfunc")
    assert isinstance(load_model(tmp_path / "m.kfunc", custom_objects={"mystery_penalty": mystery_penalty}), kfunc.Model)
    assert registry_lib.registered_object("mystery_penalty") is None


# ---------------------------------------------------------------------- errors
def test_bad_identifiers_and_arguments_give_clear_errors():
    with pytest.raises(LayerConfigError, match=r"Unknown regularizer 'l3'; expected one of .*'l1_l2'"):
        regularizers.get("l3")
    with pytest.raises(LayerConfigError, match="A regularizer must be a name.*received int 3"):
        regularizers.get(3)
    with pytest.raises(LayerConfigError, match="Unknown constraint 'maxnorm'; expected one of .*'max_norm'"):
        constraints.get("maxnorm")
    with pytest.raises(LayerConfigError, match="A constraint must be a name.*received float 1.5"):
        constraints.get(1.5)
    with pytest.raises(LayerConfigError, match="L2: l2 must be a non-negative finite number, received -1"):
        regularizers.L2(-1)
    with pytest.raises(LayerConfigError, match="mode must be 'rows' or 'columns', received 'diagonal'"):
        regularizers.OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(LayerConfigError, match=r"OrthogonalRegularizer applies to 2-D weights, received shape \(2, 2, 3\)"):
        regularizers.OrthogonalRegularizer()(np.ones((2, 2, 3), np.float32))
    with pytest.raises(LayerConfigError, match="'os.system'.*names no regularizer class"):
        regularizers.get({"class_name": "os.system", "config": {}})
    with pytest.raises(LayerConfigError, match="Unknown regularizer 'l2_norm'"):
        Dense(3, kernel_regularizer="l2_norm")
    with pytest.raises(LayerConfigError, match=r"Layer 'bad_loss' \(_SquarePenalty\): add_loss expects a numeric"):
        _SquarePenalty(name="bad_loss").add_loss("big")


def test_a_constraint_that_changes_the_shape_is_reported_when_fit_compiles():
    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, Dense(2, kernel_constraint=lambda w: w[0], name="shrunk")(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 3), np.float32)
    with pytest.raises(LayerConfigError, match=r"weight 'shrunk/kernel' returned shape \(2,\).*must keep the shape"):
        model.fit(x, np.ones((4, 2), np.float32), verbose=0)


@pytest.mark.parametrize("inner_batch_norm", [False, True])
def test_activity_penalties_inside_time_distributed_match_keras(inner_batch_norm):
    """With BatchNormalization inside, TimeDistributed folds time into the batch; penalties are
    still divided by the number of samples and summed over timesteps, as Keras computes them."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 3)).astype("float32")
    y = rng.standard_normal((4, 5, 2)).astype("float32")
    made = []
    for module, layers in ((keras, keras.layers), (kfunc, kfunc.layers)):
        frame = module.Input((3,))
        hidden = layers.Dense(4, activity_regularizer=module.regularizers.L2(0.1))(frame)
        if inner_batch_norm:
            hidden = layers.BatchNormalization()(hidden)
        inner = module.Model(frame, layers.Dense(2)(hidden))
        sequence = module.Input((5, 3))
        model = module.Model(sequence, layers.TimeDistributed(inner)(sequence))
        model.compile("sgd", "mse")
        made.append(model)
    reference, model = made
    model.set_weights(reference.get_weights())
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), reference.evaluate(x, y, verbose=0), rtol=1e-5)
