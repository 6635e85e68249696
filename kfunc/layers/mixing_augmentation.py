"""Augmentation that mixes the images of a batch, active only in training: MixUp and CutMix
(Keras 3's names and arguments).

Input ``(batch, rows, cols, channels)`` (or channels first), output the same shape in the
compute dtype. Each image is mixed with another image of the same batch, chosen by one random
permutation of the batch per step. kfunc layers see only the images: unlike Keras 3, which also
mixes the ``"labels"`` of a dict input by the same weights, the labels given to ``fit`` are not
mixed (a model's layers never see the labels).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kfunc.errors import LayerConfigError
from kfunc.layers.augmentation import RandomImageLayer
from kfunc.layers.color_augmentation import bounded_factor
from kfunc.layers.region_augmentation import box_masks


class MixUp(RandomImageLayer):
    """``w * image + (1 - w) * other``, with ``w`` drawn per image from Beta(``alpha``, ``alpha``)
    and ``other`` the image a random permutation of the batch puts in its place."""

    def __init__(self, alpha=0.2, data_format=None, seed=None, **kwargs):
        super().__init__(seed, data_format, **kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise LayerConfigError(f"MixUp: alpha must be a positive number, received {alpha!r}.")
        self.alpha = alpha

    def augment(self, images, key):
        permutation_key, weight_key = jax.random.split(key)
        batch = images.shape[0]
        others = images[jax.random.permutation(permutation_key, batch)]
        weights = jax.random.beta(weight_key, self.alpha, self.alpha, (batch,)).astype(images.dtype)
        weights = weights.reshape((-1, 1, 1, 1))
        return weights * images + (1.0 - weights) * others

    def get_config(self):
        return super().get_config() | {"alpha": self.alpha}


class CutMix(RandomImageLayer):
    """Pastes into each image a box cut from another image of the batch (a random permutation).
    The box covers a fraction ``1 - w`` of the image on average, ``w`` drawn per image from
    Beta(a, a), ``a`` drawn once per step from ``factor`` (a number ``f``: ``[0, f]``; a pair within
    [0, 1]); the box's sides are ``sqrt(1 - w)`` of the image's."""

    def __init__(self, factor=1.0, seed=None, data_format=None, **kwargs):
        super().__init__(seed, data_format, **kwargs)
        self.factor = bounded_factor(factor, "factor", "CutMix", 0.0, 1.0)

    def augment(self, images, key):
        alpha_key, weight_key, box_key, permutation_key = jax.random.split(key, 4)
        batch = images.shape[0]
        # 1e-6 keeps the Beta distribution's parameter positive, as in Keras 3.
        alpha = jax.random.uniform(alpha_key, (), minval=self.factor[0], maxval=self.factor[1]) + 1e-6
        weights = jax.random.beta(weight_key, alpha, alpha, (batch,))
        sides = jnp.repeat(jnp.sqrt(1.0 - weights)[:, None], 2, axis=1)
        masks = box_masks(images, self.data_format, sides, box_key)
        others = images[jax.random.permutation(permutation_key, batch)]
        return jnp.where(masks, others, images)

    def get_config(self):
        return super().get_config() | {"factor": self.factor}
