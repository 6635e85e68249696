"""OpLayer: one call of a ``kfunc.ops`` op on symbolic tensors, as a node of the model graph.

``ops.concatenate([a, b], axis=-1)`` on symbolic tensors creates ``OpLayer("concatenate", ...)``
and calls it on ``[a, b]``: the layer holds the op's public name and the call's other arguments
(``axis=-1``) with a slot where each tensor went; the graph node's inputs are the tensors. So an op
node is an ordinary, weightless layer to every part of kfunc that walks graphs (shape inference,
lowering, summary, plotting, saving) and needs no branch of its own.

Ops live one floor below layers and cannot import this module: importing ``kfunc.layers``
installs ``record_op_call`` into ``kfunc.ops.operation`` (``install_symbolic_call``), which is how
an op on a symbolic tensor reaches this class.

Saved, the layer's config is ``{"op": "concatenate", "args": [[null, null]], "kwargs": {"axis": -1},
"inputs": [[0, 0, 0], [0, 0, 1]]}``: the static arguments with ``null`` in each tensor slot, and the
path of each slot (into ``[args, kwargs]``, list indices and dict keys). Loading resolves ``op``
through ``kfunc.ops.OPERATIONS`` only; any other name is refused.
"""

from __future__ import annotations

import jax

from kfunc import naming
from kfunc.errors import LayerConfigError
from kfunc.graph.tensor import is_symbolic
from kfunc.layers.base import Layer
from kfunc.ops.operation import OPERATIONS, install_symbolic_call


class _TensorSlot:
    """Marks where a tensor goes among an op's arguments (a pytree leaf)."""

    __slots__ = ()

    def __repr__(self):
        return "<tensor>"


_SLOT = _TensorSlot()


def _is_slot(value) -> bool:
    return value is _SLOT


def _key_of(entry):
    """A ``jax.tree_util`` path entry as a JSON value: a list index or a dict key."""
    if isinstance(entry, jax.tree_util.SequenceKey):
        return entry.idx
    if isinstance(entry, jax.tree_util.DictKey):
        return entry.key
    raise TypeError(f"An op argument holds a tensor inside a {type(entry).__name__}; use lists, tuples or dicts.")


def _place_slot(structure, path: list, where: str):
    """``structure`` (nested lists, tuples, dicts) with ``_SLOT`` at ``path``, where it holds None."""
    if not path:
        if structure is not None:
            raise LayerConfigError(f"{where}: a tensor slot points at {structure!r}, not at an empty place (null).")
        return _SLOT
    key, rest = path[0], path[1:]
    if isinstance(structure, dict) and isinstance(key, str) and key in structure:
        return {**structure, key: _place_slot(structure[key], rest, where)}
    if isinstance(structure, (list, tuple)) and type(key) is int and 0 <= key < len(structure):
        items = list(structure)
        items[key] = _place_slot(items[key], rest, where)
        return type(structure)(items)
    raise LayerConfigError(f"{where}: the tensor slot path {path!r} does not lead into the op's arguments.")


class OpLayer(Layer):
    """The weightless layer of one op call: ``op`` (a public name in ``kfunc.ops.OPERATIONS``),
    ``args``/``kwargs`` (the static arguments, None where a tensor goes) and ``inputs`` (the path
    of each tensor). Called on the list of tensors, in ``inputs`` order."""

    _autocast = False  # ops compute in the dtypes they are given, as Keras 3's ops

    def __init__(self, op, args=(), kwargs=None, inputs=(), *, name=None, **layer_kwargs):
        if not isinstance(op, str) or op not in OPERATIONS:
            raise LayerConfigError(
                f"OpLayer '{name}': {op!r} is not an op of kfunc.ops; an op node may name only kfunc's own ops "
                "(e.g. 'add', 'concatenate', 'image.resize')."
            )
        super().__init__(name=name if name is not None else naming.unique_name(op.replace(".", "_")), **layer_kwargs)
        self.operation_name = op
        self._function = OPERATIONS[op]
        where = f"OpLayer '{self.name}' ({op})"
        template = (tuple(args), dict(kwargs or {}))
        for path in inputs:
            if not isinstance(path, (list, tuple)) or not all(isinstance(k, (int, str)) for k in path):
                raise LayerConfigError(f"{where}: a tensor slot path must be a list of indices and keys, received {path!r}.")
            template = _place_slot(template, list(path), where)
        self._template = template

    @classmethod
    def from_call(cls, op: str, args: tuple, kwargs: dict):
        """``(layer, tensors)`` for ``op(*args, **kwargs)`` with symbolic tensors among the arguments."""
        structure = (tuple(args), dict(kwargs))
        with_paths, _ = jax.tree_util.tree_flatten_with_path(structure, is_leaf=is_symbolic)
        paths = [[_key_of(entry) for entry in path] for path, leaf in with_paths if is_symbolic(leaf)]
        tensors = [leaf for _, leaf in with_paths if is_symbolic(leaf)]
        static = jax.tree_util.tree_map(lambda leaf: None if is_symbolic(leaf) else leaf, structure, is_leaf=is_symbolic)
        return cls(op, static[0], static[1], paths), tensors

    def call(self, inputs):
        values = iter(inputs)
        args, kwargs = jax.tree_util.tree_map(
            lambda leaf: next(values) if leaf is _SLOT else leaf, self._template, is_leaf=_is_slot
        )
        return self._function(*args, **kwargs)

    # Ops take no masks and give none, silently, as Keras 3's operations.
    @property
    def supports_masking(self) -> bool:
        return True

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        with_paths, _ = jax.tree_util.tree_flatten_with_path(self._template, is_leaf=_is_slot)
        inputs = [[_key_of(entry) for entry in path] for path, leaf in with_paths if leaf is _SLOT]
        args, kwargs = jax.tree_util.tree_map(lambda leaf: None if leaf is _SLOT else leaf, self._template,
                                              is_leaf=_is_slot)
        return {**super().get_config(), "op": self.operation_name, "args": list(args), "kwargs": kwargs,
                "inputs": inputs}

    def __repr__(self):
        return f"<OpLayer name={self.name}, op={self.operation_name}>"


def record_op_call(op: str, args: tuple, kwargs: dict):
    """The outputs of ``op(*args, **kwargs)`` on symbolic tensors: a new op node in the graph."""
    layer, tensors = OpLayer.from_call(op, args, kwargs)
    return layer(tensors)


install_symbolic_call(record_op_call)
