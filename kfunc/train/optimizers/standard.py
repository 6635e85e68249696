"""Keras 3's optimizers whose rule is an optax direction scaled by the learning rate: SGD,
RMSprop, Adam, AdamW, Nadam, Adamax, Adagrad, Adadelta, Lion (Keras's names, arguments and defaults)."""

from __future__ import annotations

import optax

from kfunc.train.optimizers.base import Optimizer
from kfunc.train.optimizers.keras_adam import scale_by_keras_adam, scale_by_keras_nadam


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
        return scale_by_keras_adam(self.beta_1, self.beta_2, self.epsilon, amsgrad=self.amsgrad)


class AdamW(Adam):
    def __init__(self, learning_rate=None, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


class Nadam(Optimizer):
    def __init__(self, learning_rate=None, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def scale(self):
        return scale_by_keras_nadam(self.beta_1, self.beta_2, self.epsilon)


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
