"""Cubic sparsity: gradual pruning of Zhu & Gupta (2017)."""

from __future__ import annotations

import tensorflow as tf

from schedules.ramp import RampSchedule, between
from schedules.registry import register

__all__ = ["CubicSparsity"]


@register
class CubicSparsity(RampSchedule):
    """Cubic ramp from `initial_sparsity` to `final_sparsity` (Zhu & Gupta, 2017).

    Prunes fast early, while many redundant weights remain, and slowly near the
    target:

    ```python
    p = clip(step - begin_step, 0, end_step - begin_step) / (end_step - begin_step)
    sparsity = final_sparsity + (initial_sparsity - final_sparsity) * (1 - p) ** 3
    ```

    It equals tfmot's `PolynomialDecay(power=3)` wherever that is defined, and
    in addition prunes at `end_step` (so `final_sparsity` is really applied when
    `end_step - begin_step` is not a multiple of `frequency`) and accepts
    `begin_step == end_step` (a one-shot prune to `final_sparsity`).

    Example:

    >>> schedule = CubicSparsity(0.0, 0.8, begin_step=0, end_step=100, frequency=10)
    >>> should_prune, sparsity = schedule(50)
    >>> bool(should_prune), round(float(sparsity), 4)
    (True, 0.7)

    Args:
      initial_sparsity: sparsity at `begin_step`, in `[0, 1)`.
      final_sparsity: sparsity at `end_step` and after, in `[0, 1)`.
      begin_step: first pruning step, an integer >= 0.
      end_step: last pruning step, an integer >= `begin_step`.
      frequency: prune every `frequency` steps from `begin_step`, an integer >= 1.

    Raises:
      ValueError, TypeError: an argument is outside its range or of the wrong type.

    References:
      M. Zhu, S. Gupta. To prune, or not to prune: exploring the efficacy of
      pruning for model compression. 2017. https://arxiv.org/abs/1710.01878
    """

    compiles_eagerly = True

    def ramp(self, gone: tf.Tensor, length: int) -> tf.Tensor:
        # (1 - p) ** 3 is the cube of the steps left over length ** 3: map that cube onto [initial, final].
        left = tf.cast(length - gone, tf.float64)
        return between(left * left * left, float(length) ** 3, 0.0, self.initial_sparsity, self.final_sparsity)
