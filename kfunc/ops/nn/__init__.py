"""``kfunc.ops.nn``: Keras 3's ``keras.ops.nn`` (activations, class encodings, crossentropies,
normalization, convolution and pooling)."""

from kfunc.ops.nn import activations, adaptive_pooling, classification, convolution, normalization
from kfunc.ops.nn.activations import *
from kfunc.ops.nn.adaptive_pooling import *
from kfunc.ops.nn.classification import *
from kfunc.ops.nn.convolution import *
from kfunc.ops.nn.normalization import *

__all__ = activations.__all__ + adaptive_pooling.__all__ + classification.__all__ + convolution.__all__ + normalization.__all__
