"""``kfunc.random``: Keras 3's random functions and ``SeedGenerator`` (see ``seed_generator`` for
how draws stay pure inside compiled training)."""

from kfunc.random.draws import (
    beta,
    binomial,
    categorical,
    dropout,
    gamma,
    normal,
    randint,
    shuffle,
    truncated_normal,
    uniform,
)
from kfunc.random.seed_generator import SeedGenerator

__all__ = [
    "SeedGenerator",
    "beta",
    "binomial",
    "categorical",
    "dropout",
    "gamma",
    "normal",
    "randint",
    "shuffle",
    "truncated_normal",
    "uniform",
]
