"""Schedules given in epochs (`from_epochs`) and the check of a schedule against the planned training.

The expected step counts are computed here independently of the library: the epochs are
written as decimal literals and rounded half up with `decimal` (0.1 epochs x 45 = 4.5 -> 5,
2.5 x 45 = 112.5 -> 113, where Python's `round` would give 4 and 112, and float
multiplication 0.145 x 100 = 14.499999999999998 would round down).
"""

from __future__ import annotations

import re
import warnings
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

import schedules
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
    check_plan,
    registry,
)
from schedules.units import epoch_name, steps_from_epochs

#: The step arguments and their names in epochs, written out here (not taken from the library).
EPOCH_TO_STEP = {
    "begin_epoch": "begin_step",
    "end_epoch": "end_step",
    "sparse_epochs": "sparse_steps",
    "dense_epochs": "dense_steps",
    "frequency": "frequency",
    "boundaries": "boundaries",
}


def half_up(literal: str | int, steps_per_epoch: int) -> int:
    """`literal * steps_per_epoch` rounded half up, in exact decimal arithmetic."""
    exact = Decimal(str(literal)) * steps_per_epoch
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _in_steps(epoch_arguments: dict, steps_per_epoch: int) -> dict:
    steps = {}
    for name, value in epoch_arguments.items():
        if name == "boundaries":
            steps[name] = [half_up(item, steps_per_epoch) for item in value]
        else:
            steps[EPOCH_TO_STEP[name]] = half_up(value, steps_per_epoch)
    return steps


def _in_epochs(epoch_arguments: dict) -> dict:
    """The decimal literals as the floats a user would type."""
    return {
        name: [float(item) for item in value] if name == "boundaries" else float(value)
        for name, value in epoch_arguments.items()
    }


def _children():
    return [
        CyclicSparsity(0.0, 0.7, begin_step=0, end_step=112, num_cycles=2, frequency=10),
        CubicSparsity(0.7, 0.9, begin_step=113, end_step=300, frequency=20),
    ]


# (class, arguments in epochs as decimal literals, the other arguments, steps_per_epoch): a table with
# an entry for every family with step arguments (test_the_cases_cover_every_family_with_step_arguments)
CASES = {
    "cubic": (
        CubicSparsity,
        {"begin_epoch": "0.1", "end_epoch": "2.5", "frequency": "0.3"},
        {"initial_sparsity": 0.1, "final_sparsity": 0.8},
        45,
    ),
    "exponential": (
        ExponentialSparsity,
        {"begin_epoch": "0.5", "end_epoch": "3", "frequency": "0.2"},
        {"initial_sparsity": 0.0, "final_sparsity": 0.9},
        45,
    ),
    "exponential_rate": (
        ExponentialRateSparsity,
        {"begin_epoch": "1.5", "frequency": "0.5"},
        {"rate": 0.1, "max_sparsity": 0.9, "initial_sparsity": 0.05},
        45,
    ),
    "step": (
        StepSparsity,
        {"boundaries": ["0.1", "1.5", "2.5"]},
        {"sparsities": [0.3, 0.6, 0.85]},
        45,
    ),
    "cyclic": (
        CyclicSparsity,
        {"begin_epoch": "0", "end_epoch": "6.65", "frequency": "0.25"},
        {"initial_sparsity": 0.0, "final_sparsity": 0.8, "num_cycles": 3, "power": 2},
        20,
    ),
    "polynomial": (
        PolynomialSparsity,
        # 0.145 * 100 and 2.005 * 100 fall just below .5 in float arithmetic
        {"begin_epoch": "0.145", "end_epoch": "2.005", "frequency": "0.125"},
        {"initial_sparsity": 0.05, "final_sparsity": 0.85, "power": 0.5, "orientation": "fast_late"},
        100,
    ),
    "cosine": (
        CosineSparsity,
        {"begin_epoch": "0.05", "end_epoch": "1.25", "frequency": "0.15"},
        {"initial_sparsity": 0.2, "final_sparsity": 0.9, "shape": "fast_early"},
        10,
    ),
    "one_cycle": (
        OneCycleSparsity,
        {"begin_epoch": "1.5", "end_epoch": "10.5", "frequency": "0.5"},
        {"initial_sparsity": 0.1, "final_sparsity": 0.9, "alpha": 10.0, "beta": 4.0},
        7,
    ),
    "alternating": (
        AlternatingSparsity,
        {"begin_epoch": "0.1", "end_epoch": "4.5", "sparse_epochs": "0.5", "dense_epochs": "0.3"},
        {"final_sparsity": 0.9},
        45,
    ),
    "sequential": (
        SequentialSparsity,
        {"boundaries": ["2.5"]},
        {"schedules": _children()},
        45,
    ),
}


