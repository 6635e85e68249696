"""Signal measures and complex construction of ``keras.ops.nn``: ``psnr``, ``polar``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.ops.arrays import as_array, as_float_array
from kfunc.ops.operation import operation


@operation("psnr")
def psnr(x1, x2, max_val):
    """The peak signal-to-noise ratio ``20 log10(max_val) - 10 log10(mean((x1 - x2)**2))`` in dB
    over all entries of ``x1`` and ``x2`` (the same shape, e.g. ``(batch, h, w, c)``); a scalar."""
    x1, x2 = as_array(x1), as_array(x2)
    if x1.shape != x2.shape:
        raise ValueError(f"kfunc.ops.psnr expects x1 and x2 of the same shape, received {tuple(x1.shape)} and "
                         f"{tuple(x2.shape)}.")
    max_val = as_array(max_val, x2.dtype)
    return 20 * jnp.log10(max_val) - 10 * jnp.log10(jnp.mean(jnp.square(x1 - x2)))


@operation("polar")
def polar(abs_, angle):
    """The complex numbers ``abs_ * (cos(angle) + i sin(angle))``; integers computed as floatx,
    complex64 from float32."""
    abs_, angle = as_float_array(abs_), as_float_array(angle)
    return jax.lax.complex(abs_ * jnp.cos(angle), abs_ * jnp.sin(angle))


__all__ = ["psnr", "polar"]
