"""``Lamb``: Adam's direction rescaled per weight by a trust ratio (You et al., 2019), as Keras 3."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from kfunc.train.optimizers.base import Optimizer, decayed, leafwise, require_params


class LambState(NamedTuple):
    count: jax.Array  # int32 scalar: updates applied so far
    momentum: optax.Updates  # like the weights
    velocity: optax.Updates  # like the weights


class Lamb(Optimizer):
    """For each weight ``w`` (after decoupled weight decay) at update ``t`` (from 1)::

        m = beta_1 * m + (1 - beta_1) * g;   v = beta_2 * v + (1 - beta_2) * g**2
        u = (m / (1 - beta_1**t)) / (sqrt(v / (1 - beta_2**t)) + epsilon)
        w -= ratio * learning_rate * u,   ratio = ||w|| / ||u|| (1 when either norm is 0)
    """

    def __init__(self, learning_rate=None, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def rate_transformation(self, learning_rate) -> optax.GradientTransformation:
        def init(params):
            zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
            return LambState(jnp.zeros((), jnp.int32), zeros, zeros)

        def update(grads, state, params=None):
            require_params(params, "Lamb")
            t = (state.count + 1).astype(jnp.float32)
            first_bias = 1.0 - jnp.power(jnp.float32(self.beta_1), t)
            second_bias = 1.0 - jnp.power(jnp.float32(self.beta_2), t)
            weights = decayed(params, learning_rate, self.weight_decay)

            def step(w, g, m, v, p):
                g = g.astype(w.dtype)
                m = m + (g - m) * (1.0 - self.beta_1)
                v = v + (jnp.square(g) - v) * (1.0 - self.beta_2)
                direction = (m / first_bias) / (jnp.sqrt(v / second_bias) + self.epsilon)
                w_norm = jnp.sqrt(jnp.sum(jnp.square(w)))
                u_norm = jnp.sqrt(jnp.sum(jnp.square(direction)))
                ratio = jnp.where((w_norm > 0) & (u_norm > 0), w_norm / jnp.where(u_norm > 0, u_norm, 1.0), 1.0)
                new = w - ratio * learning_rate.astype(w.dtype) * direction
                return new - p, m, v

            updates, momentum, velocity = leafwise(step, 3, weights, grads, state.momentum, state.velocity, params)
            return updates, LambState(state.count + 1, momentum, velocity)

        return optax.GradientTransformation(init, update)
