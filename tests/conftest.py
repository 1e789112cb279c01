"""Fixtures over every case of `_registry.CASES` (the contract suite's parametrization)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
from _registry import CASES, Factory

import schedules


@pytest.fixture(params=sorted(CASES))
def schedule_name(request) -> str:
    return request.param


@pytest.fixture
def make_schedule(schedule_name) -> Factory:
    return CASES[schedule_name]


@pytest.fixture
def schedule(make_schedule) -> schedules.SparsitySchedule:
    return make_schedule(0)
