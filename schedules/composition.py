"""Schedules made of other schedules: one after another, or scaled."""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules import _validation as v
from schedules import registry
from schedules._ops import select
from schedules._tfmot import PruningSchedule
from schedules.base import SparsitySchedule, register

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


def _as_schedule(name: str, value: object) -> PruningSchedule:
    """A `PruningSchedule`, or one rebuilt from its `get_config()` (as in a saved model)."""
    if isinstance(value, PruningSchedule):
        return _check_values(name, _check_reloads(name, value))
    requirement = "a tfmot PruningSchedule or its get_config() dict"
    if not isinstance(value, Mapping):
        raise v.invalid(name, requirement, value, TypeError)
    if not isinstance(value.get("class_name"), str) or not isinstance(value.get("config"), Mapping):
        raise v.invalid(name, f"{requirement}, {{'class_name': ..., 'config': {{...}}}}", value)
    try:
        schedule = _deserialize(value)
    except (ValueError, TypeError, KeyError) as error:
        raise v.invalid(name, f"{requirement} ({error})", value) from None
    if not isinstance(schedule, PruningSchedule):
        raise v.invalid(
            name,
            f"{requirement}; class_name {value['class_name']!r} is not a known schedule (import the module that "
            "registers it with tf_keras.utils.register_keras_serializable before building or loading)",
            value,
        )
    _json_config(name, schedule)  # it was just rebuilt from a config, so it reloads; is its own config JSON?
    return _check_values(name, schedule)


def _deserialize(config: Mapping) -> object:
    """What tf-keras rebuilds from a schedule's config (a string where it knows no such class)."""
    return tf_keras.utils.deserialize_keras_object(dict(config), module_objects=registry.schedule_classes())


def _json_config(name: str, schedule: PruningSchedule) -> dict:
    """The child's config as plain JSON values, or a clear error."""
    config = _plain(schedule.get_config())
    try:
        json.dumps(config)
    except (TypeError, ValueError) as error:
        raise v.invalid(name, f"a schedule whose get_config() is JSON and reloads ({error})", schedule) from None
    return config


def _check_reloads(name: str, schedule: PruningSchedule) -> PruningSchedule:
    """Refuses a child whose config is not JSON or would not rebuild it inside a saved model."""
    config = _json_config(name, schedule)
    try:
        reloaded = _deserialize(config)
    except (TypeError, ValueError) as error:
        raise v.invalid(name, f"a schedule whose get_config() is JSON and reloads ({error})", schedule) from None
    if not isinstance(reloaded, PruningSchedule):
        raise v.invalid(
            name,
            "a schedule whose class is registered with tf_keras.utils.register_keras_serializable (its config "
            f"names {config.get('class_name')!r}, which would not reload with a saved model)",
            schedule,
        )
    return schedule


def _check_values(name: str, schedule: PruningSchedule) -> PruningSchedule:
    """Refuses tfmot children that would return NaN (tfmot accepts them) or have non-integer steps."""
    if isinstance(schedule, tfmot.sparsity.keras.PolynomialDecay):
        power = schedule.power
        if isinstance(power, bool) or not isinstance(power, numbers.Real) or not math.isfinite(power) or power <= 0:
            raise v.invalid(f"{name}.power", "a finite number > 0 (tfmot's PolynomialDecay)", power)
        if schedule.begin_step == schedule.end_step:
            raise v.invalid(
                name,
                "not a tfmot PolynomialDecay with begin_step == end_step (it returns NaN there; "
                "CubicSparsity or PolynomialSparsity prune once there)",
                v.received(begin_step=schedule.begin_step, end_step=schedule.end_step),
            )
    for attribute in ("begin_step", "end_step"):
        _step_attribute(name, schedule, attribute)
    return schedule


def _step_attribute(name: str, schedule: PruningSchedule, attribute: str) -> int:
    """A child's `begin_step` / `end_step` as an int (0 / -1 where it has none)."""
    value = getattr(schedule, attribute, 0 if attribute == "begin_step" else -1)
    if not isinstance(value, bool) and isinstance(value, numbers.Integral):
        return int(value)
    if not isinstance(value, bool) and isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    raise v.invalid(f"{name}.{attribute}", "an integer step", value, TypeError)


#: tfmot's schedules, which prune only in `[begin_step, end_step]` (from `begin_step` on for -1).
_TFMOT_WINDOWED = (tfmot.sparsity.keras.PolynomialDecay, tfmot.sparsity.keras.ConstantSparsity)


