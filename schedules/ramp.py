"""What the windowed ramp schedules share: arguments, validation, progress and events.

A ramp moves from `initial_sparsity` at `begin_step` to `final_sparsity` at
`end_step`. Its progress through the window is

```python
p = clip(step - begin_step, 0, end_step - begin_step) / (end_step - begin_step)
```

computed in int64 first and divided in float64 last, so that it is exact at any
step. When `begin_step == end_step` (a one-shot schedule), `p` is 0 before the
step and 1 from it on. Its pruning events are tfmot's grid inside the window
(every `frequency` steps from `begin_step`) and `end_step`.

A ramp of your own is a subclass that implements `ramp(progress)`; the
helpers here (`interpolate`, `polynomial_ramp`, `power_of_fraction`) keep it
exact at both ends and free of NaN under XLA:

>>> import math
>>> import tensorflow as tf
>>> class SineSparsity(RampSchedule):
...     # A quarter sine wave: fast early, level at the end.
...     def ramp(self, progress):
...         fraction = tf.sin(math.pi / 2 * progress)
...         return interpolate(progress, fraction, self.initial_sparsity, self.final_sparsity)
>>> schedule = SineSparsity(0.0, 0.8, 0, 100, frequency=50)
>>> [round(float(schedule(step)[1]), 4) for step in (0, 50, 100)]
[0.0, 0.5657, 0.8]
"""

from __future__ import annotations

import abc
import math

import tensorflow as tf

from schedules import _validation as v
from schedules._ops import select
from schedules.base import SparsitySchedule

__all__ = [
    "RampSchedule",
    "between",
    "clip_values",
    "exact_difference",
    "interpolate",
    "interpolate_from_zero",
    "pin_end",
    "pin_start",
    "polynomial_ramp",
    "polynomial_ramp_of_remaining",
    "power_of_distance",
    "PRODUCT_POWERS",
    "power_of_fraction",
    "progress_of_window",
    "remaining_of_window",
    "unit_scale",
    "widen",
    "widened_events",
]


class RampSchedule(SparsitySchedule):
    """Base of schedules that ramp from `initial_sparsity` at `begin_step` to `final_sparsity` at `end_step`.

    A subclass implements `ramp(progress)`: the sparsity (float64) at the
    progress `p` through the window, a float64 tensor in `[0, 1]` of any
    shape. The base validates the window, computes `p` exactly and gives the
    events (tfmot's grid and `end_step`).

    Args:
      initial_sparsity: sparsity at `begin_step`, in `[0, 1)`.
      final_sparsity: sparsity at `end_step` and after, in `[0, 1)`.
      begin_step: first pruning step, an integer >= 0.
      end_step: last pruning step, an integer >= `begin_step`.
      frequency: prune every `frequency` steps from `begin_step`, an integer >= 1.
    """

    handles_every_step = True  # clips the step to the window before it subtracts

    #: Whether `ramp_of_window` is also right one step before and after the window (at
    #: `begin_step - 1` the start value, at `end_step + 1` the end value): true where it
    #: maps a wave that keeps moving past both ends onto the window and clips (the cubic,
    #: exponential and one-cycle ramps, and `PolynomialSparsity` at powers 1 and 3). `call`
    #: clips the step once, to `[begin_step - 1, end_step + 1]`, for the events; where this
    #: is false, it clips that again to the window for the sparsity (one op more).
    extends_past_window: bool = False

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        *,
        frequency: int = 100,
    ) -> None:
        window = v.check_window(initial_sparsity, final_sparsity, begin_step, end_step, frequency)
        self.initial_sparsity, self.final_sparsity, self.begin_step, self.end_step, self.frequency = window

    @abc.abstractmethod
    def ramp(self, progress: tf.Tensor) -> tf.Tensor:
        """The sparsity (float64) at float64 `progress` in `[0, 1]`: `initial_sparsity` at 0, `final_sparsity` at 1."""

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        begin, end = self.begin_step, self.end_step
        widened = widen(step, begin, end)
        events = widened_events(widened, begin, end, self.frequency)
        if end == begin:  # one shot: no window to be part of the way through
            return events, self.ramp(tf.cast(widened >= begin, tf.float64))
        inside = widened if self.extends_past_window else clip_values(widened, begin, end)
        return events, self.ramp_of_window(inside)

    def steps_gone(self, clipped: tf.Tensor) -> tf.Tensor:
        """`clipped - begin_step` (int64, exact at any step) as float64: the steps into the window."""
        begin = self.begin_step
        return tf.cast(clipped - begin if begin else clipped, tf.float64)

    def ramp_of_window(self, clipped: tf.Tensor) -> tf.Tensor:
        """The sparsity at `clipped`, the step clipped to the window (`begin_step < end_step`),
        or to one step past each end where `extends_past_window`.

        By default `ramp(progress)`; a family may compute it more directly (ours
        do, in fewer ops, from the integer distance into the window), so a subclass
        of one of ours that changes `ramp` must override this method too (or return
        `RampSchedule.ramp_of_window(self, clipped)`), and set `extends_past_window`
        to False unless its version is right one step past both ends.
        """
        return self.ramp(progress_of_window(clipped, self.begin_step, self.end_step))


