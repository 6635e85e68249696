"""``kfunc.optimizers``: Keras's optimizers and defaults, built as optax transformations."""

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
