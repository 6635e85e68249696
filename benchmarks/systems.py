"""The systems measured on each workload: kfunc ``fit``, Keras 3 ``fit`` (JAX backend), and two
hand-written JAX + optax loops over the same data on the device.

Each system has ``setup() -> seconds`` (build the model, compile, and run the first training
step: the time to first step) and ``run(epochs) -> steps per second`` in the steady state.
For ``fit`` (kfunc and Keras, ``verbose=0``, no callbacks) that is the marginal cost of an epoch:
a call of ``1 + epochs`` epochs minus a call of one, so what a call does once (putting the data
on the device, building the first shuffle, fetching the logs) is left out, as it would be from
the median epoch of a long run. The hand-written loops time their epochs and never reshuffle.
"""

from __future__ import annotations

import abc
import functools
import math
import os
import time

import numpy as np

from workloads import Workload, transformation


def _data(workload: Workload, quick: bool):
    rng = np.random.default_rng(0)
    n = workload.quick_samples if quick else workload.samples
    return n, workload.data(rng, n)


class System(abc.ABC):

    def __init__(self, workload: Workload, quick: bool):
        self.workload = workload
        self.count, (self.x, self.y) = _data(workload, quick)
        self.steps = math.ceil(self.count / workload.batch_size)

    @abc.abstractmethod
    def setup(self) -> float:
        """Build, compile and run the first step; returns the seconds that took."""

    @abc.abstractmethod
    def run(self, epochs: int) -> float:
        """Train ``epochs`` more epochs; returns steps per second."""


class KfuncFit(System):
    def __init__(self, workload, quick, steps_per_execution="auto", donate_state=None, shuffle=True):
        super().__init__(workload, quick)
        self.steps_per_execution = steps_per_execution
        self.donate_state = donate_state
        self.shuffle = shuffle

    def _library(self):
        import kfunc

        return kfunc, {"donate_state": self.donate_state}

    def setup(self) -> float:
        library, extra = self._library()
        w = self.workload
        started = time.perf_counter()
        self.model = w.build(library, library.layers)
        loss = [w.loss] * len(self.model.outputs) if len(self.model.outputs) > 1 else w.loss
        self.model.compile(optimizer=w.optimizer, loss=loss, loss_weights=w.loss_weights,
                           steps_per_execution=self.steps_per_execution, **extra)
        self.model.fit(self.x, self.y, batch_size=w.batch_size, epochs=1, steps_per_epoch=1, verbose=0)
        first = time.perf_counter() - started
        self._fit_seconds(1)  # warm-up: whatever a full epoch compiles (Keras: the last, smaller batch)
        return first

    def _fit_seconds(self, epochs: int) -> float:
        started = time.perf_counter()
        self.model.fit(self.x, self.y, batch_size=self.workload.batch_size, epochs=epochs, verbose=0,
                       shuffle=self.shuffle)
        return time.perf_counter() - started

    def run(self, epochs: int) -> float:
        once = self._fit_seconds(1)
        more = self._fit_seconds(1 + epochs)
        # A marginal cost below half the average cost is a measurement hiccup, not a speed.
        return epochs * self.steps / max(more - once, 0.5 * more * epochs / (1 + epochs))


class KerasFit(KfuncFit):
    def _library(self):
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras

        return keras, {}


class _Hand(System):
    def setup(self) -> float:
        import jax

        import handwritten as hw

        self.jax = jax
        w = self.workload
        self.data = jax.device_put(w.hand_batch(self.x, self.y))
        self.steps = self.count // w.batch_size
        started = time.perf_counter()
        params = w.hand_init(jax.random.key(0))
        optimizer = transformation(w.optimizer)
        self.state = (params, optimizer.init(params))
        self.step = hw.make_step(w.hand_loss, optimizer)
        self.compile()
        self.warm_up()
        return time.perf_counter() - started


