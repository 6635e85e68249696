"""fit and evaluate: the host loop around the compiled steps.

One ``Trainer`` per ``compile()``: it keeps the optimizer state, the step count and the dropout
key between calls, and the compiled functions (so a second ``fit`` compiles nothing new). A call
works on its own copy of the state and writes it back to the model at the end of each epoch;
if anything raises, the model's weights, optimizer state and step are put back as they were.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from kfunc import seeding
from kfunc.data.arrays import DataError
from kfunc.data.fit_data import fit_arrays, split_for_validation
from kfunc.data.sources import ArraySource, IterableSource
from kfunc.layers.base import Variables
from kfunc.layers.tree_paths import tree_from_paths
from kfunc.train import metrics as metrics_lib
from kfunc.train.callbacks import CallbackList, History
from kfunc.train.optimizers import Optimizer, transformation_of
from kfunc.train.progress import Progress
from kfunc.train.step import Carry, StepBuilder, TrainState

DISPATCH_SECONDS = 0.15  # with a progress bar, aim for this much work per dispatch


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise DataError(f"{name} must be a positive integer, received {value!r}.")
    return int(value)


def _is_array_like(value) -> bool:
    return hasattr(value, "shape") or isinstance(value, (list, tuple, dict))


class DispatchPlanner:
    """How many steps the next dispatch runs: ``steps_per_execution`` if set; one when the host
    needs every step's logs; the rest of the epoch when nothing is shown; otherwise enough for
    about ``DISPATCH_SECONDS`` so the progress bar moves a few times a second."""

    def __init__(self, steps_per_execution, *, every_step: bool, live_display: bool):
        self.fixed = None if steps_per_execution == "auto" else int(steps_per_execution)
        self.every_step, self.live_display = every_step, live_display
        self.seconds_per_step: float | None = None

    def next(self, remaining: int) -> int:
        if self.every_step:
            return 1
        if self.fixed is not None:
            return min(self.fixed, remaining)
        if not self.live_display:
            return remaining
        if self.seconds_per_step is None:
            return 1
        return max(1, min(remaining, int(DISPATCH_SECONDS / max(self.seconds_per_step, 1e-7))))

    def observe(self, steps: int, seconds: float) -> None:
        if steps:
            self.seconds_per_step = seconds / steps


def _to_host(logs: dict, order: list[str]) -> dict:
    """Device logs -> floats, in Keras's order (a compiled function returns dicts sorted by key)."""
    values = jax.device_get(logs)
    return {k: float(values[k]) for k in order}


