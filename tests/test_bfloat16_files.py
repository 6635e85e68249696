"""bfloat16 weights and optimizer state survive model files and every weights-file format."""

import numpy as np
import pytest

import kfunc
from kfunc import layers
from kfunc.errors import ModelFileError
from kfunc.saving.bfloat16 import BFLOAT16


def _bf16_model():
    inputs = kfunc.Input((3,))
    outputs = layers.Dense(2, dtype="bfloat16", name="half")(inputs)
    return kfunc.Model(inputs, layers.Dense(1, name="head")(outputs))


def test_model_file_round_trips_bfloat16_weights_and_optimizer_state(tmp_path):
    model = _bf16_model()
    model.compile("adam", "mse")
    x, y = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3), np.ones((8, 1), np.float32)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    path = tmp_path / "m.kfunc"
    model.save(path)
    loaded = kfunc.models.load_model(path)
    for saved, read in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert read.dtype == saved.dtype
        np.testing.assert_array_equal(np.asarray(read, np.float32), np.asarray(saved, np.float32))
    assert loaded.get_weights()[0].dtype == BFLOAT16
    # The optimizer state came back too: one more epoch from each gives the same weights.
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


@pytest.mark.parametrize("suffix", [".weights.npz", ".weights.h5", ".weights.safetensors"])
def test_weights_files_round_trip_bfloat16(tmp_path, suffix):
    model = _bf16_model()
    path = tmp_path / f"w{suffix}"
    model.save_weights(path)
    other = _bf16_model()
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def test_model_file_refuses_bits_declared_as_another_dtype(tmp_path):
    """A bfloat16 member whose entry claims float16 is a mismatch, not silently reinterpreted."""
    import json
    import zipfile

    path = tmp_path / "m.kfunc"
    _bf16_model().save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members["config.json"])
    for entry in document["weights"]:
        if entry["dtype"] == "bfloat16":
            entry["dtype"] = "float16"
    members["config.json"] = json.dumps(document).encode()
    forged = tmp_path / "forged.kfunc"
    with zipfile.ZipFile(forged, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match="weight 'half/kernel' is uint16"):
        kfunc.models.load_model(forged)
