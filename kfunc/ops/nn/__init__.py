"""``kfunc.ops.nn``: Keras 3's ``keras.ops.nn`` (activations, class encodings, crossentropies,
normalization, convolution and pooling)."""

from kfunc.ops.nn import activations, classification, convolution, normalization
from kfunc.ops.nn.activations import *  # noqa: F403
from kfunc.ops.nn.classification import *  # noqa: F403
from kfunc.ops.nn.convolution import *  # noqa: F403
from kfunc.ops.nn.normalization import *  # noqa: F403

__all__ = [*activations.__all__, *classification.__all__, *convolution.__all__, *normalization.__all__]
