"""Every layer case of ``tests/layer_cases.py`` as a whole model through ``get_config`` /
``from_config`` and through ``to_json`` / ``model_from_json``: the same layers, names, shapes,
and the same outputs once the weights are copied. The full sweep is slow; the default run takes
the first case of each kfunc.layers module (but those of recurrent, attention and wrapper layers)."""

import jax
import numpy as np
import pytest

import kfunc
from layer_cases import CASES

# Layers whose configs name Python code: they round-trip when that code is given by name.
_CODE_HOLDERS = {"Lambda": "function", "JaxLayer": "call_fn"}


# Modules whose layers take seconds to trace (scans, attention, wrapped functions): the slow sweep.
_SLOW_MODULES = ("recurrent", "rnn", "lstm", "attention", "wrappers", "jax_layer")


def _one_per_module(cases):
    seen, chosen = set(), []
    for case in cases:
        module = type(case.make_kfunc()).__module__
        if module not in seen and not any(word in module for word in _SLOW_MODULES):
            seen.add(module)
            chosen.append(case)
    return chosen


def _model(case):
    inputs = [kfunc.Input(shape=shape, dtype=case.dtype) for shape in case.shapes]
    layer = case.make_kfunc()
    outputs = case.call(layer, inputs if case.multi_input else inputs[0])
    return kfunc.Model(inputs, outputs), layer


def _data(case, seed=0):
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(case.dtype), np.integer):
        return [rng.integers(0, case.int_high, (2, *s)).astype(case.dtype) for s in case.shapes]
    return [rng.normal(size=(2, *s)).astype(case.dtype) for s in case.shapes]


def _custom_objects(layer):
    """What a config of ``layer`` names that only the user can give back (a Lambda's function)."""
    found = {}
    for sub in [layer, *getattr(layer, "sublayers", [])]:
        attribute = _CODE_HOLDERS.get(type(sub).__name__)
        obj = getattr(sub, attribute, None) if attribute else None
        name = getattr(obj, "__name__", None)
        if obj is not None and isinstance(name, str) and name.isidentifier():
            found[name] = obj
    return found


def _check_round_trip(case):
    model, layer = _model(case)
    custom = _custom_objects(layer)
    code_holder = type(layer).__name__ in _CODE_HOLDERS
    if code_holder and not custom:
        # Code without a name: refused when written or when read, never run from the config.
        with pytest.raises((kfunc.saving.SavingError, kfunc.saving.ModelFileError),
                           match="no name a config can refer to|neither registered|neither built into kfunc"):
            kfunc.Model.from_config(model.get_config())
        return
    rebuilt = kfunc.Model.from_config(model.get_config(), custom_objects=custom)
    from_json = kfunc.models.model_from_json(model.to_json(), custom_objects=custom)
    x = _data(case)
    inputs = x if case.multi_input else x[0]
    expected = jax.tree_util.tree_leaves(model(inputs))
    for other in (rebuilt, from_json):
        assert [l.name for l in other.layers] == [l.name for l in model.layers]
        assert [type(l) for l in other.layers] == [type(l) for l in model.layers]
        assert other.output_shape == model.output_shape
        assert [w.shape for w in other.get_weights()] == [w.shape for w in model.get_weights()]
    rebuilt.set_weights(model.get_weights())
    for got, want in zip(jax.tree_util.tree_leaves(rebuilt(inputs)), expected, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    assert kfunc.models.model_from_json(from_json.to_json()).get_config() == from_json.get_config()


@pytest.mark.parametrize("case", _one_per_module(CASES), ids=lambda c: c.id)
def test_round_trip_one_case_per_layers_module(case):
    _check_round_trip(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_round_trip_every_layer_case(case):
    _check_round_trip(case)
