"""One measurement: a workload trained by one system, in a fresh process.

Each function returns ``{"first_step_s", "steps_per_s", "epochs"}``: time from building the
model to the end of its first training step (build + compile), and steady-state steps per
second (the median epoch of a run that follows the first step).
"""

from __future__ import annotations

import functools
import math
import os
import statistics
import time

import numpy as np

from workloads import Workload, transformation


def _epoch_timer(base):
    class EpochTimer(base):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.started)

    return EpochTimer()


def _data(workload: Workload, quick: bool):
    rng = np.random.default_rng(0)
    n = workload.quick_samples if quick else workload.samples
    return n, workload.data(rng, n)


def kfunc_fit(workload: Workload, quick: bool, epochs: int, steps_per_execution="auto"):
    import kfunc

    n, (x, y) = _data(workload, quick)
    started = time.perf_counter()
    model = workload.build(kfunc, kfunc.layers)
    model.compile(optimizer=workload.optimizer, loss=workload.loss, loss_weights=workload.loss_weights,
                  steps_per_execution=steps_per_execution)
    model.fit(x, y, batch_size=workload.batch_size, epochs=1, steps_per_epoch=1, verbose=0)
    first = time.perf_counter() - started
    timer = _epoch_timer(kfunc.callbacks.Callback)
    model.fit(x, y, batch_size=workload.batch_size, epochs=epochs, verbose=0, callbacks=[timer])
    return {"first_step_s": first, "steps_per_s": math.ceil(n / workload.batch_size) / statistics.median(timer.times)}


def keras_fit(workload: Workload, quick: bool, epochs: int, steps_per_execution=1):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    n, (x, y) = _data(workload, quick)
    started = time.perf_counter()
    model = workload.build(keras, keras.layers)
    loss = [workload.loss] * len(model.outputs) if len(model.outputs) > 1 else workload.loss
    model.compile(optimizer=workload.optimizer, loss=loss, loss_weights=workload.loss_weights,
                  steps_per_execution=steps_per_execution)
    model.fit(x, y, batch_size=workload.batch_size, epochs=1, steps_per_epoch=1, verbose=0)
    first = time.perf_counter() - started
    timer = _epoch_timer(keras.callbacks.Callback)
    model.fit(x, y, batch_size=workload.batch_size, epochs=epochs, verbose=0, callbacks=[timer])
    return {"first_step_s": first, "steps_per_s": math.ceil(n / workload.batch_size) / statistics.median(timer.times)}


def _hand(workload: Workload, quick: bool):
    import jax

    n, (x, y) = _data(workload, quick)
    batch_size = workload.batch_size
    steps = n // batch_size
    data = jax.device_put(workload.hand_batch(x, y))
    return jax, data, steps, batch_size


def jax_step(workload: Workload, quick: bool, epochs: int):
    """The hand-written loop: one jitted, donated step per batch, data on the device."""
    import handwritten as hw

    jax, data, steps, batch_size = _hand(workload, quick)
    started = time.perf_counter()
    params = workload.hand_init(jax.random.key(0))
    optimizer = transformation(workload.optimizer)
    opt_state = optimizer.init(params)
    step = hw.make_step(workload.hand_loss, optimizer)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def one(params, opt_state, data, i):
        batch = tuple(jax.lax.dynamic_slice_in_dim(a, i * batch_size, batch_size) for a in data)
        return step(params, opt_state, batch)

    params, opt_state = jax.block_until_ready(one(params, opt_state, data, 0))
    first = time.perf_counter() - started
    times = []
    for _ in range(epochs):
        began = time.perf_counter()
        for i in range(steps):
            params, opt_state = one(params, opt_state, data, i)
        jax.block_until_ready(params)
        times.append(time.perf_counter() - began)
    return {"first_step_s": first, "steps_per_s": steps / statistics.median(times)}


def jax_scan(workload: Workload, quick: bool, epochs: int):
    """The same step with the whole epoch fused in one ``lax.scan``: the practical limit."""
    import handwritten as hw

    jax, data, steps, batch_size = _hand(workload, quick)
    started = time.perf_counter()
    params = workload.hand_init(jax.random.key(0))
    optimizer = transformation(workload.optimizer)
    opt_state = optimizer.init(params)
    step = hw.make_step(workload.hand_loss, optimizer)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def epoch(params, opt_state, data):
        def body(carry, i):
            batch = tuple(jax.lax.dynamic_slice_in_dim(a, i * batch_size, batch_size) for a in data)
            return step(*carry, batch), None

        return jax.lax.scan(body, (params, opt_state), jax.numpy.arange(steps))[0]

    params, opt_state = jax.block_until_ready(epoch(params, opt_state, data))
    first = time.perf_counter() - started  # compile + one whole epoch: its first step is not separable
    times = []
    for _ in range(epochs):
        began = time.perf_counter()
        params, opt_state = jax.block_until_ready(epoch(params, opt_state, data))
        times.append(time.perf_counter() - began)
    return {"first_step_s": first, "steps_per_s": steps / statistics.median(times)}


SYSTEMS = {
    "kfunc fit": kfunc_fit,
    "kfunc fit spe=1": functools.partial(kfunc_fit, steps_per_execution=1),
    "jax step": jax_step,
    "jax scan": jax_scan,
    "keras fit": keras_fit,
    "keras fit spe=32": functools.partial(keras_fit, steps_per_execution=32),
}
