"""Every bad argument is rejected at construction with a message naming it,
the received value and the allowed range."""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
from _registry import CASES

from schedules import (
    AlternatingSparsity,
    CosineSparsity,
    CubicSparsity,
    CyclicSparsity,
    ExponentialRateSparsity,
    ExponentialSparsity,
    OneCycleSparsity,
    PolynomialSparsity,
    ScaledSparsity,
    SequentialSparsity,
    StepSparsity,
    registry,
)
from schedules.composition import peak_sparsity

#: Our families (tfmot's two validate their arguments their own way).
OURS = [family for family in registry.families() if family.cls.__module__.startswith("schedules")]


#: Each case of `_registry.CASES`, built once.
BUILT = {name: CASES[name](0) for name in sorted(CASES)}


def case_config(cls: type) -> dict:
    """Valid constructor arguments of `cls`: the config of its first case in `_registry.CASES`
    (empty if it has none, which `test_every_family_has_a_case` reports)."""
    for schedule in BUILT.values():
        if type(schedule) is cls:
            return schedule.get_config()["config"]
    return {}


def test_every_family_has_a_case():
    covered = {type(schedule) for schedule in BUILT.values()}
    missing = [family.name for family in OURS if family.cls not in covered]
    assert not missing, f"families with no case in _registry.CASES (so no valid arguments here): {missing}"


RAMP = {"initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_step": 10, "end_step": 110, "frequency": 10}
CYCLIC = {**RAMP, "num_cycles": 2, "power": 3}


def _parameters(function) -> dict[str, inspect.Parameter]:
    return {name: p for name, p in inspect.signature(function).parameters.items() if name not in ("self", "cls")}


# (constructor, valid arguments) for the families whose constructor takes the whole window
# (initial and final sparsity, begin and end step, frequency): the window is RAMP's, the rest
# of the arguments those of the family's case.
RAMPS = [
    pytest.param(family.cls, {**case_config(family.cls), **RAMP}, id=family.name)
    for family in OURS
    if set(RAMP) <= set(_parameters(family.cls))
]


def test_the_window_families_are_found():
    assert {param.id for param in RAMPS} >= {"cubic", "exponential", "cyclic", "power", "cosine", "one_cycle"}


# (argument, bad value, exception, the words the message must contain)
COMMON = [
    ("initial_sparsity", 1.0, ValueError, r"`initial_sparsity` must be a finite number in \[0.0, 1.0\).*=1.0"),
    ("initial_sparsity", -0.1, ValueError, r"`initial_sparsity`.*Received: initial_sparsity=-0.1"),
    ("initial_sparsity", math.nan, ValueError, r"`initial_sparsity`.*=nan"),
    ("initial_sparsity", True, TypeError, r"`initial_sparsity`.*=True"),
    ("initial_sparsity", "0.5", TypeError, r"`initial_sparsity`.*='0.5'"),
    ("final_sparsity", math.inf, ValueError, r"`final_sparsity`.*=inf"),
    ("final_sparsity", 0.99999999, ValueError, r"`final_sparsity`.*below 1 in float32"),
    ("final_sparsity", None, TypeError, r"`final_sparsity`.*=None"),
    ("begin_step", -1, ValueError, r"`begin_step` must be an integer in \[0, 4611686018427387904\].*=-1"),
    ("begin_step", 10.0, TypeError, r"`begin_step`.*=10.0"),
    ("begin_step", False, TypeError, r"`begin_step`.*=False"),
    ("begin_step", 2**62 + 1, ValueError, r"`begin_step`"),
    ("end_step", 9, ValueError, r"`end_step` must be an integer in \[begin_step, .*\] = \[10, .*=9"),
    ("end_step", 110.5, TypeError, r"`end_step`.*=110.5"),
    ("end_step", -1, ValueError, r"`end_step` must be an integer in \[begin_step, .*Received: end_step=-1"),
    ("frequency", 0, ValueError, r"`frequency` must be an integer in \[1, .*Received: frequency=0"),
    ("frequency", 2.0, TypeError, r"`frequency`.*=2.0"),
]


@pytest.mark.parametrize("cls, valid", RAMPS)
@pytest.mark.parametrize("name, bad, error, message", COMMON)
def test_ramp_arguments_are_validated(cls, valid, name, bad, error, message):
    cls(**valid)  # the valid arguments are valid
    with pytest.raises(error, match=message):
        cls(**{**valid, name: bad})


