"""Rules that hold for every valid argument, checked with hypothesis."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

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
from schedules._validation import MAX_SPARSITY, MAX_STEP
from schedules.composition import peak_sparsity

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
    return cls(draw(sparsities), draw(sparsities), begin, begin + length, frequency=draw(frequencies))


@st.composite
def exponential_rate_arguments(draw):
    """Valid arguments of `ExponentialRateSparsity`, by name."""
    initial = draw(sparsities)
    return {
        "rate": draw(st.floats(min_value=1e-9, max_value=1.0, exclude_max=True)),
        "max_sparsity": draw(st.floats(min_value=initial, max_value=MAX_SPARSITY, allow_subnormal=False)),
        "begin_step": draw(begins),
        "frequency": draw(frequencies),
        "initial_sparsity": initial,
    }


@st.composite
def exponential_rates(draw):
    """`ExponentialRateSparsity`, built directly or by `ExponentialSparsity.from_rate`."""
    build = draw(st.sampled_from([ExponentialRateSparsity, ExponentialSparsity.from_rate]))
    arguments = draw(exponential_rate_arguments())
    return build(arguments.pop("rate"), arguments.pop("max_sparsity"), **arguments)


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
    return CyclicSparsity(
        draw(sparsities),
        draw(sparsities),
        begin,
        begin + length,
        num_cycles=cycles,
        frequency=draw(frequencies),
        power=power,
    )


powers = st.floats(min_value=1e-3, max_value=1e3)


@st.composite
def polynomials(draw, orientation=None, increasing=False):
    begin, length = draw(begins), draw(lengths)
    initial, final = draw(sparsities), draw(sparsities)
    if increasing:
        initial, final = min(initial, final), max(initial, final)
    orientation = orientation or draw(st.sampled_from(["fast_early", "fast_late"]))
    power = draw(st.one_of(powers, st.sampled_from([1, 3, 1 / 3, 0.5, 2])))
    return PolynomialSparsity(
        initial, final, begin, begin + length, frequency=draw(frequencies), power=power, orientation=orientation
    )


@st.composite
def cosines(draw):
    begin, length = draw(begins), draw(lengths)
    shape = draw(st.sampled_from(["s_curve", "fast_late", "fast_early"]))
    return CosineSparsity(
        draw(sparsities), draw(sparsities), begin, begin + length, frequency=draw(frequencies), shape=shape
    )


@st.composite
def one_cycles(draw):
    begin, length = draw(begins), draw(lengths)
    alpha = draw(st.floats(min_value=1e-3, max_value=1000.0))
    beta = draw(st.floats(min_value=-1000.0, max_value=1000.0))
    try:
        return OneCycleSparsity(
            draw(sparsities),
            draw(sparsities),
            begin,
            begin + length,
            frequency=draw(frequencies),
            alpha=alpha,
            beta=beta,
        )
    except ValueError:  # the logistic barely rises over the window: refused by the constructor
        reject()


@st.composite
def alternatings(draw):
    begin, length = draw(begins), draw(lengths)
    sparse_steps = draw(st.one_of(st.integers(1, 200), st.integers(1, 2**40)))
    dense_steps = draw(st.one_of(st.integers(1, 200), st.integers(1, 2**40)))
    return AlternatingSparsity(
        draw(sparsities), begin, begin + length, sparse_steps=sparse_steps, dense_steps=dense_steps
    )


@st.composite
def tfmot_schedules(draw):
    """tfmot's own schedules, with arguments it handles (begin < end, steps below 2**24 for float32)."""
    begin = draw(st.integers(0, 10**6))
    if draw(st.booleans()):
        return tfmot.sparsity.keras.ConstantSparsity(
            draw(sparsities), begin, draw(st.sampled_from([-1, begin + 10**5])), draw(frequencies)
        )
    end = begin + draw(st.integers(1, 10**6))
    initial, final = draw(sparsities), draw(sparsities)
    return tfmot.sparsity.keras.PolynomialDecay(initial, final, begin, end, draw(st.integers(1, 3)), draw(frequencies))


#: A strategy for every family that is not a composition (`test_every_family_has_a_strategy`).
SIMPLE = {
    CubicSparsity: ramps(CubicSparsity),
    ExponentialSparsity: ramps(ExponentialSparsity),
    ExponentialRateSparsity: exponential_rates(),
    StepSparsity: staircases(),
    CyclicSparsity: cyclics(),
    PolynomialSparsity: polynomials(),
    CosineSparsity: cosines(),
    OneCycleSparsity: one_cycles(),
    AlternatingSparsity: alternatings(),
}
simple_schedules = st.one_of(*SIMPLE.values())


