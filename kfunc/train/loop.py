"""fit and evaluate: the host loop around the compiled steps.

One ``Trainer`` per ``compile()``: it keeps the optimizer state, the step count and the dropout
key between calls, and the compiled functions (so a second ``fit`` compiles nothing new). A call
works on its own copy of the state and writes it back to the model at the end of each epoch;
if anything raises (``KeyboardInterrupt`` included), everything the call changed is put back as
it was (``kfunc/train/rollback.py``).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding

from kfunc import distribution as distribution_lib
from kfunc import seeding
from kfunc.data import sources
from kfunc.data.arrays import DataError
from kfunc.errors import NonFiniteLossError
from kfunc.data.streaming import check_budget
from kfunc.distribution import DataPlacement, place_like_weights, place_weights
from kfunc.core.tree_paths import tree_from_paths
from kfunc.layers.weights_api import Variables
from kfunc.folding import BlockFolding, remat_policy
from kfunc.train.folded_layout import TrainingLayout
from kfunc.train import metrics as metrics_lib
from kfunc.train.metrics.log_keys import resolve_output_metrics
from kfunc.train.backup import BackupAndRestore, ResumePoint
from kfunc.train.callbacks import CallbackList, History
from kfunc.train.dispatch import DispatchPlanner
from kfunc.train.optimizers import Optimizer, transformation_of
from kfunc.train.packing import PackedSteps
from kfunc.interactive_logging import stdout_is_live
from kfunc.train.progbar_logger import with_progbar
from kfunc.train.rollback import rolled_back_on_failure
from kfunc.train.compiled import Compiled, copy_tree, jitted, unjitted
from kfunc.train.evaluation import Evaluation, positive_int
from kfunc.train.step import Carry, StepBuilder, TrainState

ONE_STEP_DONATION_BYTES = 16 * 2**20  # on CPU, one-step dispatches donate training states this small


class Trainer(Evaluation):
    """The training state of a compiled model and its compiled functions."""

    def __init__(self, model, config, *, donate: bool | None = None, fold_repeated_blocks: bool = True,
                 remat=False):
        self.model = model
        # Runs of repeated blocks train as scans over stacked weights: the stacked layout exists
        # only in the training state (stacked when it is created, unstacked on write-back).
        self.layout = TrainingLayout(model, fold_repeated_blocks)
        self.fold_repeated_blocks = self.layout.fold_repeated_blocks
        remat_policy(remat)  # refuses an unknown policy at compile time
        self.remat = remat
        self.config = config
        self.optimizer = config.optimizer
        self.opt_state = None
        self.step = jnp.zeros((), jnp.int32)
        self.dropout_key = jax.random.key_data(seeding.next_key())
        self._labels = None
        self._transformation = None
        self._compiled: dict = {}
        self._resolved_metrics: dict = {}
        self.metrics_names: list[str] | None = None
        self._live: TrainState | None = None  # the state mid-epoch, until a callback asks for it
        # Donating the state lets a dispatch reuse its memory. On accelerators, where memory is
        # short: always. On CPU, measured (benchmarks/run.py, "donated" systems): one step per
        # dispatch, it doubles the steps/s of the tiny model (packed carry) and adds 10-14% on the
        # guide's MLP (0.7 MB of state) but costs 23% on the LSTM model (60 MB, most of it the
        # embedding); a fused loop of steps gains nothing from it (MLP) or loses 11% (LSTM).
        self.donate = donate
        self.donate_packed = True if donate is None else donate
        self.donate_fused = jax.default_backend() != "cpu" if donate is None else donate
        self.donate_one_step = self.donate_fused
        if isinstance(self.optimizer, Optimizer):
            self.optimizer._attach(self)

    # ------------------------------------------------------------------ optimizer
    def _trainable_labels(self):
        trainable = {id(v) for v in self.model.trainable_weights}
        pairs = [(p, "trainable" if id(v) in trainable else "frozen") for v, p in self.model.variable_paths() if v.trainable]
        return tree_from_paths(pairs)

    def folding(self) -> BlockFolding | None:
        """The runs of repeated blocks this trainer folds (``TrainingLayout.folding``)."""
        return self.layout.folding()

    def stacked_variables(self, params: dict, state: dict) -> tuple[dict, dict]:
        """``(params, state)`` as the compiled functions read them (``TrainingLayout.stacked``)."""
        return self.layout.stacked(params, state)[0]

    def _prepare_optimizer(self, params) -> None:
        labels = self._trainable_labels()
        if labels == self._labels and self.opt_state is not None:
            return
        transformation = transformation_of(self.optimizer)
        if any(label == "frozen" for label in jax.tree_util.tree_leaves(labels)):
            folding = self.folding()
            # The optimizer state is kept in the model's layout and stepped in the stacked one.
            stacked = None if folding is None else folding.stack_tree(labels, combine=lambda first, *_: first)
            by_layout = labels if stacked is None else (lambda p: stacked if set(p) == set(stacked) else labels)
            transformation = optax.multi_transform({"trainable": transformation, "frozen": optax.set_to_zero()}, by_layout)
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
    def _metrics_for(self, label_shapes: list) -> tuple[list[list], list[list]]:
        """``(metrics, weighted_metrics)`` per output, resolved once per label shapes."""
        key = tuple(label_shapes)
        if key not in self._resolved_metrics:
            self._resolved_metrics[key] = resolve_output_metrics(self.config, self.model.outputs, label_shapes,
                                                                 metrics_lib.resolve)
        return self._resolved_metrics[key]

    def _decide_one_step_donation(self) -> None:
        """On CPU, by default, donate the state to one-step dispatches when it is small."""
        if self.donate is None and jax.default_backend() == "cpu":
            params, state = self.model.get_variables()
            size = sum(getattr(leaf, "nbytes", 8) for leaf in jax.tree_util.tree_leaves((params, state, self.opt_state)))
            self.donate_one_step = size <= ONE_STEP_DONATION_BYTES

    def _functions(self, label_shapes: list, *, guard_nan: bool, placement=None):
        key = (tuple(label_shapes), guard_nan, placement and placement.distribution, id(self.folding()))
        if key not in self._compiled:
            self._decide_one_step_donation()
            metrics, weighted_metrics = self._metrics_for(label_shapes)
            builder = StepBuilder(self.model, self.config, metrics, self._transformation, guard_nan=guard_nan,
                                  placement=placement, weighted_metrics=weighted_metrics, folding=self.folding(),
                                  remat=self.remat)
            self._compiled[key] = (jitted(builder, donate_fused=self.donate_fused, donate_one_step=self.donate_one_step)
                                  if self.config.jit else unjitted(builder))
        return self._compiled[key]

    # ------------------------------------------------------------------ data
    @staticmethod
    def placement(role: str) -> DataPlacement | None:
        """How batches are split over devices under the distribution in effect, if any."""
        current = distribution_lib.distribution()
        return None if current is None else DataPlacement(current, role)

    def _place(self, placement: DataPlacement | None) -> Variables:
        """Prepare the optimizer; under a distribution, first put the weights where it wants them
        and then the optimizer state where its weights are. Returns the model's variables."""
        shardings = place_weights(self.model, placement.distribution) if placement is not None else None
        variables = self.model.get_variables()
        self._prepare_optimizer(variables.params)
        if shardings is not None:
            self.opt_state = place_like_weights(self.opt_state, shardings, placement.distribution)
        return variables

    # ------------------------------------------------------------------ fit
    def fit(self, x, y, *, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
            class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps, validation_batch_size,
            validation_freq, terminate_on_nan, device_data_budget=None):
        model = self.model
        budget = check_budget(device_data_budget, "fit")
        batch_size = positive_int(32 if batch_size is None else batch_size, "fit: batch_size")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise DataError(f"fit: epochs must be a non-negative integer, received {epochs!r}.")
        model._build_from_data(x)
        placement = self.placement("fit")
        train_source = sources.make_source(self.model, self.config, x, y, sample_weight, class_weight, batch_size,
                                           steps_per_epoch, shuffle=shuffle, role="fit", placement=placement,
                                           budget=budget)
        if validation_split and not isinstance(train_source, sources.ArraySource):
            raise DataError("fit: validation_split needs array data; pass validation_data for iterables.")
        val_source = None
        if validation_split:
            train_data, val_data = sources.split_for_validation(train_source.data, validation_split)
            train_source = sources.array_source(train_data, batch_size, shuffle=shuffle, seed=train_source.seed,
                                                max_steps=steps_per_epoch, placement=placement, budget=budget)
            val_source = sources.array_source(val_data, validation_batch_size or batch_size, shuffle=False,
                                              seed=(0, 0), placement=placement, budget=budget)
        elif validation_data is not None:
            val_source = sources.validation_source(self.model, self.config, validation_data,
                                                   validation_batch_size or batch_size, validation_steps, placement,
                                                   budget)
        label_shapes = sources.label_shapes(train_source)
        if isinstance(train_source, sources.StreamingSource):
            train_source.epochs = epochs  # each epoch's first chunk is read while the one before trains

        user_callbacks = list(callbacks or [])
        guard_nan = terminate_on_nan or any(getattr(c, "guards_nan", False) for c in user_callbacks)
        verbose = 1 if verbose == "auto" else int(verbose)
        history = History()
        steps = train_source.steps_per_epoch if isinstance(train_source, sources.ArraySource) else steps_per_epoch
        live_display = verbose == 1 and stdout_is_live()
        # Without callbacks (progress displays aside), live display or NaN guard, nothing needs the
        # host between epochs: the whole fit is dispatched at once and the logs are fetched at the
        # end, or, to print a line per epoch, one epoch late (after the next is dispatched, so the
        # device never waits for the host: 0.66-0.73x -> 0.87x of a hand-written scan on a
        # dispatch-bound model, verbose=2). A line for an epoch of unknown length needs its count.
        participants = [c for c in user_callbacks if not getattr(c, "shows_progress", False)]
        host_each_epoch = bool(participants) or guard_nan or live_display or bool(verbose and steps is None)
        callback_list = CallbackList(with_progbar(user_callbacks + [history], verbose), model,
                                     {"epochs": epochs, "steps": steps, "verbose": verbose})
        with rolled_back_on_failure(self):
            params, _ = self._place(placement)
            functions = self._functions(label_shapes, guard_nan=guard_nan, placement=placement)
            self.metrics_names = list(functions.builder.log_order)
            backup = next((c for c in user_callbacks if isinstance(c, BackupAndRestore)), None)
            resume = self._restore(backup, functions) if backup is not None else None
            if resume is not None and placement is not None:
                self._place(placement)  # the restored weights and optimizer state, where they belong
            if resume is not None:
                initial_epoch = resume.epoch
                train_source.seed = resume.shuffle_seed
            run_step = int(self.step) if backup is not None else 0  # steps of the whole run, on the host
            planner = DispatchPlanner(
                self.config.steps_per_execution,
                every_step=callback_list.uses_batch_hooks,
                live_display=live_display,
                stop_every=backup.every_steps if backup is not None else None,
            )
            model.stop_training = False
            callback_list.on_train_begin()
            pending = []  # (epoch, device logs, device validation logs) not yet fetched
            last_logs = {}
            train = None
            for epoch in range(initial_epoch, epochs):
                callback_list.on_epoch_begin(epoch)
                if train is None or host_each_epoch:
                    # after the callbacks: they may set weights or the rate
                    first_batch = resume.batch if resume and epoch == resume.epoch else 0
                    train = self._private_state(copy=self._first_dispatch_donates(train_source, planner, first_batch))
                first, metrics = (resume.batch, resume.metrics) if resume and epoch == resume.epoch else (0, None)
                carry, done = self._train_epoch(train, train_source, epoch, functions, planner, callback_list,
                                                guard_nan, first=first, metrics=metrics, backup=backup, run_step=run_step,
                                                host_each_epoch=host_each_epoch)
                run_step += done - first
                train = carry.train
                halted = guard_nan and bool(carry.halted)
                if halted and any(getattr(c, "raise_error", False) for c in user_callbacks if getattr(c, "guards_nan", False)):
                    raise NonFiniteLossError(
                        f"TerminateOnNaN(raise_error=True): batch {int(train.step) - int(self.step)} of epoch {epoch + 1} "
                        "had a non-finite loss, "
                        "gradient or update; fit stopped and left the model as it was before the call (use "
                        "raise_error=False to keep the weights of the last good step)."
                    )
                val_metrics = None
                if val_source is not None and (epoch + 1) % validation_freq == 0 and not halted:
                    self._live = train
                    val_metrics = self._evaluate_source(val_source, train.params, train.state, functions,
                                                        callback_list if host_each_epoch else None)
                    self._live = None
                if not host_each_epoch:
                    # The logs' values are computed now, queued right behind this epoch: computed
                    # when they are read, they would wait for the next epoch too, and the device
                    # would idle while the host prints (benchmarks/fused_loop.py, verbose=2:
                    # 0.82x -> 0.89x of a hand-written scan).
                    pending.append((epoch, *self._epoch_results(functions, carry.metrics, val_metrics)))
                    if verbose:
                        last_logs = self._report_epochs(pending[:-1], functions, callback_list) or last_logs
                        pending = pending[-1:]
                    continue
                epoch_logs = self._host_logs(functions, *self._epoch_results(functions, carry.metrics, val_metrics))
                last_logs = epoch_logs
                self._write_back(train)
                callback_list.on_epoch_end(epoch, epoch_logs)
                if backup is not None and backup.every_steps is None:
                    backup.save(ResumePoint(self.layout.model_layout(train), epoch + 1, 0, train_source.seed, None))
                if halted:
                    if verbose:
                        print(f"Epoch {epoch + 1}: non-finite loss, gradient or update; training stopped before "
                              "applying that step.")
                    model.stop_training = True
                if model.stop_training:
                    break
            if pending:
                self._write_back(train)
                last_logs = self._report_epochs(pending, functions, callback_list) or last_logs
            callback_list.on_train_end(last_logs)
        model.history = history
        return history

    def _train_epoch(self, train, source, epoch, functions, planner, callback_list, guard_nan, *,
                     first=0, metrics=None, backup=None, run_step=0, host_each_epoch=True):
        """Dispatch one epoch's steps from batch ``first`` (with the epoch's ``metrics`` so far);
        ``run_step``: steps of the run before this call. Progress displays get the logs after
        each dispatch whose logs are read (live bar, every-step callbacks) and, with
        ``host_each_epoch``, after the epoch's last batch. Returns ``(carry, steps_done)``."""
        carry = Carry(train, functions.init_metrics() if metrics is None else metrics, jnp.zeros((), bool))
        done = first
        # As Keras 3: on_train_batch_begin(first step) and on_train_batch_end(first step +
        # steps_per_execution - 1) once per execution; a callback setting model.stop_training
        # ends the epoch after that execution.
        per_call = planner.steps_per_callback
        opened = None  # first step of the execution whose on_train_batch_end is due
        logs = None
        shown = first  # steps whose logs the progress displays have seen
        for block in sources.dispatches(source, epoch, first):
            whole = isinstance(block, sources.WholeBatches)
            if whole and planner.one_at_a_time and not (planner.every_step or planner.live_display or backup):
                carry = self._one_step_per_dispatch(functions, carry, block)
                done += block.stop - block.start
                sources.dispatched(block, carry)
                continue
            start, stop = (block.start, block.stop) if whole else (0, 1)
            while start < stop:
                n = planner.next(stop - start, run_step + done - first) if whole else 1
                if planner.every_step and opened is None:
                    opened = done
                    callback_list.on_train_batch_begin(done)
                began = time.perf_counter()
                if not whole:
                    carry = functions.run_batch(carry, block.data)
                elif planner.one_at_a_time:
                    carry = functions.run_one(carry, block.data, block.indices, start, batch_size=block.batch_size)
                else:
                    carry = functions.run_train(carry, block.data, block.indices, start, n, batch_size=block.batch_size)
                start, done = start + n, done + n
                if planner.every_step or planner.live_display:
                    logs = functions.logs(carry.metrics)
                    planner.observe(n, time.perf_counter() - began)
                    if planner.every_step and done - opened >= per_call:
                        self._live = carry.train
                        callback_list.on_train_batch_end(opened + per_call - 1, logs)
                        self._live = None
                        opened = None
                        if self.model.stop_training:
                            return carry, done
                    elif planner.live_display:
                        callback_list.show_progress("on_train_batch_end", done - 1, logs)
                        shown = done
                if guard_nan and bool(carry.halted):
                    return carry, done
                if backup is not None and planner.at_stop(run_step + done - first):
                    backup.save(ResumePoint(self.layout.model_layout(carry.train), epoch, done, source.seed, carry.metrics))
            sources.dispatched(block, carry)
        if opened is not None:  # the epoch ended inside an execution (its short last batch)
            self._live = carry.train
            callback_list.on_train_batch_end(opened + per_call - 1, logs)
            self._live = None
        elif host_each_epoch and shown != done and not planner.every_step and callback_list.has_progress_display:
            callback_list.show_progress("on_train_batch_end", done - 1, functions.logs(carry.metrics))
        return carry, done

    def _one_step_per_dispatch(self, functions: Compiled, carry, block: sources.WholeBatches):
        """The tight host loop of one step per dispatch; a small carry travels packed."""
        data, indices, size = block.data, block.indices, block.batch_size
        if not self.config.jit or not PackedSteps.worthwhile(carry):
            for step in range(block.start, block.stop):
                carry = functions.run_one(carry, data, indices, step, batch_size=size)
            return carry
        if "steps" not in functions.packed:
            functions.packed["steps"] = PackedSteps(functions.builder, carry, donate=self.donate_packed)
        packed = functions.packed["steps"]
        buffers = packed.pack(carry)
        for step in range(block.start, block.stop):
            buffers = packed.step(buffers, data, indices, step, batch_size=size)
        return packed.unpack(buffers)

    def _report_epochs(self, pending: list, functions: Compiled, callback_list) -> dict | None:
        """Fetch the logs of epochs dispatched earlier, each ``(epoch, metric results, validation
        metric results or None)`` on the device, and end those epochs (``History``, the progress
        display); returns the last epoch's logs (None when ``pending`` is empty)."""
        logs = None
        for epoch, results, val_results in pending:
            logs = self._host_logs(functions, results, val_results)
            callback_list.on_epoch_end(epoch, logs)
        return logs

    @staticmethod
    def _epoch_results(functions: Compiled, metrics, val_metrics) -> tuple:
        """``(results, validation results or None)`` of an epoch's metric states, on the device."""
        return functions.results(metrics), None if val_metrics is None else functions.results(val_metrics)

    @staticmethod
    def _host_logs(functions: Compiled, results, val_results) -> dict:
        """An epoch's logs as host values: the metrics, then the ``val_`` ones."""
        logs = functions.host_logs(results)
        if val_results is not None:
            logs |= {f"val_{k}": v for k, v in functions.host_logs(val_results).items()}
        return logs

    def _restore(self, backup: BackupAndRestore, functions: Compiled) -> ResumePoint | None:
        """Load ``backup``'s point, if there is one, into the model and this trainer."""
        params, state = self.model.get_variables()
        like = TrainState(params, state, self.opt_state, self.step, self.dropout_key)
        point = backup.load(like, functions.init_metrics())
        if point is None:
            return None
        # Values not placed by a distribution become uncommitted arrays, free to go where the step runs.
        def free(value):
            return value if isinstance(getattr(value, "sharding", None), NamedSharding) else jnp.asarray(np.asarray(value))

        point = point._replace(train=jax.tree_util.tree_map(free, point.train),
                               metrics=jax.tree_util.tree_map(free, point.metrics))
        self._store(point.train)
        self.dropout_key = point.train.key
        return point

    def _private_state(self, *, copy: bool = True) -> TrainState:
        """The state to train from: the model's weights and the trainer's optimizer state, step and
        key. With ``copy`` (when the first dispatch donates), copies in one dispatch: a donating
        dispatch consumes its inputs, and the model, the trainer and the rollback snapshot must
        keep theirs."""
        params, state = self.model.get_variables()
        train = TrainState(params, state, self.opt_state, self.step, self.dropout_key)
        (params, state), opt_state = self.layout.stacked(params, state, self.opt_state)
        train = train._replace(params=params, state=state, opt_state=opt_state)
        return copy_tree(train) if copy else train

    def _first_dispatch_donates(self, source, planner: DispatchPlanner, first: int) -> bool:
        """Whether an epoch's first dispatch may donate the state it is given: always with fused
        donation; with one-step donation unless the epoch opens with a fused block of whole
        batches (a copy per epoch costs a dispatch per leaf: 8% of a tiny model's epoch)."""
        if self.donate_fused:
            return True
        if not self.donate_one_step:
            return False
        opens_fused = (isinstance(source, sources.ArraySource) and not planner.one_at_a_time
                       and first < min(source.steps_per_epoch, source.whole_steps))
        return not opens_fused

    def sync_live_state(self) -> None:
        """Inside a batch hook, make the model hold the weights reached so far (copies when the
        next dispatch will donate them), as Keras's callbacks see them."""
        live, self._live = self._live, None
        if live is not None:
            donated = self.donate_fused or self.donate_one_step
            self._write_back(jax.tree_util.tree_map(jnp.copy, live) if donated else live)

    def _write_back(self, train: TrainState) -> None:
        """Make the model (and callbacks reading it) see the state reached so far."""
        self._store(self.layout.model_layout(train))

    def _store(self, train: TrainState) -> None:
        """Set the model's weights and the trainer's state from ``train`` in the model's layout."""
        self.model.set_variables(Variables(train.params, train.state))
        self.opt_state, self.step = train.opt_state, train.step

