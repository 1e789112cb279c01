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

import tensorflow as tf

from schedules import _validation as v
from schedules.base import SparsitySchedule

__all__ = ["RampSchedule", "grid_events", "interpolate", "pin_start", "polynomial_ramp", "power_of_fraction"]


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
        length = self.end_step - self.begin_step
        offset = step - self.begin_step
        clipped = tf.clip_by_value(offset, 0, length)
        events = grid_events(offset, clipped, length, self.frequency)
        if length == 0:
            progress = tf.cast(offset >= 0, tf.float64)
        else:
            progress = tf.cast(clipped, tf.float64) / float(length)  # exactly 1.0 at the end
        return events, self.ramp(progress)


def grid_events(offset: tf.Tensor, position: tf.Tensor, length, frequency: int) -> tf.Tensor:
    """Events of a window (or a cycle) of `length + 1` steps.

    `position` is `offset` clipped to `[0, length]`; the step is inside the
    window where they agree, and an event where its position is a multiple
    of `frequency` or the window's last step.
    """
    in_window = tf.equal(offset, position)
    on_grid = tf.logical_or(tf.equal(tf.math.floormod(position, frequency), 0), tf.equal(position, length))
    return tf.logical_and(in_window, on_grid)


def polynomial_ramp(progress: tf.Tensor, initial: float, final: float, power: float) -> tf.Tensor:
    """`final + (initial - final) * (1 - progress) ** power` in float64, exact at both ends."""
    value = final + (initial - final) * power_of_fraction(1.0 - progress, power)
    return pin_start(progress, value, initial, final)


def power_of_fraction(base: tf.Tensor, power: float) -> tf.Tensor:
    """`base ** power` for `base` in `[0, 1]` and `power > 0`, exactly 0 where `base == 0`.

    `tf.pow(0.0, power)` is not always 0: XLA on CPU gives NaN for some
    fractional powers (1/3) when it fuses the op into a larger graph, as
    tfmot's `tf.cond` around the mask update. So the power is taken of 1
    there instead, and 0 returned.
    """
    positive = base > 0.0
    safe = tf.where(positive, base, tf.ones_like(base))
    return tf.where(positive, tf.pow(safe, tf.constant(power, tf.float64)), tf.zeros_like(base))


def pin_start(progress: tf.Tensor, value: tf.Tensor, initial: float, final: float) -> tf.Tensor:
    """`value`, kept inside `[initial, final]` and exactly `initial` where `progress == 0`.

    (At `progress == 1` the formulas here give `final` exactly.)
    """
    value = tf.clip_by_value(value, min(initial, final), max(initial, final))
    return tf.where(progress <= 0.0, tf.constant(initial, tf.float64), value)


def interpolate(progress: tf.Tensor, fraction: tf.Tensor, initial: float, final: float) -> tf.Tensor:
    """`initial + (final - initial) * fraction` in float64, exactly `initial` at
    `progress == 0` and exactly `final` at `progress == 1`, never outside
    `[initial, final]`.

    `fraction` is the share of the way from `initial` to `final` (0 to 1) that
    a shape has covered at `progress`.
    """
    value = pin_start(progress, initial + (final - initial) * fraction, initial, final)
    return tf.where(progress >= 1.0, tf.constant(final, tf.float64), value)
