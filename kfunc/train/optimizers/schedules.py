"""``kfunc.optimizers.schedules``: Keras 3's learning-rate schedules.

A schedule is a function of the optimizer's step count (0 for the first update), written with
``jax.numpy`` so that it runs inside the compiled training step: pass one as ``learning_rate=`` to
any ``kfunc.optimizers`` optimizer and optax evaluates it at every step (no recompilation, no host
round trip). Each is described by its ``get_config()``, and ``serialize`` / ``deserialize`` write
and read Keras 3's ``{"class_name": ..., "config": {...}}`` form.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from kfunc.errors import ArgumentError


class LearningRateSchedule:
    """Base class: subclasses define ``__call__(self, step)`` (a float32 scalar from an int step,
    with ``jax.numpy`` operations) and ``get_config()``."""

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override __call__(self, step).")

    def get_config(self) -> dict:
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override get_config().")

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        try:
            arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            arguments = ""
        return f"{type(self).__name__}({arguments})"


def _positive(value, argument: str, schedule: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ArgumentError(f"{schedule}: {argument} must be a positive number, received {value!r}.")
    return value


def _as_float(step):
    return jnp.asarray(step, jnp.float32)


class _StepDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: ``initial_learning_rate`` decayed by
    ``decay_rate`` over ``progress = step / decay_steps`` (floored with ``staircase=True``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = _positive(decay_steps, "decay_steps", type(self).__name__)
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = type(self).__name__ if name is None else name

    def progress(self, step):
        progress = _as_float(step) / self.decay_steps
        return jnp.floor(progress) if self.staircase else progress

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (the exponent floored with
    ``staircase=True``)."""

    def __call__(self, step):
        return jnp.float32(self.initial_learning_rate) * jnp.power(jnp.float32(self.decay_rate), self.progress(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` up to and including step ``boundaries[0]``, ``values[i]`` for steps in
    ``(boundaries[i-1], boundaries[i]]``, ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ArgumentError(
                f"PiecewiseConstantDecay: values must have one entry more than boundaries, received "
                f"{len(boundaries)} boundaries and {len(values)} values."
            )
        if list(boundaries) != sorted(boundaries):
            raise ArgumentError(f"PiecewiseConstantDecay: boundaries must increase, received {list(boundaries)}.")
        self.boundaries = list(boundaries)
        self.values = list(values)
        self.name = name

    def __call__(self, step):
        piece = jnp.searchsorted(jnp.asarray(self.boundaries), jnp.asarray(step), side="left")
        return jnp.asarray(self.values, jnp.float32)[piece]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` over ``decay_steps`` along
    ``(1 - step / decay_steps) ** power``; then constant, or with ``cycle=True`` starting again
    over a ``decay_steps`` stretched to the next multiple of it."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                 name="PolynomialDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = _positive(decay_steps, "decay_steps", "PolynomialDecay")
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name

    def __call__(self, step):
        step = _as_float(step)
        span = jnp.float32(self.decay_steps)
        if self.cycle:
            periods = jnp.ceil(step / span)
            # XLA may divide by multiplying with the reciprocal (90 / 30 -> 3.0000002): undo that.
            periods = jnp.where(periods * span - step >= span, periods - 1.0, periods)
            span = span * jnp.maximum(periods, 1.0)
        else:
            step = jnp.minimum(step, span)
        start, end = jnp.float32(self.initial_learning_rate), jnp.float32(self.end_learning_rate)
        return (start - end) * jnp.power(1.0 - step / span, jnp.float32(self.power)) + end

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (the ratio floored with
    ``staircase=True``)."""

    def __call__(self, step):
        return jnp.float32(self.initial_learning_rate) / (1.0 + jnp.float32(self.decay_rate) * self.progress(step))


def _cosine(fraction, alpha: float):
    """``1`` at fraction 0 down to ``alpha`` at fraction 1, along half a cosine."""
    return (1.0 - alpha) * 0.5 * (1.0 + jnp.cos(jnp.float32(math.pi) * fraction)) + alpha


class CosineDecay(LearningRateSchedule):
    """With ``warmup_target``: linear from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps``, then half a cosine from there down to ``alpha`` times it over
    ``decay_steps``. Without: the cosine from ``initial_learning_rate``. Constant afterwards."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = _positive(decay_steps, "decay_steps", "CosineDecay")
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps
        if warmup_target is not None and not (isinstance(warmup_steps, int) and warmup_steps > 0):
            raise ArgumentError(
                f"CosineDecay: warmup_target={warmup_target!r} needs warmup_steps, a positive int, received "
                f"{warmup_steps!r}."
            )

    def __call__(self, step):
        step = _as_float(step)
        start = jnp.float32(self.initial_learning_rate)
        if self.warmup_target is None:
            return start * _cosine(jnp.minimum(step, self.decay_steps) / self.decay_steps, self.alpha)
        target = jnp.float32(self.warmup_target)
        step = jnp.minimum(step, self.decay_steps + self.warmup_steps)
        warming = start + (target - start) * step / self.warmup_steps
        decaying = target * _cosine((step - self.warmup_steps) / self.decay_steps, self.alpha)
        return jnp.where(step < self.warmup_steps, warming, decaying)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): a cosine from ``initial_learning_rate`` to
    ``alpha`` times it over ``first_decay_steps``, restarted with periods ``t_mul`` times longer
    and peaks ``m_mul`` times lower each time."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, name="SGDRDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = _positive(first_decay_steps, "first_decay_steps", "CosineDecayRestarts")
        self._t_mul = _positive(t_mul, "t_mul", "CosineDecayRestarts")
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def __call__(self, step):
        elapsed = _as_float(step) / self.first_decay_steps  # in units of the first period
        if self._t_mul == 1.0:
            restarts = jnp.floor(elapsed)
            fraction = elapsed - restarts
        else:
            # Periods 1, t, t**2 ...: restart i starts at (1 - t**i) / (1 - t) first periods.
            t = jnp.float32(self._t_mul)
            restarts = jnp.floor(jnp.log(1.0 - elapsed * (1.0 - t)) / jnp.log(t))
            started = (1.0 - jnp.power(t, restarts)) / (1.0 - t)
            fraction = (elapsed - started) / jnp.power(t, restarts)
        peak = jnp.power(jnp.float32(self._m_mul), restarts)
        cosine = 0.5 * peak * (1.0 + jnp.cos(jnp.float32(math.pi) * fraction))
        return jnp.float32(self.initial_learning_rate) * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self._t_mul, "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


BUILTIN_SCHEDULES: dict[str, type] = {
    cls.__name__: cls
    for cls in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay, CosineDecay,
                CosineDecayRestarts)
}


