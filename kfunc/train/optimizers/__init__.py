"""Optimizers: Keras 3's names, arguments and defaults, built as optax transformations."""

from kfunc.train.optimizers.adafactor import Adafactor  # noqa: F401
from kfunc.train.optimizers.base import Optimizer  # noqa: F401
from kfunc.train.optimizers.ftrl import Ftrl  # noqa: F401
from kfunc.train.optimizers.lamb import Lamb  # noqa: F401
from kfunc.train.optimizers.lookup import OPTIMIZERS, get, transformation_of, with_loss_scaling  # noqa: F401
from kfunc.train.optimizers.loss_scale import LossScaleOptimizer, loss_scale_state  # noqa: F401
from kfunc.train.optimizers.muon import Muon  # noqa: F401
from kfunc.train.optimizers.serialization import deserialize, serialize  # noqa: F401
from kfunc.train.optimizers.standard import (  # noqa: F401
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Nadam,
    RMSprop,
)