def progress_of_window(clipped: tf.Tensor, begin: int, end: int) -> tf.Tensor:
    """`(clipped - begin) / (end - begin)` in float64, exactly 0 at `begin` and 1 at `end`.

    The subtraction is in int64 (exact at any step), the division a product by
    `unit_scale` (TensorFlow's graph optimizer turns a division by a constant
    into a product anyway). For the lengths without an exact unit scale, the
    end is pinned.
    """
    position = clipped - begin if begin else clipped
    scale = unit_scale(end - begin)
    if scale is not None:
        return tf.cast(position, tf.float64) * scale
    progress = tf.cast(position, tf.float64) * (1.0 / (end - begin))
    return select(tf.equal(clipped, end), 1.0, progress)


def remaining_of_window(clipped: tf.Tensor, begin: int, end: int) -> tf.Tensor:
    """`1 - progress`, the share of the window still ahead: 1 at `begin` (exactly, but for
    XLA's rewrites) and exactly 0 at `end`."""
    scale = unit_scale(end - begin)
    if scale is not None:  # one op fewer than 1 - progress, and as exact
        return tf.cast(end - clipped, tf.float64) * scale
    return 1.0 - progress_of_window(clipped, begin, end)


def unit_scale(length: int) -> float | None:
    """A float64 `s` close to `1 / length` with `length * s == 1.0` exactly, so that a
    product reaches 1 exactly at the end, or None if none exists (for about 6% of
    lengths).

    >>> 49 * (1 / 49), 49 * unit_scale(49), unit_scale(237)
    (0.9999999999999999, 1.0, None)
    """
    scale = 1.0 / length
    for _ in range(4):
        landed = length * scale
        if landed == 1.0:
            return scale
        scale = math.nextafter(scale, math.inf if landed < 1.0 else -math.inf)
    return None


def clip_values(values: tf.Tensor, low: int | float, high: int | float) -> tf.Tensor:
    """`values` clipped to `[low, high]`, in their dtype: one `ClipByValue` op
    (`tf.clip_by_value` is two, a minimum and a maximum)."""
    return tf.raw_ops.ClipByValue(
        t=values,
        clip_value_min=tf.constant(low, values.dtype),
        clip_value_max=tf.constant(high, values.dtype),
    )


def widen(step: tf.Tensor, begin: int, end: int) -> tf.Tensor:
    """`step` clipped to `[begin - 1, end + 1]`, one op: every step before the window stands
    at `begin - 1`, every step after it at `end + 1`, so nothing computed from it can
    overflow (`end <= 2**62`) and the step itself need not be read again.

    >>> widen(tf.constant([-2**63, 5, 15, 2**63 - 1], tf.int64), 10, 20).numpy().tolist()
    [9, 9, 15, 21]
    """
    return clip_values(step, begin - 1, end + 1)


