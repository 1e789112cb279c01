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


def invalid(name: str, requirement: str, value: object, exc_type: type[Exception] = ValueError) -> Exception:
    """The one message shape: ``Argument `name` must be <requirement>. Received: name=<value>``.

    Returns the exception for the caller to raise. `name` may be several
    names (``"boundaries` and `sparsities"``) with `value` already formatted
    as ``"a=1, b=2"`` through `received`.
    """
    shown = value.text if isinstance(value, received) else f"{name}={value!r}"
    return exc_type(f"Argument `{name}` must be {requirement}. Received: {shown}")


class received:
    """Pre-formatted received values for `invalid`: ``received(a=1, b=2)`` -> ``a=1, b=2``."""

    def __init__(self, **values: object) -> None:
        self.text = ", ".join(f"{key}={value!r}" for key, value in values.items())


def check_int(name: str, value: object, *, minimum: int, maximum: int = MAX_STEP) -> int:
    """Returns `value` as a Python int in `[minimum, maximum]` or raises."""
    requirement = f"an integer in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        # Floats are refused even when integral (1000.0): a float step is almost always a mistake.
        raise invalid(name, requirement, value, TypeError)
    value = int(value)
    if not minimum <= value <= maximum:
        raise invalid(name, requirement, value)
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
        raise invalid("end_step", requirement, value, TypeError)
    if not begin_step <= int(value) <= MAX_STEP:
        raise invalid("end_step", requirement, value)
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
        raise invalid(name, requirement, value, TypeError)
    given, value = value, float(value) + 0.0  # + 0.0 turns -0.0 into 0.0
    if not math.isfinite(value):
        raise invalid(name, requirement, given)
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        raise invalid(name, requirement, given)  # the value as given (0, not 0.0)
    return value


def check_sparsity(name: str, value: object) -> float:
    """A sparsity: a finite number in `[0, 1)` that stays below 1 in float32."""
    value = check_float(name, value, low=0.0, high=1.0)
    if value > MAX_SPARSITY:
        raise invalid(
            name,
            f"a finite number in [0, 1) that stays below 1 in float32 (<= {MAX_SPARSITY!r})",
            value,
        )
    return value


def check_power(value: object, name: str = "power") -> float:
    """An exponent: a finite number in `(0, 1e6]`; an int stays an int (for the config)."""
    power = check_float(name, value, low=0.0, high=1e6, low_inclusive=False, high_inclusive=True)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return power


def check_sequence(name: str, value: object, items_are: str = "numbers", *, allow_empty: bool = False) -> list:
    """A list, tuple or 1-D array (not a string), non-empty unless `allow_empty`."""
    requirement = f"a {'' if allow_empty else 'non-empty '}list of {items_are}"
    if isinstance(value, (str, bytes)) or (not isinstance(value, Sequence) and not isinstance(value, np.ndarray)):
        raise invalid(name, requirement, value, TypeError)
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise invalid(name, requirement, value, TypeError)
    items = list(value)
    if not items and not allow_empty:
        raise invalid(name, requirement, value)
    return items


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    requirement = f"one of {', '.join(map(repr, choices))}"
    if not isinstance(value, str):
        raise invalid(name, requirement, value, TypeError)
    if value not in choices:
        raise invalid(name, requirement, value)
    return value


def check_window(
    initial_sparsity: object, final_sparsity: object, begin_step: object, end_step: object, frequency: object
) -> tuple[float, float, int, int, int]:
    """The arguments every windowed schedule shares, validated in order."""
    initial = check_sparsity("initial_sparsity", initial_sparsity)
    final = check_sparsity("final_sparsity", final_sparsity)
    begin = check_step("begin_step", begin_step)
    end = check_end_step(end_step, begin)
    return initial, final, begin, end, check_int("frequency", frequency, minimum=1)


def check_strictly_increasing(name: str, values: Sequence[float]) -> None:
    for i in range(1, len(values)):
        if values[i] <= values[i - 1]:
            raise invalid(
                name,
                f"strictly increasing ({name}[{i}]={values[i]} <= {name}[{i - 1}]={values[i - 1]})",
                list(values),
            )


def check_same_length(first: str, a: Sequence, second: str, b: Sequence) -> None:
    if len(a) != len(b):
        raise invalid(
            f"{first}` and `{second}",
            "of the same length",
            received(**{f"len({first})": len(a), f"len({second})": len(b)}),
        )
