"""Losses: Keras 3's functions and classes, the ``Loss`` base class, and look-up by name."""

from kfunc.errors import TrainingConfigError  # noqa: F401 (re-exported)
from kfunc.train.losses.classes import *  # noqa: F403
from kfunc.train.losses.classes import BUILTIN_LOSS_CLASSES  # noqa: F401
from kfunc.train.losses.functions import (  # noqa: F401
    binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy, categorical_focal_crossentropy, dice,
    tversky, categorical_hinge, cosine_similarity, hinge, huber,
    kl_divergence, log_cosh, mean_absolute_error, mean_absolute_percentage_error, mean_squared_error,
    mean_squared_logarithmic_error, poisson, sparse_categorical_crossentropy, squared_hinge,
)
from kfunc.train.losses.lookup import (  # noqa: F401
    LOSS_CLASSES, LOSSES, batch_loss, check_trainable, get, masked_total, name_of, per_sample, values_of,
)
from kfunc.train.losses.loss import Loss, LossFunctionWrapper, reduce_weighted, standardize_reduction  # noqa: F401
