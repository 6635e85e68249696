"""Repeated blocks run as one lax.scan (kfunc/graph/fold.py, kfunc/folding.py): the same numbers
as the unrolled graph, detection that folds only identical blocks, and training that keeps the
stacked layout inside its state while the model, saving and callbacks see the usual weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kfunc
from kfunc import layers
from kfunc.errors import TrainingConfigError
from kfunc.folding import BlockFolding
from kfunc.lower import apply_stacked

WIDTH = 8


def residual_model(n, *, dropout=0.0, batchnorm=False, regularized=False, block=None):
    """Input(8) -> n x [x + Dense(8, relu)(LayerNormalization()(x))] -> Dense(1)."""
    inputs = kfunc.Input((WIDTH,))
    x = inputs
    for i in range(n):
        if block is not None:
            x = block(i, x)
            continue
        h = layers.BatchNormalization()(x) if batchnorm else layers.LayerNormalization()(x)
        extra = {"kernel_regularizer": "l2", "kernel_constraint": "max_norm"} if regularized else {}
        h = layers.Dense(WIDTH, activation="relu", **extra)(h)
        if dropout:
            h = layers.Dropout(dropout)(h)
        x = layers.add([x, h])
    return kfunc.Model(inputs, layers.Dense(1)(x))


def data(rows=32):
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, WIDTH)).astype("float32"), rng.normal(size=(rows, 1)).astype("float32")


def assert_trees_close(a, b, rtol=1e-6, atol=1e-6):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def relative_difference(a, b) -> float:
    """``||a - b|| / ||b||`` over every leaf of two trees of one structure."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    pairs = list(zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True))
    error = sum(float(np.sum((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2)) for x, y in pairs)
    scale = sum(float(np.sum(np.asarray(y, np.float64) ** 2)) for _, y in pairs)
    return (error / scale) ** 0.5


# ---------------------------------------------------------------------- lowering
@pytest.mark.parametrize("options", [
    {"dropout": 0.3, "batchnorm": True},
    pytest.param({}, marks=pytest.mark.slow),
])
def test_folded_outputs_gradients_and_state_equal_unrolled(options):
    model = residual_model(4, **options)
    assert len(model.folded_blocks()) == 1 and len(model.folded_blocks()[0]) == 4
    folded, unrolled = kfunc.lower(model), kfunc.lower(model, fold_repeated_blocks=False)
    params, state = model.get_variables()
    x, _ = data()
    key = jax.random.key(3)

    def loss(apply, p):
        out, new_state = apply(p, state, x, training=True, key=key)
        return jnp.sum(out ** 2), (out, new_state)

    (_value_f, (out_f, state_f)), grads_f = jax.jit(jax.value_and_grad(lambda p: loss(folded.apply, p), has_aux=True))(params)
    (_value_u, (out_u, state_u)), grads_u = jax.jit(jax.value_and_grad(lambda p: loss(unrolled.apply, p), has_aux=True))(params)
    np.testing.assert_allclose(out_f, out_u, rtol=1e-6, atol=1e-6)
    assert relative_difference(grads_f, grads_u) < 1e-6
    assert_trees_close(state_f, state_u)
    np.testing.assert_allclose(folded.apply(params, state, x)[0], unrolled.apply(params, state, x)[0], rtol=1e-6,
                               atol=1e-6)


def test_dropout_draws_a_distinct_key_per_block():
    # Blocks of Dropout alone on ones: every block's mask must differ from the others'.
    inputs = kfunc.Input((64,))
    x = inputs
    for _ in range(3):
        x = layers.Dropout(0.5)(layers.Activation("linear")(x))
    model = kfunc.Model(inputs, x)
    assert len(model.folded_blocks()) == 1
    # Compare with the unrolled program, which folds the node position into the key.
    ones = np.ones((2, 64), np.float32)
    folded = kfunc.lower(model).apply({}, {}, ones, training=True, key=jax.random.key(0))[0]
    unrolled = kfunc.lower(model, fold_repeated_blocks=False).apply({}, {}, ones, training=True, key=jax.random.key(0))[0]
    np.testing.assert_array_equal(folded, unrolled)
    # Three independent masks of rate 0.5 keep about 1/8 of the units (one shared mask: 1/2).
    kept = float(np.mean(np.asarray(folded) != 0))
    assert kept < 0.3


def test_program_size_does_not_grow_with_depth():
    x, _ = data(4)

    def hlo_lines(n, fold):
        kfunc.utils.clear_session()
        model = residual_model(n)
        params, state = model.get_variables()
        if not fold:
            return len(jax.jit(model.apply).lower(params, state, x).as_text().splitlines())
        folding = BlockFolding.of(model)
        stacked = (folding.stack_tree(params), folding.stack_tree(state))
        run = jax.jit(lambda p, s, v: apply_stacked(model, folding, p, s, v))
        return len(run.lower(*stacked, x).as_text().splitlines())

    assert hlo_lines(2, True) == hlo_lines(6, True)
    assert hlo_lines(6, False) > hlo_lines(2, False) + 20


# ---------------------------------------------------------------------- detection
def _dense_block(activation="relu", units=WIDTH, dtype=None):
    def block(i, x):
        return layers.Dense(units, activation=activation(i) if callable(activation) else activation, dtype=dtype)(x)
    return block


def test_detection_leaves_differing_blocks_unrolled():
    # Config: block 2 has another activation -> blocks 0-1 and 3-5 fold, block 2 stays alone.
    model = residual_model(6, block=_dense_block(lambda i: "tanh" if i == 2 else "relu"))
    assert [len(run) for run in model.folded_blocks()] == [2, 3]
    # Shape: the third layer has other units (its output cannot be the next block's input).
    inputs = kfunc.Input((WIDTH,))
    x = layers.Dense(WIDTH)(layers.Dense(WIDTH)(inputs))
    model = kfunc.Model(inputs, layers.Dense(4)(x))
    assert [len(run) for run in model.folded_blocks()] == [2]
    # Dtype: a float64-policy block differs from float32 ones.
    inputs = kfunc.Input((WIDTH,))
    x = layers.Dense(WIDTH)(layers.Dense(WIDTH)(inputs))
    x = layers.Dense(WIDTH, dtype="bfloat16")(x)
    model = kfunc.Model(inputs, x)
    assert [len(run) for run in model.folded_blocks()] == [2]


def test_detection_refuses_inner_consumers_and_shared_layers():
    inputs = kfunc.Input((WIDTH,))
    x, inner = inputs, []
    for _ in range(3):
        h = layers.Dense(WIDTH)(x)
        inner.append(h)
        x = layers.add([x, h])
    # An inner tensor of the middle block is also a model output: that block cannot fold.
    model = kfunc.Model(inputs, [x, inner[1]])
    assert all(["dense_1", "add_1"] not in run for run in model.folded_blocks())
    kfunc.utils.clear_session()
    shared = layers.Dense(WIDTH)
    inputs = kfunc.Input((WIDTH,))
    x = inputs
    for _ in range(3):
        x = shared(x)
    assert kfunc.Model(inputs, x).folded_blocks() == []


def test_masked_input_runs_unrolled_with_the_same_result():
    inputs = kfunc.Input((5,), dtype="int32")
    x = layers.Embedding(10, WIDTH, mask_zero=True)(inputs)
    for _ in range(3):
        x = layers.add([x, layers.Dense(WIDTH)(x)])
    model = kfunc.Model(inputs, layers.GlobalAveragePooling1D()(x))
    assert len(model.folded_blocks()) == 1
    ids = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 0]], np.int32)
    params, state = model.get_variables()
    folded = kfunc.lower(model).apply(params, state, ids)[0]
    np.testing.assert_allclose(folded, model.apply(params, state, ids)[0], rtol=1e-6)


