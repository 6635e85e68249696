"""The compiled training and evaluation steps.

``train_step(carry, batch) -> carry`` is pure: forward with ``apply``, ``value_and_grad`` of the
weighted sum of per-output losses, the optax update, metric accumulation, BatchNorm state and the
dropout key threaded through. ``run_train_steps`` runs ``n`` of them in one ``lax.fori_loop``,
gathering each whole batch on the device from data put there once (``indices`` is the epoch's
shuffled order, or None when the data was reordered for the epoch), so one dispatch can cover
the whole batches of an epoch and the number of steps per dispatch never causes a recompile.
A shorter batch (the last of an epoch, or one from an iterable) runs as its own step at its true
size (``run_train_batch``, compiled once per size): no layer ever sees padding rows, so batch
statistics, activity penalties and ``add_loss`` of any layer are those of the real samples.

With the NaN guard on, a step is applied only if its loss, gradients and new weights are all
finite and no finite value of the optimizer state overflowed; otherwise it and every later step
of the dispatch are skipped. Under a ``LossScaleOptimizer`` the gradients are left out of that
check: a non-finite gradient of the scaled loss is how the loss scaler learns that its scale is too
large, and it skips that step itself (weights and the wrapped optimizer's state unchanged, scale
halved); the guard still stops on a non-finite loss, weight, layer state or optimizer state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from kfunc.core import structures
from kfunc.data.fit_data import check_target
from kfunc.layers import added_losses
from kfunc.lower import apply_stacked
from kfunc.mixed_precision import at_least_float32
from kfunc.train import losses as losses_lib
from kfunc.train.losses import TrainingConfigError
from kfunc.train.metrics import Mean, MeanMetricWrapper
from kfunc.train.metrics.log_keys import MetricEntry, metric_entries
from kfunc.train.optimizers.loss_scale import loss_scale_state, step_applied
from kfunc.train.regularization import WeightRules


# The running mean of the losses: one object for every step function (its pure form is used, so
# nothing is shared but the code), made once so that compiling makes no new variables.
LOSS_TRACKER = Mean(name="loss")


class TrainState(NamedTuple):
    """Everything a training step reads and writes. ``key``: the raw data (``uint32[2]``, see
    ``jax.random.key_data``) of the base key; step ``t`` uses ``fold_in(key, t)`` for dropout, so a
    run can resume exactly from a saved state. Raw data, because typed key arrays take a slow
    Python path in every dispatch."""

    params: dict
    state: dict
    opt_state: Any
    step: jax.Array
    key: jax.Array


class Carry(NamedTuple):
    """``train``: the TrainState; ``metrics``: accumulator states by log name; ``halted`` (set only
    with the NaN guard on): a step met a non-finite loss, gradient or update, and it and later
    ones were not applied."""

    train: TrainState
    metrics: dict
    halted: jax.Array


class Batch(NamedTuple):
    """Real samples only (never padding): every array has the same leading size ``B``."""

    inputs: dict  # input name -> (B, ...)
    targets: tuple  # per output: (B, ...) or None
    weights: tuple  # per output: (B,) or None

    @property
    def size(self) -> int:
        """``B``, a Python int (shapes are static while tracing)."""
        return jax.tree_util.tree_leaves(self.inputs)[0].shape[0]


def rows_of(data, first, batch_size: int, indices) -> Batch:
    """The batch of ``batch_size`` rows starting at ``first``: contiguous rows of ``data`` (already
    in epoch order) when ``indices`` is None, else the rows ``indices[first:first + batch_size]``."""
    if indices is None:
        picked = jax.tree_util.tree_map(lambda a: lax.dynamic_slice_in_dim(a, first, batch_size), data)
    else:
        rows = lax.dynamic_slice_in_dim(indices, first, batch_size)
        picked = jax.tree_util.tree_map(lambda a: jnp.take(a, rows, axis=0), data)
    return Batch(*picked)


def all_finite(*trees) -> jax.Array:
    """Whether every floating-point value in ``trees`` is finite (a bool scalar)."""
    finite = jnp.ones((), bool)
    for leaf in jax.tree_util.tree_leaves(trees):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            finite = finite & jnp.all(jnp.isfinite(leaf))
    return finite


def _where(condition, new, old):
    """``new`` where the bool scalar ``condition`` holds, else ``old`` (same structures)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(condition, a, b), new, old)


