"""Integration: real tf-keras models pruned with tfmot follow our schedules step by step.

The reference is the schedule itself: at every step where training should prune, each
mask keeps exactly `_models.expected_kept(sparsity, n)` weights (tfmot's `k`, computed
here in NumPy), and between those steps the mask does not change. Models come from
`_models`, built so that magnitude ties cannot happen (a tie makes tfmot keep extra
weights; `test_cycle_restart_on_the_first_batch_of_an_epoch_keeps_every_weight` shows one).
"""

from __future__ import annotations

import itertools

import _models
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from _registry import CASES, HORIZON

from schedules import CubicSparsity, CyclicSparsity, StepSparsity

#: A step far beyond every schedule's last change: the value a schedule holds for good.
FAR = 10**9

CYCLIC = [name for name in sorted(CASES) if isinstance(CASES[name](0), CyclicSparsity)]
#: The cases trained on a whole model of their own (one `fit` of `HORIZON` steps each, the
#: costliest part of this file, mostly tracing): a ramp, a composition, and every cyclic
#: case for the restart test. Whole-model pruning differs from a single wrapped layer only
#: in tfmot's wrapping and in one schedule object shared by every layer, nothing that
#: depends on the family; every case is checked step by step in `branch_run` (one model
#: for all).
WHOLE_MODEL = sorted({"cubic", "sequential", *CYCLIC})


# --- checks shared by the tests ---------------------------------------------------------


def training_events(should_prune: np.ndarray) -> np.ndarray:
    """Steps where training must update the mask: the schedule's events, with an event
    at step 0 (which tfmot never shows a schedule) carried to step 1."""
    events = should_prune.copy()
    events[1] |= should_prune[0]
    events[0] = False
    return events


def final_sparsity(schedule) -> np.float32:
    _, sparsity = schedule(tf.constant([FAR], tf.int64))
    return np.float32(np.broadcast_to(np.asarray(sparsity), (1,))[0])


def mask_mismatches(recorder: _models.MaskRecorder, name: str, schedule) -> list[str]:
    """Every way layer `name`'s recorded masks depart from `schedule`, as messages."""
    num_records = len(recorder.steps)
    assert recorder.steps == list(range(num_records)), "records are not steps 0, 1, 2, ..."
    should_prune, sparsity = _models.scheduled(schedule, num_records)
    events = training_events(should_prune)
    n = recorder.size(name)
    kept = recorder.kept(name)
    problems = []
    if kept[0] != n:
        problems.append(f"step 0: a fresh mask keeps {kept[0]} of {n} weights, not all")
    for step in range(1, num_records):
        if events[step]:
            k = _models.expected_kept(sparsity[step], n)
            if kept[step] != k:
                tied = _models.tied_with_kth(recorder.kernels_before[step][name], k)
                problems.append(
                    f"step {step}: mask keeps {kept[step]} of {n} weights, expected {k} for scheduled "
                    f"sparsity {sparsity[step]!r} ({tied} weights tied with the k-th largest magnitude)"
                )
        elif not np.array_equal(recorder.masks[step][name], recorder.masks[step - 1][name]):
            problems.append(f"step {step}: mask changed ({kept[step - 1]} -> {kept[step]} kept) without an event")
    final = final_sparsity(schedule)
    if kept[-1] != _models.expected_kept(final, n):
        problems.append(
            f"end (step {num_records - 1}): mask keeps {kept[-1]} of {n}, expected "
            f"{_models.expected_kept(final, n)} for the final sparsity {final!r}"
        )
    return problems


def decreasing_events(schedule, num_steps: int) -> list[int]:
    """Training events where the scheduled sparsity is lower than at the previous event."""
    should_prune, sparsity = _models.scheduled(schedule, num_steps)
    steps = np.flatnonzero(training_events(should_prune))
    return [int(b) for a, b in itertools.pairwise(steps) if sparsity[b] < sparsity[a]]


# --- the reference -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "sparsity"),
    [
        (1, 0.9),
        (2, 0.75),  # 0.5 rounds to 0, then max(1, .)
        (4, 0.375),  # 2.5 -> 2: round half to even
        (6, 0.25),  # 4.5 -> 4
        (10, 0.15),  # 8.5 -> 8
        (10, 0.85),  # float32: 1.4999999 -> 1 (float64 would give 1.5000000000000002 -> 2)
        (36, 0.875),  # 4.5 -> 4
        (36, 0.0),
        (48, 0.6),
        (2304, 0.9),
        (2304, 0.3333),
    ],
)
def test_expected_kept_is_tfmots_k(n, sparsity):
    """The NumPy reference agrees with tfmot's own mask update (distinct magnitudes)."""
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_impl import Pruning

    pruning = Pruning(
        training_step_fn=lambda: tf.constant(1, tf.int64),
        pruning_vars=[],
        pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0),
        block_size=(1, 1),
        block_pooling_type="AVG",
    )
    weights = tf.constant(np.random.default_rng(n).permutation(n).astype(np.float32) + 1.0)
    _, mask = pruning._update_mask(weights)
    assert int(tf.reduce_sum(mask)) == _models.expected_kept(sparsity, n)