def _assert_same_schedule(actual, expected, last_step: int) -> None:
    assert type(actual) is type(expected)
    assert actual.get_config() == expected.get_config()
    steps = tf.constant(np.concatenate([np.arange(0, last_step + 60), [10**6, 2**40, 2**62]]), tf.int64)
    for got, want in zip(actual(steps), expected(steps), strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("case", sorted(CASES))
def test_from_epochs_is_the_schedule_built_in_rounded_steps(case):
    cls, epoch_arguments, others, steps_per_epoch = CASES[case]
    schedule = cls.from_epochs(steps_per_epoch=steps_per_epoch, **_in_epochs(epoch_arguments), **others)
    step_arguments = _in_steps(epoch_arguments, steps_per_epoch)
    expected = cls(**step_arguments, **others)
    last = max(max(np.atleast_1d(value)) for value in step_arguments.values())
    _assert_same_schedule(schedule, expected, int(last))


#: Our families with arguments counted in steps, which `from_epochs` takes in epochs.
FAMILIES = [
    family.cls
    for family in registry.families()
    if family.cls.__module__.startswith("schedules") and family.cls.step_arguments
]


def test_the_cases_cover_every_family_with_step_arguments():
    covered = {case[0] for case in CASES.values()}
    missing = [cls.__name__ for cls in FAMILIES if cls not in covered]
    assert not missing, f"families with step arguments and no case here: {missing}"
    assert covered <= set(FAMILIES)


def test_the_cases_really_round_half_up_where_python_would_not():
    """Guards the cases above: naive float rounding would build other schedules."""
    assert half_up("0.1", 45) == 5 and round(0.1 * 45) == 4
    assert half_up("2.5", 45) == 113 and round(2.5 * 45) == 112
    assert half_up("0.145", 100) == 15 and round(0.145 * 100) == 14  # 14.499999999999998
    assert half_up("2.005", 100) == 201 and round(2.005 * 100) == 200  # 200.49999999999997


def test_scaled_sparsity_has_no_step_arguments_and_passes_through():
    child = CubicSparsity(0.0, 0.6, begin_step=0, end_step=200, frequency=40)
    schedule = ScaledSparsity.from_epochs(schedule=child, factor=0.5, steps_per_epoch=45)
    _assert_same_schedule(schedule, ScaledSparsity(child, factor=0.5), 200)


@pytest.mark.parametrize(
    "epochs, steps_per_epoch, expected",
    [
        (0.1, 45, 5),
        (2.5, 45, 113),
        (0.145, 100, 15),
        (2.005, 100, 201),
        (0.5, 1, 1),
        (1.5, 1, 2),
        (0.49999, 1, 0),
        (0, 45, 0),
        (3, 45, 135),
        (np.int64(3), 45, 135),
        (np.float64(0.1), 45, 5),
        (Fraction(1, 6), 3, 1),
        (Fraction(1, 7), 3, 0),
    ],
)
def test_steps_from_epochs_rounds_the_decimal_literal_half_up(epochs, steps_per_epoch, expected):
    assert steps_from_epochs("begin_epoch", epochs, steps_per_epoch) == expected
    if isinstance(epochs, float):
        assert half_up(repr(float(epochs)), steps_per_epoch) == expected


def test_numpy_float32_epochs_are_accepted():
    # np.float32(0.5) is exactly 0.5: 22.5 steps -> 23; np.float32(0.1) reads as 0.1: 4.5 -> 5
    assert steps_from_epochs("end_epoch", np.float32(0.5), 45) == 23
    assert steps_from_epochs("frequency", np.float32(0.1), 45) == 5


@pytest.mark.parametrize(
    "step_name, name",
    [
        ("begin_step", "begin_epoch"),
        ("end_step", "end_epoch"),
        ("sparse_steps", "sparse_epochs"),
        ("dense_steps", "dense_epochs"),
        ("frequency", "frequency"),
        ("boundaries", "boundaries"),
    ],
)
def test_epoch_name(step_name, name):
    assert epoch_name(step_name) == name


# --- errors ------------------------------------------------------------------------------

STEP_NAMES_IN_EPOCHS = [
    (cls, step_name)
    for cls in FAMILIES
    for step_name in cls.step_arguments
    if step_name not in ("frequency", "boundaries")  # the two that keep their names
]


@pytest.mark.parametrize(
    "cls, step_name", STEP_NAMES_IN_EPOCHS, ids=[f"{c.__name__}-{s}" for c, s in STEP_NAMES_IN_EPOCHS]
)
def test_a_step_argument_given_to_from_epochs_is_rejected_with_its_epoch_name(cls, step_name):
    name = {v: k for k, v in EPOCH_TO_STEP.items()}[step_name]
    with pytest.raises(ValueError, match=rf"Argument `{step_name}` .*`{name}`.* Received: {step_name}=10\b"):
        cls.from_epochs(steps_per_epoch=45, **{step_name: 10})


def test_every_step_argument_is_checked():
    assert {(c.__name__, s) for c, s in STEP_NAMES_IN_EPOCHS} >= {
        ("CubicSparsity", "begin_step"),
        ("ExponentialSparsity", "end_step"),
        ("AlternatingSparsity", "sparse_steps"),
        ("AlternatingSparsity", "dense_steps"),
        ("PolynomialSparsity", "begin_step"),
        ("CosineSparsity", "end_step"),
        ("OneCycleSparsity", "begin_step"),
        ("ExponentialRateSparsity", "begin_step"),
    }


CUBIC = {"initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_epoch": 0, "end_epoch": 2, "frequency": 0.5}
ALTERNATING = {"final_sparsity": 0.9, "begin_epoch": 0, "end_epoch": 4, "sparse_epochs": 0.5, "dense_epochs": 0.5}


@pytest.mark.parametrize(
    "cls, arguments, error, message",
    [
        # 0.01 epochs x 45 = 0.45 steps -> 0
        (CubicSparsity, {**CUBIC, "frequency": 0.01}, ValueError, "Argument `frequency` .*Received: frequency=0.01$"),
        (CubicSparsity, {**CUBIC, "frequency": 0}, ValueError, "Argument `frequency` .*Received: frequency=0$"),
        (
            AlternatingSparsity,
            {**ALTERNATING, "sparse_epochs": 0.011},
            ValueError,
            "Argument `sparse_epochs` .*Received: sparse_epochs=0.011$",
        ),
        (
            AlternatingSparsity,
            {**ALTERNATING, "dense_epochs": 0},
            ValueError,
            "Argument `dense_epochs` .*Received: dense_epochs=0$",
        ),
        (CubicSparsity, {**CUBIC, "begin_epoch": -1}, ValueError, "Argument `begin_epoch` .*Received: begin_epoch=-1$"),
        (
            CubicSparsity,
            {**CUBIC, "begin_epoch": -0.5},
            ValueError,
            "Argument `begin_epoch` .*Received: begin_epoch=-0.5$",
        ),
        (CubicSparsity, {**CUBIC, "end_epoch": -1.0}, ValueError, "Argument `end_epoch` .*Received: end_epoch=-1.0$"),
        (
            CubicSparsity,
            {**CUBIC, "end_epoch": float("nan")},
            ValueError,
            "Argument `end_epoch` .*Received: end_epoch=nan$",
        ),
        (
            CubicSparsity,
            {**CUBIC, "begin_epoch": float("inf")},
            ValueError,
            "Argument `begin_epoch` .*Received: begin_epoch=inf$",
        ),
        (
            CubicSparsity,
            {**CUBIC, "begin_epoch": True},
            TypeError,
            "Argument `begin_epoch` .*Received: begin_epoch=True$",
        ),
        (CubicSparsity, {**CUBIC, "frequency": False}, TypeError, "Argument `frequency` .*Received: frequency=False$"),
        (CubicSparsity, {**CUBIC, "end_epoch": "2"}, TypeError, "Argument `end_epoch` .*Received: end_epoch='2'$"),
        (
            CubicSparsity,
            {**CUBIC, "begin_epoch": None},
            TypeError,
            "Argument `begin_epoch` .*Received: begin_epoch=None$",
        ),
        (
            StepSparsity,
            {"boundaries": [1, -1], "sparsities": [0.5, 0.6]},
            ValueError,
            r"Argument `boundaries\[1\]` .*Received: boundaries\[1\]=-1$",
        ),
        (
            StepSparsity,
            {"boundaries": [1, "2"], "sparsities": [0.5, 0.6]},
            TypeError,
            r"Argument `boundaries\[1\]` .*Received: boundaries\[1\]='2'$",
        ),
        (
            StepSparsity,
            {"boundaries": 2.5, "sparsities": [0.5]},
            TypeError,
            r"Argument `boundaries` .*Received: boundaries=2.5$",
        ),
    ],
)
def test_bad_epochs_raise_naming_the_argument_and_the_value(cls, arguments, error, message):
    with pytest.raises(error, match=message):
        cls.from_epochs(steps_per_epoch=45, **arguments)


@pytest.mark.parametrize(
    "steps_per_epoch, error",
    [(0, ValueError), (-3, ValueError), (45.0, TypeError), (0.5, TypeError), (True, TypeError), (None, TypeError)],
)
def test_bad_steps_per_epoch_raises_naming_it_and_the_value(steps_per_epoch, error):
    message = rf"Argument `steps_per_epoch` .*Received: steps_per_epoch={re.escape(repr(steps_per_epoch))}$"
    with pytest.raises(error, match=message):
        CubicSparsity.from_epochs(steps_per_epoch=steps_per_epoch, **CUBIC)


@pytest.mark.parametrize(
    "epochs, error", [(0, ValueError), (-2, ValueError), (float("nan"), ValueError), ("5", TypeError)]
)
def test_bad_planned_epochs_raise_naming_them(epochs, error):
    message = rf"Argument `epochs` .*Received: epochs={re.escape(repr(epochs))}$"
    with pytest.raises(error, match=message):
        CubicSparsity.from_epochs(steps_per_epoch=45, epochs=epochs, **CUBIC)


# --- check_plan ----------------------------------------------------------------------------


@pytest.fixture
def no_plan_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlanWarning)
        yield


