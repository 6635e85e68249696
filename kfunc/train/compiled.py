"""The compiled functions of one training configuration, jitted or (for ``run_eagerly=True``)
run op by op, and the small helpers the host loops share."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.train.step import StepBuilder


@jax.jit
def copy_tree(tree):
    """Fresh buffers for every leaf of ``tree``, in one dispatch."""
    return jax.tree_util.tree_map(jnp.copy, tree)


class Compiled(NamedTuple):
    """The compiled functions of one training configuration; ``results(metric_states)`` gives logs.
    ``run_train``/``run_one``/``run_eval`` step through whole batches of device data;
    ``run_batch``/``run_eval_batch`` take one batch at its own size (compiled once per size)."""

    builder: StepBuilder
    run_train: Any
    run_one: Any
    run_batch: Any
    run_eval: Any
    run_eval_batch: Any
    init_metrics: Any
    results: Any
    packed: dict  # one PackedSteps, built on first use, for small carries stepped one at a time

    def logs(self, metric_states) -> dict:
        """Metric states -> host floats, in Keras's order (compiled functions sort dict keys)."""
        return self.host_logs(self.results(metric_states))

    def host_logs(self, results) -> dict:
        """``results(metric_states)``, computed earlier on the device, -> host floats (``logs``)."""
        values = jax.device_get(results)
        # A metric may give one value per class or threshold (F1Score(average=None)): an array.
        return {k: float(values[k]) if np.ndim(values[k]) == 0 else np.asarray(values[k])
                for k in self.builder.log_order}


def unjitted(builder: StepBuilder) -> Compiled:
    """The same step functions run op by op (``compile(run_eagerly=True)`` or ``jit_compile=False``):
    Python inside layers' ``call`` (prints, breakpoints) runs at every step, for debugging."""

    def run_train(carry, data, indices, start, n, *, batch_size):
        for step in range(int(start), int(start) + int(n)):
            carry = builder.run_one_train_step(carry, data, indices, step, batch_size=batch_size)
        return carry

    def run_eval(metrics, params, state, data, indices, start, n, *, batch_size):
        for step in range(int(start), int(start) + int(n)):
            metrics = builder.run_one_eval_step(metrics, params, state, data, indices, step, batch_size=batch_size)
        return metrics

    return Compiled(builder, run_train, builder.run_one_train_step, builder.run_train_batch, run_eval,
                     builder.run_eval_batch, builder.init_metrics, builder.results, {})


def logs_result(logs: dict, return_dict: bool):
    """Keras's return value of evaluate / train_on_batch / test_on_batch: the logs dict, or its
    values in order (a scalar when there is only the loss)."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values



def jitted(builder: StepBuilder, *, donate_fused: bool, donate_one_step: bool) -> Compiled:
    """The step functions, each jitted once (a fused dispatch donates its carry with
    ``donate_fused``, a one-step dispatch with ``donate_one_step``)."""
    return Compiled(
        builder,
        jax.jit(builder.run_train_steps, static_argnames=("batch_size",), donate_argnums=(0,) if donate_fused else ()),
        jax.jit(builder.run_one_train_step, static_argnames=("batch_size",),
                donate_argnums=(0,) if donate_one_step else ()),
        jax.jit(builder.run_train_batch, donate_argnums=(0,) if donate_one_step else ()),
        jax.jit(builder.run_eval_steps, static_argnames=("batch_size",)),
        jax.jit(builder.run_eval_batch),
        jax.jit(builder.init_metrics),
        jax.jit(builder.results),
        {},
    )
