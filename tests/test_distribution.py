"""Data-parallel and sharded training on the test session's 4 CPU devices (see conftest), on 8 in a fresh process, and
a two-process data-parallel fit over Gloo."""

import importlib.util
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import kfunc
from kfunc import distribution as dist
from kfunc.callbacks import BackupAndRestore, Callback
from kfunc.layers import Dense, Dropout, Embedding, Flatten, Input
from kfunc.models import Model

# The host's CPU devices, on every runner: conftest asks XLA for 4 of them, and an accelerator runner
# has them beside its GPUs or TPUs, so the sharding logic is checked everywhere, with numbers that
# match a one-device CPU run exactly.
CPUS = jax.devices("cpu")
pytestmark = pytest.mark.skipif(
    len(CPUS) < 4, reason=f"needs 4 CPU devices, found {len(CPUS)}: conftest sets XLA_FLAGS before jax starts"
)


@pytest.fixture(autouse=True)
def _on_the_cpu_devices():
    """Reference models, data and weights live on the CPU devices the meshes are made of."""
    with jax.default_device(CPUS[0]):
        yield


def _model(seed=1):
    kfunc.utils.clear_session()
    kfunc.utils.set_random_seed(seed)
    inputs = Input((8,))
    hidden = Dense(16, activation="relu")(inputs)
    model = Model(inputs, Dense(4, activation="softmax")(hidden))
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=80):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, np.eye(4, dtype="float32")[rng.integers(0, 4, n)]


def _spec(array) -> tuple:
    """The PartitionSpec of ``array`` with one entry per dimension (XLA drops trailing Nones)."""
    spec = tuple(array.sharding.spec)
    return spec + (None,) * (array.ndim - len(spec))


def _assert_same_weights(a, b, tolerance=1e-6):
    for left, right in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(left, right, rtol=tolerance, atol=tolerance)


def test_data_parallel_fit_equals_one_device():
    x, y = _data()
    reference = _model()
    reference.fit(x, y, batch_size=16, epochs=1, verbose=0)  # 5 steps
    model = _model()
    with dist.DataParallel(devices=CPUS).scope():
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
        predicted = model.predict(x, batch_size=16)
    _assert_same_weights(model, reference)
    np.testing.assert_allclose(history.history["loss"], reference.history.history["loss"], rtol=1e-6)
    expected = reference.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert logs == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(predicted, reference.predict(x, batch_size=16), rtol=1e-6, atol=1e-7)
    kernel = model.layers[1].kernel.value
    assert kernel.sharding.is_fully_replicated and len(kernel.sharding.device_set) == 4


def test_batches_are_split_over_the_batch_axis_without_moving_rows():
    placement = dist.DataPlacement(dist.DataParallel(devices=CPUS), "fit")
    epoch = np.arange(3 * 8 * 2, dtype=np.float32).reshape(3 * 8, 2)  # 3 batches of 8 rows
    placed = placement.put(epoch, steps=3)
    assert _spec(placed) == ("batch", None)
    assert [shard.data.shape for shard in placed.addressable_shards] == [(6, 2)] * 4
    for step in range(3):
        batch = jax.jit(lambda a, s: placement.batch(a, s, 8))(placed, step)
        np.testing.assert_array_equal(batch, epoch[step * 8:(step + 1) * 8])
        assert _spec(batch) == ("batch", None)
    # Device d holds the d-th pair of rows of every batch.
    np.testing.assert_array_equal(placed.addressable_shards[1].data, epoch[[2, 3, 10, 11, 18, 19]])


def test_model_parallel_splits_kernels_and_trains_like_one_device():
    x, y = _data()
    reference = _model()
    reference.fit(x, y, batch_size=16, epochs=2, verbose=0)
    mesh = dist.DeviceMesh((2, 2), ("batch", "model"), CPUS)
    layout = dist.LayoutMap(mesh)
    layout["dense.*kernel"] = (None, "model")
    model = _model()
    with dist.ModelParallel(layout_map=layout).scope():
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    _assert_same_weights(model, reference)
    kernel = model.layers[1].kernel.value
    assert _spec(kernel) == (None, "model")
    assert kernel.addressable_shards[0].data.nbytes == kernel.nbytes // 2  # half the kernel per device
    # The optimizer's moments of that kernel are split the same way.
    moments = [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(model._trainer.opt_state)[0]
               if jax.tree_util.keystr(path).endswith("['dense']['kernel']")]
    assert len(moments) == 2 and all(_spec(m) == (None, "model") for m in moments)


def test_automatic_layout_splits_the_largest_dimension():
    mesh = dist.DeviceMesh((1, 4), ("batch", "model"), CPUS)
    parallel = dist.ModelParallel(device_mesh=mesh)
    assert parallel.weight_spec("dense/kernel", (8, 16)) == (None, "model")
    assert parallel.weight_spec("embedding/embeddings", (100, 6)) == ("model", None)
    assert parallel.weight_spec("dense/bias", (16,)) == ()
    assert parallel.weight_spec("dense_1/kernel", (3, 5)) == ()  # nothing divisible: replicated


