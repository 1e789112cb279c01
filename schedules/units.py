"""Epochs as units: the conversion behind `SparsitySchedule.from_epochs`.

NNCF, SparseML and Distiller count schedules in epochs; tfmot counts steps
(batches), starting at 1. `from_epochs` converts once, here, and with the
planned number of epochs checks the schedule against it (`schedules.plan`).
"""

from __future__ import annotations

import inspect
import math
import numbers
from fractions import Fraction
from typing import Any

from schedules import _validation as v
from schedules._tfmot import PruningSchedule
from schedules.plan import warn_about_plan

__all__ = ["build_from_epochs", "epoch_name", "steps_from_epochs"]

#: Step arguments that must be at least one step (the others may be 0).
_AT_LEAST_ONE = ("frequency", "sparse_steps", "dense_steps")


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
    v.check_float(name, epochs, low=0.0, high=math.inf)  # a finite number >= 0
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


def build_from_epochs(
    cls: type[PruningSchedule], steps_per_epoch: int, epochs: float | None, arguments: dict[str, Any]
) -> PruningSchedule:
    """`cls(**arguments)` with the step arguments converted from epochs (see `from_epochs`)."""
    steps_per_epoch = v.check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    converted = dict(arguments)
    conversions = []
    defaults = inspect.signature(cls.__init__).parameters
    for step_name in cls.step_arguments:
        name = epoch_name(step_name)
        if name != step_name and step_name in arguments:
            raise v.invalid(step_name, f"given in epochs, as `{name}`, to from_epochs", arguments[step_name])
        if name not in arguments:
            default = defaults[step_name].default
            if default is not inspect.Parameter.empty:
                # A default such as frequency=100 is in steps: never mix units silently.
                raise v.invalid(
                    name,
                    f"given to {cls.__name__}.from_epochs (in epochs; the constructor's default, {default!r}, "
                    "is in steps)",
                    None,
                )
            continue
        value = converted.pop(name)
        minimum = 1 if step_name in _AT_LEAST_ONE else 0
        if step_name == "boundaries":
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
            f"given in epochs as {', '.join(map(epoch_name, cls.step_arguments)) or 'none'}; converted: {done})"
        ) from None
    if epochs is not None:
        total_steps = steps_from_epochs("epochs", epochs, steps_per_epoch, minimum=1)
        warn_about_plan(schedule, total_steps, stacklevel=4)  # the caller of from_epochs
    return schedule
