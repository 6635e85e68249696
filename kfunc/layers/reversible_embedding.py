"""ReversibleEmbedding (Keras 3): an Embedding that can also map vectors back to logits over
its vocabulary, as the tied input and output embeddings of a language model.

``layer(ids)``: ids ``(batch, ...)`` -> vectors ``(batch, ..., output_dim)``, as ``Embedding``.
``layer(vectors, reverse=True)``: ``(batch, ..., output_dim)`` -> logits ``(batch, ...,
input_dim)``, the product with the transposed embedding table (``tie_weights=True``) or with a
separate ``reverse_embeddings (output_dim, input_dim)`` weight (``tie_weights=False``).
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.errors import LayerConfigError
from kfunc.layers.core import Embedding


class ReversibleEmbedding(Embedding):
    """``reverse_dtype``: dtype of the reverse product (e.g. ``'float32'`` under a bfloat16
    policy); ``logit_soft_cap``: when set, logits become ``cap * tanh(logits / cap)``. The output
    of a forward call carries ``mask_zero``'s mask; a reverse call's carries none."""

    def __init__(self, input_dim, output_dim, tie_weights=True, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False, reverse_dtype=None,
                 logit_soft_cap=None, quantization_config=None, **kwargs):
        if quantization_config is not None:
            raise LayerConfigError(
                "ReversibleEmbedding: kfunc does not quantize layers; received quantization_config="
                f"{quantization_config!r}, pass None (the default)."
            )
        super().__init__(input_dim, output_dim, embeddings_initializer=embeddings_initializer,
                         embeddings_regularizer=embeddings_regularizer, embeddings_constraint=embeddings_constraint,
                         mask_zero=mask_zero, **kwargs)
        self.tie_weights = bool(tie_weights)
        self.reverse_dtype = None if reverse_dtype is None else jnp.dtype(reverse_dtype).name
        if logit_soft_cap is not None and (isinstance(logit_soft_cap, bool) or not isinstance(
                logit_soft_cap, (int, float)) or logit_soft_cap <= 0):
            raise LayerConfigError(
                f"ReversibleEmbedding: logit_soft_cap must be None or a positive number, received {logit_soft_cap!r}."
            )
        self.logit_soft_cap = logit_soft_cap

    def build(self, input_shape):
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                "reverse_embeddings", (self.output_dim, self.input_dim), self.embeddings_initializer
            )

    def call(self, inputs, reverse=False):
        if not reverse:
            return super().call(inputs)
        kernel = self.embeddings.value.T if self.tie_weights else self.reverse_embeddings.value
        dtype = self.reverse_dtype or self.compute_dtype
        logits = jnp.matmul(inputs.astype(dtype), kernel.astype(dtype))
        if self.logit_soft_cap is not None:
            logits = jnp.tanh(logits / self.logit_soft_cap) * self.logit_soft_cap
        return logits

    def _masked_call(self, args, kwargs, previous_mask):
        outputs, mask = super()._masked_call(args, kwargs, previous_mask)
        return outputs, None if kwargs.get("reverse") else mask

    def get_config(self):
        config = super().get_config()
        config.pop("input_length")  # an Embedding argument Keras 3's ReversibleEmbedding does not save
        # Keras 3 always saves these two (kfunc never quantizes).
        config |= {"activity_regularizer": self.activity_regularizer, "quantization_config": None}
        return config | {
            "tie_weights": self.tie_weights,
            "reverse_dtype": self.reverse_dtype,
            "logit_soft_cap": self.logit_soft_cap,
        }
