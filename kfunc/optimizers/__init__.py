"""``kfunc.optimizers``: Keras's optimizers and defaults, built as optax transformations, and
``schedules`` (learning rates as functions of the step)."""

from kfunc.optimizers import schedules  # noqa: F401
from kfunc.train.optimizers import (  # noqa: F401
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Nadam,
    Optimizer,
    RMSprop,
    get,
)
