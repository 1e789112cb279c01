"""What the windowed ramp schedules share: arguments, validation, events and the steps into the window.

A ramp moves from `initial_sparsity` at `begin_step` to `final_sparsity` at `end_step`:

```python
length = end_step - begin_step
gone = clip(step - begin_step, 0, length)   # int64: exact at any step
sparsity = ramp(gone, length)               # the family's curve at progress p = gone / length
should_prune = begin_step <= step <= end_step and ((step - begin_step) % frequency == 0 or step == end_step)
```

A one-shot window (`begin_step == end_step`) ramps over the step before it: `gone / length` is 0
before `begin_step` and 1 from it on.

A ramp of your own is a subclass that implements `ramp(gone, length)`. `between` maps a wave
onto `[initial_sparsity, final_sparsity]` with both ends exact; `power_of_fraction` takes a power
free of NaN under XLA:

>>> import math
>>> import tensorflow as tf
>>> class SineSparsity(RampSchedule):
...     # A quarter sine wave: fast early, level at the end.
...     def ramp(self, gone, length):
...         wave = tf.sin(math.pi / 2 * tf.cast(gone, tf.float64) / length)
...         return between(wave, 0.0, 1.0, self.initial_sparsity, self.final_sparsity)
>>> schedule = SineSparsity(0.0, 0.8, 0, 100, frequency=50)
>>> [round(float(schedule(step)[1]), 4) for step in (0, 50, 100)]
[0.0, 0.5657, 0.8]
"""

from __future__ import annotations

import abc
import math

import tensorflow as tf

from schedules import _validation as v
from schedules._ops import clip, select
from schedules.base import SparsitySchedule

__all__ = ["RampSchedule", "between", "power_of_fraction"]


class RampSchedule(SparsitySchedule):
    """Base of schedules that ramp from `initial_sparsity` at `begin_step` to `final_sparsity` at `end_step`.

    A subclass implements `ramp(gone, length)`, its curve. The base validates
    the window, gives the events (tfmot's grid and `end_step`) and calls `ramp`
    with the steps into the window, for every window (a one-shot window is a
    window of one step ending at `end_step`).

    Args:
      initial_sparsity: sparsity at `begin_step`, in `[0, 1)`.
      final_sparsity: sparsity at `end_step` and after, in `[0, 1)`.
      begin_step: first pruning step, an integer >= 0.
      end_step: last pruning step, an integer >= `begin_step`.
      frequency: prune every `frequency` steps from `begin_step`, an integer >= 1.
    """

    handles_every_step = True  # clips the step before it subtracts
    _prunes_only_in_window = True

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
    def ramp(self, gone: tf.Tensor, length: int) -> tf.Tensor:
        """The sparsity (float64) `gone` steps into a window of `length >= 1` steps.

        `gone` is an int64 tensor of any shape, with values from 0 (`initial_sparsity`)
        to `length` (`final_sparsity`); the progress through the window is `gone / length`.
        """

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        begin, end, frequency = self.begin_step, self.end_step, self.frequency
        # Every step before the window stands at begin_step - 1, every step after it at
        # end_step + 1: neither is an event, and nothing computed from them overflows.
        widened = clip(step, begin - 1, end + 1)
        if frequency == 1:  # every step of the window
            events = tf.equal(widened, clip(widened, begin, end))
        else:  # on the grid (begin_step - 1 is frequency - 1 past it), or at end_step (-1 after it)
            phase = begin % frequency
            past_grid = tf.math.floormod(widened - phase if phase else widened, frequency)
            events = tf.equal(tf.minimum(past_grid, end - widened), 0)
        start = min(begin, end - 1)  # a one-shot window ramps over the step before it
        return events, self.ramp(clip(widened, start, end) - start, end - start)


def between(wave: tf.Tensor, at_start: float, at_end: float, initial: float, final: float) -> tf.Tensor:
    """`initial + (final - initial) * (wave - at_start) / (at_end - at_start)` in float64:
    `initial` where `wave` is `at_start`, `final` where it is `at_end`, never outside them.

    One product and one sum, aimed a hair beyond `initial` and `final` (1e-12 of the
    way, and a few float64 ulps), then one clip to them: both ends are exact
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
    return clip(intercept + slope * wave, min(initial, final), max(initial, final))


#: The powers `power_of_fraction` takes as products: right for any base (a count of steps
#: too), where `tf.pow` needs a guard at 0.
_PRODUCT_POWERS = (1.0, 2.0, 3.0, 4.0)


def power_of_fraction(base: tf.Tensor, power: float) -> tf.Tensor:
    """`base ** power` (float64) for `base` in `[0, 1]` and `power > 0`, exactly 0 where
    `base == 0` and exactly 1 where `base == 1`.

    Powers 1 to 4 are products (`base * base * base` for the cubic), right for any
    base. For other powers, `tf.pow(0.0, power)` is not always 0: XLA on CPU gives
    NaN for some fractional powers (1/3) when it fuses the op into a larger graph,
    as tfmot's `tf.cond` around the mask update. So the power is taken of 1 there
    instead, and 0 returned.
    """
    if power in _PRODUCT_POWERS:  # only the products returned: no dead op run eagerly
        if power == 1.0:
            return base
        square = base * base
        return square if power == 2.0 else square * base if power == 3.0 else square * square
    positive = base > 0.0
    safe = tf.where(positive, base, tf.ones_like(base))
    return tf.where(positive, tf.pow(safe, tf.constant(power, tf.float64)), tf.zeros_like(base))


def _power_ramp(fraction: tf.Tensor, power: float, start: float, end: float, at_end: tf.Tensor) -> tf.Tensor:
    """`start + (end - start) * fraction ** power` (float64) for `fraction` in `[0, 1]`,
    never outside `[start, end]`: exactly `start` where `fraction` is 0 and `end`
    where `at_end`, an integer compare (XLA reassociates products with constants, so
    a power of 1.0 can come out as `1 + 2e-16`).

    The curve of a power that is not whole (a whole one is `between` of a power of
    integers). The difference is one that lands on `end` exactly where one exists
    (usually `end - start`, else a float64 neighbour of it; none from 0.3 to 0.05).
    """
    difference = end - start
    for _ in range(4):
        landed = start + difference
        if landed == end:
            break
        difference = math.nextafter(difference, math.inf if landed < end else -math.inf)
    else:
        difference = end - start
    value = clip(start + difference * power_of_fraction(fraction, power), min(start, end), max(start, end))
    return select(at_end, end, value)
