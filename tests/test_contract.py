"""The contract every schedule keeps, run over every case of `_registry.CASES`: `check_schedule` (the tool
users run too) and what this project promises beyond it."""

from __future__ import annotations

import inspect
import json
import pickle
from copy import deepcopy

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from _registry import HORIZON

from schedules.base import EAGER_CALLS_BEFORE_COMPILING, SparsitySchedule
from schedules.testing import check_schedule

STEPS = np.arange(0, HORIZON + 1, dtype=np.int64)
GIANT = 2**40 + 12_345  # far beyond float32's exact integers (2**24)


def evaluate(schedule, steps=STEPS):
    should_prune, sparsity = schedule(tf.constant(steps, tf.int64))
    return should_prune.numpy(), sparsity.numpy()


def test_passes_check_schedule(schedule):
    """The contract users run on their own schedules (`schedules.testing.check_schedule`): dtypes and shapes
    for every kind of step, range and no NaN from 0 to 2**62, eager = tf.function = XLA (and inside
    tfmot's tf.cond), config round trip and Keras registration; at our own, tighter tolerance."""
    check_schedule(schedule, max_step=HORIZON, atol=1e-7)


def test_sparsity_in_range_at_the_ends_of_int64(schedule):
    _, sparsity = evaluate(schedule, np.array([10**6, 2**62, 2**63 - 1], dtype=np.int64))
    assert np.all(np.isfinite(sparsity)) and np.all((sparsity >= 0) & (sparsity < 1))
    assert not np.signbit(sparsity).any()  # no -0.0


def test_negative_steps_are_before_the_window(schedule):
    should_prune, sparsity = evaluate(schedule, np.array([-1, -(2**40)], dtype=np.int64))
    assert not should_prune.any()
    assert sparsity[0] == sparsity[1]
    if schedule.begin_step > 0:  # step 0 is before the window too
        assert sparsity[0] == evaluate(schedule, np.array([0]))[1][0]


def test_scalar_int64_inside_tf_cond_like_tfmot_at_every_step(schedule):
    """As tfmot calls it: the sparsity inside `tf.cond(should_prune, ...)` under XLA at every step of the
    horizon (where fusion once turned `0.0 ** (1/3)` into NaN at the last step of a window; check_schedule
    samples the steps)."""
    jit_compile = True
    step_var = tf.Variable(0, dtype=tf.int64)

    @tf.function(jit_compile=jit_compile)
    def train_step():
        step_var.assign_add(1)
        should_prune = schedule(step_var)[0]

        def update():  # what tfmot's mask update computes from the sparsity
            sparsity = schedule(step_var)[1]
            return sparsity, tf.math.round(tf.cast(1000, tf.float32) * (1.0 - sparsity))

        return tf.cond(should_prune, update, lambda: (tf.constant(-1.0), tf.constant(-1.0)))

    should_prune, sparsity = evaluate(schedule, np.arange(1, HORIZON + 1))
    for i in range(HORIZON):
        expected = sparsity[i] if should_prune[i] else -1.0
        got, kept = train_step()
        assert float(got) == expected, i + 1
        if should_prune[i]:
            assert float(kept) == np.round(np.float32(1000) * (np.float32(1) - expected)), i + 1


def test_a_graph_computes_the_sparsity_in_one_function_op_and_the_events_inline(schedule):
    """tfmot computes the sparsity inside its `tf.cond`, whose untaken branch TensorFlow walks op by op at
    every step: in a graph the sparsity is one call of a function kept whole (`_noinline`), and the
    events, which run at every step, do not depend on it."""
    graph = tf.function(schedule).get_concrete_function(tf.TensorSpec([], tf.int64)).graph
    calls = [op for op in graph.get_operations() if op.type in ("PartitionedCall", "StatefulPartitionedCall")]
    assert len(calls) == 1
    body = graph.as_graph_def().library.function
    called = next(f for f in body if f.signature.name == calls[0].get_attr("f").name)
    assert called.attr["_noinline"].b
    should_prune, sparsity = graph.structured_outputs
    assert calls[0] not in _ancestors(should_prune.op) and calls[0] in _ancestors(sparsity.op)


class _VariableSparsity(SparsitySchedule):
    """A user's family whose sparsity reads a variable (stateful), with an attribute named `_sparsity`."""

    def __init__(self, sparsity: float) -> None:
        self._sparsity = tf.Variable(sparsity, dtype=tf.float64)

    def _config(self) -> dict:
        return {}

    def call(self, step):
        return tf.equal(step % 10, 0), self._sparsity * tf.ones_like(step, tf.float64)


def test_a_stateful_call_stays_inline_and_user_attribute_names_are_free():
    """A stateful function op would run at every step (automatic control dependencies keep it) and twice
    per call: a `call` that reads a variable stays inline. The base's caches leave `_sparsity` alone."""
    schedule = _VariableSparsity(0.25)
    traced = tf.function(schedule)
    graph = traced.get_concrete_function(tf.TensorSpec([], tf.int64)).graph
    assert not [op for op in graph.get_operations() if op.type.endswith("PartitionedCall")]
    assert [bool(x) for x in traced(tf.constant(20, tf.int64))] == [True, True]
    schedule._sparsity.assign(0.5)
    assert float(traced(tf.constant(3, tf.int64))[1]) == 0.5
    assert float(pickle.loads(pickle.dumps(_VariableSparsity(0.75)))(3)[1]) == 0.75


