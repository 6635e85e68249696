"""Audio front ends (Keras 3's names and arguments): STFTSpectrogram, a short-time Fourier
transform computed as a strided 1-D convolution with trainable DFT kernels, and MelSpectrogram,
a fixed (weightless) mel-scaled power spectrogram, optionally in decibels.

Windows are ``'hann'`` or ``'hamming'`` (the two Keras 3's stft op accepts), or ``None``
(rectangular); kfunc computes them itself rather than through SciPy.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from kfunc.errors import LayerConfigError, LayerInputError, describe_layer
from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.conv import check_data_format
from kfunc.layers.input_spec import InputSpec

KERAS_EPSILON = 1e-7  # keras.config.epsilon(): the floor of magnitudes before sqrt and log
WINDOWS = ("hann", "hamming", None)
STFT_MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")


def window_values(window, length: int, periodic: bool) -> np.ndarray:
    """``(length,)`` float64 taps of a Hann or Hamming window (ones for ``None``); ``periodic``
    windows are those of ``length + 1`` points without the last, as SciPy's ``fftbins=True``."""
    if window is None:
        return np.ones(length)
    span = length if periodic else max(length - 1, 1)
    cosine = np.cos(2.0 * np.pi * np.arange(length) / span)
    return 0.5 - 0.5 * cosine if window == "hann" else 0.54 - 0.46 * cosine


def _check_window(window, layer_class: str):
    if window not in WINDOWS:
        raise LayerConfigError(
            f"{layer_class}: window must be 'hann', 'hamming' or None, received {window!r}; kfunc builds only "
            "these windows (other SciPy windows are not available)."
        )
    return window


def dft_kernel(side: str, window, scaling, periodic: bool, key, shape, dtype):
    """Keras 3's STFT initializer: ``(frame_length, 1, bins)`` cosines (``side='real'``) or sines of
    the DFT, times the window, divided by its ``'density'`` (root of the sum of squares) or
    ``'spectrum'`` (sum) scale."""
    frame_length, _, bins = shape
    taps = window_values(window, frame_length, periodic) if window is not None else None
    time = np.arange(frame_length)[:, None, None]
    frequency = np.arange(bins)[None, None, :] / ((bins - 1) * 2)
    angles = -2.0 * np.pi * time * frequency
    kernel = np.cos(angles) if side == "real" else np.sin(angles)
    if taps is not None:
        scale = {"density": np.sqrt(np.sum(taps**2)), "spectrum": np.sum(np.abs(taps)), None: 1.0}[scaling]
        kernel = kernel * taps[:, None, None] / scale
    return jnp.asarray(kernel, dtype)


