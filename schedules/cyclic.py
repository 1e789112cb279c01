"""Cyclic sparsity: repeated ramps that let wrongly pruned weights come back."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import tensorflow as tf

from schedules import _validation as v
from schedules._ops import FLOAT32_EXACT
from schedules.base import SparsitySchedule, register
from schedules.ramp import (
    PRODUCT_POWERS,
    between,
    clip_values,
    polynomial_ramp,
    polynomial_ramp_of_remaining,
    power_of_distance,
    power_of_fraction,
    widen,
)

__all__ = ["CyclicSparsity"]

#: The most buckets a `CyclicSparsity` keeps tables for (the runs of events and of the steps
#: between them, and the two outside the window; or, with the events computed, each cycle's
#: steps but its last, its last step, and those two): 2,048 take about 43 kB of constants in each
#: graph that calls it (tfmot calls it once or twice per pruned layer). Past that it computes the
#: events, then the cycle.
SEGMENT_LIMIT = 2048


class Runs(NamedTuple):
    """The tables of `CyclicSparsity`'s runs: Bucketize's boundaries (each run's first step,
    then `end_step + 1`) and, per bucket (before the window, each run, after it), the cycle's
    last step, the divisor of the steps left and whether the bucket's steps are events."""

    boundaries: list[float]
    lasts: list[float]
    divisors: list[float]
    events: list[bool]