def test_exponential_without_an_end_points_at_exponential_rate_sparsity():
    with pytest.raises(
        ValueError,
        match=r"Argument `end_step` must be an integer in \[begin_step, .*use ExponentialRateSparsity or "
        r"ExponentialSparsity.from_rate. Received: end_step=-1$",
    ):
        ExponentialSparsity(0.0, 0.9, 10, -1, frequency=10)
    with pytest.raises(TypeError, match="rate"):  # the 0.1 way of asking for it
        ExponentialSparsity(0.0, 0.9, 10, -1, frequency=10, rate=0.2)


EXPONENTIAL_RATE = {"rate": 0.2, "max_sparsity": 0.9, "begin_step": 10, "frequency": 10, "initial_sparsity": 0.1}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"rate": 0.0}, ValueError, r"`rate` must be a finite number in \(0.0, 1.0\). Received: rate=0.0$"),
        ({"rate": 1.0}, ValueError, r"`rate`.*Received: rate=1.0$"),
        ({"rate": -0.1}, ValueError, r"`rate`.*Received: rate=-0.1$"),
        ({"rate": math.nan}, ValueError, r"`rate`.*Received: rate=nan$"),
        ({"rate": math.inf}, ValueError, r"`rate`.*Received: rate=inf$"),
        ({"rate": "0.1"}, TypeError, r"`rate`.*Received: rate='0.1'$"),
        ({"rate": None}, TypeError, r"`rate`.*Received: rate=None$"),
        ({"rate": True}, TypeError, r"`rate`.*Received: rate=True$"),
        (
            {"max_sparsity": 1.0},
            ValueError,
            r"`max_sparsity` must be a finite number in \[0.0, 1.0\). Received: max_sparsity=1.0$",
        ),
        ({"max_sparsity": 0.99999999}, ValueError, r"`max_sparsity`.*below 1 in float32.*=0.99999999$"),
        ({"max_sparsity": -0.1}, ValueError, r"`max_sparsity`.*Received: max_sparsity=-0.1$"),
        ({"max_sparsity": math.nan}, ValueError, r"`max_sparsity`.*Received: max_sparsity=nan$"),
        ({"max_sparsity": "0.9"}, TypeError, r"`max_sparsity`.*Received: max_sparsity='0.9'$"),
        ({"max_sparsity": None}, TypeError, r"`max_sparsity`.*Received: max_sparsity=None$"),
        (
            {"begin_step": -1},
            ValueError,
            r"`begin_step` must be an integer in \[0, 4611686018427387904\]. Received: begin_step=-1$",
        ),
        ({"begin_step": 2**62 + 1}, ValueError, r"`begin_step`.*Received: begin_step=4611686018427387905$"),
        ({"begin_step": 10.0}, TypeError, r"`begin_step`.*Received: begin_step=10.0$"),
        ({"begin_step": False}, TypeError, r"`begin_step`.*Received: begin_step=False$"),
        ({"frequency": 0}, ValueError, r"`frequency` must be an integer in \[1, .*Received: frequency=0$"),
        ({"frequency": -5}, ValueError, r"`frequency`.*Received: frequency=-5$"),
        ({"frequency": 2.0}, TypeError, r"`frequency`.*Received: frequency=2.0$"),
        ({"frequency": True}, TypeError, r"`frequency`.*Received: frequency=True$"),
        (
            {"initial_sparsity": 1.0},
            ValueError,
            r"`initial_sparsity` must be a finite number in \[0.0, 1.0\). Received: initial_sparsity=1.0$",
        ),
        ({"initial_sparsity": -0.1}, ValueError, r"`initial_sparsity`.*Received: initial_sparsity=-0.1$"),
        ({"initial_sparsity": math.nan}, ValueError, r"`initial_sparsity`.*Received: initial_sparsity=nan$"),
        ({"initial_sparsity": None}, TypeError, r"`initial_sparsity`.*Received: initial_sparsity=None$"),
        (
            {"initial_sparsity": 0.9, "max_sparsity": 0.5},
            ValueError,
            r"`max_sparsity` must be >= initial_sparsity .*Received: max_sparsity=0.5, initial_sparsity=0.9$",
        ),
        (
            {"initial_sparsity": 0.5000001, "max_sparsity": 0.5},
            ValueError,
            r"`max_sparsity` must be >= initial_sparsity .*max_sparsity=0.5, initial_sparsity=0.5000001$",
        ),
    ],
)
def test_exponential_rate_arguments(kwargs, error, message):
    ExponentialRateSparsity(**EXPONENTIAL_RATE)  # the valid arguments are valid
    ExponentialRateSparsity(**{**EXPONENTIAL_RATE, "max_sparsity": 0.1})  # the cap may be where it starts
    with pytest.raises(error, match=message):
        ExponentialRateSparsity(**{**EXPONENTIAL_RATE, **kwargs})
    with pytest.raises(error, match=message):
        ExponentialSparsity.from_rate(**{**EXPONENTIAL_RATE, **kwargs})


