"""The Keras model methods that run computations: predict (and, with training, fit/evaluate)."""

from __future__ import annotations

import functools
import itertools

import jax
import numpy as np

from kfunc.data import streaming
from kfunc.data.arrays import DataError, model_input_arrays, sample_count
from kfunc.data.id_checks import check_embedding_ids
from kfunc.data.prefetch import prefetched
from kfunc.data.sources import is_array_like, prediction_inputs, put_batch, whole_batch_size
from kfunc.distribution import place_weights
from kfunc.lower import apply_stacked
from kfunc.run_limits import capped_epochs, capped_steps
from kfunc.saving import weights as weights_lib
from kfunc.train import optimizers as optimizers_lib
from kfunc.train.callbacks import CallbackList
from kfunc.train.compile_config import make_config
from kfunc.train.folded_layout import TrainingLayout
from kfunc.train.loop import Trainer
from kfunc.train.losses import TrainingConfigError
from kfunc.train.progbar_logger import with_progbar


class TrainingAPI:
    """Mixin for ``Model``; every method works through the pure ``apply``."""

    _trainer = None
    stop_training = False
    stop_evaluating = False
    stop_predicting = False
    history = None

    # ------------------------------------------------------------------ training
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, *,
                steps_per_execution="auto", donate_state=None, fold_repeated_blocks=True, remat=False,
                auto_scale_loss=True, **kwargs):
        """Choose the optimizer, losses (one for all outputs, a list, or a dict by output name),
        loss weights and metrics. Resets the optimizer state.

        ``loss`` may be None (Keras 3): ``fit`` then trains on the losses layers add (``add_loss``,
        regularizers), or the model is compiled only to evaluate metrics, predict or save.

        ``steps_per_execution``: training steps per compiled dispatch (callbacks' batch hooks fire
        once per execution, as in Keras 3); ``'auto'`` runs a whole epoch per dispatch when nothing
        is displayed and sizes dispatches for a live progress bar otherwise. ``run_eagerly=True``
        or ``jit_compile=False``: run the same steps unjitted, op by op (Python inside layers runs
        at every step: for debugging, slow). ``donate_state`` (kfunc): let each dispatch reuse the training state's memory;
        ``None`` (default) decides by measurement: on accelerators always, on CPU only for
        one-step-per-dispatch training of a state under 16 MB.
        ``fold_repeated_blocks`` (kfunc): train each run of structurally identical blocks (a Python
        loop of layer calls) as one ``lax.scan`` over their stacked weights, so compile time does not
        grow with the depth; ``model.folded_blocks()`` lists them. ``remat`` (kfunc): recompute each
        folded block's activations in the backward pass (``jax.checkpoint``) to save memory: True,
        or a policy name (``'dots_saveable'``, ...) or a ``jax.checkpoint_policies`` function.
        ``auto_scale_loss``: under the ``"mixed_float16"`` policy, wrap the optimizer in a
        ``LossScaleOptimizer`` (as Keras 3).
        """
        unknown = set(kwargs) - {"run_eagerly", "jit_compile", "weighted_metrics"}
        if unknown:
            raise TrainingConfigError(f"compile() got unexpected keyword argument(s) {sorted(unknown)}.")
        if auto_scale_loss:
            optimizer = optimizers_lib.with_loss_scaling(optimizer, self.dtype_policy)
        config = make_config(self, optimizer, loss, loss_weights, metrics, steps_per_execution, dict(kwargs))
        self._trainer = Trainer(self, config, donate=None if donate_state is None else bool(donate_state),
                                fold_repeated_blocks=fold_repeated_blocks, remat=remat)
        self.optimizer = config.optimizer

    def _require_compiled(self, what: str) -> Trainer:
        if self._trainer is None:
            raise TrainingConfigError(
                f"Model '{self.name}' must be compiled before {what}: call model.compile(optimizer=..., loss=...)."
            )
        return self._trainer

    @property
    def metrics_names(self) -> list[str]:
        trainer = self._trainer
        return [] if trainer is None or trainer.metrics_names is None else list(trainer.metrics_names)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1,
            terminate_on_nan=False, device_data_budget=None):
        """Train; returns a ``History``. ``terminate_on_nan=True`` (or the TerminateOnNaN callback)
        stops at the first step with a non-finite loss, gradient or update, before applying it.
        ``device_data_budget`` (kfunc; bytes): arrays larger than this (default: a quarter of the
        device's free memory where the backend reports it, else 1 GiB) are streamed to the device
        in chunks, read from ``np.memmap`` files chunk by chunk, with the same results.
        If anything raises (a callback, bad data, ``KeyboardInterrupt``), the model and its
        optimizer are left exactly as they were before the call."""
        trainer = self._require_compiled("fit")
        epochs, steps_per_epoch = capped_epochs(epochs), capped_steps(steps_per_epoch)
        if validation_data is not None or validation_split:
            validation_steps = capped_steps(validation_steps)
        return trainer.fit(
            x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
            validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
            class_weight=class_weight, sample_weight=sample_weight, initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
            validation_batch_size=validation_batch_size,
            validation_freq=validation_freq, terminate_on_nan=terminate_on_nan,
            device_data_budget=device_data_budget,
        )

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics on ``(x, y)``: a scalar, a list in ``metrics_names`` order, or a dict.
        ``callbacks`` get ``on_test_begin``/``on_test_end`` and the test batch hooks."""
        trainer = self._require_compiled("evaluate")
        steps = capped_steps(steps)
        return trainer.evaluate(x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
                                steps=steps, return_dict=return_dict, callbacks=callbacks)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on ``(x, y)`` taken as one batch; returns the loss and metrics of that
        batch (a scalar, a list in ``metrics_names`` order, or a dict with ``return_dict``)."""
        return self._require_compiled("train_on_batch").train_on_batch(
            x, y, sample_weight=sample_weight, class_weight=class_weight, return_dict=return_dict
        )

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss and metrics of ``(x, y)`` taken as one batch, as ``train_on_batch`` returns them."""
        return self._require_compiled("test_on_batch").test_on_batch(
            x, y, sample_weight=sample_weight, return_dict=return_dict
        )

    def summary(self, line_length: int = 98, expand_nested: bool = False, print_fn=None) -> str:
        """Print (with ``print_fn``, default ``print``) and return the layer table and parameter totals."""
        from kfunc.summary import summary_text

        text = summary_text(self, line_length=line_length, expand_nested=expand_nested)
        for line in text.splitlines():
            (print_fn or print)(line)
        return text

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Write every weight under its structural path, as ``.npz``, ``.safetensors`` or Keras's
        ``.weights.h5`` by the suffix (atomic: the old file survives a failure)."""
        weights_lib.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch: bool = False) -> None:
        """Load weights matched by the model's structure from a weights file or a whole-model file
        (``.kfunc``, Keras's ``.keras``); ``skip_mismatch`` skips layers that do not fit, with a warning."""
        weights_lib.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Write architecture, weights and (``include_optimizer``) compile settings and optimizer
        state to one file, atomically; ``kfunc.models.load_model`` reads it back without running code."""
        from kfunc.saving.model_file import save_model

        save_model(self, filepath, include_optimizer=include_optimizer, overwrite=overwrite)

    def _jitted(self, name: str, build):
        """A compiled function cached on the model until its graph changes."""
        cache = self._compiled_cache
        if name not in cache:
            cache[name] = build()
        return cache[name]

    def _build_from_data(self, x) -> None:
        """A model whose input shape is not known yet (Sequential) takes it from the data."""

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` (arrays as for ``fit``), computed batch by batch by one compiled
        function; the last, shorter batch runs at its own size (one more compile, cached), so no
        layer ever sees padding rows. ``batch_size`` is capped at the number of samples. ``x`` may
        also be an iterable of batches (a ``PyDataset``, a generator): each batch is ``x`` or a
        tuple ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` whose ``x`` is used, read ahead on
        a background thread. ``callbacks`` get ``on_predict_begin``/``on_predict_end`` and, around
        each batch, the predict batch hooks (``on_predict_batch_end`` logs hold ``{"outputs": batch
        outputs}``).

        ``steps``: stop after that many batches (None: all of ``x``). ``verbose`` (``"auto"`` is
        1) shows a progress bar, as Keras 3.

        Returns an array ``(samples, ...)`` per output, in the model's output structure.
        """
        batch_size = 32 if batch_size is None else batch_size
        steps = capped_steps(steps)
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0):
            raise DataError(f"predict: steps must be a positive integer or None, received {steps!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise DataError(f"predict: batch_size must be a positive integer, received {batch_size!r}.")
        placement = Trainer.placement("predict")
        if placement is not None:
            placement.distribution.check_batch_size(batch_size, "predict")
            place_weights(self, placement.distribution)
        if is_array_like(x):
            batches, count = self._array_batches(x, batch_size, placement)
        else:
            batches, count = prediction_inputs(self, x), (len(x) if hasattr(x, "__len__") else None)
        if steps is not None:
            batches, count = itertools.islice(batches, steps), (steps if count is None else min(steps, count))
        steps = count
        forward, params, state = self._inference()
        names = self.input_names
        callback_list = predict_callbacks(self, callbacks, verbose, steps)
        chunks = []
        self.stop_predicting = False
        for index, batch in enumerate(batches):
            if callback_list is not None:
                callback_list.on_predict_batch_begin(index)
            if placement is not None:
                batch = put_batch(batch, placement)
            outputs, _ = forward(params, state, dict(zip(names, batch, strict=True)))
            chunks.append(outputs)
            if callback_list is not None:
                callback_list.on_predict_batch_end(index, {"outputs": outputs})
            if self.stop_predicting:
                break
        if callback_list is not None:
            callback_list.on_predict_end()
        if not chunks:
            raise DataError(f"predict: the data iterable of model '{self.name}' produced no batches.")
        leaves_per_chunk = [jax.tree_util.tree_leaves(c) for c in chunks]
        treedef = jax.tree_util.tree_structure(chunks[0])
        joined = [np.concatenate([np.asarray(c[i]) for c in leaves_per_chunk]) for i in range(len(leaves_per_chunk[0]))]
        return jax.tree_util.tree_unflatten(treedef, joined)

    def _inference(self):
        """``(forward, params, state)``: the inference function ``(params, state, inputs by name)
        -> (outputs, state)`` (compiled once per input shape, or run op by op when the model was
        compiled with ``run_eagerly=True``) and the variables it takes. Runs of repeated blocks
        are folded as in training (one ``lax.scan`` over their stacked weights, so compile time
        does not grow with depth): ``params``/``state`` then hold those weights stacked, once
        per call rather than once per batch. Before ``compile``, every run is folded, as
        ``kfunc.lower`` does; after, as ``compile(fold_repeated_blocks=)`` says."""
        if self._trainer is not None:
            layout = self._trainer.layout
        else:
            layout = self._jitted("inference_layout", lambda: TrainingLayout(self, fold_repeated_blocks=True))
        folding = layout.folding()
        (params, state), _ = layout.stacked(*self.get_variables())  # stacked (and placed) as training reads them
        forward = (functools.partial(self.apply, training=False) if folding is None
                   else functools.partial(apply_stacked, self, folding, training=False))
        if self._trainer is not None and not self._trainer.config.jit:
            return forward, params, state
        cached = self._jitted("predict", dict)
        if cached.get("folding", False) is not folding:
            cached.update(folding=folding, forward=jax.jit(forward))
        return cached["forward"], params, state

    def _array_batches(self, x, batch_size: int, placement):
        """``(batches, count)``: the checked input arrays of ``x``, one list (in ``input_names``
        order, ``None`` for an optional input given ``None``) per batch, and how many batches."""
        self._build_from_data(x)
        arrays = model_input_arrays(self, x)
        check_embedding_ids(self, arrays)
        count = sample_count(arrays)
        batch_size = whole_batch_size(batch_size, count, placement)
        starts = range(0, count, batch_size)
        mapped = [a is not None and streaming.is_memory_mapped(a) for a in arrays]

        def batch(start: int) -> list:
            rows = slice(start, start + batch_size)
            # Memory-mapped rows are read from the file, not mapped into the process (a 1 GB .npy
            # grew the resident memory by 1 GB), on a thread ahead of the step.
            return [streaming.take_rows(a, rows) if m else None if a is None else a[rows]
                    for a, m in zip(arrays, mapped, strict=True)]

        batches = (batch(start) for start in starts)
        return (prefetched(batches, depth=2) if any(mapped) else batches), len(starts)

    def predict_on_batch(self, x):
        """Outputs for ``x`` taken as one batch (arrays as for ``predict``), in the model's output
        structure; compiled once per batch size."""
        self._build_from_data(x)
        arrays = model_input_arrays(self, x)
        check_embedding_ids(self, arrays)
        forward, params, state = self._inference()
        outputs, _ = forward(params, state, dict(zip(self.input_names, arrays, strict=True)))
        return jax.tree_util.tree_map(np.asarray, outputs)


def predict_callbacks(model, callbacks, verbose, steps: int) -> CallbackList | None:
    """The callbacks of a ``predict`` call (a ``ProgbarLogger`` added when ``verbose`` is set), after
    ``on_predict_begin``; ``None`` without any."""
    verbose = 1 if verbose == "auto" else int(verbose)
    callbacks = with_progbar(callbacks, verbose)
    if not callbacks:
        return None
    callback_list = CallbackList(callbacks, model, {"verbose": verbose, "epochs": 1, "steps": steps})
    callback_list.on_predict_begin()
    return callback_list
