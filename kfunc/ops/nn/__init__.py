"""``kfunc.ops.nn``: Keras 3's ``keras.ops.nn`` (activations, class encodings, crossentropies,
normalization, convolution and pooling, attention, CTC, space/depth rearrangement)."""

from kfunc.ops.nn import activations, adaptive_pooling, classification, convolution, normalization
from kfunc.ops.nn import attention, ctc, image_quality, space_rearrangement
from kfunc.ops.nn.activations import *
from kfunc.ops.nn.adaptive_pooling import *
from kfunc.ops.nn.classification import *
from kfunc.ops.nn.convolution import *
from kfunc.ops.nn.normalization import *
from kfunc.ops.nn.attention import *
from kfunc.ops.nn.ctc import *
from kfunc.ops.nn.image_quality import *
from kfunc.ops.nn.space_rearrangement import *

__all__ = activations.__all__ + adaptive_pooling.__all__ + classification.__all__ + convolution.__all__ + normalization.__all__
__all__ += attention.__all__ + ctc.__all__ + image_quality.__all__ + space_rearrangement.__all__