# --- keyword-only arguments ------------------------------------------------------------


def _valid_forms():
    """`{name: (callable, valid keyword arguments)}` for every family's constructor and its other forms."""
    forms = {}
    for family in OURS:
        forms[family.cls.__name__] = (family.cls, case_config(family.cls))
    forms["StepSparsity.uniform"] = (
        StepSparsity.uniform,
        {"initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_step": 10, "end_step": 110, "num_stages": 4},
    )
    forms["ExponentialSparsity.from_rate"] = (ExponentialSparsity.from_rate, case_config(ExponentialRateSparsity))
    return forms


FORMS = _valid_forms()


def test_every_form_of_every_family_has_valid_arguments():
    missing = [
        f"{family.name}: {form.__qualname__}"
        for family in OURS
        for form in family.forms
        if (form.__name__ if isinstance(form, type) else form.__qualname__) not in FORMS
    ]
    assert not missing, f"forms with no valid arguments in FORMS: {missing}"


KEYWORD_ONLY = sorted(
    name
    for name, (function, _) in FORMS.items()
    if any(p.kind is inspect.Parameter.KEYWORD_ONLY for p in _parameters(function).values())
)


def test_the_keyword_only_forms_are_found():
    assert set(KEYWORD_ONLY) >= {
        "AlternatingSparsity",
        "CubicSparsity",
        "ExponentialRateSparsity",
        "ExponentialSparsity.from_rate",
        "ScaledSparsity",
        "SequentialSparsity",
        "StepSparsity.uniform",
    }


@pytest.mark.parametrize("name", KEYWORD_ONLY)
def test_arguments_after_the_window_are_keyword_only(name):
    """Passing the first keyword-only argument by position is a TypeError, however many come before it."""
    function, valid = FORMS[name]
    parameters = _parameters(function)
    positional = [n for n, p in parameters.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    first_keyword = next(n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    values = {**{n: p.default for n, p in parameters.items() if p.default is not inspect.Parameter.empty}, **valid}
    function(**valid)  # by keyword, fine
    function(*[values[n] for n in positional], **{n: values[n] for n in valid if n not in positional})
    with pytest.raises(TypeError, match="positional argument"):
        function(
            *[values[n] for n in [*positional, first_keyword]],
            **{n: values[n] for n in valid if n not in [*positional, first_keyword]},
        )


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_cycles": 0}, ValueError, r"`num_cycles` must be an integer in \[1, 50\].*num_cycles=0"),
        ({"num_cycles": 51}, ValueError, r"`num_cycles` must be an integer in \[1, 50\].*num_cycles=51"),
        ({"num_cycles": 2.0}, TypeError, r"`num_cycles`.*num_cycles=2.0"),
        ({"power": 0}, ValueError, r"`power` must be a finite number in \(0.0, .*power=0"),
        ({"power": -1.0}, ValueError, r"`power`.*power=-1.0"),
        ({"power": math.inf}, ValueError, r"`power`.*power=inf"),
        ({"power": "3"}, TypeError, r"`power`.*power='3'"),
    ],
)
def test_cyclic_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        CyclicSparsity(**{**CYCLIC, **kwargs})


def test_cyclic_step_range_product_must_fit_int64():
    with pytest.raises(ValueError, match="2\\*\\*63"):
        CyclicSparsity(0.0, 0.5, 0, 2**62, num_cycles=2**40)


