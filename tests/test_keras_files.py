"""Keras 3 files opened by kfunc: ``.keras`` archives made by Keras load as kfunc models with the
same weights and outputs, Keras's ``.weights.h5`` files load into the equivalent kfunc model (and
kfunc's into Keras's), and hostile files (code in the config, HDF5 links, external or virtual
data, shape bombs) are refused with kfunc's errors before anything is run or allocated."""

import json
import zipfile

import numpy as np
import pytest

import kfunc
from kfunc.saving import KerasFileError, ModelFileError, UnknownObjectError, WeightsFileError

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
K = keras.layers
rng = np.random.default_rng(0)


def _randomize(model):
    """Weights that are not the initializers' (BatchNorm variances stay positive)."""
    model.set_weights([(rng.random(w.shape) + 0.5).astype(w.dtype) * 0.3 for w in model.get_weights()])
    return model


def _guide(lib, layers):
    """The guide's two-input model: Embedding + LSTM per text input, concatenated with tags."""
    title = lib.Input(shape=(None,), name="title", dtype="int32")
    body = lib.Input(shape=(None,), name="body", dtype="int32")
    tags = lib.Input(shape=(12,), name="tags")
    t = layers.LSTM(16)(layers.Embedding(100, 8)(title))
    b = layers.LSTM(4)(layers.Embedding(100, 8)(body))
    x = layers.concatenate([t, b, tags])
    priority = layers.Dense(1, name="priority")(x)
    department = layers.Dense(4, activation="softmax", name="department")(x)
    return lib.Model([title, body, tags], [priority, department])


def _guide_data():
    return [rng.integers(0, 100, (3, 7)).astype("int32"), rng.integers(0, 100, (3, 5)).astype("int32"),
            rng.random((3, 12)).astype("float32")]


def _recurrent(lib, layers):
    inputs = lib.Input(shape=(6, 3))
    x = layers.LSTM(5, return_sequences=True)(inputs)
    x = layers.Bidirectional(layers.GRU(4, return_sequences=True))(x)
    x = layers.SimpleRNN(3)(x)
    return lib.Model(inputs, layers.Dense(2)(x))


