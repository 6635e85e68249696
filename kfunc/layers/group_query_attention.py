"""GroupQueryAttention (Ainslie et al., 2023): Keras 3's ``GroupedQueryAttention`` layer.

``num_query_heads`` query heads share ``num_key_value_heads`` key and value heads (each key/value
head serves ``num_query_heads // num_key_value_heads`` query heads); ``num_key_value_heads == 1`` is
multi-query attention, ``== num_query_heads`` is multi-head attention. It is ``MultiHeadAttention``
(masks, causal and sliding-window masks, dropout, gate, the call signature
``(query, value, key=None, ...)``) with smaller key and value projections whose heads are repeated
before the scores. Weights, in Keras's order: ``query`` kernel ``(dim, num_query_heads, head_dim)``,
``key`` and ``value`` kernels ``(dim_k or dim_v, num_key_value_heads, head_dim)``, (``gate`` like
``query``,) ``attention_output`` kernel ``(num_query_heads, head_dim, dim)``, each with a bias of its
output axes when ``use_bias``. Output ``(batch, T, dim)``; scores ``(batch, num_query_heads, T, S)``.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.errors import LayerConfigError
from kfunc.layers import checks
from kfunc.layers.multi_head_attention import MultiHeadAttention, _Projection


class GroupQueryAttention(MultiHeadAttention):
    """Grouped-query attention; see the module docstring. Calls as ``layer(query, value, key=None,
    query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
    return_attention_scores=False, training=None, use_causal_mask=False)``."""

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, dropout=0.0, use_bias=True,
                 sliding_window=None, flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, use_gate=False, seed=None,
                 **kwargs):
        cls = "GroupQueryAttention"
        self.num_key_value_heads = checks.positive_int(num_key_value_heads, "num_key_value_heads", cls)
        num_query_heads = checks.positive_int(num_query_heads, "num_query_heads", cls)
        if num_query_heads % self.num_key_value_heads:
            raise LayerConfigError(
                f"{cls}: num_query_heads ({num_query_heads}) must be a multiple of num_key_value_heads "
                f"({self.num_key_value_heads}); each key/value head serves the same number of query heads."
            )
        if flash_attention:
            raise LayerConfigError(
                f"{cls}(flash_attention=True) is not supported by kfunc: attention is computed with XLA "
                "einsums; leave flash_attention=None."
            )
        super().__init__(num_query_heads, head_dim, dropout=dropout, use_bias=use_bias, sliding_window=sliding_window,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, use_gate=use_gate, seed=seed, **kwargs)

    @property
    def head_dim(self) -> int:
        return self.key_dim

    @property
    def num_query_heads(self) -> int:
        return self.num_heads

    @property
    def num_repeats(self) -> int:
        return self.num_heads // self.num_key_value_heads

    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        key_shape = value_shape if key_shape is None else key_shape
        common = {
            "use_bias": self.use_bias, "dtype": self.dtype_policy,
            "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
            "kernel_regularizer": self.kernel_regularizer, "bias_regularizer": self.bias_regularizer,
            "kernel_constraint": self.kernel_constraint, "bias_constraint": self.bias_constraint,
        }
        # Reassigned in place: the sublayers keep Keras's order (query, key, gate, value, output).
        heads = (self.num_key_value_heads, self.head_dim)
        self.key_dense = _Projection(1, heads, name="key", **common)
        self.value_dense = _Projection(1, heads, name="value", **common)
        self.key_dense._build_from(tuple(key_shape))
        self.value_dense._build_from(tuple(value_shape))

    def _project(self, dense, inputs):
        """A projection ``(batch, S, heads, head_dim)``; key and value heads repeated so that each
        query head meets its group's key and value head."""
        outputs = dense._call_arrays((inputs,), {})
        if dense is self.key_dense or dense is self.value_dense:
            outputs = jnp.repeat(outputs, self.num_repeats, axis=-2)
        return outputs

    def get_config(self):
        config = super().get_config()
        for key in ("num_heads", "key_dim", "value_dim", "output_shape", "attention_axes"):
            config.pop(key)
        return config | {
            "head_dim": self.head_dim,
            "num_query_heads": self.num_query_heads,
            "num_key_value_heads": self.num_key_value_heads,
        }


GroupedQueryAttention = GroupQueryAttention  # Keras's class name; GroupQueryAttention is its export