@pytest.mark.parametrize(
    "boundaries, sparsities, error, message",
    [
        ([], [], ValueError, r"`boundaries` must be a non-empty list"),
        ("100", [0.5], TypeError, r"`boundaries` must be a non-empty list.*='100'"),
        (100, [0.5], TypeError, r"`boundaries`.*=100"),
        ([100], 0.5, TypeError, r"`sparsities`.*=0.5"),
        ([100, 50], [0.1, 0.2], ValueError, r"`boundaries` must be strictly increasing.*\[100, 50\]"),
        ([100, 100], [0.1, 0.2], ValueError, r"strictly increasing"),
        ([100, 200], [0.1], ValueError, r"same length.*len\(boundaries\)=2, len\(sparsities\)=1"),
        ([-5], [0.1], ValueError, r"`boundaries\[0\]` must be an integer in \[0, .*=-5"),
        ([0, 1.5], [0.1, 0.2], TypeError, r"`boundaries\[1\]`.*=1.5"),
        ([0, 10], [0.1, 1.0], ValueError, r"`sparsities\[1\]` must be a finite number in \[0.0, 1.0\).*=1.0"),
        ([0, 10], [math.nan, 0.1], ValueError, r"`sparsities\[0\]`.*=nan"),
    ],
)
def test_step_arguments(boundaries, sparsities, error, message):
    with pytest.raises(error, match=message):
        StepSparsity(boundaries, sparsities)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_stages": 0}, ValueError, r"`num_stages` must be an integer in \[1, 101\].*num_stages=0"),
        ({"num_stages": 102}, ValueError, r"`num_stages`.*num_stages=102"),
        ({"num_stages": 1}, ValueError, r"`num_stages` must be >= 2 when begin_step != end_step"),
        ({"spacing": "log"}, ValueError, r"`spacing` must be one of 'linear', 'geometric'.*spacing='log'"),
        ({"end_step": 5}, ValueError, r"`end_step`.*=5"),
        ({"final_sparsity": 1.5}, ValueError, r"`final_sparsity`.*=1.5"),
    ],
)
def test_uniform_stairs_arguments(kwargs, error, message):
    valid = {"initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_step": 10, "end_step": 110, "num_stages": 4}
    StepSparsity.uniform(**valid)
    with pytest.raises(error, match=message):
        StepSparsity.uniform(**{**valid, **kwargs})


def test_one_stage_is_a_one_shot():
    stairs = StepSparsity.uniform(0.0, 0.8, 10, 10, num_stages=1)
    assert stairs.boundaries == [10] and stairs.sparsities == [0.8]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"power": 0}, ValueError, r"`power` must be a finite number in \(0.0, 1000000.0\]. Received: power=0"),
        ({"power": -0.5}, ValueError, r"`power`.*Received: power=-0.5"),
        ({"power": 2e6}, ValueError, r"`power`.*Received: power=2000000.0"),
        ({"power": math.nan}, ValueError, r"`power`.*Received: power=nan"),
        ({"power": math.inf}, ValueError, r"`power`.*Received: power=inf"),
        ({"power": "3"}, TypeError, r"`power`.*Received: power='3'"),
        ({"power": True}, TypeError, r"`power`.*Received: power=True"),
        (
            {"orientation": "concave"},
            ValueError,
            r"`orientation` must be one of 'fast_early', 'fast_late'. Received: orientation='concave'",
        ),
        ({"orientation": "cubic"}, ValueError, r"`orientation`.*Received: orientation='cubic'"),
        ({"orientation": "FAST_EARLY"}, ValueError, r"`orientation`.*Received: orientation='FAST_EARLY'"),
        ({"orientation": None}, TypeError, r"`orientation`.*Received: orientation=None"),
        ({"orientation": ["fast_early"]}, TypeError, r"`orientation`.*Received: orientation=\[.fast_early.\]"),
    ],
)
def test_polynomial_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        PolynomialSparsity(**{**RAMP, **kwargs})