def serialize(learning_rate_schedule) -> dict:
    """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` of a schedule."""
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise ArgumentError(
            f"schedules.serialize expects a LearningRateSchedule, received {type(learning_rate_schedule).__name__}."
        )
    cls = type(learning_rate_schedule)
    builtin = BUILTIN_SCHEDULES.get(cls.__name__) is cls
    return {"module": "keras.optimizers.schedules" if builtin else cls.__module__,
            "class_name": cls.__name__, "config": learning_rate_schedule.get_config(),
            "registered_name": None}


def deserialize(config, custom_objects=None) -> LearningRateSchedule:
    """The schedule a ``serialize`` dict describes; its class is found in ``custom_objects`` or the
    built-in schedules (nothing is imported by name)."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or not isinstance(
            config.get("config"), dict):
        raise ArgumentError(
            f"schedules.deserialize expects {{'class_name': ..., 'config': {{...}}}}, received {config!r:.80}."
        )
    name = config["class_name"]
    found = (custom_objects or {}).get(config.get("registered_name") or name) or BUILTIN_SCHEDULES.get(name)
    if not (isinstance(found, type) and issubclass(found, LearningRateSchedule)):
        raise ArgumentError(
            f"schedules.deserialize: '{name}' names no schedule; expected one of {sorted(BUILTIN_SCHEDULES)} or a "
            "LearningRateSchedule subclass passed in custom_objects."
        )
    return found.from_config(config["config"])


__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "deserialize",
    "serialize",
]