@pytest.mark.parametrize(
    "schedule, total_steps",
    [
        (CubicSparsity(0.0, 0.8, begin_step=0, end_step=100, frequency=10), 200),
        (CubicSparsity(0.0, 0.8, begin_step=0, end_step=100, frequency=30), 100),  # 100 is an event of ours
        (AlternatingSparsity(0.9, begin_step=10, end_step=170, sparse_steps=20, dense_steps=20), 170),
        (tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=900, frequency=300), 900),
        (tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=100), 100),
        (tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, end_step=500, frequency=100), 300),
    ],
    ids=["cubic", "cubic-end-off-grid", "alternating", "tfmot-polynomial", "tfmot-constant", "tfmot-constant-end"],
)
def test_no_warning_for_a_schedule_that_finishes_inside_the_run(schedule, total_steps, no_plan_warnings):
    assert check_plan(schedule, total_steps) == []


def test_a_run_shorter_than_frequency_prunes_nothing():
    schedule = CubicSparsity(0.0, 0.8, begin_step=100, end_step=1000, frequency=100)
    with pytest.warns(PlanWarning, match=r"CubicSparsity prunes nothing in the planned 99 training steps") as record:
        problems = check_plan(schedule, 99)
    assert len(record) == 1 and problems == [str(record[0].message)]
    assert "begin_step=100" in problems[0] and "frequency=100" in problems[0]
    assert check_plan(schedule, 100, warn=False) != problems  # step 100 prunes


