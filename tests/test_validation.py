"""Every bad argument is rejected at construction with a message naming it,
the received value and the allowed range."""

from __future__ import annotations

import math

import pytest

from schedules import CubicSparsity, CyclicSparsity, ExponentialSparsity, StepSparsity

RAMP = {"initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_step": 10, "end_step": 110, "frequency": 10}
CYCLIC = {**RAMP, "num_cycles": 2, "power": 3}

# (constructor, valid arguments) for the ramp-shaped families.
RAMPS = [
    pytest.param(CubicSparsity, RAMP, id="cubic"),
    pytest.param(ExponentialSparsity, RAMP, id="exponential"),
    pytest.param(CyclicSparsity, CYCLIC, id="cyclic"),
]

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
    ("frequency", 0, ValueError, r"`frequency` must be an integer in \[1, .*Received: frequency=0"),
    ("frequency", 2.0, TypeError, r"`frequency`.*=2.0"),
]


@pytest.mark.parametrize("cls, valid", RAMPS)
@pytest.mark.parametrize("name, bad, error, message", COMMON)
def test_ramp_arguments_are_validated(cls, valid, name, bad, error, message):
    cls(**valid)  # the valid arguments are valid
    with pytest.raises(error, match=message):
        cls(**{**valid, name: bad})


@pytest.mark.parametrize("cls, valid", RAMPS)
def test_end_step_minus_one_needs_the_exponential_rate(cls, valid):
    match = "`rate`" if cls is ExponentialSparsity else "`end_step`"
    with pytest.raises(ValueError, match=match):
        cls(**{**valid, "end_step": -1})


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"end_step": 110, "rate": 0.2}, ValueError, r"`rate` must be None unless end_step=-1.*rate=0.2"),
        ({"end_step": -1, "rate": 0.0}, ValueError, r"`rate` must be a finite number in \(0.0, 1.0\).*rate=0.0"),
        ({"end_step": -1, "rate": 1.0}, ValueError, r"`rate`.*rate=1.0"),
        ({"end_step": -1, "rate": math.nan}, ValueError, r"`rate`.*rate=nan"),
        ({"end_step": -1, "rate": "0.1"}, TypeError, r"`rate`.*rate='0.1'"),
        (
            {"end_step": -1, "rate": 0.1, "initial_sparsity": 0.9, "final_sparsity": 0.5},
            ValueError,
            r"`final_sparsity` must be >= initial_sparsity when end_step=-1.*final_sparsity=0.5",
        ),
        ({"end_step": -2, "rate": 0.1}, ValueError, r"`end_step`.*or -1 \(no end\)|`end_step`.*=-2"),
    ],
)
def test_exponential_rate_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        ExponentialSparsity(**{**RAMP, **kwargs})


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
