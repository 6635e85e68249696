"""``pad_sequences``: sequences of different lengths as one ``(samples, maxlen, ...)`` array."""

from __future__ import annotations

import numpy as np

from kfunc.errors import ArgumentError

_SIDES = ("pre", "post")


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """A NumPy array ``(len(sequences), maxlen, *step_shape)`` of ``dtype``: each sequence cut to its
    last (``truncating="pre"``) or first (``"post"``) ``maxlen`` steps, and filled with ``value``
    before (``padding="pre"``) or after (``"post"``) it. ``maxlen`` defaults to the longest
    sequence; ``step_shape`` is that of the first non-empty sequence's steps (Keras 3's rules)."""
    if padding not in _SIDES or truncating not in _SIDES:
        raise ArgumentError(
            f"pad_sequences: padding and truncating must be 'pre' or 'post', received padding={padding!r}, "
            f"truncating={truncating!r}."
        )
    if not hasattr(sequences, "__len__"):
        raise ArgumentError(f"pad_sequences expects a list of sequences, received {type(sequences).__name__}.")
    lengths, step_shape = [], None
    for index, sequence in enumerate(sequences):
        if not hasattr(sequence, "__len__"):
            raise ArgumentError(
                f"pad_sequences expects a list of sequences, but item {index} is {type(sequence).__name__} "
                f"{sequence!r:.40}."
            )
        lengths.append(len(sequence))
        if step_shape is None and len(sequence):
            step_shape = np.asarray(sequence).shape[1:]
    step_shape = step_shape or ()
    text_dtype = np.issubdtype(np.dtype(dtype), np.str_) or np.issubdtype(np.dtype(dtype), np.bytes_)
    if isinstance(value, str) and dtype is not object and not text_dtype:
        raise ArgumentError(
            f"pad_sequences: value {value!r} is a string but dtype is {dtype}; pass dtype=object for strings."
        )
    maxlen = max(lengths, default=0) if maxlen is None else int(maxlen)
    padded = np.full((len(lengths), maxlen) + tuple(step_shape), value, dtype=dtype)
    if maxlen == 0:
        return padded
    for index, sequence in enumerate(sequences):
        if not len(sequence):
            continue
        kept = np.asarray(sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen], dtype=dtype)
        if kept.shape[1:] != tuple(step_shape):
            raise ArgumentError(
                f"pad_sequences: the steps of sequence {index} have shape {kept.shape[1:]}, but those of the first "
                f"non-empty sequence have shape {tuple(step_shape)}."
            )
        if padding == "post":
            padded[index, : len(kept)] = kept
        else:
            padded[index, maxlen - len(kept):] = kept
    return padded
