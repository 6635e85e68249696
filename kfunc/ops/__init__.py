"""``kfunc.ops``: Keras 3's ``keras.ops``, on arrays, Variables and symbolic tensors.

Every op computes on JAX arrays (and Python numbers or lists), reads a ``Variable`` as its value,
and on symbolic tensors (``kfunc.Input`` and layer outputs) records an op node in the model graph,
so ``ops.concatenate([ops.relu(x), ops.mean(x, axis=-1, keepdims=True)], axis=-1)`` is part of a
``Model`` that trains, predicts and saves. Namespaces as Keras 3: ``kfunc.ops.nn``,
``kfunc.ops.numpy``, ``kfunc.ops.linalg``, ``kfunc.ops.image``; everything but the image ops is
also here at the top.
"""

from kfunc.graph.tensor import install_operators
from kfunc.ops import core, einops, image, linalg, math, nn, numpy, signal
from kfunc.ops.core import *
from kfunc.ops.linalg import *
from kfunc.ops.math import *
from kfunc.ops.nn import *
from kfunc.ops.numpy import *
from kfunc.ops.signal import *
from kfunc.ops.einops import *
from kfunc.ops.operation import OPERATIONS

__all__ = ["OPERATIONS", "image", "linalg", "nn", "numpy"] + core.__all__ + linalg.__all__ + math.__all__ + nn.__all__
__all__ += numpy.__all__ + signal.__all__ + einops.__all__

# Python operators on symbolic tensors (x + y, x[:, 0], -x ...) record these ops.
install_operators({name: globals()[name] for name in (
    "add", "subtract", "multiply", "divide", "floor_divide", "mod", "power", "matmul", "negative", "absolute",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or",
    "logical_xor", "logical_not", "get_item", "reshape", "squeeze", "round",
)})
