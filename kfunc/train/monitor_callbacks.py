"""Callbacks that watch one logged value: EarlyStopping and ReduceLROnPlateau (Keras 3's
arguments and behaviour). A monitored value missing from the logs warns and skips that epoch,
as in Keras."""

from __future__ import annotations

import warnings

import numpy as np

from kfunc.errors import CallbackError
from kfunc.train.callbacks import Callback

_LOWER_IS_BETTER = ("error", "crossentropy", "mae", "mse", "mape", "msle", "hinge", "logcosh", "divergence",
                    "poisson")
_HIGHER_IS_BETTER = ("acc", "accuracy", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "top_k")


def monitor_direction(owner: str, monitor: str, mode: str) -> str:
    """``'min'`` or ``'max'``: ``mode`` itself, or for ``'auto'`` the direction of the metric
    named by ``monitor`` (losses and errors go down; accuracies, AUC, precision, recall go up)."""
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"{owner}: mode {mode!r} is unknown; falling back to 'auto'.", stacklevel=3)
        mode = "auto"
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith("_loss") or any(word in name for word in _LOWER_IS_BETTER):
        return "min"
    if any(word in name for word in _HIGHER_IS_BETTER):
        return "max"
    raise CallbackError(
        f"{owner}: cannot tell whether monitor={monitor!r} should go up or down; pass mode='max' to keep the highest "
        "value or mode='min' to keep the lowest."
    )


class MonitorCallback(Callback):
    """Shared by callbacks that watch ``monitor`` for an improvement of more than ``min_delta``
    over ``best`` (``None``: anything improves)."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0.0):
        super().__init__()
        self.monitor, self.mode = monitor, mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.direction = None

    def _is_improvement(self, value, reference) -> bool:
        if self.direction is None:
            self.direction = monitor_direction(type(self).__name__, self.monitor, self.mode)
        if reference is None:
            return True
        # Compared in float32, as Keras's ops compare them (values at the threshold decide alike).
        if self.direction == "min":
            return bool(np.float32(value + self.min_delta) < np.float32(reference))
        return bool(np.float32(value - self.min_delta) > np.float32(reference))

    def get_monitor_value(self, logs):
        """The monitored value, or ``None`` with a warning naming the available keys."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__} monitors '{self.monitor}', which is not in the logs ({', '.join(logs)}); "
                "pass validation data for val_ metrics or monitor one of the logged keys.",
                stacklevel=3,
            )
        return value


class EarlyStopping(MonitorCallback):
    """Stops when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs, counting
    from ``start_from_epoch``; ``baseline``: improvements must also beat it to reset the wait;
    ``restore_best_weights``: at the end of training, put back the weights of the best epoch."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = None, None

    def on_epoch_end(self, epoch, logs=None):
        value = self.get_monitor_value(logs)
        if value is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by ``factor`` (not below ``min_lr``) after ``patience`` epochs
    without an improvement of ``min_delta``, then waits ``cooldown`` epochs; logs ``learning_rate``."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise CallbackError(f"ReduceLROnPlateau: factor must be below 1.0, received factor={factor}; "
                                "pass e.g. factor=0.1.")
        if kwargs:
            raise CallbackError(f"ReduceLROnPlateau got unexpected keyword argument(s) {sorted(kwargs)}.")
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr
        self.wait = self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = float(optimizer.learning_rate)
        value = self.get_monitor_value(logs)
        if value is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(value, self.best):
            self.best, self.wait = value, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old = float(optimizer.learning_rate)
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    optimizer.learning_rate = new
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0
