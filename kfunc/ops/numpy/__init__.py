"""``kfunc.ops.numpy``: Keras 3's NumPy-style ops (``keras.ops.numpy``)."""

from kfunc.ops.numpy import create, elementwise, indexing, linear, manipulation, reduction
from kfunc.ops.numpy import data_dependent, statistics, vectorization, windows
from kfunc.ops.numpy.create import *
from kfunc.ops.numpy.elementwise import *
from kfunc.ops.numpy.indexing import *
from kfunc.ops.numpy.linear import *
from kfunc.ops.numpy.manipulation import *
from kfunc.ops.numpy.reduction import *
from kfunc.ops.numpy.data_dependent import *
from kfunc.ops.numpy.statistics import *
from kfunc.ops.numpy.windows import *
from kfunc.ops.numpy.vectorization import vectorize
from kfunc.ops.math import slogdet  # Keras 3 has it in keras.ops.numpy too

__all__ = create.__all__ + elementwise.__all__ + indexing.__all__ + linear.__all__ + manipulation.__all__ + reduction.__all__
__all__ += data_dependent.__all__ + statistics.__all__ + windows.__all__ + vectorization.__all__ + ["slogdet"]
