"""Cyclic sparsity: repeated ramps that let wrongly pruned weights come back."""

from __future__ import annotations

import math

import tensorflow as tf

from schedules import _validation as v
from schedules._ops import clip, select
from schedules.base import SparsitySchedule
from schedules.ramp import _PRODUCT_POWERS, _power_ramp, between, power_of_fraction
from schedules.registry import register

__all__ = ["CyclicSparsity"]


@register
class CyclicSparsity(SparsitySchedule):
    """Cyclical pruning (Srinivas et al., 2022): `num_cycles` ramps in one window.

    The `n = end_step - begin_step + 1` steps of the window are split on integer
    boundaries into `num_cycles` cycles of (nearly) equal length. Each cycle
    starts at `initial_sparsity`, pruned at its first step, and ramps
    polynomially to `final_sparsity`, which is applied at its last step; the
    next cycle starts low again, so that weights pruned by mistake can come back.
    The last cycle ends at `final_sparsity` at `end_step`, which then holds:

    ```python
    t = clip(step - begin_step, 0, n - 1)
    c = ((t + 1) * num_cycles - 1) // n              # the cycle of step
    start = begin_step + c * n // num_cycles         # its first step
    last = begin_step + (c + 1) * n // num_cycles - 1  # its last step
    p = (step - start) / (last - start)              # clipped to [0, 1]
    sparsity = final_sparsity + (initial_sparsity - final_sparsity) * (1 - p) ** power
    should_prune = in window and ((step - start) % frequency == 0 or step == last)
    ```

    With `num_cycles=1` it is `CubicSparsity` (at `power=3`).

    Example:

    >>> schedule = CyclicSparsity(0.0, 0.8, begin_step=0, end_step=199, num_cycles=2, frequency=50)
    >>> [round(float(schedule(step)[1]), 3) for step in (0, 99, 100, 199)]
    [0.0, 0.8, 0.0, 0.8]
    >>> [int(step) for step, prune in zip(range(200), schedule(tf.range(200))[0]) if prune]
    [0, 1, 50, 99, 100, 150, 199]

    Args:
      initial_sparsity: sparsity at the start of every cycle, in `[0, 1)`.
      final_sparsity: sparsity at the end of every cycle, in `[0, 1)`.
      begin_step: first step of the first cycle, an integer >= 0.
      end_step: last step of the last cycle, an integer >= `begin_step`.
      num_cycles: number of cycles, an integer in `[1, (end_step - begin_step + 1) // 2]`
        (each cycle has at least two steps); 1 is also allowed for a one-step window.
      frequency: prune every `frequency` steps from each cycle's start, an integer >= 1.
      power: exponent of the ramp, a finite number > 0 (3 is Zhu & Gupta's cubic).

    Raises:
      ValueError, TypeError: an argument is out of range or of the wrong type.

    References:
      S. Srinivas, A. Kuzmin, M. Nagel, M. van Baalen, A. Skliar, T. Blankevoort.
      Cyclical Pruning for Sparse Neural Networks. CVPR Workshops 2022.
      https://arxiv.org/abs/2202.01290
    """

    compiles_eagerly = True
    handles_every_step = True  # clips the step before it subtracts
    _prunes_only_in_window = True

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        *,
        num_cycles: int,
        frequency: int = 100,
        power: float = 3,
    ) -> None:
        window = v.check_window(initial_sparsity, final_sparsity, begin_step, end_step, frequency)
        self.initial_sparsity, self.final_sparsity, self.begin_step, self.end_step, self.frequency = window
        self._length = self.end_step - self.begin_step + 1
        most = max(1, self._length // 2)
        self.num_cycles = v.check_int("num_cycles", num_cycles, minimum=1, maximum=most)
        self.power = v.check_power(power)
        if self._length * self.num_cycles > 2**63 - 1:
            raise v.invalid(
                "end_step - begin_step + 1` times `num_cycles",
                "below 2**63 (int64 arithmetic)",
                v.received(begin_step=self.begin_step, end_step=self.end_step, num_cycles=self.num_cycles),
            )
        # The window and cycles as a reduced fraction `n / num_cycles`: the same cycle boundaries
        # `floor(c * n / num_cycles)` (the formulas below hold for either form), fewer ops when cycles
        # are of one length (`cycles` 1: no multiplication, no division), which most are. Measured on
        # the deep MLP of the overhead benchmark: 8 fewer nodes per pruned layer in the training step.
        whole = math.gcd(self._length, self.num_cycles)
        self._n, self._cycles = self._length // whole, self.num_cycles // whole

    def _cycle(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`(clipped, r)` (int64): the step clipped to the window (so nothing overflows) and
        `r = ((t + 1) * num_cycles - 1) % n`, with `t = clipped - begin_step`, `n` and
        `num_cycles` divided by their greatest common divisor. Its cycle starts `r // num_cycles`
        steps before `clipped` and ends `(n - 1 - r) // num_cycles` steps after it (write
        `c * n = (t + 1) * num_cycles - 1 - r` for its cycle `c`, whose first step is
        `floor(c * n / num_cycles)`). Steps before the window are the first cycle's first step,
        steps after it the last cycle's last step.
        """
        begin, cycles = self.begin_step, self._cycles
        clipped = clip(step, begin, self.end_step)
        t = clipped - begin if begin else clipped
        if cycles > 1:
            t = t * cycles + (cycles - 1)
        return clipped, tf.math.floormod(t, self._n)

    def cycle_bounds(self, step) -> tuple[tf.Tensor, tf.Tensor]:
        """The first and last step (int64) of the cycle that `step` falls in.

        Steps before the window belong to the first cycle, steps after it to
        the last.

        >>> schedule = CyclicSparsity(0.0, 0.8, begin_step=10, end_step=109, num_cycles=3)
        >>> [int(x) for x in schedule.cycle_bounds(50)]
        [43, 75]
        """
        clipped, r = self._cycle(tf.cast(step, tf.int64))
        return clipped - r // self._cycles, clipped + (self._n - 1 - r) // self._cycles

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        clipped, r = self._cycle(step)
        n, cycles = self._n, self._cycles
        # An event where position % frequency == 0, that is where r % (cycles * frequency) < cycles
        # (position = r // cycles; a frequency past n is n), or at the cycle's last step, where
        # n - 1 - r < cycles; and inside the window: outside it, `clipped` is an event but not the step.
        frequency = min(self.frequency, n)
        missed = _over(tf.minimum(tf.math.floormod(r, cycles * frequency), n - 1 - r), cycles)  # 0 at an event
        events = tf.equal(step, clipped - missed)
        position, remaining = _over(r, cycles), _over(n - 1 - r, cycles)
        initial, final, power = self.initial_sparsity, self.final_sparsity, float(self.power)
        if self._length == 1:  # a one-step window: a one-shot prune
            return events, select(step >= self.begin_step, tf.constant(final, tf.float64), initial)
        if cycles == 1 and power in _PRODUCT_POWERS:  # (1 - p) ** power as the power of the steps left
            # over its value at a cycle's start: PolynomialSparsity's form, bit for bit
            wave = power_of_fraction(tf.cast(remaining, tf.float64), power)
            return events, between(wave, float(n - 1) ** power, 0.0, initial, final)
        # 1 - p, the share of the cycle still ahead: exactly 1 at its start and 0 at its end.
        share = tf.cast(remaining, tf.float64) / tf.cast(position + remaining, tf.float64)
        if power in _PRODUCT_POWERS:
            return events, between(power_of_fraction(share, power), 1.0, 0.0, initial, final)
        return events, _power_ramp(share, power, final, initial, at_end=tf.equal(position, 0))


def _over(x: tf.Tensor, cycles: int) -> tf.Tensor:
    """`x // cycles`: no op for one cycle."""
    return x // cycles if cycles > 1 else x
