"""``kfunc.metrics``: pure (init, update, result) metrics with Keras's names."""

from kfunc.train.metrics import *  # noqa: F403
from kfunc.train.metrics import METRICS, Metric, resolve  # noqa: F401
