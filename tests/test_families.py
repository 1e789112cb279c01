"""Per-family values against independent NumPy float64 references."""

from __future__ import annotations

import bisect

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from schedules import CubicSparsity, CyclicSparsity, ExponentialSparsity, StepSparsity

STEPS = np.arange(0, 1201, dtype=np.int64)


def evaluate(schedule, steps=STEPS):
    should_prune, sparsity = schedule(tf.constant(steps, tf.int64))
    return should_prune.numpy(), sparsity.numpy()


def grid_events(steps, begin, end, frequency):
    """tfmot's grid, our end-step event and the step-0 carry, by enumeration."""
    events = set(range(begin, end + 1, frequency)) | {end}
    if 0 in events:
        events.add(1)
    return np.isin(steps, sorted(events))


# --- cubic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "initial, final, begin, end, frequency",
    [(0.0, 0.8, 0, 1000, 300), (0.2, 0.95, 50, 850, 100), (0.5, 0.1, 10, 400, 7), (0.0, 0.9, 100, 100, 10)],
)
def test_cubic_matches_the_formula(initial, final, begin, end, frequency):
    schedule = CubicSparsity(initial, final, begin, end, frequency)
    should_prune, sparsity = evaluate(schedule)
    if end > begin:
        p = np.clip((STEPS - begin) / (end - begin), 0.0, 1.0)
    else:
        p = (STEPS >= begin).astype(np.float64)
    expected = final + (initial - final) * (1.0 - p) ** 3
    np.testing.assert_allclose(sparsity, expected.astype(np.float32), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(should_prune, grid_events(STEPS, begin, end, frequency))


@pytest.mark.parametrize(
    "initial, final, begin, end, frequency",
    [(0.0, 0.8, 0, 1000, 300), (0.2, 0.95, 50, 850, 100), (0.5, 0.1, 10, 400, 7), (0.0, 0.5, 3, 1003, 1)],
)
def test_cubic_equals_tfmot_polynomial_decay_power_3(initial, final, begin, end, frequency):
    ours = CubicSparsity(initial, final, begin, end, frequency)
    theirs = tfmot.sparsity.keras.PolynomialDecay(initial, final, begin, end, power=3, frequency=frequency)
    steps = tf.constant(STEPS)
    our_prune, our_sparsity = evaluate(ours)
    their_prune, their_sparsity = (t.numpy() for t in theirs(steps))
    np.testing.assert_allclose(our_sparsity, their_sparsity, rtol=0, atol=2e-7)
    # Ours adds exactly the end step (and step 1 when step 0 is an event).
    extra = np.flatnonzero(our_prune & ~their_prune)
    assert set(extra) <= {end, 1}
    assert not np.any(their_prune & ~our_prune)


def test_cubic_applies_the_final_sparsity_where_tfmot_does_not():
    """tfmot's PolynomialDecay(0, 0.8, 0, 1000, frequency=300) last prunes at 900 (0.7992)."""
    theirs = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, 0, 1000, frequency=300)
    ours = CubicSparsity(0.0, 0.8, 0, 1000, frequency=300)
    their_events = np.flatnonzero(theirs(tf.constant(STEPS))[0].numpy())
    our_prune, our_sparsity = evaluate(ours)
    assert their_events.tolist() == [0, 300, 600, 900]
    assert np.flatnonzero(our_prune).tolist() == [0, 1, 300, 600, 900, 1000]
    assert our_sparsity[1000] == np.float32(0.8)


# --- exponential -------------------------------------------------------------------


@pytest.mark.parametrize(
    "initial, final, begin, end, frequency",
    [(0.0, 0.9, 0, 1000, 100), (0.3, 0.95, 25, 925, 90), (0.6, 0.2, 10, 210, 20), (0.0, 0.8, 40, 40, 5)],
)
def test_exponential_matches_log_linear_interpolation(initial, final, begin, end, frequency):
    """Reference: interpolate log(1 - sparsity) linearly (the same curve, another algorithm)."""
    schedule = ExponentialSparsity(initial, final, begin, end, frequency)
    should_prune, sparsity = evaluate(schedule)
    if end > begin:
        p = np.clip((STEPS - begin) / (end - begin), 0.0, 1.0)
    else:
        p = (STEPS >= begin).astype(np.float64)
    log_keep = np.log1p(-initial) + p * (np.log1p(-final) - np.log1p(-initial))
    np.testing.assert_allclose(sparsity, (-np.expm1(log_keep)).astype(np.float32), rtol=0, atol=2e-7)
    np.testing.assert_array_equal(should_prune, grid_events(STEPS, begin, end, frequency))


