"""``kfunc.optimizers.schedules``: Keras 3's learning-rate schedules (defined in
``kfunc.train.optimizers.schedules``, next to the optimizers that evaluate them)."""

from kfunc.train.optimizers.schedules import *  # noqa: F403
from kfunc.train.optimizers.schedules import BUILTIN_SCHEDULES, __all__  # noqa: F401
