"""``kfunc.distribution``: data-parallel and sharded training on ``jax.sharding`` meshes.

The names follow ``keras.distribution``. A distribution says where arrays live; XLA's SPMD
partitioner does the rest: the one jitted train step runs on all devices, and gradients of a
batch split over the ``batch`` axis are summed by the collectives XLA inserts, not by kfunc.

    mesh = DeviceMesh((2, 2), ("batch", "model"))
    layout = LayoutMap(mesh)
    layout["dense.*kernel"] = (None, "model")       # regex on weight paths -> PartitionSpec
    set_distribution(ModelParallel(layout_map=layout))   # or: with ModelParallel(...).scope():
    model.fit(x, y, batch_size=64)                  # unchanged model code

* ``DataParallel(devices=None)``: a 1-D ``batch`` mesh; weights and optimizer state replicated,
  each batch split along its first axis.
* ``ModelParallel(layout_map=..., batch_dim_name="batch")``: weights placed by the layout map
  (first matching regex; unmatched weights follow ``auto_shard``: a Dense/Embedding/Conv kernel
  is split along its largest dimension that the ``model`` axis divides), optimizer state placed
  like its weight, batches split along the ``batch`` axis.

Batches are split without moving data between devices: each epoch's rows are arranged so that
device ``d`` holds the ``d``-th slice of every batch (``DataPlacement``), and with several
processes each process puts only its own devices' rows (``jax.make_array_from_process_local_data``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from kfunc.errors import DistributionError  # noqa: F401 (re-exported)

_current: Distribution | None = None


def list_devices(device_type: str | None = None) -> list:
    """The devices of every process (``jax.devices``), of ``device_type`` if given."""
    return jax.devices(device_type) if device_type else jax.devices()


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, **kwargs) -> None:
    """Join a multi-process job: ``jax.distributed.initialize`` (arguments may come from the
    environment on managed clusters). Call before anything else touches JAX's devices."""
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, **kwargs)


class DeviceMesh:
    """A named grid of devices: ``DeviceMesh((2, 4), ("batch", "model"))``."""

    def __init__(self, shape: Sequence[int], axis_names: Sequence[str], devices=None):
        devices = list(list_devices() if devices is None else devices)
        shape, axis_names = tuple(int(s) for s in shape), tuple(axis_names)
        if len(shape) != len(axis_names):
            raise DistributionError(f"DeviceMesh: shape {shape} and axis_names {axis_names} differ in length.")
        if int(np.prod(shape)) != len(devices):
            raise DistributionError(
                f"DeviceMesh: shape {shape} holds {int(np.prod(shape))} devices, but {len(devices)} were given; "
                f"make the product of the shape equal the number of devices."
            )
        self.shape, self.axis_names = shape, axis_names
        self.mesh = Mesh(np.asarray(devices, dtype=object).reshape(shape), axis_names)

    def sharding(self, spec=()) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec(*spec))

    def __repr__(self):
        return f"DeviceMesh(shape={self.shape}, axis_names={self.axis_names})"


class LayoutMap:
    """Weight-path regexes (``"dense.*kernel"``, matched with ``re.search`` against paths such as
    ``dense_1/kernel``) -> ``PartitionSpec``-like tuples (``(None, "model")``), first match wins."""

    def __init__(self, device_mesh: DeviceMesh):
        self.device_mesh = device_mesh
        self._rules: dict[str, tuple] = {}

    def __setitem__(self, pattern: str, spec) -> None:
        spec = tuple(spec) if isinstance(spec, (tuple, list, PartitionSpec)) else (spec,)
        unknown = [a for a in spec if a is not None and a not in self.device_mesh.axis_names]
        if unknown:
            raise DistributionError(
                f"LayoutMap['{pattern}']: axes {unknown} are not axes of {self.device_mesh}; use "
                f"{list(self.device_mesh.axis_names)} or None."
            )
        self._rules[pattern] = spec

    def __getitem__(self, path: str):
        return next((spec for pattern, spec in self._rules.items() if re.search(pattern, path)), None)