def test_a_window_that_ends_after_the_run_says_the_reached_and_final_sparsity():
    schedule = CubicSparsity(0.0, 0.9, begin_step=0, end_step=1000, frequency=100)
    reached = 0.9 * (1 - (1 - 500 / 1000) ** 3)  # 0.7875, applied at step 500
    with pytest.warns(PlanWarning) as record:
        check_plan(schedule, 500)
    (message,) = [str(w.message) for w in record]
    assert message.startswith("CubicSparsity is cut short: it runs to end_step=1000, after the planned 500")
    assert f"500, applies sparsity {reached:.4g}, not its final 0.9" in message


def test_tfmot_polynomial_decay_off_its_grid_never_applies_its_final_sparsity():
    """tfmot prunes at 300, 600 and 900 only; the last applies 0.8 * (1 - 0.1**3) = 0.7992, never 0.8."""
    schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=1000, frequency=300)
    with pytest.warns(PlanWarning) as record:
        check_plan(schedule, 2000)
    (message,) = [str(w.message) for w in record]
    assert message.startswith(
        "PolynomialDecay ends the planned 2000 training steps at sparsity 0.7992 (its last pruning step, 900), "
        "not at its final 0.8"
    )


def test_tfmot_constant_sparsity_beginning_at_zero_prunes_nothing_before_frequency():
    """tfmot never calls a schedule at step 0, so ConstantSparsity(begin_step=0) first prunes at `frequency`."""
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=100)
    with pytest.warns(PlanWarning, match=r"ConstantSparsity prunes nothing in the planned 99 training steps"):
        check_plan(schedule, 99)


