"""A model's architecture as a JSON value, and the model rebuilt from it.

Format (values inside ``config`` are encoded as ``kfunc.saving.config_values`` describes)::

    layer spec:      {"class_name": "Dense", "config": {...get_config()...}}
    functional spec: {"class_name": "Functional", "config": {
                         "name": ..., "trainable": ...,
                         "layers": [layer spec + {"inbound_nodes": [{"args": [...], "kwargs": {...}}, ...]}, ...],
                         "inputs": <structure of tensor refs>, "outputs": <structure of tensor refs>}}
    sequential spec: {"class_name": "Sequential", "config": {
                         "name": ..., "trainable": ..., "input_layer": <InputLayer spec or null>,
                         "layers": [layer spec, ...]}}

Each entry of ``inbound_nodes`` is one call of the layer within this model, in call order; its
``args``/``kwargs`` hold the call's arguments with every symbolic tensor as a reference
``[layer_name, node_index, tensor_index]`` (as Keras's functional config). A shared layer has
several entries; a nested model is a layer whose ``config`` is its own functional or sequential
spec. A model cut from intermediate tensors gets an ``InputLayer`` for each such input.

Rebuilding creates each layer from its class (looked up by the registry only) and config, then
calls the layers node by node in an order where every referenced tensor exists (Kahn's algorithm
over the references, so a reference to a missing node or a cycle is an error, never a hang).
"""

from __future__ import annotations

import inspect
from collections import defaultdict, deque

from kfunc.layers.base import Layer
from kfunc.saving import registry
from kfunc.saving.config_values import TAG, Decoder, Encoder, construct
from kfunc.saving.errors import ModelFileError, SavingError
from kfunc.saving.registry import shown

MAX_NESTING = 64


# ---------------------------------------------------------------------- saving
class ModelSerializer:
    """Builds the spec of a model; a layer with weights may appear only once in the whole file."""

    def __init__(self):
        self.encoder = Encoder(self.layer_spec)
        self._seen: set[int] = set()

    def class_name(self, layer) -> str:
        cls = type(layer)
        name = registry.registered_name(cls) or registry.builtin_layer_names().get(cls)
        return name or self.encoder.name_of(cls, f"Layer '{layer.name}'")

    def layer_spec(self, layer) -> dict:
        Model, Sequential = registry.model_classes()
        # A layer without weights (an InputLayer shared by a model and the model nesting it) is
        # simply described twice; one with weights would come back as two sets of weights.
        if id(layer) in self._seen and layer.weights:
            raise SavingError(
                f"Layer '{layer.name}' ({type(layer).__name__}) is part of the model in two places (shared between "
                "nested models, or wrapped and also used directly); a model file cannot express that sharing."
            )
        self._seen.add(id(layer))
        where = f"Layer '{layer.name}' ({type(layer).__name__})"
        if isinstance(layer, Sequential):
            config = self._sequential_config(layer)
        elif isinstance(layer, Model) and getattr(layer, "_graph_network", True):
            config = self._functional_config(layer)
        else:
            config = self.encoder.value(complete_config(layer), where)
        spec = {"class_name": self.class_name(layer), "config": config, "name": layer.name}
        if not getattr(layer, "_graph_network", True):  # a subclassed model: built from its input shapes
            spec["build_config"] = self.encoder.value(layer.get_build_config(), where)
        return spec

    def _sequential_config(self, model) -> dict:
        input_layer = None if model._input_tensor is None else model._input_tensor.layer
        return {
            "name": model.name,
            "trainable": model.trainable,
            "input_layer": None if input_layer is None else self.layer_spec(input_layer),
            "layers": [self.layer_spec(layer) for layer in model._stack],
        }

    def _functional_config(self, model) -> dict:
        graph = model._graph()
        plan = graph.plan
        owner = f"Model '{model.name}'"
        names = {layer.name for layer in plan.layers}
        synthesized, input_refs = [], {}
        for tensor in graph.flat_inputs:
            if tensor.layer.is_input_layer:
                input_refs[id(tensor)] = [tensor.layer.name, 0, 0]
                continue
            name = tensor.name
            while name in names:
                name += "_input"
            names.add(name)
            input_refs[id(tensor)] = [name, 0, 0]
            config = {"name": name, "batch_shape": tensor.shape, "dtype": tensor.dtype.name}
            synthesized.append({"class_name": "InputLayer", "config": self.encoder.value(config, owner), "inbound_nodes": []})
        # A layer's calls keep their relative order (and so their indices, when all of them are in
        # this model): creation order is topological, so rebuilding in that order always works.
        calls = defaultdict(list)
        for node in plan.nodes:
            calls[id(node.layer)].append(node)
        position: dict[int, int] = {}
        for nodes in calls.values():
            nodes.sort(key=lambda node: node.index)
            position.update((id(node), i) for i, node in enumerate(nodes))

        def ref(tensor) -> list:
            if id(tensor) in input_refs:
                return input_refs[id(tensor)]
            node = tensor.node
            index = 0 if node.layer.is_input_layer else position[id(node)]
            return [tensor.layer.name, index, tensor.output_index]

        layers = []
        for layer in plan.layers:
            spec = self.layer_spec(layer)
            where = f"Layer '{layer.name}' ({type(layer).__name__}) in model '{model.name}'"
            spec["inbound_nodes"] = [
                {"args": self.encoder.value(list(node.args), where, ref), "kwargs": self.encoder.value(node.kwargs, where, ref)}
                for node in calls[id(layer)]
            ]
            layers.append(spec)
        return {
            "name": model.name,
            "trainable": model.trainable,
            "layers": synthesized + layers,
            "inputs": self.encoder.value(graph.input_structure, owner, ref),
            "outputs": self.encoder.value(graph.output_structure, owner, ref),
        }


