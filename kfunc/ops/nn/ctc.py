"""Connectionist temporal classification of ``keras.ops.nn``: the CTC loss and greedy decoding.

``output`` / ``inputs``: ``(batch, max_time, classes)`` scores (logits; the loss applies
``log_softmax`` itself); ``target``: ``(batch, max_label_length)`` int labels; the lengths
``(batch,)`` say how many steps / labels of each row are real (the rest is padding).
``mask_index`` is the class of the CTC blank.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from kfunc.ops.arrays import as_array
from kfunc.ops.operation import operation


def _padding(lengths, max_length: int, dtype):
    """1.0 at each position at or after the row's length: ``(batch, max_length)``."""
    return (jnp.arange(max_length)[None, :] >= as_array(lengths).astype(jnp.int32)[:, None]).astype(dtype)


@operation("ctc_loss")
def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """The negative log-likelihood of each ``target`` row under ``output``, summed over every
    alignment (shapes in the module docstring); ``(batch,)`` in at least float32."""
    output = as_array(output)
    output = output.astype(jnp.promote_types(output.dtype, jnp.float32))
    target = as_array(target).astype(jnp.int32)
    if output.ndim != 3 or target.ndim != 2:
        raise ValueError(
            "kfunc.ops.ctc_loss expects output (batch, max_time, classes) and target (batch, max_label_length), "
            f"received shapes {tuple(output.shape)} and {tuple(target.shape)}."
        )
    return optax.ctc_loss(
        output, _padding(output_length, output.shape[1], output.dtype), target,
        _padding(target_length, target.shape[1], output.dtype), blank_id=mask_index,
    )


@operation("ctc_decode")
def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1, merge_repeated=True,
               mask_index=0):
    """``(decoded, scores)`` of the best path: ``decoded`` ``(1, batch, max_time)`` int32 labels,
    the path's blanks (and, with ``merge_repeated``, repeats) removed and the rest padded with -1;
    ``scores`` ``(batch, 1)``: minus the sum of the best score of each real step.

    Only ``strategy="greedy"`` (the best class at each step) exists in kfunc; beam search is not
    implemented. ``mask_index=None`` makes the last class the blank.
    """
    if strategy != "greedy":
        raise ValueError(
            f"kfunc.ops.ctc_decode supports strategy='greedy' only (beam search is not implemented in kfunc), "
            f"received strategy={strategy!r}."
        )
    inputs = as_array(inputs)
    inputs = inputs.astype(jnp.promote_types(inputs.dtype, jnp.float32))
    batch, max_time, classes = inputs.shape
    blank = classes - 1 if mask_index is None else mask_index
    padding = _padding(sequence_lengths, max_time, bool)
    best = jnp.where(padding, blank, jnp.argmax(inputs, axis=-1).astype(jnp.int32))
    scores = -jnp.sum(jnp.where(padding, 0, jnp.max(inputs, axis=-1)), axis=1, keepdims=True)
    if merge_repeated:
        repeat = jnp.pad(best[:, 1:] == best[:, :-1], ((0, 0), (1, 0)))
        best = jnp.where(repeat, blank, best)
    kept = best != blank
    # A stable sort on "is dropped" moves the kept labels to the front in their order.
    order = jnp.argsort(~kept, axis=1, stable=True)
    decoded = jnp.where(jnp.take_along_axis(kept, order, axis=1), jnp.take_along_axis(best, order, axis=1), -1)
    return decoded[None], scores


__all__ = ["ctc_loss", "ctc_decode"]