def test_warn_false_returns_the_problems_without_warning(no_plan_warnings):
    schedule = CubicSparsity(0.0, 0.9, begin_step=0, end_step=1000, frequency=100)
    problems = check_plan(schedule, 500, warn=False)
    assert len(problems) == 1 and "0.7875" in problems[0]


@pytest.mark.parametrize("total_steps, error", [(0, ValueError), (10.0, TypeError)])
def test_check_plan_rejects_a_bad_number_of_steps(total_steps, error):
    with pytest.raises(error, match=r"Argument `total_steps` .*Received: total_steps="):
        check_plan(CubicSparsity(0.0, 0.8, 0, 100, frequency=10), total_steps)


@pytest.mark.parametrize(
    "arguments, epochs",
    [
        # 5 of 10 epochs: the cubic reaches 0.7875 of 0.9
        ({"initial_sparsity": 0.0, "final_sparsity": 0.9, "begin_epoch": 0, "end_epoch": 10, "frequency": 1}, 5),
        # begins after half an epoch of training: prunes nothing
        ({"initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_epoch": 1, "end_epoch": 3, "frequency": 1}, 0.5),
    ],
)
def test_from_epochs_with_planned_epochs_warns_as_check_plan(arguments, epochs):
    expected = check_plan(CubicSparsity.from_epochs(steps_per_epoch=100, **arguments), half_up(epochs, 100), warn=False)
    assert len(expected) == 1
    with pytest.warns(PlanWarning) as record:
        CubicSparsity.from_epochs(steps_per_epoch=100, epochs=epochs, **arguments)
    assert [str(w.message) for w in record] == expected


def test_from_epochs_that_fits_the_plan_does_not_warn(no_plan_warnings):
    schedule = CubicSparsity.from_epochs(
        initial_sparsity=0.0,
        final_sparsity=0.9,
        begin_epoch=1,
        end_epoch=8,
        frequency=0.5,
        steps_per_epoch=45,
        epochs=8,
    )
    assert schedule.end_step == 360


