"""Per-family values against independent NumPy float64 references."""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

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
from schedules._validation import MAX_SPARSITY
from schedules.composition import peak_sparsity

STEPS = np.arange(0, 1201, dtype=np.int64)
#: Steps far from any window, and around 2**24 (the last float32 integer).
EXTREME_STEPS = [2**24 - 1, 2**24, 2**24 + 1, 2**62, 2**63 - 1, -1, -2, -(2**63)]


def evaluate(schedule, steps=STEPS):
    should_prune, sparsity = schedule(tf.constant(steps, tf.int64))
    return should_prune.numpy(), sparsity.numpy()


def grid_events(steps, begin, end, frequency):
    """tfmot's grid, our end-step event and the step-0 carry, by enumeration."""
    events = set(range(begin, end + 1, frequency)) | {end}
    if 0 in events:
        events.add(1)
    return np.isin(steps, sorted(events))


def progress(steps, begin, end):
    """The window's progress `p`: clipped to [0, 1]; a one-shot window jumps from 0 to 1 at its step."""
    steps = np.asarray(steps, dtype=np.float64)
    if end > begin:
        return np.clip((steps - begin) / (end - begin), 0.0, 1.0)
    return (steps >= begin).astype(np.float64)


def check_ramp(schedule, reference, initial, final, begin, end, frequency, atol=1e-6):
    """Values at every step up to `end + 50` against `reference(p)` (float64), tfmot's grid plus
    `end_step` as events, and exactly `initial` up to `begin_step`, exactly `final` from `end_step`."""
    steps = np.arange(0, end + 51, dtype=np.int64)
    should_prune, sparsity = evaluate(schedule, steps)
    assert sparsity.dtype == np.float32
    np.testing.assert_allclose(sparsity, reference(progress(steps, begin, end)), rtol=0, atol=atol)
    np.testing.assert_array_equal(should_prune, grid_events(steps, begin, end, frequency))
    if end > begin:
        assert np.all(sparsity[: begin + 1] == np.float32(initial))
    assert np.all(sparsity[end:] == np.float32(final))


# The toolkits' own formulas, as their code writes them (the references below).


def sparseml_interpolate(x_cur, x0, x1, y0, y1, inter_func):
    """SparseML `sparseml.utils.interpolate` (x clipped to [x0, x1] first)."""
    x_per = (np.clip(x_cur, x0, x1) - x0) / (x1 - x0)
    if inter_func == "linear":
        y_per = x_per
    elif inter_func == "cubic":
        y_per = 1 - (1 - x_per) ** 3
    elif inter_func == "inverse_cubic":
        y_per = 1 - (1 - x_per) ** (1 / 3)
    return y_per * (y1 - y0) + y0


def inc_cube(progress, init, target):
    """Intel Neural Compressor's `cube` pruning scheduler."""
    return (target - init) * progress**3 + init


def inc_cos(progress, init, target):
    """Intel Neural Compressor's `cos` pruning scheduler."""
    return (target - init) * (1 - np.cos(progress * np.pi / 2)) + init


def nncf_polynomial(progress, init, target, power, concave):
    """NNCF's `PolynomialSparsityScheduler` (`concave` picks the form)."""
    if concave:
        return target - (target - init) * (1 - progress) ** power
    return init + (target - init) * progress**power


def fastai_sched_cos(start, end, pos):
    """fastai's (and fasterai's) `sched_cos`."""
    return start + (1 + np.cos(np.pi * (1 - pos))) * (end - start) / 2


def fasterai_sched_onecycle(start, end, pos, alpha=14, beta=6):
    """fasterai's `sched_onecycle`: the paper's `L(p) / L(1)`."""
    out = (1 + np.exp(-alpha + beta)) / (1 + np.exp(-alpha * pos + beta))
    return start + (end - start) * out


# --- cubic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "initial, final, begin, end, frequency",
    [(0.0, 0.8, 0, 1000, 300), (0.2, 0.95, 50, 850, 100), (0.5, 0.1, 10, 400, 7), (0.0, 0.9, 100, 100, 10)],
)
def test_cubic_matches_the_formula(initial, final, begin, end, frequency):
    schedule = CubicSparsity(initial, final, begin, end, frequency=frequency)
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
    ours = CubicSparsity(initial, final, begin, end, frequency=frequency)
    theirs = tfmot.sparsity.keras.PolynomialDecay(initial, final, begin, end, power=3, frequency=frequency)
    steps = tf.constant(STEPS)
    our_prune, our_sparsity = evaluate(ours)
    their_prune, their_sparsity = (t.numpy() for t in theirs(steps))
    np.testing.assert_allclose(our_sparsity, their_sparsity, rtol=0, atol=2e-7)
    # Ours adds exactly the end step (and step 1 when step 0 is an event).
    extra = np.flatnonzero(our_prune & ~their_prune)
    assert set(extra) <= {end, 1}
    assert not np.any(their_prune & ~our_prune)


