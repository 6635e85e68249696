"""``Muon``: momentum orthogonalized by a Newton-Schulz iteration for 2-D weights, AdamW for the
rest (Jordan et al., 2024; Keras 3's arguments, rule and learning-rate adjustment of Moonlight)."""

from __future__ import annotations

import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from kfunc.train.optimizers.base import Optimizer, decayed, leafwise, require_params


class MuonState(NamedTuple):
    count: jax.Array  # int32 scalar: updates applied so far
    momentum: optax.Updates  # like the weights
    velocity: optax.Updates  # like the weights for the AdamW weights; shape (0,) for the Muon weights


def weight_path(path) -> str:
    """``"dense/kernel"`` from a tree path of the params dict (Keras's ``variable.path``)."""
    return "/".join(str(getattr(key, "key", getattr(key, "name", key))) for key in path)


class Muon(Optimizer):
    """A weight trains with Muon when it is 2-D and neither an embedding (``exclude_embeddings``:
    ``"embedding"`` in its path, e.g. ``"embedding/embeddings"``) nor matched by a regular expression
    of ``exclude_layers``; each Muon weight ``w`` of shape ``(n, m)`` at update ``t``::

        b = momentum * b + g;   d = g + momentum * b if nesterov else b
        w -= learning_rate * newton_schulz(d) * sqrt(max(n, m)) * rms_rate

    (``newton_schulz``: ``ns_steps`` quintic iterations with coefficients ``muon_a, muon_b, muon_c``
    toward the orthogonal factor of ``d``). Every other weight trains with AdamW at
    ``learning_rate * adam_lr_ratio``. Decoupled decay ``weight_decay`` (Muon weights) or
    ``adam_weight_decay`` (the others) is applied first, at ``learning_rate``.
    """

    def __init__(self, learning_rate=None, adam_beta_1=0.9, adam_beta_2=0.999, adam_weight_decay=0.004,
                 epsilon=1e-7, weight_decay=0.004, exclude_layers=None, exclude_embeddings=True, muon_a=3.4445,
                 muon_b=-4.7750, muon_c=2.0315, adam_lr_ratio=1, momentum=0.95, ns_steps=5, nesterov=True,
                 rms_rate=0.2, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)
        self.adam_beta_1, self.adam_beta_2, self.adam_weight_decay = adam_beta_1, adam_beta_2, adam_weight_decay
        self.epsilon = epsilon
        self.exclude_layers = list(exclude_layers or [])
        self.exclude_embeddings = exclude_embeddings
        self.muon_a, self.muon_b, self.muon_c = muon_a, muon_b, muon_c
        self.adam_lr_ratio, self.momentum, self.ns_steps = adam_lr_ratio, momentum, ns_steps
        self.nesterov, self.rms_rate = nesterov, rms_rate

    def uses_adamw(self, path: str, shape) -> bool:
        """Whether the weight at ``path`` (``"dense/kernel"``) trains with AdamW instead of Muon."""
        if len(shape) != 2:
            return True
        if self.exclude_embeddings and "embedding" in path.lower():
            return True
        return any(re.search(pattern, path) for pattern in self.exclude_layers)

    def _orthogonalized(self, d):
        """The Newton-Schulz iteration on ``d`` of shape ``(n, m)``, computed on the wide side."""
        tall = d.shape[-2] > d.shape[-1]
        x = d.T if tall else d
        x = x / (jnp.linalg.norm(x) + 1e-7)
        for _ in range(self.ns_steps):
            gram = x @ x.T
            x = self.muon_a * x + (self.muon_b * gram + self.muon_c * gram @ gram) @ x
        return x.T if tall else x

    def rate_transformation(self, learning_rate) -> optax.GradientTransformation:
        def adam_weights(params):
            """A bool per weight (a Python value: shapes and names are static)."""
            return jax.tree_util.tree_map_with_path(lambda path, w: self.uses_adamw(weight_path(path), w.shape), params)

        def init(params):
            velocity = jax.tree_util.tree_map(
                lambda adam, w: jnp.zeros_like(w) if adam else jnp.zeros((0,), w.dtype), adam_weights(params), params)
            return MuonState(jnp.zeros((), jnp.int32), jax.tree_util.tree_map(jnp.zeros_like, params), velocity)

        def update(grads, state, params=None):
            require_params(params, "Muon")
            t = (state.count + 1).astype(jnp.float32)
            adam = adam_weights(params)
            adam_decay = decayed(params, learning_rate, self.adam_weight_decay)
            muon_decay = decayed(params, learning_rate, self.weight_decay)
            adam_rate = learning_rate * self.adam_lr_ratio
            alpha = adam_rate * jnp.sqrt(1.0 - jnp.power(jnp.float32(self.adam_beta_2), t)) / (
                1.0 - jnp.power(jnp.float32(self.adam_beta_1), t))

            def step(uses_adam, w_adam, w_muon, g, m, v, p):
                g = g.astype(p.dtype)
                if uses_adam:
                    m = m + (g - m) * (1.0 - self.adam_beta_1)
                    v = v + (jnp.square(g) - v) * (1.0 - self.adam_beta_2)
                    return w_adam - m * alpha / (jnp.sqrt(v) + self.epsilon) - p, m, v
                m = m + g + m * (self.momentum - 1.0)
                direction = self._orthogonalized(g + self.momentum * m if self.nesterov else m)
                step_size = learning_rate * direction
                if self.rms_rate is not None:
                    step_size = step_size * jnp.sqrt(float(max(p.shape))) * self.rms_rate
                return w_muon - step_size - p, m, v

            updates, momentum, velocity = leafwise(step, 3, adam, adam_decay, muon_decay, grads, state.momentum,
                                                   state.velocity, params)
            return updates, MuonState(state.count + 1, momentum, velocity)

        return optax.GradientTransformation(init, update)