# --- the whole model pruned with one schedule ----------------------------------------


@pytest.fixture(scope="module")
def _whole_model_runs() -> dict:
    return {}


@pytest.fixture
def whole_model_run(schedule_name, make_schedule, _whole_model_runs) -> tuple[object, _models.MaskRecorder]:
    """`(schedule, recorder)` of the whole model pruned with one case's schedule and
    trained `HORIZON` steps in one epoch (so no epoch-end re-masking meets an event);
    trained once per schedule and shared by the tests below (over `WHOLE_MODEL`)."""
    if schedule_name not in _whole_model_runs:
        schedule = make_schedule(0)
        model = _models.prune_whole_model(schedule)
        _whole_model_runs[schedule_name] = (schedule, _models.fit(model, steps_per_epoch=HORIZON))
    return _whole_model_runs[schedule_name]


@pytest.mark.parametrize("schedule_name", WHOLE_MODEL)
def test_training_shows_steps_one_to_horizon(whole_model_run):
    _, recorder = whole_model_run
    assert recorder.steps == list(range(HORIZON + 1))
    assert sorted(recorder.masks[0]) == [
        "prune_low_magnitude_conv",
        "prune_low_magnitude_head",
        "prune_low_magnitude_hidden",
    ]


@pytest.mark.parametrize("schedule_name", WHOLE_MODEL)
def test_every_layer_follows_the_schedule_at_every_step(whole_model_run):
    """At every event each mask keeps expected_kept(scheduled sparsity, n) weights, between
    events it does not change, and at the end it is at the final sparsity."""
    schedule, recorder = whole_model_run
    problems = {name: mask_mismatches(recorder, name, schedule) for name in recorder.masks[0]}
    assert not any(problems.values()), problems