@pytest.mark.parametrize("length", [237, 300])  # 237 * (1 / 237) is not 1.0 in any rounding; 300 has a unit scale
@pytest.mark.parametrize(
    "build",
    [
        lambda b, e: CubicSparsity(0.0, 0.8, b, e, frequency=5),
        lambda b, e: PolynomialSparsity(0.0, 0.8, b, e, frequency=5, power=1 / 3, orientation="fast_late"),
        lambda b, e: PolynomialSparsity(0.1, 0.8, b, e, frequency=5, power=2.5, orientation="fast_late"),
        lambda b, e: CosineSparsity(0.0, 0.8, b, e, frequency=5, shape="fast_late"),
        lambda b, e: ExponentialSparsity(0.0, 0.8, b, e, frequency=5),
        lambda b, e: OneCycleSparsity(0.05, 0.8, b, e, frequency=5),
    ],
    ids=["cubic", "root", "power_2.5", "cosine", "exponential", "one_cycle"],
)
def test_ramps_are_exact_at_both_ends_eagerly_in_a_graph_and_under_xla(build, length):
    """A graph turns `/ length` into `* (1 / length)`, which misses 1.0 at the end for some lengths
    (`(1 - 0.9999999999999999) ** (1 / 3)` is 5e-6), and XLA reassociates products: the ends hold."""
    schedule = build(10, 10 + length)
    steps = tf.constant([0, 10, 10 + length, 10**6], tf.int64)
    want = np.float32([schedule.initial_sparsity] * 2 + [schedule.final_sparsity] * 2)
    for function in (schedule, tf.function(schedule.__call__), tf.function(schedule.__call__, jit_compile=True)):
        np.testing.assert_array_equal(function(steps)[1].numpy(), want)
        for step, value in zip(steps, want, strict=True):  # the scalar graph, as tfmot builds it
            assert function(step)[1].numpy() == value, int(step)


def test_a_subclass_ramp_is_the_curve_of_every_window():
    """Overriding `ramp` changes every window, a one-shot window as a longer one."""

    class HalfCubic(CubicSparsity):
        def ramp(self, gone, length):
            return 0.5 * super().ramp(gone, length)

    for begin, end in [(20, 120), (50, 50)]:
        cubic, half = (cls(0.1, 0.8, begin, end, frequency=10) for cls in (CubicSparsity, HalfCubic))
        np.testing.assert_array_equal(evaluate(half)[1], np.float32(0.5) * evaluate(cubic)[1])


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
    schedule = ExponentialSparsity(initial, final, begin, end, frequency=frequency)
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
    "rate, max_sparsity, begin, frequency, initial",
    [(0.2, 0.9, 0, 100, 0.0), (0.05, 0.97, 30, 7, 0.0), (0.5, 0.5, 5, 10, 0.0), (0.1, 0.8, 40, 50, 0.3)],
)
def test_exponential_rate_is_the_hand_written_per_event_form(rate, max_sparsity, begin, frequency, initial):
    """The hand-written custom-schedule form: each pruning step removes `rate` of the survivors, up to
    the cap (a loop over the events), on the curve `(1 - rate) ** (offset / frequency)` in between;
    the same built by `from_rate` and loaded by tf-keras from the config release 0.1 saved."""
    schedule = ExponentialRateSparsity(
        rate, max_sparsity, begin_step=begin, frequency=frequency, initial_sparsity=initial
    )
    steps = np.arange(0, 20_000, dtype=np.int64)
    should_prune, sparsity = evaluate(schedule, steps)
    expected_events = (steps >= begin) & ((steps - begin) % frequency == 0)
    if begin == 0:
        expected_events[1] = True
    np.testing.assert_array_equal(should_prune, expected_events)
    # Event by event, as a hand-written schedule keeps it.
    keep, pruning, applied = 1.0 - initial, [], []
    for k, step in enumerate(range(begin, len(steps), frequency)):
        keep = keep if k == 0 else max(keep * (1.0 - rate), 1.0 - max_sparsity)
        pruning.append(step)
        applied.append(1.0 - keep)
    np.testing.assert_allclose(sparsity[pruning], applied, rtol=0, atol=2e-7)
    # Every step, in closed form.
    offsets = np.maximum(steps - begin, 0)
    closed = 1.0 - np.maximum(1.0 - max_sparsity, (1.0 - initial) * (1.0 - rate) ** (offsets / frequency))
    np.testing.assert_allclose(sparsity, closed, rtol=0, atol=2e-7)
    assert sparsity[-1] == np.float32(max_sparsity) and np.all(sparsity[: begin + 1] == np.float32(initial))
    # No end: still pruning (at the cap) at a giant step on the grid.
    giant = begin + frequency * 10**15
    prune, value = schedule(giant)
    assert bool(prune) and float(value) == np.float32(max_sparsity)
    # The same schedule by `ExponentialSparsity.from_rate` and from a 0.1 config (`end_step=-1` and a rate).
    old = {
        "class_name": "schedules>ExponentialSparsity",
        "config": {
            "initial_sparsity": initial,
            "final_sparsity": max_sparsity,
            "begin_step": begin,
            "end_step": -1,
            "frequency": frequency,
            "rate": rate,
        },
    }
    for same in (
        ExponentialSparsity.from_rate(
            rate, max_sparsity, begin_step=begin, frequency=frequency, initial_sparsity=initial
        ),
        tf_keras.utils.deserialize_keras_object(old),
    ):
        assert type(same) is ExponentialRateSparsity and same.get_config() == schedule.get_config()
        for got, want in zip(evaluate(same, steps[:500]), (should_prune[:500], sparsity[:500]), strict=True):
            np.testing.assert_array_equal(got, want)


