"""kfunc: the Keras functional API, compiled to pure JAX.

``import kfunc as keras`` runs the functional-API guide's code as written.
"""

from kfunc import (
    activations,
    callbacks,
    export,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    utils,
)
from kfunc.layers import Input
from kfunc.layers.base import Variables
from kfunc.lower import Lowered, lower
from kfunc.models import Model, Sequential

__version__ = "0.1.0"

__all__ = [
    "Input",
    "Lowered",
    "Model",
    "Sequential",
    "Variables",
    "activations",
    "callbacks",
    "export",
    "initializers",
    "layers",
    "losses",
    "lower",
    "metrics",
    "models",
    "optimizers",
    "utils",
]
