"""Schedules made of other schedules: one after another, or scaled."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from schedules import _validation as v
from schedules._ops import select
from schedules._tfmot import PruningSchedule
from schedules.base import SparsitySchedule
from schedules.child_schedules import (
    as_schedule,
    call_child,
    call_child_uncast,
    compiles,
    plain,
    prunes_only_in_window,
    step_attribute,
)
from schedules.registry import register

__all__ = ["ScaledSparsity", "SequentialSparsity", "peak_sparsity"]


def peak_sparsity(schedule: PruningSchedule) -> float | None:
    """The largest sparsity `schedule` ever returns, where its arguments tell; else None.

    Known for ours and tfmot's schedules, for compositions of them, and for a
    schedule of your own that keeps its sparsities in attributes named
    `initial_sparsity`, `final_sparsity`, `max_sparsity` or `sparsities`.

    >>> from schedules import CyclicSparsity
    >>> peak_sparsity(CyclicSparsity(0.5, 0.2, 0, 99, num_cycles=2))
    0.5
    """
    if isinstance(schedule, SequentialSparsity):
        peaks = [peak_sparsity(child) for child in schedule.schedules]
        known = [peak for peak in peaks if peak is not None]
        return max(known) if len(known) == len(peaks) else None
    if isinstance(schedule, ScaledSparsity):
        peak = peak_sparsity(schedule.schedule)
        return None if peak is None else schedule.factor * peak
    if isinstance(schedule, tfmot.sparsity.keras.ConstantSparsity):
        return float(schedule.target_sparsity)
    found = [getattr(schedule, name, None) for name in ("initial_sparsity", "final_sparsity", "max_sparsity")]
    found += list(getattr(schedule, "sparsities", None) or [])
    values = [float(x) for x in found if isinstance(x, numbers.Real) and not isinstance(x, bool)]
    return max(values) if values else None


@register(name="sequential", command_line=False)
class SequentialSparsity(SparsitySchedule):
    """Several schedules one after another: `schedules[i]` rules from `boundaries[i - 1]`.

    Builds the shapes no single family has: a warm-up with one shape, then
    another; a cyclic phase followed by a cubic finish; AC/DC's alternation
    followed by a long dense phase and a sparse fine-tuning. Each schedule is
    called with the global step (not a step shifted to its range, unlike
    Optax's `join_schedules`), so it is written with the steps it will see:

    ```python
    i = count(boundaries <= step)                    # the schedule in charge
    should_prune, sparsity = schedules[i](step)
    should_prune = should_prune or step in boundaries  # each hand-over applies the new sparsity
    ```

    The schedules may be any `PruningSchedule` (ours, tfmot's, or a registered
    one of your own) and are saved as their configs.

    Example (three cycles, then a cubic finish from 0.8 to 0.9):

    >>> from schedules import CubicSparsity, CyclicSparsity
    >>> schedule = SequentialSparsity(
    ...     [
    ...         CyclicSparsity(0.0, 0.8, 0, 299, num_cycles=3, frequency=20),
    ...         CubicSparsity(0.8, 0.9, 300, 500, frequency=50),
    ...     ],
    ...     boundaries=[300],
    ... )
    >>> [round(float(schedule(step)[1]), 4) for step in (99, 100, 299, 300, 400, 500)]
    [0.8, 0.0, 0.8, 0.8, 0.8875, 0.9]

    Args:
      schedules: a non-empty list of `PruningSchedule`s (or their `get_config()` dicts).
      boundaries: `len(schedules) - 1` strictly increasing integer steps >= 0;
        `schedules[i]` is in charge from `boundaries[i - 1]` (from the start for
        `i = 0`) up to `boundaries[i]` (for good for the last).

    Raises:
      ValueError, TypeError: a schedule or a boundary is invalid, or the
        numbers of schedules and boundaries do not fit.
    """

    step_arguments = ("boundaries",)
    handles_every_step = True  # compares steps, subtracts none (each child takes care of itself)

    def __init__(self, schedules: Sequence[PruningSchedule | Mapping], *, boundaries: Sequence[int]) -> None:
        items = v.check_sequence("schedules", schedules, "schedules")
        self.schedules = [as_schedule(f"schedules[{i}]", item) for i, item in enumerate(items)]
        boundaries = v.check_sequence("boundaries", boundaries, "integer steps", allow_empty=True)
        self.boundaries = [v.check_step(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
        v.check_strictly_increasing("boundaries", self.boundaries)
        if len(self.boundaries) != len(self.schedules) - 1:
            raise v.invalid(
                "boundaries",
                "one step fewer than there are schedules",
                v.received(**{"len(boundaries)": len(self.boundaries), "len(schedules)": len(self.schedules)}),
            )
        self.begin_step = step_attribute("schedules[0]", self.schedules[0], "begin_step")
        last_end = step_attribute(f"schedules[{len(self.schedules) - 1}]", self.schedules[-1], "end_step")
        last_boundary = self.boundaries[-1] if self.boundaries else 0
        self.end_step = -1 if last_end == -1 else max(last_end, last_boundary)
        self._apart = self._children_apart()

    def _config(self) -> dict[str, Any]:
        return {"schedules": [plain(s.get_config()) for s in self.schedules], "boundaries": list(self.boundaries)}

    def _compiles(self) -> bool:
        return all(compiles(schedule) for schedule in self.schedules)

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The events and the sparsity of the child in charge (before the base's cast to float32)."""
        children = [call_child_uncast(schedule, step) for schedule in self.schedules]
        if any(sparsity.dtype != tf.float64 for _, sparsity in children):  # all in float32, as returned
            children = [(events, tf.cast(sparsity, tf.float32)) for events, sparsity in children]
        events, sparsity = children[0]
        for boundary, (child_events, child_sparsity) in zip(self.boundaries, children[1:], strict=True):
            later = step >= boundary
            sparsity = select(later, child_sparsity, sparsity)
            if self._apart:  # no child prunes outside its stretch: the events are all of theirs
                events = tf.logical_or(events, child_events)
            else:
                events = select(later, tf.logical_or(child_events, tf.equal(step, boundary)), events)
        if self._apart:
            for boundary in self._silent_handovers():
                events = tf.logical_or(events, tf.equal(step, boundary))
        return events, sparsity

    # The events run live at every training step (tfmot uses the sparsity only at pruning
    # steps), and a composition computes every child's. Where each child prunes only inside
    # its own stretch, one `or` per child joins them instead of a compare, a select and a
    # hand-over test: for a cubic then an exponential, 1.35 to 1.55 times `PolynomialDecay`'s
    # events in the cost benchmark from run to run, against 1.96 with the select.
    def _children_apart(self) -> bool:
        """Whether each child prunes only inside its stretch `[boundaries[i - 1], boundaries[i])`."""
        starts, stops = [None, *self.boundaries], [*self.boundaries, None]
        for i, (child, start, stop) in enumerate(zip(self.schedules, starts, stops, strict=True)):
            windowed = prunes_only_in_window(child)
            begin = step_attribute(f"schedules[{i}]", child, "begin_step")
            end = step_attribute(f"schedules[{i}]", child, "end_step")
            if not windowed or (start is not None and begin < start) or (stop is not None and not 0 <= end < stop):
                return False
        return True

    def _silent_handovers(self) -> list[int]:
        """The boundaries where the incoming child does not prune (a hand-over prunes there
        all the same), evaluated once, eagerly."""
        silent = self.__dict__.get("_silent")
        if silent is None:
            with tf.init_scope():
                silent = [
                    boundary
                    for boundary, child in zip(self.boundaries, self.schedules[1:], strict=True)
                    if not bool(np.asarray(child(tf.constant(boundary, tf.int64))[0]))
                ]
            self.__dict__["_silent"] = silent
        return silent


@register(name="scaled", command_line=False)
class ScaledSparsity(SparsitySchedule):
    """Another schedule with its sparsity multiplied by `factor`; same pruning steps.

    Lets one schedule serve several layers (a sensitive first layer pruned at
    half the rate of the others) or retarget a schedule without rewriting it:

    ```python
    should_prune, s = schedule(step)
    sparsity = min(factor * s, MAX_SPARSITY)   # MAX_SPARSITY: the largest float32 below 1
    ```

    Example:

    >>> from schedules import CubicSparsity
    >>> half = ScaledSparsity(CubicSparsity(0.0, 0.8, 0, 100, frequency=10), factor=0.5)
    >>> round(float(half(100)[1]), 4)
    0.4

    Args:
      schedule: a `PruningSchedule` (or its `get_config()` dict).
      factor: a finite number > 0; above 1 only for a schedule whose peak
        sparsity is known (ours, tfmot's) and then such that
        `factor * peak < 1`.

    Raises:
      ValueError, TypeError: `schedule` is not a schedule or `factor` is out of range.
    """

    step_arguments = ()
    handles_every_step = True  # only scales its child's sparsity

    def __init__(self, schedule: PruningSchedule | Mapping, *, factor: float) -> None:
        self.schedule = as_schedule("schedule", schedule)
        peak = peak_sparsity(self.schedule)
        most = 1.0 if peak is None or peak == 0.0 else v.MAX_SPARSITY / peak  # factor * peak stays below 1
        self.factor = v.check_float("factor", factor, low=0.0, high=most, low_inclusive=False, high_inclusive=True)
        self.begin_step = step_attribute("schedule", self.schedule, "begin_step")
        self.end_step = step_attribute("schedule", self.schedule, "end_step")

    def _config(self) -> dict[str, Any]:
        return {"schedule": plain(self.schedule.get_config()), "factor": self.factor}

    def _compiles(self) -> bool:
        return compiles(self.schedule)

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # The child's float32 sparsity, as it returns it (saved models keep their values bit
        # for bit: scaling its float64 value instead would move some by an ulp).
        events, sparsity = call_child(self.schedule, step)
        return events, tf.minimum(self.factor * tf.cast(sparsity, tf.float64), v.MAX_SPARSITY)
