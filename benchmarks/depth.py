"""Depth: N repeated residual blocks, ``x = add([x, Dense(64, relu)(LayerNormalization()(x))])``,
then ``Dense(1)``; adam, mse, batch 32, 1,024 samples (32 steps an epoch).

For each N and system, in its own process: the first fit (build + compile + one epoch) and the
step time of the steady state (a second fit of several epochs, per step). Systems: kfunc (repeated
blocks folded into one lax.scan, the default), kfunc with ``fold_repeated_blocks=False``, Keras 3
(JAX backend), hand-written JAX unrolled, hand-written JAX with one ``lax.scan`` over stacked
weights (both: one jitted epoch of steps, optax adam).

    python benchmarks/depth.py 8 32 64 128           # the table
    python benchmarks/depth.py --remat 64 --width 512 --batch 512   # peak memory with/without remat
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's kfunc

SYSTEMS = ("kfunc", "kfunc_unfolded", "keras", "hand_unrolled", "hand_scan")
WIDTH, BATCH, SAMPLES, EPOCHS = 64, 32, 1024, 5


def _data(width=WIDTH, samples=SAMPLES):
    rng = np.random.default_rng(0)
    return rng.normal(size=(samples, width)).astype("float32"), rng.normal(size=(samples, 1)).astype("float32")


def _frontend_model(lib, depth: int, width=WIDTH):
    inputs = lib.Input((width,))
    x = inputs
    for _ in range(depth):
        x = lib.layers.add([x, lib.layers.Dense(width, activation="relu")(lib.layers.LayerNormalization()(x))])
    return lib.Model(inputs, lib.layers.Dense(1)(x))


def frontend(system: str, depth: int) -> tuple[float, float]:
    """``(first fit seconds, steady step seconds)`` of kfunc or Keras ``fit``."""
    started = time.perf_counter()
    if system == "keras":
        import keras as lib

        options = {}
    else:
        import kfunc as lib

        options = {"fold_repeated_blocks": system == "kfunc"}
    x, y = _data()
    model = _frontend_model(lib, depth)
    model.compile("adam", "mse", **options)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    first = time.perf_counter() - started
    began = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    return first, (time.perf_counter() - began) / (EPOCHS * SAMPLES // BATCH)


def hand(system: str, depth: int) -> tuple[float, float]:
    """The same model in jax.numpy: blocks unrolled in Python, or one ``lax.scan``."""
    started = time.perf_counter()
    import jax
    import jax.numpy as jnp
    import optax

    key = jax.random.key(0)
    limit = float(np.sqrt(6.0 / (2 * WIDTH)))
    blocks = [{"w": jax.random.uniform(jax.random.fold_in(key, i), (WIDTH, WIDTH), minval=-limit, maxval=limit),
               "b": jnp.zeros(WIDTH), "g": jnp.ones(WIDTH), "beta": jnp.zeros(WIDTH)} for i in range(depth)]
    head = {"w": jnp.zeros((WIDTH, 1)) + 0.01, "b": jnp.zeros(1)}

    def block(x, p):
        mean = jnp.mean(x, -1, keepdims=True)
        h = (x - mean) * jax.lax.rsqrt(jnp.var(x, -1, keepdims=True) + 1e-3) * p["g"] + p["beta"]
        return x + jax.nn.relu(h @ p["w"] + p["b"])

    scanned = system == "hand_scan"
    params = {"blocks": jax.tree_util.tree_map(lambda *a: jnp.stack(a), *blocks) if scanned else blocks, "head": head}

    def loss(params, x, y):
        if scanned:
            x = jax.lax.scan(lambda c, p: (block(c, p), None), x, params["blocks"])[0]
        else:
            for p in params["blocks"]:
                x = block(x, p)
        return jnp.mean((x @ params["head"]["w"] + params["head"]["b"] - y) ** 2)

    optimizer = optax.adam(1e-3)

    @jax.jit
    def epoch(params, opt_state, x, y):
        def step(carry, batch):
            params, opt_state = carry
            grads = jax.grad(loss)(params, *batch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        batches = (x.reshape(-1, BATCH, WIDTH), y.reshape(-1, BATCH, 1))
        return jax.lax.scan(step, (params, opt_state), batches)[0]

    x, y = (jnp.asarray(a) for a in _data())
    state = (params, optimizer.init(params))
    state = jax.block_until_ready(epoch(*state, x, y))
    first = time.perf_counter() - started
    began = time.perf_counter()
    for _ in range(EPOCHS):
        state = epoch(*state, x, y)
    jax.block_until_ready(state)
    return first, (time.perf_counter() - began) / (EPOCHS * SAMPLES // BATCH)


def remat_figures(depth: int, width: int, batch: int) -> list[dict]:
    """Peak temporary memory (XLA's memory analysis) and time of one gradient of kfunc's folded
    model, without and with ``remat`` (``jax.checkpoint`` of each block)."""
    import jax
    import jax.numpy as jnp

    import kfunc
    from kfunc.folding import BlockFolding
    from kfunc.lower import apply_stacked

    model = _frontend_model(kfunc, depth, width)
    folding = BlockFolding.of(model)
    params, state = (folding.stack_tree(t) for t in model.get_variables())
    x, y = (jnp.asarray(a) for a in _data(width, batch))
    rows = []
    for remat in (False, True, "dots_saveable"):
        def loss(p, remat=remat):
            out, _ = apply_stacked(model, folding, p, state, x, training=True, remat=remat)
            return jnp.mean((out - y) ** 2)

        compiled = jax.jit(jax.grad(loss)).lower(params).compile()
        memory = compiled.memory_analysis()
        jax.block_until_ready(compiled(params))
        began = time.perf_counter()
        for _ in range(10):
            grads = compiled(params)
        jax.block_until_ready(grads)
        rows.append({"remat": str(remat), "temp_MB": round(memory.temp_size_in_bytes / 2**20, 1),
                     "step_ms": round((time.perf_counter() - began) / 10 * 1000, 2)})
    return rows


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--worker":
        system, depth = argv[1], int(argv[2])
        run = hand if system.startswith("hand") else frontend
        first, step = run(system, depth)
        print(json.dumps({"first_fit_s": first, "step_ms": step * 1000}))
        return
    if argv and argv[0] == "--remat":
        depth = int(argv[1])
        width = int(argv[argv.index("--width") + 1]) if "--width" in argv else 512
        batch = int(argv[argv.index("--batch") + 1]) if "--batch" in argv else 512
        print(f"remat, N={depth}, width {width}, batch {batch}")
        for row in remat_figures(depth, width, batch):
            print(row)
        return
    depths = [int(a) for a in argv] or [8, 32, 64, 128]
    systems = [s for s in SYSTEMS if s in os.environ.get("DEPTH_SYSTEMS", ",".join(SYSTEMS)).split(",")]
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print("| N | " + " | ".join(f"{s} first fit / step" for s in systems) + " |")
    print("|---|" + "---|" * len(systems))
    for depth in depths:
        cells = []
        for system in systems:
            done = subprocess.run([sys.executable, __file__, "--worker", system, str(depth)], capture_output=True,
                                  text=True)
            if done.returncode != 0:
                cells.append("failed")
                print(done.stderr[-2000:], file=sys.stderr)
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            cells.append(f"{result['first_fit_s']:.1f} s / {result['step_ms']:.2f} ms")
        print(f"| {depth} | " + " | ".join(cells) + " |", flush=True)
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main(sys.argv[1:])
