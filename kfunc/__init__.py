"""kfunc: the Keras functional API, compiled to pure JAX.

``import kfunc as keras`` runs the functional-API guide's code as written.
"""

from kfunc import (
    activations,
    backend,
    callbacks,
    config,
    constraints,
    export,
    initializers,
    layers,
    losses,
    metrics,
    mixed_precision,
    models,
    ops,
    optimizers,
    random,
    regularizers,
    utils,
)
from kfunc.layers import Input
from kfunc.layers.weights_api import Variables
from kfunc.losses import Loss
from kfunc.lower import Lowered, lower
from kfunc.metrics import Metric
from kfunc.models import Model, Sequential

from kfunc.version import __version__

__all__ = [
    "Input",
    "Loss",
    "Lowered",
    "Metric",
    "Model",
    "Sequential",
    "Variables",
    "activations",
    "backend",
    "callbacks",
    "config",
    "constraints",
    "export",
    "initializers",
    "layers",
    "losses",
    "lower",
    "metrics",
    "mixed_precision",
    "models",
    "ops",
    "optimizers",
    "random",
    "regularizers",
    "utils",
]