def _ancestors(op) -> set:
    seen, todo = set(), [op]
    while todo:
        op = todo.pop()
        if op not in seen:
            seen.add(op)
            todo.extend(t.op for t in op.inputs)
    return seen


def test_compiled_eager_calls_give_the_op_by_op_values(make_schedule):
    """After `EAGER_CALLS_BEFORE_COMPILING` eager calls a schedule runs a compiled graph (a concrete
    function for scalar steps): the same values, bit for bit, as its first calls, op by op; and the
    graph, which has no `abs`, makes no -0.0. Copies (pickle, deepcopy) start afresh."""
    steps = np.concatenate([STEPS, [GIANT, 2**62, -(2**40)]])
    op_by_op = make_schedule(0)
    first = evaluate(op_by_op, steps)  # the first call: op by op
    compiled = make_schedule(0)
    for _ in range(EAGER_CALLS_BEFORE_COMPILING):
        compiled(5)
    assert compiled._compiled() is not None or not compiled._compiles()
    for got, want in zip(evaluate(compiled, steps), first, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.signbit(evaluate(compiled, steps)[1]).any()
    for step in steps[::37]:  # the scalar concrete function
        should_prune, sparsity = compiled(tf.constant(step, tf.int64))
        index = int(np.flatnonzero(steps == step)[0])
        assert (bool(should_prune), float(sparsity)) == (first[0][index], first[1][index]), int(step)
    for copy in (pickle.loads(pickle.dumps(compiled)), deepcopy(compiled)):
        assert "_schedules_compiled" not in copy.__dict__ and repr(copy) == repr(compiled)
        np.testing.assert_array_equal(evaluate(copy, steps)[1], first[1])


def test_float_step_is_a_type_error(schedule):
    with pytest.raises(TypeError, match="step"):
        schedule(1.5)
    with pytest.raises(TypeError, match="step"):
        schedule(tf.constant(1.0))


def test_should_prune_carries_a_step_zero_event_to_step_one(schedule):
    should_prune, _ = evaluate(schedule, np.array([0, 1]))
    if should_prune[0]:
        assert should_prune[1]


def test_end_value_is_applied_and_then_holds(schedule):
    should_prune, _sparsity = evaluate(schedule)
    events = np.flatnonzero(should_prune)
    assert events.size > 0
    last = events[-1]
    # The last event applies the value the schedule holds forever after.
    _, later = evaluate(schedule, np.array([last, last + 1, 10**6, GIANT]))
    if schedule.end_step >= 0:
        assert last == schedule.end_step
        np.testing.assert_array_equal(later, np.full(4, later[0]))


def test_config_keys_equal_constructor_arguments(schedule):
    config = schedule.get_config()
    assert set(config) == {"class_name", "config"}
    assert config["class_name"] == tf_keras.utils.get_registered_name(type(schedule))
    parameters = [p for p in inspect.signature(type(schedule).__init__).parameters if p != "self"]
    assert list(config["config"]) == parameters


def _assert_same_values(a, b):
    steps = np.concatenate([STEPS, [GIANT]])
    for x, y in zip(evaluate(a, steps), evaluate(b, steps), strict=True):
        np.testing.assert_array_equal(x, y)


def test_from_config_accepts_the_wrapped_config_too(schedule):
    """tf-keras passes the inner dict; ours also accept tfmot's whole `get_config()` (tfmot's own do not)."""
    config = json.loads(json.dumps(schedule.get_config()))
    restored = type(schedule).from_config(config)
    assert type(restored) is type(schedule) and repr(restored) == repr(schedule)
    _assert_same_values(restored, schedule)


def test_from_config_rejects_unknown_missing_and_foreign_configs(schedule):
    inner = schedule.get_config()["config"]
    with pytest.raises(ValueError, match="unknown keys \\['surprise'\\]"):
        type(schedule).from_config({**inner, "surprise": 1})
    first = next(iter(inner))
    with pytest.raises(ValueError, match=f"missing keys \\['{first}'\\]"):
        type(schedule).from_config({k: v for k, v in inner.items() if k != first})
    with pytest.raises(TypeError, match="class_name"):
        type(schedule).from_config({"class_name": "PolynomialDecay", "config": inner})
    with pytest.raises(TypeError, match="config"):
        type(schedule).from_config("not a dict")


def test_translation_to_giant_steps_is_exact(make_schedule):
    """The same schedule shifted by 2**40 steps gives bit-identical results."""
    offset = 2**40
    near, far = make_schedule(0), make_schedule(offset)
    steps = STEPS
    p_near, s_near = evaluate(near, steps)
    p_far, s_far = evaluate(far, steps + offset)
    # Step 1 carries a step-0 event only near zero; compare the rest exactly.
    np.testing.assert_array_equal(p_near[2:], p_far[2:])
    np.testing.assert_array_equal(s_near, s_far)
