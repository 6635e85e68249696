"""``kfunc.metrics``: Keras 3's metrics (``Metric`` to subclass, the built-in classes, ``get``)."""

from kfunc.train.metrics import *  # noqa: F403
from kfunc.train.metrics import METRICS, Metric, get, resolve  # noqa: F401