@st.composite
def sequentials(draw, children=simple_schedules):
    schedules = draw(st.lists(children, min_size=1, max_size=4))
    boundaries = sorted(
        draw(st.sets(st.integers(0, MAX_STEP), min_size=len(schedules) - 1, max_size=len(schedules) - 1))
    )
    return SequentialSparsity(schedules, boundaries=boundaries)


@st.composite
def in_window(draw, begin, end, last=False):
    """A schedule of a family that prunes only inside `[begin, end]` (from `begin` on, when `last`)."""
    length = end - begin
    choices = ["cubic", "cosine", "alternating", "step", "polynomial_decay"]
    choices += ["cyclic"] if length >= 1 else []
    choices += ["constant", "exponential_rate"] if last else []
    kind = draw(st.sampled_from(choices))
    initial, final, frequency = draw(sparsities), draw(sparsities), draw(frequencies)
    if kind == "cubic":
        return CubicSparsity(initial, final, begin, end, frequency=frequency)
    if kind == "cosine":
        return CosineSparsity(initial, final, begin, end, frequency=frequency)
    if kind == "alternating":
        return AlternatingSparsity(final, begin, end, sparse_steps=draw(st.integers(1, 300)), dense_steps=5)
    if kind == "step":
        return StepSparsity(sorted({begin, end}), [final] * len({begin, end}))
    if kind == "cyclic":
        return CyclicSparsity(initial, final, begin, end, num_cycles=draw(st.integers(1, max(1, (length + 1) // 2))))
    if kind == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(final, begin, -1, frequency)
    if kind == "exponential_rate":
        return ExponentialRateSparsity(0.1, MAX_SPARSITY, begin_step=begin, frequency=frequency)
    end = max(end, begin + 1)  # tfmot's PolynomialDecay returns NaN at begin_step == end_step
    return tfmot.sparsity.keras.PolynomialDecay(initial, final, begin, end, 3, frequency)


@st.composite
def back_to_back(draw):
    """A `SequentialSparsity` whose children each prune only inside their stretch of steps
    (where it joins their events with one `or`), the boundaries at or before each next window."""
    count = draw(st.integers(2, 4))
    steps = sorted(draw(st.sets(st.integers(0, 10**6), min_size=2 * count, max_size=2 * count)))
    windows = [(steps[2 * i], steps[2 * i + 1]) for i in range(count)]
    children = [in_window(begin, end, last=i == count - 1) for i, (begin, end) in enumerate(windows)]
    tfmot_end = [max(end, begin + 1) for begin, end in windows]  # as in_window widens tfmot's
    boundaries = [draw(st.integers(tfmot_end[i] + 1, windows[i + 1][0])) for i in range(count - 1)]
    if any(b < 0 or (i and b <= boundaries[i - 1]) for i, b in enumerate(boundaries)):
        reject()
    return SequentialSparsity([draw(child) for child in children], boundaries=boundaries)


@st.composite
def scaleds(draw, children=simple_schedules):
    child = draw(children)
    peak = peak_sparsity(child)
    most = 1.0 if peak is None or peak == 0.0 else MAX_SPARSITY / peak
    return ScaledSparsity(child, factor=draw(st.floats(min_value=0.0, max_value=most, exclude_min=True)))


COMPOSED = {SequentialSparsity: sequentials(), ScaledSparsity: scaleds()}
every_schedule = st.one_of(simple_schedules, *COMPOSED.values())


def test_every_family_has_a_strategy():
    ours = [family for family in registry.families() if family.cls.__module__.startswith("schedules")]
    missing = [family.name for family in ours if family.cls not in {**SIMPLE, **COMPOSED}]
    assert not missing, f"families with no hypothesis strategy in SIMPLE or COMPOSED: {missing}"


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


@given(st.one_of(ramps(CubicSparsity), ramps(ExponentialSparsity)), st.data())
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
    schedule = CyclicSparsity(initial, final, begin, end, num_cycles=cycles, frequency=frequency)
    offsets = np.array(data.draw(st.lists(st.integers(0, cycle_length - 1), min_size=1, max_size=30)), np.int64)
    cycle = data.draw(st.integers(0, cycles - 1))
    first = [t.numpy() for t in schedule(tf.constant(begin + offsets))]
    other = [t.numpy() for t in schedule(tf.constant(begin + cycle * cycle_length + offsets))]
    if begin == 0:  # the step-0 carry makes step 1 an extra event in the first cycle only
        first[0] = np.where(offsets == 1, other[0], first[0])
    np.testing.assert_array_equal(first[0], other[0])
    np.testing.assert_array_equal(first[1], other[1])


# --- the newer families -------------------------------------------------------------------


def _float32(value: float) -> np.float32:
    """`value` in float32 as TensorFlow gives it on CPU: values below the smallest normal flushed to zero."""
    value = np.float32(value)
    return value if abs(value) >= np.finfo(np.float32).tiny else np.float32(0.0)


def _values(schedule, steps) -> tuple[np.ndarray, np.ndarray]:
    should_prune, sparsity = schedule(tf.constant(steps, tf.int64))
    return should_prune.numpy(), sparsity.numpy()


# --- the open-ended exponential ------------------------------------------------------------


def exponential_rate_reference(steps, rate, max_sparsity, begin_step, frequency, initial_sparsity):
    """Events and sparsity of the per-event form in float64, with NumPy's power (the package uses log1p and
    expm1): `1 - sparsity = max(1 - max_sparsity, (1 - initial) * (1 - rate) ** (offset / frequency))`."""
    steps = np.asarray(steps, np.int64)
    offsets = np.maximum(steps - begin_step, 0)
    keep = (1.0 - initial_sparsity) * (1.0 - rate) ** (offsets / frequency)
    sparsity = 1.0 - np.maximum(1.0 - max_sparsity, keep)
    events = (steps >= begin_step) & ((steps - begin_step) % frequency == 0)
    return events | ((steps == 1) & (begin_step == 0)), sparsity


@given(exponential_rate_arguments(), st.sampled_from(["direct", "from_rate"]), st.booleans(), st.data())
def test_exponential_rate_is_the_per_event_formula_also_when_loaded_from_a_0_1_config(arguments, form, wrapped, data):
    """Built directly or by `from_rate`, and loaded from the config release 0.1 saved for it (an
    `ExponentialSparsity` with `end_step=-1` and a `rate`, flat or wrapped): the same schedule, with
    identical values, growing from `initial_sparsity` to `max_sparsity` by the formula and pruning every
    `frequency` steps from `begin_step` forever."""
    rate, max_sparsity = arguments["rate"], arguments["max_sparsity"]
    others = {key: arguments[key] for key in ("begin_step", "frequency", "initial_sparsity")}
    build = ExponentialRateSparsity if form == "direct" else ExponentialSparsity.from_rate
    schedule = build(rate, max_sparsity, **others)
    old = {
        "initial_sparsity": arguments["initial_sparsity"],
        "final_sparsity": max_sparsity,
        "begin_step": arguments["begin_step"],
        "end_step": -1,
        "frequency": arguments["frequency"],
        "rate": rate,
    }
    if wrapped:
        old = {"class_name": "schedules>ExponentialSparsity", "config": old}
    loaded = ExponentialSparsity.from_config(json.loads(json.dumps(old)))
    for restored in (schedule, loaded):
        assert type(restored) is ExponentialRateSparsity and restored.end_step == -1
        assert list(restored.get_config()["config"].items()) == list(arguments.items())

    begin, frequency = arguments["begin_step"], arguments["frequency"]
    on_grid = data.draw(st.lists(st.integers(0, (MAX_STEP - begin) // frequency), max_size=10))
    steps = np.unique(np.concatenate([_steps_around(schedule, data), begin + frequency * np.array(on_grid, np.int64)]))
    should_prune, sparsity = _values(schedule, steps)
    for got, want in zip(_values(loaded, steps), (should_prune, sparsity), strict=True):
        np.testing.assert_array_equal(got, want)
    events, reference = exponential_rate_reference(steps, **arguments)
    np.testing.assert_array_equal(should_prune, events)
    np.testing.assert_allclose(sparsity, reference, rtol=0, atol=1e-7)
    assert np.all(np.diff(sparsity) >= 0)
    assert sparsity[0] == _float32(arguments["initial_sparsity"]) and sparsity[-1] == _float32(max_sparsity)


@given(
    initial=sparsities,
    final=sparsities,
    begin=begins,
    length=lengths,
    frequency=frequencies,
    wrapped=st.booleans(),
)
def test_a_0_1_config_without_a_rate_loads_as_the_windowed_exponential(
    initial, final, begin, length, frequency, wrapped
):
    """Release 0.1 saved the windowed form with `rate: None`: it loads as the same `ExponentialSparsity`."""
    old = {
        "initial_sparsity": initial,
        "final_sparsity": final,
        "begin_step": begin,
        "end_step": begin + length,
        "frequency": frequency,
        "rate": None,
    }
    if wrapped:
        old = {"class_name": "schedules>ExponentialSparsity", "config": old}
    loaded = ExponentialSparsity.from_config(json.loads(json.dumps(old)))
    assert type(loaded) is ExponentialSparsity
    expected = {key: value for key, value in (old["config"] if wrapped else old).items() if key != "rate"}
    assert list(loaded.get_config()["config"].items()) == list(expected.items())


@given(st.one_of(polynomials(), cosines(), one_cycles()), st.data())
def test_shaped_ramps_move_monotonically_from_initial_to_final_within_their_bounds(schedule, data):
    steps = _steps_around(schedule, data)
    sparsity = _values(schedule, steps)[1].astype(np.float64)
    initial, final = np.float32(schedule.initial_sparsity), np.float32(schedule.final_sparsity)
    if final >= initial:
        assert np.all(np.diff(sparsity) >= 0), sparsity
    else:
        assert np.all(np.diff(sparsity) <= 0), sparsity
    # float32, with values below float32's smallest normal flushed to zero as TensorFlow does on CPU
    tiny = np.finfo(np.float32).tiny
    assert np.all((sparsity >= min(initial, final) - tiny) & (sparsity <= max(initial, final)))
    np.testing.assert_allclose(sparsity[steps < schedule.begin_step], initial, rtol=0, atol=tiny)
    np.testing.assert_allclose(sparsity[steps >= schedule.end_step], final, rtol=0, atol=tiny)


#: Rounding allowed between a float64 curve cast to float32 and the float32 linear ramp.
_ULPS = 4 * np.spacing(np.float32(1.0))


@given(
    st.sampled_from(["fast_early", "fast_late"]).flatmap(lambda o: polynomials(orientation=o, increasing=True)),
    st.data(),
)
def test_fast_early_is_on_or_above_the_linear_ramp_and_fast_late_on_or_below(schedule, data):
    steps = _steps_around(schedule, data)
    sparsity = _values(schedule, steps)[1].astype(np.float64)
    begin, end = schedule.begin_step, schedule.end_step
    # the linear ramp, in float64 from exact integer offsets
    offsets = np.clip(steps - begin, 0, end - begin)
    progress = (offsets / (end - begin)) if end > begin else (steps >= begin).astype(np.float64)
    linear = schedule.initial_sparsity + (schedule.final_sparsity - schedule.initial_sparsity) * progress
    if schedule.orientation == "fast_early":
        assert np.all(sparsity >= linear - _ULPS), (sparsity, linear)
    else:
        assert np.all(sparsity <= linear + _ULPS), (sparsity, linear)


def _alternating_reference(schedule, step: int) -> tuple[bool, float]:
    """AC/DC with Python ints, step by step."""
    begin, end, s, d = schedule.begin_step, schedule.end_step, schedule.sparse_steps, schedule.dense_steps
    position = (step - begin) % (s + d)
    if step >= end:
        sparse = True
    else:
        sparse = step >= begin and position < s
    event = (begin <= step < end and position in (0, s)) or step == end
    return event, schedule.final_sparsity if sparse else 0.0


@given(alternatings(), st.data())
def test_alternating_takes_only_zero_or_final_and_is_final_from_end_step(schedule, data):
    begin, end = schedule.begin_step, schedule.end_step
    period = schedule.sparse_steps + schedule.dense_steps
    near = [begin, end, begin + schedule.sparse_steps, begin + period, end - 1, end + 1, begin - 1, 1, 0]
    inside = data.draw(st.lists(st.integers(max(begin - 10, 0), end + 10), max_size=30))
    steps = np.array(sorted({x for x in [*near, *inside, *data.draw(any_steps)] if x >= 0}), np.int64)
    should_prune, sparsity = _values(schedule, steps)
    final = _float32(schedule.final_sparsity)
    assert set(np.unique(sparsity)) <= {np.float32(0.0), final}
    assert np.all(sparsity[steps >= end] == final)
    event_at_zero = _alternating_reference(schedule, 0)[0]
    for step, prune, value in zip(steps.tolist(), should_prune, sparsity, strict=True):
        event, expected = _alternating_reference(schedule, step)
        assert value == _float32(expected), step
        assert prune == (event or (step == 1 and event_at_zero)), step


@given(
    st.one_of(
        sequentials(),
        sequentials(st.one_of(simple_schedules, tfmot_schedules(), sequentials(), scaleds())),
        back_to_back(),
    ),
    st.data(),
)
def test_sequential_equals_the_schedule_in_charge_at_every_step(schedule, data):
    boundaries = schedule.boundaries
    near = [b + delta for b in boundaries for delta in (-1, 0, 1)] + [0, 1]
    steps = np.array(sorted({x for x in [*near, *data.draw(any_steps)] if 0 <= x <= MAX_STEP}), np.int64)
    should_prune, sparsity = _values(schedule, steps)
    in_charge = np.searchsorted(np.array(boundaries, np.int64), steps, side="right")
    # Each child in charge somewhere, at every step at once (tfmot's ConstantSparsity gives a scalar sparsity).
    children = {
        i: [np.broadcast_to(np.asarray(t), steps.shape) for t in schedule.schedules[i](tf.constant(steps, tf.int64))]
        for i in set(in_charge.tolist())
    }
    event_at_zero = 0 in boundaries or bool(children[int(in_charge[0])][0][0])  # steps[0] == 0
    for k, (step, i) in enumerate(zip(steps.tolist(), in_charge.tolist(), strict=True)):
        prune, value = should_prune[k], sparsity[k]
        child_prune, child_value = children[i][0][k], np.float32(children[i][1][k])
        assert value == child_value, (step, i)
        forced = step in boundaries or (step == 1 and event_at_zero)  # hand-over events
        assert prune == (child_prune or forced), (step, i)


@given(back_to_back())
def test_children_that_prune_in_their_own_stretch_are_joined_by_or(schedule):
    # The other path, by which `test_sequential_equals_the_schedule_in_charge_at_every_step` checks it.
    assert schedule._apart


@given(st.one_of(simple_schedules, tfmot_schedules(), back_to_back()), any_steps)
def test_a_family_that_prunes_only_in_its_window_does(schedule, steps):
    """Our single families and tfmot's prune only in `[begin_step, end_step]` (or from `begin_step` on)
    and at step 1 carried from step 0, which `SequentialSparsity` relies on to join events by `or`."""
    begin, end = schedule.begin_step, schedule.end_step
    edges = [begin - 1, begin, begin + 1, end - 1, end, end + 1, end + 2, 0, 1, 2]
    steps = np.array(sorted({x for x in [*steps, *edges] if -(2**62) <= x <= 2**62}), np.int64)
    events = np.broadcast_to(np.asarray(schedule(tf.constant(steps))[0]), steps.shape)
    inside = (steps >= begin) & ((end < 0) | (steps <= end)) | ((steps == 1) & (begin == 0))
    assert not np.any(events & ~inside), steps[events & ~inside]


def test_our_single_families_say_they_prune_only_in_their_window():
    assert all(cls._prunes_only_in_window for cls in SIMPLE), [c for c in SIMPLE if not c._prunes_only_in_window]


@given(st.one_of(scaleds(), scaleds(tfmot_schedules()), scaleds(sequentials())), any_steps)
def test_scaled_is_factor_times_the_schedule(schedule, steps):
    should_prune, sparsity = _values(schedule, steps)
    child_prune, child_sparsity = (
        np.broadcast_to(np.asarray(t), np.shape(steps)) for t in schedule.schedule(tf.constant(steps, tf.int64))
    )
    expected = schedule.factor * child_sparsity.astype(np.float64)
    np.testing.assert_allclose(sparsity, expected, rtol=np.finfo(np.float32).eps, atol=np.finfo(np.float32).tiny)
    assert np.all(sparsity < 1.0)
    event_at_zero = bool(np.asarray(schedule.schedule(tf.constant(0, tf.int64))[0]))
    np.testing.assert_array_equal(should_prune, child_prune | ((np.asarray(steps) == 1) & event_at_zero))
