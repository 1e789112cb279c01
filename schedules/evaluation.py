"""Evaluate any `PruningSchedule` over many steps at once, as NumPy arrays."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import tensorflow as tf

from schedules._tfmot import PruningSchedule

__all__ = ["EventLookup", "as_steps", "evaluate_schedule", "expected_kept", "expected_mask_sparsity"]


def as_steps(steps: int | Iterable[int] | np.ndarray) -> np.ndarray:
    """`steps` as a 1-D int64 array: an int `n` means the steps `0 .. n` inclusive."""
    if isinstance(steps, bool):
        raise TypeError(f"Argument `steps` must be an integer or a sequence of integers. Received: steps={steps!r}")
    if isinstance(steps, (int, np.integer)):
        if steps < 0:
            raise ValueError(f"Argument `steps` must be >= 0 when it is a single number. Received: steps={steps}")
        return np.arange(int(steps) + 1, dtype=np.int64)
    array = np.asarray(steps)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            "Argument `steps` must be an integer or a non-empty 1-D sequence of integers. "
            f"Received: steps of dtype {array.dtype} and shape {array.shape}"
        )
    return array.astype(np.int64)


def expected_kept(sparsity: float | np.ndarray, size: int) -> int | np.ndarray:
    """How many of `size` weights a tfmot mask keeps at `sparsity`.

    tfmot keeps the `k = max(1, round(size * (1 - sparsity)))` largest
    magnitudes, computed in float32 (halves to even).

    >>> expected_kept(0.5, 9)
    4
    """
    keep = np.maximum(1, np.round(np.float32(size) * (np.float32(1.0) - np.float32(sparsity)))).astype(np.int64)
    return int(keep) if np.ndim(keep) == 0 else keep


def expected_mask_sparsity(sparsity: float | np.ndarray, size: int) -> float | np.ndarray:
    """The mask sparsity tfmot produces for a scheduled `sparsity` on `size` weights: `1 - k / size`,
    with `k = expected_kept(sparsity, size)`.

    >>> expected_mask_sparsity(0.5, 9)
    0.5555555555555556
    """
    result = 1.0 - np.asarray(expected_kept(sparsity, size), dtype=np.float64) / size
    return float(result) if np.ndim(result) == 0 else result


def evaluate_schedule(
    schedule: PruningSchedule, steps: int | Iterable[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluates `schedule` at every step: returns `(steps, should_prune, sparsity)` arrays.

    The schedule is called once with the whole vector of steps. A schedule
    that returns a scalar for a vector (tfmot's `ConstantSparsity`) is
    broadcast; one that cannot take a vector at all (a user's schedule with
    `tf.cond`) is evaluated step by step inside one `tf.function`.

    >>> from schedules import CubicSparsity
    >>> steps, prune, sparsity = evaluate_schedule(CubicSparsity(0.0, 0.8, 0, 100, frequency=50), 100)
    >>> steps[prune].tolist(), [round(float(sparsity[i]), 2) for i in (0, 50, 100)]
    ([0, 1, 50, 100], [0.0, 0.7, 0.8])
    """
    steps = as_steps(steps)
    try:
        should_prune, sparsity = schedule(tf.constant(steps, tf.int64))
        should_prune = np.broadcast_to(np.asarray(should_prune, dtype=bool), steps.shape)
        sparsity = np.broadcast_to(np.asarray(sparsity, dtype=np.float32), steps.shape)
    except (ValueError, TypeError, tf.errors.InvalidArgumentError):
        should_prune, sparsity = _step_by_step(schedule, steps)
    return steps, np.array(should_prune), np.array(sparsity)


class EventLookup:
    """`(should_prune, sparsity)` of `schedule` at one step at a time, for callbacks that ask after
    every batch: the schedule is evaluated `chunk` steps at once (`evaluate_schedule`) and cached.

    >>> from schedules import CubicSparsity
    >>> lookup = EventLookup(CubicSparsity(0.0, 0.8, 0, 100, frequency=50))
    >>> lookup(50)[0], lookup(51)[0], round(lookup(100)[1], 2)
    (True, False, 0.8)
    """

    def __init__(self, schedule: PruningSchedule, chunk: int = 4096) -> None:
        self.schedule = schedule
        self.chunk = int(chunk)
        if self.chunk < 1:
            raise ValueError(f"Argument `chunk` must be an integer >= 1. Received: chunk={chunk!r}")
        self._first: int | None = None

    def __call__(self, step: int) -> tuple[bool, float]:
        if step < 0:
            raise ValueError(f"Argument `step` must be >= 0. Received: step={step}")
        first = self._first
        if first is None or not first <= step < first + self.chunk:
            first = self._first = max(int(step), 0)
            _, self._prune, self._sparsity = evaluate_schedule(self.schedule, np.arange(first, first + self.chunk))
        return bool(self._prune[step - first]), float(self._sparsity[step - first])


#: One traced step-by-step evaluator per schedule object (so repeated calls do not retrace).
_STEP_BY_STEP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _step_by_step(schedule, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    each = _STEP_BY_STEP.get(schedule)
    if each is None:
        reference: Callable[[], Any] = weakref.ref(schedule)  # the cache must not keep the schedule alive

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
        def traced(all_steps):
            def one(step):
                prune, value = reference()(step)
                return tf.cast(prune, tf.bool), tf.cast(value, tf.float32)

            return tf.map_fn(one, all_steps, fn_output_signature=(tf.bool, tf.float32))

        each = _STEP_BY_STEP[schedule] = traced
    should_prune, sparsity = each(tf.constant(steps, tf.int64))
    return should_prune.numpy(), sparsity.numpy()
