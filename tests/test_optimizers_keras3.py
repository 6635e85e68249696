"""Keras 3's optimizers kfunc adds (Lamb, Adafactor, Ftrl), the LossScaleOptimizer of
``mixed_float16``, and ``kfunc.optimizers.serialize`` / ``deserialize`` / ``get`` in Keras 3's
config form. Numbers are compared with Keras 3 on the same weights and gradients."""

import copy
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import kfunc
from kfunc import layers as L
from kfunc import optimizers as O
from kfunc.callbacks import TerminateOnNaN
from kfunc.errors import TrainingConfigError
from kfunc.mixed_precision import set_global_policy
from kfunc.models import Model

keras = pytest.importorskip("keras")
rng = np.random.default_rng(3)
SHAPES = {"kernel": (3, 4), "bias": (4,), "cube": (2, 3, 5)}  # rank 2, 1 and 3 (Adafactor factors >= 2)
START = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
GRADIENTS = [{k: (rng.normal(size=s) * (0.1 if i % 2 else 1.0)).astype(np.float32) for k, s in SHAPES.items()}
             for i in range(5)]


def _apply_both(ours, theirs, gradients=GRADIENTS, probe=None):
    """Apply ``gradients`` step by step with kfunc's transformation and Keras's optimizer (its
    trainer's path, ``stateless_apply``), both jitted; returns both final weights by name.
    ``probe(our_state, their_variables)`` is called after each step."""
    transformation = ours.transformation()
    params = {k: jnp.asarray(v) for k, v in START.items()}
    state = transformation.init(params)
    update = jax.jit(transformation.update)
    variables = [keras.Variable(START[k]) for k in SHAPES]
    theirs.build(variables)
    their_apply = jax.jit(theirs.stateless_apply)
    values, their_state = [v.value for v in variables], [v.value for v in theirs.variables]
    for step in gradients:
        updates, state = update({k: jnp.asarray(v) for k, v in step.items()}, state, params)
        params = optax.apply_updates(params, updates)
        values, their_state = their_apply(their_state, [step[k] for k in SHAPES], values)
        if probe is not None:
            probe(state, their_state)
    return {k: np.asarray(v) for k, v in params.items()}, dict(zip(SHAPES, map(np.asarray, values), strict=True))


SCHEDULE = "ExponentialDecay(0.05, 2, 0.5)"  # made on each side from its own schedules module
# The default run checks every argument (with a schedule and weight decay); the defaults run as slow.
RULES = [
    pytest.param("Lamb", {"learning_rate": 0.01}, marks=pytest.mark.slow, id="Lamb-defaults"),
    pytest.param("Lamb", {"learning_rate": SCHEDULE, "weight_decay": 0.1, "beta_1": 0.8, "epsilon": 1e-5}, id="Lamb"),
    pytest.param("Adafactor", {"learning_rate": 0.1}, marks=pytest.mark.slow, id="Adafactor-defaults"),
    pytest.param("Adafactor", {"learning_rate": SCHEDULE, "weight_decay": 0.05, "clip_threshold": 0.5,
                               "beta_2_decay": -0.6}, id="Adafactor"),
    pytest.param("Ftrl", {"learning_rate": 0.1}, marks=pytest.mark.slow, id="Ftrl-defaults"),
    pytest.param("Ftrl", {"learning_rate": SCHEDULE, "learning_rate_power": -0.7, "l1_regularization_strength": 0.01,
                          "l2_regularization_strength": 0.1, "l2_shrinkage_regularization_strength": 0.05,
                          "beta": 0.2, "weight_decay": 0.1}, id="Ftrl"),
    # Muon: the (3, 4) kernel trains with Muon, the 1-D bias and the 3-D cube with AdamW.
    pytest.param("Muon", {"learning_rate": 0.01}, marks=pytest.mark.slow, id="Muon-defaults"),
    pytest.param("Muon", {"learning_rate": SCHEDULE, "nesterov": False, "rms_rate": None, "adam_lr_ratio": 0.5,
                          "weight_decay": 0.1, "adam_weight_decay": 0.02, "ns_steps": 3, "momentum": 0.9}, id="Muon"),
]