class JaxStep(_Hand):
    """One jitted, donated step per batch; the batch sliced on the device by index."""

    def compile(self):
        jax, size, step = self.jax, self.workload.batch_size, self.step

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def one(params, opt_state, data, i):
            batch = tuple(jax.lax.dynamic_slice_in_dim(a, i * size, size) for a in data)
            return step(params, opt_state, batch)

        self.one = one

    def warm_up(self):
        self.state = self.jax.block_until_ready(self.one(*self.state, self.data, 0))

    def run(self, epochs: int) -> float:
        started = time.perf_counter()
        params, opt_state = self.state
        for _ in range(epochs):
            for i in range(self.steps):
                params, opt_state = self.one(params, opt_state, self.data, i)
        self.state = self.jax.block_until_ready((params, opt_state))
        return epochs * self.steps / (time.perf_counter() - started)


class JaxScan(_Hand):
    """The same step with each epoch fused in one ``lax.scan``: the practical limit. Its first
    step cannot be separated from its first epoch, which its time to first step includes."""

    def compile(self):
        jax, size, step, steps = self.jax, self.workload.batch_size, self.step, self.steps

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def epoch(params, opt_state, data):
            def body(carry, i):
                batch = tuple(jax.lax.dynamic_slice_in_dim(a, i * size, size) for a in data)
                return step(*carry, batch), None

            return jax.lax.scan(body, (params, opt_state), jax.numpy.arange(steps))[0]

        self.epoch = epoch

    def warm_up(self):
        self.state = self.jax.block_until_ready(self.epoch(*self.state, self.data))

    def run(self, epochs: int) -> float:
        started = time.perf_counter()
        for _ in range(epochs):
            self.state = self.epoch(*self.state, self.data)
        self.jax.block_until_ready(self.state)
        return epochs * self.steps / (time.perf_counter() - started)


class TorchLoop(System):
    """PyTorch on CPU, for the CNN (W3) only: the same layers, Adam, a plain training loop over
    tensors in memory (sliced, not reshuffled, as the JAX loops)."""

    def setup(self) -> float:
        import torch

        if self.workload.name != "W3":
            raise ValueError("the PyTorch baseline covers W3 (the CNN) only")
        self.torch = torch
        torch.manual_seed(0)
        self.x_t = torch.from_numpy(np.ascontiguousarray(self.x.transpose(0, 3, 1, 2)))
        self.y_t = torch.from_numpy(self.y.argmax(axis=1))
        started = time.perf_counter()
        nn = torch.nn
        self.model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(12 * 12 * 64, 10),
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3, eps=1e-7)
        self.loss = nn.CrossEntropyLoss()
        self._steps(1)
        return time.perf_counter() - started

    def _steps(self, count: int) -> None:
        size = self.workload.batch_size
        for i in range(count):
            batch = slice((i % self.steps) * size, (i % self.steps + 1) * size)
            self.optimizer.zero_grad()
            self.loss(self.model(self.x_t[batch]), self.y_t[batch]).backward()
            self.optimizer.step()

    def run(self, epochs: int) -> float:
        started = time.perf_counter()
        self._steps(epochs * self.steps)
        return epochs * self.steps / (time.perf_counter() - started)


SYSTEMS = {
    "kfunc fit": KfuncFit,
    "kfunc fit spe=1": functools.partial(KfuncFit, steps_per_execution=1),
    "kfunc fit no-shuffle": functools.partial(KfuncFit, shuffle=False),
    "kfunc fit donated": functools.partial(KfuncFit, donate_state=True),
    "kfunc fit spe=1 donated": functools.partial(KfuncFit, steps_per_execution=1, donate_state=True),
    "kfunc fit spe=1 no-shuffle": functools.partial(KfuncFit, steps_per_execution=1, shuffle=False),
    "jax step": JaxStep,
    "jax scan": JaxScan,
    "keras fit": functools.partial(KerasFit, steps_per_execution=1),
    "keras fit spe=32": functools.partial(KerasFit, steps_per_execution=32),
    "pytorch loop": TorchLoop,
}
