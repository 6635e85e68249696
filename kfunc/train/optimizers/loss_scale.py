"""``LossScaleOptimizer``: dynamic loss scaling for ``mixed_float16``, as Keras 3 does it.

float16 holds nothing below about 6e-8, so small gradients of a float16 model round to zero. The
training step multiplies the loss by the current scale before differentiating (the float16
gradients are then ``scale`` times larger), and this transformation divides the gradients by it
again before the wrapped optimizer sees them. When a gradient is not finite (the scale was too
large and float16 overflowed) the step is skipped: the weights and the wrapped optimizer's state
stay as they were, and the scale is halved. After ``dynamic_growth_steps`` finite steps in a row
it is doubled. The scale and the counter are optimizer state, updated inside the compiled step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from kfunc.errors import TrainingConfigError
from kfunc.train.optimizers.base import KERAS_ONLY_DEFAULTS, Optimizer
from kfunc.train.optimizers.serialization import deserialize, serialize

# Base-optimizer arguments a Keras config of a LossScaleOptimizer may hold at these values (older
# Keras versions wrote them); they belong to the wrapped optimizer.
_WRAPPER_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                     **KERAS_ONLY_DEFAULTS}


class LossScaleState(NamedTuple):
    dynamic_scale: jax.Array  # float32 scalar: what the loss is multiplied by
    step_counter: jax.Array  # int32 scalar: finite steps since the scale last changed
    inner: Any  # the wrapped optimizer's state


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.result_type(g), jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.ones((), bool)


def loss_scale_state(opt_state) -> LossScaleState | None:
    """The ``LossScaleState`` inside an optimizer state (also under ``optax.multi_transform``), or
    None when the optimizer does not scale the loss. Structure only: safe while tracing."""
    found = [node for node in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda n: isinstance(n, LossScaleState))
             if isinstance(node, LossScaleState)]
    return found[0] if found else None


def step_applied(new_opt_state, scaling: LossScaleState) -> jax.Array:
    """Whether the update from the state holding ``scaling`` to ``new_opt_state`` was applied (a
    bool scalar): the scale falls exactly on the steps the loss scaler skips."""
    return loss_scale_state(new_opt_state).dynamic_scale >= scaling.dynamic_scale


class LossScaleOptimizer(Optimizer):
    """Wraps ``inner_optimizer`` (a ``kfunc.optimizers`` optimizer) with dynamic loss scaling.

    ``initial_scale``: the first scale (large: a scale that is too large falls fast, by halving
    on each overflowing step; one too small grows slowly). ``dynamic_growth_steps``: finite steps
    after which the scale doubles. ``compile()`` wraps the optimizer automatically when the
    model's dtype policy is ``"mixed_float16"`` (``auto_scale_loss=True``, as Keras 3).
    """

    def __init__(self, inner_optimizer, initial_scale=2.0**15, dynamic_growth_steps=2000, name=None, **kwargs):
        if not kwargs.pop("dynamic", True):
            raise TrainingConfigError(
                "LossScaleOptimizer: dynamic=False is not supported (as in Keras 3); the scale is always "
                "dynamic: remove the argument."
            )
        for argument, default in _WRAPPER_DEFAULTS.items():
            if argument in kwargs and kwargs.pop(argument) != default:
                raise TrainingConfigError(
                    f"LossScaleOptimizer: {argument} belongs to the wrapped optimizer; set it on inner_optimizer "
                    "instead."
                )
        if kwargs:
            raise TrainingConfigError(
                f"LossScaleOptimizer got unknown argument(s) {sorted(kwargs)}; it accepts inner_optimizer, "
                "initial_scale, dynamic_growth_steps and name."
            )
        if not isinstance(inner_optimizer, Optimizer) or isinstance(inner_optimizer, LossScaleOptimizer):
            raise TrainingConfigError(
                f"LossScaleOptimizer: inner_optimizer must be a kfunc.optimizers optimizer (not a "
                f"LossScaleOptimizer), received {type(inner_optimizer).__name__}; pass e.g. kfunc.optimizers.Adam()."
            )
        if not (isinstance(initial_scale, (int, float)) and initial_scale > 0):
            raise TrainingConfigError(
                f"LossScaleOptimizer: initial_scale must be a positive number, received {initial_scale!r}."
            )
        if isinstance(dynamic_growth_steps, bool) or not isinstance(dynamic_growth_steps, int) or dynamic_growth_steps < 1:
            raise TrainingConfigError(
                f"LossScaleOptimizer: dynamic_growth_steps must be a positive int, received {dynamic_growth_steps!r}."
            )
        super().__init__(0.0, name=name or "loss_scale_optimizer")
        self.inner_optimizer = inner_optimizer
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = dynamic_growth_steps

    def _attach(self, trainer) -> None:
        super()._attach(trainer)
        self.inner_optimizer._attach(trainer)

    @property
    def learning_rate(self):
        """The wrapped optimizer's learning rate (read and set through it)."""
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.inner_optimizer.learning_rate = value

    @property
    def dynamic_scale(self) -> float:
        """The current loss scale: once training started, the value in the optimizer state."""
        trainer = self._trainer
        state = None if trainer is None or trainer.opt_state is None else loss_scale_state(trainer.opt_state)
        return self.initial_scale if state is None else float(state.dynamic_scale)

    @property
    def iterations(self) -> int:
        """Updates the wrapped optimizer applied: skipped steps do not count (Keras 3's rule)."""
        trainer = self._trainer
        state = None if trainer is None or trainer.opt_state is None else loss_scale_state(trainer.opt_state)
        if state is None:
            return 0
        injected = [node for node in jax.tree_util.tree_leaves(state.inner, is_leaf=lambda n: hasattr(n, "hyperparams"))
                    if hasattr(node, "hyperparams")]
        return int(injected[0].count)

    def scale_loss(self, loss):
        """``loss`` times the current scale (what the training step differentiates)."""
        return loss * self.dynamic_scale

    def transformation(self) -> optax.GradientTransformation:
        inner = self.inner_optimizer.transformation()
        growth_steps = self.dynamic_growth_steps

        def init(params):
            return LossScaleState(jnp.asarray(self.initial_scale, jnp.float32), jnp.zeros((), jnp.int32),
                                  inner.init(params))

        def update(grads, state, params=None):
            """``grads``: the gradients of the scaled loss."""
            scale = state.dynamic_scale
            finite = _all_finite(grads)

            def apply(_):
                unscaled = jax.tree_util.tree_map(lambda g: g / scale.astype(g.dtype), grads)
                return inner.update(unscaled, state.inner, params)

            def skip(_):
                return jax.tree_util.tree_map(jnp.zeros_like, grads), state.inner

            updates, inner_state = lax.cond(finite, apply, skip, None)
            grow = finite & (state.step_counter == growth_steps - 1)
            new_scale = jnp.where(finite, jnp.where(grow, scale * 2.0, scale), scale * 0.5)
            counter = jnp.where(finite & ~grow, state.step_counter + 1, 0).astype(jnp.int32)
            return updates, LossScaleState(new_scale, counter, inner_state)

        return optax.GradientTransformation(init, update)

    def get_config(self) -> dict:
        return {"name": self.name, "inner_optimizer": serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale, "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        config = dict(config)
        inner = config.pop("inner_optimizer", None)
        if isinstance(inner, dict):
            inner = deserialize(inner, custom_objects)
        return cls(inner, **config)
