"""What the windowed ramp schedules share: arguments, validation and progress.

A ramp moves from `initial_sparsity` at `begin_step` to `final_sparsity` at
`end_step`. Its progress through the window is

```python
p = clip(step - begin_step, 0, end_step - begin_step) / (end_step - begin_step)
```

computed in int64 first and divided in float64 last, so that it is exact at any
step. When `begin_step == end_step` (a one-shot schedule), `p` is 0 before the
step and 1 from it on.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from schedules import _validation as v
from schedules.base import SparsitySchedule


class RampSchedule(SparsitySchedule):
    """Base of schedules that ramp from `initial_sparsity` to `final_sparsity`."""

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        frequency: int = 100,
    ) -> None:
        self.initial_sparsity = v.check_sparsity("initial_sparsity", initial_sparsity)
        self.final_sparsity = v.check_sparsity("final_sparsity", final_sparsity)
        self.begin_step = v.check_step("begin_step", begin_step)
        self.end_step = v.check_end_step(end_step, self.begin_step)
        self.frequency = v.check_int("frequency", frequency, minimum=1)

    def _config(self) -> dict[str, Any]:
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self.final_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
        }

    def _progress(self, step: tf.Tensor) -> tf.Tensor:
        """`p` in `[0, 1]` (float64) at each int64 step."""
        return window_progress(step, self.begin_step, self.end_step)


def window_progress(step: tf.Tensor, begin: int | tf.Tensor, end: int | tf.Tensor) -> tf.Tensor:
    """Progress `p = clip(step - begin, 0, end - begin) / (end - begin)` in float64.

    `begin` and `end` may be Python ints or int64 tensors of `step`'s shape.
    Where `end == begin`, `p` is 0 before `begin` and 1 from it on.
    """
    length = end - begin
    offset = tf.clip_by_value(step - begin, 0, tf.maximum(tf.cast(length, tf.int64), 0))
    safe = tf.maximum(length, 1)
    fraction = tf.cast(offset, tf.float64) / tf.cast(safe, tf.float64)
    return tf.where(tf.equal(length, 0), tf.cast(step >= begin, tf.float64), fraction)


def polynomial_ramp(progress: tf.Tensor, initial: float, final: float, power: float) -> tf.Tensor:
    """`final + (initial - final) * (1 - progress) ** power`, in float64."""
    value = final + (initial - final) * tf.pow(1.0 - progress, tf.constant(power, tf.float64))
    return pin_endpoints(progress, value, initial, final)


def pin_endpoints(progress: tf.Tensor, value: tf.Tensor, initial: float, final: float) -> tf.Tensor:
    """`value`, but exactly `initial` where `progress == 0` and `final` where it is 1.

    Also keeps rounding from stepping outside `[min(initial, final), max(...)]`.
    """
    low, high = min(initial, final), max(initial, final)
    value = tf.clip_by_value(value, low, high)
    value = tf.where(progress <= 0.0, tf.constant(initial, tf.float64), value)
    return tf.where(progress >= 1.0, tf.constant(final, tf.float64), value)
