"""Polynomial sparsity of any power, in either orientation."""

from __future__ import annotations

import tensorflow as tf

from schedules import _validation as v
from schedules.base import register
from schedules.ramp import (
    PRODUCT_POWERS,
    RampSchedule,
    between,
    interpolate_from_zero,
    polynomial_ramp,
    polynomial_ramp_of_remaining,
    power_of_distance,
    power_of_fraction,
    remaining_of_window,
)

__all__ = ["ORIENTATIONS", "PolynomialSparsity"]

#: `"fast_early"`: the sparsity rises fast at first and levels off (concave);
#: `"fast_late"`: it rises slowly at first and fastest at the end (convex).
ORIENTATIONS = ("fast_early", "fast_late")


@register(name="power")
class PolynomialSparsity(RampSchedule):
    """A polynomial ramp of any `power`, rising fast early or fast late.

    The share `g` of the way from `initial_sparsity` to `final_sparsity`
    covered at progress `p` is a polynomial whose orientation is named by what
    the curve does, not by which formula a toolkit calls "cubic":

    ```python
    p = clip(step - begin_step, 0, end_step - begin_step) / (end_step - begin_step)
    a, b = 1 - (1 - p) ** power, p ** power
    if orientation == "fast_early":       # concave: prunes most at the start
        g = a if power >= 1 else b
    else:                                 # "fast_late", convex: prunes most at the end
        g = b if power >= 1 else a
    sparsity = initial_sparsity + (final_sparsity - initial_sparsity) * g
    ```

    Known shapes:

    * `power=3, orientation="fast_early"`: Zhu & Gupta's cubic (tfmot's
      `PolynomialDecay`, Distiller's AGP, SparseML's `cubic`, NNCF's
      `concave=True`; `CubicSparsity` here);
    * `power=3, orientation="fast_late"`: the mirror, slow early and fast late
      (Intel Neural Compressor's `cube`, NNCF's `concave=False`);
    * `power=1/3, orientation="fast_late"`: SparseML's `inverse_cubic`,
      `1 - (1 - p) ** (1/3)`, the inverse function of the cubic ramp;
    * `power=1`: linear (the orientation makes no difference).

    Example:

    >>> early = PolynomialSparsity(0.0, 0.8, begin_step=0, end_step=100, frequency=10)
    >>> late = PolynomialSparsity(0.0, 0.8, 0, 100, frequency=10, orientation="fast_late")
    >>> round(float(early(50)[1]), 4), round(float(late(50)[1]), 4)
    (0.7, 0.1)

    Args:
      initial_sparsity: sparsity at `begin_step`, in `[0, 1)`.
      final_sparsity: sparsity at `end_step` and after, in `[0, 1)`.
      begin_step: first pruning step, an integer >= 0.
      end_step: last pruning step, an integer >= `begin_step`.
      frequency: prune every `frequency` steps from `begin_step`, an integer >= 1.
      power: the exponent, a finite number in `(0, 1e6]`.
      orientation: `"fast_early"` (concave) or `"fast_late"` (convex).

    Raises:
      ValueError, TypeError: an argument is outside its range or of the wrong type.

    References:
      M. Zhu, S. Gupta. To prune, or not to prune: exploring the efficacy of
      pruning for model compression. 2017. https://arxiv.org/abs/1710.01878
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
        power: float = 3,
        orientation: str = "fast_early",
    ) -> None:
        super().__init__(initial_sparsity, final_sparsity, begin_step, end_step, frequency=frequency)
        self.power = v.check_power(power)
        self.orientation = v.check_choice("orientation", orientation, ORIENTATIONS)

    def _falls_from_initial(self) -> bool:
        """Whether the shape is g = 1 - (1 - p) ** power (CubicSparsity's form) rather than g = p ** power."""
        return (self.orientation == "fast_early") == (self.power >= 1)

    def ramp(self, progress: tf.Tensor) -> tf.Tensor:
        if self._falls_from_initial():
            return polynomial_ramp(progress, self.initial_sparsity, self.final_sparsity, float(self.power))
        fraction = power_of_fraction(progress, float(self.power))  # g = p ** power: exactly 0 and 1 at the ends
        initial, final = self.initial_sparsity, self.final_sparsity
        return interpolate_from_zero(progress, fraction, initial, final)

    @property
    def extends_past_window(self) -> bool:
        return float(self.power) in (1.0, 3.0)  # odd whole powers keep moving past both ends

    def ramp_of_window(self, clipped: tf.Tensor) -> tf.Tensor:
        power = float(self.power)
        if power not in PRODUCT_POWERS:
            if self._falls_from_initial():
                remaining = remaining_of_window(clipped, self.begin_step, self.end_step)
                at_start = tf.equal(clipped, self.begin_step)
                initial, final = self.initial_sparsity, self.final_sparsity
                return polynomial_ramp_of_remaining(remaining, initial, final, power, at_start=at_start)
            return super().ramp_of_window(clipped)
        # Whole powers: the power of the steps left (g = 1 - (1 - p) ** power, CubicSparsity's
        # form, bit for bit) or of the steps gone (g = p ** power), mapped onto [initial, final].
        length = float(self.end_step - self.begin_step) ** power
        initial, final = self.initial_sparsity, self.final_sparsity
        if self._falls_from_initial():
            return between(power_of_distance(self.end_step - clipped, int(power)), length, 0.0, initial, final)
        return between(power_of_distance(clipped - self.begin_step, int(power)), 0.0, length, initial, final)
