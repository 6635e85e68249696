"""W4, graph scaling: a chain of N Dense(32) layers.

For each N: kfunc's Python build time (N layer calls + Model()) and first predict (trace +
compile + run, batch 32); a hand-written jitted chain of N matmuls (first call); the same chain
as one lax.scan over stacked weights (the known cure when a block repeats); Keras 3's build.

    python benchmarks/graph_scaling.py 100 1000 3000
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def kfunc_chain(depth: int):
    import kfunc

    def build():
        x = inputs = kfunc.Input(shape=(32,))
        for _ in range(depth):
            x = kfunc.layers.Dense(32)(x)
        return kfunc.Model(inputs, x)

    model, build_s = timed(build)
    _, predict_s = timed(lambda: model.predict(np.ones((32, 32), np.float32), verbose=0))
    return build_s, predict_s


def hand_chain(depth: int):
    import jax
    import jax.numpy as jnp

    weights = [(jnp.full((32, 32), 0.01), jnp.zeros(32)) for _ in range(depth)]

    @jax.jit
    def chain(weights, x):
        for w, b in weights:
            x = x @ w + b
        return x

    @jax.jit
    def scanned(stacked, x):
        return jax.lax.scan(lambda x, wb: (x @ wb[0] + wb[1], None), x, stacked)[0]

    x = jnp.ones((32, 32))
    _, chain_s = timed(lambda: jax.block_until_ready(chain(weights, x)))
    stacked = (jnp.stack([w for w, _ in weights]), jnp.stack([b for _, b in weights]))
    _, scan_s = timed(lambda: jax.block_until_ready(scanned(stacked, x)))
    return chain_s, scan_s


def keras_chain(depth: int) -> str:
    try:
        import keras
    except ImportError:
        return "not installed"

    def build():
        x = inputs = keras.Input(shape=(32,))
        for _ in range(depth):
            x = keras.layers.Dense(32)(x)
        return keras.Model(inputs, x)

    try:
        _, build_s = timed(build)
    except RecursionError:
        return "RecursionError"
    return f"{build_s:.2f}"


def main(depths):
    print("W4 graph scaling, chain of N Dense(32), seconds:")
    print()
    print("| N | kfunc build | kfunc first predict | hand jit first call | hand lax.scan first call | Keras 3 build |")
    print("|---:|---:|---:|---:|---:|---:|")
    for depth in depths:
        build_s, predict_s = kfunc_chain(depth)
        chain_s, scan_s = hand_chain(depth)
        print(f"| {depth} | {build_s:.2f} | {predict_s:.2f} | {chain_s:.2f} | {scan_s:.2f} | {keras_chain(depth)} |", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 3000])