@pytest.mark.parametrize(
    "shape, message",
    [
        ("cos", r"`shape` must be one of 's_curve', 'fast_late', 'fast_early'. Received: shape='cos'"),
        ("s-curve", r"`shape`.*Received: shape='s-curve'"),
        ("", r"`shape`.*Received: shape=''"),
    ],
)
def test_cosine_shape(shape, message):
    with pytest.raises(ValueError, match=message):
        CosineSparsity(**{**RAMP, "shape": shape})


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"alpha": 0}, ValueError, r"`alpha` must be a finite number in \(0.0, 1000.0\]. Received: alpha=0"),
        ({"alpha": -14.0}, ValueError, r"`alpha`.*Received: alpha=-14.0"),
        ({"alpha": 1000.5}, ValueError, r"`alpha`.*Received: alpha=1000.5"),
        ({"alpha": math.nan}, ValueError, r"`alpha`.*Received: alpha=nan"),
        ({"alpha": "14"}, TypeError, r"`alpha`.*Received: alpha='14'"),
        ({"beta": 1000.5}, ValueError, r"`beta` must be a finite number in \[-1000.0, 1000.0\]. Received: beta=1000.5"),
        ({"beta": -1001}, ValueError, r"`beta`.*Received: beta=-1001"),
        ({"beta": -math.inf}, ValueError, r"`beta`.*Received: beta=-inf"),
        ({"beta": None}, TypeError, r"`beta`.*Received: beta=None"),
        # Valid alone, but the logistic hardly rises over the window:
        ({"alpha": 1e-9}, ValueError, r"`alpha` and `beta` must be such that the logistic rises by more than 1e-6"),
        ({"alpha": 1e-9}, ValueError, r"Received: alpha=1e-09, beta=6.0"),
        ({"alpha": 1.0, "beta": 1000.0}, ValueError, r"rises by more than 1e-6.*alpha=1.0, beta=1000.0"),
        ({"alpha": 14.0, "beta": -1000.0}, ValueError, r"rises by more than 1e-6.*alpha=14.0, beta=-1000.0"),
        ({"alpha": 1.0, "beta": 30.0}, ValueError, r"`alpha` and `beta`.*Received: alpha=1.0, beta=30.0"),
    ],
)
def test_one_cycle_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        OneCycleSparsity(**{**RAMP, "alpha": 14.0, "beta": 6.0, **kwargs})


ALTERNATING = {"final_sparsity": 0.8, "begin_step": 10, "end_step": 110, "sparse_steps": 20, "dense_steps": 15}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"final_sparsity": 1.0}, ValueError, r"`final_sparsity` must be a finite number in \[0.0, 1.0\).*=1.0"),
        ({"final_sparsity": -0.1}, ValueError, r"`final_sparsity`.*Received: final_sparsity=-0.1"),
        ({"final_sparsity": "0.8"}, TypeError, r"`final_sparsity`.*Received: final_sparsity='0.8'"),
        ({"begin_step": -1}, ValueError, r"`begin_step` must be an integer in \[0, .*Received: begin_step=-1"),
        ({"begin_step": 10.0}, TypeError, r"`begin_step`.*Received: begin_step=10.0"),
        ({"end_step": 9}, ValueError, r"`end_step` must be an integer in \[begin_step, .*\] = \[10, .*end_step=9"),
        ({"end_step": -1}, ValueError, r"`end_step`.*Received: end_step=-1"),
        ({"end_step": 110.0}, TypeError, r"`end_step`.*Received: end_step=110.0"),
        ({"sparse_steps": 0}, ValueError, r"`sparse_steps` must be an integer in \[1, .*Received: sparse_steps=0"),
        ({"sparse_steps": -5}, ValueError, r"`sparse_steps`.*Received: sparse_steps=-5"),
        ({"sparse_steps": 2.0}, TypeError, r"`sparse_steps`.*Received: sparse_steps=2.0"),
        ({"dense_steps": 0}, ValueError, r"`dense_steps` must be an integer in \[1, .*Received: dense_steps=0"),
        ({"dense_steps": True}, TypeError, r"`dense_steps`.*Received: dense_steps=True"),
        ({"dense_steps": 2**62 + 1}, ValueError, r"`dense_steps`.*Received: dense_steps=4611686018427387905"),
        ({"sparse_steps": 2**61, "dense_steps": 2**62}, ValueError, r"`sparse_steps` \+ `dense_steps` must be at most"),
    ],
)
def test_alternating_arguments(kwargs, error, message):
    AlternatingSparsity(**ALTERNATING)
    with pytest.raises(error, match=message):
        AlternatingSparsity(**{**ALTERNATING, **kwargs})


@tf_keras.utils.register_keras_serializable(package="tests")
class UnknownPeak(tfmot.sparsity.keras.PruningSchedule):
    """A minimal registered custom schedule: its peak sparsity cannot be read from its arguments."""

    def __call__(self, step):
        return tf.equal(tf.math.floormod(step, 10), 0), tf.constant(0.5, tf.float32)

    def get_config(self):
        return {"class_name": "tests>UnknownPeak", "config": {}}

    @classmethod
    def from_config(cls, config):
        return cls()


