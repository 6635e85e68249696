"""The one dtype rule of loading, shared by ``load_model`` and ``load_weights``: a stored weight
must have exactly the dtype of the variable it is loaded into; nothing is cast on load.

Keras 3 casts whatever it reads to the variable's dtype. kfunc refuses instead, so a load never
silently drops the imaginary part of complex weights, rounds float64 to float32, turns int8 or
bool arrays into floats, or hides that a file came from a model built with another dtype. To
load such a file, cast its arrays with NumPy and save them again, or build the model with the
file's dtype.
"""

from __future__ import annotations

import numpy as np

ADVICE = "kfunc casts nothing on load: cast the arrays with NumPy and save them again, or build the model with that dtype"


def dtype_mismatch(path: str, wanted, found) -> str | None:
    """``"dense/kernel: model float32, file float64"`` when ``found`` is not ``wanted``, else None."""
    wanted, found = np.dtype(wanted), np.dtype(found)
    if wanted == found:
        return None
    lost = " (complex: the imaginary part would be lost)" if found.kind == "c" and wanted.kind != "c" else ""
    return f"{path}: model {wanted.name}, file {found.name}{lost}"
