"""Range checks of the integer ids that model inputs feed to ``Embedding`` layers, on the host.

Inside a compiled step an out-of-range id is not an error: XLA clamps or fills the gather, so
id ``input_dim`` trains the weights to NaN, ``-1`` silently reads the last row, and ``predict``
returns garbage. The check runs once per call on the host, before anything is compiled: one
vectorized min/max per input that feeds an ``Embedding``; only when that finds a bad id is the
array searched for the first one, to say where it is.
"""

from __future__ import annotations

import numpy as np

from kfunc.data.arrays import DataError
from kfunc.errors import KfuncError, describe_layer


def is_embedding(layer) -> bool:
    """Whether ``layer`` is kfunc's ``Embedding`` (or a subclass). Told by its classes' names:
    importing ``kfunc.layers`` here would pull ``data/`` into the import cycle that still runs
    from ``layers/`` up through ``saving/`` (issue 14, item 8)."""
    return any(cls.__name__ == "Embedding" and cls.__module__ == "kfunc.layers.core" for cls in type(layer).__mro__)


def embeddings_fed_by_inputs(model) -> list[list]:
    """Per model input (in ``model.inputs`` order), the ``Embedding`` layers that it feeds
    directly, or through the inputs of a nested model."""
    inputs = list(model.inputs)
    found: list[list] = [[] for _ in inputs]
    if not getattr(model, "_graph_network", True):
        return found  # a subclassed model computes in Python: which input feeds which layer is unknown
    position_of = {id(tensor): i for i, tensor in enumerate(inputs)}
    for node in model._graph().plan.nodes:
        fed = [position_of[id(t)] for t in node.inputs if id(t) in position_of]
        if not fed:
            continue
        if is_embedding(node.layer):
            for i in fed:
                found[i].append(node.layer)
        elif hasattr(node.layer, "_graph") and node.layer is not model:
            for i, nested in _nested_embeddings(node, position_of):
                found[i].extend(nested)
    return found


def _nested_embeddings(node, position_of: dict):
    """``(outer input position, embeddings)`` for each outer input passed straight to an input
    of the nested model called by ``node``."""
    nested_model = node.layer
    try:
        values = nested_model.match_inputs(node.call_inputs)
    except KfuncError:
        return
    nested_found = embeddings_fed_by_inputs(nested_model)
    for value, embeddings in zip(values, nested_found, strict=True):
        if embeddings and id(value) in position_of:
            yield position_of[id(value)], embeddings


def check_embedding_ids(model, arrays: list[np.ndarray]) -> None:
    """Every id in an array fed to an ``Embedding`` must be in ``[0, input_dim)``."""
    for array, name, embeddings in zip(arrays, model.input_names, embeddings_fed_by_inputs(model), strict=True):
        if not embeddings or array is None or not array.size or not np.issubdtype(array.dtype, np.integer):
            continue
        low, high = int(array.min()), int(array.max())
        for layer in embeddings:
            if low >= 0 and high < layer.input_dim:
                continue
            bad = np.argwhere((array < 0) | (array >= layer.input_dim))[0]
            sample, position = int(bad[0]), tuple(int(i) for i in bad[1:])
            raise DataError(
                f"Input '{name}' of model '{model.name}' feeds {describe_layer(layer)} with input_dim="
                f"{layer.input_dim}, but sample {sample} has id {int(array[tuple(bad)])} at position {position}; "
                f"ids must be in [0, {layer.input_dim}): fix the data or give the Embedding a larger input_dim."
            )