class Unregistered(tfmot.sparsity.keras.PruningSchedule):
    """A custom schedule nobody registered: it would not reload inside a saved model."""

    def __call__(self, step):
        return tf.equal(tf.math.floormod(step, 10), 0), tf.constant(0.5, tf.float32)

    def get_config(self):
        return {"class_name": "Unregistered", "config": {}}


def test_an_unregistered_child_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"`schedules\[1\]` must be a schedule whose class is registered"):
        SequentialSparsity([cubic(), Unregistered()], boundaries=[50])
    with pytest.raises(ValueError, match=r"`schedule` must be a schedule whose class is registered.*'Unregistered'"):
        ScaledSparsity(Unregistered(), factor=0.5)


def test_numpy_boundaries_and_numpy_tfmot_arguments_are_accepted_and_saved_as_json():

    child = tfmot.sparsity.keras.ConstantSparsity(np.float32(0.5), np.int64(0), frequency=np.int64(10))
    schedule = SequentialSparsity([cubic(), child], boundaries=np.array([50]))
    restored = SequentialSparsity.from_config(json.loads(json.dumps(schedule.get_config())))
    assert restored.get_config() == schedule.get_config() and restored.boundaries == [50]


def cubic():
    return CubicSparsity(0.0, 0.8, begin_step=0, end_step=100, frequency=10)


@pytest.mark.parametrize(
    "schedules, boundaries, error, message",
    [
        ([], [], ValueError, r"`schedules` must be a non-empty list.*Received: schedules=\[\]"),
        (cubic(), [], TypeError, r"`schedules` must be a non-empty list.*Received: schedules=CubicSparsity\("),
        ("cubic", [], TypeError, r"`schedules` must be a non-empty list.*Received: schedules='cubic'"),
        (
            [cubic(), 42],
            [50],
            TypeError,
            r"`schedules\[1\]` must be a tfmot PruningSchedule or its get_config\(\) dict. Received: schedules\[1\]=42",
        ),
        ([cubic(), "cubic"], [50], TypeError, r"`schedules\[1\]`.*Received: schedules\[1\]='cubic'"),
        ([None, cubic()], [50], TypeError, r"`schedules\[0\]`.*Received: schedules\[0\]=None"),
        (
            [cubic(), {"class_name": "NoSuchSchedule", "config": {}}],
            [50],
            ValueError,
            r"`schedules\[1\]` must be a tfmot PruningSchedule.*'NoSuchSchedule' is not a known schedule",
        ),
        (
            [cubic(), {"class_name": "schedules>CubicSparsity", "config": {"initial_sparsity": 0.0}}],
            [50],
            ValueError,
            r"`schedules\[1\]` must be .*missing keys \['final_sparsity', 'begin_step', 'end_step'\]",
        ),
        (
            [cubic(), {"class_name": "PolynomialDecay", "config": {**RAMP, "final_sparsity": 1.5}}],
            [50],
            ValueError,
            r"`schedules\[1\]` must be .*final_sparsity must be in range \[0,1\)",
        ),
        ([cubic(), {"config": {}}], [50], ValueError, r"`schedules\[1\]` must be a tfmot PruningSchedule"),
        (
            [cubic(), cubic()],
            [],
            ValueError,
            r"`boundaries` must be one step fewer than there are schedules. "
            r"Received: len\(boundaries\)=0, len\(schedules\)=2",
        ),
        ([cubic(), cubic()], [50, 60], ValueError, r"len\(boundaries\)=2, len\(schedules\)=2"),
        ([cubic()], [50], ValueError, r"len\(boundaries\)=1, len\(schedules\)=1"),
        (
            [cubic(), cubic(), cubic()],
            [60, 50],
            ValueError,
            r"`boundaries` must be strictly increasing \(boundaries\[1\]=50 <= boundaries\[0\]=60\)"
            r". Received: boundaries=\[60, 50\]",
        ),
        ([cubic(), cubic(), cubic()], [50, 50], ValueError, r"`boundaries` must be strictly increasing"),
        ([cubic(), cubic()], [-1], ValueError, r"`boundaries\[0\]` must be an integer in \[0, .*=-1"),
        ([cubic(), cubic()], [50.0], TypeError, r"`boundaries\[0\]`.*Received: boundaries\[0\]=50.0"),
        ([cubic(), cubic()], 50, TypeError, r"`boundaries` must be a list of integer steps. Received: boundaries=50"),
        ([cubic(), cubic()], "50", TypeError, r"`boundaries` must be a list.*Received: boundaries='50'"),
    ],
)
def test_sequential_arguments(schedules, boundaries, error, message):
    with pytest.raises(error, match=message):
        SequentialSparsity(schedules, boundaries=boundaries)