def stays_finite(new, old) -> jax.Array:
    """Whether no floating-point value that is finite in ``old`` is non-finite in ``new`` (same
    structure). An optimizer state may hold infinities on purpose (a "best loss so far" that
    starts at inf); what must not happen is an overflow of a finite value, e.g. Adam's second
    moment of a huge gradient, which would silently stop that weight from ever moving again."""
    kept = jnp.ones((), bool)
    for after, before in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(old), strict=True):
        if jnp.issubdtype(jnp.result_type(after), jnp.inexact):
            kept = kept & jnp.all(jnp.isfinite(after) | ~jnp.isfinite(before))
    return kept


def flatten_outputs(outputs) -> list:
    """The model's outputs (or their masks, None where none) in any structure, flat in
    ``model.outputs`` order."""
    return structures.leaves(outputs)


class _ShapeOnly(NamedTuple):
    shape: tuple


class StepBuilder:
    """Builds the pure step functions of one compiled model for a batch size.

    ``metrics``: per output, the resolved metric objects (only outputs with a loss).
    ``labels``: params-shaped tree of ``'trainable'``/``'frozen'``, or None if all are trainable.
    """

    def __init__(self, model, config, metrics: list[list], transformation, *, guard_nan: bool, placement=None,
                 folding=None, remat=False, weighted_metrics: list[list] | None = None):
        self.model = model
        self.placement = placement  # a distribution's DataPlacement, or None on one device
        self.config = config
        self.metrics = metrics
        self.transformation = transformation
        self.guard_nan = guard_nan
        self.names = [o.name for o in config.outputs]
        self.multi = len(self.names) > 1
        self.tracker = LOSS_TRACKER
        # With ``folding`` (a BlockFolding), params and state arrive in its stacked layout.
        self.folding, self.remat = folding, remat
        rules = WeightRules.of(model)  # weight regularizers and constraints
        self.rules = rules if folding is None else folding.stacked_rules(rules)
        # Every metric with its log key (Keras's names: output prefix, "weighted_" on a clash), for
        # each output given labels (one without a loss may still have metrics).
        self.entries: list[MetricEntry] = metric_entries(
            self.names if self.multi else None, config.labelled_outputs, metrics, weighted_metrics
        )

    # -------------------------------------------------------------- metric bookkeeping
    # A metric's state is the tuple of its variables' values, threaded through the compiled step
    # (``Metric.stateless_*`` lend them to the variables while the metric's own code runs).
    def init_metrics(self) -> dict:
        states = {"loss": self.tracker.stateless_reset_state()}
        for i in self.config.trained_outputs:
            if self.multi:
                states[f"{self.names[i]}_loss"] = self.tracker.stateless_reset_state()
        for entry in self.entries:
            states[entry.key] = entry.metric.stateless_reset_state()
        return states

    @property
    def log_order(self) -> list[str]:
        names = ["loss"]
        if self.multi:
            names += [f"{self.names[i]}_loss" for i in self.config.trained_outputs]
        return names + [entry.key for entry in self.entries]

    def results(self, states: dict) -> dict:
        """Log values in Keras's order: loss, per-output losses, metrics, weighted metrics."""
        out = {"loss": self.tracker.stateless_result(states["loss"])}
        if self.multi:
            for i in self.config.trained_outputs:
                out[f"{self.names[i]}_loss"] = self.tracker.stateless_result(states[f"{self.names[i]}_loss"])
        for entry in self.entries:
            out[entry.key] = entry.metric.stateless_result(states[entry.key])
        return out

    # -------------------------------------------------------------- loss
    def losses(self, params, state, batch: Batch, *, training: bool, key):
        """Total loss and, as aux, per-output losses, outputs and new state."""
        # Losses the layers add (add_loss, activity regularizers) are collected while apply traces.
        with added_losses.collecting() as added:
            if self.folding is None:
                outputs, new_state, masks = self.model.apply(
                    params, state, batch.inputs, training=training, key=key, return_masks=True
                )
            else:
                outputs, new_state, masks = apply_stacked(self.model, self.folding, params, state, batch.inputs,
                                                          training=training, key=key, return_masks=True,
                                                          remat=self.remat)
        masks = flatten_outputs(masks)
        # Losses and metrics compute in float32 even on half-precision outputs (Keras's loss dtype).
        outputs = [at_least_float32(o) for o in flatten_outputs(outputs)]
        per_output, total = {}, jnp.zeros((), jnp.float32)
        for i in self.config.labelled_outputs:
            self._check_traced_target(i, batch.targets[i], outputs[i])
        for i in self.config.trained_outputs:
            spec = self.config.outputs[i]
            weight = batch.weights[i]
            if masks[i] is None:
                per_output[i] = losses_lib.batch_loss(spec.loss, batch.targets[i], outputs[i], weight)
            else:  # padded timesteps (Embedding(mask_zero=True), Masking) carry no loss
                kept_total, kept_steps = losses_lib.masked_total(
                    spec.loss, batch.targets[i], outputs[i], masks[i], weight, output_name=self.names[i]
                )
                per_output[i] = jnp.where(kept_steps > 0, kept_total / jnp.maximum(kept_steps, 1.0), 0.0)
            total = total + spec.loss_weight * per_output[i]
        # As Keras's compute_loss: the reported loss includes the added losses and weight penalties.
        if training and not self.config.trained_outputs and not added.entries and not self.rules.penalties:
            raise TrainingConfigError(
                f"fit: model '{self.model.name}' has nothing to train on: compile() was given no loss and no layer "
                "adds one (add_loss, activity or weight regularizers); pass a loss to compile, e.g. loss='mse'."
            )
        total = total + added.total() + self.rules.penalty(params)
        return total, (per_output, outputs, new_state, masks)

    def _check_traced_target(self, i: int, target, output) -> None:
        """Labels were checked against the output's declared shape before compiling; sizes the
        model left unknown (``Input(shape=(None,))``) are checked here, while tracing."""
        declared = self.model.outputs[i].shape
        if all(d is not None for d in declared[1:]):
            return
        concrete = _ShapeOnly((None,) + tuple(output.shape[1:]))
        check_target(target, concrete, self.config.outputs[i].loss, self.names[i])

    def update_metrics(self, states: dict, total, per_output: dict, outputs: list, batch: Batch, masks=None) -> dict:
        states = dict(states)
        count = jnp.asarray(batch.size, jnp.float32)
        states["loss"] = self.tracker.stateless_update_state(states["loss"], total, sample_weight=count)
        for i in self.config.trained_outputs:
            if self.multi:
                key = f"{self.names[i]}_loss"
                states[key] = self.tracker.stateless_update_state(states[key], per_output[i], sample_weight=count)
        for entry in self.entries:
            i = entry.output
            # Keras: weighted_metrics see the sample (and class) weights, metrics do not; a mean
            # metric leaves out the padded steps of an output that carries a mask.
            weight = batch.weights[i] if entry.weighted else None
            mask = None if masks is None else masks[i]
            if mask is not None and isinstance(entry.metric, MeanMetricWrapper):
                mask = mask.astype(jnp.float32)
                weight = mask if weight is None else mask * weight.reshape(weight.shape + (1,) * (mask.ndim - 1))
            states[entry.key] = entry.metric.stateless_update_state(
                states[entry.key], batch.targets[i], outputs[i], sample_weight=weight
            )
        return states

    # -------------------------------------------------------------- steps
    def train_step(self, carry: Carry, batch: Batch) -> Carry:
        train = carry.train
        key = jax.random.fold_in(jax.random.wrap_key_data(train.key), train.step)
        scaling = loss_scale_state(train.opt_state)  # None unless a LossScaleOptimizer trains

        def objective(p):
            total, aux = self.losses(p, train.state, batch, training=True, key=key)
            # Differentiate the loss times the loss scale (float16 gradients then stay above underflow);
            # the LossScaleOptimizer divides the gradients by it again, and the logs get the plain loss.
            return (total if scaling is None else total * scaling.dynamic_scale), (total, aux)

        (_, (total, (per_output, outputs, new_state, masks))), grads = jax.value_and_grad(objective, has_aux=True)(
            train.params)
        updates, opt_state = self.transformation.update(grads, train.opt_state, train.params)
        params = self.rules.constrain(optax.apply_updates(train.params, updates))  # constraints after the update
        if scaling is not None:  # a step the loss scaler skips leaves the weights untouched, constraints too
            params = _where(step_applied(opt_state, scaling), params, train.params)
        stepped = TrainState(params, new_state, opt_state, train.step + 1, train.key)
        metrics = self.update_metrics(carry.metrics, total, per_output, outputs, batch, masks)
        if not self.guard_nan:
            return Carry(stepped, metrics, carry.halted)
        # The weights after a stop are those of the last good step: an update that overflows
        # (finite loss, infinite step) is refused like a non-finite loss.
        # Under loss scaling, non-finite gradients are the loss scaler's business (it skips the step and
        # halves the scale, by design): the guard then judges the loss, weights and states only.
        checked_grads = grads if scaling is None else ()
        finite = all_finite(total, checked_grads, params, new_state) & stays_finite(opt_state, train.opt_state)
        apply = finite & ~carry.halted
        return Carry(_where(apply, stepped, train), _where(apply, metrics, carry.metrics), carry.halted | ~finite)

    def eval_step(self, metrics: dict, params, state, batch: Batch) -> dict:
        total, (per_output, outputs, _, masks) = self.losses(params, state, batch, training=False, key=None)
        return self.update_metrics(metrics, total, per_output, outputs, batch, masks)

    # -------------------------------------------------------------- fused loops
    def run_train_steps(self, carry: Carry, data, indices, start, n, *, batch_size: int) -> Carry:
        """``n`` train steps on whole batches from step ``start`` of the epoch (logs:
        ``results(carry.metrics)``)."""

        def body(i, carry):
            return self.train_step(carry, self._batch_at(data, indices, start + i, batch_size))

        return lax.fori_loop(0, n, body, carry)

    def run_one_train_step(self, carry: Carry, data, indices, start, *, batch_size: int) -> Carry:
        """Whole batch ``start`` of the epoch alone: for one step per dispatch, without the loop
        around it (XLA's CPU while loop costs about 20% of a small model's step)."""
        return self.train_step(carry, self._batch_at(data, indices, start, batch_size))

    def run_train_batch(self, carry: Carry, batch) -> Carry:
        """One step on ``batch`` = ``(inputs, targets, weights)``, all of it real samples, at its own
        size (the short last batch of an epoch, or a batch read from an iterable)."""
        return self.train_step(carry, Batch(*batch))

    def run_eval_steps(self, metrics, params, state, data, indices, start, n, *, batch_size: int):
        def body(i, metrics):
            return self.eval_step(metrics, params, state, self._batch_at(data, indices, start + i, batch_size))

        return lax.fori_loop(0, n, body, metrics)

    def run_one_eval_step(self, metrics, params, state, data, indices, step, *, batch_size: int):
        """Evaluation of whole batch ``step`` alone (the unjitted, ``run_eagerly`` path)."""
        return self.eval_step(metrics, params, state, self._batch_at(data, indices, step, batch_size))

    def run_eval_batch(self, metrics, params, state, batch):
        """Evaluation of one ``(inputs, targets, weights)`` batch at its own size."""
        return self.eval_step(metrics, params, state, Batch(*batch))

    def _batch_at(self, data, indices, step, batch_size: int) -> Batch:
        """Whole batch ``step`` of the epoch's data (every row a real sample)."""
        if self.placement is not None:
            return Batch(*jax.tree_util.tree_map(lambda a: self.placement.batch(a, step, batch_size), data))
        return rows_of(data, step * batch_size, batch_size, indices)