@pytest.mark.parametrize("schedule_name", CYCLIC)
def test_cyclic_mask_goes_down_at_restarts_and_up_within_cycles(whole_model_run):
    """Each cycle's first step lowers every mask's sparsity to the initial sparsity (the
    largest masked weights come back), and the cycle's last step raises it to the final."""
    schedule, recorder = whole_model_run
    begin, end, cycles = schedule.begin_step, schedule.end_step, schedule.num_cycles
    length = end - begin + 1
    starts = [begin + c * length // cycles for c in range(cycles)]
    lasts = [begin + (c + 1) * length // cycles - 1 for c in range(cycles)]
    assert lasts[-1] == end < HORIZON
    for name in recorder.masks[0]:
        n, kept = recorder.size(name), recorder.kept(name)
        low = _models.expected_kept(schedule.initial_sparsity, n)
        high = _models.expected_kept(schedule.final_sparsity, n)
        assert low > high, "the entry's sparsities are too close to tell down from up on this layer"
        for c, (start, last) in enumerate(zip(starts, lasts, strict=True)):
            if c > 0:
                assert kept[start] == low, (name, c, start)
                assert kept[start] > kept[start - 1], f"{name}: mask sparsity did not go down at restart {start}"
            # A cycle starting at step 0 is first seen at step 1 (at the sparsity of step 1).
            first_seen = max(start, 1)
            assert kept[last] == high, (name, c, last)
            assert kept[last] < kept[first_seen], f"{name}: mask sparsity did not go up in cycle {c}"


# --- single layers, ours mixed with tfmot's, in one model -----------------------------

BRANCH_EPOCHS = 4
BRANCH_STEPS_PER_EPOCH = HORIZON // BRANCH_EPOCHS


def branch_schedules() -> dict[str, object]:
    return {
        **{name: CASES[name](0) for name in sorted(CASES)},
        **{name: factory() for name, factory in _models.TFMOT_SCHEDULES.items()},
    }


def branch_layer(recorder: _models.MaskRecorder, name: str) -> str:
    (layer,) = [layer for layer in recorder.masks[0] if layer.endswith((f"_conv_{name}", f"_dense_{name}"))]
    return layer


@pytest.fixture(scope="module")
def branch_run() -> tuple[dict[str, object], _models.MaskRecorder]:
    """One model with a layer pruned by each case's schedule, plus one by tfmot's
    ConstantSparsity and one by its PolynomialDecay, each wrapped on its own, trained
    `HORIZON` steps in `BRANCH_EPOCHS` epochs (each epoch end re-masks the weights)."""
    layer_schedules = branch_schedules()
    epoch_starts = range(BRANCH_STEPS_PER_EPOCH + 1, HORIZON + 1, BRANCH_STEPS_PER_EPOCH)
    for name, schedule in layer_schedules.items():
        # A sparsity decrease on the first batch of an epoch meets the exact zeros of the
        # epoch-end re-masking and keeps them all (see the last test); keep them apart.
        clash = set(decreasing_events(schedule, HORIZON + 1)) & set(epoch_starts)
        assert not clash, f"{name}: sparsity decreases on the first batch of an epoch at steps {sorted(clash)}"
    model = _models.build_branch_model(layer_schedules)
    recorder = _models.fit(model, steps_per_epoch=BRANCH_STEPS_PER_EPOCH, epochs=BRANCH_EPOCHS)
    assert [i for i, start in enumerate(recorder.epoch_start) if start] == [1, *epoch_starts]
    return layer_schedules, recorder


def test_single_layer_pruned_with_our_schedule_follows_it(schedule_name, branch_run):
    layer_schedules, recorder = branch_run
    layer = branch_layer(recorder, schedule_name)
    assert not mask_mismatches(recorder, layer, layer_schedules[schedule_name])


@pytest.mark.parametrize("name", sorted(_models.TFMOT_SCHEDULES))
def test_tfmot_schedules_in_the_same_model_follow_theirs(name, branch_run):
    layer_schedules, recorder = branch_run
    layer = branch_layer(recorder, name)
    assert not mask_mismatches(recorder, layer, layer_schedules[name])


def test_every_branch_reaches_its_own_final_sparsity(branch_run):
    layer_schedules, recorder = branch_run
    achieved, expected = {}, {}
    for name, schedule in layer_schedules.items():
        layer = branch_layer(recorder, name)
        n = recorder.size(layer)
        achieved[name] = 1.0 - recorder.kept(layer)[-1] / n
        expected[name] = _models.expected_mask_sparsity(final_sparsity(schedule), n)
    assert achieved == expected
    assert len(set(expected.values())) > 3  # the layers really follow different schedules


# --- an event at step 0 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (StepSparsity([0, 50], [0.5, 0.8]), {1: 0.5, 49: 0.5, 50: 0.8, 60: 0.8}),
        (CubicSparsity(0.0, 0.7, 0, 0), {1: 0.7, 60: 0.7}),
    ],
    ids=["step_boundary_at_0", "cubic_one_shot_at_0"],
)
def test_an_event_at_step_zero_prunes_at_step_one(schedule, expected):
    """tfmot never shows step 0 to a schedule; the first batch (step 1) must prune."""
    recorder = _models.fit(_models.prune_whole_model(schedule), steps_per_epoch=60)
    for name in recorder.masks[0]:
        n, kept = recorder.size(name), recorder.kept(name)
        assert kept[0] == n
        assert kept[1] < n, f"{name}: nothing pruned at step 1"
        assert {step: kept[step] for step in expected} == {
            step: _models.expected_kept(s, n) for step, s in expected.items()
        }, name


# --- what tfmot does with a restart at an epoch start ----------------------------------


def test_cycle_restart_on_the_first_batch_of_an_epoch_keeps_every_weight():
    """Documents tfmot: `UpdatePruningStep.on_epoch_end` sets masked weights to exact
    zeros, so a lower sparsity on the next batch (a cycle restart) ties at zero and the
    mask keeps every weight (mask sparsity 0), not the scheduled initial sparsity. The
    same restart in the middle of an epoch is exact. (With `begin_step=0` and cycles of
    whole epochs, a restart falls on an epoch's last batch, before the re-masking.)"""
    schedule = CyclicSparsity(0.2, 0.75, begin_step=7, end_step=206, num_cycles=4, frequency=15)
    _, sparsity = _models.scheduled(schedule, 120)
    # Cycles start at steps 7, 57, 107 and 157; epochs of 56 steps start at 57 and 113.
    np.testing.assert_array_equal(sparsity[[56, 57, 106, 107]], np.float32([0.75, 0.2, 0.75, 0.2]))
    recorder = _models.fit(_models.prune_whole_model(schedule), steps_per_epoch=56, epochs=2)
    assert recorder.epoch_start[57] and not recorder.epoch_start[107]
    for name in recorder.masks[0]:
        n, kept = recorder.size(name), recorder.kept(name)
        high, low = _models.expected_kept(0.75, n), _models.expected_kept(0.2, n)
        assert kept[56] == high and kept[106] == high
        # At the epoch start the weights the restart sees are the re-masked ones: exact zeros ...
        assert np.count_nonzero(recorder.kernels_before[57][name]) == high
        # ... so every weight ties with the k-th largest magnitude, 0, and the mask keeps all.
        assert kept[57] == n > low
        # Mid-epoch, masked weights hold their last (non-zero) gradient step: exact restart.
        assert kept[107] == low
