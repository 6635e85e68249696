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
from kfunc.core.variable import Variable
from kfunc.graph.tensor import KerasTensor
from kfunc.initializers import Initializer
from kfunc.layers import Input, InputSpec, Layer
from kfunc.layers.weights_api import Variables
from kfunc.losses import Loss
from kfunc.mixed_precision import DTypePolicy
from kfunc.optimizers import Optimizer
from kfunc.regularizers import Regularizer
from kfunc.lower import Lowered, lower
from kfunc.metrics import Metric
from kfunc.models import Model, Sequential

from kfunc.version import __version__

# Keras 3 keeps FloatDTypePolicy as the name of its float policies; kfunc has one policy class.
FloatDTypePolicy = DTypePolicy

__all__ = [
    "DTypePolicy",
    "FloatDTypePolicy",
    "Initializer",
    "Input",
    "InputSpec",
    "KerasTensor",
    "Layer",
    "Loss",
    "Optimizer",
    "Regularizer",
    "Variable",
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
