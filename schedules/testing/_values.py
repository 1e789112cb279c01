"""The checks on the schedule's values: "dtypes", "range" and "compilers"."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from schedules.testing._common import (
    attempt,
    broadcast,
    call_on_vector,
    evaluate,
    failure,
    first_mismatch,
    pair,
    show_step,
)

_COND_EVENTS = 50  # "compilers" calls the tf.cond step at the first and last this many events

#: The kinds of scalar step "dtypes" calls the schedule with.
_SCALAR_STEPS: dict[str, Callable[[int], Any]] = {
    "a Python int": int,
    "a NumPy int64": np.int64,
    "an int32 scalar tensor": lambda step: tf.constant(step, tf.int32),
    "an int64 scalar tensor": lambda step: tf.constant(step, tf.int64),
}


def _tolerance(name: str, atol: float) -> str:
    """The tolerance a failure names: sparsities compare within `atol`, should_prune exactly."""
    return f" (tolerance {atol})" if name == "sparsity" else ""


def _dtype_name(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return f"a {type(value).__name__} without a dtype"
    try:
        return tf.as_dtype(dtype).name
    except TypeError:
        return str(dtype)


def _check_types(check: str, where: str, should_prune: Any, sparsity: Any) -> None:
    for name, value, expected in (("should_prune", should_prune, "bool"), ("sparsity", sparsity, "float32")):
        found = _dtype_name(value)
        if found != expected:
            raise failure(check, f"{where}, {name} has dtype {found}, expected tf.{expected}")


def _call(schedule: Any, make: Any, step: int) -> Any:
    return schedule(make(step))


def check_dtypes(schedule: Any, sample: np.ndarray, atol: float) -> None:
    check = "dtypes"
    what = f"an int64 vector of {sample.size} steps"
    should_prune, sparsity = call_on_vector(check, schedule, sample, f"calling the schedule on {what}")
    _check_types(check, f"for {what}", should_prune, sparsity)
    vector = broadcast(check, what, should_prune, sparsity, sample)

    for kind, make in _SCALAR_STEPS.items():
        for i, step in enumerate(sample.tolist()):
            if kind.startswith("an int32") and step >= 2**31:
                continue
            where = f"for {kind} step {show_step(step)}"
            result = attempt(check, f"calling the schedule {where}", functools.partial(_call, schedule, make, step))
            p, s = pair(check, f"the schedule {where}", result)
            _check_types(check, where, p, s)
            for name, value in (("should_prune", p), ("sparsity", s)):
                if np.shape(value) != ():
                    raise failure(check, f"{where}, {name} has shape {np.shape(value)}, expected a scalar ()")
            for name, got, expected in (("should_prune", p, vector[0][i]), ("sparsity", s, vector[1][i])):
                got = np.asarray(got)
                if first_mismatch(got.reshape(1), np.asarray(expected).reshape(1), atol) is not None:
                    raise failure(
                        check,
                        f"{where}, {name} is {got!s}, but the vector call gives {expected!s} at that step"
                        + _tolerance(name, atol),
                    )


def check_range(schedule: Any, steps: np.ndarray) -> None:
    check = "range"
    _, sparsity = evaluate(check, schedule, steps)
    values = sparsity.astype(np.float64)
    with np.errstate(invalid="ignore"):
        wrong = np.flatnonzero(~(np.isfinite(values) & (values >= 0) & (values < 1)))
    if wrong.size:
        i = int(wrong[0])
        raise failure(
            check,
            f"sparsity at step {show_step(steps[i])} is {sparsity[i]!s}, expected a finite number in [0, 1)",
        )


def check_compilers(schedule: Any, steps: np.ndarray, sample: np.ndarray, atol: float) -> None:
    check = "compilers"
    eager = evaluate(check, schedule, steps, "the eager call on the vector of steps")

    def run(step_tensor: tf.Tensor) -> Any:
        return schedule(step_tensor)

    for label, jit_compile in (("tf.function", False), ("tf.function(jit_compile=True)", True)):
        compiled = tf.function(run, jit_compile=jit_compile)
        other = evaluate(check, compiled, steps, f"{label} on the vector of steps")
        for name, mine, theirs in zip(("should_prune", "sparsity"), other, eager, strict=True):
            wrong = first_mismatch(mine, theirs, atol)
            if wrong is not None:
                raise failure(
                    check,
                    f"at step {show_step(steps[wrong])}, {label} gives {name} {mine[wrong]!s}, "
                    f"eager gives {theirs[wrong]!s}" + _tolerance(name, atol),
                )
    _check_under_cond(schedule, steps, sample, eager, atol)


def _check_under_cond(
    schedule: Any, steps: np.ndarray, sample: np.ndarray, eager: tuple[np.ndarray, np.ndarray], atol: float
) -> None:
    """As tfmot's wrapper does it, under XLA (where fusion can turn `0.0 ** (1/3)` into NaN):
    the step is an int64 variable, incremented in the training step, and the sparsity is
    computed only inside `tf.cond(should_prune, ...)`."""
    check = "compilers"
    events = steps[np.asarray(eager[0], dtype=bool)]
    if events.size > 2 * _COND_EVENTS:  # each probe is one call; the edges of a window are what break
        events = np.concatenate([events[:_COND_EVENTS], events[-_COND_EVENTS:]])
    probe = np.unique(np.concatenate([events, sample]))
    position = {int(step): i for i, step in enumerate(steps.tolist())}
    step_variable = tf.Variable(-1, dtype=tf.int64, trainable=False)

    def train_step() -> tuple[tf.Tensor, tf.Tensor]:
        step_variable.assign_add(1)
        should_prune = schedule(step_variable)[0]

        def update() -> tf.Tensor:
            return tf.cast(schedule(step_variable)[1], tf.float32)

        return should_prune, tf.cond(should_prune, update, lambda: tf.constant(-1.0, tf.float32))

    compiled = tf.function(train_step, jit_compile=True)
    where = "inside tf.cond(should_prune, ...) under XLA"
    for step in probe.tolist():
        step_variable.assign(step - 1)
        p, s = attempt(check, f"the schedule {where} at step {show_step(step)}", compiled)
        p, s = bool(p), np.float32(s)
        i = position[step]
        if p != bool(eager[0][i]):
            raise failure(
                check, f"{where}, should_prune at step {show_step(step)} is {p}, eager gives {bool(eager[0][i])}"
            )
        expected = eager[1][i] if p else np.float32(-1.0)
        if first_mismatch(np.array([s]), np.array([expected]), atol) is not None:
            raise failure(
                check,
                f"{where}, sparsity at step {show_step(step)} is {s!s}, eager gives {expected!s}"
                + ("" if np.isnan(s) else f" (tolerance {atol})"),
            )