def widened_events(widened: tf.Tensor, begin: int, end: int, frequency: int) -> tf.Tensor:
    """Events of the window `[begin, end]`: every `frequency` steps from `begin`, and `end`.

    `widened` is the step clipped to `[begin - 1, end + 1]` (`widen`): its two ends stand for
    every step before and after the window, and neither is an event. Only `widened`
    is read (the step is clipped once, and nothing here can overflow):

    * `frequency == 1`: every step of the window. Of the `L + 3` values of `widened`
      (`L = end - begin`) only `begin - 1` and `end + 1` are equal modulo `L + 2`.
    * `end` on the grid: `widened` is `begin` modulo `frequency`; `begin - 1` and
      `end + 1` are one step off the grid.
    * otherwise: the smaller of the distance past the grid (`frequency - 1` at
      `begin - 1`) and the steps left to `end` (-1 at `end + 1`) is 0.

    Two ops (a modulo and a compare) in the first two cases, four or five in the last.

    >>> widened = tf.range(9, 22, dtype=tf.int64)  # the window [10, 20], one step past each end
    >>> [int(s) for s, e in zip(widened, widened_events(widened, 10, 20, 4)) if e]
    [10, 14, 18, 20]
    """
    length = end - begin
    if frequency == 1:
        return tf.not_equal(tf.math.floormod(widened, length + 2), (begin - 1) % (length + 2))
    phase = begin % frequency
    if length % frequency == 0:
        return tf.equal(tf.math.floormod(widened, frequency), phase)
    past_grid = tf.math.floormod(widened - phase if phase else widened, frequency)
    return tf.equal(tf.minimum(past_grid, end - widened), 0)


def exact_difference(start: float, end: float) -> float | None:
    """A float64 `d` with `start + d == end` exactly (in round-to-nearest), or None if none exists.

    Usually `end - start` itself; otherwise a neighbour of it. With it,
    `start + d * f` is exactly `start` where `f == 0`, exactly `end` where
    `f == 1`, and between the two for `f` in `[0, 1]` (rounding is monotone),
    so a ramp written this way needs no pin or clip at its ends. None exists
    only when the two differ in scale so much that `end - start` has no float64
    neighbour that lands on `end` (as from 0.9 to 1e-10).

    >>> exact_difference(0.1, 0.8), 0.1 + 0.7 == 0.8, 0.1 + exact_difference(0.1, 0.8) == 0.8
    (0.7000000000000001, False, True)
    """
    difference = end - start
    for _ in range(4):
        landed = start + difference
        if landed == end:
            return difference
        difference = math.nextafter(difference, math.inf if landed < end else -math.inf)
    return None


def polynomial_ramp(progress: tf.Tensor, initial: float, final: float, power: float) -> tf.Tensor:
    """`final + (initial - final) * (1 - progress) ** power` in float64, exactly
    `initial` at `progress == 0` (pinned) and `final` at `progress == 1`."""
    return polynomial_ramp_of_remaining(1.0 - progress, initial, final, power, at_start=progress <= 0.0)


def polynomial_ramp_of_remaining(
    remaining: tf.Tensor, initial: float, final: float, power: float, *, at_start: tf.Tensor
) -> tf.Tensor:
    """`polynomial_ramp` of `1 - remaining`: `final + (initial - final) * remaining ** power`,
    exactly `initial` where `at_start` (best computed from integers) and exactly `final`
    where `remaining == 0`.

    The start is pinned because XLA does not keep to IEEE arithmetic: it reassociates
    products with constants, so `remaining ** 3` can come out as `1 + 2e-16` where
    `remaining` is exactly 1 (seen at the start of a cycle under `jit_compile=True`).
    """
    falling = power_of_fraction(remaining, power)  # 0 where remaining is 0, under XLA too
    difference = exact_difference(final, initial)
    value = final + (initial - final if difference is None else difference) * falling
    return select(at_start, initial, value)


#: The powers `power_of_fraction` takes as products: right for any base (a base past [0, 1]
#: gives its true power), where `tf.pow` needs a guard at 0.
PRODUCT_POWERS = (1.0, 2.0, 3.0, 4.0)


def power_of_fraction(base: tf.Tensor, power: float) -> tf.Tensor:
    """`base ** power` for `base` in `[0, 1]` and `power > 0`, exactly 0 where `base == 0`
    and exactly 1 where `base == 1`.

    Powers 1 to 4 are products (`base * base * base` for the cubic): fewer and
    cheaper ops than `tf.pow`. For other powers, `tf.pow(0.0, power)` is not
    always 0: XLA on CPU gives NaN for some fractional powers (1/3) when it
    fuses the op into a larger graph, as tfmot's `tf.cond` around the mask
    update. So the power is taken of 1 there instead, and 0 returned.
    """
    if power in PRODUCT_POWERS:
        return _product_power(base, int(power))
    positive = base > 0.0
    safe = tf.where(positive, base, tf.ones_like(base))
    return tf.where(positive, tf.pow(safe, tf.constant(power, tf.float64)), tf.zeros_like(base))