class Cycles(NamedTuple):
    """The tables of `CyclicSparsity`'s cycles (see `CyclicSparsity._cycle_tables`): Bucketize's
    boundaries (each cycle's first and last step, then `end_step + 1`) and, per bucket, the shift
    that makes the step a position and the length from which the steps left are counted."""

    boundaries: list[float]
    shifts: list[int]
    lengths: list[float]


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
    handles_every_step = True  # never subtracts from the raw step in int64 (clips it, or compares and casts it)

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
        # Cycles of one length: the steps left as PolynomialSparsity's form (a divisor of 1 in the
        # tables of runs), and one modulo past both tables.
        self._even = self._length % self.num_cycles == 0 and self._length // self.num_cycles >= 2
        # The wave of a whole power at a cycle's start: the power of its steps left for cycles of
        # one length (PolynomialSparsity's form), of the share left (1) for cycles of two.
        self._wave_at_start = float(self._length // self.num_cycles - 1) ** float(self.power) if self._even else 1.0
        # A whole power in a window ending before 2**24: one search per call in tables built
        # here, of the runs (`_segment_tables`) or, past `SEGMENT_LIMIT` runs, of the cycles
        # (`_cycle_tables`, the events computed); None where they do not apply.
        whole = float(self.power) in PRODUCT_POWERS
        self._segments = self._segment_tables() if whole else None
        self._buckets = self._cycle_tables() if whole and self._segments is None else None

    def _segment_tables(self) -> Runs | None:
        """The tables of the runs (`Runs`) of a window ending before 2**24 with at most
        `SEGMENT_LIMIT` buckets, or None.

        A run is a stretch of steps of one cycle that are all events or all not. The
        divisor is the cycle's `last - first` (the share of the cycle left, 1 at its
        start: the other paths' share, bit for bit) or, for cycles of one length, 1 (the
        steps left themselves, `size ** power` at a start: the even path's form). Bucket
        0, the steps before the window, is the first cycle's (the steps left pass its
        length: clipped to `initial_sparsity`); the last, the steps after it, divides by
        1e300 (every power of the share rounds to 0 or is clipped: `final_sparsity`).
        """
        n, cycles, end = self._length, self.num_cycles, self.end_step
        if n == 1 or end + 1 > FLOAT32_EXACT:
            return None
        longer = n % cycles  # cycles of n // cycles + 1 steps; the others have n // cycles
        short = n // cycles
        buckets = (cycles - longer) * self._runs_in(short) + longer * self._runs_in(short + 1) + 2
        if buckets > SEGMENT_LIMIT:
            return None
        rows = [
            (float(run), float(last), 1.0 if self._even else float(last - first), flag)
            for first, last in self._cycle_spans()
            for run, flag in self._runs(first, last)
        ]
        boundaries, lasts, divisors, events = (list(column) for column in zip(*rows, strict=True))
        # Bucket 0, the steps before the window, is the first run's without its event; the
        # last, the steps after it, starts at end_step + 1.
        return Runs(
            boundaries=[*boundaries, float(end + 1)],
            lasts=[lasts[0], *lasts, float(end)],
            divisors=[divisors[0], *divisors, 1e300],
            events=[False, *events, False],
        )

    def _cycle_spans(self) -> list[tuple[int, int]]:
        """The first and last step of each cycle, in order."""
        n, cycles, begin = self._length, self.num_cycles, self.begin_step
        firsts = [begin + (c * n) // cycles for c in range(cycles + 1)]  # the last is end_step + 1
        return [(first, after - 1) for first, after in itertools.pairwise(firsts)]

    def _runs_in(self, steps: int) -> int:
        """How many runs `_runs` gives for a cycle of `steps` steps, without listing them."""
        if self.frequency == 1:
            return 1
        span, frequency = steps - 1, self.frequency
        marks = span // frequency + 1 + (1 if span % frequency else 0)  # the grid's, and the last step
        return 2 * marks - 1 - (1 if span % frequency == 1 else 0)  # a gap after each but the last

    def _runs(self, first: int, last: int) -> list[tuple[int, bool]]:
        """The first step of each run of events and of steps between them in the cycle
        `[first, last]`, and whether the run is of events."""
        if self.frequency == 1:  # every step an event
            return [(first, True)]
        marks = [*range(first, last + 1, self.frequency)]
        if marks[-1] != last:
            marks.append(last)
        runs = []
        for mark, following in zip(marks, [*marks[1:], None], strict=True):
            runs.append((mark, True))
            if mark < last and following != mark + 1:
                runs.append((mark + 1, False))
        return runs

    def _cycle_tables(self) -> Cycles | None:
        """The tables (`Cycles`) of the cycles of a window ending before 2**24 with more runs
        than `SEGMENT_LIMIT` but at most `SEGMENT_LIMIT // 2 - 1` cycles, and a frequency above
        1; or None.

        The step clipped to `[begin_step - 1, end_step + 1]` (`w`) falls in bucket 0 before the
        window, in one bucket for a cycle's steps but its last and one for its last step, and in
        the last bucket after the window. With `p = w + shift`, the step is an event where
        `p % frequency == 0`, and `length - p` are the steps left in its cycle:

        * in a cycle but at its last step, `p` is the position in the cycle and `length` the
          cycle's `last - first`;
        * at a cycle's last step, `p = length = frequency`: an event, no step left;
        * after the window, `p = length = 1`: no event, no step left (`final_sparsity`);
        * before the window, `p = 1`: no event, and for cycles of one length `length` is one
          more than theirs (all its steps left: `initial_sparsity`); for cycles of two lengths,
          whose share left is the steps left over `length`, `length = -1` (a share of 2,
          every power of which is clipped to `initial_sparsity`).

        So the share left, or the steps left for cycles of one length, is the other paths', bit
        for bit.
        """
        n, cycles, begin, end, frequency = self._length, self.num_cycles, self.begin_step, self.end_step, self.frequency
        if n == 1 or end + 1 > FLOAT32_EXACT or 2 * cycles + 2 > SEGMENT_LIMIT or frequency == 1:
            return None
        boundaries, shifts, lengths = [], [2 - begin], [float(n // cycles) if self._even else -1.0]
        for first, last in self._cycle_spans():
            boundaries += [float(first), float(last)]
            shifts += [-first, frequency - last]
            lengths += [float(last - first), float(frequency)]
        return Cycles(
            boundaries=[*boundaries, float(end + 1)],
            shifts=[*shifts, -end],
            lengths=[*lengths, 1.0],
        )

    def _cycle(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """`(clipped, position, remaining, length)` (int64) of each step's cycle.

        `clipped` is the step clipped to the window (so nothing overflows); the
        cycle holding it starts `position` steps before it and ends `remaining`
        steps after it, `length` steps after its start. Steps before the window
        are position 0 of the first cycle, steps after it the last position of
        the last cycle. Cycles of equal length take a shorter path.
        """
        n, cycles, begin = self._length, self.num_cycles, self.begin_step
        clipped = clip_values(step, begin, self.end_step)
        if self._even:
            size = n // cycles
            phase = begin % size  # folded in Python: cycles start where clipped % size == phase
            position = tf.math.floormod(clipped - phase if phase else clipped, size)
            return clipped, position, (size - 1) - position, tf.constant(size - 1, tf.int64)
        # With c the cycle of t and r = ((t + 1) * cycles - 1) % n, the cycle's first step
        # floor(c * n / cycles) is t - r // cycles and its last step is t + (n - 1 - r) // cycles
        # (write c * n = (t + 1) * cycles - 1 - r): no cycle index needed.
        t = clipped - begin if begin else clipped
        r = tf.math.floormod(t * cycles + (cycles - 1), n)
        position, remaining = r // cycles, (n - 1 - r) // cycles
        return clipped, position, remaining, position + remaining

    def cycle_bounds(self, step) -> tuple[tf.Tensor, tf.Tensor]:
        """The first and last step (int64) of the cycle that `step` falls in.

        Steps before the window belong to the first cycle, steps after it to
        the last.

        >>> schedule = CyclicSparsity(0.0, 0.8, begin_step=10, end_step=109, num_cycles=3)
        >>> [int(x) for x in schedule.cycle_bounds(50)]
        [43, 75]
        """
        clipped, position, remaining, _ = self._cycle(tf.cast(step, tf.int64))
        return clipped - position, clipped + remaining

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if self._segments is not None:
            return self._segmented(step)
        if self._buckets is not None:
            return self._bucketed(step)
        clipped, position, remaining, length = self._cycle(step)
        # An event inside the window at a multiple of `frequency` from its cycle's start or at
        # its cycle's last step: where the step is `clipped - offset`, offset 0 just there
        # (before the window `clipped - offset` is `begin_step`, after it `end_step`).
        if self.frequency == 1:
            events = tf.equal(step, clipped)
        else:
            offset = tf.minimum(tf.math.floormod(position, self.frequency), remaining)
            events = tf.equal(step, clipped - offset)
        initial, final, power = self.initial_sparsity, self.final_sparsity, float(self.power)
        if self._length == 1:  # a one-step window: a one-shot prune
            return events, polynomial_ramp(tf.cast(step >= self.begin_step, tf.float64), initial, final, power)
        whole = power in PRODUCT_POWERS
        if self._even and whole:  # PolynomialSparsity's form, bit for bit
            wave = power_of_distance(remaining, int(power))
            return events, between(wave, self._wave_at_start, 0.0, initial, final)
        # Every cycle has at least two steps, so length >= 1; the share of the cycle still
        # ahead is exactly 1 at its start and 0 at its end (a division of integers).
        share = tf.cast(remaining, tf.float64) / tf.cast(length, tf.float64)
        if whole:
            return events, between(power_of_fraction(share, power), 1.0, 0.0, initial, final)
        at_start = tf.equal(position, 0)
        return events, polynomial_ramp_of_remaining(share, initial, final, power, at_start=at_start)

    def _bucketed(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One Bucketize of the step clipped to one step past each end among the cycles, then a
        gathered shift makes it a position whose remainder is the event, and a gathered length
        counts the steps left from it (see `_cycle_tables`): the events are five ops after the
        clip, one of them a gather."""
        cycles = self._buckets
        widened = widen(step, self.begin_step, self.end_step)
        bucket = tf.raw_ops.Bucketize(input=widened, boundaries=cycles.boundaries)
        position = widened + tf.raw_ops.Gather(params=tf.constant(cycles.shifts, tf.int64), indices=bucket)
        events = tf.equal(tf.math.floormod(position, self.frequency), 0)
        length = tf.raw_ops.Gather(params=tf.constant(cycles.lengths, tf.float64), indices=bucket)
        left = length - tf.cast(position, tf.float64)  # exact: integers in float64
        share = left if self._even else left / length  # the steps left, as the even path's form
        wave = power_of_fraction(share, float(self.power))  # a whole power: products
        return events, between(wave, self._wave_at_start, 0.0, self.initial_sparsity, self.final_sparsity)

    def _segmented(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One Bucketize of the step among the runs of `_segment_tables`, then the event, the
        cycle's last step and the divisor of the steps left gathered: no integer arithmetic.

        The step is used as it is: Bucketize compares it in float32 (exact up to 2**24; a
        larger step rounds to at least 2**24, still past `end_step`) and the steps left are a
        float64 difference (exact inside the window, finite outside it, where the buckets'
        values clip the sparsity to its ends), so nothing overflows and no clip is needed."""
        runs = self._segments
        bucket = tf.raw_ops.Bucketize(input=step, boundaries=runs.boundaries)
        last = tf.raw_ops.Gather(params=tf.constant(runs.lasts, tf.float64), indices=bucket)
        share = (last - tf.cast(step, tf.float64)) / tf.raw_ops.Gather(
            params=tf.constant(runs.divisors, tf.float64), indices=bucket
        )
        wave = power_of_fraction(share, float(self.power))
        sparsity = between(wave, self._wave_at_start, 0.0, self.initial_sparsity, self.final_sparsity)
        return tf.raw_ops.Gather(params=tf.constant(runs.events), indices=bucket), sparsity
