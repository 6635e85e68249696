"""Augmentation policies built from a bank of image operations, active only in training:
RandAugment and AugMix (Keras 3's names and arguments).

The bank holds the operations Keras 3 uses, all of strength ``factor``: shear, translation and
rotation (geometric), then posterization, solarization, auto-contrast and equalization, and,
for RandAugment and ``AugMix(all_ops=True)``, brightness, colour degeneration, contrast and
sharpness. Input ``(batch, rows, cols, channels)`` (or channels first) with pixel values in
``value_range``; output the same shape in the compute dtype. Unlike Keras 3, which picks the
operations once per batch (RandAugment) or once per trace (AugMix), kfunc draws them for each
image from the step's key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from kfunc.errors import LayerConfigError
from kfunc.layers import checks
from kfunc.layers.augmentation import (
    RandomBrightness,
    RandomContrast,
    RandomImageLayer,
    RandomRotation,
    RandomTranslation,
    _value_range,
)
from kfunc.layers.color_augmentation import (
    RandomColorDegeneration,
    RandomPosterization,
    RandomSharpness,
    Solarization,
    bounded_factor,
)
from kfunc.layers.geometric_augmentation import RandomShear
from kfunc.layers.image_statistics import AutoContrast, Equalization
from kfunc.layers.image_transform import INTERPOLATIONS


def operation_bank(factor, value_range, interpolation: str, data_format: str, *, all_ops: bool) -> list:
    """The operations, each a function ``(images, key) -> images``, Keras 3's order."""
    common = {"data_format": data_format}
    random_layers = [
        RandomShear(x_factor=factor, y_factor=factor, interpolation=interpolation, **common),
        RandomTranslation(height_factor=factor, width_factor=factor, interpolation=interpolation, **common),
        RandomRotation(factor=factor, interpolation=interpolation, **common),
    ]
    tail = [
        RandomPosterization(max(1, int(8 * factor[1])), value_range=value_range, **common),
        Solarization(addition_factor=factor, threshold_factor=factor, value_range=value_range, **common),
    ]
    colour = [
        RandomBrightness(factor, value_range=value_range, data_format=data_format),
        RandomColorDegeneration(factor, value_range=value_range, **common),
        RandomContrast(factor, value_range=value_range, data_format=data_format),
        RandomSharpness(factor, value_range=value_range, **common),
    ] if all_ops else []
    operations = [layer.augment for layer in random_layers + tail]
    auto_contrast = AutoContrast(value_range=value_range, **common)
    equalization = Equalization(value_range=value_range, **common)
    operations.append(lambda images, key: auto_contrast.call(images))
    operations.append(lambda images, key: equalization.call(images, training=True))
    return operations + [layer.augment for layer in colour]


def apply_one_per_image(operations: list, images, choices, key):
    """Each image through the operation ``choices (batch,)`` names (an index into
    ``operations``; ``len(operations)`` leaves the image as it is)."""
    outcomes = [op(images, jax.random.fold_in(key, index)) for index, op in enumerate(operations)] + [images]
    stacked = jnp.stack(outcomes)  # (operations + 1, batch, ...)
    return jnp.take_along_axis(stacked, choices.reshape((1, -1) + (1,) * (images.ndim - 1)), axis=0)[0]


class _PolicyLayer(RandomImageLayer):
    def __init__(self, value_range, factor, interpolation, seed, data_format, **kwargs):
        super().__init__(seed, data_format, **kwargs)
        cls = type(self).__name__
        self.value_range = _value_range(value_range, cls)
        self.factor = bounded_factor(factor, "factor", cls, 0.0, 1.0)
        self.interpolation = checks.one_of(interpolation, tuple(INTERPOLATIONS), "interpolation", cls)

    def get_config(self):
        return super().get_config() | {
            "value_range": self.value_range,
            "factor": self.factor,
            "interpolation": self.interpolation,
        }