class Distribution:
    """Where the weights, optimizer state and batches of ``fit``/``evaluate``/``predict`` live."""

    def __init__(self, device_mesh: DeviceMesh, batch_dim_name: str):
        if batch_dim_name not in device_mesh.axis_names:
            raise DistributionError(f"batch_dim_name '{batch_dim_name}' is not an axis of {device_mesh}.")
        self.device_mesh = device_mesh
        self.batch_dim_name = batch_dim_name

    @property
    def mesh(self) -> Mesh:
        return self.device_mesh.mesh

    @property
    def batch_shards(self) -> int:
        """How many pieces each batch is split into."""
        return self.mesh.shape[self.batch_dim_name]

    def weight_spec(self, path: str, shape: tuple) -> tuple:
        """The PartitionSpec of the weight at ``path`` (``"dense_1/kernel"``)."""
        return ()

    def weight_sharding(self, path: str, shape: tuple) -> NamedSharding:
        spec = self.weight_spec(path, tuple(shape))
        for axis, name in zip(shape, spec, strict=False):
            if name is not None and axis % self.mesh.shape[name]:
                raise DistributionError(
                    f"Weight '{path}' of shape {tuple(shape)} cannot be split as {spec}: {axis} is not divisible by "
                    f"the {self.mesh.shape[name]} devices of mesh axis '{name}'. Change the layout map."
                )
        return self.device_mesh.sharding(spec)

    def batch_sharding(self, rank: int) -> NamedSharding:
        """Batches of ``rank`` dimensions: split along the first over the batch axis."""
        return self.device_mesh.sharding((self.batch_dim_name,) + (None,) * (rank - 1))

    def check_batch_size(self, batch_size: int, role: str) -> None:
        if batch_size % self.batch_shards:
            raise DistributionError(
                f"{role}: batch_size {batch_size} cannot be split evenly over the {self.batch_shards} devices of "
                f"mesh axis '{self.batch_dim_name}'; use a multiple of {self.batch_shards}."
            )

    @contextlib.contextmanager
    def scope(self) -> Iterator[Distribution]:
        """``with distribution.scope(): model.fit(...)``: this distribution inside the block."""
        global _current
        previous, _current = _current, self
        try:
            yield self
        finally:
            _current = previous


class DataParallel(Distribution):
    """Replicated weights, batches split over all (or the given) devices."""

    def __init__(self, device_mesh: DeviceMesh | None = None, devices=None):
        if device_mesh is None:
            devices = list(list_devices() if devices is None else devices)
            device_mesh = DeviceMesh((len(devices),), ("batch",), devices)
        super().__init__(device_mesh, device_mesh.axis_names[0])


class ModelParallel(Distribution):
    """Weights placed by a ``LayoutMap`` (or split automatically along ``model_dim_name``),
    batches split along ``batch_dim_name``."""

    def __init__(self, *, layout_map: LayoutMap | None = None, device_mesh: DeviceMesh | None = None,
                 batch_dim_name: str = "batch", model_dim_name: str = "model", auto_shard: bool = True):
        device_mesh = device_mesh or (layout_map.device_mesh if layout_map is not None else None)
        if device_mesh is None:
            raise DistributionError("ModelParallel needs a layout_map or a device_mesh.")
        super().__init__(device_mesh, batch_dim_name)
        self.layout_map = layout_map
        self.model_dim_name = model_dim_name if model_dim_name in device_mesh.axis_names else None
        self.auto_shard = auto_shard

    def weight_spec(self, path: str, shape: tuple) -> tuple:
        spec = self.layout_map[path] if self.layout_map is not None else None
        if spec is not None:
            return spec
        if not self.auto_shard or self.model_dim_name is None or not path.endswith(("kernel", "embeddings")):
            return ()
        # Split the largest dimension that the model axis divides; small weights stay replicated.
        devices = self.mesh.shape[self.model_dim_name]
        candidates = [i for i, n in enumerate(shape) if n % devices == 0 and n >= devices]
        if not candidates:
            return ()
        axis = max(candidates, key=lambda i: (shape[i], i))
        return tuple(self.model_dim_name if i == axis else None for i in range(len(shape)))