# --- step --------------------------------------------------------------------------


def staircase_reference(steps, boundaries, sparsities):
    values = []
    for step in steps:
        i = bisect.bisect_right(boundaries, step) - 1
        values.append(sparsities[i] if i >= 0 else 0.0)
    return np.array(values, dtype=np.float32)


@pytest.mark.parametrize(
    "boundaries, sparsities",
    [
        ([100, 250, 600], [0.5, 0.7, 0.9]),
        ([0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4]),
        ([500], [0.8]),
        ([0, 300], [0.9, 0.2]),
        ([2**24 - 1, 2**24], [0.3, 0.6]),  # the last float32 integer
        ([2**24 - 1, 2**24 + 1], [0.3, 0.6]),  # past it
    ],
)
def test_step_matches_the_staircase(boundaries, sparsities):
    schedule = StepSparsity(boundaries, sparsities)
    near = [b + d for b in boundaries for d in (-1, 0, 1)]
    steps = np.array([*STEPS, *near, *EXTREME_STEPS], np.int64)
    should_prune, sparsity = evaluate(schedule, steps)
    np.testing.assert_array_equal(sparsity, staircase_reference(steps, boundaries, sparsities))
    expected_events = np.isin(steps, boundaries) | ((steps == 1) & (boundaries[0] == 0))
    np.testing.assert_array_equal(should_prune, expected_events)


@pytest.mark.parametrize("count", [5, 300])
def test_step_with_many_stairs_matches_the_staircase(count):
    """Random staircases of a few to many stairs, up to step 1,200."""
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
        (0.0, 0.8, 0, 4, 2, 1, 2),  # cycles of 2 and 3 steps, an even power, after the window
        (0.9, 0.1, 3, 12, 3, 2, 4),  # falling, cycles of two lengths
    ],
)
def test_cyclic_matches_the_step_by_step_reference(initial, final, begin, end, num_cycles, frequency, power):
    schedule = CyclicSparsity(initial, final, begin, end, num_cycles=num_cycles, frequency=frequency, power=power)
    steps = np.array([*STEPS, *EXTREME_STEPS], np.int64)
    should_prune, sparsity = evaluate(schedule, steps)
    ref_events, ref_values = cyclic_reference(steps.tolist(), initial, final, begin, end, num_cycles, frequency, power)
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


# --- polynomial --------------------------------------------------------------------

POWERS = [1 / 3, 0.5, 1, 2, 3, 7]
RAMP_WINDOWS = [
    (0.0, 0.8, 0, 1000, 300),
    (0.2, 0.95, 50, 850, 100),
    (0.6, 0.1, 10, 400, 7),
    (0.0, 0.9, 100, 100, 10),
]


def polynomial_reference(initial, final, power, orientation):
    """NNCF's two forms; "fast_early" is the one that covers more of the way at half the window
    (concave), "fast_late" the one that covers less (both are linear at power 1)."""
    forms = {concave: nncf_polynomial(0.5, 0.0, 1.0, power, concave) for concave in (False, True)}
    early, late = max(forms, key=forms.get), min(forms, key=forms.get)
    concave = early if orientation == "fast_early" else late
    return lambda p: nncf_polynomial(p, initial, final, power, concave)