def test_exponential_events_remove_equal_shares_of_the_survivors():
    schedule = ExponentialSparsity(0.0, 1 - 0.5**10, begin_step=0, end_step=1000, frequency=100)
    _should_prune, sparsity = evaluate(schedule)
    keep = 1.0 - sparsity[np.arange(0, 1001, 100)].astype(np.float64)
    np.testing.assert_allclose(keep[1:] / keep[:-1], 0.5, rtol=1e-6)


@pytest.mark.parametrize(
    "rate, max_sparsity, begin, frequency", [(0.2, 0.9, 0, 100), (0.05, 0.97, 30, 7), (0.5, 0.5, 5, 10)]
)
def test_exponential_per_event_form_at_every_pruning_step(rate, max_sparsity, begin, frequency):
    """The hand-written custom-schedule form, reproduced at every pruning step."""
    schedule = ExponentialSparsity.from_rate(rate, max_sparsity, begin_step=begin, frequency=frequency)
    steps = np.arange(0, 20_000, dtype=np.int64)
    should_prune, sparsity = evaluate(schedule, steps)
    expected_events = (steps >= begin) & ((steps - begin) % frequency == 0)
    if begin == 0:
        expected_events[1] = True
    np.testing.assert_array_equal(should_prune, expected_events)
    pruning = steps[(steps >= begin) & ((steps - begin) % frequency == 0)]
    reference = np.minimum(max_sparsity, 1.0 - (1.0 - rate) ** ((pruning - begin) / frequency))
    np.testing.assert_allclose(sparsity[pruning], reference.astype(np.float32), rtol=0, atol=2e-7)
    assert sparsity[-1] == np.float32(max_sparsity)
    # No end: still pruning (at the cap) at a giant step on the grid.
    giant = begin + frequency * 10**15
    prune, value = schedule(giant)
    assert bool(prune) and float(value) == np.float32(max_sparsity)


# --- step --------------------------------------------------------------------------


def staircase_reference(steps, boundaries, sparsities):
    values = []
    for step in steps:
        i = bisect.bisect_right(boundaries, step) - 1
        values.append(sparsities[i] if i >= 0 else 0.0)
    return np.array(values, dtype=np.float32)


@pytest.mark.parametrize(
    "boundaries, sparsities",
    [([100, 250, 600], [0.5, 0.7, 0.9]), ([0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4]), ([500], [0.8]), ([0, 300], [0.9, 0.2])],
)
def test_step_matches_the_staircase(boundaries, sparsities):
    schedule = StepSparsity(boundaries, sparsities)
    should_prune, sparsity = evaluate(schedule)
    np.testing.assert_array_equal(sparsity, staircase_reference(STEPS, boundaries, sparsities))
    expected_events = set(boundaries) | ({1} if boundaries[0] == 0 else set())
    assert set(np.flatnonzero(should_prune)) == expected_events


@pytest.mark.parametrize("count", [16, 17, 300])
def test_step_with_many_stairs_matches_the_staircase(count):
    """Short lists compare with every boundary, long ones search: both give the staircase."""
    rng = np.random.default_rng(count)
    boundaries = sorted(rng.choice(np.arange(1, 1200), size=count, replace=False).tolist())
    sparsities = rng.uniform(0.0, 0.99, size=count).tolist()
    schedule = StepSparsity(boundaries, sparsities)
    steps = np.concatenate([STEPS, [-5, 2**40]])
    should_prune, sparsity = evaluate(schedule, steps)
    np.testing.assert_array_equal(sparsity, staircase_reference(steps, boundaries, sparsities))
    np.testing.assert_array_equal(should_prune, np.isin(steps, boundaries))
    scalar = schedule(tf.constant(boundaries[3], tf.int64))
    assert bool(scalar[0]) and scalar[1].shape == () and float(scalar[1]) == np.float32(sparsities[3])


def test_uniform_linear_stairs():
    stairs = StepSparsity.uniform(0.2, 0.8, begin_step=100, end_step=400, num_stages=4)
    assert stairs.boundaries == [100, 200, 300, 400]
    np.testing.assert_allclose(stairs.sparsities, [0.35, 0.5, 0.65, 0.8])


def test_uniform_boundaries_are_integer_and_cover_the_window():
    stairs = StepSparsity.uniform(0.0, 0.9, begin_step=7, end_step=107, num_stages=7)
    assert stairs.boundaries[0] == 7 and stairs.boundaries[-1] == 107
    np.testing.assert_array_equal(stairs.boundaries, 7 + np.floor(np.arange(7) * 100 / 6).astype(int))


