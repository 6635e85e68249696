"""Fourier transforms of ``keras.ops`` (also at ``keras.ops.math``): ``fft``, ``fft2``, ``ifft2``,
``rfft``, ``irfft``, and the short-time transforms ``stft`` / ``istft``.

Complex values travel as Keras's ``(real, imag)`` pairs of float arrays of the same shape, in
arguments and results, so a model graph holds only real tensors. The transforms act on the last
axis (the last two for ``fft2`` / ``ifft2``); every leading axis is a batch axis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kfunc.ops.arrays import as_array, as_float_array
from kfunc.ops.operation import operation


def _complex(x, name: str):
    """The complex array of a ``(real, imag)`` pair of float arrays of the same shape."""
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(f"kfunc.ops.{name} expects x as a pair (real, imag) of float arrays, received "
                         f"{type(x).__name__}; pass (x, ops.zeros_like(x)) for a real signal.")
    real, imag = as_array(x[0]), as_array(x[1])
    if real.shape != imag.shape:
        raise ValueError(f"kfunc.ops.{name}: the real and imaginary parts must have the same shape, received "
                         f"{tuple(real.shape)} and {tuple(imag.shape)}.")
    if not (jnp.issubdtype(real.dtype, jnp.floating) and jnp.issubdtype(imag.dtype, jnp.floating)):
        raise ValueError(f"kfunc.ops.{name}: the real and imaginary parts must be floats, received {real.dtype} and "
                         f"{imag.dtype}; cast them with ops.cast(x, 'float32').")
    return jax.lax.complex(real, imag)


def _pair(values):
    return jnp.real(values), jnp.imag(values)


@operation("fft")
def fft(x):
    """The discrete Fourier transform along the last axis of ``x`` = ``(real, imag)``."""
    return _pair(jnp.fft.fft(_complex(x, "fft")))


@operation("fft2")
def fft2(x):
    """The 2-D discrete Fourier transform over the last two axes of ``x`` = ``(real, imag)``."""
    return _pair(jnp.fft.fft2(_complex(x, "fft2")))


@operation("ifft2")
def ifft2(x):
    """The inverse of ``fft2`` over the last two axes of ``x`` = ``(real, imag)``."""
    return _pair(jnp.fft.ifft2(_complex(x, "ifft2")))


@operation("rfft")
def rfft(x, fft_length=None):
    """The Fourier transform of the real ``x`` ``(..., length)`` (zero-padded or cut to
    ``fft_length``): ``(real, imag)``, each ``(..., fft_length // 2 + 1)``."""
    return _pair(jnp.fft.rfft(as_float_array(x), n=fft_length, axis=-1))


@operation("irfft")
def irfft(x, fft_length=None):
    """The real signal ``(..., fft_length)`` whose ``rfft`` is ``x`` = ``(real, imag)``
    (``fft_length`` defaults to ``2 * (bins - 1)``)."""
    return jnp.fft.irfft(_complex(x, "irfft"), n=fft_length, axis=-1)


def _window(window, sequence_length: int, fft_length: int, dtype, name: str):
    """The window of ``sequence_length`` samples, zero-padded on both sides to ``fft_length``."""
    if isinstance(window, str):
        if window not in ("hann", "hamming"):
            raise ValueError(f"kfunc.ops.{name}: a window name must be 'hann' or 'hamming', received {window!r}; "
                             "or pass the window's values (sequence_length of them), or None.")
        # Periodic windows (SciPy's get_window default), the ones that add up evenly when overlapped.
        cosine = np.cos(2 * np.pi * np.arange(sequence_length) / sequence_length)
        values = jnp.asarray(0.5 - 0.5 * cosine if window == "hann" else 0.54 - 0.46 * cosine, dtype)
    else:
        values = as_array(window, dtype)
        if values.shape != (sequence_length,):
            raise ValueError(f"kfunc.ops.{name}: window must have shape (sequence_length,) = ({sequence_length},), "
                             f"received {tuple(values.shape)}.")
    left = (fft_length - sequence_length) // 2
    return jnp.pad(values, (left, fft_length - sequence_length - left))


def _check_lengths(sequence_length, fft_length, name):
    if fft_length < sequence_length:
        raise ValueError(f"kfunc.ops.{name}: fft_length must be at least sequence_length, received "
                         f"fft_length={fft_length} and sequence_length={sequence_length}.")


@operation("stft")
def stft(x, sequence_length, sequence_stride, fft_length, window="hann", center=True):
    """The short-time Fourier transform of the float signals ``x`` ``(..., length)``: frames of
    ``fft_length`` samples every ``sequence_stride``, each multiplied by ``window`` (``"hann"``,
    ``"hamming"``, values ``(sequence_length,)`` centred in the frame, or None), then ``rfft``.
    ``center`` reflects ``fft_length // 2`` samples at both ends first. Returns ``(real, imag)``,
    each ``(..., frames, fft_length // 2 + 1)``."""
    x = as_array(x)
    if x.dtype not in (jnp.float32, jnp.float64):
        raise TypeError(f"kfunc.ops.stft expects a float32 or float64 signal, received {x.dtype}; cast it with "
                        "ops.cast(x, 'float32').")
    _check_lengths(sequence_length, fft_length, "stft")
    if center:
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(fft_length // 2, fft_length // 2)], mode="reflect")
    if window is None:
        window_values = jnp.ones((fft_length,), x.dtype)
    else:
        window_values = _window(window, sequence_length, fft_length, x.dtype, "stft")
    frames = 1 + (x.shape[-1] - fft_length) // sequence_stride
    positions = np.arange(frames)[:, None] * sequence_stride + np.arange(fft_length)[None, :]
    return _pair(jnp.fft.rfft(jnp.take(x, jnp.asarray(positions), axis=-1) * window_values, n=fft_length, axis=-1))


@operation("istft")
def istft(x, sequence_length, sequence_stride, fft_length, length=None, window="hann", center=True):
    """The signal ``(..., samples)`` whose ``stft`` (same arguments) is ``x`` = ``(real, imag)``
    ``(..., frames, fft_length // 2 + 1)``: each frame's ``irfft`` times the window, overlapped
    and added, divided by the overlapped squared window. ``center`` drops the ``fft_length // 2``
    reflected samples at both ends; ``length`` cuts the result to that many samples."""
    spectrum = _complex(x, "istft")
    if spectrum.ndim < 2:
        raise ValueError(f"kfunc.ops.istft expects x of shape (..., frames, bins), received {tuple(spectrum.shape)}.")
    _check_lengths(sequence_length, fft_length, "istft")
    dtype = jnp.real(spectrum).dtype
    frames_count = spectrum.shape[-2]
    if window is None:
        window_values = jnp.ones((fft_length,), dtype)
    else:
        window_values = _window(window, sequence_length, fft_length, dtype, "istft")
    frames = jnp.fft.irfft(spectrum, n=fft_length, axis=-1) * window_values
    total = fft_length + sequence_stride * (frames_count - 1)
    positions = jnp.asarray((np.arange(frames_count)[:, None] * sequence_stride + np.arange(fft_length)).reshape(-1))
    signal = jnp.zeros(frames.shape[:-2] + (total,), dtype).at[..., positions].add(
        frames.reshape(frames.shape[:-2] + (-1,)))
    envelope = jnp.zeros((total,), dtype).at[positions].add(jnp.tile(jnp.square(window_values), frames_count))
    signal = signal / jnp.where(envelope > 1e-10, envelope, 1.0)
    if window is None:  # Keras 3 rescales a window-less inverse by fft_length / sequence_stride
        signal = signal * (fft_length / sequence_stride)
    start = fft_length // 2 if center else 0
    if length is not None:
        end = start + length
    else:
        end = total - fft_length // 2 if center else total
    return signal[..., start:end]


__all__ = ["fft", "fft2", "ifft2", "rfft", "irfft", "stft", "istft"]
