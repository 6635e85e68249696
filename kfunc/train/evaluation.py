"""evaluate, train_on_batch and test_on_batch: the ``Trainer``'s evaluation side (a mixin of
``kfunc.train.loop.Trainer``, which provides the model, placement, compiled functions, the
training state and the folded layout these methods use)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from kfunc.data import sources
from kfunc.data.arrays import DataError
from kfunc.data.fit_data import fit_arrays
from kfunc.distribution import place_weights
from kfunc.train.callbacks import CallbackList
from kfunc.train.compiled import logs_result
from kfunc.train.progbar_logger import with_progbar
from kfunc.train.rollback import rolled_back_on_failure
from kfunc.train.step import Carry


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise DataError(f"{name} must be a positive integer, received {value!r}.")
    return int(value)


class Evaluation:
    """Evaluation over a data source, and the one-batch training and evaluation calls."""

    # ------------------------------------------------------------------ evaluate
    def _evaluate_source(self, source, params, state, functions, callbacks: CallbackList | None = None):
        """Dispatch evaluation over ``source``; returns the metric states (``functions.logs`` reads them).
        With ``callbacks``: ``on_test_begin``/``on_test_end`` around it and, only if a callback
        overrides a test batch hook, one batch per dispatch with the batch hooks around each
        (otherwise a progress display sees the last batch's logs once, at the end)."""
        metrics = functions.init_metrics()
        per_batch = callbacks is not None and callbacks.uses_test_batch_hooks
        if callbacks is not None:
            callbacks.on_test_begin()
        self.model.stop_evaluating = False
        batch = 0
        for block in sources.dispatches(source, 0):
            if isinstance(block, sources.OneBatch):
                steps = [None]
            elif per_batch:
                steps = range(block.start, block.stop)
            else:
                metrics = functions.run_eval(metrics, params, state, block.data, block.indices, block.start,
                                             block.stop - block.start, batch_size=block.batch_size)
                sources.dispatched(block, metrics)
                batch += block.stop - block.start
                continue
            for step in steps:
                if per_batch:
                    callbacks.on_test_batch_begin(batch)
                if step is None:
                    metrics = functions.run_eval_batch(metrics, params, state, block.data)
                else:
                    metrics = functions.run_eval(metrics, params, state, block.data, block.indices, step, 1,
                                                 batch_size=block.batch_size)
                if per_batch:
                    callbacks.on_test_batch_end(batch, functions.logs(metrics))
                batch += 1
                if self.model.stop_evaluating:
                    break
            if self.model.stop_evaluating:
                break
        if callbacks is not None:
            logs = functions.logs(metrics)
            if not per_batch and batch and callbacks.has_progress_display:
                callbacks.show_progress("on_test_batch_end", batch - 1, logs)
            callbacks.on_test_end(logs)
        return metrics

    def evaluate(self, x, y, *, batch_size, verbose, sample_weight, steps, return_dict, callbacks=None):
        batch_size = positive_int(32 if batch_size is None else batch_size, "evaluate: batch_size")
        self.model._build_from_data(x)
        placement = self.placement("evaluate")
        source = sources.make_source(self.model, self.config, x, y, sample_weight, None, batch_size, steps, shuffle=False,
                             role="evaluate", placement=placement)
        with rolled_back_on_failure(self):
            label_shapes = sources.label_shapes(source)
            if placement is not None:
                place_weights(self.model, placement.distribution)
            params, state = self.model.get_variables()
            if self._transformation is None:
                self._prepare_optimizer(params)
            functions = self._functions(label_shapes, guard_nan=False, placement=placement)
            params, state = self.stacked_variables(params, state)  # folded blocks' weights stacked
            verbose = 1 if verbose == "auto" else int(verbose)
            callbacks = with_progbar(callbacks, verbose)
            callback_list = None
            if callbacks:
                total = source.steps_per_epoch if isinstance(source, sources.ArraySource) else steps
                callback_list = CallbackList(callbacks, self.model, {"verbose": verbose, "epochs": 1, "steps": total})
            logs = functions.logs(self._evaluate_source(source, params, state, functions, callback_list))
            self.metrics_names = list(logs)
        return logs_result(logs, return_dict)

    # ------------------------------------------------------------------ one batch
    def train_on_batch(self, x, y, *, sample_weight, class_weight, return_dict):
        """One training step on ``(x, y)`` as one batch (metrics reset first, as Keras 3); compiled
        once per batch size, so repeated calls on same-sized batches compile nothing."""
        if sample_weight is not None and class_weight is not None:
            raise DataError("train_on_batch: pass sample_weight or class_weight, not both.")
        self.model._build_from_data(x)
        placement = self.placement("fit")
        data = fit_arrays(self.model, self.config, x, y, sample_weight, class_weight, role="train_on_batch")
        with rolled_back_on_failure(self):
            self._place(placement)
            functions = self._functions(_label_shapes(data), guard_nan=False, placement=placement)
            self.metrics_names = list(functions.builder.log_order)
            carry = Carry(self._private_state(), functions.init_metrics(), jnp.zeros((), bool))
            carry = functions.run_batch(carry, sources.put_batch(sources.as_tree(data), placement))
            self._write_back(carry.train)
            logs = functions.logs(carry.metrics)
        return logs_result(logs, return_dict)

    def test_on_batch(self, x, y, *, sample_weight, return_dict):
        """Loss and metrics of ``(x, y)`` as one batch, without training."""
        self.model._build_from_data(x)
        placement = self.placement("evaluate")
        data = fit_arrays(self.model, self.config, x, y, sample_weight, None, role="test_on_batch")
        with rolled_back_on_failure(self):
            if placement is not None:
                place_weights(self.model, placement.distribution)
            params, state = self.model.get_variables()
            if self._transformation is None:
                self._prepare_optimizer(params)
            functions = self._functions(_label_shapes(data), guard_nan=False, placement=placement)
            params, state = self.stacked_variables(params, state)  # folded blocks' weights stacked
            batch = sources.put_batch(sources.as_tree(data), placement)
            logs = functions.logs(functions.run_eval_batch(functions.init_metrics(), params, state, batch))
            self.metrics_names = list(logs)
        return logs_result(logs, return_dict)


def _label_shapes(data) -> list:
    """Per output, the shape of one label (None for an output given no labels)."""
    return [None if t is None else tuple(t.shape[1:]) for t in data.targets]
