"""bfloat16 arrays in ``.npy`` members: NumPy's format has no bfloat16, so such an array is
stored as its raw ``uint16`` bits and the file says elsewhere (a dtype name next to the member)
that it is bfloat16. Used by model files and weights files alike."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

BFLOAT16 = np.dtype(jnp.bfloat16)


def storable(value: np.ndarray) -> np.ndarray:
    """``value`` as an array ``.npy`` can hold: bfloat16 becomes its ``uint16`` bits (same shape)."""
    return value.view(np.uint16) if value.dtype == BFLOAT16 else value


def restored(stored: np.ndarray, dtype_name: str) -> np.ndarray:
    """The array a member holds, as the dtype its file declares: ``uint16`` bits declared as
    ``bfloat16`` are viewed as bfloat16 (no copy); anything else is returned unchanged, so the
    caller's dtype check still sees a mismatch."""
    if dtype_name == BFLOAT16.name and stored.dtype == np.uint16:
        return stored.view(BFLOAT16)
    return stored