# ---------------------------------------------------------------------- training
def _trained(fold, *, remat=False, frozen=False, **options):
    kfunc.utils.clear_session()
    kfunc.utils.set_random_seed(0)
    model = residual_model(3, **options)
    if frozen:
        model.layers[-1].trainable = False
    model.compile("adam", "mse", fold_repeated_blocks=fold, remat=remat)
    x, y = data()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model, history.history["loss"]


@pytest.fixture(scope="module")
def trained_pair():
    options = {"dropout": 0.2, "regularized": True}
    return _trained(True, **options), _trained(False, **options)


def test_fit_with_folding_equals_fit_without(trained_pair):
    (folded, losses_f), (unrolled, losses_u) = trained_pair
    np.testing.assert_allclose(losses_f, losses_u, rtol=1e-5)
    assert_trees_close(folded.get_weights(), unrolled.get_weights(), rtol=1e-5, atol=1e-6)
    x, y = data()
    np.testing.assert_allclose(folded.evaluate(x, y, verbose=0), unrolled.evaluate(x, y, verbose=0), rtol=1e-5)


def test_saving_and_set_weights_see_the_model_layout(trained_pair, tmp_path):
    (folded, _), _ = trained_pair
    path = tmp_path / "folded.keras"
    folded.save(path)
    loaded = kfunc.models.load_model(path)
    assert_trees_close(loaded.get_weights(), folded.get_weights(), rtol=0, atol=0)
    x, _ = data()
    np.testing.assert_allclose(loaded.predict(x), folded.predict(x), rtol=1e-6)
    shapes = [w.shape for w in folded.get_weights()]
    assert all(len(s) <= 2 for s in shapes)  # no stacked (count, ...) weights leak out
    folded.set_weights(loaded.get_weights())


