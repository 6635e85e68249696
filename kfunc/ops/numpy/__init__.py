"""``kfunc.ops.numpy``: Keras 3's NumPy-style ops (``keras.ops.numpy``)."""

from kfunc.ops.numpy import create, elementwise, indexing, linear, manipulation, reduction
from kfunc.ops.numpy.create import *
from kfunc.ops.numpy.elementwise import *
from kfunc.ops.numpy.indexing import *
from kfunc.ops.numpy.linear import *
from kfunc.ops.numpy.manipulation import *
from kfunc.ops.numpy.reduction import *

__all__ = create.__all__ + elementwise.__all__ + indexing.__all__ + linear.__all__ + manipulation.__all__ + reduction.__all__
