"""Polynomial sparsity of any power, in either orientation."""

from __future__ import annotations

import math

import tensorflow as tf

from schedules import _validation as v
from schedules._ops import select
from schedules.ramp import _PRODUCT_POWERS, RampSchedule, _power_ramp, between, power_of_fraction
from schedules.registry import register

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

    def ramp(self, gone: tf.Tensor, length: int) -> tf.Tensor:
        power, initial, final = float(self.power), self.initial_sparsity, self.final_sparsity
        falls = (self.orientation == "fast_early") == (power >= 1)  # g = 1 - (1 - p) ** power, else p ** power
        if power in _PRODUCT_POWERS:  # the power of the steps left (CubicSparsity's form) or gone
            top = float(length) ** power
            if falls:
                return between(power_of_fraction(tf.cast(length - gone, tf.float64), power), top, 0.0, initial, final)
            return between(power_of_fraction(tf.cast(gone, tf.float64), power), 0.0, top, initial, final)
        # Otherwise the power of 1 - p (from `final`, exactly `initial` at p = 0) or of p, where
        # p = gone / length is a product by a float64 s with length * s == 1 exactly, if there is one.
        scale = _unit_scale(length)
        if scale is None:
            p = select(tf.equal(gone, length), 1.0, tf.cast(gone, tf.float64) * (1.0 / length))
            left = 1.0 - p
        else:
            p, left = tf.cast(gone, tf.float64) * scale, tf.cast(length - gone, tf.float64) * scale
        if falls:
            return _power_ramp(left, power, final, initial, at_end=tf.equal(gone, 0))
        return _power_ramp(p, power, initial, final, at_end=tf.equal(gone, length))


def _unit_scale(length: int) -> float | None:
    """A float64 `s` close to `1 / length` with `length * s == 1.0` exactly (a product reaches
    1 exactly at the end), or None if none exists (for about 6% of lengths).

    >>> 49 * (1 / 49), 49 * _unit_scale(49), _unit_scale(237)
    (0.9999999999999999, 1.0, None)
    """
    scale = 1.0 / length
    for _ in range(4):
        landed = length * scale
        if landed == 1.0:
            return scale
        scale = math.nextafter(scale, math.inf if landed < 1.0 else -math.inf)
    return None