def _made_with(module, name, arguments):
    if arguments["learning_rate"] == SCHEDULE:
        arguments = arguments | {"learning_rate": module.schedules.ExponentialDecay(0.05, 2, 0.5)}
    return getattr(module, name)(**arguments)


@pytest.mark.parametrize(("name", "arguments"), RULES)
def test_update_rules_match_keras_over_several_steps(name, arguments):
    """Rank 1, 2 and 3 weights; weight decay applied before the rule reads the weights, as Keras;
    a schedule is evaluated at the step count inside the rule (Adafactor and Ftrl use the rate
    inside their rule, not as a final scaling)."""
    ours, theirs = _apply_both(_made_with(O, name, arguments), _made_with(keras.optimizers, name, arguments))
    for key in SHAPES:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-7, err_msg=key)
        assert not np.allclose(ours[key], START[key])


def test_muon_trains_2d_weights_except_embeddings_and_excluded_layers_as_keras_chooses():
    muon = O.Muon(exclude_layers=["^head/"])
    assert not muon.uses_adamw("dense/kernel", (3, 4))
    assert muon.uses_adamw("dense/bias", (4,)) and muon.uses_adamw("conv2d/kernel", (3, 3, 1, 4))
    assert muon.uses_adamw("token_embedding/embeddings", (10, 4)) and muon.uses_adamw("head/kernel", (4, 2))
    assert not O.Muon(exclude_embeddings=False).uses_adamw("token_embedding/embeddings", (10, 4))


def test_ftrl_trains_a_dense_model_like_keras_and_its_rate_can_change_between_epochs():
    """Through ``fit``: the learning rate is a value of the optimizer state that a callback sets."""
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = rng.normal(size=(16, 2)).astype(np.float32)
    weights = [rng.normal(size=(3, 2)).astype(np.float32), np.zeros(2, np.float32)]
    ours = Model(inputs := L.Input((3,)), L.Dense(2)(inputs))
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    ours.set_weights(weights)
    theirs.set_weights(weights)
    ours.compile(O.Ftrl(0.2, l2_regularization_strength=0.01), "mse")
    theirs.compile(keras.optimizers.Ftrl(0.2, l2_regularization_strength=0.01), "mse")
    halve = [kfunc.callbacks.LearningRateScheduler(lambda epoch, rate: 0.2 / (1 + epoch))]
    halve_keras = [keras.callbacks.LearningRateScheduler(lambda epoch, rate: 0.2 / (1 + epoch))]
    ours.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=halve)
    theirs.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=halve_keras)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert ours.optimizer.learning_rate == pytest.approx(0.1)


# ---------------------------------------------------------------------- loss scaling
def test_the_loss_scale_follows_keras_through_overflows_and_growth():
    """Gradients of a scaled loss, some of them infinite: each skipped step halves the scale and
    leaves the weights alone; two finite steps in a row double it. Weights and scales as Keras's."""
    inf = np.float32(np.inf)
    overflowing = {2, 3, 6}
    gradients = [{k: (g[k] * (inf if i in overflowing and k == "bias" else 8.0)).astype(np.float32) for k in SHAPES}
                 for i, g in enumerate(GRADIENTS + GRADIENTS[:3])]
    ours = O.LossScaleOptimizer(O.Adam(0.01), initial_scale=8.0, dynamic_growth_steps=2)
    theirs = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.01), initial_scale=8.0,
                                                 dynamic_growth_steps=2)
    our_scales, their_scales = [], []

    def probe(state, their_variables):
        our_scales.append(float(state.dynamic_scale))
        scale_index = next(i for i, v in enumerate(theirs.variables) if v is theirs.dynamic_scale)
        their_scales.append(float(their_variables[scale_index]))

    ours, theirs = _apply_both(ours, theirs, gradients, probe)
    assert our_scales == their_scales == [8.0, 16.0, 8.0, 4.0, 4.0, 8.0, 4.0, 4.0]
    for key in SHAPES:
        # Adam itself: optax and Keras round the bias correction differently (1e-7 on steps of 1e-2).
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6)


