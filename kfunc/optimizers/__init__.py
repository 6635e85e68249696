"""``kfunc.optimizers``: Keras 3's optimizers and defaults, built as optax transformations,
``serialize`` / ``deserialize`` / ``get`` in Keras 3's config form, and ``schedules`` (learning
rates as functions of the step)."""

from kfunc.optimizers import schedules  # noqa: F401
from kfunc.train.optimizers import (  # noqa: F401
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Lamb,
    Lion,
    LossScaleOptimizer,
    Muon,
    Nadam,
    Optimizer,
    RMSprop,
    deserialize,
    get,
    serialize,
)
