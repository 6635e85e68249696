"""The hand-written JAX baselines: each workload's model written directly in jax.numpy, with
the same shapes, initial-weight scales, losses and optax optimizers as the kfunc model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _dense(key, fan_in, fan_out):
    limit = jnp.sqrt(6.0 / (fan_in + fan_out))
    return {"w": jax.random.uniform(key, (fan_in, fan_out), minval=-limit, maxval=limit), "b": jnp.zeros(fan_out)}


def mlp_init(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [_dense(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]


def mlp_apply(params, x, final=None):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    x = x @ params[-1]["w"] + params[-1]["b"]
    return final(x) if final else x


def lstm_model_init(key, vocabulary, embedding, units, extra):
    k = jax.random.split(key, 6)
    return {
        "embedding": jax.random.uniform(k[0], (vocabulary, embedding), minval=-0.05, maxval=0.05),
        "kernel": _dense(k[1], embedding, 4 * units)["w"],
        "recurrent": jax.nn.initializers.orthogonal()(k[2], (units, 4 * units)),
        "bias": jnp.concatenate([jnp.zeros(units), jnp.ones(units), jnp.zeros(2 * units)]),
        "aux": _dense(k[3], units, 1),
        "head": mlp_init(k[4], [units + extra, 64, 64, 64, 1]),
    }


def lstm_model_apply(params, words, extra):
    """The guide's headline model: embedding, LSTM, auxiliary and main sigmoid outputs."""
    x = jnp.take(params["embedding"], words, axis=0)
    projected = jnp.swapaxes(x @ params["kernel"] + params["bias"], 0, 1)
    units = params["recurrent"].shape[0]

    def step(carry, z_x):
        h, c = carry
        i, f, g, o = jnp.split(z_x + h @ params["recurrent"], 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    zeros = jnp.zeros((words.shape[0], units))
    (h, _), _ = jax.lax.scan(step, (zeros, zeros), projected)
    aux = jax.nn.sigmoid(h @ params["aux"]["w"] + params["aux"]["b"])
    main = mlp_apply(params["head"], jnp.concatenate([h, extra], axis=-1), jax.nn.sigmoid)
    return main, aux


def cnn_init(key):
    k = jax.random.split(key, 3)
    conv = lambda key, shape: jax.nn.initializers.glorot_uniform()(key, shape)  # noqa: E731
    return {
        "c1": {"w": conv(k[0], (3, 3, 1, 32)), "b": jnp.zeros(32)},
        "c2": {"w": conv(k[1], (3, 3, 32, 64)), "b": jnp.zeros(64)},
        "out": _dense(k[2], 12 * 12 * 64, 10),
    }


def cnn_apply(params, x):
    numbers = ("NHWC", "HWIO", "NHWC")
    for name in ("c1", "c2"):
        x = jax.lax.conv_general_dilated(x, params[name]["w"], (1, 1), "VALID", dimension_numbers=numbers)
        x = jax.nn.relu(x + params[name]["b"])
    x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    x = x.reshape(x.shape[0], -1)
    return jax.nn.softmax(x @ params["out"]["w"] + params["out"]["b"])


def mse(prediction, target):
    return jnp.mean((prediction - target) ** 2)


def binary_crossentropy(p, y):
    p = jnp.clip(p, 1e-7, 1 - 1e-7)
    return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))


def categorical_crossentropy(p, y):
    return -jnp.mean(jnp.sum(y * jnp.log(jnp.clip(p, 1e-7, 1.0)), axis=-1))


def make_step(loss_fn, transformation: optax.GradientTransformation):
    """``step(params, opt_state, batch) -> (params, opt_state)`` for a loss of ``(params, batch)``."""

    def step(params, opt_state, batch):
        grads = jax.grad(loss_fn)(params, batch)
        updates, opt_state = transformation.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return step
