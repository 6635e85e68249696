"""Weights by structure: every weight of a model under a path that depends only on the model's
architecture (layer order, layer classes, each layer's weight order), never on layer names, so
a model built again in the same process (``dense_3`` where the saved one had ``dense_1``) reads
the file written by the first.

The paths are those of Keras 3's ``.weights.h5`` files, so kfunc reads Keras's files and writes
files laid out as Keras's:

- a functional or Sequential model lists its layers (``model.layers`` order) under ``layers/``,
  each named after its class in snake case, with ``_1``, ``_2`` ... for repeats of one class
  within the same list: ``layers/dense``, ``layers/dense_1``, ``layers/lstm``; a nested model is
  ``layers/functional`` (or ``layers/sequential``) with its own ``layers/`` below;
- a layer's own weights (trainable, then non-trainable, in declaration order: Keras's
  ``get_weights()`` order) are ``vars/0``, ``vars/1`` ...: ``layers/dense/vars/0`` is the kernel;
- a layer held by another layer is under the attribute holding it (``forward_layer/``,
  ``query_dense/``), attributes in sorted order; a list of layers under an attribute is named as
  a model's ``layers/`` list is;
- a recurrent layer (``SimpleRNN``, ``GRU``, ``LSTM``) keeps its weights where Keras's RNN cell
  keeps them: ``layers/lstm/cell/vars/0..2``;
- a layer reached twice (shared) is stored at its first path only.
"""

from __future__ import annotations

import re
import warnings
from typing import NamedTuple

import numpy as np

from kfunc.errors import WeightsError, describe_layer
from kfunc.layers.base import layers_in
from kfunc.saving.registry import model_classes
from kfunc.saving.dtype_policy import ADVICE, dtype_mismatch


class StructuralWeight(NamedTuple):
    """One weight: its structural ``path``, the ``variable``, and the ``layer`` it is loaded with
    (the layer of a model's ``layers`` list that holds it; ``skip_mismatch`` skips whole layers)."""

    path: str
    variable: object
    layer: object


def snake_case(class_name: str) -> str:
    """``"BatchNormalization"`` -> ``"batch_normalization"``, ``"LSTM"`` -> ``"lstm"``,
    ``"Conv2D"`` -> ``"conv2d"``: the group names of Keras's weights files."""
    cleaned = re.sub(r"\W+", "", class_name)
    # A capital that starts a lower-case word begins a new word; so does a capital after a lower-case letter.
    spaced = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cleaned)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", spaced).lower()


def _class_group_name(layer) -> str:
    Model, Sequential = model_classes()
    if isinstance(layer, Sequential):
        return "sequential"
    if isinstance(layer, Model):
        return "functional"  # Keras's class for graph models
    return snake_case(type(layer).__name__)


def _own_weights(layer) -> list:
    own = layer._own_variables
    return [v for v in own if v.trainable] + [v for v in own if not v.trainable]


def _own_prefix(layer) -> str:
    """Where Keras keeps a layer's own weights: recurrent layers keep them in their cell."""
    from kfunc.layers import RNN

    if isinstance(layer, RNN) and _own_weights(layer):
        return "cell/"
    return ""


def _is_model(layer) -> bool:
    return isinstance(layer, model_classes()[0])


def structural_weights(model) -> list[StructuralWeight]:
    """Every weight of ``model`` once, with its structural path, in a stable order."""
    found: list[StructuralWeight] = []
    visited: set[int] = set()
    _walk_model(model, "", found, visited)
    return found


def _walk_model(model, prefix: str, found: list, visited: set) -> None:
    visited.add(id(model))
    for index, variable in enumerate(_own_weights(model)):  # a subclassed model's own add_weight
        visited.add(id(variable))
        found.append(StructuralWeight(f"{prefix}vars/{index}", variable, model))
    _walk_list(model.layers, f"{prefix}layers/", found, visited, owner=None)


def _walk_list(layers, prefix: str, found: list, visited: set, owner) -> None:
    counts: dict[str, int] = {}
    for layer in layers:
        base = _class_group_name(layer)
        seen = counts.get(base)
        counts[base] = 0 if seen is None else seen + 1
        name = base if seen is None else f"{base}_{seen + 1}"
        _walk_layer(layer, f"{prefix}{name}/", found, visited, owner)


