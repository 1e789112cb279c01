"""Fuzzing every constructor and call: bad input gets a clear error, never a NaN or a crash.

Any argument values at all (numbers of every kind, NaN, infinities, bools,
None, strings, containers) go into every constructor. Either the schedule is
built, and then it gives sparsity in [0, 1) at every step from 0 to 2**62, or
construction raises `ValueError`/`TypeError` with the Keras message shape
("Argument `name` ... Received: ..."). Any other exception is a bug.
"""

from __future__ import annotations

import inspect
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedules import CubicSparsity, CyclicSparsity, ExponentialSparsity, StepSparsity

settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 2, 0.0, 0.5, 0.999, 1.0, 100, 2**62, 2**62 + 1, 2**63, math.nan, -0.0]),
    st.text(max_size=4),
    st.just([]),
    st.lists(st.integers(-5, 2000), max_size=4),
    st.lists(st.floats(allow_nan=True), max_size=4),
    st.just({}),
    st.just(np.int64(7)),
    st.just(np.float32(0.5)),
)

plausible = {
    "initial_sparsity": st.one_of(st.floats(-0.5, 1.5), anything),
    "final_sparsity": st.one_of(st.floats(-0.5, 1.5), anything),
    "begin_step": st.one_of(st.integers(-10, 5000), anything),
    "end_step": st.one_of(st.integers(-10, 5000), anything),
    "frequency": st.one_of(st.integers(-5, 500), anything),
    "num_cycles": st.one_of(st.integers(-2, 50), anything),
    "power": st.one_of(st.floats(-2, 10), anything),
    "rate": st.one_of(st.none(), st.floats(-0.5, 1.5), anything),
    "boundaries": st.one_of(st.lists(st.integers(-10, 5000), max_size=6), anything),
    "sparsities": st.one_of(st.lists(st.floats(-0.5, 1.5), max_size=6), anything),
    "num_stages": st.one_of(st.integers(-2, 20), anything),
    "spacing": st.one_of(st.sampled_from(["linear", "geometric", "log", ""]), anything),
    "max_sparsity": st.one_of(st.floats(-0.5, 1.5), anything),
}

CONSTRUCTORS = {
    "ExponentialSparsity": ExponentialSparsity,
    "ExponentialSparsity.from_rate": ExponentialSparsity.from_rate,
    "CubicSparsity": CubicSparsity,
    "StepSparsity": StepSparsity,
    "StepSparsity.uniform": StepSparsity.uniform,
    "CyclicSparsity": CyclicSparsity,
}

STEPS = np.array([0, 1, 2, 99, 100, 101, 999, 4999, 5000, 10**6, 2**24 + 1, 2**40, 2**62], dtype=np.int64)


def _arguments(function):
    return [name for name in inspect.signature(function).parameters if name not in ("self", "cls")]


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
@settings(settings.get_profile("fuzz"))
@given(data=st.data())
def test_any_arguments_build_a_sane_schedule_or_raise_a_clear_error(name, data):
    function = CONSTRUCTORS[name]
    kwargs = {arg: data.draw(plausible[arg], label=arg) for arg in _arguments(function)}
    try:
        schedule = function(**kwargs)
    except (ValueError, TypeError) as error:
        message = str(error)
        assert "Argument" in message and "Received" in message, message
        return
    should_prune, sparsity = (t.numpy() for t in schedule(tf.constant(STEPS)))
    assert should_prune.dtype == np.bool_
    assert np.all(np.isfinite(sparsity)) and np.all((sparsity >= 0.0) & (sparsity < 1.0)), (schedule, sparsity)


@pytest.mark.parametrize("step", [0.5, "7", None, [1.5], True, tf.constant(1.0), tf.constant([1, 2], tf.float16)])
def test_calls_with_a_non_integer_step_raise_type_error(schedule, step):
    with pytest.raises(TypeError, match="step"):
        schedule(step)


