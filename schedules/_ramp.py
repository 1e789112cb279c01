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
"""

from __future__ import annotations

import tensorflow as tf

from schedules import _validation as v
from schedules.base import SparsitySchedule


class RampSchedule(SparsitySchedule):
    """Base of schedules that ramp from `initial_sparsity` to `final_sparsity`.

    A subclass implements `_ramp(offset, progress)`: the sparsity from the
    clipped int64 offset into the window and the float64 progress `p`.
    """

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        frequency: int = 100,
    ) -> None:
        window = v.check_window(initial_sparsity, final_sparsity, begin_step, end_step, frequency)
        self.initial_sparsity, self.final_sparsity, self.begin_step, self.end_step, self.frequency = window

    def _ramp(self, offset: tf.Tensor, progress: tf.Tensor) -> tf.Tensor:
        """Sparsity (float64) from the clipped offset and the progress."""
        raise NotImplementedError

    def _evaluate(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        length = self.end_step - self.begin_step
        offset = step - self.begin_step
        clipped = tf.clip_by_value(offset, 0, length)
        events = grid_events(offset, clipped, length, self.frequency)
        if length == 0:
            progress = tf.cast(offset >= 0, tf.float64)
        else:
            progress = tf.cast(clipped, tf.float64) / float(length)  # exactly 1.0 at the end
        return events, self._ramp(clipped, progress)


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
