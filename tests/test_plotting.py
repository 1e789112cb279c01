"""Plots show exactly the schedule's values and its pruning steps."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from _registry import CASES
from matplotlib.figure import Figure

from schedules.evaluation import as_steps, evaluate_schedule
from schedules.plotting import plot_schedule, plot_schedules


def reference(schedule, steps):
    """Step-by-step values, one eager call per step (independent of the vector path)."""
    prune, values = [], []
    for step in steps:
        p, s = schedule(tf.constant(int(step), tf.int64))
        prune.append(bool(p))
        values.append(float(s))
    return np.array(prune), np.array(values, dtype=np.float32)


class ConditionalSchedule(tfmot.sparsity.keras.PruningSchedule):
    """A user's schedule written with tf.cond: it cannot take a vector of steps."""

    def __call__(self, step):
        return tf.cond(
            step >= 30,
            lambda: (tf.equal(step % 10, 0), tf.constant(0.6)),
            lambda: (tf.constant(False), tf.constant(0.0)),
        )

    def get_config(self):
        return {"class_name": "ConditionalSchedule", "config": {}}


def tfmot_schedules():
    return {
        "ConstantSparsity": tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=20, frequency=15),
        "PolynomialDecay": tfmot.sparsity.keras.PolynomialDecay(0.1, 0.7, 10, 90, frequency=20),
        "user tf.cond": ConditionalSchedule(),
    }


@pytest.fixture
def ax():
    return Figure().add_subplot()


def assert_plot_matches(ax, schedule, steps, line_index=0):
    expected_prune, expected_values = reference(schedule, steps)
    curve, markers = ax.lines[line_index], ax.lines[line_index + 1]
    # float32 ulps: tfmot's PolynomialDecay rounds differently for a vector than for a scalar
    np.testing.assert_array_equal(curve.get_xdata(), steps)
    np.testing.assert_allclose(curve.get_ydata(), expected_values, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(markers.get_xdata(), steps[expected_prune])
    np.testing.assert_allclose(markers.get_ydata(), expected_values[expected_prune], rtol=0, atol=1e-7)


def test_plot_schedule_draws_the_values_and_marks_pruning_steps(schedule, ax):
    steps = np.arange(0, 401)
    returned = plot_schedule(schedule, 400, ax=ax, label="mine")
    assert returned is ax
    assert len(ax.lines) == 2 and ax.lines[0].get_label() == "mine"
    assert_plot_matches(ax, schedule, steps)


@pytest.mark.parametrize("name", sorted(tfmot_schedules()))
def test_plot_schedule_accepts_tfmot_and_user_schedules(name, ax):
    schedule = tfmot_schedules()[name]
    steps = np.arange(0, 121)
    plot_schedule(schedule, steps, ax=ax)
    assert_plot_matches(ax, schedule, steps)


def test_no_markers_and_custom_steps(schedule, ax):
    steps = [5, 50, 500, 2**40]
    plot_schedule(schedule, steps, ax=ax, mark_pruning_steps=False, color="red")
    assert len(ax.lines) == 1 and ax.lines[0].get_color() == "red"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), steps)


def test_ax_none_makes_a_new_figure_without_touching_pyplot():
    import matplotlib.pyplot as plt

    from schedules import CubicSparsity

    before = plt.get_fignums()
    ax = plot_schedule(CubicSparsity(0.0, 0.5, 0, 10, frequency=5), 10)
    assert ax.figure is not None and plt.get_fignums() == before
    other = plot_schedule(CubicSparsity(0.0, 0.5, 0, 10, frequency=5), 10)
    assert other is not ax and other.figure is not ax.figure


def test_plot_schedules_compares_on_one_axes_with_a_legend(ax):
    chosen = {name: CASES[name]() for name in ("cubic", "cyclic", "step")}
    returned = plot_schedules(chosen, 300, ax=ax, title="three")
    assert returned is ax and ax.get_title() == "three"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cubic", "cyclic", "step"]
    for i, schedule in enumerate(chosen.values()):
        assert_plot_matches(ax, schedule, np.arange(301), line_index=2 * i)


@pytest.mark.parametrize(
    "steps, error", [(-1, ValueError), (True, TypeError), ([], TypeError), ([1.5, 2.0], TypeError), ([[1]], TypeError)]
)
def test_bad_steps_are_rejected(steps, error):
    with pytest.raises(error, match="steps"):
        as_steps(steps)


def test_a_million_steps_in_one_vectorized_call(schedule):
    steps, prune, sparsity = evaluate_schedule(schedule, 1_000_000)
    assert steps.shape == prune.shape == sparsity.shape == (1_000_001,)
    sample = np.array([0, 1, 123_456, 999_999])
    expected_prune, expected_values = reference(schedule, sample)
    np.testing.assert_array_equal(prune[sample], expected_prune)
    np.testing.assert_array_equal(sparsity[sample], expected_values)
