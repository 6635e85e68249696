"""Benchmarks: kfunc fit against a hand-written JAX loop, the same loop fused per epoch, and
Keras 3 on JAX.

For each workload, steady-state steps/s of all systems are measured in one process, taking
turns for several rounds (median round per system), so that a change in the machine's speed hits
every system alike; time to first step and peak RSS come from a fresh process per system.

    python benchmarks/run.py            # full sizes
    python benchmarks/run.py --quick    # smaller data, fewer epochs: a few minutes on 2 cores
    python benchmarks/run.py --only W0,W1 --systems "kfunc fit,jax scan"

Prints a markdown table (steps/s, ratio to the hand-written per-step loop and to the fused
scan, time to first step, peak RSS), then W4 (graph scaling) and W5 (data parallel on 1, 2, 4
CPU devices), and writes it all to benchmarks/last_run.md. ``--quick`` takes
the time to first step in the shared process and leaves out peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("KERAS_BACKEND", "jax")

from data_parallel import table as data_parallel_table  # noqa: E402


def child_first(workload_name: str, system: str, quick: bool) -> None:
    """Fresh process: time to first step, one more step, then the peak RSS."""
    from systems import SYSTEMS
    from workloads import WORKLOADS

    runner = SYSTEMS[system](WORKLOADS[workload_name], quick)
    first = runner.setup()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"first_step_s": first, "peak_rss_mb": peak}))


def child_throughput(workload_name: str, systems: list[str], quick: bool, epochs: int, rounds: int) -> None:
    """All systems in one process, taking turns: the median steps/s of up to ``rounds`` runs each
    (fewer for a system whose runs exceed the time budget), and each system's time to first step."""
    from systems import SYSTEMS
    from workloads import WORKLOADS

    workload = WORKLOADS[workload_name]
    epochs = epochs or workload.epochs_per_run[0 if quick else 1]
    budget = 6.0 if quick else 60.0
    runners = {s: SYSTEMS[s](workload, quick) for s in systems}
    results, spent, rates = {}, {}, {}
    for name, runner in list(runners.items()):
        try:
            results[name] = {"first_step_s": runner.setup()}
        except Exception as error:  # noqa: BLE001 - reported in the table
            results[name] = {"error": f"{type(error).__name__}: {str(error)[:80]}"}
            del runners[name]
    for _ in range(rounds):
        for name, runner in runners.items():
            if spent.get(name, 0.0) > budget:
                continue
            started = time.perf_counter()
            rates.setdefault(name, []).append(runner.run(epochs))
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
    for name, values in rates.items():
        results[name]["steps_per_s"] = statistics.median(values)
    print("RESULT " + json.dumps(results))


def _child(arguments: list[str], timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__)), *arguments]
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
    parser.add_argument("--only", default="W0,W1,W1b128,W2,W3,W4,W5")
    parser.add_argument("--systems", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--child-first", nargs=2, metavar=("WORKLOAD", "SYSTEM"))
    parser.add_argument("--child-throughput", nargs=2, metavar=("WORKLOAD", "SYSTEMS"))
    args = parser.parse_args()
    epochs = args.epochs or 0  # 0: the workload's own epochs per timed run
    rounds = args.rounds or (3 if args.quick else 5)
    if args.child_first:
        child_first(args.child_first[0], args.child_first[1], args.quick)
        return
    if args.child_throughput:
        child_throughput(args.child_throughput[0], args.child_throughput[1].split(","), args.quick, epochs, rounds)
        return

    from systems import SYSTEMS
    from workloads import WORKLOADS

    try:
        import keras  # noqa: F401

        has_keras = True
    except ImportError:
        has_keras = False
    try:
        import torch  # noqa: F401

        has_torch = True
    except ImportError:
        has_torch = False
    default = [
        s for s in SYSTEMS
        if "donated" not in s and (has_keras or not s.startswith("keras")) and (has_torch or not s.startswith("pytorch"))
    ]
    if args.quick:
        default = [s for s in default if "no-shuffle" not in s]
    systems = args.systems.split(",") if args.systems else default
    selected = args.only.split(",")
    started = time.perf_counter()
    lines = [
        f"Machine: {machine()}",
        f"Command: python benchmarks/run.py{' --quick' if args.quick else ''}" + (f" --only {args.only}" if args.only != parser.get_default("only") else ""),
        "",
        "| workload | system | steps/s | vs jax step | vs jax scan | first step (s) | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    quick = ["--quick"] if args.quick else []
    for name in [w for w in selected if w in WORKLOADS]:
        workload = WORKLOADS[name]
        for_workload = [s for s in systems if not s.startswith("pytorch") or name == "W3"]
        if args.quick and name == "W3" and not args.systems:
            # XLA's CPU kernel gradient inside a loop makes the fused scan take minutes: full runs only.
            for_workload = [s for s in for_workload if s != "jax scan"]
        results = _child(["--child-throughput", name, ",".join(for_workload), "--epochs", str(epochs),
                          "--rounds", str(rounds), *quick], timeout=1800)
        # The full run takes time to first step and peak memory from a fresh process per system.
        firsts = {} if args.quick else {s: _child(["--child-first", name, s], timeout=900) for s in for_workload}
        rate = lambda system: results.get(system, {}).get("steps_per_s")  # noqa: E731
        step, scan = rate("jax step"), rate("jax scan")
        for system in for_workload:
            result = results.get(system, {"error": results.get("error", "missing")})
            if "error" in result:
                lines.append(f"| {name} {workload.title} | {system} | {result['error']} | | | | |")
                continue
            ratio = lambda base: f"{result['steps_per_s'] / base:.2f}x" if base else "-"  # noqa: E731, B023
            first = firsts.get(system, {})
            first_s = first.get("first_step_s", result["first_step_s"])
            rss = f"{first['peak_rss_mb']:.0f}" if "peak_rss_mb" in first else "-"
            lines.append(
                f"| {name} {workload.title} | {system} | {result['steps_per_s']:,.1f} | {ratio(step)} | "
                f"{ratio(scan)} | {first_s:.2f} | {rss} |"
            )
        print("\n".join(lines[-len(for_workload):]), flush=True)
    if "W4" in selected:
        lines += ["", *graph_scaling([100, 1000] if args.quick else [100, 1000, 3000], args.quick)]
    if "W5" in selected:
        lines += ["", *data_parallel_table(samples=3840 if args.quick else 30720, epochs=2 if args.quick else 3)]
        print("\n".join(lines[-5:]), flush=True)
    lines += ["", f"Total benchmark time: {time.perf_counter() - started:.0f} s"]
    text = "\n".join(lines)
    print("\n" + text)
    (HERE / "last_run.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
