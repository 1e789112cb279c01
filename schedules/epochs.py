"""Epochs as units, and a check of a schedule against the planned training.

NNCF, SparseML and Distiller count schedules in epochs; tfmot counts steps
(batches), starting at 1. `SparsitySchedule.from_epochs` converts once, here;
`check_plan` tells before training when a schedule will prune nothing or not
reach its final sparsity in the steps that training will run.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules import _validation as v

PruningSchedule = tfmot.sparsity.keras.PruningSchedule

__all__ = ["CheckPlan", "PlanWarning", "check_plan", "epoch_name", "steps_from_epochs"]

#: Steps evaluated at once by `check_plan`.
_CHUNK = 1 << 20

#: How far past the run `check_plan` looks for pruning that would still change the sparsity.
_LOOK_AHEAD = 4 * _CHUNK

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
    for step_name in cls._step_arguments:
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


def check_plan(schedule: PruningSchedule, total_steps: int, *, warn: bool = True) -> list[str]:
    """What `schedule` will fail to do in `total_steps` training steps (tfmot's steps 1 .. N).

    Returns the problems found (and, with `warn`, emits each as a
    `PlanWarning`): the schedule prunes nothing in that time (for example a
    run shorter than `frequency`, or a window that begins after training); it
    is cut short (its `end_step` is after the run, and its last pruning step
    in the run applies another sparsity than its final one, or later cycles or
    phases would still change it); or its last pruning step applies another
    sparsity than the one it ends at (tfmot's `PolynomialDecay` whose window
    is not a multiple of `frequency`). Works for any `PruningSchedule`.

    >>> from schedules import CubicSparsity
    >>> check_plan(CubicSparsity(0.0, 0.9, 0, 1000, 100), 500, warn=False)
    ['CubicSparsity is cut short: it runs to end_step=1000, after the planned 500 training steps; its last pruning \
step in training, 500, applies sparsity 0.7875, not its final 0.9']

    It evaluates the schedule at every step of the run, in chunks of a
    million steps (about 0.5 s per million).
    """
    return _check_plan(schedule, total_steps, warn=warn, stacklevel=3)


def _events(schedule: PruningSchedule, first: int, last: int):
    """`(steps, sparsity)` arrays of the pruning events in `first .. last`, a chunk at a time."""
    from schedules.evaluation import evaluate_schedule

    for start in range(first, last + 1, _CHUNK):  # chunks: memory stays bounded for long runs
        steps, should_prune, sparsity = evaluate_schedule(
            schedule, np.arange(start, min(start + _CHUNK, last + 1), dtype=np.int64)
        )
        if should_prune.any():
            yield steps[should_prune], sparsity[should_prune]


def _check_plan(schedule: PruningSchedule, total_steps: int, *, warn: bool, stacklevel: int) -> list[str]:
    from schedules.evaluation import evaluate_schedule

    total_steps = v.check_int("total_steps", total_steps, minimum=1)
    name = type(schedule).__name__
    last = applied = None
    for steps, sparsity in _events(schedule, 1, total_steps):
        last, applied = int(steps[-1]), float(sparsity[-1])
    final = float(evaluate_schedule(schedule, [v.MAX_STEP])[2][0])
    end = getattr(schedule, "end_step", None)
    end = int(end) if isinstance(end, numbers.Real) and math.isfinite(end) and end >= 0 else None
    cut_short = end is not None and end > total_steps and applied is not None
    if cut_short and abs(applied - final) <= 1e-6:
        # Cut short only if pruning after the run would still change something (cycles, phases).
        later = _events(schedule, total_steps + 1, min(end, total_steps + _LOOK_AHEAD))
        cut_short = any(np.any(np.abs(sparsity - applied) > 1e-6) for _, sparsity in later)
    problems = []
    if last is None:
        details = ", ".join(
            f"{key}={getattr(schedule, key)}" for key in ("begin_step", "frequency") if hasattr(schedule, key)
        )
        problems.append(
            f"{name} prunes nothing in the planned {total_steps} training steps (tfmot calls it at steps 1 .. "
            f"{total_steps}){f'; {details}' if details else ''}"
        )
    elif cut_short:
        outcome = (
            f"not its final {final:.4g}"
            if abs(applied - final) > 1e-6
            else "and the changes it makes after that (cycles, phases) never happen"
        )
        problems.append(
            f"{name} is cut short: it runs to end_step={end}, after the planned {total_steps} training steps; its "
            f"last pruning step in training, {last}, applies sparsity {applied:.4g}, {outcome}"
        )
    elif abs(applied - final) > 1e-6:
        missed = f"; it does not prune at its end_step={end}" if end is not None and last < end else ""
        problems.append(
            f"{name} ends the planned {total_steps} training steps at sparsity {applied:.4g} (its last pruning "
            f"step, {last}), not at its final {final:.4g}{missed}"
        )
    if warn:
        for problem in problems:
            warnings.warn(problem, PlanWarning, stacklevel=stacklevel)
    return problems


class CheckPlan(tf_keras.callbacks.Callback):
    """At the start of `fit`, runs `check_plan` for every pruned layer's schedule.

    The run is `epochs * steps_per_epoch` steps as `fit` knows them, so a
    schedule that prunes nothing or is cut short in *this* run is reported
    before the first batch, as a `PlanWarning` naming the layers (one per
    schedule object). Turn it into an error with
    `warnings.simplefilter("error", schedules.PlanWarning)`.

    ```python
    model.fit(x, y, epochs=10, callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), schedules.CheckPlan()])
    ```
    """

    def on_train_begin(self, logs=None) -> None:
        from schedules.recording import pruning_wrappers

        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        if not epochs or not steps:
            warnings.warn(
                "CheckPlan cannot check the schedules: fit does not know the number of steps per epoch "
                "(pass steps_per_epoch to fit)",
                PlanWarning,
                stacklevel=2,
            )
            return
        by_schedule: dict[int, tuple[PruningSchedule, list[str]]] = {}
        for layer in pruning_wrappers(self.model):
            schedule = layer.pruning_schedule
            if isinstance(schedule, PruningSchedule):  # (a schedule that did not reload is a string)
                by_schedule.setdefault(id(schedule), (schedule, []))[1].append(layer.name)
        for schedule, layers in by_schedule.values():
            for problem in _check_plan(schedule, int(epochs) * int(steps), warn=False, stacklevel=2):
                warnings.warn(f"layers {', '.join(sorted(layers))}: {problem}", PlanWarning, stacklevel=2)