def _walk_layer(layer, prefix: str, found: list, visited: set, owner) -> None:
    if id(layer) in visited:
        return
    if _is_model(layer):
        _walk_model(layer, prefix, found, visited)
        return
    visited.add(id(layer))
    owner = layer if owner is None else owner
    own_prefix = prefix + _own_prefix(layer)
    for index, variable in enumerate(_own_weights(layer)):
        visited.add(id(variable))
        found.append(StructuralWeight(f"{own_prefix}vars/{index}", variable, owner))
    # A sublayer whose weights are all already listed (an RNN's cell reading its RNN's weights)
    # adds nothing.
    def listed(held) -> bool:
        return bool(_own_weights(held)) and all(id(v) in visited for v in _own_weights(held))
    for attribute in sorted(layer._sublayer_slots):
        held = layer._sublayer_slots[attribute]
        if isinstance(held, (list, tuple, dict)):  # layers in a list or dict, at any depth, in order
            _walk_list(layers_in(held), f"{prefix}{attribute}/", found, visited, owner)
        elif not listed(held):
            _walk_layer(held, f"{prefix}{attribute}/", found, visited, owner)


# ---------------------------------------------------------------------- matching
def _shape_text(shape) -> str:
    return str(tuple(int(d) for d in shape))


def match_weights(model, stored: dict, source: str, *, skip_mismatch: bool = False) -> list[tuple]:
    """``[(variable, array), ...]`` pairing each weight of ``model`` with the array of ``stored``
    (``{structural path: array}``) at its path.

    Every problem is collected before anything is set: a weight missing from the file, an array
    of another shape (both shapes named), an array the model has no weight for. With
    ``skip_mismatch`` each layer with a problem is left as it is, with a warning naming it;
    otherwise one ``WeightsError`` lists them all."""
    entries = structural_weights(model)
    problems: dict[int, list[str]] = {}
    layers: dict[int, object] = {}
    for entry in entries:
        layers[id(entry.layer)] = entry.layer
        value = stored.get(entry.path)
        where = f"weight '{entry.variable.name}' ({entry.path})"
        if value is None:
            problems.setdefault(id(entry.layer), []).append(f"{where} is not in the file")
        elif tuple(value.shape) != tuple(entry.variable.shape):
            problems.setdefault(id(entry.layer), []).append(
                f"{where} has shape {_shape_text(entry.variable.shape)} in the model but {_shape_text(value.shape)} "
                "in the file"
            )
    unexpected = sorted(set(stored) - {entry.path for entry in entries})
    if problems or unexpected:
        described = [f"{describe_layer(layers[key])}: {'; '.join(texts)}" for key, texts in problems.items()]
        if unexpected:
            described.append(f"the file holds weights the model does not have: {unexpected[:10]}")
        if not skip_mismatch:
            raise WeightsError(
                f"The weights in {source} do not fit model '{model.name}': {' | '.join(described[:10])}. "
                "Build the same architecture as the saved model, or pass skip_mismatch=True to load only the "
                "layers that fit."
            )
        for text in described:
            warnings.warn(f"load_weights(skip_mismatch=True) skipped, from {source}: {text}.", stacklevel=4)
    return [
        (entry.variable, stored[entry.path])
        for entry in entries
        if id(entry.layer) not in problems
    ]


def assign_all(pairs: list[tuple], source: str) -> None:
    """Set each variable to its array after checking every one: numeric, and of exactly the
    variable's dtype (``kfunc.saving.dtype_policy``: nothing is cast on load)."""
    values, mismatched = [], []
    for variable, value in pairs:
        value = np.asarray(value)
        if value.dtype.kind not in "biufc" and value.dtype.name != "bfloat16":
            raise WeightsError(
                f"Weight '{variable.path}' from {source} has dtype {value.dtype}; only numeric weights load."
            )
        problem = dtype_mismatch(variable.path, variable.dtype, value.dtype)
        if problem is not None:
            mismatched.append(problem)
        values.append(value)
    if mismatched:
        raise WeightsError(f"The weights from {source} have dtype mismatches with the model: {'; '.join(mismatched)}; {ADVICE}.")
    for (variable, _), value in zip(pairs, values, strict=True):
        variable.set_value(value)
