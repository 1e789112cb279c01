"""A check of a schedule against the planned training: will it do what it says in time?

`check_plan` evaluates any `PruningSchedule` at every step training will run
(tfmot's steps 1 .. N) and says when it prunes nothing, is cut short, or ends
at another sparsity than its final one. `from_epochs(..., epochs=E)` and the
`CheckPlan` callback run it.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from schedules import _validation as v
from schedules._tfmot import PruningSchedule
from schedules.evaluation import evaluate_schedule

__all__ = ["SPARSITY_TOLERANCE", "PlanWarning", "check_plan", "warn_about_plan"]

#: Steps evaluated at once by `check_plan`.
_CHUNK = 1 << 20

#: How far past the run `check_plan` looks for pruning that would still change the sparsity.
_LOOK_AHEAD = 4 * _CHUNK

#: Two sparsities closer than this are the same to `check_plan`: far below one weight in a
#: million (tfmot rounds `n * (1 - s)` to whole weights), far above float32 noise at 1.
SPARSITY_TOLERANCE = 1e-6


class PlanWarning(UserWarning):
    """A schedule will not do what it says within the planned training."""


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
    >>> check_plan(CubicSparsity(0.0, 0.9, 0, 1000, frequency=100), 500, warn=False)
    ['CubicSparsity is cut short: it runs to end_step=1000, after the planned 500 training steps; its last pruning \
step in training, 500, applies sparsity 0.7875, not its final 0.9']

    It evaluates the schedule at every step of the run, in chunks of a
    million steps (about 0.5 s per million).
    """
    return _check_plan(schedule, total_steps, warn=warn, stacklevel=3)


def pruning_events(schedule: PruningSchedule, first: int, last: int):
    """`(steps, sparsity)` arrays of the pruning events in `first .. last`, a chunk at a time."""
    for start in range(first, last + 1, _CHUNK):  # chunks: memory stays bounded for long runs
        steps, should_prune, sparsity = evaluate_schedule(
            schedule, np.arange(start, min(start + _CHUNK, last + 1), dtype=np.int64)
        )
        if should_prune.any():
            yield steps[should_prune], sparsity[should_prune]


def warn_about_plan(schedule: PruningSchedule, total_steps: int, *, stacklevel: int) -> list[str]:
    """`check_plan` with each problem emitted as a `PlanWarning` pointing `stacklevel` frames up."""
    return _check_plan(schedule, total_steps, warn=True, stacklevel=stacklevel + 1)


def _check_plan(schedule: PruningSchedule, total_steps: int, *, warn: bool, stacklevel: int) -> list[str]:
    total_steps = v.check_int("total_steps", total_steps, minimum=1)
    name = type(schedule).__name__
    last, applied = 0, 0.0  # the last pruning step in training and its sparsity (last 0: none)
    for steps, sparsity in pruning_events(schedule, 1, total_steps):
        last, applied = int(steps[-1]), float(sparsity[-1])
    final = float(evaluate_schedule(schedule, [v.MAX_STEP])[2][0])
    given = getattr(schedule, "end_step", None)
    end_step = float(given) if isinstance(given, numbers.Real) else math.nan
    end = int(end_step) if math.isfinite(end_step) and end_step >= 0 else None
    cut_short = end is not None and end > total_steps and last > 0
    if end is not None and cut_short and abs(applied - final) <= SPARSITY_TOLERANCE:
        # Cut short only if pruning after the run would still change something (cycles, phases).
        later = pruning_events(schedule, total_steps + 1, min(end, total_steps + _LOOK_AHEAD))
        cut_short = any(np.any(np.abs(sparsity - applied) > SPARSITY_TOLERANCE) for _, sparsity in later)
    problems = []
    if last == 0:
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
            if abs(applied - final) > SPARSITY_TOLERANCE
            else "and the changes it makes after that (cycles, phases) never happen"
        )
        problems.append(
            f"{name} is cut short: it runs to end_step={end}, after the planned {total_steps} training steps; its "
            f"last pruning step in training, {last}, applies sparsity {applied:.4g}, {outcome}"
        )
    elif abs(applied - final) > SPARSITY_TOLERANCE:
        missed = f"; it does not prune at its end_step={end}" if end is not None and last < end else ""
        problems.append(
            f"{name} ends the planned {total_steps} training steps at sparsity {applied:.4g} (its last pruning "
            f"step, {last}), not at its final {final:.4g}{missed}"
        )
    if warn:
        for problem in problems:
            warnings.warn(problem, PlanWarning, stacklevel=stacklevel)
    return problems
