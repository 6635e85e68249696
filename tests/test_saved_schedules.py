"""A model compiled with a learning-rate schedule keeps it (and its step) in its model file."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import registry
from kfunc import layers
from kfunc.optimizers import schedules

X = np.linspace(-1, 1, 48, dtype=np.float32).reshape(16, 3)
Y = X.sum(axis=1, keepdims=True)


def _model(learning_rate):
    inputs = kfunc.Input((3,))
    model = kfunc.Model(inputs, layers.Dense(1, kernel_initializer="ones")(inputs))
    model.compile(kfunc.optimizers.Adam(learning_rate=learning_rate), "mse")
    return model


class HalvingEvery(schedules.LearningRateSchedule):
    def __init__(self, rate, steps):
        self.rate, self.steps = rate, steps

    def __call__(self, step):
        return self.rate * 0.5 ** jnp.floor(jnp.asarray(step, jnp.float32) / self.steps)

    def get_config(self):
        return {"rate": self.rate, "steps": self.steps}


@pytest.mark.parametrize("schedule", [
    schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5),
    schedules.CosineDecay(0.1, decay_steps=20, warmup_target=0.2, warmup_steps=2),
    "registered",
])
def test_schedule_and_step_survive_save_and_load(tmp_path, schedule):
    if schedule == "registered":
        kfunc.saving.register(HalvingEvery, name="HalvingEvery")
        schedule = HalvingEvery(0.1, 2)
    try:
        model = _model(schedule)
        model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "saved without its compile() settings" warning
            model.save(tmp_path / "m.kfunc")
        loaded = kfunc.models.load_model(tmp_path / "m.kfunc")
        assert type(loaded.optimizer._learning_rate) is type(schedule)
        assert loaded.optimizer._learning_rate.get_config() == schedule.get_config()
        model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        loaded.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    finally:
        registry.unregister("HalvingEvery")


def test_unregistered_schedule_class_saves_without_compile_and_says_why(tmp_path):
    model = _model(HalvingEvery(0.1, 2))
    with pytest.warns(UserWarning, match="neither a kfunc.optimizers.schedules class nor registered"):
        model.save(tmp_path / "m.kfunc")
    assert getattr(kfunc.models.load_model(tmp_path / "m.kfunc"), "optimizer", None) is None