X_SMALL = rng.normal(size=(32, 4)).astype(np.float32)
Y_SMALL = (X_SMALL @ rng.normal(size=(4, 1))).astype(np.float32)
# The loss weight makes every gradient of the float16 output about 1e-9: below float16's smallest
# value (6e-8), so without loss scaling the backward pass rounds them all to zero. The large
# learning rate gives the float32 weights a visible step once the gradients survive.
TINY, RATE = 1e-8, 1e6


def _float16_regressor():
    set_global_policy("mixed_float16")
    inputs = L.Input((4,))
    model = Model(inputs, L.Dense(1)(inputs))
    set_global_policy("float32")
    return model


def test_float16_gradients_underflow_without_loss_scaling_and_train_with_it(tmp_path):
    model = _float16_regressor()
    start = model.get_weights()
    model.compile(O.SGD(RATE), "mse", loss_weights=TINY)  # wrapped, as Keras 3 does under mixed_float16
    assert isinstance(model.optimizer, O.LossScaleOptimizer) and model.optimizer.name == "loss_scale_optimizer"
    assert isinstance(model.optimizer.inner_optimizer, O.SGD) and model.optimizer.learning_rate == RATE
    history = model.fit(X_SMALL, Y_SMALL, batch_size=8, epochs=3, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert not np.allclose(model.get_weights()[0], start[0])
    assert model.optimizer.dynamic_scale == 2.0**15  # 12 finite steps: no overflow, no growth yet

    unscaled = _float16_regressor()
    unscaled.set_weights(start)
    unscaled.compile(O.SGD(RATE), "mse", loss_weights=TINY, auto_scale_loss=False)
    assert isinstance(unscaled.optimizer, O.SGD)
    unscaled.fit(X_SMALL, Y_SMALL, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(unscaled.get_weights(), start, strict=True):
        np.testing.assert_array_equal(a, b)  # every gradient underflowed to zero
    unscaled.save(tmp_path / "unscaled.kfunc")  # loads with the optimizer it was trained with
    assert isinstance(kfunc.models.load_model(tmp_path / "unscaled.kfunc").optimizer, O.SGD)


def test_the_nan_guard_lets_the_loss_scaler_skip_overflowing_steps(tmp_path):
    """A scale of 2**60 overflows float16 until it has been halved enough: those steps are skipped
    by the loss scaler, never stopped by TerminateOnNaN; the model then trains, and saving keeps the
    optimizer, its wrapped optimizer with its schedule, and the scale."""
    model = _float16_regressor()
    start = model.get_weights()
    schedule = O.schedules.ExponentialDecay(RATE, 100, 0.9)
    model.compile(O.LossScaleOptimizer(O.SGD(schedule), initial_scale=2.0**60),
                  "mse", loss_weights=TINY)
    history = model.fit(X_SMALL, Y_SMALL, batch_size=8, epochs=10, shuffle=False, verbose=0,
                        callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 10
    halvings = 60 - np.log2(model.optimizer.dynamic_scale)
    assert halvings == int(halvings) and 0 < halvings < 40  # skipped steps, then 40 - halvings applied ones
    assert model.optimizer.iterations == 40 - halvings  # as Keras: updates applied, not steps run
    assert not np.allclose(model.get_weights()[0], start[0])
    assert history.history["loss"][-1] < history.history["loss"][0]

    model.save(tmp_path / "scaled.kfunc")
    loaded = kfunc.models.load_model(tmp_path / "scaled.kfunc")
    assert isinstance(loaded.optimizer, O.LossScaleOptimizer)
    assert type(loaded.optimizer.inner_optimizer._learning_rate) is O.schedules.ExponentialDecay
    assert loaded.optimizer.dynamic_scale == model.optimizer.dynamic_scale
    assert loaded.optimizer.get_config() == model.optimizer.get_config()

    # A non-finite loss is still the guard's: training stops, the weights stay finite.
    poisoned = X_SMALL.copy()
    poisoned[9] = np.nan  # in the second batch
    history = model.fit(poisoned, Y_SMALL, batch_size=8, epochs=2, shuffle=False, verbose=0,
                        callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 1
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_loss_scaling_trains_only_the_trainable_weights():
    """Frozen weights: the optimizer runs under optax.multi_transform, the scale is found inside."""
    set_global_policy("mixed_float16")
    inputs = L.Input((4,))
    frozen = L.Dense(3, trainable=False)
    model = Model(inputs, L.Dense(1)(frozen(inputs)))
    set_global_policy("float32")
    start = model.get_weights()
    model.compile(O.SGD(RATE), "mse", loss_weights=TINY)
    model.fit(X_SMALL, Y_SMALL, batch_size=8, epochs=1, shuffle=False, verbose=0)
    after = model.get_weights()
    for a, b in zip(start[:2], after[:2], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(start[2], after[2])
    assert model.optimizer.dynamic_scale == 2.0**15 and model.optimizer.iterations == 4


@pytest.mark.parametrize("name", ["Adafactor", pytest.param("Lamb", marks=pytest.mark.slow),
                                  pytest.param("Ftrl", marks=pytest.mark.slow)])
def test_new_optimizers_keep_their_state_through_a_model_file(tmp_path, name):
    inputs = L.Input((4,))
    model = Model(inputs, L.Dense(1)(L.Dense(3)(inputs)))
    model.compile(getattr(O, name)(0.01), "mse")
    model.fit(X_SMALL, Y_SMALL, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "m.kfunc")
    loaded = kfunc.models.load_model(tmp_path / "m.kfunc")
    assert type(loaded.optimizer) is type(model.optimizer)
    saved, restored = (jax_leaves(m._trainer.opt_state) for m in (model, loaded))
    for a, b in zip(saved, restored, strict=True):
        np.testing.assert_array_equal(a, b)


def jax_leaves(tree):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def test_loss_scale_optimizer_arguments_are_checked():
    with pytest.raises(TrainingConfigError, match="inner_optimizer must be a kfunc.optimizers optimizer"):
        O.LossScaleOptimizer(optax.adam(1e-3))
    with pytest.raises(TrainingConfigError, match="dynamic=False is not supported"):
        O.LossScaleOptimizer(O.Adam(), dynamic=False)
    with pytest.raises(TrainingConfigError, match="clipnorm belongs to the wrapped optimizer"):
        O.LossScaleOptimizer(O.Adam(), clipnorm=1.0)
    with pytest.raises(TrainingConfigError, match="dynamic_growth_steps must be a positive int"):
        O.LossScaleOptimizer(O.Adam(), dynamic_growth_steps=0)
    with pytest.raises(TrainingConfigError, match="initial_scale must be a positive number"):
        O.LossScaleOptimizer(O.Adam(), initial_scale=-1.0)
    with pytest.raises(TrainingConfigError, match="wraps another optimizer and cannot be made from its name"):
        O.get("loss_scale_optimizer")
    scaled = O.LossScaleOptimizer(O.Adam(0.01))
    scaled.learning_rate = 0.5  # set through to the wrapped optimizer, as Keras's property
    assert scaled.inner_optimizer.learning_rate == 0.5 == scaled.learning_rate
    assert scaled.dynamic_scale == 2.0**15 and float(scaled.scale_loss(2.0)) == 2.0**16


def test_new_optimizer_arguments_are_checked():
    with pytest.raises(TrainingConfigError, match="Ftrl: l1_regularization_strength must be zero or positive"):
        O.Ftrl(l1_regularization_strength=-1.0)
    with pytest.raises(TrainingConfigError, match="Ftrl: learning_rate_power must be zero or negative"):
        O.Ftrl(learning_rate_power=0.5)
    with pytest.raises(TrainingConfigError, match="Lamb: the update rule reads the weights"):
        transformation = O.Lamb().transformation()
        transformation.update({"w": jnp.ones(2)}, transformation.init({"w": jnp.ones(2)}))


# ---------------------------------------------------------------------- serialize / deserialize
def _as_float32(config):
    """``config`` with its floats rounded to float32 (Keras keeps the learning rate as a float32)."""
    if isinstance(config, dict):
        return {k: _as_float32(v) for k, v in config.items()}
    return float(np.float32(config)) if isinstance(config, float) else config


def test_serialized_optimizers_read_in_keras_and_back():
    schedule = O.schedules.ExponentialDecay(0.1, 10, 0.9)
    for ours in (O.Adam(0.01, beta_1=0.8, clipnorm=1.0), O.Lamb(schedule), O.Adafactor(0.02, clip_threshold=2.0),
                 O.Ftrl(0.3, beta=0.1), O.Muon(0.02, exclude_layers=["head"]), O.LossScaleOptimizer(O.Nadam(schedule), initial_scale=64.0)):
        data = O.serialize(ours)
        assert set(data) == {"module", "class_name", "config", "registered_name"}
        assert data["module"] == "keras.optimizers" and data["registered_name"] is None
        # Keras edits the dict it reads; keras.optimizers.deserialize does not know its own Lamb.
        theirs = keras.saving.deserialize_keras_object(copy.deepcopy(data))
        assert type(theirs).__name__ == type(ours).__name__
        again = O.deserialize(keras.optimizers.serialize(theirs))
        assert type(again) is type(ours) and _as_float32(O.serialize(again)) == _as_float32(data)
    assert again.dynamic_scale == 64.0 and isinstance(again.inner_optimizer._learning_rate, O.schedules.ExponentialDecay)


def test_get_reads_config_dicts_and_keras_names():
    adam = O.get({"class_name": "Adam", "config": {"learning_rate": 0.5, "use_ema": False}})
    assert isinstance(adam, O.Adam) and adam.learning_rate == 0.5
    assert isinstance(O.get("adafactor"), O.Adafactor) and isinstance(O.get("Ftrl"), O.Ftrl)
    assert isinstance(O.deserialize({"class_name": "lamb", "config": {}}), O.Lamb)


def test_deserialize_names_only_builtin_or_registered_classes():
    with pytest.raises(TrainingConfigError, match="'system' names no optimizer"):
        O.deserialize({"module": "os", "class_name": "system", "config": {}, "registered_name": None})
    with pytest.raises(TrainingConfigError, match="kfunc does not support the Keras argument use_ema"):
        O.deserialize({"class_name": "Adam", "config": {"use_ema": True}})
    with pytest.raises(TrainingConfigError, match="expects \\{'class_name'"):
        O.deserialize(["Adam"])
    with pytest.raises(TrainingConfigError, match="the learning-rate schedule 'Mystery' is neither"):
        O.deserialize({"class_name": "SGD", "config": {"learning_rate": {"class_name": "Mystery", "config": {}}}})
    with pytest.raises(TrainingConfigError, match="is the function .* which has no config"):
        O.serialize(O.SGD(optax.constant_schedule(0.1)))

    @kfunc.saving.register("tests>Tempered")
    class Tempered(O.SGD):
        pass

    try:
        data = O.serialize(Tempered(0.2))
        assert data["registered_name"] == "tests>Tempered"
        found = O.deserialize(data)
        assert type(found) is Tempered and found.learning_rate == 0.2
    finally:
        kfunc.registry.unregister("tests>Tempered")
