"""The registry of every schedule the contract suite runs over.

A new family joins the whole contract by adding one entry to `REGISTRY`: a
function of a step `offset` that builds the schedule with all its steps shifted
by `offset` (used to check exactness at giant steps). Entries use typical
arguments whose events fall inside the first few hundred steps.
"""

from __future__ import annotations

import os
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

import schedules
from schedules import CubicSparsity, CyclicSparsity, ExponentialSparsity, StepSparsity

Factory = Callable[[int], schedules.SparsitySchedule]

REGISTRY: dict[str, Factory] = {
    "cubic": lambda o=0: CubicSparsity(0.1, 0.8, begin_step=o + 20, end_step=o + 320, frequency=110),
    "cubic_one_shot": lambda o=0: CubicSparsity(0.0, 0.6, begin_step=o + 50, end_step=o + 50, frequency=10),
    "exponential": lambda o=0: ExponentialSparsity(0.0, 0.9, begin_step=o + 10, end_step=o + 250, frequency=30),
    "exponential_rate": lambda o=0: ExponentialSparsity.from_rate(0.2, 0.85, begin_step=o, frequency=25),
    "step": lambda o=0: StepSparsity([o + 30, o + 90, o + 200], [0.3, 0.6, 0.85]),
    "step_many": lambda o=0: StepSparsity([o + 5 * k for k in range(1, 41)], [0.02 * k for k in range(1, 41)]),
    "step_geometric": lambda o=0: StepSparsity.uniform(0.0, 0.9, o + 0, o + 240, num_stages=4, spacing="geometric"),
    "cyclic": lambda o=0: CyclicSparsity(0.0, 0.8, begin_step=o + 0, end_step=o + 299, num_cycles=3, frequency=20),
    "cyclic_uneven": lambda o=0: CyclicSparsity(
        0.2, 0.75, begin_step=o + 7, end_step=o + 207, num_cycles=4, frequency=15, power=2
    ),
}

#: The last step at which any registry entry changes; entries are constant after it
#: (the open-ended exponential reaches its cap well before).
HORIZON = 400


@pytest.fixture(params=sorted(REGISTRY))
def schedule_name(request) -> str:
    return request.param


@pytest.fixture
def make_schedule(schedule_name) -> Factory:
    return REGISTRY[schedule_name]


@pytest.fixture
def schedule(make_schedule) -> schedules.SparsitySchedule:
    return make_schedule(0)
