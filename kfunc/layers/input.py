"""Input: where a model's data enters. ``Input(shape=(784,))`` is a ``(None, 784)`` float32 tensor."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.errors import LayerConfigError
from kfunc.graph.node import Node
from kfunc.graph.tensor import SymbolicTensor
from kfunc.layers.base import Layer


def _check_shape(shape, argument: str) -> tuple:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        raise LayerConfigError(
            f"Input {argument} must be a tuple of sizes, received the int {shape}; write "
            f"{argument}=({shape},) for a vector of {shape} features."
        )
    if not isinstance(shape, (tuple, list)):
        raise LayerConfigError(
            f"Input {argument} must be a tuple of sizes such as (784,) or (None, 256), received "
            f"{type(shape).__name__} {shape!r}."
        )
    for axis, size in enumerate(shape):
        valid = size is None or (isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0)
        if not valid:
            raise LayerConfigError(
                f"Input {argument}={tuple(shape)!r}: size {size!r} at axis {axis} is not a positive "
                "integer or None (unknown). Sizes count elements per example, e.g. shape=(28, 28, 1)."
            )
    return tuple(None if s is None else int(s) for s in shape)


def _check_dtype(dtype):
    if dtype is None:
        return jnp.dtype(jnp.float32)
    try:
        result = jnp.dtype(dtype)
    except TypeError:
        result = None
    if result is None or result.kind not in "biuf" and result != jnp.bool_:
        raise LayerConfigError(
            f"Input dtype {dtype!r} is not a numeric dtype; use e.g. 'float32', 'int32' or 'bool'."
        )
    return jax.dtypes.canonicalize_dtype(result)


class InputLayer(Layer):
    """The layer behind ``Input``: one node, no weights, outputs the symbolic input tensor."""

    is_input_layer = True

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, *, batch_shape=None, sparse=None,
                 optional=False, **kwargs):
        if sparse:
            raise LayerConfigError("Sparse inputs are not supported by kfunc; pass dense arrays.")
        if shape is None and batch_shape is None:
            raise LayerConfigError("Input needs a shape, e.g. Input(shape=(784,)) for vectors of 784 features.")
        if batch_shape is not None:
            batch_shape = _check_shape(batch_shape, "batch_shape")
            if not batch_shape:
                raise LayerConfigError("Input batch_shape needs at least the batch axis, e.g. (None, 784).")
        else:
            batch_shape = (batch_size,) + _check_shape(shape, "shape")
        if batch_shape[0] is not None and batch_shape[0] <= 0:
            raise LayerConfigError(f"Input batch_size must be a positive integer, received {batch_shape[0]}.")
        if name is None:
            from kfunc import naming

            name = naming.unique_name("input_layer")
        super().__init__(name=name, **kwargs)
        self.batch_shape = batch_shape
        self.input_dtype = _check_dtype(dtype)
        # An optional input may be given as None (at call, predict and fit); the layers it feeds
        # then receive None, as in Keras 3.
        self.optional = bool(optional)
        self.built = True
        tensor = SymbolicTensor(batch_shape, self.input_dtype, self.name, self, 0, 0)
        self._inbound_nodes.append(
            Node(layer=self, index=0, args=(tensor,), kwargs={}, inputs=(), outputs=(tensor,), output_structure=tensor)
        )

    def call(self, inputs):
        return inputs

    def get_config(self):
        config = {"name": self.name, "batch_shape": self.batch_shape, "dtype": self.input_dtype.name}
        if self.optional:
            config["optional"] = True
        return config


def Input(shape=None, batch_size=None, name=None, dtype=None, sparse=None, tensor=None, batch_shape=None,  # noqa: N802
          optional=False) -> SymbolicTensor:
    """A symbolic model input of shape ``(batch_size or None,) + shape``; ``optional=True``: the
    model may be given None for it (the layers it feeds receive None)."""
    if tensor is not None:
        raise LayerConfigError("Input(tensor=...) is not supported: pass shape= and dtype= instead.")
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape, sparse=sparse,
                       optional=optional)
    return layer.output
