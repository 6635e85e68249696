"""``ModelCheckpoint``: save the model or its weights during ``fit``, with Keras 3's arguments."""

from __future__ import annotations

import os
import warnings

from kfunc.errors import CallbackError
from kfunc.train.callbacks import TRAIN_BATCH_HOOKS
from kfunc.train.monitor_callbacks import MonitorCallback

MODEL_SUFFIXES = (".kfunc",)
WEIGHTS_SUFFIXES = (".npz", ".safetensors", ".h5", ".hdf5")


def _check_suffix(filepath: str, save_weights_only: bool) -> None:
    lowered = filepath.lower()
    if save_weights_only:
        if not lowered.endswith(WEIGHTS_SUFFIXES):
            raise CallbackError(
                f"ModelCheckpoint(save_weights_only=True) writes weights files, so filepath must end in a weights suffix "
                f"('.weights.npz', '.safetensors' or '.weights.h5'), received filepath={filepath!r}; rename it."
            )
        return
    if lowered.endswith(MODEL_SUFFIXES):
        return
    hint = (" (kfunc reads Keras's '.keras' files but writes whole models as '.kfunc')"
            if lowered.endswith((".keras", ".h5")) else "")
    raise CallbackError(
        f"ModelCheckpoint saves whole models to files ending in '.kfunc'{hint}, received filepath={filepath!r}; "
        "use a '.kfunc' path, or save_weights_only=True with a '.weights.npz', '.safetensors' or '.weights.h5' path."
    )


class ModelCheckpoint(MonitorCallback):
    """Saves the whole model (``.kfunc``, readable by ``kfunc.models.load_model``) or, with
    ``save_weights_only=True``, its weights (``.weights.npz``, ``.safetensors``, ``.weights.h5``).

    ``filepath`` may name log values and the epoch, e.g. ``'ckpt-{epoch:02d}-{val_loss:.2f}.kfunc'``
    (``{batch}`` too when saving by batch). ``save_freq``: ``'epoch'`` or an int ``n`` (save every
    ``n`` training batches; that makes ``fit`` dispatch one batch at a time).
    ``save_best_only``: save only when ``monitor`` improves on the best so far, which starts at
    ``initial_value_threshold``; a missing monitored value warns and saves.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0):
            raise CallbackError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive int (batches), "
                                f"received save_freq={save_freq!r}.")
        self.filepath = os.fspath(filepath)
        _check_suffix(self.filepath, save_weights_only)
        self.verbose, self.save_best_only = verbose, save_best_only
        self.save_weights_only, self.save_freq = save_weights_only, save_freq
        self._batches_since_save = 0
        self._last_batch = None
        self._current_epoch = 0

    def overrides(self, hooks) -> bool:
        # Counting batches needs the batch hook; saving by epoch must not slow fit down.
        if self.save_freq == "epoch" and set(hooks) & set(TRAIN_BATCH_HOOKS):
            return False
        return super().overrides(hooks)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # A batch index at or below the last one seen starts a new epoch.
        seen = batch + 1 if self._last_batch is None or batch <= self._last_batch else batch - self._last_batch
        self._batches_since_save += seen
        self._last_batch = batch
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _path(self, epoch: int, batch: int | None, logs: dict) -> str:
        fields = {"epoch": epoch + 1, **({"batch": batch + 1} if batch is not None and "batch" not in logs else {}), **logs}
        try:
            return self.filepath.format(**fields)
        except KeyError as error:
            raise CallbackError(
                f"ModelCheckpoint cannot format filepath {self.filepath!r}: it names {error}, which is not among "
                f"{sorted(fields)}; name only the epoch, batch or logged values."
            ) from None

    def _should_save(self, epoch: int, logs: dict, path: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {path}")
            return True
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"ModelCheckpoint can save the best model only when '{self.monitor}' is logged (logs have "
                          f"{', '.join(logs)}); saving this one.", stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(value, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {value:.5f}, saving model to {path}")
            self.best = value
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save(self, epoch: int, batch: int | None, logs: dict) -> None:
        path = self._path(epoch, batch, logs)
        if os.path.isdir(path):
            raise CallbackError(f"ModelCheckpoint: filepath {path!r} is an existing folder; give a file path.")
        if not self._should_save(epoch, logs, path):
            return
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path, overwrite=True)
        else:
            self.model.save(path, overwrite=True)
