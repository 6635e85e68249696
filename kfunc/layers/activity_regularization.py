"""ActivityRegularization: the identity, with an L1/L2 penalty on its output added to the loss."""

from __future__ import annotations

from kfunc.layers.base import Layer
from kfunc.regularizers import L1L2


class ActivityRegularization(Layer):
    """Returns its inputs unchanged and adds ``l1 * sum(|x|) + l2 * sum(x ** 2)`` of them, divided
    by the batch size, to the training loss (Keras's activity regularization). Any shape."""

    _passes_masks = True

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)  # derived from l1 and l2
        regularizer = L1L2(l1=l1, l2=l2)
        super().__init__(activity_regularizer=regularizer, **kwargs)
        self.l1, self.l2 = regularizer.l1, regularizer.l2

    def call(self, inputs):
        return inputs

    def get_config(self):
        config = super().get_config() | {"l1": self.l1, "l2": self.l2}
        config.pop("activity_regularizer", None)
        return config
