"""``kfunc.losses``: Keras 3's loss functions and classes, ``Loss`` to subclass, ``get``."""

from kfunc.train.losses import *  # noqa: F403
from kfunc.train.losses import LOSSES, Loss, LossFunctionWrapper, get, name_of  # noqa: F401