class DataPlacement:
    """Puts an epoch's rows (in training order, ``steps`` whole batches) on the mesh so that
    device ``d`` of the batch axis holds the ``d``-th slice of every batch, and takes batch
    ``b`` back out inside the compiled step without moving data between devices."""

    def __init__(self, distribution: Distribution, role: str):
        self.distribution = distribution
        self.shards = distribution.batch_shards
        self.role = role

    def put(self, tree, steps: int):
        """Arrays ``(steps * batch_size, ...)`` in training order -> global arrays split by rows."""

        def place(array):
            array = np.asarray(array)
            batch_size = array.shape[0] // steps
            self.distribution.check_batch_size(batch_size, self.role)
            arranged = array.reshape((steps, self.shards, batch_size // self.shards) + array.shape[1:])
            arranged = arranged.swapaxes(0, 1).reshape(array.shape)
            sharding = self.distribution.batch_sharding(array.ndim)
            # Each process materializes only the rows of its own devices.
            return jax.make_array_from_callback(arranged.shape, sharding, lambda index: arranged[index])

        return jax.tree_util.tree_map(place, tree)

    def batch(self, array, step, batch_size: int):
        """Batch ``step`` of a placed array: ``(batch_size, ...)``, split over the batch axis."""
        per_device = batch_size // self.shards
        local = array.reshape((self.shards, array.shape[0] // self.shards) + array.shape[1:])
        piece = jax.lax.dynamic_slice_in_dim(local, step * per_device, per_device, axis=1)
        flat = piece.reshape((batch_size,) + array.shape[1:])
        return jax.lax.with_sharding_constraint(flat, self.distribution.batch_sharding(array.ndim))


def weight_shardings(model, distribution: Distribution) -> dict[str, tuple[NamedSharding, tuple]]:
    """``{tree path text: (sharding, shape)}`` of every weight of ``model`` under ``distribution``."""
    shardings = {}
    for variable, path in model.variable_paths():
        sharding = distribution.weight_sharding("/".join(path), variable.shape)
        shardings[jax.tree_util.keystr(tuple(jax.tree_util.DictKey(k) for k in path))] = (sharding, variable.shape)
    return shardings


def place_weights(model, distribution: Distribution) -> dict[str, tuple[NamedSharding, tuple]]:
    """Move every weight of ``model`` to its sharding; returns ``weight_shardings``."""
    shardings = weight_shardings(model, distribution)
    for variable, path in model.variable_paths():
        sharding, _ = shardings[jax.tree_util.keystr(tuple(jax.tree_util.DictKey(k) for k in path))]
        if getattr(variable.value, "sharding", None) != sharding:
            variable.set_value(jax.device_put(variable.value, sharding))
    return shardings


def place_like_weights(tree, shardings: dict[str, tuple[NamedSharding, tuple]], distribution: Distribution):
    """Optimizer state: a leaf whose path ends with a weight's path and has its shape goes where
    that weight is; every other leaf (counts, learning rates) is replicated."""
    replicated = distribution.device_mesh.sharding()

    def place(path, leaf):
        text = jax.tree_util.keystr(path)
        match = next((s for p, (s, shape) in shardings.items() if text.endswith(p) and np.shape(leaf) == shape), replicated)
        return jax.device_put(leaf, match)

    return jax.tree_util.tree_map_with_path(place, tree)


def set_distribution(value: Distribution | None) -> None:
    """Make ``value`` the distribution of every later ``fit``/``evaluate``/``predict`` (None: off)."""
    global _current
    if value is not None and not isinstance(value, Distribution):
        raise TypeError(f"set_distribution expects a DataParallel or ModelParallel, received {type(value).__name__}.")
    _current = value


def distribution() -> Distribution | None:
    """The distribution in effect (set by ``set_distribution`` or a ``scope()``), or None."""
    return _current