def test_embedding_and_dropout_model_trains_sharded_on_a_2x2_mesh():
    kfunc.utils.set_random_seed(4)
    words = Input((6,), dtype="int32")
    hidden = Dropout(0.2)(Flatten()(Embedding(40, 8)(words)))
    model = Model(words, Dense(1)(hidden))
    model.compile("sgd", "mse")
    x = np.random.default_rng(2).integers(0, 40, (64, 6)).astype("int32")
    y = np.random.default_rng(3).normal(size=(64, 1)).astype("float32")
    with dist.ModelParallel(device_mesh=dist.DeviceMesh((2, 2), ("batch", "model"), CPUS)).scope():
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert _spec(model.layers[1].embeddings.value) == ("model", None)


def _residual_model(fold=True, blocks=3):
    """Input(8) -> blocks x [x + Dense(8, relu)(LayerNormalization()(x))] -> Dense(4, softmax): a run of
    repeated blocks that training folds into one lax.scan."""
    kfunc.utils.clear_session()
    kfunc.utils.set_random_seed(2)
    inputs = Input((8,))
    x = inputs
    for _ in range(blocks):
        x = kfunc.layers.add([x, Dense(8, activation="relu")(kfunc.layers.LayerNormalization()(x))])
    model = Model(inputs, Dense(4, activation="softmax")(x))
    model.compile("adam", "categorical_crossentropy", fold_repeated_blocks=fold)
    return model


def test_repeated_blocks_stay_folded_when_sharded():
    x, y = _data()
    reference = _residual_model(fold=False)
    reference.fit(x, y, batch_size=16, epochs=2, verbose=0)
    mesh = dist.DeviceMesh((2, 2), ("batch", "model"), CPUS)
    layout = dist.LayoutMap(mesh)
    layout["dense.*kernel"] = (None, "model")
    model = _residual_model()
    with dist.ModelParallel(layout_map=layout).scope():
        assert model._trainer.folding() is not None
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        predicted = model.predict(x, batch_size=16)
        # Inside training the stacked kernel (3, 8, 8) is split as each block's kernel is.
        (params, _), opt_state = model._trainer.layout.stacked(*model.get_variables(), model._trainer.opt_state)
        stacked = params[model.layers[2].name]["kernel"]
        assert stacked.shape == (3, 8, 8) and _spec(stacked) == (None, None, "model")
        moments = [leaf for leaf in jax.tree_util.tree_leaves(opt_state) if np.shape(leaf) == (3, 8, 8)]
        assert len(moments) == 2 and all(_spec(m) == (None, None, "model") for m in moments)
    _assert_same_weights(model, reference, tolerance=1e-5)
    np.testing.assert_allclose(history.history["loss"], reference.history.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(predicted, reference.predict(x, batch_size=16), rtol=1e-5, atol=1e-6)


def test_blocks_placed_differently_run_unrolled():
    mesh = dist.DeviceMesh((2, 2), ("batch", "model"), CPUS)
    layout = dist.LayoutMap(mesh)
    model = _residual_model()
    second = [layer for layer in model.layers if isinstance(layer, Dense)][1]
    layout[f"{second.name}/kernel"] = (None, "model")  # the second block's Dense only
    assert model._trainer.folding() is not None
    with dist.ModelParallel(layout_map=layout, auto_shard=False).scope():
        assert model._trainer.folding() is None
        model.fit(*_data(), batch_size=16, epochs=1, verbose=0)
    assert _spec(second.kernel.value) == (None, "model")


def test_iterable_data_is_split_too():
    x, y = _data(64)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    reference = _model()
    reference.fit(iter(batches), epochs=1, verbose=0)
    model = _model()
    with dist.DataParallel(devices=CPUS).scope():
        model.fit(iter(batches), epochs=1, verbose=0)
    _assert_same_weights(model, reference)


def test_pure_functions_run_sharded_under_jit():
    model = _model()
    x, _ = _data(16)
    parallel = dist.DataParallel(devices=CPUS)
    dist.place_weights(model, parallel)
    params, state = model.get_variables()
    inputs = jax.device_put(x, parallel.batch_sharding(x.ndim))
    outputs, _ = jax.jit(kfunc.lower(model).apply)(params, state, inputs)
    assert outputs.sharding.spec[0] == "batch"
    np.testing.assert_allclose(outputs, model.predict(x), rtol=1e-6, atol=1e-7)


def test_clear_errors():
    with pytest.raises(dist.DistributionError, match=r"batch_size 10 cannot be split evenly over the 4 devices"):
        with dist.DataParallel(devices=CPUS).scope():
            _model().fit(*_data(), batch_size=10, verbose=0)
    with pytest.raises(dist.DistributionError, match=r"shape \(3, 2\) holds 6 devices, but 4 were given"):
        dist.DeviceMesh((3, 2), ("batch", "model"), CPUS)
    with pytest.raises(dist.DistributionError, match=r"axes \['data'\] are not axes of"):
        dist.LayoutMap(dist.DeviceMesh((2, 2), ("batch", "model"), CPUS))["dense.*"] = ("data", None)
    layout = dist.LayoutMap(dist.DeviceMesh((1, 4), ("batch", "model"), CPUS))
    layout["dense/kernel"] = ("model", None)  # 8 input features split 4 ways is fine; 6 is not
    kfunc.utils.clear_session()
    inputs = Input((6,))
    model = Model(inputs, Dense(4)(inputs))
    model.compile("sgd", "mse")
    with pytest.raises(dist.DistributionError, match=r"Weight 'dense/kernel' of shape \(6, 4\) cannot be split"):
        with dist.ModelParallel(layout_map=layout).scope():
            model.fit(np.zeros((8, 6), "float32"), np.zeros((8, 4), "float32"), verbose=0)
    assert dist.distribution() is None  # scopes end, even on errors


WORKER = textwrap.dedent(
    """
    import sys
    import jax
    process, processes, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    jax.config.update("jax_num_cpu_devices", 2)
    from kfunc import distribution as dist
    if processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        dist.initialize(f"127.0.0.1:{port}", num_processes=processes, process_id=process)
    import numpy as np
    import kfunc
    from kfunc.layers import Dense, Input
    from kfunc.models import Model
    kfunc.utils.set_random_seed(1)
    inputs = Input((784,))
    hidden = Dense(64, activation="relu")(Dense(64, activation="relu")(inputs))
    model = Model(inputs, Dense(10, activation="softmax")(hidden))
    model.compile("rmsprop", "categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 784)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 128)]
    dist.set_distribution(dist.DataParallel())
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert len(jax.devices()) == 2 * processes
    np.savez(out, *model.get_weights())
    """
)


@pytest.mark.slow  # three processes start jax and compile
def test_two_processes_train_the_guide_mlp_data_parallel(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}

    def start(process, processes, out):
        return subprocess.Popen([sys.executable, str(script), str(process), str(processes), port, str(tmp_path / out)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    workers = [start(0, 2, "p0.npz"), start(1, 2, "p1.npz")]
    for worker in workers:
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output[-3000:]
    single = start(0, 1, "single.npz")
    output, _ = single.communicate(timeout=300)
    assert single.returncode == 0, output[-3000:]
    first, second, alone = (np.load(tmp_path / name) for name in ("p0.npz", "p1.npz", "single.npz"))
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name])  # both processes hold the same weights
        np.testing.assert_allclose(first[name], alone[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["npz", pytest.param("orbax", marks=[pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("orbax") is None, reason="orbax-checkpoint is not installed")])])
def test_sharded_training_resumes_from_a_backup(tmp_path, backend):
    x, y = _data()
    reference = _model()
    reference.fit(x, y, batch_size=16, epochs=3, verbose=0)
    mesh = dist.DeviceMesh((2, 2), ("batch", "model"), CPUS)
    model = _model()
    with dist.ModelParallel(device_mesh=mesh).scope():
        with pytest.raises(Preempted):
            model.fit(x, y, batch_size=16, epochs=3, verbose=0,
                      callbacks=[BackupAndRestore(tmp_path, save_freq=7, backend=backend), StopAfter(7)])
        model = _model()  # a fresh model, as in a new process
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path, backend=backend)])
    _assert_same_weights(model, reference)
    assert _spec(model.layers[1].kernel.value) == (None, "model")


