"""EarlyStopping, ReduceLROnPlateau and CSVLogger take Keras 3's arguments and decide as Keras 3
does: both libraries' callbacks are fed the same sequence of epoch logs (no training needed)."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import kfunc  # noqa: E402

VAL_LOSS = [1.0, 0.9, 0.95, 0.899, 0.97, 0.85, 0.86, 0.87, 0.88, 0.84, 0.9, 0.91]


class FakeOptimizer:
    def __init__(self):
        self.learning_rate = 0.1


class FakeModel:
    """Just what the callbacks touch: stop_training, weights, the optimizer's learning rate."""

    def __init__(self):
        self.stop_training = False
        self.optimizer = FakeOptimizer()
        self.epoch = 0
        self.restored = None

    def get_weights(self):
        return [np.array(self.epoch)]

    def set_weights(self, weights):
        self.restored = int(weights[0])


def drive(callback, values, monitor="val_loss"):
    """Run ``callback`` over epochs with ``{monitor: value}`` logs; returns what it did."""
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin({})
    trace = []
    for epoch, value in enumerate(values):
        model.epoch = epoch
        callback.on_epoch_begin(epoch, {})
        logs = {"loss": value * 2, monitor: value}
        callback.on_epoch_end(epoch, logs)
        trace.append((model.stop_training, model.optimizer.learning_rate, logs.get("learning_rate")))
        if model.stop_training:
            break
    callback.on_train_end({})
    return trace, model.restored


EARLY_STOPPING = [
    {},
    {"patience": 2},
    {"patience": 2, "min_delta": 0.02},
    {"patience": 1, "baseline": 0.9},
    {"patience": 1, "start_from_epoch": 4},
    {"patience": 3, "restore_best_weights": True},
    {"patience": 20, "restore_best_weights": True},
    {"monitor": "val_loss", "mode": "max", "patience": 2},
]


@pytest.mark.parametrize("kwargs", EARLY_STOPPING)
def test_early_stopping_decides_as_keras(kwargs):
    ours = drive(kfunc.callbacks.EarlyStopping(**kwargs), VAL_LOSS)
    theirs = drive(keras.callbacks.EarlyStopping(**kwargs), VAL_LOSS)
    assert ours == theirs


REDUCE_LR = [
    {"patience": 1},
    {"patience": 1, "factor": 0.5, "cooldown": 2},
    {"patience": 2, "factor": 0.5, "min_lr": 0.03},
    {"patience": 1, "min_delta": 0.06},
    {"monitor": "val_accuracy", "mode": "max", "patience": 1, "factor": 0.2},
]


@pytest.mark.parametrize("kwargs", REDUCE_LR)
def test_reduce_lr_on_plateau_decides_as_keras(kwargs):
    monitor = kwargs.get("monitor", "val_loss")
    ours = drive(kfunc.callbacks.ReduceLROnPlateau(**kwargs), VAL_LOSS, monitor)
    theirs = drive(keras.callbacks.ReduceLROnPlateau(**kwargs), VAL_LOSS, monitor)
    assert ours == theirs


def test_missing_monitored_value_warns_and_skips():
    with pytest.warns(UserWarning, match=r"EarlyStopping monitors 'val_auc', which is not in the logs \(loss, val_loss\)"):
        trace, _ = drive(kfunc.callbacks.EarlyStopping(monitor="val_auc"), VAL_LOSS[:3])
    assert [stop for stop, *_ in trace] == [False] * 3


def test_unknown_direction_and_bad_factor_are_clear_errors():
    with pytest.raises(kfunc.errors.CallbackError, match="cannot tell whether monitor='val_foo' should go up or down; "
                                                         "pass mode='max'"):
        drive(kfunc.callbacks.EarlyStopping(monitor="val_foo"), VAL_LOSS, "val_foo")
    with pytest.raises(kfunc.errors.CallbackError, match="factor must be below 1.0, received factor=1.5"):
        kfunc.callbacks.ReduceLROnPlateau(factor=1.5)


@pytest.mark.parametrize("append", [False, True])
def test_csv_logger_writes_what_keras_writes(tmp_path, append):
    files = {}
    for name, lib in (("ours", kfunc), ("theirs", keras)):
        path = tmp_path / f"{name}.csv"
        for run in range(2 if append else 1):
            logger = lib.callbacks.CSVLogger(str(path), separator=";", append=append)
            logger.set_model(FakeModel())
            logger.on_train_begin({})
            for epoch in range(2):
                logger.on_epoch_end(epoch, {"loss": 0.5 + epoch + run, "mae": 0.25})
            logger.on_train_end({})
        files[name] = path.read_text()
    assert files["ours"] == files["theirs"]
    assert files["ours"].splitlines()[0] == "epoch;loss;mae;val_loss;val_mae"
