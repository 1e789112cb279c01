"""Argument validation shared by every schedule.

Every check raises at construction with one message shape, taken from Keras:

    Argument `frequency` must be an integer >= 1. Received: frequency=0

`TypeError` is raised for a value of the wrong type (a float step, a bool, a
string), `ValueError` for a value of the right type outside its range.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

#: The largest step any schedule accepts, for `begin_step`, `end_step` and
#: boundaries. Steps are int64 in tfmot; keeping arguments at or below 2**62
#: leaves room for integer arithmetic on them without overflow.
MAX_STEP = 2**62

#: The largest sparsity that stays below 1 when cast to float32.
MAX_SPARSITY = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def _fail(exc_type: type[Exception], name: str, requirement: str, value: object) -> Exception:
    return exc_type(f"Argument `{name}` must be {requirement}. Received: {name}={value!r}")


def check_int(name: str, value: object, *, minimum: int, maximum: int = MAX_STEP) -> int:
    """Returns `value` as a Python int in `[minimum, maximum]` or raises."""
    requirement = f"an integer in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        # Accept integral floats such as 1000.0 only if they are exact integers?
        # No: a float step is almost always a mistake (e.g. epochs * 0.5).
        raise _fail(TypeError, name, requirement, value)
    value = int(value)
    if not minimum <= value <= maximum:
        raise _fail(ValueError, name, requirement, value)
    return value


def check_step(name: str, value: object) -> int:
    """A step argument: an integer in `[0, MAX_STEP]`."""
    return check_int(name, value, minimum=0)


def check_end_step(value: object, begin_step: int, *, allow_forever: bool = False) -> int:
    """`end_step >= begin_step`, or `-1` (prune forever) where `allow_forever`."""
    if allow_forever and not isinstance(value, bool) and isinstance(value, numbers.Integral) and value == -1:
        return -1
    requirement = f"an integer in [begin_step, {MAX_STEP}] = [{begin_step}, {MAX_STEP}]"
    if allow_forever:
        requirement += " or -1 (no end)"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(TypeError, "end_step", requirement, value)
    if not begin_step <= int(value) <= MAX_STEP:
        raise _fail(ValueError, "end_step", requirement, value)
    return int(value)


def check_float(
    name: str,
    value: object,
    *,
    low: float,
    high: float,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
) -> float:
    """Returns `value` as a Python float inside the given interval or raises."""
    interval = f"{'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
    requirement = f"a finite number in {interval}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(TypeError, name, requirement, value)
    value = float(value) + 0.0  # + 0.0 turns -0.0 into 0.0
    if not math.isfinite(value):
        raise _fail(ValueError, name, requirement, value)
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        raise _fail(ValueError, name, requirement, value)
    return value


def check_sparsity(name: str, value: object) -> float:
    """A sparsity: a finite number in `[0, 1)` that stays below 1 in float32."""
    value = check_float(name, value, low=0.0, high=1.0)
    if value > MAX_SPARSITY:
        raise _fail(
            ValueError,
            name,
            f"a finite number in [0, 1) that stays below 1 in float32 (<= {MAX_SPARSITY!r})",
            value,
        )
    return value


def check_sequence(name: str, value: object) -> list:
    """A non-empty list or tuple (not a string)."""
    if isinstance(value, (str, bytes)) or (not isinstance(value, Sequence) and not isinstance(value, np.ndarray)):
        raise _fail(TypeError, name, "a non-empty list of numbers", value)
    items = list(value)
    if not items:
        raise _fail(ValueError, name, "a non-empty list of numbers", value)
    return items


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if value not in choices:
        raise _fail(ValueError, name, f"one of {', '.join(map(repr, choices))}", value)
    return value  # type: ignore[return-value]