def test_from_epochs_warning_points_at_the_caller():
    with pytest.warns(PlanWarning) as record:
        CubicSparsity.from_epochs(
            initial_sparsity=0.0,
            final_sparsity=0.9,
            begin_epoch=0,
            end_epoch=10,
            frequency=1,
            steps_per_epoch=100,
            epochs=5,
        )
    assert record[0].filename == __file__


def test_check_plan_warning_points_at_the_caller():
    with pytest.warns(PlanWarning) as record:
        check_plan(CubicSparsity(0.0, 0.9, 0, 1000, frequency=100), 500)
    assert record[0].filename == __file__


def test_constructor_errors_from_epochs_say_what_was_converted():
    with pytest.raises(ValueError, match="end_step") as info:
        CubicSparsity.from_epochs(
            initial_sparsity=0.0, final_sparsity=0.9, begin_epoch=4, end_epoch=2, frequency=1, steps_per_epoch=10
        )
    message = str(info.value)
    assert "from_epochs with steps_per_epoch=10" in message
    assert "begin_epoch=4 -> begin_step=40" in message and "end_epoch=2 -> end_step=20" in message
    with pytest.raises(TypeError, match="begin_epochs") as info:
        CubicSparsity.from_epochs(
            initial_sparsity=0.0, final_sparsity=0.9, begin_epochs=1, end_epoch=2, frequency=1, steps_per_epoch=10
        )
    assert "given in epochs as begin_epoch, end_epoch, frequency" in str(info.value)


@pytest.mark.parametrize(
    "schedule, total_steps",
    [
        (CyclicSparsity(0.0, 0.8, 0, 299, num_cycles=3, frequency=10), 99),  # 1 of 3 cycles, at its final value
        (AlternatingSparsity(0.9, 10, 170, sparse_steps=20, dense_steps=20), 25),  # in the first sparse phase
    ],
    ids=["cyclic", "alternating"],
)
def test_a_run_that_stops_before_the_last_cycle_or_phase_is_cut_short(schedule, total_steps):
    (problem,) = check_plan(schedule, total_steps, warn=False)
    assert problem.startswith(f"{type(schedule).__name__} is cut short: it runs to end_step={schedule.end_step}")


def test_a_decreasing_ramp_that_stops_early_says_where_it_ended():
    (problem,) = check_plan(CubicSparsity(0.9, 0.5, 0, 100, frequency=10), 50, warn=False)
    assert "applies sparsity 0.55, not its final 0.5" in problem


def test_exponential_from_epochs_with_no_end_is_refused():
    """No family takes end_step=-1 any more (the open-ended exponential is ExponentialRateSparsity)."""
    message = r"Argument `end_epoch` must be a finite number in \[0.0, inf\). Received: end_epoch=-1"
    with pytest.raises(ValueError, match=message):
        ExponentialSparsity.from_epochs(
            initial_sparsity=0.0, final_sparsity=0.9, begin_epoch=1, end_epoch=-1, frequency=1, steps_per_epoch=10
        )


def test_the_open_ended_exponential_is_checked_against_its_cap():
    """Half the survivors every epoch from 0 up to 0.75: 0.5 after one epoch, the cap after two."""
    arguments = {"rate": 0.5, "max_sparsity": 0.75, "begin_epoch": 0, "frequency": 1, "steps_per_epoch": 10}
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlanWarning)
        assert ExponentialRateSparsity.from_epochs(**arguments, epochs=2).frequency == 10  # reaches the cap
    with pytest.warns(PlanWarning) as record:
        ExponentialRateSparsity.from_epochs(**arguments, epochs=1)
    assert [str(w.message) for w in record] == [
        "ExponentialRateSparsity ends the planned 10 training steps at sparsity 0.5 (its last pruning step, 10), "
        "not at its final 0.75"
    ]


