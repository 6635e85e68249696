"""What makes a function a kfunc op: one array function, three kinds of arguments.

Every public op (``kfunc.ops.add``, ``kfunc.ops.nn.relu`` ...) is an *array function* wrapped by
``@operation("name")``. The wrapper looks at the call's arguments once:

- arrays, Python numbers and lists: the array function runs on them (JAX arrays out);
- kfunc ``Variable``: replaced by ``Variable.value``, the bound value inside a pure call (a tracer
  under ``jax.jit``) and the owned value outside one;
- a ``SymbolicTensor`` anywhere among the arguments: nothing is computed; the call is recorded as
  a graph node whose layer is an op layer (``kfunc.layers.op_layer.OpLayer``) naming the op by its
  public name, with every other argument kept as static configuration.

Ops sit one floor below layers, so they cannot import the op layer: ``kfunc.layers.op_layer``
installs the function that records a symbolic call with ``install_symbolic_call`` when
``kfunc.layers`` is imported (always, by ``import kfunc``). ``OPERATIONS`` is the table a model
file's op names resolve through; nothing else is ever looked up by a name read from a file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import numpy as np

from kfunc.errors import SymbolicTensorError
from kfunc.graph.tensor import is_symbolic
from kfunc.core.variable import Variable

# public name -> array function (arguments are values: arrays, numbers, static options)
OPERATIONS: dict[str, Callable] = {}

_symbolic_call: Callable | None = None


def install_symbolic_call(record: Callable) -> None:
    """Set ``record(name, array_function, args, kwargs) -> outputs``, which adds an op node to the
    graph for a call on symbolic tensors (installed by ``kfunc.layers.op_layer``)."""
    global _symbolic_call
    _symbolic_call = record


def _is_leaf(value) -> bool:
    return is_symbolic(value) or isinstance(value, Variable)


def operation(name: str, *, symbolic: Callable | None = None):
    """Register ``array_function`` under the public ``name`` and return the op users call.

    ``symbolic(*args, **kwargs)``: what the op returns on symbolic tensors when it is answered
    from shapes alone without a node (``ops.shape`` gives the static shape, as Keras 3).
    """

    def decorate(array_function: Callable) -> Callable:
        if name in OPERATIONS:
            raise ValueError(f"The op name '{name}' is registered twice.")
        OPERATIONS[name] = array_function

        @functools.wraps(array_function)
        def op(*args, **kwargs):
            leaves = jax.tree_util.tree_leaves((args, kwargs), is_leaf=_is_leaf)
            if any(is_symbolic(leaf) for leaf in leaves):
                if symbolic is not None:
                    return symbolic(*args, **kwargs)
                return record_symbolic(name, args, kwargs, leaves)
            if any(isinstance(leaf, Variable) for leaf in leaves):
                args, kwargs = jax.tree_util.tree_map(
                    lambda leaf: leaf.value if isinstance(leaf, Variable) else leaf, (args, kwargs), is_leaf=_is_leaf
                )
            return array_function(*args, **kwargs)

        op.operation_name = name
        return op

    return decorate


def record_symbolic(name: str, args: tuple, kwargs: dict, leaves: list):
    """The op node's outputs for a call with symbolic tensors among its arguments."""
    variable = next((leaf for leaf in leaves if isinstance(leaf, Variable)), None)
    if variable is not None:
        raise SymbolicTensorError(
            f"kfunc.ops.{name} received weight '{variable.path}' together with symbolic tensors; a model "
            "graph holds no free weights: use the weight inside a layer's call (a custom Layer with "
            "add_weight), or pass its value as an array if it is a constant."
        )
    if _symbolic_call is None:  # only when kfunc.ops is imported without kfunc.layers
        raise SymbolicTensorError(
            f"kfunc.ops.{name} was called on a symbolic tensor before kfunc.layers was imported; "
            "`import kfunc` first."
        )
    args, kwargs = jax.tree_util.tree_map(static_value, (args, kwargs), is_leaf=is_symbolic)
    return _symbolic_call(name, args, kwargs)


def static_value(value):
    """A dtype argument as its name (``jnp.float32`` -> ``"float32"``), so configs stay JSON."""
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    return value


def refuse_symbolic(name: str, why: str, fix: str) -> Callable:
    """A ``symbolic=`` answer for ops that cannot be a graph node: it raises, naming the op, why
    (e.g. its output shape depends on the values) and the fix."""

    def refuse(*args, **kwargs):
        raise SymbolicTensorError(f"kfunc.ops.{name} cannot be applied to a symbolic tensor: {why}; {fix}.")

    return refuse


def values_only(name: str, function: Callable) -> Callable:
    """``function`` (made by an op such as ``vectorize`` or ``custom_gradient``) as a callable that
    reads Variables as their value and refuses symbolic tensors (it has no public op name a model
    file could record)."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        leaves = jax.tree_util.tree_leaves((args, kwargs), is_leaf=_is_leaf)
        if any(is_symbolic(leaf) for leaf in leaves):
            raise SymbolicTensorError(
                f"The function made by kfunc.ops.{name} works on arrays, not on symbolic tensors: call it inside a "
                "custom Layer's call(), or wrap it in a kfunc.layers.Lambda layer."
            )
        args, kwargs = jax.tree_util.tree_map(
            lambda leaf: leaf.value if isinstance(leaf, Variable) else leaf, (args, kwargs), is_leaf=_is_leaf
        )
        return function(*args, **kwargs)

    return call
