"""One-cycle sparsity: the logistic ramp of One-Cycle Pruning (Hubens et al.)."""

from __future__ import annotations

import math

import tensorflow as tf

from schedules import _validation as v
from schedules.ramp import RampSchedule, between
from schedules.registry import register

__all__ = ["OneCycleSparsity"]


@register
class OneCycleSparsity(RampSchedule):
    """Logistic ramp: slow start, fast middle, slow finish (One-Cycle Pruning).

    The share of the way from `initial_sparsity` to `final_sparsity` follows a
    logistic curve `L(p) = 1 / (1 + exp(beta - alpha * p))`, rescaled so that
    it starts exactly at `initial_sparsity` and ends exactly at `final_sparsity`:

    ```python
    p = clip(step - begin_step, 0, end_step - begin_step) / (end_step - begin_step)
    g = (L(p) - L(0)) / (L(1) - L(0))
    sparsity = initial_sparsity + (final_sparsity - initial_sparsity) * g
    ```

    The paper's form is `L(p) / L(1)`, which starts at `L(0) / L(1)` (0.25% of
    the way with the defaults `alpha=14, beta=6`) instead of exactly at
    `initial_sparsity`; the two differ by at most that share. The steepest
    point is at `p = beta / alpha` (0.43 by default).

    Example:

    >>> schedule = OneCycleSparsity(0.0, 0.8, begin_step=0, end_step=100, frequency=25)
    >>> [round(float(schedule(step)[1]), 4) for step in (0, 25, 50, 75, 100)]
    [0.0, 0.0589, 0.5845, 0.7915, 0.8]

    Args:
      initial_sparsity: sparsity at `begin_step`, in `[0, 1)`.
      final_sparsity: sparsity at `end_step` and after, in `[0, 1)`.
      begin_step: first pruning step, an integer >= 0.
      end_step: last pruning step, an integer >= `begin_step`.
      frequency: prune every `frequency` steps from `begin_step`, an integer >= 1.
      alpha: steepness of the logistic, a finite number in `(0, 1000]`.
      beta: its offset, a finite number in `[-1000, 1000]` (the midpoint is at
        `p = beta / alpha`); `L(1) - L(0)` must exceed 1e-6.

    Raises:
      ValueError, TypeError: an argument is outside its range or of the wrong type.

    References:
      N. Hubens, M. Mancas, B. Gosselin, M. Preda, T. Zaharia. One-Cycle
      Pruning: Pruning ConvNets Under a Tight Training Budget. 2021.
      https://arxiv.org/abs/2107.02086
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
        alpha: float = 14.0,
        beta: float = 6.0,
    ) -> None:
        super().__init__(initial_sparsity, final_sparsity, begin_step, end_step, frequency=frequency)
        self.alpha = v.check_float("alpha", alpha, low=0.0, high=1000.0, low_inclusive=False, high_inclusive=True)
        self.beta = v.check_float("beta", beta, low=-1000.0, high=1000.0, high_inclusive=True)
        self._start, end = _logistic(-self.beta), _logistic(self.alpha - self.beta)
        self._rise = end - self._start
        if not self._rise > 1e-6:
            raise v.invalid(
                "alpha` and `beta",
                "such that the logistic rises by more than 1e-6 over the window (L(1) - L(0) > 1e-6)",
                v.received(alpha=self.alpha, beta=self.beta),
            )

    def ramp(self, gone: tf.Tensor, length: int) -> tf.Tensor:
        # L(p) from L(0) to L(1), mapped onto [initial, final] (`between` keeps both ends exact
        # whatever the sigmoid's last bits: TensorFlow's and XLA's differ from Python's).
        logistic = tf.sigmoid(tf.cast(gone, tf.float64) * (self.alpha / length) - self.beta)
        start, end = self._start, self._start + self._rise
        return between(logistic, start, end, self.initial_sparsity, self.final_sparsity)


def _logistic(x: float) -> float:
    """`1 / (1 + exp(-x))` without overflow."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    return math.exp(x) / (1.0 + math.exp(x))