def _cnn(lib, layers):
    inputs = lib.Input(shape=(8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(6, 3, kernel_regularizer=lib.regularizers.L2(1e-3))(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-3)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return lib.Model(inputs, layers.Dense(3, activation="softmax")(x))


def _sequential(lib, layers):
    return lib.Sequential([lib.Input(shape=(5,)), layers.Dense(8, activation="relu"), layers.Dropout(0.5),
                           layers.Dense(3, use_bias=False), layers.LayerNormalization()])


def _nested(lib, layers):
    inner_in = lib.Input(shape=(4,))
    inner = lib.Model(inner_in, layers.Dense(3, activation="tanh")(inner_in), name="inner")
    stack = lib.Sequential([lib.Input(shape=(3,)), layers.Dense(3), layers.BatchNormalization()], name="stack")
    x = lib.Input(shape=(4,))
    a, b = inner(x), inner(layers.Dense(4)(x))
    merged = stack(layers.add([a, b]))
    return lib.Model(x, [layers.Dense(2)(merged), a])


CASES = {
    "guide": (_guide, _guide_data),
    "recurrent": (_recurrent, lambda: rng.random((3, 6, 3)).astype("float32")),
    "cnn": (_cnn, lambda: rng.random((3, 8, 8, 3)).astype("float32")),
    "sequential": (_sequential, lambda: rng.random((3, 5)).astype("float32")),
    "nested": (_nested, lambda: rng.random((3, 4)).astype("float32")),
}


def _close(theirs, ours):
    theirs = theirs if isinstance(theirs, (list, tuple)) else [theirs]
    ours = ours if isinstance(ours, (list, tuple)) else [ours]
    assert len(theirs) == len(ours)
    for a, b in zip(theirs, ours, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_file_loads_with_the_same_weights_and_outputs(case, tmp_path):
    build, data = CASES[case]
    theirs = _randomize(build(keras, K))
    theirs.save(tmp_path / "model.keras")
    x = data()
    ours = kfunc.models.load_model(tmp_path / "model.keras")
    assert isinstance(ours, kfunc.Model)
    for a, b in zip(theirs.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    _close(theirs.predict(x, verbose=0), ours.predict(x))


@pytest.mark.parametrize("case", ["guide", "cnn", "recurrent"])
def test_keras_weights_h5_loads_into_the_equivalent_kfunc_model_and_back(case, tmp_path):
    build, data = CASES[case]
    theirs = _randomize(build(keras, K))
    theirs.save_weights(tmp_path / "keras.weights.h5")
    ours = build(kfunc, kfunc.layers)
    ours.load_weights(tmp_path / "keras.weights.h5")
    x = data()
    _close(theirs.predict(x, verbose=0), ours.predict(x))
    # kfunc writes the same layout: Keras reads kfunc's file.
    _randomize(ours).save_weights(tmp_path / "kfunc.weights.h5")
    theirs.load_weights(tmp_path / "kfunc.weights.h5")
    _close(theirs.predict(x, verbose=0), ours.predict(x))


def test_load_weights_reads_the_weights_of_a_keras_file(tmp_path):
    theirs = _randomize(_cnn(keras, K))
    theirs.save(tmp_path / "model.keras")
    ours = _cnn(kfunc, kfunc.layers)
    ours.load_weights(tmp_path / "model.keras")
    for a, b in zip(theirs.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_kfunc_model_saved_as_dot_keras_still_loads_as_kfunc(tmp_path):
    model = _sequential(kfunc, kfunc.layers)
    model.save(tmp_path / "mine.keras")
    loaded = kfunc.models.load_model(tmp_path / "mine.keras")
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- hostile files
@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A valid Keras file's members: {name: bytes}."""
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    _sequential(keras, K).save(path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _with_config(keras_file, tmp_path, edit, weights=None):
    config = json.loads(keras_file["config.json"])
    edit(config)
    members = {**keras_file, "config.json": json.dumps(config)}
    if weights is not None:
        members["model.weights.h5"] = weights
    return _write(tmp_path / "edited.keras", members)


def _first_dense(config):
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")


def test_lambda_layer_is_refused(tmp_path):
    inputs = keras.Input(shape=(3,))
    keras.Model(inputs, K.Lambda(lambda t: t * 2)(inputs)).save(tmp_path / "lambda.keras")
    with pytest.raises(KerasFileError, match=r"lambda\.keras'.*Lambda layer.*never runs code"):
        kfunc.models.load_model(tmp_path / "lambda.keras")


def test_config_naming_os_system_as_module_and_class_is_refused(keras_file, tmp_path):
    def as_module(config):
        _first_dense(config).update(module="os", class_name="system", registered_name="system")

    with pytest.raises(KerasFileError, match=r"'system' of module 'os' is not part of Keras.*never imports"):
        kfunc.models.load_model(_with_config(keras_file, tmp_path, as_module))

    def as_class(config):
        _first_dense(config)["class_name"] = "os.system"

    with pytest.raises(UnknownObjectError, match=r"'os\.system', which is neither built into kfunc nor registered"):
        kfunc.models.load_model(_with_config(keras_file, tmp_path, as_class))


def test_unknown_registered_object_is_refused(keras_file, tmp_path):
    def custom(config):
        _first_dense(config).update(module="my_package.layers", registered_name="my_package>Evil")

    with pytest.raises(KerasFileError, match=r"'my_package>Evil' is neither registered"):
        kfunc.models.load_model(_with_config(keras_file, tmp_path, custom))


def test_registered_object_is_found_through_kfunc_registry(keras_file, tmp_path):
    class Doubled(kfunc.layers.Dense):
        pass

    def custom(config):
        _first_dense(config).update(module="my_package.layers", class_name="Doubled", registered_name="pkg>Doubled")

    # Keras names a layer's weights group after its class: the first Dense is now a Doubled.
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(keras_file["model.weights.h5"])
    with h5py.File(weights, "a") as file:
        file.move("layers/dense", "layers/doubled")
        file.move("layers/dense_1", "layers/dense")
    path = _with_config(keras_file, tmp_path, custom, weights=weights.read_bytes())
    model = kfunc.models.load_model(path, custom_objects={"pkg>Doubled": Doubled})
    assert isinstance(model.layers[0], Doubled)


def test_lambda_value_inside_a_config_is_refused(keras_file, tmp_path):
    def code(config):
        _first_dense(config)["config"]["activation"] = {
            "module": "builtins", "class_name": "__lambda__", "config": {"value": "4wEAAAA="}, "registered_name": None}

    with pytest.raises(KerasFileError, match=r"not part of Keras|lambda function"):
        kfunc.models.load_model(_with_config(keras_file, tmp_path, code))


def test_option_kfunc_lacks_is_refused_naming_it(keras_file, tmp_path):
    def lora(config):
        _first_dense(config)["config"]["lora_rank"] = 4

    with pytest.raises(KerasFileError, match=r"Keras's Dense option lora_rank=4 has no kfunc equivalent"):
        kfunc.models.load_model(_with_config(keras_file, tmp_path, lora))


def _h5_with(path, make):
    """A Keras-layout weights file of the Sequential model, then ``make(file)`` adds the hostile part."""
    model = _sequential(kfunc, kfunc.layers)
    model.save_weights(path)
    with h5py.File(path, "a") as file:
        make(file, path)
    return model


def _external_link(file, path):
    other = path.parent / "other.h5"
    with h5py.File(other, "w") as target:
        target["x"] = np.zeros((8, 3), "float32")
    del file["layers/dense_1/vars/0"]
    file["layers/dense_1/vars/0"] = h5py.ExternalLink(str(other), "/x")


def _soft_link(file, path):
    file["layers/dense_1/vars/alias"] = h5py.SoftLink("/layers/dense_1/vars/0")


def _hard_link_loop(file, path):
    file["layers/dense/loop"] = file["layers"]


def _external_dataset(file, path):
    (path.parent / "raw.bin").write_bytes(b"\x00" * 96)
    del file["layers/dense_1/vars/0"]
    file.create_dataset("layers/dense_1/vars/0", shape=(8, 3), dtype="float32", external=[("raw.bin", 0, 96)])


def _virtual_dataset(file, path):
    layout = h5py.VirtualLayout(shape=(8, 3), dtype="float32")
    layout[:] = h5py.VirtualSource(str(path.parent / "elsewhere.h5"), "x", shape=(8, 3))
    del file["layers/dense_1/vars/0"]
    file.create_virtual_dataset("layers/dense_1/vars/0", layout)


def _shape_bomb(file, path):
    del file["layers/dense_1/vars/0"]
    file.create_dataset("layers/dense_1/vars/0", shape=(1 << 20, 1 << 20), dtype="float32", chunks=(64, 64))


HOSTILE_H5 = {
    "external link": (_external_link, r"'layers/dense_1/vars/0' is a ExternalLink"),
    "soft link": (_soft_link, r"'layers/dense_1/vars/alias' is a SoftLink"),
    "hard link loop": (_hard_link_loop, r"'layers/dense/loop' is a second link"),
    "external dataset": (_external_dataset, r"keeps its data in external files"),
    "virtual dataset": (_virtual_dataset, r"is virtual"),
    "shape bomb": (_shape_bomb, r"declares shape \(1048576, 1048576\) \(4398046511104 bytes\) but stores 0 bytes"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_H5))
def test_hostile_hdf5_is_refused_before_reading(kind, tmp_path):
    make, message = HOSTILE_H5[kind]
    path = tmp_path / "w.weights.h5"
    model = _h5_with(path, make)
    before = model.get_weights()
    with pytest.raises(WeightsFileError, match=message + r".*Refused"):
        model.load_weights(path)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_hostile_hdf5_inside_a_keras_file_is_refused(keras_file, tmp_path):
    path = tmp_path / "w.h5"
    path.write_bytes(keras_file["model.weights.h5"])
    with h5py.File(path, "a") as file:
        file["layers/dense/vars/loop"] = h5py.ExternalLink("/etc/passwd", "/x")
    hostile = _write(tmp_path / "hostile.keras", {**keras_file, "model.weights.h5": path.read_bytes()})
    with pytest.raises(KerasFileError, match=r"model\.weights\.h5'.*ExternalLink"):
        kfunc.models.load_model(hostile)


def test_keras_file_with_unexpected_members_or_version_is_refused(keras_file, tmp_path):
    extra = _write(tmp_path / "extra.keras", {**keras_file, "assets/run.py": b"print(1)"})
    with pytest.raises(KerasFileError, match=r"members kfunc does not read \(\['assets/run\.py'\]\)"):
        kfunc.models.load_model(extra)
    old = _write(tmp_path / "old.keras", {**keras_file, "metadata.json": b'{"keras_version": "2.15.0"}'})
    with pytest.raises(KerasFileError, match=r"written by Keras '2\.15\.0'; kfunc reads files of Keras 3"):
        kfunc.models.load_model(old)


def test_corrupt_keras_file_raises_model_file_error(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelFileError, match=r"broken\.keras"):
        kfunc.models.load_model(path)


def test_missing_h5py_is_explained(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("No module named 'h5py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    with pytest.raises(ImportError, match=r"needs the h5py package: pip install 'kfunc\[h5\]'"):
        _sequential(kfunc, kfunc.layers).save_weights(tmp_path / "w.weights.h5")
