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
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedules import (
    AlternatingSparsity,
    CosineSparsity,
    CubicSparsity,
    CyclicSparsity,
    ExponentialRateSparsity,
    ExponentialSparsity,
    OneCycleSparsity,
    PlanWarning,
    PolynomialSparsity,
    ScaledSparsity,
    SequentialSparsity,
    StepSparsity,
    registry,
)
from schedules.units import epoch_name

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
    "rate": st.one_of(st.floats(-0.5, 1.5), anything),
    "boundaries": st.one_of(st.lists(st.integers(-10, 5000), max_size=6), anything),
    "sparsities": st.one_of(st.lists(st.floats(-0.5, 1.5), max_size=6), anything),
    "num_stages": st.one_of(st.integers(-2, 20), anything),
    "spacing": st.one_of(st.sampled_from(["linear", "geometric", "log", ""]), anything),
    "max_sparsity": st.one_of(st.floats(-0.5, 1.5), anything),
    "orientation": st.one_of(st.sampled_from(["fast_early", "fast_late", "concave", ""]), anything),
    "shape": st.one_of(st.sampled_from(["s_curve", "fast_late", "fast_early", "cos"]), anything),
    "alpha": st.one_of(st.floats(-5, 1500), anything),
    "beta": st.one_of(st.floats(-1500, 1500), anything),
    "sparse_steps": st.one_of(st.integers(-5, 500), anything),
    "dense_steps": st.one_of(st.integers(-5, 500), anything),
    "factor": st.one_of(st.floats(-0.5, 3.0), anything),
}
# Sorted distinct steps, so that boundaries are often valid (and match the number of schedules).
plausible["boundaries"] = st.one_of(
    st.lists(st.integers(0, 5000), unique=True, max_size=3).map(sorted), plausible["boundaries"]
)


#: Our families (tfmot's two are fuzzed as children of the compositions).
OURS = [family for family in registry.families() if family.cls.__module__.startswith("schedules")]


def _name(form) -> str:
    return form.__name__ if isinstance(form, type) else form.__qualname__


#: Every way to build each of our families (`StepSparsity` and `StepSparsity.uniform`, ...).
#: (`ExponentialSparsity.from_rate` only passes its arguments on to `ExponentialRateSparsity`:
#: test_validation checks that it refuses what that refuses.)
CONSTRUCTORS = {_name(form): form for family in OURS for form in family.forms}

STEPS = np.array([0, 1, 2, 99, 100, 101, 999, 4999, 5000, 10**6, 2**24 + 1, 2**40, 2**62], dtype=np.int64)


def _arguments(function):
    return [name for name in inspect.signature(function).parameters if name not in ("self", "cls")]


def test_every_argument_has_a_strategy():
    missing = [
        f"{name}: {arg}" for name, f in sorted(CONSTRUCTORS.items()) for arg in _arguments(f) if arg not in plausible
    ]
    assert not missing, f"arguments with no strategy in `plausible`: {missing}"


class _UnknownPeak(tfmot.sparsity.keras.PruningSchedule):
    """A user's own schedule: its peak sparsity cannot be read from its arguments."""

    def __call__(self, step):
        return tf.equal(tf.math.floormod(step, 10), 0), tf.constant(0.9, tf.float32)

    def get_config(self):
        return {"class_name": "_UnknownPeak", "config": {}}


#: Valid children for the compositions: ours, tfmot's (as objects and as configs) and a user's.
CHILDREN = [
    CubicSparsity(0.0, 0.5, begin_step=0, end_step=100, frequency=10),
    CyclicSparsity(0.0, 0.7, begin_step=0, end_step=99, num_cycles=2, frequency=10),
    StepSparsity([10, 50], [0.3, 0.95]),
    AlternatingSparsity(0.9, begin_step=5, end_step=200, sparse_steps=20, dense_steps=10),
    ExponentialRateSparsity(0.2, 0.99, begin_step=0, frequency=10),
    OneCycleSparsity(0.2, 0.99, begin_step=3, end_step=2**40, frequency=1000),
    tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000, frequency=300),
    tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0),
    _UnknownPeak(),
]
#: The constructors of the families built from plain values (not from other schedules).
_BASIC = sorted(_name(form) for family in OURS if family.command_line for form in family.forms)


@st.composite
def fuzzed_children(draw):
    """A child built by a plain constructor from plausible arguments, or whatever those were if invalid."""
    function = CONSTRUCTORS[draw(st.sampled_from(_BASIC))]
    kwargs = {arg: draw(plausible[arg]) for arg in _arguments(function)}
    try:
        return function(**kwargs)
    except (ValueError, TypeError):
        return kwargs


children = st.one_of(
    st.sampled_from(CHILDREN),
    st.sampled_from([c for c in CHILDREN if not isinstance(c, _UnknownPeak)]).map(lambda c: c.get_config()),
    fuzzed_children(),
    anything,
)
plausible["schedules"] = st.one_of(st.lists(children, max_size=4), anything)
plausible["schedule"] = children


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


