"""The fused loop against its limit on a dispatch-bound model: kfunc ``fit`` against a
hand-written whole-epoch ``lax.scan`` of the same step (same model, optimizer and data).

Model: Input(32) -> Dense(64, relu) -> Dense(1), mse, rmsprop, batch 32, 16,384 samples, no
shuffle, 40 epochs per timed run. kfunc runs as users run it: ``verbose=2`` (a line per epoch,
as ``verbose="auto"`` prints outside a terminal), ``verbose=0``, and ``verbose=0`` with a user
callback (which needs the host at every epoch end). Both systems take turns in one process; the
best of ``--rounds`` runs each.

    python benchmarks/fused_loop.py
    python benchmarks/fused_loop.py --rounds 10 --epochs 40
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

SAMPLES, FEATURES, BATCH = 16384, 32, 32


def kfunc_runner(x, y, epochs: int, verbose: int, with_callback: bool):
    import kfunc

    inputs = kfunc.layers.Input(shape=(FEATURES,))
    model = kfunc.Model(inputs, kfunc.layers.Dense(1)(kfunc.layers.Dense(64, activation="relu")(inputs)))
    model.compile("rmsprop", "mse")
    callbacks = [kfunc.callbacks.Callback()] if with_callback else None
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=callbacks)  # compiles

    def run() -> float:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=verbose, callbacks=callbacks)
        return time.perf_counter() - started

    return run


def scan_runner(x, y, epochs: int):
    import handwritten as hw
    import jax
    from workloads import transformation

    optimizer = transformation("rmsprop")
    params = hw.mlp_init(jax.random.key(0), [FEATURES, 64, 1])
    step = hw.make_step(lambda p, b: hw.mse(hw.mlp_apply(p, b[0]), b[1]), optimizer)
    steps = SAMPLES // BATCH

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def epoch(params, opt_state, data):
        def body(carry, i):
            batch = tuple(jax.lax.dynamic_slice_in_dim(a, i * BATCH, BATCH) for a in data)
            return step(*carry, batch), None

        return jax.lax.scan(body, (params, opt_state), jax.numpy.arange(steps))[0]

    data = jax.device_put((x, y))
    state = [jax.block_until_ready(epoch(params, optimizer.init(params), data))]

    def run() -> float:
        started = time.perf_counter()
        current = state[0]
        for _ in range(epochs):
            current = epoch(*current, data)
        state[0] = jax.block_until_ready(current)
        return time.perf_counter() - started

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((SAMPLES, FEATURES), dtype=np.float32)
    y = rng.random((SAMPLES, 1), dtype=np.float32)
    runners = {
        "kfunc fit verbose=2": kfunc_runner(x, y, args.epochs, 2, False),
        "kfunc fit verbose=0": kfunc_runner(x, y, args.epochs, 0, False),
        "kfunc fit verbose=0 + callback": kfunc_runner(x, y, args.epochs, 0, True),
        "jax whole-epoch scan": scan_runner(x, y, args.epochs),
    }
    best = {name: float("inf") for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            best[name] = min(best[name], run())
    steps = args.epochs * (SAMPLES // BATCH)
    limit = steps / best["jax whole-epoch scan"]
    load = os.getloadavg()
    print(f"Command: python benchmarks/fused_loop.py --epochs {args.epochs} --rounds {args.rounds}")
    print(f"Machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} after the run\n")
    print("| system | steps/s | vs scan |")
    print("|---|---:|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {steps / seconds:,.0f} | {steps / seconds / limit:.2f}x |")


if __name__ == "__main__":
    main()
