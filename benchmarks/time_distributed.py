"""TimeDistributed: folding time into the batch (what kfunc does) against jax.vmap over time.

    python benchmarks/time_distributed.py

Times a jitted forward + backward pass of TimeDistributed(Dense) and TimeDistributed(a small
conv model) both ways, in one process, and prints the ratio.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import kfunc
from kfunc.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D, TimeDistributed
from kfunc.models import Model, Sequential


class VmappedTimeDistributed(TimeDistributed):
    """The alternative: the inner layer mapped over the time axis."""

    def call(self, inputs, training=False, key=None):
        def one_step(x):
            return self.layer._call_arrays((x,), {"training": training, "key": key})

        return jax.vmap(one_step, in_axes=1, out_axes=1)(inputs)


def time_call(fn, *args, repeats=20):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def compare(name, make_inner, frame_shape, steps=16, batch=16):
    results = {}
    x = jnp.asarray(np.random.default_rng(0).random((batch, steps) + frame_shape, dtype=np.float32))
    for label, wrapper in (("fold into batch", TimeDistributed), ("vmap over time", VmappedTimeDistributed)):
        inputs = Input(shape=(steps,) + frame_shape)
        model = Model(inputs, wrapper(make_inner())(inputs))
        params, state = model.get_variables()
        loss = jax.jit(jax.value_and_grad(lambda p, x: jnp.sum(model.apply(p, state, x)[0] ** 2)))
        results[label] = time_call(loss, params, x)
    fold, vmap = results["fold into batch"], results["vmap over time"]
    print(f"| {name} | {fold * 1e3:.2f} | {vmap * 1e3:.2f} | {vmap / fold:.2f}x |")


def main():
    print(f"jax {jax.__version__}, backend {jax.default_backend()}; forward + backward, batch 16, 16 timesteps, ms")
    print("| inner layer | fold into batch | vmap over time | vmap / fold |")
    print("|---|---:|---:|---:|")
    compare("Dense(64) on 784 features", lambda: Dense(64, activation="relu"), (784,))

    def vision():
        return Sequential([Conv2D(16, 3, activation="relu", input_shape=(28, 28, 1)), MaxPooling2D(2), Flatten(), Dense(10)])

    compare("Conv2D(16)-MaxPool-Dense on 28x28x1", vision, (28, 28, 1))


if __name__ == "__main__":
    kfunc.utils.set_random_seed(0)
    main()
