"""Optimizers: Keras's names, arguments and defaults, built as optax transformations.

``compile(optimizer=...)`` takes a string (``'rmsprop'``), an object from this module
(``Adam(learning_rate=1e-4, clipnorm=1.0)``) or any ``optax.GradientTransformation`` as is.
The learning rate is an ``optax.inject_hyperparams`` hyperparameter kept in the optimizer
state, so callbacks can change it between steps without recompiling; it may also be an optax
schedule (a function of the step count).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from kfunc.train.losses import TrainingConfigError


class Optimizer:
    """Base: subclasses give ``scale(self) -> optax transformation`` (direction, before the rate).

    Common Keras arguments: ``clipnorm`` (per weight), ``clipvalue``, ``global_clipnorm``,
    ``weight_decay`` (decoupled: ``w -= learning_rate * weight_decay * w``).
    """

    default_learning_rate = 0.001

    def __init__(self, learning_rate=None, *, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 weight_decay=None, name=None):
        self._trainer = None
        learning_rate = self.default_learning_rate if learning_rate is None else learning_rate
        if not callable(learning_rate) and not (isinstance(learning_rate, (int, float)) and learning_rate >= 0):
            raise TrainingConfigError(
                f"{type(self).__name__}: learning_rate must be a non-negative number or an optax schedule, "
                f"received {learning_rate!r}."
            )
        self._learning_rate = learning_rate
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.weight_decay = weight_decay
        self.name = name or type(self).__name__.lower()

    def _attach(self, trainer) -> None:
        """Once compiled, ``learning_rate`` reads and writes the live value in the optimizer state."""
        self._trainer = trainer

    def _live_hyperparams(self):
        trainer = self._trainer
        return None if trainer is None or trainer.opt_state is None else trainer.hyperparams()

    @property
    def learning_rate(self):
        """The current learning rate (after training started: the value in the optimizer state)."""
        live = self._live_hyperparams()
        return float(live["learning_rate"]) if live is not None else self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if callable(self._learning_rate):
            raise TrainingConfigError(
                f"{type(self).__name__}: the learning rate follows a schedule and cannot be set directly."
            )
        live = self._live_hyperparams()
        if live is None:
            self._learning_rate = float(value)
            return
        # A new optimizer state, never an edit of the old one: a failed fit's rollback snapshot
        # holds the old state, and with it the old learning rate.
        old = jnp.asarray(live["learning_rate"])
        trainer = self._trainer
        new = jnp.asarray(value, old.dtype)
        if old.committed:  # placed by a distribution: keep the placement, or the step recompiles
            new = jax.device_put(new, old.sharding)
        trainer.opt_state = optax.tree_utils.tree_set(trainer.opt_state, learning_rate=new)

    @property
    def iterations(self) -> int:
        return 0 if self._trainer is None else int(self._trainer.step)

    def scale(self) -> optax.GradientTransformation:
        raise NotImplementedError(f"{type(self).__name__} must define scale().")

    def transformation(self) -> optax.GradientTransformation:
        """Clipping, then the optimizer's direction, decay and learning rate, as one optax chain."""
        clipping = []
        if self.clipvalue is not None:
            clipping.append(optax.clip(self.clipvalue))
        if self.clipnorm is not None:
            clipping.append(_clip_each_by_norm(self.clipnorm))
        if self.global_clipnorm is not None:
            clipping.append(optax.clip_by_global_norm(self.global_clipnorm))

        def with_rate(learning_rate):
            steps = [self.scale()]
            if self.weight_decay:
                steps.append(optax.add_decayed_weights(self.weight_decay))
            steps.append(optax.scale_by_learning_rate(learning_rate))
            return optax.chain(*steps)

        return optax.chain(*clipping, optax.inject_hyperparams(with_rate)(learning_rate=self._learning_rate))

    def get_config(self) -> dict:
        config = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return config | {"learning_rate": self.learning_rate}


