"""A custom layer written with ``add_weight`` and ``kfunc.ops`` trains as fast as the built-in
layer it reimplements: ``Linear`` (Keras 3 guide style) against ``Dense`` in the same MLP
(784-64-64-10, relu, softmax, adam, batch 32, 4,096 samples), fit steps/s.

Both models are built in one process and take turns for several rounds (the median round per
model is reported), so a change in the machine's speed hits both alike.

    python benchmarks/custom_layer.py            # 7 rounds of 3 epochs each
    python benchmarks/custom_layer.py --rounds 3 --epochs 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import kfunc
from kfunc import layers, ops

SAMPLES, BATCH = 4096, 32


class Linear(layers.Layer):
    """``y = activation(x @ w + b)``: ``(batch, in) -> (batch, units)``, as the Keras 3 guide writes it."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = kfunc.activations.get(activation)

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return self.activation(ops.matmul(inputs, self.w) + self.b)


def model(dense_class):
    inputs = kfunc.Input((784,))
    x = dense_class(64, activation="relu")(inputs)
    x = dense_class(64, activation="relu")(x)
    outputs = dense_class(10, activation="softmax")(x)
    built = kfunc.Model(inputs, outputs)
    built.compile("adam", "sparse_categorical_crossentropy")
    return built


def gradient_program(built) -> list[str]:
    """The primitives of the jaxpr of ``grad(sum(model(x)))``, in order: equal lists mean XLA gets
    the same program from both layers."""
    lowered = kfunc.lower(built)
    variables = lowered.init(jax.random.key(0))

    def total(params, x):
        outputs = lowered.apply(params, variables.state, x)
        return jnp.sum(outputs[0] if isinstance(outputs, tuple) else outputs)

    jaxpr = jax.make_jaxpr(jax.grad(total))(variables.params, jnp.ones((BATCH, 784)))
    return [str(equation.primitive) for equation in jaxpr.eqns]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=(SAMPLES,))
    models = {"Dense (built-in)": model(layers.Dense), "Linear (add_weight + ops.matmul)": model(Linear)}
    for built in models.values():
        built.set_weights(models["Dense (built-in)"].get_weights())
        built.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # compile outside the timing
    rates = {name: [] for name in models}
    steps = args.epochs * (SAMPLES // BATCH)
    for _ in range(args.rounds):
        for name, built in models.items():
            started = time.perf_counter()
            built.fit(x, y, batch_size=BATCH, epochs=args.epochs, verbose=0)
            rates[name].append(steps / (time.perf_counter() - started))
    baseline = statistics.median(rates["Dense (built-in)"])
    same = gradient_program(models["Dense (built-in)"]) == gradient_program(models["Linear (add_weight + ops.matmul)"])
    print(f"Same gradient program (jaxpr primitives in order): {'yes' if same else 'NO'}")
    print(f"Command: python benchmarks/custom_layer.py --rounds {args.rounds} --epochs {args.epochs}")
    print("| layer | fit steps/s (median) | vs Dense |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f}x |")


if __name__ == "__main__":
    main()