def test_mutated_configs_are_rejected_clearly(schedule):
    """Unknown keys, missing keys and wrong types, one field at a time."""
    inner = schedule.get_config()["config"]
    cls = type(schedule)
    for key in inner:
        for bad in ("x", None, math.nan, [1, "a"], {"a": 1}, -(10**30)):
            if bad is None and key == "rate":
                continue  # rate=None is the valid default
            tampered = {**inner, key: bad}
            try:
                cls.from_config(tampered)
            except (ValueError, TypeError) as error:
                assert "Argument" in str(error) and "Received" in str(error), str(error)
            else:
                pytest.fail(f"{cls.__name__}.from_config accepted {key}={bad!r}")


# --- tampered configs inside saved models -----------------------------------------------


def _find_schedule_configs(node):
    if isinstance(node, dict):
        if "pruning_schedule" in node:
            yield node
        for value in node.values():
            yield from _find_schedule_configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _find_schedule_configs(value)


@pytest.fixture(scope="module")
def saved_keras_model(tmp_path_factory):
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from schedules import CyclicSparsity

    schedule = CyclicSparsity(0.0, 0.6, 0, 99, num_cycles=2, frequency=10)
    model = keras.Sequential(
        [
            keras.layers.Input((4,)),
            tfmot.sparsity.keras.prune_low_magnitude(keras.layers.Dense(3), pruning_schedule=schedule),
        ]
    )
    model.compile("sgd", "mse")
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    model.save(path)
    return path


def _tampered_copy(path, directory, mutate):
    import json
    import zipfile

    with zipfile.ZipFile(path) as original:
        contents = {name: original.read(name) for name in original.namelist()}
    config = json.loads(contents["config.json"])
    for holder in _find_schedule_configs(config):
        mutate(holder["pruning_schedule"])
    contents["config.json"] = json.dumps(config).encode()
    target = directory / "tampered.keras"
    with zipfile.ZipFile(target, "w") as copy:
        for name, data in contents.items():
            copy.writestr(name, data)
    return target


@pytest.mark.parametrize(
    "mutate, error, message",
    [
        (lambda s: s["config"].update(surprise=1), ValueError, r"unknown keys \['surprise'\]"),
        (lambda s: s["config"].pop("end_step"), ValueError, r"missing keys \['end_step'\]"),
        (lambda s: s["config"].update(frequency="10"), TypeError, r"Argument `frequency` .* Received: frequency='10'"),
        (lambda s: s["config"].update(num_cycles=10**6), ValueError, r"Argument `num_cycles` must be an integer in"),
        (lambda s: s["config"].update(final_sparsity=1.0), ValueError, r"Argument `final_sparsity`"),
        (
            lambda s: s.update(class_name="os>system"),
            ValueError,
            r"pruning_schedule='os>system' of type str, not a tfmot PruningSchedule",
        ),
        (lambda s: s.update(class_name="eval", config="__import__('os')._exit(3)"), ValueError, r"not registered"),
    ],
    ids=["unknown-key", "missing-key", "wrong-type", "out-of-range", "bad-sparsity", "unknown-class", "code"],
)
def test_tampered_saved_model_fails_to_load_with_a_clear_error(saved_keras_model, tmp_path, mutate, error, message):
    import schedules

    tampered = _tampered_copy(saved_keras_model, tmp_path, mutate)
    with pytest.raises(error, match=message):
        schedules.load_model(tampered)


def test_load_model_restores_the_untampered_model(saved_keras_model):
    import schedules

    model = schedules.load_model(saved_keras_model)
    assert type(model.layers[0].pruning_schedule) is schedules.CyclicSparsity


@pytest.mark.parametrize(
    "mutate, error, message",
    [
        (lambda s: s["config"].update(power="3"), TypeError, r"Argument `power` .* Received: power='3'"),
        (lambda s: s.update(class_name="subprocess>run"), ValueError, r"Unknown object: .subprocess>run."),
    ],
    ids=["wrong-type", "unknown-class"],
)
def test_tampered_h5_model_fails_to_load_with_a_clear_error(saved_keras_model, tmp_path, mutate, error, message):
    import json
    import shutil

    import h5py

    import schedules

    model = schedules.load_model(saved_keras_model)
    path = tmp_path / "model.h5"
    model.save(path)
    tampered = tmp_path / "tampered.h5"
    shutil.copy(path, tampered)
    with h5py.File(tampered, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        for holder in _find_schedule_configs(config):
            mutate(holder["pruning_schedule"])
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(error, match=message):
        schedules.load_model(tampered)
