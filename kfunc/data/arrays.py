"""Checks and conversions of user data against a model's inputs and outputs, on the host.

Everything here runs before anything is compiled, so bad data fails fast with a message that
names the input, the expected shape or dtype, and what was received.
"""

from __future__ import annotations

import numpy as np

from kfunc.errors import KfuncError, describe_value
from kfunc.errors import DataError  # noqa: F401 (re-exported)


def as_array(value, role: str) -> np.ndarray:
    """``value`` (an array, or nested lists of numbers) as a NumPy array of real numbers or
    booleans; strings, complex numbers, objects and ragged lists are refused."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        array = np.asarray(value)
    elif isinstance(value, (list, tuple)) and value and all(np.isscalar(v) or isinstance(v, (list, tuple)) for v in value):
        try:
            array = np.asarray(value)
        except ValueError:  # NumPy refuses ragged nesting
            raise DataError(
                f"{role} must be a rectangular array, but received nested lists of different lengths; pad "
                "them to one length first."
            ) from None
    else:
        raise DataError(f"{role} must be an array (NumPy or JAX), but received {describe_value(value)}.")
    return check_real_numbers(array, role)


def check_real_numbers(array: np.ndarray, role: str) -> np.ndarray:
    """``array`` if it holds booleans, integers or real floats; a ``DataError`` otherwise."""
    kind = array.dtype.kind
    if kind in "biuf":
        return array
    if kind == "c":
        raise DataError(
            f"{role} has complex dtype {array.dtype.name}, but kfunc computes on real numbers (a complex "
            "value would silently lose its imaginary part); pass the real and imaginary parts as separate "
            "real features (np.real(x), np.imag(x))."
        )
    if kind in "US":
        raise DataError(
            f"{role} must hold numbers, but received strings (dtype {array.dtype}); encode them as numbers "
            "first (e.g. class indices)."
        )
    raise DataError(f"{role} must hold numbers, but received dtype {array.dtype}; convert it to a numeric dtype.")


def _check_fits_integer(array: np.ndarray, target: np.dtype, role: str) -> None:
    """Integer data for an integer input of another dtype (e.g. int64 ids into int32) must fit it:
    a cast would wrap ids of 2**31 and more to other, wrong ids."""
    if not array.size:
        return
    limits = np.iinfo(target)
    low, high = array.min(), array.max()
    if low < limits.min or high > limits.max:
        raise DataError(
            f"{role} is declared {target.name}, but received {array.dtype.name} values from {low} to {high}, "
            f"outside the range of {target.name} [{limits.min}, {limits.max}]; a cast would change them, so "
            "pass values in that range (or declare the Input with a wider integer dtype)."
        )


def check_against_tensor(array: np.ndarray, tensor, role: str) -> np.ndarray:
    """``array`` must fit ``tensor.shape`` (``None`` matches any size) and convert to its dtype."""
    expected = tensor.shape
    shape = array.shape
    if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
        hint = ""
        if len(shape) == len(expected) - 1 and all(e is None or s == e for s, e in zip(shape, expected[1:])):
            hint = " It looks like a single example: add the batch axis (x[None])."
        raise DataError(
            f"{role} must have shape {expected} (None: any size), but received shape {shape}.{hint}"
        )
    target = np.dtype(tensor.dtype)
    if array.dtype == target:
        return array
    if np.issubdtype(target, np.integer) and np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise DataError(
                f"{role} is declared {target.name} (e.g. token ids for an Embedding), but received "
                f"{array.dtype.name} values that are not whole numbers; pass integer data."
            )
    if np.issubdtype(target, np.integer) and array.dtype.kind in "iuf":
        _check_fits_integer(array, target, role)
    if np.issubdtype(target, np.floating) and np.issubdtype(array.dtype, np.integer) and array.size:
        limit = 2 ** (np.finfo(target).nmant + 1)
        if np.abs(array).max() > limit:
            raise DataError(
                f"{role} is declared {target.name}, but received {array.dtype.name} values up to "
                f"{np.abs(array).max()}, which {target.name} cannot represent exactly (limit {limit}); "
                "scale the data or declare an integer Input."
            )
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number):
        return array.astype(target)
    raise DataError(f"{role} must be numeric, but received dtype {array.dtype}.")


def model_input_arrays(model, x) -> list:
    """``x`` as given by the user -> one checked array per model input, in ``model.inputs`` order;
    None for an ``Input(optional=True)`` given as None (or left out of a dict)."""
    if x is None:
        raise DataError(f"Model '{model.name}' needs input data x, received None.")
    try:
        values = model.match_inputs(x)
    except KfuncError as error:
        raise DataError(str(error)) from None
    names = model.input_names
    arrays = []
    for value, name, tensor in zip(values, names, model.inputs, strict=True):
        if value is None:
            if not getattr(tensor.layer, "optional", False):
                raise DataError(
                    f"Input '{name}' of model '{model.name}' is not optional, but None was passed; pass an array "
                    f"of shape {tensor.shape}, or declare it with Input(..., optional=True)."
                )
            arrays.append(None)
            continue
        arrays.append(check_against_tensor(as_array(value, f"Input '{name}'"), tensor, f"Input '{name}' of model '{model.name}'"))
    given = [(a, n) for a, n in zip(arrays, names, strict=True) if a is not None]
    if not given:
        raise DataError(f"Model '{model.name}' received None for every input {names}; pass at least one array.")
    check_same_length([a for a, _ in given], [n for _, n in given], "inputs")
    return arrays


def sample_count(arrays: list) -> int:
    """The number of samples of the given (not None) arrays, which have been checked to agree."""
    return len(next(a for a in arrays if a is not None))


def check_same_length(arrays, names, role: str) -> int:
    lengths = {n: len(a) if a.ndim else None for n, a in zip(names, arrays, strict=True)}
    if any(v is None for v in lengths.values()):
        raise DataError(f"Each of the {role} needs a batch axis; received scalars for {[n for n, v in lengths.items() if v is None]}.")
    if len(set(lengths.values())) > 1:
        raise DataError(f"All {role} must have the same number of samples, but received {lengths}.")
    count = next(iter(lengths.values()))
    if count == 0:
        raise DataError(f"The {role} are empty (0 samples); pass at least one sample.")
    return count
