"""Keras 3's layer contract, second part: masks reach a custom layer's ``call(mask=...)`` while
the graph is built (so a branch on the mask chooses the recorded shape), output masks come from
``compute_mask``, a subclassed model's ``call(inputs, mask=None)`` gets its input's mask,
``KerasTensor(shape, dtype)`` is a spec for ``compute_output_spec``, and Keras's step overrides
(``train_step`` ...) and functional subclasses defining ``call`` are refused clearly. Numbers and
shapes are compared with Keras 3 (JAX backend)."""

import warnings
from typing import ClassVar

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kfunc  # noqa: E402
from kfunc.errors import GraphError, LayerInputTypeError, SymbolicTensorError, TrainingConfigError  # noqa: E402

VOCAB, FEATURES = 7, 4
# Padded sequences (0 is padding); the last row is all padding.
IDS = np.array([[3, 1, 4, 0, 0], [2, 6, 5, 1, 3], [5, 0, 0, 0, 0], [0, 0, 0, 0, 0]], "int32")


def layer_classes(lib):
    """``Pool``: the mean over unmasked steps when given a mask, else its input unchanged (so the
    output rank depends on the branch); ``DropFirst``: doubles its input and masks the first step
    too (its own ``compute_mask``); ``Seen``: records what ``call`` received as ``mask`` and passes
    the mask on."""
    ops = lib.ops

    class Pool(lib.layers.Layer):
        def call(self, inputs, mask=None):
            if mask is None:
                return inputs
            weights = ops.cast(mask, inputs.dtype)[..., None]
            return ops.sum(inputs * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)

    class DropFirst(lib.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

        def compute_mask(self, inputs, mask=None):
            return ops.concatenate([ops.zeros_like(mask[:, :1]), mask[:, 1:]], axis=1)

    class Seen(lib.layers.Layer):
        masks: ClassVar[list] = []

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True  # passes the mask on unchanged

        def call(self, inputs, mask=None):
            type(self).masks.append(None if mask is None else (len(mask.shape), str(mask.dtype)))
            return inputs

    return Pool, DropFirst, Seen


def masked_model(lib):
    """ids ``(batch, 5)`` -> Embedding(mask_zero) -> DropFirst -> Seen -> Pool: ``(batch, 4)``."""
    pool, drop_first, seen = layer_classes(lib)
    ids = lib.Input((None,), dtype="int32")
    embedded = lib.layers.Embedding(VOCAB, FEATURES, mask_zero=True, name="embed")(ids)
    kept = seen()(drop_first()(embedded))
    model = lib.Model(ids, pool()(kept))
    return model, seen, kept


@pytest.fixture(scope="module")
def both_models():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pool drops the mask it used (both libraries warn)
        ours, our_seen, our_kept = masked_model(kfunc)
        theirs, their_seen, their_kept = masked_model(keras)
    theirs.get_layer("embed").set_weights(ours.get_layer("embed").get_weights())
    return ours, theirs, (our_seen, their_seen), (our_kept, their_kept)


def test_call_sees_the_mask_while_the_graph_is_built_as_in_keras(both_models):
    ours, theirs, (our_seen, their_seen), _ = both_models
    # The symbolic call already received a (batch, timesteps) boolean mask, in both libraries.
    assert our_seen.masks[0] == their_seen.masks[0] == (2, "bool")
    # Pool took its masked branch when the graph was built: the recorded output is (batch, features).
    assert tuple(ours.output_shape) == tuple(theirs.output_shape) == (None, FEATURES)


def test_output_mask_comes_from_compute_mask_and_is_known_symbolically(both_models):
    _, _, _, (our_kept, their_kept) = both_models
    assert our_kept.mask_spec.shape == (None, None) and our_kept.mask_spec.dtype == np.dtype(bool)
    assert tuple(our_kept._keras_mask.shape) == tuple(their_kept._keras_mask.shape) == (None, None)
    assert str(our_kept._keras_mask.dtype) == str(their_kept._keras_mask.dtype) == "bool"


def test_predict_on_padded_sequences_matches_keras(both_models):
    ours, theirs, _, _ = both_models
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = ours.predict(IDS, verbose=0)
        expected = theirs.predict(IDS, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(got[1], np.asarray(ours.get_layer("embed").get_weights()[0])[IDS[1]].mean(0) * 2)


def test_without_a_mask_the_unmasked_branch_is_recorded():
    pool, _, _ = layer_classes(kfunc)
    assert pool()(kfunc.Input((3, FEATURES))).shape == (None, 3, FEATURES)


@pytest.mark.parametrize("lib", [kfunc, keras], ids=["kfunc", "keras"])
def test_compute_output_spec_gets_the_mask_and_returns_a_keras_tensor(lib):
    class Spec(lib.layers.Layer):
        def call(self, inputs, mask=None):
            return inputs

        def compute_output_spec(self, inputs, mask=None):
            return lib.KerasTensor(inputs.shape[:1] + (7 if mask is not None else 9,), dtype="float16")

    ids = lib.Input((None,), dtype="int32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        masked = Spec()(lib.layers.Embedding(VOCAB, FEATURES, mask_zero=True)(ids))
    plain = Spec()(lib.Input((3,)))
    assert tuple(masked.shape) == (None, 7) and tuple(plain.shape) == (None, 9)
    assert str(masked.dtype) == "float16"


def test_keras_tensor_is_a_spec_like_keras():
    spec = kfunc.KerasTensor((None, 3), dtype="float16", name="spec")
    theirs = keras.KerasTensor((None, 3), dtype="float16")
    assert (spec.shape, str(spec.dtype), spec.ndim) == (tuple(theirs.shape), str(theirs.dtype), theirs.ndim)
    assert str(kfunc.KerasTensor((2,)).dtype) == str(keras.KerasTensor((2,)).dtype) == "float32"
    assert isinstance(kfunc.layers.Dense(2)(kfunc.Input((3,))), kfunc.KerasTensor)
    assert spec.sparse is False and spec.mask_spec is None
    with pytest.raises(AttributeError, match="immutable"):
        spec.shape = (1, 3)


def test_keras_tensor_refusals():
    with pytest.raises(SymbolicTensorError, match=r"asked to be sparse.*leave sparse=False"):
        kfunc.KerasTensor((None, 3), sparse=True)
    with pytest.raises(SymbolicTensorError, match=r"shape of ints and None.*received \(None, 'a'\)"):
        kfunc.KerasTensor((None, "a"))
    with pytest.raises(LayerInputTypeError, match=r"'probe' \(Dense\) received, as input 0, KerasTensor 'spec'.*"
                                                  r"spec only.*kfunc.Input"):
        kfunc.layers.Dense(2, name="probe")(kfunc.KerasTensor((None, 3), name="spec"))


def subclassed_pool(lib):
    """A subclassed model whose ``call(inputs, mask=None)`` pools over the unmasked steps."""

    class MaskedHead(lib.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = lib.layers.Dense(2, name="head_dense")

        def call(self, inputs, mask=None):
            if mask is not None:
                weights = lib.ops.cast(mask, inputs.dtype)[..., None]
                inputs = lib.ops.sum(inputs * weights, axis=1) / lib.ops.maximum(lib.ops.sum(weights, axis=1), 1.0)
            else:
                inputs = lib.ops.mean(inputs, axis=1)
            return self.dense(inputs)

    ids = lib.Input((None,), dtype="int32")
    embedded = lib.layers.Embedding(VOCAB, FEATURES, mask_zero=True, name="embed")(ids)
    head = MaskedHead(name="head")
    outputs = head(embedded)
    return lib.Model(ids, outputs), head, outputs


def test_subclassed_model_call_gets_the_mask_and_matches_keras():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours, our_head, our_outputs = subclassed_pool(kfunc)
        theirs, their_head, their_outputs = subclassed_pool(keras)
    theirs.get_layer("embed").set_weights(ours.get_layer("embed").get_weights())
    their_head.set_weights(our_head.get_weights())
    # As in Keras 3, the outputs of a subclassed model's call carry no mask.
    assert our_outputs.mask_spec is None and getattr(their_outputs, "_keras_mask", None) is None
    got = ours.predict(IDS, verbose=0)
    np.testing.assert_allclose(got, theirs.predict(IDS, verbose=0), rtol=1e-5, atol=1e-7)
    # The masked branch ran: the unmasked mean over all five steps gives other numbers.
    table = ours.get_layer("embed").get_weights()[0]
    kernel, bias = our_head.get_weights()
    assert not np.allclose(got[0], table[IDS[0]].mean(0) @ kernel + bias)


# ---------------------------------------------------------------------- Keras's step overrides
def _graph(lib_model_class):
    inputs = kfunc.Input((3,))
    return lib_model_class(inputs, kfunc.layers.Dense(1)(inputs))


def test_a_train_step_override_is_refused_at_compile_with_the_alternatives():
    class CustomModel(kfunc.Model):
        def train_step(self, data):
            return {}

    model = _graph(CustomModel)
    with pytest.raises(TrainingConfigError, match=r"\(CustomModel\) overrides train_step\(\) in class CustomModel.*"
                                                  r"compile\(\) cannot run.*add_loss.*kfunc.lower\(model\)"):
        model.compile("sgd", "mse")
    # predict does not run train_step, so it works.
    assert model.predict(np.ones((2, 3), "float32"), verbose=0).shape == (2, 1)


def test_test_and_predict_step_overrides_are_refused_where_they_would_run():
    class Base(kfunc.Model):
        def test_step(self, data):
            return {}

    class Derived(Base):
        def predict_step(self, data):
            return data

    model = _graph(Derived)
    model.compile("sgd", "mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")
    model.fit(x, y, epochs=1, verbose=0)  # no validation: test_step is not needed
    with pytest.raises(TrainingConfigError, match=r"overrides test_step\(\) in class Base.*evaluate\(\) cannot run"):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(TrainingConfigError, match=r"overrides test_step\(\).*fit\(\) cannot run"):
        model.fit(x, y, validation_data=(x, y), verbose=0)
    with pytest.raises(TrainingConfigError, match=r"overrides predict_step\(\) in class Derived.*predict\(\)"):
        model.predict(x, verbose=0)


def test_a_subclassed_model_with_train_step_is_refused_before_it_is_built():
    class Trainer(kfunc.Model):
        def __init__(self):
            super().__init__()
            self.dense = kfunc.layers.Dense(1)

        def call(self, inputs):
            return self.dense(inputs)

        def train_step(self, data):
            return {}

    with pytest.raises(TrainingConfigError, match=r"'trainer' \(Trainer\) overrides train_step\(\)"):
        Trainer().compile("sgd", "mse")


def test_a_subclass_defining_call_and_given_a_graph_is_refused():
    class Both(kfunc.Model):
        def call(self, inputs):
            return inputs

    inputs = kfunc.Input((3,))
    with pytest.raises(GraphError, match=r"Model Both defines call\(\).*remove call\(\).*without passing inputs"):
        Both(inputs, kfunc.layers.Dense(1)(inputs))
