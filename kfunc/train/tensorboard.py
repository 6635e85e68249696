"""``TensorBoard``: scalar summaries of training as TensorBoard event files.

The files are written by the ``tensorboardX`` package (the optional extra ``kfunc[tensorboard]``),
in the layout Keras 3 uses: ``<log_dir>/train`` holds ``epoch_loss``, ``epoch_<metric>`` and
``epoch_learning_rate`` by epoch (and ``batch_<name>`` by training step with
``update_freq='batch'`` or an int); ``<log_dir>/validation`` holds the ``val_`` values under the
same ``epoch_`` names and ``evaluation_<name>_vs_iterations`` by optimizer step.
"""

from __future__ import annotations

import os
import time

import numpy as np

from kfunc.errors import CallbackError
from kfunc.train.callbacks import TRAIN_BATCH_HOOKS, Callback


def _summary_writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError(
            "kfunc.callbacks.TensorBoard writes event files with the tensorboardX package: "
            "pip install 'kfunc[tensorboard]' (or pip install tensorboardX)."
        ) from None
    return SummaryWriter


class TensorBoard(Callback):
    """Keras 3's arguments. ``update_freq``: ``'epoch'``, ``'batch'`` or an int ``n`` (batch
    summaries every ``n`` steps; batch summaries make ``fit`` dispatch one step at a time).
    ``histogram_freq``: weight histograms every that many epochs (0: none).
    ``write_steps_per_second``: log ``steps_per_second`` of each epoch. kfunc writes no graph
    (``write_graph`` is accepted and ignored: the compiled program has no Keras graph to draw);
    ``write_images``, ``profile_batch`` and ``embeddings_freq`` are refused (use ``jax.profiler``
    for traces)."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        unsupported = {"write_images": write_images, "profile_batch": profile_batch,
                       "embeddings_freq": embeddings_freq, "embeddings_metadata": embeddings_metadata}
        given = [f"{name}={value!r}" for name, value in unsupported.items() if value not in (False, 0, None)]
        if given:
            raise CallbackError(
                f"TensorBoard: kfunc writes scalar summaries and weight histograms only, received {', '.join(given)}; "
                "leave these arguments at their defaults (profile with jax.profiler.trace)."
            )
        if update_freq not in ("epoch", "batch") and (
            isinstance(update_freq, bool) or not isinstance(update_freq, int) or update_freq <= 0
        ):
            raise CallbackError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive int, "
                                f"received update_freq={update_freq!r}.")
        self.SummaryWriter = _summary_writer_class()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq, self.write_graph = histogram_freq, write_graph
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self._writers: dict = {}
        self._global_train_batch = 0
        self._epoch_start = 0.0

    def overrides(self, hooks) -> bool:
        # Batch summaries need the batch hook; epoch summaries must not slow fit down.
        if self.update_freq == "epoch" and set(hooks) & set(TRAIN_BATCH_HOOKS):
            return False
        return super().overrides(hooks)

    def _writer(self, run: str):
        if run not in self._writers:
            self._writers[run] = self.SummaryWriter(os.path.join(self.log_dir, run))
        return self._writers[run]

    def _scalars(self, run: str, prefix: str, logs: dict, step: int) -> None:
        writer = self._writer(run)
        for name, value in logs.items():
            if np.ndim(value) == 0:
                writer.add_scalar(f"{prefix}{name}", float(value), global_step=int(step))
        writer.flush()

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch":
            return
        self._global_train_batch += 1
        if self._global_train_batch % self.update_freq == 0:
            self._scalars("train", "batch_", logs or {}, self._global_train_batch)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        validation = {k.removeprefix("val_"): v for k, v in logs.items() if k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        rate = getattr(optimizer, "learning_rate", None)
        if rate is not None and not callable(rate):
            train["learning_rate"] = float(rate)
        if self.write_steps_per_second and self.params.get("steps"):
            train["steps_per_second"] = self.params["steps"] / max(time.perf_counter() - self._epoch_start, 1e-9)
        if train:
            self._scalars("train", "epoch_", train, epoch)
        if validation:
            self._scalars("validation", "epoch_", validation, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            writer = self._writer("train")
            for weight in self.model.weights:
                writer.add_histogram(f"{weight.path}/histogram", np.asarray(weight.numpy()), global_step=epoch)
            writer.flush()

    def on_test_end(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "iterations") and logs:
            self._scalars("validation", "evaluation_", {f"{k}_vs_iterations": v for k, v in logs.items()},
                          int(optimizer.iterations))

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
