"""Scaled dot-product attention of ``keras.ops.nn`` (the core of multi-head attention).

``query``: ``(batch, target_length, heads, depth)``; ``key``: ``(batch, source_length, key_heads,
depth)``; ``value``: ``(batch, source_length, key_heads, value_depth)``. ``heads`` must be a
multiple of ``key_heads`` (grouped-query attention shares each key/value head between
``heads // key_heads`` query heads). Result: ``(batch, target_length, heads, value_depth)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from kfunc.ops.arrays import as_array
from kfunc.ops.operation import operation


def _check_ranks(query, key, value):
    if query.ndim != 4 or key.ndim != 4 or value.ndim != 4:
        raise ValueError(
            "kfunc.ops.dot_product_attention expects 4-D query, key and value (batch, length, heads, depth), "
            f"received shapes {tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}; add the heads "
            "axis with ops.expand_dims(x, 2) for single-head attention."
        )
    if query.shape[2] % key.shape[2]:
        raise ValueError(
            f"kfunc.ops.dot_product_attention: the {query.shape[2]} query heads must be a multiple of the "
            f"{key.shape[2]} key heads (query shape {tuple(query.shape)}, key shape {tuple(key.shape)})."
        )


@operation("dot_product_attention")
def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False,
                          flash_attention=None, attn_logits_soft_cap=None):
    """``softmax(query @ key^T * scale + bias, masked) @ value`` per head (shapes in the module
    docstring).

    ``bias`` (added to the logits) and ``mask`` (booleans, False hides a key) broadcast to
    ``(batch, heads, target_length, source_length)`` (NumPy broadcasting); ``scale`` defaults to
    ``1 / sqrt(depth)``; ``is_causal`` hides the keys after each query position. The softmax runs
    in float32 whatever the input dtype. ``flash_attention=True`` asks for cuDNN's fused kernel
    (GPU only, key and value depths equal, 4-D bias and mask; JAX says why when it cannot be
    used), otherwise the computation is written out for XLA.
    """
    if attn_logits_soft_cap is not None:
        raise ValueError(
            "kfunc.ops.dot_product_attention: attn_logits_soft_cap exists only in Keras's TPU Splash kernel, "
            f"which kfunc does not use; received attn_logits_soft_cap={attn_logits_soft_cap!r}, pass None."
        )
    query, key, value = as_array(query), as_array(key), as_array(value)
    _check_ranks(query, key, value)
    dtype = jnp.result_type(query.dtype, key.dtype, value.dtype)
    query, key, value = query.astype(dtype), key.astype(dtype), value.astype(dtype)
    if bias is not None:
        bias = as_array(bias, dtype)
    if mask is not None:
        mask = as_array(mask).astype(bool)
    if flash_attention:
        return jax.nn.dot_product_attention(query, key, value, bias=bias, mask=mask, scale=scale,
                                            is_causal=is_causal, implementation="cudnn")
    batch, target_length, heads, depth = query.shape
    key_heads, source_length = key.shape[2], key.shape[1]
    groups = heads // key_heads
    scale = 1.0 / math.sqrt(depth) if scale is None else scale
    grouped = query.reshape(batch, target_length, key_heads, groups, depth)
    logits = jnp.einsum("btkgh,bskh->bkgts", grouped, key, preferred_element_type=jnp.promote_types(dtype, jnp.float32))
    logits = logits * jnp.asarray(scale, logits.dtype)
    full = (batch, heads, target_length, source_length)
    grouped_full = (batch, key_heads, groups, target_length, source_length)
    if bias is not None:
        logits = logits + jnp.broadcast_to(bias, full).reshape(grouped_full).astype(logits.dtype)
    keep = None if mask is None else jnp.broadcast_to(mask, full).reshape(grouped_full)
    if is_causal:
        causal = jnp.tril(jnp.ones((target_length, source_length), bool))
        keep = causal if keep is None else keep & causal
    if keep is not None:  # a large finite negative, so a fully masked row stays finite (uniform weights)
        logits = jnp.where(keep, logits, jnp.asarray(-0.7 * jnp.finfo(logits.dtype).max, logits.dtype))
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(key.dtype)
    encoded = jnp.einsum("bkgts,bskh->btkgh", weights, value)
    return encoded.reshape(batch, target_length, heads, value.shape[-1])

__all__ = ["dot_product_attention"]
