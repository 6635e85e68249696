"""``Adafactor`` (Shazeer & Stern, 2018): second moments factored into row and column averages for
weights of rank 2 or more (memory ``O(rows + cols)`` instead of ``O(rows * cols)``), as Keras 3."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from kfunc.train.optimizers.base import Optimizer, decayed, leafwise, require_params


class AdafactorState(NamedTuple):
    """``moments``: per weight of shape ``(..., rows, cols)``, ``{"row": (..., rows), "col": (..., cols)}``
    (running means of ``g**2`` over the last and the second-last axis); per weight of rank < 2,
    ``{"velocity": like the weight}``."""

    count: jax.Array  # int32 scalar: updates applied so far
    moments: dict


def _rms(x):
    return jnp.sqrt(jnp.mean(jnp.square(x)))


class Adafactor(Optimizer):
    """At update ``t`` (from 1), for each weight ``w`` (after decoupled weight decay)::

        rho = min(learning_rate, 1 / sqrt(t));   beta_2 = 1 - t**beta_2_decay
        moments of g**2 + epsilon_1 with decay beta_2 (factored for rank >= 2: v = r c / mean(r))
        u = g / sqrt(v);   u /= max(1, rms(u) / clip_threshold)
        w -= max(epsilon_2, rms(w)) * rho * u

    The learning rate is a cap inside the rule. ``relative_step`` is kept as Keras 3 keeps it;
    as in Keras 3 it changes nothing, since ``rho`` is capped by ``1 / sqrt(t)`` in any case.
    """

    def __init__(self, learning_rate=None, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                 clip_threshold=1.0, relative_step=True, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = beta_2_decay, epsilon_1, epsilon_2
        self.clip_threshold, self.relative_step = clip_threshold, relative_step

    def rate_transformation(self, learning_rate) -> optax.GradientTransformation:
        def init(params):
            def moments(w):
                if w.ndim >= 2:
                    return {"row": jnp.zeros(w.shape[:-1], w.dtype), "col": jnp.zeros(w.shape[:-2] + w.shape[-1:], w.dtype)}
                return {"velocity": jnp.zeros_like(w)}

            return AdafactorState(jnp.zeros((), jnp.int32), jax.tree_util.tree_map(moments, params))

        def update(grads, state, params=None):
            require_params(params, "Adafactor")
            t = (state.count + 1).astype(jnp.float32)
            rho = jnp.minimum(learning_rate, 1.0 / jnp.sqrt(t))
            beta_2 = 1.0 - jnp.power(t, jnp.float32(self.beta_2_decay))
            weights = decayed(params, learning_rate, self.weight_decay)

            def step(w, g, moments, p):
                g = g.astype(w.dtype)
                squared = jnp.square(g) + self.epsilon_1
                if w.ndim >= 2:
                    row = beta_2 * moments["row"] + (1.0 - beta_2) * jnp.mean(squared, axis=-1)
                    col = beta_2 * moments["col"] + (1.0 - beta_2) * jnp.mean(squared, axis=-2)
                    velocity = (row / jnp.mean(row, axis=-1, keepdims=True))[..., None] * col[..., None, :]
                    moments = {"row": row, "col": col}
                else:
                    velocity = beta_2 * moments["velocity"] + (1.0 - beta_2) * squared
                    moments = {"velocity": velocity}
                direction = g / jnp.sqrt(velocity)
                direction = direction / jnp.maximum(1.0, _rms(direction) / self.clip_threshold)
                new = w - jnp.maximum(self.epsilon_2, _rms(w)) * rho * direction
                return new - p, moments

            updates, moments = leafwise(step, 2, weights, grads, state.moments, params)
            return updates, AdafactorState(state.count + 1, moments)

        return optax.GradientTransformation(init, update)