class STFTSpectrogram(Layer):
    """Short-time Fourier transform of each channel of ``(batch, time, channels)`` signals
    (``(batch, channels, time)`` channels first): frames of ``frame_length`` samples every
    ``frame_step`` (default half a frame), ``fft_length // 2 + 1`` frequency bins (``fft_length``
    defaults to the next power of two). ``mode``: ``'log'`` (log magnitude), ``'magnitude'``,
    ``'psd'`` (power, one-sided), ``'real'``, ``'imag'``, ``'angle'`` or ``'stft'`` (real then
    imaginary bins). Output ``(batch, frames, channels * bins)`` (channel-major), or with
    ``expand_dims=True`` ``(batch, frames, bins, channels)``; channels first: ``(batch, channels *
    bins, frames)`` / ``(batch, channels, frames, bins)``. Weights (trainable, as in Keras 3):
    ``real_kernel`` and ``imag_kernel`` ``(frame_length, 1, bins)``, the DFT kernels."""

    def __init__(self, mode="log", frame_length=256, frame_step=None, fft_length=None, window="hann", periodic=False,
                 scaling="density", padding="valid", expand_dims=False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = "STFTSpectrogram"
        self.mode = checks.one_of(mode, STFT_MODES, "mode", cls)
        self.frame_length = checks.positive_int(frame_length, "frame_length", cls)
        if frame_step is not None and not (isinstance(frame_step, int) and 1 <= frame_step <= frame_length):
            raise LayerConfigError(
                f"{cls}: frame_step must be None or an integer in [1, frame_length={frame_length}], received "
                f"{frame_step!r}."
            )
        if fft_length is not None and not (isinstance(fft_length, int) and fft_length >= frame_length):
            raise LayerConfigError(
                f"{cls}: fft_length must be None or an integer >= frame_length={frame_length}, received {fft_length!r}."
            )
        self.frame_step, self.fft_length = frame_step, fft_length
        self.window = _check_window(window, cls)
        self.periodic = bool(periodic)
        self.scaling = checks.one_of(scaling, ("density", "spectrum", None), "scaling", cls)
        self.padding = checks.one_of(padding, ("valid", "same"), "padding", cls)
        self.expand_dims = bool(expand_dims)
        self.data_format = check_data_format(data_format, cls)
        self.input_spec = InputSpec(ndim=3, hint=f"{cls} takes signals (batch, time, channels).")

    @property
    def bins(self) -> int:
        fft_length = self.fft_length or 2 ** math.ceil(math.log2(self.frame_length))
        return fft_length // 2 + 1

    def build(self, input_shape):
        shape = (self.frame_length, 1, self.bins)
        for side in ("real", "imag"):
            if self.mode != {"real": "imag", "imag": "real"}.get(side):
                initializer = functools.partial(dft_kernel, side, self.window, self.scaling, self.periodic)
                setattr(self, f"{side}_kernel", self.add_weight(f"{side}_kernel", shape, initializer))

    def call(self, inputs):
        if not jnp.issubdtype(inputs.dtype, jnp.floating):
            raise LayerInputError(
                f"{describe_layer(self)} takes float signals, received dtype {inputs.dtype}; cast the input to float32."
            )
        signals = inputs if self.data_format == "channels_first" else jnp.swapaxes(inputs, 1, 2)
        batch, channels, steps = signals.shape
        frames = signals.reshape(batch * channels, steps, 1)
        step = self.frame_step or self.frame_length // 2

        def transform(kernel):
            out = lax.conv_general_dilated(frames, kernel.value.astype(frames.dtype), (step,), self.padding.upper(),
                                           dimension_numbers=("NWC", "WIO", "NWC"))
            return jnp.swapaxes(out.reshape(batch, channels, out.shape[1], self.bins), 2, 3)

        real = None if self.mode == "imag" else transform(self.real_kernel)
        imag = None if self.mode == "real" else transform(self.imag_kernel)
        # (batch, channels, bins, frames)
        if self.mode in ("real", "imag"):
            spectrum = real if self.mode == "real" else imag
        elif self.mode == "angle":
            spectrum = jnp.arctan2(imag, real)
        elif self.mode == "stft":
            spectrum = jnp.concatenate([real, imag], axis=2)
        else:
            power = real**2 + imag**2
            if self.mode == "psd":
                # One-sided: every bin but the first and last also carries its negative frequency.
                spectrum = power + jnp.pad(power[:, :, 1:-1], ((0, 0), (0, 0), (1, 1), (0, 0)))
            else:
                spectrum = jnp.sqrt(jnp.maximum(power, KERAS_EPSILON))
                if self.mode == "log":
                    spectrum = jnp.log(jnp.maximum(spectrum, KERAS_EPSILON))
        return self._arrange(spectrum)

    def _arrange(self, spectrum):
        batch, channels, bins, frames = spectrum.shape
        if self.expand_dims:
            return jnp.transpose(spectrum, (0, 3, 2, 1) if self.data_format == "channels_last" else (0, 1, 3, 2))
        flat = spectrum.reshape(batch, channels * bins, frames)
        return jnp.swapaxes(flat, 1, 2) if self.data_format == "channels_last" else flat

    def get_config(self):
        return super().get_config() | {
            "mode": self.mode,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "fft_length": self.fft_length,
            "window": self.window,
            "periodic": self.periodic,
            "scaling": self.scaling,
            "padding": self.padding,
            "data_format": self.data_format,
            "expand_dims": self.expand_dims,
        }


def hertz_to_mel(frequencies):
    """HTK's mel scale."""
    return 1127.0 * np.log(1.0 + np.asarray(frequencies, np.float64) / 700.0)


def mel_weight_matrix(num_mel_bins: int, num_spectrogram_bins: int, sampling_rate: float, lower_hertz: float,
                      upper_hertz: float) -> np.ndarray:
    """``(num_spectrogram_bins, num_mel_bins)`` triangular filters, linear in mel, on the bins of a
    one-sided spectrum from 0 Hz to Nyquist; the DC bin gets no weight (HTK)."""
    bin_mels = hertz_to_mel(np.linspace(0.0, sampling_rate / 2.0, num_spectrogram_bins)[1:])[:, None]
    edges = np.linspace(hertz_to_mel(lower_hertz), hertz_to_mel(upper_hertz), num_mel_bins + 2)
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    rising = (bin_mels - lower) / (center - lower)
    falling = (upper - bin_mels) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(weights, ((1, 0), (0, 0)))


class MelSpectrogram(Layer):
    """Mel spectrogram of ``(batch, samples)`` audio: frames of ``sequence_length`` samples
    (default ``fft_length``) every ``sequence_stride``, the signal reflect-padded by
    ``fft_length // 2`` on both ends (centred frames), ``|STFT| ** mag_exp`` mapped onto
    ``num_mel_bins`` mel bands between ``min_freq`` and ``max_freq`` (default Nyquist); with
    ``power_to_db`` in decibels relative to ``ref_power``, floored at ``min_power`` and at
    ``top_db`` below the example's peak (Keras 3 takes the peak over the whole batch, so an
    example's output there depends on the others). Output ``(batch, num_mel_bins, frames)``."""

    def __init__(self, fft_length=2048, sequence_stride=512, sequence_length=None, window="hann", sampling_rate=16000,
                 num_mel_bins=128, min_freq=20.0, max_freq=None, power_to_db=True, top_db=80.0, mag_exp=2.0,
                 min_power=1e-10, ref_power=1.0, **kwargs):
        super().__init__(**kwargs)
        cls = "MelSpectrogram"
        self.fft_length = checks.positive_int(fft_length, "fft_length", cls)
        self.sequence_stride = checks.positive_int(sequence_stride, "sequence_stride", cls)
        self.sequence_length = sequence_length or fft_length
        if not isinstance(self.sequence_length, int) or not 0 < self.sequence_length <= self.fft_length:
            raise LayerConfigError(
                f"{cls}: sequence_length must be None or an integer in [1, fft_length={fft_length}], received "
                f"{sequence_length!r}."
            )
        self.window = _check_window(window, cls)
        self.sampling_rate = sampling_rate
        self.num_mel_bins = checks.positive_int(num_mel_bins, "num_mel_bins", cls)
        self.min_freq = min_freq
        self.max_freq = max_freq or int(sampling_rate / 2)
        self.power_to_db = bool(power_to_db)
        self.top_db, self.mag_exp, self.min_power, self.ref_power = top_db, mag_exp, min_power, ref_power
        self.input_spec = InputSpec(ndim=2, hint=f"{cls} takes audio (batch, samples).")

    def call(self, inputs):
        signals = inputs.astype(jnp.float32)
        half = self.fft_length // 2
        padded = jnp.pad(signals, ((0, 0), (half, half)), mode="reflect")
        count = (padded.shape[1] - self.fft_length) // self.sequence_stride + 1
        starts = np.arange(count) * self.sequence_stride
        frames = padded[:, starts[:, None] + np.arange(self.fft_length)[None, :]]  # (batch, frames, fft_length)
        left = (self.fft_length - self.sequence_length) // 2
        taps = np.zeros(self.fft_length)
        taps[left:left + self.sequence_length] = window_values(self.window, self.sequence_length, periodic=True)
        spectrum = jnp.fft.rfft(frames * jnp.asarray(taps, jnp.float32), n=self.fft_length)
        power = (jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2) ** (self.mag_exp / 2.0)
        matrix = mel_weight_matrix(self.num_mel_bins, spectrum.shape[-1], self.sampling_rate, self.min_freq,
                                   self.max_freq)
        mel = jnp.tensordot(power, jnp.asarray(matrix, jnp.float32), axes=1)
        if self.power_to_db:
            mel = 10.0 * jnp.log10(jnp.maximum(mel, self.min_power))
            mel = mel - 10.0 * math.log10(max(abs(self.ref_power), self.min_power))
            if self.top_db is not None:
                mel = jnp.maximum(mel, jnp.max(mel, axis=(1, 2), keepdims=True) - self.top_db)
        return jnp.swapaxes(mel, 1, 2).astype(self.compute_dtype)

    def get_config(self):
        return super().get_config() | {
            "fft_length": self.fft_length,
            "sequence_stride": self.sequence_stride,
            "sequence_length": self.sequence_length,
            "window": self.window,
            "sampling_rate": self.sampling_rate,
            "num_mel_bins": self.num_mel_bins,
            "min_freq": self.min_freq,
            "max_freq": self.max_freq,
            "power_to_db": self.power_to_db,
            "top_db": self.top_db,
            "mag_exp": self.mag_exp,
            "min_power": self.min_power,
            "ref_power": self.ref_power,
        }
