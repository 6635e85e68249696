"""Pipeline: a list of layers applied in order (Keras 3's ``keras.layers.Pipeline``), e.g. a
chain of augmentation layers used as one layer. Input and output are whatever the first layer
takes and the last returns."""

from __future__ import annotations

from kfunc.errors import LayerConfigError
from kfunc.layers.base import Layer


class Pipeline(Layer):
    """Calls ``layers`` one after the other; ``training`` (and the random key) reach each of them.
    The pipeline's weights are its layers' weights."""

    def __init__(self, layers, name=None, **kwargs):
        if not isinstance(layers, (list, tuple)) or not all(isinstance(layer, Layer) for layer in layers):
            raise LayerConfigError(
                f"Pipeline: layers must be a list of layers, received {layers!r}; pass e.g. "
                "Pipeline([RandomFlip(), RandomRotation(0.1)])."
            )
        super().__init__(name=name, **kwargs)
        self.layers = list(layers)

    @property
    def uses_key(self) -> bool:
        return any(layer.uses_key for layer in self.layers)

    def build(self, input_shape):
        # Each layer is built for the shape the previous one returns.
        shape = tuple(input_shape)
        for layer in self.layers:
            if not layer.built:
                layer._build_from(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=False):
        for layer in self.layers:
            inputs = layer._call_arrays((inputs,), {"training": training})
        return inputs

    def get_config(self):
        # Keras 3's Pipeline saves only its layers and name.
        return {"layers": list(self.layers), "name": self.name}
