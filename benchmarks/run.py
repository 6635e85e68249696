"""Benchmarks: kfunc fit against a hand-written JAX loop, the same loop fused per epoch, and
Keras 3 on JAX, each workload and system in a fresh process (so compile caches and peak memory
are its own).

    python benchmarks/run.py            # full sizes
    python benchmarks/run.py --quick    # smaller data, fewer epochs: a few minutes on 2 cores
    python benchmarks/run.py --only W0,W1 --systems "kfunc fit,jax scan"

Prints a markdown table (steps/s, ratio to the hand-written per-step loop and to the fused
scan, time to first step, peak RSS) and writes it to benchmarks/last_run.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def child(workload_name: str, system: str, quick: bool, epochs: int) -> None:
    from systems import SYSTEMS
    from workloads import WORKLOADS

    result = SYSTEMS[system](WORKLOADS[workload_name], quick, epochs)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def measure(workload: str, system: str, quick: bool, epochs: int, timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__)), "--child", workload, system, "--epochs", str(epochs)]
    if quick:
        command.append("--quick")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(HERE))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": last[:120]}


def graph_scaling(depths, quick: bool) -> list[str]:
    """W4: a chain of N Dense(32): Python build time and first predict (trace + compile), against a
    hand-written jitted function of the same chain; Keras 3's Model() on the same chain."""
    command = [sys.executable, str(HERE / "graph_scaling.py"), *map(str, depths)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=dict(os.environ, KERAS_BACKEND="jax"))
    return done.stdout.strip().splitlines() if done.returncode == 0 else [f"W4 failed: {done.stderr.strip()[-300:]}"]


def machine() -> str:
    import jax

    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()}, Python {platform.python_version()}, jax {jax.__version__}, backend {jax.default_backend()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="W0,W1,W1b128,W2,W3,W4")
    parser.add_argument("--systems", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "SYSTEM"))
    args = parser.parse_args()
    epochs = args.epochs or (3 if args.quick else 5)
    if args.child:
        child(args.child[0], args.child[1], args.quick, epochs)
        return

    from systems import SYSTEMS
    from workloads import WORKLOADS

    try:
        import keras  # noqa: F401

        has_keras = True
    except ImportError:
        has_keras = False
    systems = args.systems.split(",") if args.systems else [s for s in SYSTEMS if has_keras or not s.startswith("keras")]
    selected = args.only.split(",")
    started = time.perf_counter()
    lines = [
        f"Machine: {machine()}",
        f"Command: python benchmarks/run.py{' --quick' if args.quick else ''}" + (f" --only {args.only}" if args.only != parser.get_default("only") else ""),
        "",
        "| workload | system | steps/s | vs jax step | vs jax scan | first step (s) | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in [w for w in selected if w in WORKLOADS]:
        workload = WORKLOADS[name]
        results = {s: measure(name, s, args.quick, epochs, timeout=600) for s in systems}
        step = results.get("jax step", {}).get("steps_per_s")
        scan = results.get("jax scan", {}).get("steps_per_s")
        for system, r in results.items():
            if "error" in r:
                lines.append(f"| {name} {workload.title} | {system} | error: {r['error']} | | | | |")
                continue
            ratio = lambda base: f"{r['steps_per_s'] / base:.2f}x" if base else "-"  # noqa: E731
            lines.append(
                f"| {name} {workload.title} | {system} | {r['steps_per_s']:,.0f} | {ratio(step)} | {ratio(scan)} | "
                f"{r['first_step_s']:.2f} | {r['peak_rss_mb']:.0f} |"
            )
        print("\n".join(lines[-len(results):]), flush=True)
    if "W4" in selected:
        lines += ["", *graph_scaling([100, 1000] if args.quick else [100, 1000, 3000], args.quick)]
    lines += ["", f"Total benchmark time: {time.perf_counter() - started:.0f} s"]
    text = "\n".join(lines)
    print("\n" + text)
    (HERE / "last_run.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