def test_sequential_accepts_configs_and_custom_schedules():
    tfmot_config = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, 0, 100).get_config()
    schedule = SequentialSparsity([tfmot_config, cubic().get_config(), UnknownPeak()], boundaries=[50, 200])
    assert isinstance(schedule.schedules[0], tfmot.sparsity.keras.PolynomialDecay)
    assert isinstance(schedule.schedules[1], CubicSparsity) and peak_sparsity(schedule) is None


@pytest.mark.parametrize(
    "schedule, factor, error, message",
    [
        (cubic, 0, ValueError, r"`factor` must be a finite number in \(0.0, 1.24999.*\]. Received: factor=0"),
        (cubic, -0.5, ValueError, r"`factor`.*Received: factor=-0.5"),
        (cubic, math.nan, ValueError, r"`factor`.*Received: factor=nan"),
        (cubic, math.inf, ValueError, r"`factor`.*Received: factor=inf"),
        (cubic, "0.5", TypeError, r"`factor`.*Received: factor='0.5'"),
        (cubic, True, TypeError, r"`factor`.*Received: factor=True"),
        (cubic, None, TypeError, r"`factor`.*Received: factor=None"),
        # factor * peak must stay below 1 in float32: peak 0.8, so factor <= 1.2499999...
        (cubic, 1.25, ValueError, r"`factor` must be a finite number in \(0.0, 1.24999.*\]. Received: factor=1.25"),
        (cubic, 10.0, ValueError, r"`factor`.*Received: factor=10.0"),
        (
            lambda: StepSparsity([0, 10], [0.9, 0.5]),
            1.2,
            ValueError,
            r"`factor` must be a finite number in \(0.0, 1.1111.*\]. Received: factor=1.2",
        ),
        (
            lambda: tfmot.sparsity.keras.ConstantSparsity(0.5, 0),
            2.0,
            ValueError,
            r"`factor` must be a finite number in \(0.0, 1.99999.*\]. Received: factor=2.0",
        ),
        # Peak unknown: factor <= 1 only.
        (UnknownPeak, 1.5, ValueError, r"`factor` must be a finite number in \(0.0, 1.0\]. Received: factor=1.5"),
        (UnknownPeak, 1.0000001, ValueError, r"`factor`.*\(0.0, 1.0\].*Received: factor=1.0000001"),
        (UnknownPeak, 0.0, ValueError, r"`factor`.*\(0.0, 1.0\].*Received: factor=0.0"),
        # Not a schedule.
        (lambda: "cubic", 0.5, TypeError, r"`schedule` must be a tfmot PruningSchedule or its get_config\(\) dict"),
        (lambda: 0.8, 0.5, TypeError, r"`schedule`.*Received: schedule=0.8"),
        (lambda: {"class_name": "NoSuchSchedule", "config": {}}, 0.5, ValueError, r"`schedule`.*NoSuchSchedule"),
        (lambda: {"config": {}}, 0.5, ValueError, r"`schedule`.*\{'class_name': \.\.\., 'config'"),
    ],
)
def test_scaled_arguments(schedule, factor, error, message):
    with pytest.raises(error, match=message):
        ScaledSparsity(schedule(), factor=factor)


def test_scaled_accepts_factors_up_to_its_bound():
    assert ScaledSparsity(UnknownPeak(), factor=1.0).factor == 1.0
    assert peak_sparsity(ScaledSparsity(cubic(), factor=1.2499999)) < 1.0
    assert peak_sparsity(ScaledSparsity(cubic().get_config(), factor=0.5)) == pytest.approx(0.4)
    # A child's float32 value can pass its peak (0.9 is 0.90000004 in float32): the cap holds anyway.
    nested = ScaledSparsity(ScaledSparsity(CubicSparsity(0.0, 0.3, 0, 100), factor=3.0), factor=1.11111104)
    assert float(nested(100)[1]) < 1.0
