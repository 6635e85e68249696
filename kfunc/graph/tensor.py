"""SymbolicTensor: the value of a layer call while a model is being described.

It has a shape (``None`` for the batch and any other unknown size), a dtype, a name, and
``(layer, node_index, output_index)``: which call of which layer produced it. It is immutable and
compares by identity (``a == b`` is ``a is b``), and it refuses to act like an array, because
nothing has been computed yet.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.errors import SymbolicTensorError

_HOW_TO = (
    "A symbolic tensor describes a model being built and holds no values: wrap the computation in a "
    "layer (e.g. kfunc.layers.Lambda(fn)), build a Model and call it (or its predict) on arrays."
)


class SymbolicTensor:
    """Shape ``(None, ...)``, dtype, name, and the node (layer call) that produced it."""

    __slots__ = ("shape", "dtype", "name", "layer", "node_index", "output_index")

    def __init__(self, shape, dtype, name: str, layer, node_index: int, output_index: int):
        setattr_ = object.__setattr__
        setattr_(self, "shape", tuple(shape))
        setattr_(self, "dtype", jnp.dtype(dtype))
        setattr_(self, "name", name)
        setattr_(self, "layer", layer)
        setattr_(self, "node_index", node_index)
        setattr_(self, "output_index", output_index)

    def __setattr__(self, name, value):
        raise AttributeError(f"SymbolicTensor '{self.name}' is immutable; '{name}' cannot be set.")

    @property
    def node(self):
        """The ``Node`` (layer call) that produced this tensor."""
        return self.layer._inbound_nodes[self.node_index]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self):
        return f"<SymbolicTensor name={self.name} shape={self.shape} dtype={self.dtype.name}>"

    # Identity semantics: `layer.output == encoded` holds exactly when they are the same tensor.
    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    __hash__ = object.__hash__

    def __bool__(self):
        raise SymbolicTensorError(
            f"The truth value of symbolic tensor '{self.name}' is unknown while the model is "
            f"being built. {_HOW_TO}"
        )

    def __array__(self, *args, **kwargs):
        raise SymbolicTensorError(
            f"Symbolic tensor '{self.name}' cannot be converted to a NumPy array. {_HOW_TO}"
        )

    def __jax_array__(self):
        raise SymbolicTensorError(
            f"Symbolic tensor '{self.name}' cannot be used in a jax.numpy function. {_HOW_TO}"
        )

    def __iter__(self):
        raise SymbolicTensorError(
            f"Symbolic tensor '{self.name}' cannot be iterated over. To split it, use a layer "
            f"(e.g. kfunc.layers.Lambda(lambda x: x[:, 0])). {_HOW_TO}"
        )

    def __len__(self):
        raise SymbolicTensorError(
            f"len() of symbolic tensor '{self.name}' is not defined; use its .shape instead."
        )


def is_symbolic(value) -> bool:
    return isinstance(value, SymbolicTensor)