def _positive_int(value, argument: str, layer_class: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LayerConfigError(f"{layer_class}: {argument} must be a positive integer, received {value!r}.")
    return value


class RandAugment(_PolicyLayer):
    """Applies ``num_ops`` operations in a row, each drawn uniformly per image from the bank
    (``factor``: a number ``f`` gives strengths in ``[0, f]``; a pair within [0, 1])."""

    def __init__(self, value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear", seed=None,
                 data_format=None, **kwargs):
        super().__init__(value_range, factor, interpolation, seed, data_format, **kwargs)
        self.num_ops = _positive_int(num_ops, "num_ops", "RandAugment")

    def augment(self, images, key):
        operations = operation_bank(self.factor, self.value_range, self.interpolation, self.data_format,
                                    all_ops=True)

        def one_step(images, step_key):
            choice_key, op_key = jax.random.split(step_key)
            choices = jax.random.randint(choice_key, (images.shape[0],), 0, len(operations))
            return apply_one_per_image(operations, images, choices, op_key), None

        # A scan traces the bank once, however many operations are applied.
        images, _ = lax.scan(one_step, images, jax.random.split(key, self.num_ops))
        return images

    def get_config(self):
        return super().get_config() | {"num_ops": self.num_ops}


class AugMix(_PolicyLayer):
    """Mixes ``num_chains`` augmented copies of each image: each chain applies ``chain_depth``
    steps, each an operation of the bank or nothing, drawn per image; the chains are averaged
    with Dirichlet(``alpha``) weights, and the mix is blended with the original image by a
    Beta(``alpha``, ``alpha``) weight, then clipped to ``value_range``. ``all_ops=False`` leaves
    the colour operations (brightness, colour, contrast, sharpness) out of the bank."""

    def __init__(self, value_range=(0, 255), num_chains=3, chain_depth=3, factor=0.3, alpha=1.0, all_ops=True,
                 interpolation="bilinear", seed=None, data_format=None, **kwargs):
        super().__init__(value_range, factor, interpolation, seed, data_format, **kwargs)
        self.num_chains = _positive_int(num_chains, "num_chains", "AugMix")
        self.chain_depth = _positive_int(chain_depth, "chain_depth", "AugMix")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise LayerConfigError(f"AugMix: alpha must be a positive number, received {alpha!r}.")
        self.alpha = alpha
        self.all_ops = bool(all_ops)

    def augment(self, images, key):
        operations = operation_bank(self.factor, self.value_range, self.interpolation, self.data_format,
                                    all_ops=self.all_ops)
        batch = images.shape[0]
        mix_key, blend_key, chains_key = jax.random.split(key, 3)
        chain_weights = jax.random.dirichlet(mix_key, jnp.full((self.num_chains,), float(self.alpha)), (batch,))
        blend = jax.random.beta(blend_key, self.alpha, self.alpha, (batch,))

        def one_step(chains, step_key):
            choice_key, op_key = jax.random.split(step_key)
            # One more choice than operations: the step may do nothing.
            choices = jax.random.randint(choice_key, (chains.shape[0],), 0, len(operations) + 1)
            return apply_one_per_image(operations, chains, choices, op_key), None

        # The chains run side by side as one batch (chain-major), and a scan over the depth traces
        # the bank once.
        chains = jnp.concatenate([images] * self.num_chains)
        chains, _ = lax.scan(one_step, chains, jax.random.split(chains_key, self.chain_depth))
        chains = chains.reshape((self.num_chains, batch) + images.shape[1:])
        mixed = jnp.einsum("bc,cb...->b...", chain_weights.astype(images.dtype), chains)
        blend = blend.reshape((-1,) + (1,) * (images.ndim - 1)).astype(images.dtype)
        return jnp.clip(blend * images + (1 - blend) * mixed, *self.value_range)

    def get_config(self):
        return super().get_config() | {
            "num_chains": self.num_chains,
            "chain_depth": self.chain_depth,
            "alpha": self.alpha,
            "all_ops": self.all_ops,
        }
