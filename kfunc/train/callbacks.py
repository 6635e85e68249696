"""Callbacks with Keras's hooks and arguments.

Hooks run on the host between compiled dispatches. Epoch-level hooks cost nothing per step;
a callback that overrides a batch-level hook makes ``fit`` run one step per dispatch and fetch
the logs after each (as Keras always does).
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np


class Callback:
    """Base class: override any hook. ``self.model`` and ``self.params`` are set by fit."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params: dict):
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...

    @property
    def uses_batch_hooks(self) -> bool:
        """Whether a batch-level hook is overridden (then fit syncs with the host every step)."""
        base = Callback
        return any(
            getattr(type(self), hook) is not getattr(base, hook)
            for hook in ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end")
        )


class CallbackList:
    """Calls a hook on every callback in order."""

    def __init__(self, callbacks, model, params: dict):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)
            callback.set_params(params)

    @property
    def uses_batch_hooks(self) -> bool:
        return any(c.uses_batch_hooks for c in self.callbacks)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for callback in self.callbacks:
                getattr(callback, hook)(*args, **kwargs)

        return call


class History(Callback):
    """``history.history``: each log key -> list of per-epoch values; ``history.epoch``."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _monitor_mode(monitor: str, mode: str):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', received {mode!r}.")
    if mode == "auto":
        mode = "max" if any(w in monitor for w in ("acc", "auc", "precision", "recall")) else "min"
    return mode


class _Monitor(Callback):
    """Shared by callbacks that watch one log value for improvement."""

    def __init__(self, monitor, mode, min_delta):
        super().__init__()
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode)
        self.min_delta = abs(min_delta)
        self.best = math.inf if self.mode == "min" else -math.inf

    def _value(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            available = sorted(logs or {})
            raise KeyError(
                f"{type(self).__name__} monitors '{self.monitor}', which is not in the logs {available}; pass "
                "validation data for val_ metrics or pick one of the available keys."
            )
        return float(value)

    def _improved(self, value) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stops when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    ``restore_best_weights`` puts back the weights of the best epoch."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch, self.best_weights = 0, 0, 0, None
        self.best = math.inf if self.mode == "min" else -math.inf
        if self.baseline is not None:
            self.best = self.baseline

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        value = self._value(logs)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose:
                    print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(_Monitor):
    """Saves the weights after each epoch to ``filepath`` (formatted with ``epoch`` and the logs,
    e.g. ``'w-{epoch:02d}-{val_loss:.2f}.weights.npz'``); ``save_best_only`` keeps the best only."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=True,
                 mode="auto", save_freq="epoch"):
        super().__init__(monitor, mode, 0.0)
        if save_freq != "epoch":
            raise ValueError("ModelCheckpoint: only save_freq='epoch' is supported.")
        if not save_weights_only:
            raise ValueError("ModelCheckpoint: only save_weights_only=True is supported; use model.save for whole models.")
        self.filepath, self.verbose, self.save_best_only = os.fspath(filepath), verbose, save_best_only

    def on_epoch_end(self, epoch, logs=None):
        path = self.filepath.format(epoch=epoch + 1, **(logs or {}))
        if self.save_best_only:
            value = self._value(logs)
            if not self._improved(value):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {value:.5f}, saving to {path}")
            self.best = value
        self.model.save_weights(path)


class LearningRateScheduler(Callback):
    """Sets the learning rate to ``schedule(epoch, lr)`` at the start of each epoch."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        rate = float(self.schedule(epoch, float(self.model.optimizer.learning_rate)))
        self.model.optimizer.learning_rate = rate
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(_Monitor):
    """Multiplies the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, received {factor}.")
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        value = self._value(logs)
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = float(self.model.optimizer.learning_rate)
            new = max(old * self.factor, self.min_lr)
            if old > new:
                self.model.optimizer.learning_rate = new
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class TerminateOnNaN(Callback):
    """Stops training at the first step whose loss, gradients or new weights are not finite (or
    that overflows the optimizer state), before that step's update is applied: the weights are
    those after the last good step."""

    guards_nan = True


class CSVLogger(Callback):
    """Appends one row per epoch (epoch and every log value) to a CSV file."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self._keys = None

    def on_train_begin(self, logs=None):
        self._keys = None
        if not self.append and os.path.exists(self.filename):
            os.remove(self.filename)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        new_file = not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0
        if self._keys is None:
            self._keys = sorted(logs)
        with open(self.filename, "a", newline="") as handle:
            writer = csv.writer(handle, delimiter=self.separator)
            if new_file:
                writer.writerow(["epoch", *self._keys])
            writer.writerow([epoch, *(_format(logs.get(k, "NA")) for k in self._keys)])


def _format(value):
    return float(value) if isinstance(value, (float, np.floating, np.ndarray)) else value


class LambdaCallback(Callback):
    """Callbacks from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, **hooks):
        super().__init__()
        for name, function in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook '{name}'.")
            if function is not None:
                setattr(self, name, function)

    @property
    def uses_batch_hooks(self) -> bool:
        return any(
            name in self.__dict__
            for name in ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end")
        )