def complete_config(layer) -> dict:
    """``layer.get_config()`` with the base layer settings (name, trainable, dtype ...) its
    ``__init__`` accepts added where the layer's own ``get_config`` left them out (Keras 3 loads
    such layers too). A config that still lacks a required ``__init__`` argument could never be
    loaded, so saving refuses it."""
    config = dict(layer.get_config())
    cls = type(layer)
    accepted, takes_any, required = _init_parameters(cls)
    for key, value in Layer.get_config(layer).items():
        if key not in config and (takes_any or key in accepted):
            config[key] = value
    uses_default_from_config = getattr(cls.from_config, "__func__", None) is Layer.from_config.__func__
    missing = [name for name in required if name not in config]
    if uses_default_from_config and missing:
        raise SavingError(
            f"Layer '{layer.name}' ({cls.__name__}) cannot be saved: its get_config() returns {sorted(config)}, "
            f"without the __init__ argument(s) {missing}, so the saved file could not be loaded; return them "
            "from get_config (e.g. config = super().get_config(); config.update(...))."
        )
    return config


def _init_parameters(cls) -> tuple[set, bool, list]:
    """``(keyword names, takes **kwargs, required names)`` of ``cls.__init__``."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = {p.name for p in parameters if p.kind in kinds}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    required = [p.name for p in parameters if p.kind in kinds and p.default is inspect.Parameter.empty]
    return accepted, takes_any, required


def model_spec(model) -> dict:
    """The JSON-able spec of ``model`` (functional or Sequential, nested to any depth)."""
    return ModelSerializer().layer_spec(model)


# ---------------------------------------------------------------------- loading
def _require(condition: bool, context: str, message: str) -> None:
    if not condition:
        raise ModelFileError(f"{context}: {message}")


class ModelBuilder:
    """Rebuilds layers and models from specs, resolving names through ``resolver`` only."""

    def __init__(self, resolver: registry.Resolver):
        self.decoder = Decoder(resolver, self._tagged_layer)
        self.resolver = resolver

    def _tagged_layer(self, data: dict, context: str, depth: int):
        return self.layer(data, context, depth)

    def layer(self, spec, context: str, depth: int = 0):
        Model, Sequential = registry.model_classes()
        _require(depth <= MAX_NESTING, context, f"layers are nested more than {MAX_NESTING} levels deep.")
        _require(isinstance(spec, dict), context, f"a layer spec must be a JSON object, found {shown(spec)}.")
        class_name = spec.get("class_name")
        config = spec.get("config")
        _require(isinstance(config, dict), context, f"the layer {shown(class_name)} has no config object.")
        context = f"{context} > {shown(config.get('name', class_name), 60)}"
        cls = self.resolver.layer_class(class_name, context=context)
        if issubclass(cls, Sequential):
            return self.sequential(cls, config, context, depth)
        if issubclass(cls, Model) and getattr(cls, "_graph_network", True):
            return self.functional(cls, config, context, depth)
        layer = construct(cls, self.decoder.value(config, context, None, depth), context)
        name = spec.get("name")
        if isinstance(name, str) and name and layer.name != name and not layer.weights:
            layer.name = name  # a get_config without the name: the file's layer references use it
        if spec.get("build_config") is not None:
            try:
                layer.build_from_config(self.decoder.value(spec["build_config"], context, None, depth))
            except Exception as error:
                raise ModelFileError(
                    f"{context}: the model cannot be built from its saved input shapes ({type(error).__name__}: "
                    f"{str(error)[:300]})."
                ) from error
        return layer


    def sequential(self, cls, config: dict, context: str, depth: int = 0):
        """A ``cls`` (Sequential) stacking the layers of a sequential spec config."""
        layers = config.get("layers")
        _require(isinstance(layers, list), context, "a Sequential config needs a list of layers.")
        try:
            # The class itself, not its from_config (which reads a whole graph config).
            model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        except Exception as error:
            raise ModelFileError(f"{context}: the model cannot be created ({type(error).__name__}: {str(error)[:300]}).") from error
        try:
            if config.get("input_layer") is not None:
                model.add(self.layer(config["input_layer"], context, depth + 1))
            for spec in layers:
                model.add(self.layer(spec, context, depth + 1))
        except ModelFileError:
            raise
        except Exception as error:
            raise ModelFileError(f"{context}: the layers cannot be stacked ({type(error).__name__}: {str(error)[:300]}).") from error
        return model

    def functional(self, cls, config: dict, context: str, depth: int = 0):
        """A ``cls`` (Model) over the graph of a functional spec config."""
        specs = config.get("layers")
        _require(isinstance(specs, list), context, "a functional config needs a list of layers.")
        layers, calls = {}, []
        for spec in specs:
            layer = self.layer(spec, context, depth + 1)
            _require(layer.name not in layers, context, f"two layers are named {shown(layer.name)}.")
            layers[layer.name] = layer
            nodes = spec.get("inbound_nodes", [])
            _require(isinstance(nodes, list), context, f"inbound_nodes of {shown(layer.name)} is not a list.")
            _require(not (layer.is_input_layer and nodes), context, f"input layer {shown(layer.name)} has inbound nodes.")
            calls.append((layer, nodes))
        counts = {name: 1 if layer.is_input_layer else 0 for name, layer in layers.items()}
        for layer, nodes in calls:
            counts[layer.name] += len(nodes)
        self._call_nodes(calls, layers, counts, context, depth)

        def tensor(ref):
            return _resolve(ref, layers, context)

        inputs = self.decoder.value(config.get("inputs"), context, tensor, depth)
        outputs = self.decoder.value(config.get("outputs"), context, tensor, depth)
        arguments = {"inputs": inputs, "outputs": outputs, "name": config.get("name"), "trainable": config.get("trainable", True)}
        try:
            return cls(**arguments)
        except Exception as error:
            raise ModelFileError(f"{context}: the model cannot be built ({type(error).__name__}: {str(error)[:300]}).") from error

    def _call_nodes(self, calls, layers: dict, counts: dict, context: str, depth: int) -> None:
        """Call every layer on its inbound nodes, each once its referenced tensors exist."""
        keys = [(layer.name, index) for layer, nodes in calls for index in range(len(nodes))]
        specs = {(layer.name, index): node for layer, nodes in calls for index, node in enumerate(nodes)}
        waiting_on: dict[tuple, int] = {}
        dependents = defaultdict(list)
        for key in keys:
            name, index = key
            needed = {(name, index - 1)} if index else set()
            for ref in _tensor_refs(specs[key]):
                ref_name, ref_node = _check_ref(ref, counts, context)
                needed.add((ref_name, ref_node))
            needed = {d for d in needed if not (layers[d[0]].is_input_layer and d[1] == 0)}
            waiting_on[key] = len(needed)
            for dependency in needed:
                dependents[dependency].append(key)
        ready = deque(key for key in keys if waiting_on[key] == 0)
        done = 0
        while ready:
            key = ready.popleft()
            self._call(layers[key[0]], key[1], specs[key], layers, context, depth)
            done += 1
            for later in dependents.pop(key, []):
                waiting_on[later] -= 1
                if waiting_on[later] == 0:
                    ready.append(later)
        _require(done == len(keys), context, "some layer calls reference tensors that are never computed (a cycle).")

    def _call(self, layer, index: int, spec, layers: dict, context: str, depth: int) -> None:
        where = f"{context}, call {index} of layer {shown(layer.name)}"
        _require(isinstance(spec, dict), where, "a node must be a JSON object with args and kwargs.")

        def tensor(ref):
            return _resolve(ref, layers, where)

        args = self.decoder.value(spec.get("args", []), where, tensor, depth)
        kwargs = self.decoder.value(spec.get("kwargs", {}), where, tensor, depth)
        _require(isinstance(args, list) and args, where, "args must be a non-empty list.")
        _require(isinstance(kwargs, dict), where, "kwargs must be a JSON object.")
        try:
            layer(*args, **kwargs)
        except Exception as error:
            raise ModelFileError(f"{where}: the call fails ({type(error).__name__}: {str(error)[:300]}).") from error
        _require(len(layer._inbound_nodes) == index + 1, where, "the layer was called more often than the file says.")


def _tensor_refs(data, depth: int = 0):
    """Every tensor reference inside a node's encoded arguments."""
    if depth > 200:
        raise ModelFileError("A node's arguments are nested too deeply.")
    if isinstance(data, list):
        for item in data:
            yield from _tensor_refs(item, depth + 1)
    elif isinstance(data, dict):
        if data.get(TAG) == "tensor":
            yield data.get("ref")
        else:
            for item in data.values():
                yield from _tensor_refs(item, depth + 1)


def _check_ref(ref, counts: dict, context: str) -> tuple[str, int]:
    valid = (
        isinstance(ref, list)
        and len(ref) == 3
        and isinstance(ref[0], str)
        and all(type(i) is int and i >= 0 for i in ref[1:])
    )
    _require(valid, context, f"a tensor reference must be [layer_name, node_index, tensor_index], found {shown(ref)}.")
    _require(ref[0] in counts, context, f"a tensor reference names the unknown layer {shown(ref[0])}.")
    _require(ref[1] < counts[ref[0]], context, f"layer {shown(ref[0])} has no call {ref[1]}.")
    return ref[0], ref[1]


def _resolve(ref, layers: dict, context: str):
    valid = isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str) and ref[0] in layers
    _require(valid, context, f"a tensor reference must be [layer_name, node_index, tensor_index], found {shown(ref)}.")
    _check_ref(ref, {ref[0]: len(layers[ref[0]]._inbound_nodes)}, context)
    outputs = layers[ref[0]]._inbound_nodes[ref[1]].outputs
    _require(ref[2] < len(outputs), context, f"call {ref[1]} of layer {shown(ref[0])} has no output {ref[2]}.")
    return outputs[ref[2]]
