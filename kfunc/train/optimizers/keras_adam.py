"""Adam and Nadam exactly as Keras 3 updates (optax's forms differ in small ways that add up).

Adam: Keras applies ``epsilon`` to the raw second moment and folds both bias corrections into the
step size, ``w -= lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon)``, where
optax divides bias-corrected moments (``m_hat / (sqrt(v_hat) + eps)``): the two differ where
``sqrt(v)`` is near ``epsilon``. Nadam: Keras's momentum schedule
``u_t = beta_1 * (1 - 0.5 * 0.96**t)`` and its running product, not optax's Nesterov Adam.

Both return the direction before the learning rate (the ``Optimizer`` chain scales by it), with
``t`` the 1-based step; every moment has its weight's shape.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class KerasAdamState(NamedTuple):
    count: jax.Array  # int32 steps taken
    mu: optax.Updates
    nu: optax.Updates
    nu_max: optax.Updates  # amsgrad's running maximum of nu (an empty tuple without amsgrad)


class KerasNadamState(NamedTuple):
    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    u_product: jax.Array  # prod of u_1 .. u_t, float32


def _moments(updates, mu, nu, b1: float, b2: float):
    mu = jax.tree_util.tree_map(lambda m, g: m + (g - m) * (1 - b1), mu, updates)
    nu = jax.tree_util.tree_map(lambda v, g: v + (jnp.square(g) - v) * (1 - b2), nu, updates)
    return mu, nu


def scale_by_keras_adam(b1: float, b2: float, eps: float, amsgrad: bool = False) -> optax.GradientTransformation:
    def init(params):
        zeros = lambda: jax.tree_util.tree_map(jnp.zeros_like, params)  # noqa: E731
        return KerasAdamState(jnp.zeros((), jnp.int32), zeros(), zeros(), zeros() if amsgrad else ())

    def update(updates, state, params=None):
        del params
        t = (state.count + 1).astype(jnp.float32)
        mu, nu = _moments(updates, state.mu, state.nu, b1, b2)
        nu_max = jax.tree_util.tree_map(jnp.maximum, state.nu_max, nu) if amsgrad else ()
        alpha = jnp.sqrt(1 - jnp.float32(b2) ** t) / (1 - jnp.float32(b1) ** t)
        second = nu_max if amsgrad else nu
        direction = jax.tree_util.tree_map(
            lambda m, v: (alpha * m / (jnp.sqrt(v) + eps)).astype(m.dtype), mu, second
        )
        return direction, KerasAdamState(state.count + 1, mu, nu, nu_max)

    return optax.GradientTransformation(init, update)


def scale_by_keras_nadam(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    def init(params):
        zeros = lambda: jax.tree_util.tree_map(jnp.zeros_like, params)  # noqa: E731
        return KerasNadamState(jnp.zeros((), jnp.int32), zeros(), zeros(), jnp.ones((), jnp.float32))

    def update(updates, state, params=None):
        del params
        t = (state.count + 1).astype(jnp.float32)
        u_t = b1 * (1.0 - 0.5 * jnp.float32(0.96) ** t)
        u_next = b1 * (1.0 - 0.5 * jnp.float32(0.96) ** (t + 1))
        u_product = state.u_product * u_t
        u_product_next = u_product * u_next
        mu, nu = _moments(updates, state.mu, state.nu, b1, b2)
        bias_2 = 1 - jnp.float32(b2) ** t

        def direction(m, v, g):
            m_hat = u_next * m / (1 - u_product_next) + (1 - u_t) * g / (1 - u_product)
            return (m_hat / (jnp.sqrt(v / bias_2) + eps)).astype(m.dtype)

        return jax.tree_util.tree_map(direction, mu, nu, updates), KerasNadamState(state.count + 1, mu, nu, u_product)

    return optax.GradientTransformation(init, update)
