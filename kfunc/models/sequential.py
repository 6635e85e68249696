"""Sequential: a Model built by stacking single-input, single-output layers with ``add``.

The input comes from ``input_shape=`` on the first layer, an ``Input(...)`` tensor or
``InputLayer`` added first, or, failing those, from the first data or tensor the model meets
(as in Keras 3): ``compile`` works before that; ``fit`` / ``evaluate`` / ``predict``, a call on
arrays or on symbolic tensors, and ``build(input_shape)`` build the model.
"""

from __future__ import annotations

import numpy as np

from kfunc.errors import GraphError, LayerInputTypeError
from kfunc.graph.tensor import SymbolicTensor
from kfunc.layers.base import Layer
from kfunc.layers.input import Input, InputLayer
from kfunc.models.functional import Model


class Sequential(Model):
    """``Sequential([Dense(64, input_shape=(784,)), Dense(10)])`` or ``model.add(layer)``."""

    def __init__(self, layers=None, *, name=None, trainable=True, **kwargs):
        Layer.__init__(self, name=name, trainable=trainable, **kwargs)
        self._stack: list[Layer] = []
        self._input_tensor: SymbolicTensor | None = None
        self._last_output: SymbolicTensor | None = None
        self._stack_outputs: list[SymbolicTensor] = []  # this model's output of each stacked layer
        self._compiled_cache = {}
        self._graph_stale = True
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        """Append a layer; the first may be an ``Input(...)`` tensor or an ``InputLayer``."""
        if isinstance(layer, SymbolicTensor) and layer.layer.is_input_layer:
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._stack or self._input_tensor is not None:
                raise GraphError(f"Sequential '{self.name}': an input can only be added first.")
            self._input_tensor = self._last_output = layer.output
            self._graph_changed()
            return
        if not isinstance(layer, Layer):
            raise LayerInputTypeError(
                f"Sequential '{self.name}'.add expects a layer, received {type(layer).__name__} {layer!r}."
            )
        if self._input_tensor is None and not self._stack and layer._batch_input_shape is not None:
            shape = layer._batch_input_shape
            self._input_tensor = self._last_output = Input(batch_shape=shape)
        self._stack.append(layer)
        if self._last_output is not None:
            self._last_output = self._connect(layer, self._last_output)
        self._graph_changed()

    def _connect_all(self) -> None:
        """Call every stacked layer in turn on the input tensor, recording this model's outputs."""
        self._stack_outputs = []
        self._last_output = self._input_tensor
        for layer in self._stack:
            self._last_output = self._connect(layer, self._last_output)

    def _connect(self, layer: Layer, tensor: SymbolicTensor) -> SymbolicTensor:
        output = layer(tensor)
        if isinstance(output, SymbolicTensor):
            self._stack_outputs.append(output)
        if not isinstance(output, SymbolicTensor):
            raise GraphError(
                f"Sequential '{self.name}': layer '{layer.name}' ({type(layer).__name__}) returns "
                f"{len(output)} outputs; Sequential layers must return one tensor. Use the functional API."
            )
        return output

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._stack:
            raise GraphError(f"Sequential '{self.name}' has no layers to pop.")
        layer = self._stack.pop()
        # Only this model's graph changes: the popped layer keeps its nodes (another model may
        # share the layer), and the new last output is this model's own tensor.
        if self._last_output is not None:
            self._stack_outputs.pop()
            self._last_output = self._stack_outputs[-1] if self._stack_outputs else self._input_tensor
        self._graph_changed()
        return layer

    def _graph_changed(self) -> None:
        self.built = self._input_tensor is not None and bool(self._stack)
        self._graph_stale = True
        self._compiled_cache = {}

    def _graph(self):
        if self._graph_stale:
            self._ensure_graph()
        return self._graph_cache

    def _ensure_graph(self) -> None:
        if self._input_tensor is None:
            raise GraphError(
                f"Sequential '{self.name}' does not know its input shape yet: give the first layer "
                "input_shape=(...), add an Input(shape=...) first, or call build(input_shape) or fit/predict."
            )
        if not self._stack:
            raise GraphError(f"Sequential '{self.name}' has no layers; add some with .add(layer).")
        self._set_graph(self._input_tensor, self._last_output)
        self._graph_stale = False

    def build(self, input_shape=None, dtype=None) -> None:
        """Create the input (shape with the batch axis, e.g. ``(None, 784)``) and connect the layers."""
        if self._input_tensor is None:
            if input_shape is None:
                raise GraphError(f"Sequential '{self.name}'.build needs input_shape, e.g. (None, 784).")
            shape = (None,) + tuple(input_shape)[1:]
            self._input_tensor = Input(batch_shape=shape, dtype=dtype)
            self._connect_all()
            self._graph_changed()
        self._graph()

    def _build_from(self, input_shape, other_shapes: dict | None = None) -> None:
        self.build(input_shape)

    # A call builds an unbuilt model from its input first (with the input's dtype, so integer ids
    # reach an Embedding as integers).
    def _call_symbolic(self, args: tuple, kwargs: dict):
        self._build_from_data(args[0])
        return super()._call_symbolic(args, kwargs)

    def _call_arrays(self, args, kwargs):
        self._build_from_data(args[0])
        return super()._call_arrays(args, kwargs)

    def _masked_call(self, args, kwargs, previous_mask):
        self._build_from_data(args[0])
        return super()._masked_call(args, kwargs, previous_mask)

    def _build_from_data(self, x) -> None:
        if self._input_tensor is not None:
            return
        first = x[0] if isinstance(x, (list, tuple)) else x
        if isinstance(first, dict) or not hasattr(first, "shape"):
            return  # the data checks will say what is wrong
        dtype = np.dtype(first.dtype)
        self.build(tuple(first.shape), dtype if np.issubdtype(dtype, np.integer) else None)

    @property
    def layers(self) -> list[Layer]:
        """The added layers, without the input layer (as in Keras)."""
        return list(self._stack)

    @property
    def output_names(self) -> list[str]:
        """The last layer's name (known before the model is built, so ``compile`` can pair losses)."""
        if not self._stack:
            raise GraphError(f"Sequential '{self.name}' has no layers; add some with .add(layer).")
        return [self._stack[-1].name]

    @property
    def output_paths(self) -> list[tuple]:
        """One output, the model's output itself (known before the model is built)."""
        return [()]

    @property
    def sublayers(self) -> list[Layer]:
        return list(self._stack)
