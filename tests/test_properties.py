"""Rules that hold for every valid argument, checked with hypothesis."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedules import CubicSparsity, CyclicSparsity, ExponentialSparsity, StepSparsity
from schedules._validation import MAX_SPARSITY, MAX_STEP

settings.register_profile(
    "schedules",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("schedules")

sparsities = st.floats(min_value=0.0, max_value=MAX_SPARSITY, allow_nan=False, allow_subnormal=False)
begins = st.one_of(st.integers(0, 1000), st.integers(0, 2**50))
lengths = st.one_of(st.integers(0, 2000), st.integers(0, 2**40))
frequencies = st.integers(1, 10**6)
any_steps = st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=40)


@st.composite
def ramps(draw, cls):
    begin, length = draw(begins), draw(lengths)
    return cls(draw(sparsities), draw(sparsities), begin, begin + length, draw(frequencies))


@st.composite
def open_exponentials(draw):
    initial = draw(sparsities)
    final = draw(st.floats(min_value=initial, max_value=MAX_SPARSITY, allow_subnormal=False))
    rate = draw(st.floats(min_value=1e-9, max_value=1.0, exclude_max=True))
    return ExponentialSparsity.from_rate(rate, final, draw(begins), draw(frequencies), initial_sparsity=initial)


@st.composite
def staircases(draw):
    boundaries = sorted(draw(st.sets(st.integers(0, MAX_STEP), min_size=1, max_size=12)))
    values = draw(st.lists(sparsities, min_size=len(boundaries), max_size=len(boundaries)))
    return StepSparsity(boundaries, values)


@st.composite
def cyclics(draw):
    begin, length = draw(begins), draw(st.integers(1, 10**7))
    cycles = draw(st.integers(1, max(1, (length + 1) // 2)))
    power = draw(st.floats(min_value=0.05, max_value=20.0))
    return CyclicSparsity(draw(sparsities), draw(sparsities), begin, begin + length, cycles, draw(frequencies), power)


every_schedule = st.one_of(
    ramps(CubicSparsity), ramps(ExponentialSparsity), open_exponentials(), staircases(), cyclics()
)


@given(every_schedule, any_steps)
def test_sparsity_is_in_range_and_never_nan(schedule, steps):
    should_prune, sparsity = (t.numpy() for t in schedule(tf.constant(steps, tf.int64)))
    assert sparsity.dtype == np.float32 and should_prune.dtype == np.bool_
    assert np.all(np.isfinite(sparsity))
    assert np.all((sparsity >= 0.0) & (sparsity < 1.0))


def _steps_around(schedule, data):
    begin = schedule.begin_step
    end = schedule.end_step if schedule.end_step >= 0 else begin + 10**6
    inside = data.draw(st.lists(st.integers(begin, end), min_size=2, max_size=40))
    outside = [0, max(begin - 1, 0), end + 1, 2**62]
    return np.array(sorted(inside + outside), dtype=np.int64)


@given(st.one_of(ramps(CubicSparsity), ramps(ExponentialSparsity), open_exponentials()), st.data())
def test_ramps_move_monotonically_from_initial_to_final(schedule, data):
    steps = _steps_around(schedule, data)
    sparsity = schedule(tf.constant(steps))[1].numpy().astype(np.float64)
    direction = np.sign(schedule.final_sparsity - schedule.initial_sparsity)
    assert np.all(direction * np.diff(sparsity) >= 0)
    # float32, with values below float32's smallest normal flushed to zero as TensorFlow does on CPU
    tiny = np.finfo(np.float32).tiny
    assert abs(sparsity[0] - np.float32(schedule.initial_sparsity)) <= tiny or schedule.begin_step == 0
    assert abs(sparsity[-1] - np.float32(schedule.final_sparsity)) <= tiny


@given(staircases(), st.data())
def test_staircase_with_increasing_sparsities_never_decreases(schedule, data):
    schedule = StepSparsity(schedule.boundaries, sorted(schedule.sparsities))
    steps = np.array(sorted(data.draw(st.lists(st.integers(0, 2**62), min_size=2, max_size=40))), np.int64)
    sparsity = schedule(tf.constant(steps))[1].numpy()
    assert np.all(np.diff(sparsity) >= 0)


@given(
    initial=sparsities,
    final=sparsities,
    begin=begins,
    cycle_length=st.integers(2, 5000),
    cycles=st.integers(1, 20),
    frequency=st.integers(1, 500),
    data=st.data(),
)
def test_cyclic_is_periodic_inside_its_window(initial, final, begin, cycle_length, cycles, frequency, data):
    end = begin + cycle_length * cycles - 1
    schedule = CyclicSparsity(initial, final, begin, end, cycles, frequency)
    offsets = np.array(data.draw(st.lists(st.integers(0, cycle_length - 1), min_size=1, max_size=30)), np.int64)
    cycle = data.draw(st.integers(0, cycles - 1))
    first = [t.numpy() for t in schedule(tf.constant(begin + offsets))]
    other = [t.numpy() for t in schedule(tf.constant(begin + cycle * cycle_length + offsets))]
    if begin == 0:  # the step-0 carry makes step 1 an extra event in the first cycle only
        first[0] = np.where(offsets == 1, other[0], first[0])
    np.testing.assert_array_equal(first[0], other[0])
    np.testing.assert_array_equal(first[1], other[1])