@pytest.mark.parametrize("initial, final, begin, end, frequency", RAMP_WINDOWS)
@pytest.mark.parametrize("orientation", ["fast_early", "fast_late"])
@pytest.mark.parametrize("power", POWERS)
def test_polynomial_matches_nncf(power, orientation, initial, final, begin, end, frequency):
    schedule = PolynomialSparsity(initial, final, begin, end, frequency=frequency, power=power, orientation=orientation)
    reference = polynomial_reference(initial, final, power, orientation)
    check_ramp(schedule, reference, initial, final, begin, end, frequency)


@pytest.mark.parametrize("power", POWERS)
def test_polynomial_orientation_is_what_the_curve_does(power):
    """fast_early covers at least the linear share of the way at every step, fast_late at most."""
    steps = np.arange(0, 1001, dtype=np.int64)
    p = progress(steps, 0, 1000)
    for initial, final in [(0.0, 0.8), (0.7, 0.2)]:
        early = evaluate(PolynomialSparsity(initial, final, 0, 1000, frequency=10, power=power), steps)[1]
        late = evaluate(
            PolynomialSparsity(initial, final, 0, 1000, frequency=10, power=power, orientation="fast_late"), steps
        )[1]
        early, late = ((values - initial) / (final - initial) for values in (early, late))  # shares of the way
        assert np.all(early >= p - 1e-6) and np.all(late <= p + 1e-6)
        if power != 1:
            assert early[500] > 0.5 + 0.05 and late[500] < 0.5 - 0.05