class Trainer:
    """The training state of a compiled model and its compiled functions."""

    def __init__(self, model, config):
        self.model = model
        self.config = config
        self.optimizer = config.optimizer
        self.opt_state = None
        self.step = jnp.zeros((), jnp.int32)
        self.dropout_key = seeding.next_key()
        self._labels = None
        self._transformation = None
        self._compiled: dict = {}
        self._resolved_metrics: dict = {}
        self.metrics_names: list[str] | None = None
        self.donate = jax.default_backend() != "cpu"
        if isinstance(self.optimizer, Optimizer):
            self.optimizer._attach(self)

    # ------------------------------------------------------------------ optimizer
    def _trainable_labels(self):
        trainable = {id(v) for v in self.model.trainable_weights}
        pairs = [(p, "trainable" if id(v) in trainable else "frozen") for v, p in self.model.variable_paths() if v.trainable]
        return tree_from_paths(pairs)

    def _prepare_optimizer(self, params) -> None:
        labels = self._trainable_labels()
        if labels == self._labels and self.opt_state is not None:
            return
        transformation = transformation_of(self.optimizer)
        if any(label == "frozen" for label in jax.tree_util.tree_leaves(labels)):
            transformation = optax.multi_transform({"trainable": transformation, "frozen": optax.set_to_zero()}, labels)
        self._labels, self._transformation = labels, transformation
        self.opt_state = jax.jit(transformation.init)(params)
        self._compiled = {}

    def hyperparams(self) -> dict | None:
        """The ``inject_hyperparams`` dict inside the optimizer state (learning_rate lives there)."""
        found = []

        def visit(node):
            if hasattr(node, "hyperparams") and isinstance(node.hyperparams, dict):
                found.append(node.hyperparams)
            return node

        jax.tree_util.tree_map(visit, self.opt_state, is_leaf=lambda n: hasattr(n, "hyperparams"))
        return found[0] if found else None

    # ------------------------------------------------------------------ compiled functions
    def _metrics_for(self, label_shapes: list) -> list[list]:
        key = tuple(label_shapes)
        if key not in self._resolved_metrics:
            resolved = []
            for spec, tensor, shape in zip(self.config.outputs, self.model.outputs, label_shapes, strict=True):
                if spec.loss is None:
                    resolved.append([])
                    continue
                resolved.append([
                    metrics_lib.resolve(m, loss=spec.loss, output_shape=tensor.shape[1:], label_shape=shape)
                    for m in spec.metric_ids
                ])
            self._resolved_metrics[key] = resolved
        return self._resolved_metrics[key]

    def _functions(self, label_shapes: list, *, guard_nan: bool):
        key = (tuple(label_shapes), guard_nan)
        if key not in self._compiled:
            metrics = self._metrics_for(label_shapes)
            builder = StepBuilder(self.model, self.config, metrics, self._transformation, guard_nan=guard_nan)
            train = jax.jit(builder.run_train_steps, static_argnames=("batch_size",), donate_argnums=(0,) if self.donate else ())
            evaluate = jax.jit(builder.run_eval_steps, static_argnames=("batch_size",))
            init_metrics = jax.jit(builder.init_metrics)
            self._compiled[key] = (builder, train, evaluate, init_metrics)
        return self._compiled[key]

    # ------------------------------------------------------------------ data
    def _source(self, x, y, sample_weight, class_weight, batch_size, steps, *, shuffle, role):
        """Arrays (one, a list or a dict of them) or an iterable of ``(x, y[, sample_weight])`` batches."""
        if _is_array_like(x) or x is None:
            data = fit_arrays(self.model, self.config, x, y, sample_weight, class_weight, role=role)
            return ArraySource(data, batch_size, shuffle=shuffle, seed=seeding.next_ticket(), max_steps=steps)
        if y is not None or sample_weight is not None or class_weight is not None:
            raise DataError(f"{role}: when x is an iterable of batches, pass y and weights inside it, not as arguments.")
        if not hasattr(x, "__iter__"):
            raise DataError(
                f"{role}: x must be arrays (one, a list or a dict of them) or an iterable of (x, y) batches, "
                f"received {type(x).__name__}."
            )
        return IterableSource(self.model, self.config, x, steps, role=role)

    @staticmethod
    def _label_shapes(source) -> list:
        data = source.data if isinstance(source, ArraySource) else source.peek()
        return [None if t is None else tuple(t.shape[1:]) for t in data.targets]

    def _dispatches(self, source, epoch: int):
        """``(data, indices, start, n_max, count)`` per dispatch opportunity of one epoch."""
        if isinstance(source, ArraySource):
            yield source.on_device, source.epoch_indices(epoch), source.steps_per_epoch, source.count
        else:
            for data, indices, count in source.epoch_batches():
                yield data, indices, 1, count

    # ------------------------------------------------------------------ fit
    def fit(self, x, y, *, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
            class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps, validation_batch_size,
            validation_freq, terminate_on_nan):
        model = self.model
        batch_size = _positive_int(32 if batch_size is None else batch_size, "fit: batch_size")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise DataError(f"fit: epochs must be a non-negative integer, received {epochs!r}.")
        model._build_from_data(x)
        train_source = self._source(x, y, sample_weight, class_weight, batch_size, steps_per_epoch, shuffle=shuffle, role="fit")
        if validation_split and not isinstance(train_source, ArraySource):
            raise DataError("fit: validation_split needs array data; pass validation_data for iterables.")
        val_source = None
        if validation_split:
            train_data, val_data = split_for_validation(train_source.data, validation_split)
            train_source = ArraySource(train_data, batch_size, shuffle=shuffle, seed=train_source.seed, max_steps=steps_per_epoch)
            val_source = ArraySource(val_data, validation_batch_size or batch_size, shuffle=False, seed=(0, 0))
        elif validation_data is not None:
            val_source = self._validation_source(validation_data, validation_batch_size or batch_size, validation_steps)
        label_shapes = self._label_shapes(train_source)

        user_callbacks = list(callbacks or [])
        guard_nan = terminate_on_nan or any(getattr(c, "guards_nan", False) for c in user_callbacks)
        history = History()
        verbose = 1 if verbose == "auto" else int(verbose)
        steps = train_source.steps_per_epoch if isinstance(train_source, ArraySource) else steps_per_epoch
        callback_list = CallbackList(user_callbacks + [history], model, {"epochs": epochs, "steps": steps, "verbose": verbose})
        params, state = model.get_variables()
        snapshot = (params, state, self.opt_state, self.step)
        try:
            self._prepare_optimizer(params)
            builder, run_train, run_eval, init_metrics = self._functions(label_shapes, guard_nan=guard_nan)
            self.metrics_names = list(builder.log_order)
            if self.donate:
                params, state = jax.tree_util.tree_map(jnp.copy, (params, state))
            train = TrainState(params, state, self.opt_state, self.step, self.dropout_key)
            planner = DispatchPlanner(
                self.config.steps_per_execution,
                every_step=callback_list.uses_batch_hooks,
                live_display=Progress(None, verbose).interactive,
            )
            model.stop_training = False
            callback_list.on_train_begin()
            for epoch in range(initial_epoch, epochs):
                callback_list.on_epoch_begin(epoch)
                train = train._replace(opt_state=self.opt_state)  # a callback may have set the learning rate
                progress = Progress(steps, verbose)
                progress.header(epoch, epochs)
                carry = Carry(train, init_metrics(), jnp.zeros((), bool))
                done, logs = 0, None
                for data, indices, available, count in self._dispatches(train_source, epoch):
                    start = 0
                    while start < available:
                        n = planner.next(available - start)
                        if planner.every_step:
                            callback_list.on_train_batch_begin(done)
                        began = time.perf_counter()
                        carry, device_logs = run_train(carry, data, indices, start, n, count, batch_size=_batch_size(train_source, batch_size))
                        start += n
                        done += n
                        if planner.every_step or planner.live_display:
                            logs = _to_host(device_logs, builder.log_order)
                            planner.observe(n, time.perf_counter() - began)
                            progress.update(done, logs)
                        if planner.every_step:
                            callback_list.on_train_batch_end(done - 1, logs)
                        if guard_nan and bool(carry.halted):
                            break
                    if guard_nan and bool(carry.halted):
                        break
                train = carry.train
                epoch_logs = _to_host(device_logs, builder.log_order)
                halted = bool(carry.halted)
                if val_source is not None and (epoch + 1) % validation_freq == 0 and not (guard_nan and halted):
                    val_logs = self._evaluate_source(val_source, train.params, train.state, label_shapes, guard_nan)
                    epoch_logs |= {f"val_{k}": v for k, v in val_logs.items()}
                progress.finish(done, epoch_logs)
                self._write_back(train)
                callback_list.on_epoch_end(epoch, epoch_logs)
                if guard_nan and halted:
                    if verbose:
                        print(f"Epoch {epoch + 1}: non-finite loss; training stopped before applying that step.")
                    model.stop_training = True
                if model.stop_training:
                    break
                train = self._after_callbacks(train)
            callback_list.on_train_end()
        except BaseException:
            model.set_variables(Variables(*snapshot[:2]))
            self.opt_state, self.step = snapshot[2], snapshot[3]
            raise
        model.history = history
        return history

    def _write_back(self, train: TrainState) -> None:
        """Make the model (and callbacks reading it) see the state reached so far."""
        params, state = (train.params, train.state)
        if self.donate:
            params, state = jax.tree_util.tree_map(jnp.copy, (params, state))
        self.model.set_variables(Variables(params, state))
        self.opt_state, self.step = train.opt_state, train.step

    def _after_callbacks(self, train: TrainState) -> TrainState:
        """Callbacks may have set weights (EarlyStopping) or the learning rate: continue from them."""
        params, state = self.model.get_variables()
        if self.donate:
            params, state = jax.tree_util.tree_map(jnp.copy, (params, state))
        return TrainState(params, state, self.opt_state, self.step, train.key)

    # ------------------------------------------------------------------ evaluate
    def _validation_source(self, validation_data, batch_size, steps):
        """``(x, y)`` or ``(x, y, sample_weight)`` arrays, or an iterable of batches."""
        if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) and _is_array_like(validation_data[0]):
            x, y, *weights = validation_data
            data = fit_arrays(self.model, self.config, x, y, weights[0] if weights else None, role="validation_data")
            return ArraySource(data, batch_size, shuffle=False, seed=(0, 0), max_steps=steps)
        return self._source(validation_data, None, None, None, batch_size, steps, shuffle=False, role="validation_data")

    def _evaluate_source(self, source, params, state, label_shapes, guard_nan=False) -> dict:
        builder, _, run_eval, init_metrics = self._functions(label_shapes, guard_nan=guard_nan)
        metrics = init_metrics()
        logs = None
        for data, indices, available, count in self._dispatches(source, 0):
            metrics, logs = run_eval(metrics, params, state, data, indices, 0, available, count, batch_size=_batch_size(source, None))
        return _to_host(logs, builder.log_order)

    def evaluate(self, x, y, *, batch_size, verbose, sample_weight, steps, return_dict):
        batch_size = _positive_int(32 if batch_size is None else batch_size, "evaluate: batch_size")
        self.model._build_from_data(x)
        source = self._source(x, y, sample_weight, None, batch_size, steps, shuffle=False, role="evaluate")
        label_shapes = self._label_shapes(source)
        params, state = self.model.get_variables()
        if self._transformation is None:
            self._prepare_optimizer(params)
        started = time.perf_counter()
        logs = self._evaluate_source(source, params, state, label_shapes)
        self.metrics_names = list(logs)
        verbose = 1 if verbose == "auto" else int(verbose)
        if verbose:
            total = source.steps_per_epoch if isinstance(source, ArraySource) else None
            progress = Progress(total, verbose)
            progress.start = started
            progress.finish(total or 0, logs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values


def _batch_size(source, default):
    return source.batch_size if source.batch_size is not None else default