def test_uniform_geometric_stairs_are_iterative_magnitude_pruning():
    """Five rounds that each remove 20% of the surviving weights (lottery tickets)."""
    final = 1 - 0.8**5
    stairs = StepSparsity.uniform(0.0, final, begin_step=0, end_step=4000, num_stages=5, spacing="geometric")
    rounds = 1.0 - 0.8 ** np.arange(1, 6)
    np.testing.assert_allclose(stairs.sparsities, rounds, rtol=1e-12)
    assert stairs.boundaries == [0, 1000, 2000, 3000, 4000]


# --- cyclic ------------------------------------------------------------------------


def cyclic_reference(steps, initial, final, begin, end, num_cycles, frequency, power):
    """Step-by-step reference: enumerate the cycles, then walk the steps."""
    n = end - begin + 1
    starts = [begin + (c * n) // num_cycles for c in range(num_cycles)] + [end + 1]
    events, values = [], []
    for step in steps:
        clipped = min(max(step, begin), end)
        c = bisect.bisect_right(starts, clipped) - 1
        start, last = starts[c], starts[c + 1] - 1
        if step < begin:
            p = 0.0
        elif last == start:
            p = 1.0
        else:
            p = min((step - start) / (last - start), 1.0)
        values.append(final + (initial - final) * (1.0 - p) ** power)
        events.append(begin <= step <= end and ((step - start) % frequency == 0 or step == last))
    events = np.array(events)
    if begin == 0 and len(steps) > 1 and steps[1] == 1:
        events[1] = True
    return events, np.array(values, dtype=np.float32)


@pytest.mark.parametrize(
    "initial, final, begin, end, num_cycles, frequency, power",
    [
        (0.0, 0.8, 0, 999, 4, 50, 3),
        (0.1, 0.9, 13, 1013, 3, 40, 3),
        (0.3, 0.7, 100, 700, 7, 11, 1.5),
        (0.0, 0.5, 0, 1, 1, 100, 3),
        (0.0, 0.5, 5, 5, 1, 100, 3),
        (0.2, 0.6, 0, 9, 5, 1, 2),
    ],
)
def test_cyclic_matches_the_step_by_step_reference(initial, final, begin, end, num_cycles, frequency, power):
    schedule = CyclicSparsity(initial, final, begin, end, num_cycles, frequency, power)
    should_prune, sparsity = evaluate(schedule)
    ref_events, ref_values = cyclic_reference(STEPS, initial, final, begin, end, num_cycles, frequency, power)
    np.testing.assert_allclose(sparsity, ref_values, rtol=0, atol=2e-7)
    np.testing.assert_array_equal(should_prune, ref_events)


def test_cyclic_restarts_low_and_peaks_at_each_cycle_end():
    schedule = CyclicSparsity(0.0, 0.8, begin_step=0, end_step=299, num_cycles=3, frequency=40)
    should_prune, sparsity = evaluate(schedule)
    for start, last in [(0, 99), (100, 199), (200, 299)]:
        assert should_prune[start] and should_prune[last]
        assert sparsity[start] == 0.0 and sparsity[last] == np.float32(0.8)
    assert np.all(sparsity[300:] == np.float32(0.8))


def test_cyclic_with_one_cycle_is_cubic():
    cyclic = CyclicSparsity(0.1, 0.9, begin_step=20, end_step=820, num_cycles=1, frequency=50)
    cubic = CubicSparsity(0.1, 0.9, begin_step=20, end_step=820, frequency=50)
    for a, b in zip(evaluate(cyclic), evaluate(cubic), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cyclic_phase_at_a_giant_step_is_as_right_as_at_step_500():
    near = CyclicSparsity(0.0, 0.9, begin_step=0, end_step=999, num_cycles=4, frequency=25)
    far = CyclicSparsity(0.0, 0.9, begin_step=999_999_000, end_step=999_999_999, num_cycles=4, frequency=25)
    offsets = np.arange(2, 1000, dtype=np.int64)
    for a, b in zip(evaluate(near, offsets), evaluate(far, offsets + 999_999_000), strict=True):
        np.testing.assert_array_equal(a, b)
    ref_events, ref_values = cyclic_reference([999_999_500], 0.0, 0.9, 999_999_000, 999_999_999, 4, 25, 3)
    prune, value = far(999_999_500)
    assert bool(prune) == ref_events[0] and float(value) == ref_values[0]
