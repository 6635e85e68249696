"""W5, data parallel: the guide's MLP trained by ``fit`` under ``DataParallel`` on 1, 2 and 4
CPU devices (XLA's host platform split into N devices, one process each).

On a 2-core machine this measures the overhead of splitting each batch and all-reducing the
gradients, not a speed-up: the devices share the same cores.

    python benchmarks/data_parallel.py          # 1, 2, 4 devices
    python benchmarks/data_parallel.py --child 4 --samples 15360
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def child(devices: int, samples: int, epochs: int) -> dict:
    import jax

    jax.config.update("jax_num_cpu_devices", devices)
    import numpy as np

    import kfunc
    from kfunc import distribution
    from kfunc.layers import Dense, Input
    from kfunc.models import Model

    kfunc.utils.set_random_seed(0)
    inputs = Input((784,))
    hidden = Dense(64, activation="relu")(Dense(64, activation="relu")(inputs))
    model = Model(inputs, Dense(10, activation="softmax")(hidden))
    model.compile("rmsprop", "categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((samples, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, samples)]
    batch_size, steps = 128, samples // 128

    def seconds(count: int) -> float:
        started = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=count, verbose=0)
        return time.perf_counter() - started

    with distribution.DataParallel().scope():
        seconds(1)  # compile and warm up
        once = min(seconds(1) for _ in range(2))
        more = min(seconds(1 + epochs) for _ in range(2))
    return {"devices": len(jax.devices()), "steps_per_s": epochs * steps / max(more - once, 1e-9)}


def table(device_counts=(1, 2, 4), samples: int = 30720, epochs: int = 3) -> list[str]:
    lines = ["| W5 guide MLP, batch 128, data parallel | devices | fit steps/s | vs 1 device |", "|---|---|---|---|"]
    base = None
    for devices in device_counts:
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(devices), "--samples", str(samples), "--epochs", str(epochs)],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )
        if done.returncode != 0:
            lines.append(f"| | {devices} | failed: {done.stderr.strip()[-200:]} | |")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        base = base or result["steps_per_s"]
        lines.append(f"| | {result['devices']} | {result['steps_per_s']:,.1f} | {result['steps_per_s'] / base:.2f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", type=int)
    parser.add_argument("--samples", type=int, default=30720)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.samples, args.epochs)))
    else:
        print("\n".join(table(samples=args.samples, epochs=args.epochs)))


if __name__ == "__main__":
    main()
