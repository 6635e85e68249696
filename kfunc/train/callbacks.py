"""Callbacks with Keras 3's hooks and arguments: the base class, the list that calls them, and
the small callbacks (History, LambdaCallback, LearningRateScheduler, CSVLogger, TerminateOnNaN).

Hooks run on the host between compiled dispatches. Epoch-level hooks cost nothing per step.
A callback that overrides a batch-level hook of a phase makes that phase (training, validation
and evaluation, or prediction) run one batch per dispatch and fetch the logs after each, as
Keras always does; phases whose batch hooks nobody overrides keep their fused dispatches.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from kfunc.errors import CallbackError

TRAIN_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
TEST_BATCH_HOOKS = ("on_test_batch_begin", "on_test_batch_end")
PREDICT_BATCH_HOOKS = ("on_predict_batch_begin", "on_predict_batch_end")


class Callback:
    """Base class: override any hook. ``self.model`` and ``self.params`` (``verbose``, ``epochs``,
    ``steps``) are set by ``fit``, ``evaluate`` and ``predict`` before the first hook runs.

    Every hook receives ``logs`` as a dict (empty where Keras passes no values)."""

    def __init__(self):
        self._model = None
        self.params = {}

    @property
    def model(self):
        """The model being trained; mid-epoch (in a batch hook) it holds the weights reached so far."""
        trainer = getattr(self._model, "_trainer", None)
        if trainer is not None and hasattr(trainer, "sync_live_state"):
            trainer.sync_live_state()
        return self._model

    @model.setter
    def model(self, model):
        self._model = model

    def set_model(self, model):
        self._model = model

    def set_params(self, params: dict):
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)  # Keras's older name for the training batch hook

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...

    def overrides(self, hooks) -> bool:
        """Whether this callback defines any of ``hooks`` itself (in its class or as an attribute)."""
        return any(hook in self.__dict__ or getattr(type(self), hook) is not getattr(Callback, hook) for hook in hooks)

    @property
    def uses_batch_hooks(self) -> bool:
        """Whether a training batch hook is overridden (then fit syncs with the host every step)."""
        return self.overrides(TRAIN_BATCH_HOOKS)


def _as_logs(logs) -> dict:
    """A fresh dict of host values (one per hook call, shared by the callbacks of that call, so
    one callback may add a key that the next sees, as Keras's LearningRateScheduler does)."""
    return {} if logs is None else dict(logs)


class CallbackList:
    """Calls a hook on every callback in order, always with a ``logs`` dict. ``uses_*_batch_hooks``
    say which phases need one dispatch per batch."""

    def __init__(self, callbacks, model, params: dict):
        self.callbacks = list(callbacks)
        self.params = params
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise CallbackError(
                    f"callbacks must be kfunc.callbacks.Callback instances, received {type(callback).__name__}; "
                    "subclass kfunc.callbacks.Callback or wrap functions in LambdaCallback."
                )
            callback.set_model(model)
            callback.set_params(params)

    # A progress display (a callback with ``shows_progress``, e.g. ProgbarLogger) does not need
    # every batch: its batch hooks run when the loop has the logs anyway (``show_progress``).
    def _participants(self):
        return [c for c in self.callbacks if not getattr(c, "shows_progress", False)]

    @property
    def uses_batch_hooks(self) -> bool:
        return any(c.overrides(TRAIN_BATCH_HOOKS) for c in self._participants())

    @property
    def uses_test_batch_hooks(self) -> bool:
        return any(c.overrides(TEST_BATCH_HOOKS) for c in self._participants())

    @property
    def uses_predict_batch_hooks(self) -> bool:
        return any(c.overrides(PREDICT_BATCH_HOOKS) for c in self._participants())

    @property
    def has_progress_display(self) -> bool:
        return len(self._participants()) < len(self.callbacks)

    def show_progress(self, hook: str, batch: int, logs: dict) -> None:
        """Call the batch hook ``hook`` of the progress displays only."""
        for callback in self.callbacks:
            if getattr(callback, "shows_progress", False):
                getattr(callback, hook)(batch, logs=_as_logs(logs))

    def _call(self, hook: str, *args, logs=None):
        logs = _as_logs(logs)
        for callback in self.callbacks:
            if "batch" in hook:  # Keras passes a batch hook's logs by keyword, the others by position
                getattr(callback, hook)(*args, logs=logs)
            else:
                getattr(callback, hook)(*args, logs)

    def on_train_begin(self, logs=None): self._call("on_train_begin", logs=logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs=logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs=logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs=logs)
    def on_train_batch_begin(self, batch, logs=None): self._call("on_train_batch_begin", batch, logs=logs)
    def on_train_batch_end(self, batch, logs=None): self._call("on_train_batch_end", batch, logs=logs)
    def on_test_begin(self, logs=None): self._call("on_test_begin", logs=logs)
    def on_test_end(self, logs=None): self._call("on_test_end", logs=logs)
    def on_test_batch_begin(self, batch, logs=None): self._call("on_test_batch_begin", batch, logs=logs)
    def on_test_batch_end(self, batch, logs=None): self._call("on_test_batch_end", batch, logs=logs)
    def on_predict_begin(self, logs=None): self._call("on_predict_begin", logs=logs)
    def on_predict_end(self, logs=None): self._call("on_predict_end", logs=logs)
    def on_predict_batch_begin(self, batch, logs=None): self._call("on_predict_batch_begin", batch, logs=logs)
    def on_predict_batch_end(self, batch, logs=None): self._call("on_predict_batch_end", batch, logs=logs)


class History(Callback):
    """``history.history``: each log key -> list of per-epoch values; ``history.epoch``."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class LearningRateScheduler(Callback):
    """Sets the learning rate to ``schedule(epoch, lr)`` (or ``schedule(epoch)``) at the start of
    each epoch and logs it as ``learning_rate``."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:
            rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:
            rate = self.schedule(epoch)
        if not isinstance(rate, (float, np.floating)):
            raise CallbackError(
                f"LearningRateScheduler: the schedule must return a float, it returned {rate!r} for epoch {epoch}; "
                "return float(...)."
            )
        optimizer.learning_rate = float(rate)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(rate)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class TerminateOnNaN(Callback):
    """Stops training at the first step whose loss, gradients or new weights are not finite (or
    that overflows the optimizer state), before that step's update is applied: the weights are
    those after the last good step. The check runs inside the compiled step (no host sync per
    step). ``raise_error=True``: ``fit`` raises ``NonFiniteLossError`` instead of returning (and,
    as every failed ``fit``, leaves the model as it was before the call)."""

    guards_nan = True

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = bool(raise_error)


class CSVLogger(Callback):
    """One row per epoch, ``epoch`` then the log values in sorted key order (with the ``val_``
    columns even before validation has run), as Keras writes it. ``append=True`` adds to an
    existing file (a header only if the file is empty)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys = None
        self._file = None
        self._writer = None
        self._append_header = True

    def on_train_begin(self, logs=None):
        self._append_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename) as handle:
                self._append_header = not handle.readline()
        self._close()
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer, self.keys = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys], delimiter=self.sep)
            if self._append_header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: _csv_value(logs.get(k, "NA")) for k in self.keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._writer = None


def _csv_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0):
        return f'"[{", ".join(map(str, np.ravel(value)))}]"'
    return value


class LambdaCallback(Callback):
    """Callbacks from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``;
    any hook name works (``on_test_batch_end=...``)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **hooks):
        super().__init__()
        hooks |= {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end, "on_train_begin": on_train_begin,
                  "on_train_end": on_train_end, "on_train_batch_begin": on_train_batch_begin,
                  "on_train_batch_end": on_train_batch_end}
        for name, function in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise CallbackError(
                    f"LambdaCallback: '{name}' is not a callback hook; use one of the Callback methods, e.g. "
                    "on_epoch_end or on_train_batch_end."
                )
            if function is not None:
                setattr(self, name, function)
