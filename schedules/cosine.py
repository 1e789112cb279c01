"""Cosine sparsity: a cosine ramp, as an S-curve or a quarter wave."""

from __future__ import annotations

import math

import tensorflow as tf

from schedules import _validation as v
from schedules.ramp import RampSchedule, between
from schedules.registry import register

__all__ = ["COSINE_SHAPES", "CosineSparsity"]

#: `"s_curve"`: half a cosine wave, slow at both ends, fastest in the middle;
#: `"fast_late"`: the first quarter wave, slow early and fastest at the end;
#: `"fast_early"`: the mirror quarter wave, fastest at the start.
COSINE_SHAPES = ("s_curve", "fast_late", "fast_early")


@register
class CosineSparsity(RampSchedule):
    """A cosine ramp from `initial_sparsity` to `final_sparsity`.

    The share `g` of the way from `initial_sparsity` to `final_sparsity`
    covered at progress `p` is a piece of a cosine wave:

    ```python
    p = clip(step - begin_step, 0, end_step - begin_step) / (end_step - begin_step)
    g = {"s_curve":    (1 - cos(pi * p)) / 2,   # fastai / fasterai `cos`
         "fast_late":  1 - cos(pi * p / 2),     # Intel Neural Compressor's `cos`
         "fast_early": sin(pi * p / 2)}[shape]
    sparsity = initial_sparsity + (final_sparsity - initial_sparsity) * g
    ```

    (Intel Neural Compressor's `cos` is the quarter wave, slow early and fast
    late, not the S-curve of cosine learning-rate annealing.)

    Example:

    >>> schedule = CosineSparsity(0.0, 0.8, begin_step=0, end_step=100, frequency=25)
    >>> [round(float(schedule(step)[1]), 4) for step in (0, 25, 50, 100)]
    [0.0, 0.1172, 0.4, 0.8]
    >>> late = CosineSparsity(0.0, 0.8, 0, 100, frequency=25, shape="fast_late")
    >>> round(float(late(50)[1]), 4)
    0.2343

    Args:
      initial_sparsity: sparsity at `begin_step`, in `[0, 1)`.
      final_sparsity: sparsity at `end_step` and after, in `[0, 1)`.
      begin_step: first pruning step, an integer >= 0.
      end_step: last pruning step, an integer >= `begin_step`.
      frequency: prune every `frequency` steps from `begin_step`, an integer >= 1.
      shape: `"s_curve"`, `"fast_late"` or `"fast_early"`.

    Raises:
      ValueError, TypeError: an argument is outside its range or of the wrong type.
    """

    compiles_eagerly = True

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        *,
        frequency: int = 100,
        shape: str = "s_curve",
    ) -> None:
        super().__init__(initial_sparsity, final_sparsity, begin_step, end_step, frequency=frequency)
        self.shape = v.check_choice("shape", shape, COSINE_SHAPES)

    def ramp(self, gone: tf.Tensor, length: int) -> tf.Tensor:
        function, angle, at_start, at_end = _WAVES[self.shape]
        wave = function(tf.cast(gone, tf.float64) * (angle / length))  # the angle at p = gone / length
        return between(wave, at_start, at_end, self.initial_sparsity, self.final_sparsity)


#: Per shape, the wave the sparsity follows: (function, its angle at the end, its value at
#: the start, its value at the end). The sparsity is `initial` where the wave is at its
#: start value and `final` where it is at its end value, and linear in the wave between.
_WAVES = {
    "s_curve": (tf.cos, math.pi, 1.0, -1.0),  # initial + (final - initial) * (1 - cos(pi p)) / 2
    "fast_late": (tf.cos, math.pi / 2.0, 1.0, 0.0),  # initial + (final - initial) * (1 - cos(pi p / 2))
    "fast_early": (tf.sin, math.pi / 2.0, 0.0, 1.0),  # initial + (final - initial) * sin(pi p / 2)
}
