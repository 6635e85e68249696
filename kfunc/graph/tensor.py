"""SymbolicTensor: the value of a layer call while a model is being described.

It has a shape (``None`` for the batch and any other unknown size), a dtype, a name, and
``(layer, node_index, output_index)``: which call of which layer produced it. It is immutable and
hashes by identity. Like Keras 3's KerasTensor, Python operators and indexing on it (``x + 1``,
``a @ b``, ``x[:, 0]``, ``-x``, ``a < b``, ``a & b``) record op nodes in the graph through
``kfunc.ops`` (which installs its ops here with ``install_operators``: the graph floor does not
import ops). ``a == b`` records an ``equal`` node too; its truth value is known only when ``a`` and
``b`` are the same tensor (``layer.output == encoded`` is True), and refused otherwise. It refuses
to act like an array (``__array__``, ``__jax_array__``, ``__iter__``, ``__len__``, ``bool``),
because nothing has been computed yet.

A tensor also knows the mask it will carry when the model runs (``mask_spec``: shape and dtype of
the ``(batch, timesteps)`` booleans, or None), so a layer called on it sees that mask while the
graph is built, as at run time. ``KerasTensor(shape, dtype)`` makes a spec-only tensor (no layer
produced it), what a layer's ``compute_output_spec`` returns, as in Keras 3.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from kfunc.errors import SymbolicTensorError

_HOW_TO = (
    "A symbolic tensor describes a model being built and holds no values: compute on it with kfunc.ops "
    "functions and Python operators (they add nodes to the graph) or in a layer (e.g. "
    "kfunc.layers.Lambda(fn)), build a Model and call it (or its predict) on arrays."
)


class SymbolicTensor:
    """Shape ``(None, ...)``, dtype, name, and the node (layer call) that produced it."""

    __slots__ = ("dtype", "layer", "mask_spec", "name", "node_index", "output_index", "shape")

    def __init__(self, shape, dtype, name: str, layer, node_index: int, output_index: int, *, mask_spec=None):
        """``mask_spec``: ``(shape, dtype)`` (an object with both) of the mask the tensor carries at
        run time, e.g. ``(None, None)`` booleans after ``Embedding(mask_zero=True)``; None if none."""
        setattr_ = object.__setattr__
        setattr_(self, "mask_spec", None if mask_spec is None else _MaskSpec(mask_spec.shape, mask_spec.dtype))
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

    @property
    def sparse(self) -> bool:
        return False

    @property
    def ragged(self) -> bool:
        return False

    @property
    def _keras_mask(self):
        """Keras 3's attribute: the mask this tensor carries, as a spec-only ``KerasTensor`` of its
        shape and dtype (it describes the mask; a layer cannot take it as an input), or None."""
        spec = self.mask_spec
        return None if spec is None else KerasTensor(spec.shape, spec.dtype, name=f"{self.name}_mask")

    def __repr__(self):
        return f"<SymbolicTensor name={self.name} shape={self.shape} dtype={self.dtype.name}>"

    def __bool__(self):
        known = _known_truth(self)
        if known is not None:
            return known
        raise SymbolicTensorError(
            f"The truth value of symbolic tensor '{self.name}' is unknown while the model is "
            f"being built (only `t == t` and `t != t` of one tensor are known). For a choice that "
            f"depends on values use kfunc.ops.where or kfunc.ops.cond; to test whether two tensors are "
            f"the same object, use `is`. {_HOW_TO}"
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
            f"Symbolic tensor '{self.name}' cannot be iterated over. To split it, index it "
            f"(x[:, 0]) or use kfunc.ops.unstack(x, axis=...) / kfunc.ops.split. {_HOW_TO}"
        )

    def __len__(self):
        raise SymbolicTensorError(
            f"len() of symbolic tensor '{self.name}' is not defined; use its .shape instead."
        )


    def __int__(self):
        raise SymbolicTensorError(
            f"Symbolic tensor '{self.name}' has no value to convert to an int; use its static .shape, or "
            f"kfunc.ops.cast(x, 'int32') to get a tensor. {_HOW_TO}"
        )

    def __float__(self):
        raise SymbolicTensorError(
            f"Symbolic tensor '{self.name}' has no value to convert to a float; use kfunc.ops.cast(x, "
            f"'float32') to get a tensor. {_HOW_TO}"
        )

    __index__ = __int__

    # NumPy scalars and arrays on the left (np.float32(2) * x) defer to the reflected operator.
    __array_ufunc__ = None

    # ------------------------------------------------------------------ operators (Keras 3's set)
    def __add__(self, other):
        return _binary("add", self, other)

    def __radd__(self, other):
        return _binary("add", other, self)

    def __sub__(self, other):
        return _binary("subtract", self, other)

    def __rsub__(self, other):
        return _binary("subtract", other, self)

    def __mul__(self, other):
        return _binary("multiply", self, other)

    def __rmul__(self, other):
        return _binary("multiply", other, self)

    def __truediv__(self, other):
        return _binary("divide", self, other)

    def __rtruediv__(self, other):
        return _binary("divide", other, self)

    def __floordiv__(self, other):
        return _binary("floor_divide", self, other)

    def __rfloordiv__(self, other):
        return _binary("floor_divide", other, self)

    def __mod__(self, other):
        return _binary("mod", self, other)

    def __rmod__(self, other):
        return _binary("mod", other, self)

    def __pow__(self, other):
        return _binary("power", self, other)

    def __rpow__(self, other):
        return _binary("power", other, self)

    def __matmul__(self, other):
        return _binary("matmul", self, other)

    def __rmatmul__(self, other):
        return _binary("matmul", other, self)

    def __eq__(self, other):
        return _binary("equal", self, other)

    def __ne__(self, other):
        return _binary("not_equal", self, other)

    # Defining __eq__ would drop hashing: keep identity hashing, so tensors key dicts and sets.
    __hash__ = object.__hash__

    def __lt__(self, other):
        return _binary("less", self, other)

    def __le__(self, other):
        return _binary("less_equal", self, other)

    def __gt__(self, other):
        return _binary("greater", self, other)

    def __ge__(self, other):
        return _binary("greater_equal", self, other)

    # As Keras 3's KerasTensor: & | ^ ~ are the logical ops (booleans in, booleans out).
    def __and__(self, other):
        return _binary("logical_and", self, other)

    def __rand__(self, other):
        return _binary("logical_and", other, self)

    def __or__(self, other):
        return _binary("logical_or", self, other)

    def __ror__(self, other):
        return _binary("logical_or", other, self)

    def __xor__(self, other):
        return _binary("logical_xor", self, other)

    def __rxor__(self, other):
        return _binary("logical_xor", other, self)

    def __invert__(self):
        return _operator("logical_not")(self)

    def __neg__(self):
        return _operator("negative")(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _operator("absolute")(self)

    def __round__(self, ndigits=None):
        return _operator("round")(self, ndigits or 0)

    def __getitem__(self, key):
        return _operator("get_item")(self, key)

    def reshape(self, newshape):
        """``kfunc.ops.reshape(self, newshape)``."""
        return _operator("reshape")(self, newshape)

    def squeeze(self, axis=None):
        """``kfunc.ops.squeeze(self, axis)``."""
        return _operator("squeeze")(self, axis)


class _KerasTensorType(type):
    """Every symbolic tensor is a ``KerasTensor`` (``isinstance(layer_output, KerasTensor)``), as
    Keras 3 code checks, while ``KerasTensor(...)`` itself makes a spec-only tensor."""

    def __instancecheck__(cls, value):
        return isinstance(value, SymbolicTensor)


class KerasTensor(SymbolicTensor, metaclass=_KerasTensorType):
    """``KerasTensor(shape, dtype="float32", sparse=False, ragged=False, name=None)``: a spec-only
    symbolic tensor (shape with ``None`` for unknown sizes, dtype), as Keras 3 code builds in
    ``compute_output_spec``; no layer produced it, so it is no input of a layer or model (use
    ``kfunc.Input(...)`` for those). Immutable like every symbolic tensor."""

    __slots__ = ()

    def __init__(self, shape, dtype="float32", sparse=False, ragged=False, record_history=True, name=None):
        del record_history  # Keras 3's flag for its own graph bookkeeping; a spec records nothing
        if sparse or ragged:
            raise SymbolicTensorError(
                f"KerasTensor(shape={tuple(shape)!r}) was asked to be {'sparse' if sparse else 'ragged'}, but kfunc "
                "tensors are dense arrays; leave sparse=False and ragged=False (use a dense tensor, with a mask "
                "for padded steps)."
            )
        if not all(d is None or isinstance(d, (int, np.integer)) for d in tuple(shape)):
            raise SymbolicTensorError(
                f"KerasTensor expects a shape of ints and None (for unknown sizes), such as (None, 3), but received "
                f"{shape!r}."
            )
        super().__init__(tuple(None if d is None else int(d) for d in shape), dtype,
                         name if name is not None else "keras_tensor", None, 0, 0)


def is_spec_only(value) -> bool:
    """Whether ``value`` is a symbolic tensor no layer produced (``KerasTensor(shape, dtype)``)."""
    return isinstance(value, SymbolicTensor) and value.layer is None


class _MaskSpec:
    """``(shape, dtype)`` of a mask, ``None`` for unknown sizes; frozen."""

    __slots__ = ("dtype", "shape")

    def __init__(self, shape, dtype):
        object.__setattr__(self, "shape", tuple(None if d is None else int(d) for d in shape))
        object.__setattr__(self, "dtype", jnp.dtype(dtype))

    def __setattr__(self, name, value):
        raise AttributeError(f"A mask spec is immutable; '{name}' cannot be set.")

    def __repr__(self):
        return f"MaskSpec(shape={self.shape}, dtype={self.dtype.name})"


_OPERATORS: dict = {}


def install_operators(table: dict) -> None:
    """Set the ops Python operators record (name -> op); called by ``kfunc.ops`` at import."""
    _OPERATORS.update(table)


def _operator(name: str):
    op = _OPERATORS.get(name)
    if op is None:  # only when kfunc.graph is used without importing kfunc
        raise SymbolicTensorError("Operators on symbolic tensors need kfunc.ops; `import kfunc` first.")
    return op


def _is_operand(value) -> bool:
    """What an operator combines with a symbolic tensor: tensors, arrays, Variables, numbers."""
    if isinstance(value, (SymbolicTensor, bool, int, float, complex, np.generic)):
        return True
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _binary(name: str, first, second):
    """The op ``name(first, second)``, or NotImplemented for an operand that is no tensor or number
    (so ``x == None`` is False and ``x + "a"`` a TypeError, as for other Python objects)."""
    other = second if isinstance(first, SymbolicTensor) else first
    if not _is_operand(other):
        return NotImplemented
    return _operator(name)(first, second)


def _known_truth(tensor: SymbolicTensor):
    """True for ``t == t``, False for ``t != t`` (one tensor compared with itself); else None."""
    op_name = getattr(tensor.layer, "operation_name", None)
    if op_name not in ("equal", "not_equal"):
        return None
    inputs = tensor.node.inputs
    if len(inputs) == 2 and inputs[0] is inputs[1]:
        return op_name == "equal"
    return None


def is_symbolic(value) -> bool:
    return isinstance(value, SymbolicTensor)