@pytest.mark.parametrize("initial, final, begin, end, frequency", [*RAMP_WINDOWS[:3], (0.0, 0.5, 3, 1003, 1)])
def test_polynomial_power_3_fast_early_is_tfmot_polynomial_decay(initial, final, begin, end, frequency):
    ours = PolynomialSparsity(initial, final, begin, end, frequency=frequency, power=3, orientation="fast_early")
    theirs = tfmot.sparsity.keras.PolynomialDecay(initial, final, begin, end, power=3, frequency=frequency)
    steps = np.arange(0, end + 51, dtype=np.int64)
    our_prune, our_sparsity = evaluate(ours, steps)
    their_prune, their_sparsity = (t.numpy() for t in theirs(tf.constant(steps)))
    np.testing.assert_allclose(our_sparsity, their_sparsity, rtol=0, atol=2e-7)
    assert set(np.flatnonzero(our_prune & ~their_prune)) <= {end, 1}
    assert not np.any(their_prune & ~our_prune)
    # And SparseML's `cubic`.
    np.testing.assert_allclose(
        our_sparsity, sparseml_interpolate(steps, begin, end, initial, final, "cubic"), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("initial, final, begin, end, frequency", RAMP_WINDOWS[:3])
def test_polynomial_power_3_fast_late_is_inc_cube(initial, final, begin, end, frequency):
    schedule = PolynomialSparsity(initial, final, begin, end, frequency=frequency, power=3, orientation="fast_late")
    check_ramp(schedule, lambda p: inc_cube(p, initial, final), initial, final, begin, end, frequency)


@pytest.mark.parametrize("initial, final, begin, end, frequency", RAMP_WINDOWS[:3])
def test_polynomial_power_one_third_fast_late_is_sparseml_inverse_cubic(initial, final, begin, end, frequency):
    schedule = PolynomialSparsity(initial, final, begin, end, frequency=frequency, power=1 / 3, orientation="fast_late")
    steps = np.arange(0, end + 51, dtype=np.int64)
    expected = sparseml_interpolate(steps, begin, end, initial, final, "inverse_cubic")
    np.testing.assert_allclose(evaluate(schedule, steps)[1], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("initial, final, begin, end, frequency", RAMP_WINDOWS[:3])
def test_polynomial_power_1_is_linear_in_both_orientations(initial, final, begin, end, frequency):
    steps = np.arange(0, end + 51, dtype=np.int64)
    linear = sparseml_interpolate(steps, begin, end, initial, final, "linear")
    values = [
        evaluate(PolynomialSparsity(initial, final, begin, end, frequency=frequency, power=1, orientation=o), steps)[1]
        for o in ("fast_early", "fast_late")
    ]
    np.testing.assert_allclose(values[0], linear, rtol=0, atol=1e-6)
    np.testing.assert_allclose(values[1], linear, rtol=0, atol=1e-6)
    np.testing.assert_allclose(values[0], values[1], rtol=0, atol=1.2e-7)  # one float32 ulp at most


# --- cosine ------------------------------------------------------------------------

COSINE_REFERENCES = {
    "s_curve": lambda initial, final: lambda p: fastai_sched_cos(initial, final, p),
    "fast_late": lambda initial, final: lambda p: inc_cos(p, initial, final),
    "fast_early": lambda initial, final: lambda p: initial + (final - initial) * np.sin(np.pi * p / 2),
}


@pytest.mark.parametrize("initial, final, begin, end, frequency", [*RAMP_WINDOWS, (0.1, 0.7, 3, 1003, 1)])
@pytest.mark.parametrize("shape", sorted(COSINE_REFERENCES))
def test_cosine_matches_the_toolkit_formulas(shape, initial, final, begin, end, frequency):
    schedule = CosineSparsity(initial, final, begin, end, frequency=frequency, shape=shape)
    check_ramp(schedule, COSINE_REFERENCES[shape](initial, final), initial, final, begin, end, frequency)


# --- one-cycle ---------------------------------------------------------------------

ALPHA_BETA = [(14.0, 6.0), (5.0, 2.5), (30.0, 20.0), (1.0, 0.0), (0.5, -3.0), (100.0, 40.0), (10.0, 12.0)]


def logistic(p, alpha, beta):
    return 1.0 / (1.0 + np.exp(beta - alpha * np.asarray(p, dtype=np.float64)))


@pytest.mark.parametrize("initial, final, begin, end, frequency", RAMP_WINDOWS)
@pytest.mark.parametrize("alpha, beta", ALPHA_BETA)
def test_one_cycle_matches_the_normalized_logistic(alpha, beta, initial, final, begin, end, frequency):
    schedule = OneCycleSparsity(initial, final, begin, end, frequency=frequency, alpha=alpha, beta=beta)
    start, stop = logistic(0.0, alpha, beta), logistic(1.0, alpha, beta)

    def reference(p):
        return initial + (final - initial) * (logistic(p, alpha, beta) - start) / (stop - start)

    check_ramp(schedule, reference, initial, final, begin, end, frequency)


@pytest.mark.parametrize("initial, final, begin, end", [(0.0, 0.8, 0, 1000), (0.3, 0.9, 25, 525), (0.7, 0.2, 5, 305)])
@pytest.mark.parametrize("alpha, beta", ALPHA_BETA)
def test_one_cycle_differs_from_fasterai_by_at_most_its_start_offset(alpha, beta, initial, final, begin, end):
    """fasterai's `L(p) / L(1)` starts `L(0) / L(1)` of the way along; ours starts at `initial` exactly."""
    schedule = OneCycleSparsity(initial, final, begin, end, frequency=10, alpha=alpha, beta=beta)
    steps = np.arange(0, end + 51, dtype=np.int64)
    ours = evaluate(schedule, steps)[1].astype(np.float64)
    theirs = fasterai_sched_onecycle(initial, final, progress(steps, begin, end), alpha, beta)
    bound = abs(final - initial) * logistic(0.0, alpha, beta) / logistic(1.0, alpha, beta)
    assert np.all(np.abs(ours - theirs) <= bound + 1e-6)
    # The bound is reached at begin_step, and both end at `final`.
    assert abs(ours[begin] - theirs[begin]) == pytest.approx(bound, abs=1e-6)
    assert abs(ours[end] - theirs[end]) <= 1e-6


# --- alternating -------------------------------------------------------------------


def alternating_reference(steps, final, begin, end, sparse_steps, dense_steps):
    """Step-by-step walk of the phase state machine: dense warm-up, then sparse and dense
    phases in turn, each counted down step by step, and sparse for good from `end`."""
    assert list(steps) == list(range(len(steps)))
    events, values = [], []
    phase, left = "dense", 0
    for step in steps:
        if step >= end:
            events.append(step == end)
            values.append(final)
        elif step < begin:
            events.append(False)
            values.append(0.0)
        else:
            starts = left == 0
            if starts:
                phase = "dense" if phase == "sparse" else "sparse"  # the warm-up counts as dense
                left = sparse_steps if phase == "sparse" else dense_steps
            left -= 1
            events.append(starts)
            values.append(final if phase == "sparse" else 0.0)
    events = np.array(events)
    if events[0]:
        events[1] = True
    return events, np.array(values, dtype=np.float32)


ALTERNATING_LAYOUTS = [
    pytest.param(0.9, 10, 170, 20, 20, id="acdc_end_at_a_sparse_start"),
    pytest.param(0.8, 10, 145, 30, 20, id="end_inside_a_dense_phase"),
    pytest.param(0.75, 5, 65, 30, 20, id="end_inside_a_sparse_phase"),
    pytest.param(0.6, 0, 10, 10, 5, id="end_at_a_dense_start"),
    pytest.param(0.7, 40, 40, 10, 10, id="end_equals_begin"),
    pytest.param(0.5, 0, 100, 7, 13, id="begin_0_uneven"),
    pytest.param(0.95, 3, 50, 1, 1, id="single_steps"),
    pytest.param(0.85, 100, 1000, 1, 99, id="one_sparse_step_per_cycle"),
    pytest.param(0.4, 0, 0, 5, 5, id="one_shot_at_0"),
    pytest.param(0.5, 0, 60, 4, 1, id="one_dense_step_from_0"),
    pytest.param(0.65, 7, 61, 3, 1, id="one_dense_step"),
]


@pytest.mark.parametrize("final, begin, end, sparse_steps, dense_steps", ALTERNATING_LAYOUTS)
def test_alternating_matches_the_step_by_step_walk(final, begin, end, sparse_steps, dense_steps):
    schedule = AlternatingSparsity(final, begin, end, sparse_steps=sparse_steps, dense_steps=dense_steps)
    should_prune, sparsity = evaluate(schedule)
    ref_events, ref_values = alternating_reference(STEPS, final, begin, end, sparse_steps, dense_steps)
    np.testing.assert_array_equal(sparsity, ref_values)
    np.testing.assert_array_equal(should_prune, ref_events)


@pytest.mark.parametrize("final, begin, end, sparse_steps, dense_steps", ALTERNATING_LAYOUTS)
def test_alternating_events_are_the_phase_starts_and_end_step(final, begin, end, sparse_steps, dense_steps):
    """The events, enumerated from the phase lengths, and the values between them."""
    starts, step, sparse = [], begin, True
    while step < end:
        starts.append(step)
        step += sparse_steps if sparse else dense_steps
        sparse = not sparse
    expected = set(starts) | {end} | ({1} if 0 in [*starts, end] else set())
    should_prune, sparsity = evaluate(
        AlternatingSparsity(final, begin, end, sparse_steps=sparse_steps, dense_steps=dense_steps)
    )
    assert set(np.flatnonzero(should_prune)) == expected
    # Each phase holds one value, from its start to the next event.
    assert np.all(sparsity[:begin] == 0.0) and np.all(sparsity[end:] == np.float32(final))
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else end
        assert np.all(sparsity[start:stop] == (np.float32(final) if k % 2 == 0 else 0.0))


# --- sequential --------------------------------------------------------------------


def cubic_reference(steps, initial, final, begin, end, frequency):
    values = final + (initial - final) * (1.0 - progress(steps, begin, end)) ** 3
    return grid_events(steps, begin, end, frequency), values


def staircase_events(steps, boundaries):
    events = np.isin(steps, boundaries)
    if boundaries[0] == 0:
        events |= np.asarray(steps) == 1
    return events


def tfmot_child(schedule):
    """A tfmot schedule's own events and values (it is not the code under test)."""

    def reference(steps):
        should_prune, sparsity = schedule(tf.constant(steps, tf.int64))
        return should_prune.numpy(), sparsity.numpy().astype(np.float64)

    return schedule, reference


def cubic_child(initial, final, begin, end, frequency):
    schedule = CubicSparsity(initial, final, begin, end, frequency=frequency)
    return schedule, lambda steps: cubic_reference(steps, initial, final, begin, end, frequency)


def step_child(boundaries, sparsities):
    schedule = StepSparsity(boundaries, sparsities)
    return schedule, lambda steps: (
        staircase_events(steps, boundaries),
        staircase_reference(steps, boundaries, sparsities),
    )


def alternating_child(final, begin, end, sparse_steps, dense_steps):
    schedule = AlternatingSparsity(final, begin, end, sparse_steps=sparse_steps, dense_steps=dense_steps)
    return schedule, lambda steps: alternating_reference(steps, final, begin, end, sparse_steps, dense_steps)


def sequential_reference(steps, references, boundaries):
    """Piecewise: child `i` in charge from `boundaries[i - 1]`, with a hand-over event at each boundary."""
    in_charge = np.searchsorted(boundaries, steps, side="right")
    events, values = np.zeros(len(steps), bool), np.zeros(len(steps))
    for i, reference in enumerate(references):
        child_events, child_values = reference(steps)
        events = np.where(in_charge == i, child_events, events)
        values = np.where(in_charge == i, child_values, values)
    events |= np.isin(steps, boundaries)
    if events[0]:
        events[1] = True
    return events, values


SEQUENCES = {
    # Hand-over at 330, inside the step child's first stair: not an event of either child.
    "cubic_then_step": (
        lambda: [cubic_child(0.0, 0.6, 0, 300, 70), step_child([300, 350, 500], [0.6, 0.7, 0.85])],
        [330],
    ),
    # The hand-over falls on the second child's begin_step (an event of its own).
    "step_then_cubic": (lambda: [step_child([20, 60], [0.3, 0.5]), cubic_child(0.5, 0.9, 100, 700, 90)], [100]),
    # A tfmot child first; hand-overs at 130 (before the cubic begins) and 470 (inside a stair).
    "tfmot_cubic_step": (
        lambda: [
            tfmot_child(tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, begin_step=10, end_step=110, frequency=20)),
            cubic_child(0.5, 0.8, 150, 450, 60),
            step_child([450, 700], [0.8, 0.9]),
        ],
        [130, 470],
    ),
    # AC/DC alternation (from step 0), a dense gap (a 0.0 stair), then a cubic finish.
    "alternating_step_cubic": (
        lambda: [
            alternating_child(0.8, 0, 200, 30, 20),
            step_child([300], [0.0]),
            cubic_child(0.0, 0.9, 400, 900, 100),
        ],
        [200, 400],
    ),
    # The second child's window starts before its boundary (its events at 57, 64, ... are not the
    # composition's) and ends inside its stretch.
    "cubic_then_early_cubic": (
        lambda: [cubic_child(0.0, 0.5, 0, 100, 10), cubic_child(0.5, 0.8, 50, 200, 7)],
        [150],
    ),
    # A tfmot child with an event at step 0: the composition carries it to step 1.
    "tfmot_at_0_then_step": (
        lambda: [
            tfmot_child(tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=200, frequency=30)),
            step_child([210, 400], [0.6, 0.8]),
        ],
        [250],
    ),
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_sequential_is_the_piecewise_reference(name):
    build, boundaries = SEQUENCES[name]
    children = build()
    schedule = SequentialSparsity([child for child, _ in children], boundaries=boundaries)
    should_prune, sparsity = evaluate(schedule)
    ref_events, ref_values = sequential_reference(STEPS, [reference for _, reference in children], boundaries)
    np.testing.assert_allclose(sparsity, ref_values, rtol=0, atol=2e-7)
    np.testing.assert_array_equal(should_prune, ref_events)
    assert all(should_prune[boundaries])  # every hand-over prunes


def test_sequential_hand_over_events_are_added_only_at_boundaries():
    cubic = CubicSparsity(0.0, 0.6, 0, 300, frequency=70)
    stairs = StepSparsity([300, 350, 500], [0.6, 0.7, 0.85])
    should_prune, sparsity = evaluate(SequentialSparsity([cubic, stairs], boundaries=[330]))
    assert np.flatnonzero(should_prune).tolist() == [0, 1, 70, 140, 210, 280, 300, 330, 350, 500]
    assert sparsity[329] == np.float32(0.6) and sparsity[330] == np.float32(0.6)
    assert sparsity[349] == np.float32(0.6) and sparsity[350] == np.float32(0.7)


def test_compositions_of_our_schedules_compile_their_eager_calls_and_of_tfmot_not():
    ours = CubicSparsity(0.0, 0.5, 0, 100, frequency=10)
    theirs = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=100, frequency=10)
    assert SequentialSparsity([ours, CubicSparsity(0.5, 0.8, 200, 300)], boundaries=[150])._compiles()
    assert ScaledSparsity(ours, factor=0.5)._compiles()
    assert not SequentialSparsity([ours, theirs], boundaries=[150])._compiles()
    assert not ScaledSparsity(theirs, factor=0.5)._compiles()