def pin_start(progress: tf.Tensor, value: tf.Tensor, initial: float, final: float) -> tf.Tensor:
    """`value`, kept inside `[initial, final]` and exactly `initial` where `progress == 0`.

    (At `progress == 1` the formulas here give `final` exactly.)
    """
    value = tf.clip_by_value(value, min(initial, final), max(initial, final))
    return select(progress <= 0.0, initial, value)


def interpolate(progress: tf.Tensor, fraction: tf.Tensor, initial: float, final: float) -> tf.Tensor:
    """`initial + (final - initial) * fraction` in float64, exactly `initial` at
    `progress == 0` and exactly `final` at `progress == 1`, never outside
    `[initial, final]`.

    `fraction` is the share of the way from `initial` to `final` (0 to 1) that
    a shape has covered at `progress`.
    """
    value = pin_start(progress, initial + (final - initial) * fraction, initial, final)
    return pin_end(progress, value, final)


def interpolate_from_zero(progress: tf.Tensor, fraction: tf.Tensor, initial: float, final: float) -> tf.Tensor:
    """`interpolate` for a `fraction` that is exactly 0 at `progress == 0` and in `[0, 1]`
    everywhere (as `1 - cos(x)`, `sin(x)`, `x ** power`), in fewer ops: no clip and no pin
    at the start (a product with 0 is 0, under XLA too).
    """
    difference = exact_difference(initial, final)
    if difference is None:
        return interpolate(progress, fraction, initial, final)
    return pin_end(progress, initial + difference * fraction, final)


def pin_end(progress: tf.Tensor, value: tf.Tensor, final: float) -> tf.Tensor:
    """`value`, and exactly `final` where `progress == 1`."""
    return select(progress >= 1.0, final, value)


def power_of_distance(distance: tf.Tensor, power: int) -> tf.Tensor:
    """`distance ** power` in float64 for an int64 `distance` and a power of 1 to 4, by products."""
    return _product_power(tf.cast(distance, tf.float64), power)


def _product_power(x: tf.Tensor, power: int) -> tf.Tensor:
    """`x ** power` for a power of 1 to 4, by products (the square first), building only
    the products it returns: no dead op in a traced graph, no wasted one eagerly."""
    if power == 1:
        return x
    square = x * x
    if power == 2:
        return square
    return square * x if power == 3 else square * square


def between(wave: tf.Tensor, at_start: float, at_end: float, initial: float, final: float) -> tf.Tensor:
    """`initial + (final - initial) * (wave - at_start) / (at_end - at_start)` in float64:
    `initial` where `wave` is `at_start`, `final` where it is `at_end`.

    One product and one sum, aimed a hair beyond `initial` and `final` (1e-12 of the
    way, and a few float64 ulps), then one `ClipByValue` to them: both ends are exact
    whatever the last bits of `wave` (TensorFlow's kernels, XLA and TensorFlow's graph
    optimizer, which reassociates products with constants, each differ from Python's),
    with no compare and select per end. Between the ends the value moves by at most that
    hair: invisible in float32 but for values within about 1e-11 of an end at 0 (the
    first step of a ramp from 0 over a million steps, 2.4e-6, moves by a few float32
    ulps; over ten million steps a cosine's first step, 2e-14, becomes 0).

    >>> x = tf.constant([4.0, 2.0, 0.0], tf.float64) ** 3  # the cube of the steps left, from 4 to 0
    >>> [round(value, 9) for value in between(x, 64.0, 0.0, 0.0, 0.8).numpy().tolist()]
    [0.0, 0.7, 0.8]
    """
    if initial == final:
        return tf.zeros_like(wave) + initial
    width = max(abs(at_start), abs(at_end), 1.0)  # a wave's absolute error is at least ~1e-16
    slope = (final - initial) / (at_end - at_start)
    hair = 1e-12 * abs(final - initial) + 1e-14 * abs(slope) * width + 4.0 * math.ulp(max(abs(initial), abs(final)))
    beyond = math.copysign(hair, final - initial)
    slope = (final - initial + 2.0 * beyond) / (at_end - at_start)
    intercept = initial - beyond - slope * at_start
    return clip_values(intercept + slope * wave, min(initial, final), max(initial, final))
