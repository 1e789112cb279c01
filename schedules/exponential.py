"""Exponential sparsity: the kept fraction of weights decays geometrically."""

from __future__ import annotations

import math
import numbers

import tensorflow as tf

from schedules import _validation as v
from schedules._ramp import RampSchedule, pin_start
from schedules.base import register

__all__ = ["ExponentialSparsity"]


@register
class ExponentialSparsity(RampSchedule):
    """Geometric decay of the kept fraction `1 - sparsity`.

    Each step of the window removes the same share of the weights that survive,
    so equally spaced pruning events each remove the same fraction:

    ```python
    p = clip(step - begin_step, 0, end_step - begin_step) / (end_step - begin_step)
    1 - sparsity = (1 - initial_sparsity) * ((1 - final_sparsity) / (1 - initial_sparsity)) ** p
    ```

    With `end_step=-1` and a `rate`, it is the open-ended per-event form common
    in hand-written tfmot schedules: every `frequency` steps a share `rate` of
    the surviving weights is removed, until `final_sparsity` caps it:

    ```python
    1 - sparsity = max(1 - final_sparsity,
                       (1 - initial_sparsity) * (1 - rate) ** (max(step - begin_step, 0) / frequency))
    ```

    (`ExponentialSparsity.from_rate` builds it). With `initial_sparsity=0` this is
    `min(final_sparsity, 1 - (1 - rate) ** ((step - begin_step) / frequency))`.

    Example:

    >>> schedule = ExponentialSparsity(0.0, 0.75, begin_step=0, end_step=100, frequency=50)
    >>> [round(float(schedule(step)[1]), 4) for step in (0, 50, 100)]
    [0.0, 0.5, 0.75]
    >>> per_event = ExponentialSparsity.from_rate(0.2, max_sparsity=0.9, begin_step=0, frequency=100)
    >>> [round(float(per_event(step)[1]), 4) for step in (100, 200, 10_000)]
    [0.2, 0.36, 0.9]

    Args:
      initial_sparsity: sparsity at `begin_step`, in `[0, 1)`.
      final_sparsity: sparsity at `end_step` and after (with `end_step=-1`: the
        cap, at least `initial_sparsity`), in `[0, 1)`.
      begin_step: first pruning step, an integer >= 0.
      end_step: last pruning step, an integer >= `begin_step`; or -1 (no end,
        prune every `frequency` steps forever) together with `rate`.
      frequency: prune every `frequency` steps from `begin_step`, an integer >= 1.
      rate: only with `end_step=-1`: the share of surviving weights removed
        every `frequency` steps, in `(0, 1)`.

    Raises:
      ValueError, TypeError: an argument is outside its range or of the wrong
        type, or `rate` and `end_step` do not go together.
    """

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        frequency: int = 100,
        rate: float | None = None,
    ) -> None:
        if isinstance(end_step, numbers.Integral) and not isinstance(end_step, bool) and end_step == -1:
            # The open-ended form: validate the rest with a provisional end.
            super().__init__(initial_sparsity, final_sparsity, begin_step, begin_step, frequency)
            self.end_step = -1
            if rate is None:
                raise v.invalid(
                    "rate",
                    "a finite number in (0, 1) when end_step=-1 (an open-ended schedule needs its per-event rate)",
                    None,
                )
            self.rate: float | None = v.check_float("rate", rate, low=0.0, high=1.0, low_inclusive=False)
            if self.final_sparsity < self.initial_sparsity:
                raise v.invalid(
                    "final_sparsity",
                    ">= initial_sparsity when end_step=-1 (it is the cap the sparsity grows to)",
                    v.received(final_sparsity=self.final_sparsity, initial_sparsity=self.initial_sparsity),
                )
            # Per step, log(keep) falls by this much; past `_cap_offset` steps
            # the cap holds, so offsets are clipped there (no float overflow).
            self._log_decay = math.log1p(-self.rate) / self.frequency
            needed = math.log((1.0 - self.final_sparsity) / (1.0 - self.initial_sparsity))
            steps_to_cap = needed / self._log_decay if self._log_decay < 0.0 else math.inf
            # A rate so small that the cap is beyond any step: clip at the largest step instead.
            self._cap_offset = math.ceil(steps_to_cap) + 1 if steps_to_cap < v.MAX_STEP else v.MAX_STEP
        else:
            super().__init__(initial_sparsity, final_sparsity, begin_step, end_step, frequency)
            if rate is not None:
                raise v.invalid(
                    "rate", "None unless end_step=-1 (with an end step the sparsities and the window set it)", rate
                )
            self.rate = None

    @classmethod
    def from_rate(
        cls,
        rate: float,
        max_sparsity: float,
        begin_step: int = 0,
        frequency: int = 100,
        initial_sparsity: float = 0.0,
    ) -> ExponentialSparsity:
        """The per-event form: `min(max_sparsity, 1 - (1 - rate) ** ((step - begin_step) / frequency))`.

        Prunes every `frequency` steps from `begin_step`, with no end step.
        """
        return cls(initial_sparsity, max_sparsity, begin_step, -1, frequency, rate=rate)

    def _evaluate(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if self.end_step != -1:
            return super()._evaluate(step)
        # Open-ended: tfmot's grid from begin_step forever; offsets past the cap
        # are clipped (the cap holds there), so no float overflows.
        offset = step - self.begin_step
        events = tf.logical_and(offset >= 0, tf.equal(tf.math.floormod(offset, self.frequency), 0))
        clipped = tf.clip_by_value(offset, 0, self._cap_offset)
        log_keep = math.log1p(-self.initial_sparsity) + tf.cast(clipped, tf.float64) * self._log_decay
        sparsity = tf.minimum(-tf.math.expm1(log_keep), self.final_sparsity)
        return events, tf.where(clipped <= 0, tf.constant(self.initial_sparsity, tf.float64), sparsity)

    def _ramp(self, offset: tf.Tensor, progress: tf.Tensor) -> tf.Tensor:
        # Interpolate log(1 - sparsity) linearly; log1p/expm1 keep small sparsities exact.
        log_keep_initial = math.log1p(-self.initial_sparsity) + 0.0  # + 0.0: no -0.0
        log_keep_final = math.log1p(-self.final_sparsity) + 0.0
        log_keep = log_keep_initial + progress * (log_keep_final - log_keep_initial)
        sparsity = pin_start(progress, -tf.math.expm1(log_keep), self.initial_sparsity, self.final_sparsity)
        return tf.where(progress >= 1.0, tf.constant(self.final_sparsity, tf.float64), sparsity)