class Preempted(Exception):
    pass


class StopAfter(Callback):
    """Raises after ``steps`` training steps, as a preempted job would."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_epoch_end(self, epoch, logs=None):
        if int(self.model._trainer.step) >= self.steps:
            raise Preempted


EIGHT_DEVICES = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_num_cpu_devices", 8)
    import numpy as np
    import kfunc
    from kfunc import distribution as dist
    from kfunc.layers import Dense, Input
    from kfunc.models import Model

    def model():
        kfunc.utils.clear_session()
        kfunc.utils.set_random_seed(1)
        inputs = Input((8,))
        outputs = Dense(4, activation="softmax")(Dense(16, activation="relu")(inputs))
        built = Model(inputs, outputs)
        built.compile("adam", "categorical_crossentropy")
        return built

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, 64)]
    reference = model()
    reference.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for parallel in (dist.DataParallel(), dist.ModelParallel(device_mesh=dist.DeviceMesh((2, 4), ("batch", "model")))):
        trained = model()
        with parallel.scope():
            trained.fit(x, y, batch_size=16, epochs=2, verbose=0)
        for a, b in zip(trained.get_weights(), reference.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        kernel = trained.layers[1].kernel.value
        assert len(kernel.sharding.device_set) == 8
    print("ok", len(jax.devices()))
    """
)


@pytest.mark.slow  # a fresh process (tests/test_readme.py also trains on 8 devices by default)
def test_eight_devices_in_a_fresh_process(tmp_path):
    script = tmp_path / "eight.py"
    script.write_text(EIGHT_DEVICES)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok 8")
