"""kfunc.optimizers.schedules: values against Keras 3 at many steps (eager and jitted), configs,
serialize/deserialize, and use as an optimizer's learning_rate in fit."""

import jax
import numpy as np
import optax
import pytest

import kfunc
from kfunc.optimizers import schedules

keras = pytest.importorskip("keras")

CASES = [
    ("ExponentialDecay", (0.1, 10, 0.5), {}),
    ("ExponentialDecay", (0.1, 10, 0.5), {"staircase": True}),
    ("PiecewiseConstantDecay", ([10, 20, 45], [1.0, 0.5, 0.1, 0.01]), {}),
    ("PolynomialDecay", (0.1, 30), {}),
    ("PolynomialDecay", (0.1, 30), {"power": 2.0, "end_learning_rate": 0.01}),
    ("PolynomialDecay", (0.1, 30), {"cycle": True}),
    ("InverseTimeDecay", (0.1, 10, 0.5), {}),
    ("InverseTimeDecay", (0.1, 10, 0.5), {"staircase": True}),
    ("CosineDecay", (0.1, 50), {}),
    ("CosineDecay", (0.1, 50), {"alpha": 0.1}),
    ("CosineDecay", (0.0, 50), {"warmup_target": 0.2, "warmup_steps": 10}),
    ("CosineDecayRestarts", (0.1, 10), {}),
    ("CosineDecayRestarts", (0.1, 10), {"t_mul": 1.0, "m_mul": 0.5, "alpha": 0.1}),
    ("CosineDecayRestarts", (0.1, 7), {"t_mul": 3.0, "m_mul": 0.8}),
]
STEPS = np.concatenate([np.arange(0, 32), [44, 45, 50, 59, 60, 61, 69, 70, 89, 90, 91, 119, 120, 149]])


@pytest.mark.parametrize("name,args,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_values_and_config_match_keras(name, args, kwargs):
    ours = getattr(schedules, name)(*args, **kwargs)
    theirs = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
    expected = np.array([float(theirs(step)) for step in STEPS])
    eager = np.array([float(ours(step)) for step in STEPS])
    jitted = np.asarray(jax.jit(jax.vmap(ours))(STEPS))
    np.testing.assert_allclose(eager, expected, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(jitted, expected, rtol=1e-5, atol=1e-7)
    assert ours.get_config() == theirs.get_config()
    again = schedules.deserialize(schedules.serialize(ours))
    assert type(again) is type(ours) and again.get_config() == ours.get_config()
    # Keras's own serialized form loads too.
    from_keras = schedules.deserialize(keras.optimizers.schedules.serialize(theirs))
    assert from_keras.get_config() == ours.get_config()


class HalvingEvery(schedules.LearningRateSchedule):
    def __init__(self, rate, every):
        self.rate, self.every = rate, every

    def __call__(self, step):
        return self.rate * 0.5 ** (step // self.every)

    def get_config(self):
        return {"rate": self.rate, "every": self.every}


def test_custom_subclass_round_trips_through_custom_objects():
    schedule = HalvingEvery(0.4, 3)
    config = schedules.serialize(schedule)
    again = schedules.deserialize(config, custom_objects={"HalvingEvery": HalvingEvery})
    assert again.get_config() == {"rate": 0.4, "every": 3}
    assert float(again(7)) == pytest.approx(0.1)


def _sgd_run(learning_rate, steps=6):
    kfunc.utils.set_random_seed(0)
    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, kfunc.layers.Dense(1, kernel_initializer="ones")(inputs))
    model.compile(kfunc.optimizers.SGD(learning_rate=learning_rate), "mse")
    x = np.linspace(-1, 1, 24, dtype="float32").reshape(8, 3)
    y = np.ones((8, 1), "float32")
    model.fit(x, y, batch_size=8, epochs=steps, shuffle=False, verbose=0)
    return model.get_weights()


def test_schedule_drives_the_learning_rate_of_fit():
    schedule = schedules.PiecewiseConstantDecay([2], [0.1, 0.0])
    # With rate 0 after step 2, training longer changes nothing; a constant rate keeps moving.
    after_three = _sgd_run(schedule, steps=3)
    after_six = _sgd_run(schedule, steps=6)
    for a, b in zip(after_three, after_six, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(_sgd_run(0.1, steps=3)[0], _sgd_run(0.1, steps=6)[0])


def test_schedule_matches_an_optax_schedule_in_the_optimizer():
    ours = _sgd_run(schedules.ExponentialDecay(0.1, 2, 0.5))
    reference = _sgd_run(optax.exponential_decay(0.1, 2, 0.5))
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_errors_name_the_schedule_and_the_fix():
    with pytest.raises(ValueError, match="values must have one entry more than boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="boundaries must increase"):
        schedules.PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="ExponentialDecay: decay_steps must be a positive number"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="needs warmup_steps, a positive int"):
        schedules.CosineDecay(0.0, 10, warmup_target=0.1)
    with pytest.raises(ValueError, match="'HalvingEvery' names no schedule"):
        schedules.deserialize(schedules.serialize(HalvingEvery(0.1, 2)))
    with pytest.raises(ValueError, match="expects a LearningRateSchedule"):
        schedules.serialize(lambda step: 0.1)
    with pytest.raises(NotImplementedError, match="must override __call__"):
        schedules.LearningRateSchedule()(0)
