"""Callbacks: Keras's hooks and behaviour, and the learning rate living in the optimizer state."""

import csv

import numpy as np
import pytest

import kfunc
from kfunc.callbacks import (
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from kfunc.layers import Dense, Input
from kfunc.models import Model
from kfunc.testing import count_compilations

rng = np.random.default_rng(11)
X = rng.random((48, 4), dtype=np.float32)
Y = (X @ rng.random((4, 1), dtype=np.float32)).astype(np.float32)


def linear_model(optimizer="sgd"):
    inputs = Input(shape=(4,))
    model = Model(inputs, Dense(1)(inputs))
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_batch_hooks_run_every_step_with_running_logs():
    seen = []
    model = linear_model()
    model.fit(X, Y, batch_size=16, epochs=2, verbose=0,
              callbacks=[LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append((batch, logs["loss"])))])
    assert [b for b, _ in seen] == [0, 1, 2, 0, 1, 2]
    assert all(np.isfinite(loss) for _, loss in seen)


def test_early_stopping_restores_best_weights():
    model = linear_model(kfunc.optimizers.SGD(learning_rate=0.5))
    best = {}

    def remember(epoch, logs):
        if not best or logs["val_loss"] < best["val_loss"]:
            best.update(val_loss=logs["val_loss"], weights=model.get_weights())

    history = model.fit(
        X, Y, epochs=30, verbose=0, validation_data=(X, Y + 5 * rng.random(Y.shape, dtype=np.float32)),
        callbacks=[LambdaCallback(on_epoch_end=remember), EarlyStopping(patience=2, restore_best_weights=True)],
    )
    assert len(history.history["loss"]) < 30
    for a, b in zip(model.get_weights(), best["weights"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_saves_best_only(tmp_path):
    path = tmp_path / "best-{epoch:02d}.weights.npz"
    model = linear_model()
    model.fit(X, Y, epochs=3, verbose=0, validation_data=(X, Y),
              callbacks=[ModelCheckpoint(str(path), monitor="val_loss", save_best_only=True, save_weights_only=True)])
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved and saved[-1] == "best-03.weights.npz"
    restored = linear_model()
    restored.load_weights(tmp_path / saved[-1])
    np.testing.assert_allclose(restored.predict(X), model.predict(X), rtol=1e-6)


def test_learning_rate_scheduler_changes_the_rate_without_recompiling():
    model = linear_model(kfunc.optimizers.SGD(learning_rate=0.1))
    model.fit(X, Y, epochs=1, verbose=0)
    with count_compilations() as compiles:
        history = model.fit(X, Y, epochs=3, verbose=0,
                            callbacks=[LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)])
    assert compiles.of("run_train_steps") == 0
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    assert model.optimizer.learning_rate == pytest.approx(0.025)


def test_zero_learning_rate_freezes_the_weights():
    model = linear_model(kfunc.optimizers.SGD(learning_rate=0.1))
    model.fit(X, Y, epochs=1, verbose=0)
    model.optimizer.learning_rate = 0.0
    before = model.get_weights()
    model.fit(X, Y, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau():
    model = linear_model(kfunc.optimizers.SGD(learning_rate=0.0))
    history = model.fit(X, Y, epochs=4, verbose=0, callbacks=[ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5)])
    # With a zero rate nothing improves after the first epoch: 0 * 0.5 stays 0, so check the logged key.
    assert len(history.history["learning_rate"]) == 4
    model = linear_model(kfunc.optimizers.SGD(learning_rate=1e-6))
    model.fit(X, Y, epochs=3, verbose=0, callbacks=[ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5, min_delta=10.0)])
    assert model.optimizer.learning_rate == pytest.approx(1e-6 * 0.5**2)


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    linear_model().fit(X, Y, epochs=3, verbose=0, validation_split=0.25, callbacks=[CSVLogger(str(path))])
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert set(rows[0]) == {"epoch", "loss", "val_loss"}


def test_monitoring_a_missing_key_warns_as_keras_does():
    with pytest.warns(UserWarning, match=r"monitors 'val_loss', which is not in the logs \(loss\)"):
        history = linear_model().fit(X, Y, epochs=2, verbose=0, callbacks=[EarlyStopping()])
    assert len(history.history["loss"]) == 2
