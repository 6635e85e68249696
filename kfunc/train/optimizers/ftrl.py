"""``Ftrl``: Follow The Regularized Leader (McMahan et al., 2013), with Keras 3's arguments and rule."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from kfunc.errors import TrainingConfigError
from kfunc.train.optimizers.base import Optimizer, check_non_negative, decayed, leafwise, require_params


class FtrlState(NamedTuple):
    accumulator: optax.Updates  # sum of squared gradients, like the weights
    linear: optax.Updates  # like the weights


class Ftrl(Optimizer):
    """For each weight ``w`` (after decoupled weight decay), with ``p = -learning_rate_power``::

        n' = n + g**2
        z += g + 2 * l2_shrinkage * w - (n'**p - n**p) / learning_rate * w
        w = (clip(z, -l1, l1) - z) / (n'**p / learning_rate + 2 * (l2 + beta / (2 * learning_rate)))

    The learning rate enters the rule itself (it is not a final scaling of a direction).
    """

    def __init__(self, learning_rate=None, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        check_non_negative(
            "Ftrl", initial_accumulator_value=initial_accumulator_value,
            l1_regularization_strength=l1_regularization_strength,
            l2_regularization_strength=l2_regularization_strength,
            l2_shrinkage_regularization_strength=l2_shrinkage_regularization_strength,
        )
        if learning_rate_power > 0:
            raise TrainingConfigError(
                f"Ftrl: learning_rate_power must be zero or negative, received {learning_rate_power!r}; "
                "pass a value <= 0 (the default is -0.5)."
            )
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def rate_transformation(self, learning_rate) -> optax.GradientTransformation:
        power = -self.learning_rate_power
        l1 = self.l1_regularization_strength

        def init(params):
            start = jax.tree_util.tree_map(lambda w: jnp.full_like(w, self.initial_accumulator_value), params)
            return FtrlState(start, jax.tree_util.tree_map(jnp.zeros_like, params))

        def update(grads, state, params=None):
            require_params(params, "Ftrl")
            weights = decayed(params, learning_rate, self.weight_decay)

            def step(w, g, n, z, p):
                rate = learning_rate.astype(w.dtype)
                g = g.astype(w.dtype)
                l2 = self.l2_regularization_strength + self.beta / (2.0 * rate)
                n_new = n + jnp.square(g)
                z = z + (g + 2.0 * self.l2_shrinkage_regularization_strength * w) - (
                    (jnp.power(n_new, power) - jnp.power(n, power)) / rate) * w
                quadratic = jnp.power(n_new, power) / rate + 2.0 * l2
                new = (jnp.clip(z, -l1, l1) - z) / quadratic
                return new - p, n_new, z

            updates, accumulator, linear = leafwise(step, 3, weights, grads, state.accumulator, state.linear, params)
            return updates, FtrlState(accumulator, linear)

        return optax.GradientTransformation(init, update)