def test_from_epochs_needs_every_step_argument_in_epochs():
    """frequency defaults to 100 *steps* in the constructor: from_epochs refuses to use it."""
    with pytest.raises(ValueError, match=r"Argument `frequency` must be given to CubicSparsity.from_epochs"):
        CubicSparsity.from_epochs(
            initial_sparsity=0.0, final_sparsity=0.9, begin_epoch=1, end_epoch=8, steps_per_epoch=45
        )


def test_an_off_grid_tfmot_window_is_named_as_the_cause():
    problems = check_plan(tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, 0, 1000, frequency=300), 2000, warn=False)
    assert len(problems) == 1 and problems[0].endswith("it does not prune at its end_step=1000")


# --- integration: what tfmot really does with a flagged schedule --------------------------------


def _train(schedule, steps: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Trains Dense(6 -> 4) under `prune_low_magnitude` for `steps` batches; returns step, kernel, mask."""
    keras.utils.set_random_seed(0)
    layer = tfmot.sparsity.keras.prune_low_magnitude(keras.layers.Dense(4), pruning_schedule=schedule)
    model = keras.Sequential([keras.Input((6,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2 * steps, 6)).astype(np.float32)
    y = rng.normal(size=(2 * steps, 4)).astype(np.float32)
    model.fit(
        x, y, batch_size=2, epochs=1, shuffle=False, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
    )
    weight, mask, _ = layer.pruning_vars[0]
    return int(layer.pruning_step.numpy()), weight.numpy(), mask.numpy()


@pytest.mark.parametrize(
    "make, steps, pruned",
    [
        (lambda: CubicSparsity(0.5, 0.8, begin_step=20, end_step=200, frequency=20), 19, 0),
        (lambda: CubicSparsity(0.5, 0.8, begin_step=20, end_step=200, frequency=20), 20, 12),  # control: 0.5 of 24
        (lambda: tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=40), 39, 0),
    ],
    ids=["ours-flagged", "ours-control", "tfmot-constant-flagged"],
)
def test_a_schedule_flagged_as_pruning_nothing_prunes_nothing_in_training(make, steps, pruned):
    schedule = make()
    flagged = any("prunes nothing" in problem for problem in check_plan(schedule, steps, warn=False))
    assert flagged == (pruned == 0)
    step, kernel, mask = _train(schedule, steps)
    assert step == steps  # the schedule was called at steps 1 .. steps
    assert np.count_nonzero(mask == 0) == pruned
    assert np.count_nonzero(kernel == 0) == pruned


# --- the CheckPlan callback ---------------------------------------------------------------------


def _fit_with_check(schedule, epochs: int, num_samples: int = 40, batch_size: int = 8) -> list[str]:
    """Fits a tiny pruned model with CheckPlan; returns the PlanWarning messages."""
    keras.utils.set_random_seed(0)
    first = tfmot.sparsity.keras.prune_low_magnitude(keras.layers.Dense(4, name="first"), pruning_schedule=schedule)
    second = tfmot.sparsity.keras.prune_low_magnitude(keras.layers.Dense(2, name="second"), pruning_schedule=schedule)
    model = keras.Sequential([keras.Input((6,)), first, second])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.random.default_rng(0).normal(size=(num_samples, 6)).astype(np.float32)
    y = np.zeros((num_samples, 2), np.float32)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep(), schedules.CheckPlan()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=callbacks)
    return [str(w.message) for w in caught if issubclass(w.category, PlanWarning)]


def test_check_plan_callback_warns_once_per_schedule_naming_its_layers():
    # 40 samples / 8 = 5 steps per epoch, 3 epochs: 15 steps; the window runs to step 100.
    messages = _fit_with_check(CubicSparsity(0.0, 0.8, begin_step=0, end_step=100, frequency=5), epochs=3)
    assert len(messages) == 1
    assert messages[0].startswith("layers prune_low_magnitude_first, prune_low_magnitude_second: CubicSparsity is")
    assert "after the planned 15 training steps" in messages[0]


def test_check_plan_callback_is_silent_for_a_schedule_that_fits_the_run():
    assert _fit_with_check(CubicSparsity(0.0, 0.8, begin_step=0, end_step=10, frequency=5), epochs=3) == []
