"""DepthwiseConv2D on CPU: the shifted-slices lowering (what kfunc uses on CPU) against XLA's
grouped convolution (one feature group per channel, what it uses on accelerators).

    python benchmarks/depthwise.py

A 3x3 depthwise convolution of 64 images of 28x28x32, forward and backward: once as one jitted
call, and as 5 training-like steps inside one ``lax.fori_loop`` (how ``fit`` runs), both
lowerings in the same process; prints milliseconds per step and the ratio.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from time_distributed import time_call

import kfunc
from kfunc.layers import DepthwiseConv2D, Input
from kfunc.layers import conv as conv_lib
from kfunc.models import Model

BATCH, SIZE, CHANNELS, STEPS = 64, 28, 32, 5


def measure(lowering: str, x) -> tuple[float, float]:
    """``(one forward+backward, one step of a fori_loop of STEPS)`` in seconds."""
    conv_lib.LOWERING = lowering  # read while tracing: each model below is traced afresh
    inputs = Input(shape=(SIZE, SIZE, CHANNELS))
    model = Model(inputs, DepthwiseConv2D(3, padding="same")(inputs))
    params, state = model.get_variables()

    def loss(p, x):
        return jnp.sum(model.apply(p, state, x)[0] ** 2)

    grad = jax.jit(jax.grad(loss))

    @jax.jit
    def loop(p, x):
        def step(_, p):
            g = jax.grad(loss)(p, x)
            return jax.tree_util.tree_map(lambda w, d: w - 1e-6 * d, p, g)

        return lax.fori_loop(0, STEPS, step, p)

    return time_call(grad, params, x, repeats=10), time_call(loop, params, x, repeats=3) / STEPS


def main():
    print(f"jax {jax.__version__}, backend {jax.default_backend()}; DepthwiseConv2D 3x3 on "
          f"{BATCH}x{SIZE}x{SIZE}x{CHANNELS}, forward + backward, ms per step")
    x = jnp.asarray(np.random.default_rng(0).random((BATCH, SIZE, SIZE, CHANNELS), dtype=np.float32))
    slices = measure("patches", x)
    grouped = measure("xla", x)
    conv_lib.LOWERING = "auto"
    print("| | shifted slices | XLA grouped conv | grouped / slices |")
    print("|---|---:|---:|---:|")
    for label, a, b in (("one jitted call", slices[0], grouped[0]), (f"inside fori_loop ({STEPS} steps)", slices[1], grouped[1])):
        print(f"| {label} | {a * 1e3:.1f} | {b * 1e3:.1f} | {b / a:.1f}x |")


if __name__ == "__main__":
    kfunc.utils.set_random_seed(0)
    main()
