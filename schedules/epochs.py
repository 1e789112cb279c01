"""Epochs as units, and a check of a schedule against the planned training.

NNCF, SparseML and Distiller count schedules in epochs; tfmot counts steps
(batches), starting at 1. `SparsitySchedule.from_epochs` converts once, here;
`check_plan` tells before training when a schedule will prune nothing or not
reach its final sparsity in the steps that training will run.
"""

from __future__ import annotations

import math
import numbers
import warnings
from fractions import Fraction
from typing import Any

import numpy as np

from schedules import _validation as v

__all__ = ["PlanWarning", "check_plan", "epoch_name", "steps_from_epochs"]

#: Step arguments that must be at least one step (the others may be 0).
_AT_LEAST_ONE = ("frequency", "sparse_steps", "dense_steps")


class PlanWarning(UserWarning):
    """A schedule will not do what it says within the planned training."""


def epoch_name(step_name: str) -> str:
    """The name of a step argument in epochs: `begin_step` -> `begin_epoch`, `sparse_steps` -> `sparse_epochs`."""
    if step_name.endswith("_steps"):
        return step_name[: -len("_steps")] + "_epochs"
    if step_name.endswith("_step"):
        return step_name[: -len("_step")] + "_epoch"
    return step_name  # frequency, boundaries


def steps_from_epochs(name: str, epochs: object, steps_per_epoch: int, *, minimum: int = 0) -> int:
    """`round(epochs * steps_per_epoch)`, halves up, computed exactly (a float as written: 0.1 is 1/10).

    >>> steps_from_epochs("end_epoch", 2.5, 45), steps_from_epochs("frequency", 0.1, 45)
    (113, 5)
    """
    requirement = f"a finite number of epochs >= {minimum / steps_per_epoch:g}"
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Real):
        raise v.invalid(name, requirement, epochs, TypeError)
    if not math.isfinite(epochs) or epochs < 0:
        raise v.invalid(name, requirement, epochs)
    # str() is the shortest text that reads back as the same number (also for NumPy floats).
    exact = Fraction(int(epochs)) if isinstance(epochs, numbers.Integral) else Fraction(str(epochs))
    steps = math.floor(exact * steps_per_epoch + Fraction(1, 2))
    if steps < minimum:
        raise v.invalid(
            name,
            f"at least {minimum} step(s), {minimum - 0.5:g} / steps_per_epoch = {(minimum - 0.5) / steps_per_epoch:g} "
            f"epochs or more (steps_per_epoch={steps_per_epoch})",
            epochs,
        )
    return steps


def build_from_epochs(cls: type, steps_per_epoch: int, epochs: float | None, arguments: dict[str, Any]):
    """`cls(**arguments)` with the step arguments converted from epochs (see `from_epochs`)."""
    steps_per_epoch = v.check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    converted = dict(arguments)
    conversions = []
    for step_name in cls._step_arguments:
        name = epoch_name(step_name)
        if name != step_name and step_name in arguments:
            raise v.invalid(step_name, f"given in epochs, as `{name}`, to from_epochs", arguments[step_name])
        if name not in arguments:
            continue
        value = converted.pop(name)
        minimum = 1 if step_name in _AT_LEAST_ONE else 0
        if step_name == "end_step" and isinstance(value, numbers.Integral) and value == -1:
            converted[step_name] = -1  # an open end stays open
        elif step_name == "boundaries":
            items = v.check_sequence(name, value)
            converted[step_name] = [
                steps_from_epochs(f"{name}[{i}]", item, steps_per_epoch) for i, item in enumerate(items)
            ]
        else:
            converted[step_name] = steps_from_epochs(name, value, steps_per_epoch, minimum=minimum)
        conversions.append(f"{name}={value!r} -> {step_name}={converted[step_name]!r}")
    try:
        schedule = cls(**converted)
    except (TypeError, ValueError) as error:
        done = "; ".join(conversions) or "none"
        raise type(error)(
            f"{error} (in {cls.__name__}.from_epochs with steps_per_epoch={steps_per_epoch}; step arguments are "
            f"given in epochs as {', '.join(map(epoch_name, cls._step_arguments)) or 'none'}; converted: {done})"
        ) from None
    if epochs is not None:
        total_steps = steps_from_epochs("epochs", epochs, steps_per_epoch, minimum=1)
        _check_plan(schedule, total_steps, warn=True, stacklevel=4)  # the caller of from_epochs
    return schedule


def check_plan(schedule, total_steps: int, *, warn: bool = True) -> list[str]:
    """What `schedule` will fail to do in `total_steps` training steps (tfmot's steps 1 .. N).

    Returns the problems found (and, with `warn`, emits each as a
    `PlanWarning`): the schedule prunes nothing in that time (for example a
    run shorter than `frequency`, or a window that begins after training), or
    the last pruning step inside the run applies less than the sparsity the
    schedule ends at (its window ends after training; or tfmot's
    `PolynomialDecay` whose window is not a multiple of `frequency`). Works
    for any `PruningSchedule`.

    >>> from schedules import CubicSparsity
    >>> check_plan(CubicSparsity(0.0, 0.9, 0, 1000, 100), 500, warn=False)
    ['CubicSparsity reaches only sparsity 0.7875 (at step 500) of its final 0.9 in the planned 500 training steps; \
its window ends at end_step=1000, after training']
    """
    return _check_plan(schedule, total_steps, warn=warn, stacklevel=3)


def _check_plan(schedule, total_steps: int, *, warn: bool, stacklevel: int) -> list[str]:
    from schedules.evaluation import evaluate_schedule

    total_steps = v.check_int("total_steps", total_steps, minimum=1)
    name = type(schedule).__name__
    steps, should_prune, sparsity = evaluate_schedule(schedule, np.arange(1, total_steps + 1, dtype=np.int64))
    _, _, final = evaluate_schedule(schedule, [v.MAX_STEP])
    final = float(final[0])
    problems = []
    if not should_prune.any():
        details = ", ".join(
            f"{key}={getattr(schedule, key)}" for key in ("begin_step", "frequency") if hasattr(schedule, key)
        )
        problems.append(
            f"{name} prunes nothing in the planned {total_steps} training steps (tfmot calls it at steps 1 .. "
            f"{total_steps}){f'; {details}' if details else ''}"
        )
    else:
        last = int(steps[should_prune][-1])
        applied = float(sparsity[should_prune][-1])
        if abs(applied - final) > 1e-6:
            end = getattr(schedule, "end_step", None)
            if end is not None and end > total_steps:
                window = f"; its window ends at end_step={end}, after training"
            elif end is not None and last < end:
                window = f"; it does not prune at its end_step={end}"
            else:
                window = ""
            problems.append(
                f"{name} reaches only sparsity {applied:.4g} (at step {last}) of its final {final:.4g} in the planned "
                f"{total_steps} training steps{window}"
            )
    if warn:
        for problem in problems:
            warnings.warn(problem, PlanWarning, stacklevel=stacklevel)
    return problems
