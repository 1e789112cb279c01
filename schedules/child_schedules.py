"""What a composition does with its children: checks them, reads their steps, calls them.

A child is any tfmot `PruningSchedule` (ours, tfmot's, or a registered one of a
user's), given as itself or as its `get_config()` dict (as a saved model keeps it).
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules import _validation as v
from schedules import registry
from schedules._tfmot import PruningSchedule
from schedules.base import SparsitySchedule

__all__ = [
    "as_schedule",
    "call_child",
    "call_child_uncast",
    "compiles",
    "plain",
    "prunes_only_in_window",
    "step_attribute",
]


def as_schedule(name: str, value: object) -> PruningSchedule:
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
    config = plain(schedule.get_config())
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
        step_attribute(name, schedule, attribute)
    return schedule


def step_attribute(name: str, schedule: PruningSchedule, attribute: str) -> int:
    """A child's `begin_step` / `end_step` as an int (0 / -1 where it has none)."""
    value = getattr(schedule, attribute, 0 if attribute == "begin_step" else -1)
    if not isinstance(value, bool) and isinstance(value, numbers.Integral):
        return int(value)
    if not isinstance(value, bool) and isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    raise v.invalid(f"{name}.{attribute}", "an integer step", value, TypeError)


def plain(value: Any) -> Any:
    """A config with NumPy scalars (tfmot keeps the arguments as given) turned into plain Python values."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def compiles(schedule: PruningSchedule) -> bool:
    """Whether a child gives the same values compiled as op by op (ours do; tfmot's need not)."""
    return isinstance(schedule, SparsitySchedule) and schedule._compiles()


def call_child_uncast(schedule: PruningSchedule, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A child's `(should_prune, sparsity)` at `step`: for ours, the sparsity before its cast to
    float32 (usually float64; a composition then casts once), for others `call_child`'s."""
    if isinstance(schedule, SparsitySchedule):
        should_prune, sparsity = schedule._uncast_ops(step)
        return should_prune, tf.convert_to_tensor(sparsity)  # a family of yours may return a Python float
    return call_child(schedule, step)


def call_child(schedule: PruningSchedule, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A child's `(should_prune, sparsity)` at `step`, broadcast to its shape (bool, float32).

    The sparsity stays in float32, as schedules return it: a cast to float64 and back
    would flush a subnormal sparsity to 0 (TensorFlow's CPU kernels treat subnormal
    inputs as zero), so a composition would not return its child's value (and
    `ScaledSparsity` scales the float32 value saved models were built with).
    """
    if isinstance(schedule, SparsitySchedule):  # ours: bool and float32, of the step's shape already
        return schedule._ops(step)  # inline: the parent's own call keeps the sparsity whole in a graph
    should_prune, sparsity = schedule(step)
    shape = tf.shape(step)
    return (
        tf.broadcast_to(tf.cast(should_prune, tf.bool), shape),
        tf.broadcast_to(tf.cast(sparsity, tf.float32), shape),
    )


#: tfmot's schedules, which prune only in `[begin_step, end_step]` (from `begin_step` on for -1).
_TFMOT_WINDOWED = (tfmot.sparsity.keras.PolynomialDecay, tfmot.sparsity.keras.ConstantSparsity)


def prunes_only_in_window(schedule: PruningSchedule) -> bool:
    """Whether `schedule` is known to prune only in `[begin_step, end_step]` (and at step 1 carried from 0)."""
    return type(schedule) in _TFMOT_WINDOWED or getattr(schedule, "_prunes_only_in_window", False)
