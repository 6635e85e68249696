"""Streaming: training from a memory-mapped file larger than the device-data budget, against the
same data in memory, on a compute-bound MLP (784-1024-1024-10, rmsprop, batch 128, shuffled).

Each mode runs in a fresh process: ``memory`` reads the whole ``.npy`` into RAM and trains with a
budget above its size (all of it on the device at once); ``stream`` opens it with
``np.load(..., mmap_mode="r")`` and trains with ``--budget-mb`` (chunks of a quarter of the budget
go to the device while the previous chunk trains). Reported: steady-state steps/s (the median
epoch after the first, which compiles), and host memory: the process's resident memory before
the data is opened and its peak (``VmHWM``, restarted there), whose difference is the growth.
The stream mode first compiles its chunk program on random data of the chunk's shape, so its
growth is that of the data; the memory mode's growth includes its compilation (~120 MB).

    python benchmarks/streaming.py                                  # 512 MB file, 128 MB budget
    python benchmarks/streaming.py --data-mb 4096 --budget-mb 1024  # the issue's sizes (needs ~10 GB RAM)
    python benchmarks/streaming.py --child stream --file /tmp/x.npy --budget-mb 128 ...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FEATURES, CLASSES, BATCH = 784, 10, 128
MB = 2**20


def memory_status(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` of this process, in MB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def reset_peak() -> None:
    """Restart ``VmHWM`` from the current resident memory (Linux: ``/proc/self/clear_refs``)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def write_data(folder: Path, data_mb: int) -> tuple[Path, Path]:
    """Random float32 features and one-hot labels, written in slices (never whole in memory)."""
    import numpy as np
    from numpy.lib.format import open_memmap

    rows = data_mb * MB // (4 * (FEATURES + CLASSES))
    x_path, y_path = folder / "x.npy", folder / "y.npy"
    x = open_memmap(x_path, mode="w+", dtype=np.float32, shape=(rows, FEATURES))
    y = open_memmap(y_path, mode="w+", dtype=np.float32, shape=(rows, CLASSES))
    rng = np.random.default_rng(0)
    for start in range(0, rows, 16384):
        stop = min(start + 16384, rows)
        x[start:stop] = rng.random((stop - start, FEATURES), dtype=np.float32)
        y[start:stop] = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, stop - start)]
    x.flush()
    y.flush()
    del x, y
    return x_path, y_path


def child(mode: str, x_path: str, y_path: str, budget_mb: int, steps: int, epochs: int) -> dict:
    import numpy as np

    import kfunc
    from kfunc.data.streaming import CHUNK_FRACTION
    from kfunc.layers import Dense, Input
    from kfunc.models import Model

    class EpochTimes(kfunc.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    kfunc.utils.set_random_seed(0)
    inputs = Input((FEATURES,))
    hidden = Dense(1024, activation="relu")(Dense(1024, activation="relu")(inputs))
    model = Model(inputs, Dense(CLASSES, activation="softmax")(hidden))
    model.compile("rmsprop", "categorical_crossentropy")
    if mode == "stream":
        # Compile the chunk's program first (same shapes, random rows in memory), so that the
        # growth measured is that of the data, not of the compiler.
        chunk = max(1, int(budget_mb * MB * CHUNK_FRACTION) // (4 * (FEATURES + CLASSES) * BATCH)) * BATCH
        rng = np.random.default_rng(1)
        model.fit(rng.random((chunk, FEATURES), dtype=np.float32), np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, chunk)],
                  batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    baseline = memory_status("VmRSS")
    reset_peak()
    if mode == "memory":
        x, y = np.load(x_path), np.load(y_path)
        budget = 2 * (x.nbytes + y.nbytes)
    else:
        x, y = np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
        budget = budget_mb * MB
    timer = EpochTimes()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, steps_per_epoch=steps, shuffle=True, verbose=0,
              callbacks=[timer], device_data_budget=budget)
    peak = memory_status("VmHWM")
    return {
        "steps_per_s": steps / statistics.median(timer.seconds[1:]),
        "baseline_mb": baseline,
        "peak_mb": peak,
        "growth_mb": peak - baseline,
        "data_mb": (x.nbytes + y.nbytes) / MB,
    }


def run_child(mode: str, x_path: Path, y_path: Path, args) -> dict:
    command = [sys.executable, str(Path(__file__)), "--child", mode, "--x", str(x_path), "--y", str(y_path),
               "--budget-mb", str(args.budget_mb), "--steps", str(args.steps), "--epochs", str(args.epochs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False,
                          env=dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu")))
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:160]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-mb", type=int, default=512, help="size of the memory-mapped file")
    parser.add_argument("--budget-mb", type=int, default=128, help="fit's device_data_budget for streaming")
    parser.add_argument("--steps", type=int, default=200, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (the first is not timed)")
    parser.add_argument("--folder", default=None, help="where to write the data (default: a temporary folder)")
    parser.add_argument("--child", choices=["memory", "stream"])
    parser.add_argument("--x")
    parser.add_argument("--y")
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.x, args.y, args.budget_mb, args.steps, args.epochs)))
        return
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        x_path, y_path = write_data(Path(folder), args.data_mb)
        results = {mode: run_child(mode, x_path, y_path, args) for mode in ("memory", "stream")}
    load = os.getloadavg()
    print(f"Command: python benchmarks/streaming.py --data-mb {args.data_mb} --budget-mb {args.budget_mb} "
          f"--steps {args.steps} --epochs {args.epochs}")
    print(f"Machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} after the run\n")
    print("| mode | data (MB) | steps/s | vs memory | RSS before data (MB) | peak RSS (MB) | growth (MB) | growth / budget |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    reference = results["memory"].get("steps_per_s")
    for mode, result in results.items():
        if "error" in result:
            print(f"| {mode} | error: {result['error']} |")
            continue
        ratio = f"{result['steps_per_s'] / reference:.2f}x" if reference else "-"
        per_budget = f"{result['growth_mb'] / args.budget_mb:.2f}" if mode == "stream" else "-"
        print(f"| {mode} | {result['data_mb']:,.0f} | {result['steps_per_s']:,.1f} | {ratio} | "
              f"{result['baseline_mb']:,.0f} | {result['peak_mb']:,.0f} | {result['growth_mb']:,.0f} | {per_budget} |")


if __name__ == "__main__":
    main()