def test_sequential_returns_a_subnormal_sparsity_of_its_child_as_it_is():
    """Found by the property test: a cast to float64 and back flushed a tfmot child's
    subnormal sparsity (1.4e-45) to 0; the child's float32 values now pass through."""
    tiny = float(np.nextafter(np.float32(0), np.float32(1)))
    child = tfmot.sparsity.keras.ConstantSparsity(tiny, 0, frequency=1)
    steps = tf.constant([0, 5], tf.int64)
    for schedule in (SequentialSparsity([child], boundaries=[]), SequentialSparsity([child, child], boundaries=[3])):
        np.testing.assert_array_equal(schedule(steps)[1].numpy(), np.float32([tiny, tiny]))


# --- scaled ------------------------------------------------------------------------

SCALED = {
    "cubic_half": (lambda: cubic_child(0.0, 0.8, 20, 820, 100), 0.5),
    "cubic_more": (lambda: cubic_child(0.1, 0.6, 0, 600, 45), 1.5),
    "cubic_to_the_limit": (lambda: cubic_child(0.0, 0.6, 0, 600, 45), MAX_SPARSITY / 0.6),
    "step": (lambda: step_child([0, 100, 400], [0.2, 0.5, 0.9]), 0.3),
    "alternating": (lambda: alternating_child(0.8, 30, 330, 40, 25), 1.1),
    "tfmot_begin_0": (
        lambda: tfmot_child(tfmot.sparsity.keras.PolynomialDecay(0.0, 0.7, begin_step=0, end_step=700, frequency=60)),
        1.2,
    ),
    "tfmot_constant": (
        lambda: tfmot_child(tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=50, end_step=650, frequency=25)),
        0.4,
    ),
}


