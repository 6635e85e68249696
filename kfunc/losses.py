"""``kfunc.losses``: Keras's losses as per-sample functions and configurable classes."""

from kfunc.train.losses import *  # noqa: F403
from kfunc.train.losses import LOSSES, Loss, get, name_of  # noqa: F401
