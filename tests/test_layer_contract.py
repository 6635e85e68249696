"""Custom layers keep Keras 3's contract: build(shape) called directly builds once,
compute_output_shape / compute_output_spec are used for symbolic shapes, a get_config without
the base config still saves and loads, Model.compute_output_shape; each compared with Keras 3."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kfunc  # noqa: E402
from kfunc import layers as kl  # noqa: E402
from kfunc.errors import SavingError  # noqa: E402


def linear_class(lib):
    class Linear(lib.layers.Layer):
        builds = 0

        def __init__(self, units=3, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            type(self).builds += 1
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="ones")

        def call(self, inputs):
            return lib.ops.matmul(inputs, self.w)

    return Linear


@pytest.mark.parametrize("lib", [kfunc, keras], ids=["kfunc", "keras"])
def test_build_called_directly_marks_built_and_is_not_repeated(lib):
    layer = linear_class(lib)()
    layer.build((None, 4))
    assert layer.built and len(layer.weights) == 1
    layer(np.ones((2, 4), "float32"))
    assert type(layer).builds == 1


@pytest.mark.parametrize("lib", [kfunc, keras], ids=["kfunc", "keras"])
def test_compute_output_shape_and_spec_are_used_for_symbolic_shapes(lib):
    class Declared(lib.layers.Layer):
        def call(self, inputs):
            return inputs[:, :2]

        def compute_output_shape(self, input_shape):
            return (input_shape[0], 7)  # what the layer declares is what the graph records

    class Spec(lib.layers.Layer):
        def call(self, inputs):
            return inputs

        def compute_output_spec(self, inputs):
            return lib.KerasTensor((inputs.shape[0], 9), dtype="float16") if lib is keras else \
                kfunc.ops.zeros((1, 9), dtype="float16")

    inputs = lib.layers.Input((5,))
    assert tuple(Declared()(inputs).shape) == (None, 7)
    spec = Spec()(inputs)
    assert tuple(spec.shape)[1:] == (9,) and str(spec.dtype) == "float16"


def test_compute_output_shape_of_layers_and_models_matches_keras():
    for lib in (kfunc, keras):
        inputs = lib.layers.Input((6,))
        model = lib.Model(inputs, lib.layers.Dense(3)(lib.layers.Dense(4)(inputs)))
        assert tuple(model.compute_output_shape((None, 6))) == (None, 3)
        assert tuple(lib.layers.Dense(5).compute_output_shape((None, 2, 6))) == (None, 2, 5)


@kfunc.saving.register("test_contract>Scale")
class ConfigWithoutBase(kl.Layer):
    """get_config returns only its own argument, as much Keras 3 code does."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {"factor": self.factor}


@kfunc.saving.register("test_contract>Unsaveable")
class ConfigMissingArgument(kl.Layer):
    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {}


def test_get_config_without_the_base_config_saves_and_loads(tmp_path):
    inputs = kl.Input((3,))
    outputs = kl.Dense(2)(ConfigWithoutBase(2.0, name="scaled")(inputs))
    model = kfunc.Model(inputs, outputs)
    model.save(tmp_path / "m.kfunc")
    loaded = kfunc.models.load_model(tmp_path / "m.kfunc")
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)
    assert loaded.get_layer("scaled").factor == 2.0

    broken = kfunc.Model(inputs, ConfigMissingArgument(3.0, name="bad")(inputs))
    with pytest.raises(SavingError, match="'bad' \\(ConfigMissingArgument\\) cannot be saved.*\\['factor'\\]"):
        broken.save(tmp_path / "bad.kfunc")
    assert not (tmp_path / "bad.kfunc").exists()


def test_layers_called_inside_call_inherit_training_like_keras():
    """A sublayer called without ``training`` gets the enclosing call's flag (Keras 3)."""
    for lib in (kfunc, keras):
        class Block(lib.layers.Layer):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.norm = lib.layers.BatchNormalization(momentum=0.0)

            def call(self, inputs, training=False):
                return self.norm(inputs)  # training not passed on

        block = Block()
        x = np.array([[1.0, 2.0], [3.0, 6.0]], "float32")
        trained = np.asarray(block(x, training=True))
        np.testing.assert_allclose(trained.mean(axis=0), 0.0, atol=1e-5)
