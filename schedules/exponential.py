"""Exponential sparsity: the kept fraction of weights decays geometrically."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import tensorflow as tf
import tf_keras

from schedules import _validation as v
from schedules._ops import clip
from schedules.base import SparsitySchedule
from schedules.ramp import RampSchedule, between
from schedules.registry import register

__all__ = ["ExponentialRateSparsity", "ExponentialSparsity"]


#: The keys of the per-event form's config as release 0.1 saved it (an `ExponentialSparsity` with `end_step=-1`).
_RELEASE_0_1_KEYS = ("initial_sparsity", "final_sparsity", "begin_step", "end_step", "frequency", "rate")


@register
class ExponentialSparsity(RampSchedule):
    """Geometric decay of the kept fraction `1 - sparsity` over a window.

    Each step of the window removes the same share of the weights that survive,
    so equally spaced pruning events each remove the same fraction:

    ```python
    p = clip(step - begin_step, 0, end_step - begin_step) / (end_step - begin_step)
    1 - sparsity = (1 - initial_sparsity) * ((1 - final_sparsity) / (1 - initial_sparsity)) ** p
    ```

    The open-ended per-event form, a share `rate` of the survivors removed
    every `frequency` steps with no end step, is `ExponentialRateSparsity`
    (`ExponentialSparsity.from_rate` builds it).

    Example:

    >>> schedule = ExponentialSparsity(0.0, 0.75, begin_step=0, end_step=100, frequency=50)
    >>> [round(float(schedule(step)[1]), 4) for step in (0, 50, 100)]
    [0.0, 0.5, 0.75]

    Args:
      initial_sparsity: sparsity at `begin_step`, in `[0, 1)`.
      final_sparsity: sparsity at `end_step` and after, in `[0, 1)`.
      begin_step: first pruning step, an integer >= 0.
      end_step: last pruning step, an integer >= `begin_step`.
      frequency: prune every `frequency` steps from `begin_step`, an integer >= 1.

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
    ) -> None:
        if isinstance(end_step, numbers.Integral) and not isinstance(end_step, bool) and end_step == -1:
            raise v.invalid(
                "end_step",
                f"an integer in [begin_step, {v.MAX_STEP}]; for no end (a share of the survivors removed every "
                "`frequency` steps forever) use ExponentialRateSparsity or ExponentialSparsity.from_rate",
                end_step,
            )
        super().__init__(initial_sparsity, final_sparsity, begin_step, end_step, frequency=frequency)

    @classmethod
    def from_rate(
        cls,
        rate: float,
        max_sparsity: float,
        *,
        begin_step: int = 0,
        frequency: int = 100,
        initial_sparsity: float = 0.0,
    ) -> ExponentialRateSparsity:
        """The per-event form, `ExponentialRateSparsity(rate, max_sparsity, ...)`: no end step.

        >>> ExponentialSparsity.from_rate(0.2, 0.9, frequency=50)
        ExponentialRateSparsity(rate=0.2, max_sparsity=0.9, begin_step=0, frequency=50, initial_sparsity=0.0)
        """
        return ExponentialRateSparsity(
            rate, max_sparsity, begin_step=begin_step, frequency=frequency, initial_sparsity=initial_sparsity
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SparsitySchedule:
        """Builds the schedule from its config; also reads the configs release 0.1 saved.

        Release 0.1 saved the per-event form as an `ExponentialSparsity` with
        `end_step=-1` and a `rate`: such a config gives the equivalent
        `ExponentialRateSparsity` (`final_sparsity` becomes `max_sparsity`).
        It saved the windowed form with `rate: None`, which is dropped.
        """
        wrapped = isinstance(config, Mapping) and "class_name" in config and "config" in config
        inner = config["config"] if wrapped else config
        if not isinstance(inner, Mapping) or "rate" not in inner:
            return super().from_config(config)
        if wrapped and (
            set(config) != {"class_name", "config"}
            or config["class_name"] not in (cls.__name__, tf_keras.utils.get_registered_name(cls))
        ):
            return super().from_config(config)  # raises: another class, or keys besides the two
        legacy = dict(inner)
        rate = legacy.pop("rate")
        if rate is None:
            return super().from_config({**config, "config": legacy} if wrapped else legacy)
        end_step = legacy.get("end_step")
        integer_minus_one = isinstance(end_step, numbers.Integral) and not isinstance(end_step, bool) and end_step == -1
        if set(inner) != set(_RELEASE_0_1_KEYS) or not integer_minus_one:
            raise v.invalid(
                "config",
                f"a config of ExponentialSparsity as release 0.1 saved the per-event form, with exactly the keys "
                f"{list(_RELEASE_0_1_KEYS)} and end_step=-1",
                dict(inner),
            )
        return ExponentialRateSparsity(
            rate,
            legacy["final_sparsity"],
            begin_step=legacy["begin_step"],
            frequency=legacy["frequency"],
            initial_sparsity=legacy["initial_sparsity"],
        )

    def ramp(self, gone: tf.Tensor, length: int) -> tf.Tensor:
        # With r = (1 - final) / (1 - initial), 1 - sparsity = (1 - initial) * r ** p is
        # sparsity = initial + (final - initial) * (1 - r ** p) / (1 - r): expm1(p log r), from 0
        # to expm1(log r), mapped onto [initial, final] (log1p/expm1 keep small sparsities exact).
        log_ratio = math.log1p(-self.final_sparsity) - math.log1p(-self.initial_sparsity)
        if log_ratio == 0.0:  # initial == final
            return tf.zeros_like(gone, tf.float64) + self.initial_sparsity
        wave = tf.math.expm1(tf.cast(gone, tf.float64) * (log_ratio / length))
        return between(wave, 0.0, math.expm1(log_ratio), self.initial_sparsity, self.final_sparsity)


@register
class ExponentialRateSparsity(SparsitySchedule):
    """A share `rate` of the surviving weights removed every `frequency` steps, up to `max_sparsity`.

    The open-ended per-event form common in hand-written tfmot schedules: it
    prunes every `frequency` steps from `begin_step` forever, and the kept
    fraction shrinks by `1 - rate` per event until `max_sparsity` caps it:

    ```python
    1 - sparsity = max(1 - max_sparsity,
                       (1 - initial_sparsity) * (1 - rate) ** (max(step - begin_step, 0) / frequency))
    should_prune = step >= begin_step and (step - begin_step) % frequency == 0
    ```

    With `initial_sparsity=0` this is
    `min(max_sparsity, 1 - (1 - rate) ** ((step - begin_step) / frequency))`.
    It has no end step (`end_step` is -1).

    Example:

    >>> schedule = ExponentialRateSparsity(0.2, 0.9, begin_step=0, frequency=100)
    >>> [round(float(schedule(step)[1]), 4) for step in (100, 200, 10_000)]
    [0.2, 0.36, 0.9]

    Args:
      rate: the share of surviving weights removed every `frequency` steps, in `(0, 1)`.
      max_sparsity: the cap, in `[initial_sparsity, 1)`.
      begin_step: first pruning step, an integer >= 0.
      frequency: prune every `frequency` steps from `begin_step`, an integer >= 1.
      initial_sparsity: sparsity at `begin_step`, in `[0, 1)`.

    Raises:
      ValueError, TypeError: an argument is outside its range or of the wrong type.
    """

    compiles_eagerly = True

    step_arguments = ("begin_step", "frequency")

    def __init__(
        self,
        rate: float,
        max_sparsity: float,
        *,
        begin_step: int = 0,
        frequency: int = 100,
        initial_sparsity: float = 0.0,
    ) -> None:
        self.rate = v.check_float("rate", rate, low=0.0, high=1.0, low_inclusive=False)
        self.max_sparsity = v.check_sparsity("max_sparsity", max_sparsity)
        self.begin_step = v.check_step("begin_step", begin_step)
        self.frequency = v.check_int("frequency", frequency, minimum=1)
        self.initial_sparsity = v.check_sparsity("initial_sparsity", initial_sparsity)
        if self.max_sparsity < self.initial_sparsity:
            raise v.invalid(
                "max_sparsity",
                ">= initial_sparsity (it is the cap the sparsity grows to)",
                v.received(max_sparsity=self.max_sparsity, initial_sparsity=self.initial_sparsity),
            )
        #: No end: it prunes every `frequency` steps forever.
        self.end_step = -1
        # Per step, log(keep) falls by this much; past `_cap_offset` steps the cap
        # holds, so offsets are clipped there (no float overflow).
        self._log_decay = math.log1p(-self.rate) / self.frequency
        needed = math.log((1.0 - self.max_sparsity) / (1.0 - self.initial_sparsity))
        steps_to_cap = needed / self._log_decay if self._log_decay < 0.0 else math.inf
        # A rate so small that the cap is beyond any step: clip at the largest step instead.
        self._cap_offset = math.ceil(steps_to_cap) + 1 if steps_to_cap < v.MAX_STEP else v.MAX_STEP

    handles_every_step = True  # clips the step before it subtracts
    _prunes_only_in_window = True

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        begin, frequency = self.begin_step, self.frequency
        # Events on the grid from begin_step on, forever: every step before it stands at
        # begin_step - 1, off the grid (with frequency 1, every step from begin_step is one).
        if frequency == 1:
            events = tf.greater_equal(step, begin)
        else:
            raised = tf.maximum(step, begin - 1)
            events = tf.equal(tf.math.floormod(raised, frequency), begin % frequency)
        last = min(begin + self._cap_offset, 2**63 - 1)
        offset = clip(step, begin, last)
        offset = offset - begin if begin else offset
        # 1 - sparsity = (1 - initial) * exp(offset * log_decay), exactly initial at offset 0.
        decayed = tf.math.expm1(tf.cast(offset, tf.float64) * self._log_decay)
        sparsity = self.initial_sparsity + (self.initial_sparsity - 1.0) * decayed
        return events, tf.minimum(sparsity, self.max_sparsity)