def _assert_clear(error: Exception) -> None:
    message = str(error)
    assert "Argument" in message and "Received" in message, message


def _assert_sane(schedule) -> None:
    should_prune, sparsity = (t.numpy() for t in schedule(tf.constant(STEPS)))
    assert should_prune.dtype == np.bool_ and should_prune.shape == STEPS.shape
    assert np.all(np.isfinite(sparsity)) and np.all((sparsity >= 0.0) & (sparsity < 1.0)), (schedule, sparsity)


#: Families whose step arguments `from_epochs` takes in epochs.
EPOCH_FAMILIES = {family.cls.__name__: family.cls for family in OURS if family.cls.step_arguments}
in_epochs = st.one_of(
    st.floats(-1.0, 60.0),
    st.integers(-2, 60),
    st.fractions(min_value=-1, max_value=60),
    anything,
)
# Planned epochs: bounded (check_plan evaluates every planned step), plus bad values.
planned_epochs = st.one_of(
    st.none(), st.floats(-1.0, 30.0), st.sampled_from([0, -1, math.nan, math.inf, True, "5", 2**70, [3]])
)


@pytest.mark.parametrize("name", sorted(EPOCH_FAMILIES))
@settings(settings.get_profile("fuzz"))
@given(data=st.data())
def test_from_epochs_with_any_arguments_builds_a_sane_schedule_or_raises_a_clear_error(name, data):
    cls = EPOCH_FAMILIES[name]
    kwargs = {}
    for arg in _arguments(cls.__init__):
        if arg == "boundaries":
            strategy = st.one_of(st.lists(in_epochs, max_size=4), anything)
        else:
            strategy = in_epochs if arg in cls.step_arguments else plausible[arg]
        kwargs[epoch_name(arg) if arg in cls.step_arguments else arg] = data.draw(strategy, label=arg)
    steps_per_epoch = data.draw(st.one_of(st.integers(-2, 1000), anything), label="steps_per_epoch")
    epochs = data.draw(planned_epochs, label="epochs")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PlanWarning)
            schedule = cls.from_epochs(steps_per_epoch=steps_per_epoch, epochs=epochs, **kwargs)
    except (ValueError, TypeError) as error:
        _assert_clear(error)
        return
    _assert_sane(schedule)


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
            tampered = {**inner, key: bad}
            try:
                cls.from_config(tampered)
            except (ValueError, TypeError) as error:
                assert "Argument" in str(error) and "Received" in str(error), str(error)
            else:
                pytest.fail(f"{cls.__name__}.from_config accepted {key}={bad!r}")


#: A config release 0.1 saved for the open-ended exponential (now `ExponentialRateSparsity`).
EXPONENTIAL_0_1 = {
    "initial_sparsity": 0.1,
    "final_sparsity": 0.85,
    "begin_step": 0,
    "end_step": -1,
    "frequency": 25,
    "rate": 0.2,
}


def test_mutated_0_1_exponential_configs_are_rejected_clearly_or_load_sane():
    """The 0.1 config of the open-ended exponential, one field tampered, missing or added at a time, flat and
    wrapped: `ExponentialSparsity.from_config` raises a clear error or gives a sane schedule."""
    assert type(ExponentialSparsity.from_config(EXPONENTIAL_0_1)) is ExponentialRateSparsity
    configs = [{**EXPONENTIAL_0_1, key: bad} for key in EXPONENTIAL_0_1 for bad in CHILD_MUTATIONS]
    configs += [{k: v for k, v in EXPONENTIAL_0_1.items() if k != key} for key in EXPONENTIAL_0_1]
    configs += [{**EXPONENTIAL_0_1, "surprise": 1}, {**EXPONENTIAL_0_1, "max_sparsity": 0.85}]
    for config in [*configs, *({"class_name": "schedules>ExponentialSparsity", "config": c} for c in configs)]:
        try:
            restored = ExponentialSparsity.from_config(config)
        except (ValueError, TypeError) as error:
            _assert_clear(error)
        else:
            _assert_sane(restored)


#: Compositions of our schedules, and the config path of the child that gets tampered.
COMPOSITIONS = {
    "sequential": (
        lambda: SequentialSparsity(
            [CubicSparsity(0.0, 0.5, 0, 100, frequency=10), StepSparsity([150, 300], [0.6, 0.8])], boundaries=[150]
        ),
        ("schedules", 0),
    ),
    "sequential_second": (
        lambda: SequentialSparsity(
            [
                CubicSparsity(0.0, 0.5, 0, 100, frequency=10),
                AlternatingSparsity(0.8, 150, 300, sparse_steps=20, dense_steps=10),
            ],
            boundaries=[150],
        ),
        ("schedules", 1),
    ),
    "sequential_nested": (
        lambda: SequentialSparsity(
            [
                SequentialSparsity(
                    [CyclicSparsity(0.0, 0.6, 0, 99, num_cycles=2, frequency=10), CosineSparsity(0.6, 0.7, 100, 150)],
                    boundaries=[100],
                ),
                PolynomialSparsity(0.7, 0.9, 200, 300, frequency=10, power=0.5, orientation="fast_late"),
            ],
            boundaries=[200],
        ),
        ("schedules", 0, "config", "schedules", 1),
    ),
    "scaled": (
        lambda: ScaledSparsity(AlternatingSparsity(0.6, 0, 100, sparse_steps=10, dense_steps=10), factor=1.5),
        ("schedule",),
    ),
    "scaled_one_cycle": (
        lambda: ScaledSparsity(OneCycleSparsity(0.1, 0.6, 0, 100, frequency=10, alpha=10.0, beta=3.0), factor=0.5),
        ("schedule",),
    ),
}