@pytest.mark.parametrize("name", sorted(SCALED))
def test_scaled_is_the_factor_times_the_child(name):
    build, factor = SCALED[name]
    child, reference = build()
    should_prune, sparsity = evaluate(ScaledSparsity(child, factor=factor))
    child_events, child_values = reference(STEPS)
    expected = np.minimum(factor * np.broadcast_to(child_values, STEPS.shape), MAX_SPARSITY)
    np.testing.assert_allclose(sparsity, expected, rtol=0, atol=3e-7)
    assert np.all(sparsity < 1.0)
    # The child's own events (and step 1 when step 0 is one, which a tfmot child does not add itself).
    child_events = np.broadcast_to(child_events, STEPS.shape).copy()
    child_events[1] |= child_events[0]
    np.testing.assert_array_equal(should_prune, child_events)
    called = np.broadcast_to(child(tf.constant(STEPS))[0].numpy(), STEPS.shape).copy()
    called[1] |= called[0]
    np.testing.assert_array_equal(should_prune, called)


def test_peak_sparsity_of_compositions():
    cubic = CubicSparsity(0.1, 0.6, 0, 100, frequency=10)
    stairs = StepSparsity([200, 300], [0.7, 0.5])
    assert peak_sparsity(cubic) == 0.6 and peak_sparsity(stairs) == 0.7
    assert peak_sparsity(ExponentialRateSparsity(0.2, 0.85, initial_sparsity=0.1)) == 0.85
    assert peak_sparsity(SequentialSparsity([cubic, stairs], boundaries=[200])) == 0.7
    assert peak_sparsity(ScaledSparsity(stairs, factor=0.5)) == pytest.approx(0.35)
    assert peak_sparsity(tfmot.sparsity.keras.ConstantSparsity(0.4, 0)) == pytest.approx(0.4)
    assert peak_sparsity(tfmot.sparsity.keras.PolynomialDecay(0.5, 0.2, 0, 10)) == pytest.approx(0.5)