def _plain(value: Any) -> Any:
    """A config with NumPy scalars (tfmot keeps the arguments as given) turned into plain Python values."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def _compiles(schedule: PruningSchedule) -> bool:
    """Whether a child gives the same values compiled as op by op (ours do; tfmot's need not)."""
    return isinstance(schedule, SparsitySchedule) and schedule._compiles()


def _child_uncast(schedule: PruningSchedule, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A child's `(should_prune, sparsity)` at `step`: for ours, the sparsity before its cast to
    float32 (usually float64; a composition then casts once), for others `_child_call`'s."""
    if isinstance(schedule, SparsitySchedule):
        should_prune, sparsity = schedule._uncast_ops(step)
        return should_prune, tf.convert_to_tensor(sparsity)  # a family of yours may return a Python float
    return _child_call(schedule, step)


def _child_call(schedule: PruningSchedule, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A child's `(should_prune, sparsity)` at `step`, broadcast to its shape (bool, float32).

    The sparsity stays in float32, as schedules return it: a cast to float64 and back
    would flush a subnormal sparsity to 0 (TensorFlow's CPU kernels treat subnormal
    inputs as zero), so a composition would not return its child's value (and
    `ScaledSparsity` scales the float32 value saved models were built with).
    """
    should_prune, sparsity = schedule(step)
    if isinstance(schedule, SparsitySchedule):  # ours: bool and float32, of the step's shape already
        return should_prune, sparsity
    shape = tf.shape(step)
    return (
        tf.broadcast_to(tf.cast(should_prune, tf.bool), shape),
        tf.broadcast_to(tf.cast(sparsity, tf.float32), shape),
    )


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
        self.schedules = [_as_schedule(f"schedules[{i}]", item) for i, item in enumerate(items)]
        boundaries = v.check_sequence("boundaries", boundaries, "integer steps", allow_empty=True)
        self.boundaries = [v.check_step(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
        v.check_strictly_increasing("boundaries", self.boundaries)
        if len(self.boundaries) != len(self.schedules) - 1:
            raise v.invalid(
                "boundaries",
                "one step fewer than there are schedules",
                v.received(**{"len(boundaries)": len(self.boundaries), "len(schedules)": len(self.schedules)}),
            )
        self.begin_step = _step_attribute("schedules[0]", self.schedules[0], "begin_step")
        last_end = _step_attribute(f"schedules[{len(self.schedules) - 1}]", self.schedules[-1], "end_step")
        last_boundary = self.boundaries[-1] if self.boundaries else 0
        self.end_step = -1 if last_end == -1 else max(last_end, last_boundary)
        self._apart = self._children_apart()

    def _config(self) -> dict[str, Any]:
        return {"schedules": [_plain(s.get_config()) for s in self.schedules], "boundaries": list(self.boundaries)}

    def _compiles(self) -> bool:
        return all(_compiles(schedule) for schedule in self.schedules)

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        events, sparsity = self._select(step)
        if not tf.executing_eagerly():
            # tfmot computes the sparsity inside its `tf.cond`, whose untaken branch TensorFlow still
            # walks op by op at every step: every child's sparsity ops cost each step. In a function kept
            # whole (`_noinline`) they are one op that such a step skips. On the overhead benchmark's deep
            # MLP, in three same-run comparisons, a step took 1.02 to 1.12 of `PolynomialDecay`'s inline
            # and 0.98 to 1.04 this way (docs/benchmarks.md; the noise there is about 4%).
            sparsity = self._sparsity_function()(step)
        return events, sparsity

    def _sparsity_function(self) -> Any:
        """`_select`'s sparsity as a `tf.function` that the graph calls as one op (traced once per shape)."""
        function = self.__dict__.get("_sparsity")
        if function is None:
            function = self.__dict__["_sparsity"] = tf.function(
                lambda step: self._select(step)[1],
                autograph=False,
                reduce_retracing=True,
                experimental_attributes={"_noinline": True},
            )
        return function

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__getstate__().items() if k != "_sparsity"}

    def _select(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The events and the sparsity of the child in charge (before the base's cast to float32)."""
        children = [_child_uncast(schedule, step) for schedule in self.schedules]
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
    # hand-over test: 18 ops after Grappler instead of 21 for a cubic then an exponential,
    # 1.45 to 1.55 instead of 1.96 times `PolynomialDecay`'s events in the cost benchmark.
    def _children_apart(self) -> bool:
        """Whether each child prunes only inside its stretch `[boundaries[i - 1], boundaries[i])`."""
        starts, stops = [None, *self.boundaries], [*self.boundaries, None]
        for i, (child, start, stop) in enumerate(zip(self.schedules, starts, stops, strict=True)):
            windowed = type(child) in _TFMOT_WINDOWED or getattr(child, "_prunes_only_in_window", False)
            begin = _step_attribute(f"schedules[{i}]", child, "begin_step")
            end = _step_attribute(f"schedules[{i}]", child, "end_step")
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
        self.schedule = _as_schedule("schedule", schedule)
        peak = peak_sparsity(self.schedule)
        most = 1.0 if peak is None or peak == 0.0 else v.MAX_SPARSITY / peak  # factor * peak stays below 1
        self.factor = v.check_float("factor", factor, low=0.0, high=most, low_inclusive=False, high_inclusive=True)
        self.begin_step = _step_attribute("schedule", self.schedule, "begin_step")
        self.end_step = _step_attribute("schedule", self.schedule, "end_step")

    def _config(self) -> dict[str, Any]:
        return {"schedule": _plain(self.schedule.get_config()), "factor": self.factor}

    def _compiles(self) -> bool:
        return _compiles(self.schedule)

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # The child's float32 sparsity, as it returns it (saved models keep their values bit
        # for bit: scaling its float64 value instead would move some by an ulp).
        events, sparsity = _child_call(self.schedule, step)
        return events, tf.minimum(self.factor * tf.cast(sparsity, tf.float64), v.MAX_SPARSITY)