#: Compositions of tfmot's schedules (whose own validation is looser than ours).
TFMOT_COMPOSITIONS = {
    "sequential_tfmot": (
        lambda: SequentialSparsity(
            [tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, 0, 100, frequency=10), CubicSparsity(0.5, 0.8, 150, 300)],
            boundaries=[150],
        ),
        ("schedules", 0),
    ),
    "scaled_tfmot": (lambda: ScaledSparsity(tfmot.sparsity.keras.ConstantSparsity(0.4, 10), factor=2.0), ("schedule",)),
}

CHILD_MUTATIONS = ("x", None, math.nan, math.inf, [1, "a"], {"a": 1}, -(10**30), 2**63, 2.5, True)


def _tampered_children(schedule, path):
    """`(key, bad value, tampered composition config, tampered child config)`, one field at a time."""
    import copy

    config = schedule.get_config()

    def child_of(root):
        node = root["config"]
        for key in path:
            node = node[key]
        return node

    mutations = [("class_name", bad) for bad in ("os>system", "schedules>NoSuchSparsity", None, 3)]
    mutations += [("config", bad) for bad in ("x", None, [1])]
    mutations += [(key, bad) for key in child_of(config)["config"] for bad in CHILD_MUTATIONS]
    for key, bad in mutations:
        tampered = copy.deepcopy(config)
        child = child_of(tampered)
        if key in ("class_name", "config"):
            child[key] = bad
        else:
            child["config"][key] = bad
        yield key, bad, tampered, child


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_mutated_child_configs_are_rejected_clearly(name):
    """A tampered child inside a composition's config, one field (or its class name) at a time."""
    make, path = COMPOSITIONS[name]
    schedule = make()
    for key, bad, tampered, _ in _tampered_children(schedule, path):
        try:
            restored = type(schedule).from_config(tampered)
        except (ValueError, TypeError) as error:
            _assert_clear(error)
        else:
            # What our validators accept (True as a step or a power) must still be a sane schedule.
            assert key not in ("class_name", "config"), (key, bad)
            _assert_sane(restored)


@pytest.mark.parametrize("name", sorted(TFMOT_COMPOSITIONS))
def test_mutated_tfmot_child_configs_that_tfmot_rejects_are_rejected_clearly(name):
    """tfmot's own validation decides what a tfmot child may hold; what it rejects must be reported clearly."""
    make, path = TFMOT_COMPOSITIONS[name]
    schedule = make()
    for _key, _bad, tampered, child in _tampered_children(schedule, path):
        try:
            tfmot_cls = getattr(tfmot.sparsity.keras, child["class_name"])
            tfmot_cls.from_config(child["config"])
        except Exception:  # tfmot raises all kinds of errors
            pass
        else:
            continue  # tfmot accepts it (a float step): ours may too (NaN-returning children: see below)
        with pytest.raises((ValueError, TypeError)) as info:
            type(schedule).from_config(tampered)
        _assert_clear(info.value)


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("composition", ["scaled", "sequential"])
def test_a_tfmot_child_with_a_non_finite_step_is_rejected_clearly(composition, value):
    child = tfmot.sparsity.keras.ConstantSparsity(0.4, begin_step=value)
    with pytest.raises((ValueError, TypeError)) as info:
        if composition == "scaled":
            ScaledSparsity(child, factor=0.5)
        else:
            SequentialSparsity([child], boundaries=[])
    _assert_clear(info.value)


@pytest.mark.parametrize(
    "child",
    [
        lambda: tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, 10, 10, frequency=1),  # NaN at step 10 in tfmot
        lambda: tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, 0, 100, power=math.nan),
        lambda: tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, 0, 100, power=-1e30),
    ],
    ids=["one_shot", "nan_power", "negative_power"],
)
@pytest.mark.parametrize("composition", ["scaled", "sequential"])
def test_a_tfmot_child_that_would_return_nan_is_rejected_clearly(composition, child):
    """tfmot accepts these and returns NaN or inf; a composition refuses them at construction,
    also when they come back from a saved config."""
    with pytest.raises(ValueError) as info:
        if composition == "scaled":
            ScaledSparsity(child(), factor=0.5)
        else:
            SequentialSparsity([child()], boundaries=[])
    _assert_clear(info.value)
    with pytest.raises(ValueError):
        ScaledSparsity.from_config({"schedule": child().get_config(), "factor": 0.5})


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
