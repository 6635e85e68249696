"""AdaptiveAveragePooling1D/2D/3D and AdaptiveMaxPooling1D/2D/3D: pool
``(batch, *spatial, channels)`` (or channels first) to a fixed ``output_size`` whatever the input's
spatial size; the bins are ``kfunc.ops.adaptive_average_pool``'s."""

from __future__ import annotations

from kfunc.layers import checks
from kfunc.layers.base import Layer
from kfunc.layers.conv import check_data_format
from kfunc.layers.input_spec import InputSpec
from kfunc.ops.nn.adaptive_pooling import adaptive_average_pool, adaptive_max_pool


class BaseAdaptivePooling(Layer):
    """``output_size``: an int (the same for every spatial axis) or one per spatial axis."""

    rank = 2
    pool = staticmethod(adaptive_average_pool)

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.output_size = checks.int_tuple(output_size, self.rank, "output_size", name)
        self.data_format = check_data_format(data_format, name)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def call(self, inputs):
        return type(self).pool(inputs, self.output_size, data_format=self.data_format)

    def get_config(self):
        return super().get_config() | {"output_size": self.output_size, "data_format": self.data_format}


class AdaptiveAveragePooling1D(BaseAdaptivePooling):
    rank = 1


class AdaptiveAveragePooling2D(BaseAdaptivePooling):
    rank = 2


class AdaptiveAveragePooling3D(BaseAdaptivePooling):
    rank = 3


class AdaptiveMaxPooling1D(BaseAdaptivePooling):
    rank, pool = 1, staticmethod(adaptive_max_pool)


class AdaptiveMaxPooling2D(BaseAdaptivePooling):
    rank, pool = 2, staticmethod(adaptive_max_pool)


class AdaptiveMaxPooling3D(BaseAdaptivePooling):
    rank, pool = 3, staticmethod(adaptive_max_pool)