# --- saved values ------------------------------------------------------------------

#: Every family's events and sparsities as commit 8a9e893 computed them (`fixtures/make_values.py`):
#: the cases of `_registry.py` at giant offsets, the cyclic windows of the tests and benchmarks, every
#: ramp's powers and shapes, at steps from -2**63 to 2**63 - 1.
SAVED_VALUES = Path(__file__).parent / "fixtures" / "values_8a9e893.npz"


def test_values_are_those_of_8a9e893_bit_for_bit():
    """Models saved before keep their curves: rebuilt from its config, each schedule gives the saved
    events and float32 bits (one vectorized eager call, as the values were recorded)."""
    with np.load(SAVED_VALUES) as saved:  # each array read once (every read decompresses it)
        configs, counts = json.loads(str(saved["configs"])), saved["counts"]
        all_steps, all_events, all_bits = saved["steps"], saved["events"], saved["sparsity"].view(np.uint32)
    ends = np.cumsum(counts)
    moved = []
    for config, begin, end in zip(configs, ends - counts, ends, strict=True):
        schedule = tf_keras.utils.deserialize_keras_object(config, module_objects=registry.schedule_classes())
        steps = all_steps[begin:end]
        should_prune, sparsity = schedule(tf.constant(steps))
        should_prune = np.broadcast_to(should_prune.numpy(), steps.shape)
        sparsity = np.broadcast_to(sparsity.numpy(), steps.shape)
        different = (should_prune != all_events[begin:end]) | (sparsity.view(np.uint32) != all_bits[begin:end])
        if different.any():
            moved.append((config, steps[different][:5].tolist()))
    assert not moved, f"{len(moved)} of {len(configs)} schedules moved; the first: {moved[:3]}"
