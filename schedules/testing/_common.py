"""What the checks share: the failure message, calling the schedule, comparing values and configs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import tensorflow as tf

_T = TypeVar("_T")


def failure(check: str, message: str) -> AssertionError:
    return AssertionError(f"check_schedule: {check}: {message}")


def attempt(check: str, action: str, function: Callable[[], _T]) -> _T:
    """Runs `function` (which calls schedule or TensorFlow code); an exception fails `check`."""
    try:
        return function()
    except Exception as error:
        text = str(error).strip().splitlines()
        detail = text[0][:500] if text else ""
        raise failure(check, f"{action} raised {type(error).__name__}: {detail}") from error


def show_step(step: int) -> str:
    """`2**62 = 4611686018427387904` for giant steps near a power of two, else the number."""
    step = int(step)
    if step < 2**24:
        return str(step)
    power = step.bit_length() - 1
    rest = step - 2**power
    if rest >= 10**6:
        return str(step)
    return f"2**{power}{f' + {rest}' if rest else ''} = {step}"


def pair(check: str, what: str, result: Any) -> tuple[Any, Any]:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise failure(check, f"{what} returned {result!r}, expected a pair (should_prune, sparsity)")
    return result[0], result[1]


def call_on_vector(check: str, schedule: Any, steps: np.ndarray, what: str) -> tuple[Any, Any]:
    """`schedule` on an int64 vector of steps, as it returns them; `what` names the call in a failure."""
    return pair(check, what, attempt(check, what, lambda: schedule(tf.constant(steps, tf.int64))))


def evaluate(check: str, schedule: Any, steps: np.ndarray, action: str = "") -> tuple[np.ndarray, np.ndarray]:
    """`schedule` on an int64 vector of steps, as NumPy arrays of the steps' shape."""
    what = action or f"calling the schedule on an int64 vector of {steps.size} steps"
    should_prune, sparsity = call_on_vector(check, schedule, steps, what)
    return broadcast(check, what, should_prune, sparsity, steps)


def broadcast(
    check: str, what: str, should_prune: Any, sparsity: Any, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, value in (("should_prune", should_prune), ("sparsity", sparsity)):
        array = np.asarray(value)
        if array.shape not in (steps.shape, ()):
            raise failure(
                check, f"{what} gives {name} of shape {array.shape}, expected {steps.shape} (or a scalar, broadcast)"
            )
        arrays.append(np.broadcast_to(array, steps.shape))
    return arrays[0], arrays[1]


def first_mismatch(a: np.ndarray, b: np.ndarray, atol: float | None) -> int | None:
    """The first index where `a` and `b` differ (NaN equals NaN); `atol=None` means exactly."""
    if atol is None or a.dtype == bool:
        same = (a == b) | (np.isnan(a) & np.isnan(b) if a.dtype.kind == "f" else False)
    else:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        same = (np.abs(a64 - b64) <= atol) | (np.isnan(a64) & np.isnan(b64))
    wrong = np.flatnonzero(~np.asarray(same))
    return int(wrong[0]) if wrong.size else None


def same_values(check: str, what: str, copy: Any, original: Any, steps: np.ndarray) -> None:
    """`copy` evaluates bit for bit like `original` on `steps` (pairs of arrays)."""
    for index, name in enumerate(("should_prune", "sparsity")):
        mine = np.asarray(copy[index])
        theirs = np.asarray(original[index])
        wrong = first_mismatch(mine, theirs, None)
        if wrong is not None:
            raise failure(
                check,
                f"{what} differs at step {show_step(steps[wrong])}: {name} {mine[wrong]!s} in the copy, "
                f"{theirs[wrong]!s} in the original",
            )


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two JSON-like values first differ, as a readable path, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{path}[{key!r}] is {'missing' if key not in a else a[key]!r} in the copy"
            found = first_difference(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if a != b:
        return f"{path or 'the config'} is {a!r} in the copy, {b!r} in the original"
    return None


def json_config(check: str, schedule: Any) -> dict[str, Any]:
    """`schedule.get_config()` checked for tfmot's shape and passed through JSON."""
    config = attempt(check, "get_config()", schedule.get_config)
    if not (
        isinstance(config, dict)
        and isinstance(config.get("class_name"), str)
        and isinstance(config.get("config"), dict)
    ):
        raise failure(
            check,
            f"get_config() returned {config!r}, expected tfmot's shape {{'class_name': str, 'config': dict}} "
            "(tfmot's wrapper stores it and rebuilds the schedule from its class_name)",
        )
    try:
        text = json.dumps(config)
    except (TypeError, ValueError) as error:
        raise failure(check, f"get_config() = {config!r} is not JSON-serializable: {error}") from error
    return json.loads(text)