@pytest.mark.parametrize("options", [
    {"frozen": True, "remat": True},
    pytest.param({"batchnorm": True}, marks=pytest.mark.slow),
    pytest.param({"remat": "dots_saveable"}, marks=pytest.mark.slow),
])
def test_fit_variants_equal_unrolled(options):
    folded, losses_f = _trained(True, **options)
    unrolled, losses_u = _trained(False, **{k: v for k, v in options.items() if k != "remat"})
    np.testing.assert_allclose(losses_f, losses_u, rtol=1e-5)
    assert_trees_close(folded.get_weights(), unrolled.get_weights(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_backup_and_restore_resumes_exactly_with_folding(tmp_path):
    x, y = data()

    class Stop(kfunc.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    def fresh():
        kfunc.utils.clear_session()
        kfunc.utils.set_random_seed(0)
        model = residual_model(3, dropout=0.2)
        model.compile("adam", "mse")
        return model

    reference = fresh()
    reference.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model = fresh()
    backup = kfunc.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[backup, Stop()])
    resumed = fresh()
    resumed.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[kfunc.callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    assert_trees_close(resumed.get_weights(), reference.get_weights(), rtol=1e-6, atol=1e-7)


def test_summary_names_the_folded_blocks():
    model = residual_model(3)
    lines = []
    model.summary(print_fn=lines.append)
    assert any(line.startswith("Folded: 3 repeated blocks [layer_normalization, dense, add]") for line in lines)
    model.compile("adam", "mse", fold_repeated_blocks=False)
    lines = []
    model.summary(print_fn=lines.append)
    assert not any("Folded" in line for line in lines)


def test_unknown_remat_policy_is_refused():
    model = residual_model(2)
    with pytest.raises(TrainingConfigError, match="remat='everything' is not a known policy"):
        model.compile("adam", "mse", remat="everything")


def test_one_batch_calls_read_folded_blocks_in_the_stacked_layout():
    inputs = kfunc.Input((4,))
    x = inputs
    for _ in range(3):
        x = layers.add([x, layers.Dense(4, activation="relu")(x)])
    model = kfunc.Model(inputs, layers.Dense(1)(x))
    assert model.folded_blocks()
    model.compile("sgd", "mse")
    data = np.linspace(-1, 1, 32, dtype="float32").reshape(8, 4), np.ones((8, 1), "float32")
    np.testing.assert_allclose(model.test_on_batch(*data), model.evaluate(*data, batch_size=8, verbose=0), rtol=1e-6)
    before = model.get_weights()
    model.train_on_batch(*data)
    assert [w.shape for w in model.get_weights()] == [w.shape for w in before]
    assert any(not np.allclose(a, b) for a, b in zip(model.get_weights(), before, strict=True))


def _predict_program(model, x) -> str:
    """The HLO text of the inference program ``predict`` runs on ``x``."""
    forward, params, state = model._inference()
    return forward.lower(params, state, {model.input_names[0]: x}).as_text()


@pytest.mark.parametrize("compiled", [False, True])
def test_predict_folds_repeated_blocks_like_training(compiled):
    model = residual_model(4, batchnorm=True)
    x, y = data()
    if compiled:
        model.compile("adam", "mse")
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    params, state = model.get_variables()
    expected = np.asarray(model.apply(params, state, x)[0])
    np.testing.assert_allclose(model.predict(x, batch_size=8, verbose=0), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x), expected, rtol=1e-6, atol=1e-6)
    assert "while" in _predict_program(model, x[:8])  # the blocks' scan
    model.compile("adam", "mse", fold_repeated_blocks=False)
    assert "while" not in _predict_program(model, x[:8])
    np.testing.assert_allclose(model.predict(x, batch_size=8, verbose=0), expected, rtol=1e-6, atol=1e-6)
