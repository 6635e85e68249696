"""Data for fit and evaluate: inputs, targets and sample weights, checked and aligned on the host.

``ArrayData`` holds one array per model input (by name), one target and one weight array per
output (``None`` where an output has no loss or no weights). Every check runs here, before
anything is compiled: wrong counts, unknown or missing names, mismatched sample counts, labels
whose shape does not fit the output.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kfunc.core import structures
from kfunc.data.arrays import DataError, as_array, check_same_length, model_input_arrays, sample_count
from kfunc.data.id_checks import check_embedding_ids
from kfunc.train import losses as losses_lib


class ArrayData(NamedTuple):
    inputs: dict  # input name -> (N, ...), or None for an optional input given as None
    targets: tuple  # per output: (N, ...) or None
    weights: tuple  # per output: (N,) float32 or None
    count: int

    def take(self, index: np.ndarray | slice) -> ArrayData:
        """The samples at ``index`` (a slice or an index array; ``np.take`` is 3x faster than
        fancy indexing for the per-epoch shuffle)."""
        if isinstance(index, slice):
            pick = lambda a: None if a is None else a[index]  # noqa: E731
        else:
            pick = lambda a: None if a is None else np.take(a, index, axis=0)  # noqa: E731
        inputs = {k: pick(v) for k, v in self.inputs.items()}
        count = sample_count(list(inputs.values()))
        return ArrayData(inputs, tuple(map(pick, self.targets)), tuple(map(pick, self.weights)), count)


def _is_data_leaf(value) -> bool:
    """An array, None, or nested lists of numbers (one array): not a container of per-output values."""
    if not isinstance(value, (list, tuple, dict)):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(
        np.isscalar(v) or (isinstance(v, (list, tuple)) and _is_data_leaf(v) and not hasattr(v, "_fields"))
        for v in value
    )


def per_output_values(model, value, role: str, *, needed: list[int]) -> list:
    """``value`` (labels, sample weights) for the model's outputs -> one entry per flat output
    (``model.outputs`` order), None where nothing was given. Accepted, as in Keras 3: the outputs'
    structure (lists, tuples and namedtuples interchangeable; outputs without a loss may be left
    out of a dict or given None), a dict keyed by output name, a flat list with one entry per
    output or per output that needs one (``needed``: their indices: outputs with a loss or
    metrics), or one array for a model with one output."""
    names, paths = model.output_names, model.output_paths
    if len(names) == 1 and (not isinstance(value, (list, tuple, dict)) or _is_data_leaf(value)):
        return [value]
    matched = structures.matched_by_paths(value, paths, is_leaf=_is_data_leaf)
    if matched is None and isinstance(value, dict):
        matched = structures.matched_by_subset_of_paths(value, paths, is_leaf=_is_data_leaf)
        if matched is None and all(k in names for k in value):
            matched = [value.get(n) for n in names]
    flat = structures.leaves(value, is_leaf=_is_data_leaf)
    if matched is None and isinstance(value, (list, tuple)):
        if len(flat) == len(names):
            matched = flat
        elif len(flat) == len(needed):  # values only for the outputs that need them, in order
            matched = [None] * len(names)
            for i, given in zip(needed, flat, strict=True):
                matched[i] = given
    if matched is None and isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        missing = [names[i] for i in needed if names[i] not in value]
        raise DataError(
            f"{role} for model '{model.name}' must be keyed by output names {names} (or mirror the outputs "
            f"{model.structure_text('outputs')}); the dict given is missing {missing} and has unknown keys {unknown}."
        )
    if matched is None:
        received = structures.describe_structure(value, _value_text, is_leaf=_is_data_leaf)
        raise DataError(
            f"{role} for model '{model.name}' must give {len(names)} arrays, one per output {names}, but received "
            f"{len(flat)}: {received}; give them in the outputs' structure {model.structure_text('outputs')}, as a "
            "flat list in that order, or as a dict keyed by output name (outputs without a loss may be left out)."
        )
    missing = [names[i] for i in needed if matched[i] is None]
    if missing:
        raise DataError(
            f"{role} for model '{model.name}' has no values for outputs {missing}, which have a loss; "
            f"the outputs are {model.structure_text('outputs')}."
        )
    return matched


def _value_text(value) -> str:
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    return f"shape {tuple(shape)}" if shape is not None else type(value).__name__


def _is_sparse(loss) -> bool:
    return loss is not None and losses_lib.name_of(loss) == "sparse_categorical_crossentropy"


def check_target(array: np.ndarray, tensor, loss, output_name: str) -> np.ndarray:
    """Labels must fit the output: same shape, or integer class labels for a sparse loss; ``(N,)``
    labels for a one-unit output gain their unit axis. Nothing else is broadcast."""
    out_shape = tensor.shape[1:]
    shape = array.shape[1:]

    def fits(candidate):
        return len(candidate) == len(out_shape) and all(o is None or c == o for c, o in zip(candidate, out_shape))

    if _is_sparse(loss):
        sparse_shape = out_shape[:-1]

        def fits_sparse(candidate):
            return len(candidate) == len(sparse_shape) and all(o is None or c == o for c, o in zip(candidate, sparse_shape))

        if fits_sparse(shape) or (shape[-1:] == (1,) and fits_sparse(shape[:-1])):
            if not np.issubdtype(array.dtype, np.integer) and not np.array_equal(array, np.round(array)):
                raise DataError(f"Labels of output '{output_name}' must be integer class indices for sparse_categorical_crossentropy.")
            return array.astype(np.int32)
        expected = f"{(None,) + sparse_shape} integer class indices"
    else:
        if fits(shape):
            return array.astype(np.float32)
        if out_shape and out_shape[-1] == 1 and fits(shape + (1,)):
            return array.astype(np.float32)[..., None]
        expected = f"{tensor.shape}"
    hint = ""
    if not _is_sparse(loss) and len(shape) == len(out_shape) - 1:
        hint = " For integer class labels use loss='sparse_categorical_crossentropy'."
    raise DataError(
        f"Labels of output '{output_name}' have shape {(None,) + shape} ({len(array)} samples), but the output has "
        f"shape {tensor.shape}; expected labels of shape {expected}. Labels are never broadcast onto an output.{hint}"
    )


def _sample_weights(model, config, sample_weight, class_weight, targets, count: int) -> list:
    names = model.output_names
    weights = [None] * len(names)
    if sample_weight is not None:
        if len(names) > 1 and _is_data_leaf(sample_weight):  # one weight per sample for every output
            values = [sample_weight] * len(names)
        else:
            values = per_output_values(model, sample_weight, "sample_weight", needed=[])
        for i, value in enumerate(values):
            if value is not None:
                array = as_array(value, f"sample_weight of output '{names[i]}'").astype(np.float32)
                if array.shape != (count,):
                    raise DataError(
                        f"sample_weight of output '{names[i]}' must have shape ({count},), one weight per sample, "
                        f"but received shape {array.shape}."
                    )
                weights[i] = array
    if class_weight is not None:
        trained = config.trained_outputs
        if len(trained) != 1:
            raise DataError("class_weight is only supported for models with one trained output; use sample_weight.")
        i = trained[0]
        labels = targets[i]
        classes = np.argmax(labels, axis=-1) if labels.ndim > 1 and labels.shape[-1] > 1 else labels.reshape(len(labels), -1)[:, 0]
        classes = np.round(classes).astype(np.int64)
        missing = sorted(set(np.unique(classes).tolist()) - set(class_weight))
        if missing:
            raise DataError(f"class_weight has no weight for classes {missing} present in the labels.")
        from_classes = np.asarray([class_weight[c] for c in classes], np.float32)
        weights[i] = from_classes if weights[i] is None else weights[i] * from_classes
    return weights


def fit_arrays(model, config, x, y, sample_weight=None, class_weight=None, *, role: str = "fit") -> ArrayData:
    """Check and align ``x``, ``y`` and weights for the trained outputs of ``model``."""
    inputs = model_input_arrays(model, x)
    check_embedding_ids(model, inputs)
    count = sample_count(inputs)
    labelled = config.labelled_outputs  # outputs with a loss or metrics
    names = model.output_names
    targets: list = [None] * len(names)
    if y is None and labelled:
        raise DataError(f"{role}: model '{model.name}' needs targets y for outputs {[names[i] for i in labelled]}.")
    # Without a loss or metrics (a model trained on add_loss terms only) labels are not read.
    values = per_output_values(model, y, "y", needed=labelled) if labelled else [None] * len(names)
    for i in labelled:
        array = as_array(values[i], f"Targets of output '{names[i]}'")
        targets[i] = check_target(array, model.outputs[i], config.outputs[i].loss, names[i])
    present = [(names[i], t) for i, t in enumerate(targets) if t is not None]
    given = [(a, n) for a, n in zip(inputs, model.input_names, strict=True) if a is not None] + [(t, f"y['{n}']") for n, t in present]
    check_same_length([a for a, _ in given], [n for _, n in given], "inputs and targets")
    weights = _sample_weights(model, config, sample_weight, class_weight, targets, count)
    return ArrayData(dict(zip(model.input_names, inputs, strict=True)), tuple(targets), tuple(weights), count)


def split_for_validation(data: ArrayData, fraction: float) -> tuple[ArrayData, ArrayData]:
    """The last ``fraction`` of the samples (before any shuffling) for validation, as Keras."""
    cut = validation_cut(data.count, fraction)
    return data.take(slice(0, cut)), data.take(slice(cut, None))


def validation_cut(count: int, fraction: float) -> int:
    """How many of ``count`` samples stay for training under ``validation_split=fraction``."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"validation_split must be in (0, 1), received {fraction}.")
    cut = int(count * (1.0 - fraction))
    if cut == 0 or cut == count:
        raise DataError(
            f"validation_split={fraction} of {count} samples leaves an empty training or validation set."
        )
    return cut