def _clip_each_by_norm(max_norm: float) -> optax.GradientTransformation:
    """Keras's ``clipnorm``: each gradient tensor clipped to ``max_norm`` separately."""

    def update(updates, state, params=None):
        def clip(g):
            norm = jnp.sqrt(jnp.sum(jnp.square(g)))
            return jnp.where(norm > max_norm, g * (max_norm / jnp.maximum(norm, 1e-12)), g)

        return jax.tree_util.tree_map(clip, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


class SGD(Optimizer):
    default_learning_rate = 0.01

    def __init__(self, learning_rate=None, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = momentum, nesterov

    def scale(self):
        return optax.trace(decay=self.momentum, nesterov=self.nesterov) if self.momentum else optax.identity()


class RMSprop(Optimizer):
    """``v = rho * v + (1 - rho) * g**2``; step ``g / sqrt(v + epsilon)`` (epsilon inside, as Keras)."""

    def __init__(self, learning_rate=None, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def scale(self):
        if self.centered:
            direction = optax.scale_by_stddev(decay=self.rho, eps=self.epsilon, eps_in_sqrt=True)
        else:
            direction = optax.scale_by_rms(decay=self.rho, eps=self.epsilon, eps_in_sqrt=True)
        if self.momentum:
            return optax.chain(direction, optax.trace(decay=self.momentum))
        return direction


class Adam(Optimizer):
    def __init__(self, learning_rate=None, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def scale(self):
        if self.amsgrad:
            return optax.scale_by_amsgrad(b1=self.beta_1, b2=self.beta_2, eps=self.epsilon)
        return optax.scale_by_adam(b1=self.beta_1, b2=self.beta_2, eps=self.epsilon)


class AdamW(Adam):
    def __init__(self, learning_rate=None, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


class Nadam(Adam):
    def scale(self):
        return optax.scale_by_adam(b1=self.beta_1, b2=self.beta_2, eps=self.epsilon, nesterov=True)


class Adamax(Optimizer):
    def __init__(self, learning_rate=None, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def scale(self):
        return optax.scale_by_adamax(b1=self.beta_1, b2=self.beta_2, eps=self.epsilon)


class Adagrad(Optimizer):
    def __init__(self, learning_rate=None, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def scale(self):
        return optax.scale_by_rss(initial_accumulator_value=self.initial_accumulator_value, eps=self.epsilon)


class Adadelta(Optimizer):
    def __init__(self, learning_rate=None, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def scale(self):
        return optax.scale_by_adadelta(rho=self.rho, eps=self.epsilon)


class Lion(Optimizer):
    def __init__(self, learning_rate=None, beta_1=0.9, beta_2=0.99, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = beta_1, beta_2

    def scale(self):
        return optax.scale_by_lion(b1=self.beta_1, b2=self.beta_2)


OPTIMIZERS: dict[str, Callable[[], Optimizer]] = {
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
    "nadam": Nadam,
    "adamax": Adamax,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "lion": Lion,
}


def get(identifier) -> Optimizer | optax.GradientTransformation:
    """A name, an ``Optimizer``, or an optax transformation (used as is)."""
    if isinstance(identifier, str):
        try:
            return OPTIMIZERS[identifier.lower()]()
        except KeyError:
            raise TrainingConfigError(
                f"Unknown optimizer '{identifier}'; expected one of {sorted(OPTIMIZERS)}, a "
                "kfunc.optimizers object or an optax.GradientTransformation."
            ) from None
    if isinstance(identifier, (Optimizer, optax.GradientTransformation)):
        return identifier
    raise TrainingConfigError(
        f"An optimizer must be a name, a kfunc.optimizers object or an optax.GradientTransformation, "
        f"received {type(identifier).__name__} {identifier!r}."
    )


def transformation_of(optimizer) -> optax.GradientTransformation:
    return optimizer.transformation() if isinstance(optimizer, Optimizer) else optimizer
