"""Window functions of ``keras.ops`` (NumPy names): tapers of length ``x`` for spectral analysis,
symmetric (first and last value equal), floatx. ``x`` is the length, a Python int (the result's
shape depends on it, so it cannot be a tensor's value under ``jax.jit``)."""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.ops.arrays import floatx
from kfunc.ops.operation import operation


def _length(x, name: str) -> int:
    try:
        return int(x)
    except Exception:
        raise TypeError(f"kfunc.ops.{name} expects the window length as a Python int, received {x!r}.") from None


def _window(name: str, function, doc: str):
    def window(x):
        return function(_length(x, name)).astype(floatx())

    window.__name__ = window.__qualname__ = name
    window.__doc__ = f"The {doc} window of length ``x``: ``(x,)``."
    return operation(name)(window)


bartlett = _window("bartlett", jnp.bartlett, "triangular (Bartlett)")
blackman = _window("blackman", jnp.blackman, "Blackman")
hamming = _window("hamming", jnp.hamming, "Hamming")
hanning = _window("hanning", jnp.hanning, "Hann")


@operation("kaiser")
def kaiser(x, beta):
    """The Kaiser window of length ``x`` and shape ``beta`` (0: rectangular; larger: narrower):
    ``(x,)``."""
    return jnp.kaiser(_length(x, "kaiser"), beta).astype(floatx())


__all__ = ["bartlett", "blackman", "hamming", "hanning", "kaiser"]
