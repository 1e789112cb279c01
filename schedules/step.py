"""Step sparsity: a staircase of sparsities held between boundaries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from schedules import _validation as v
from schedules.base import SparsitySchedule
from schedules.registry import register

__all__ = ["StepSparsity"]

SPACINGS = ("linear", "geometric")


@register(forms=("uniform", "__init__"))
class StepSparsity(SparsitySchedule):
    """A staircase: `sparsities[i]` holds from `boundaries[i]` to the next boundary.

    The mask is recomputed exactly at each boundary and nowhere else (as NNCF's
    multistep schedule and Keras' `PiecewiseConstantDecay`). Before
    `boundaries[0]` nothing is pruned, and the sparsity reported there is 0:

    ```python
    i = count(boundaries <= step) - 1
    sparsity = sparsities[i] if i >= 0 else 0.0
    should_prune = step in boundaries        # and step 1 if boundaries[0] == 0
    ```

    `StepSparsity.uniform` builds equal stairs from an initial to a final
    sparsity, linearly or geometrically spaced (iterative magnitude pruning).

    Example:

    >>> schedule = StepSparsity(boundaries=[100, 200, 300], sparsities=[0.5, 0.7, 0.9])
    >>> [round(float(schedule(step)[1]), 2) for step in (0, 150, 200, 1000)]
    [0.0, 0.5, 0.7, 0.9]
    >>> [bool(schedule(step)[0]) for step in (100, 150, 300)]
    [True, False, True]

    Args:
      boundaries: strictly increasing integer steps >= 0, where stairs begin.
      sparsities: one sparsity in `[0, 1)` per boundary.

    Raises:
      ValueError, TypeError: a boundary or sparsity is out of range or of the
        wrong type, boundaries are not strictly increasing, or the lengths differ.
    """

    compiles_eagerly = True
    handles_every_step = True  # compares and gathers, subtracts nothing
    _prunes_only_in_window = True

    step_arguments = ("boundaries",)

    def __init__(self, boundaries: Sequence[int], sparsities: Sequence[float]) -> None:
        boundaries = v.check_sequence("boundaries", boundaries)
        sparsities = v.check_sequence("sparsities", sparsities)
        self.boundaries = [v.check_step(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
        self.sparsities = [v.check_sparsity(f"sparsities[{i}]", s) for i, s in enumerate(sparsities)]
        v.check_strictly_increasing("boundaries", self.boundaries)
        v.check_same_length("boundaries", self.boundaries, "sparsities", self.sparsities)
        self.begin_step = self.boundaries[0]
        self.end_step = self.boundaries[-1]

    @classmethod
    def uniform(
        cls,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        *,
        num_stages: int,
        spacing: str = "linear",
    ) -> StepSparsity:
        """`num_stages` equal stairs from `begin_step` to `end_step`.

        Stage `k = 1 .. num_stages` starts at step
        `begin_step + (k - 1) * (end_step - begin_step) // (num_stages - 1)`
        (the first at `begin_step`, the last at `end_step`) and prunes to

        ```python
        q = k / num_stages
        linear:    sparsity = initial + (final - initial) * q
        geometric: 1 - sparsity = (1 - initial) * ((1 - final) / (1 - initial)) ** q
        ```

        Geometric spacing is iterative magnitude pruning: each stage removes
        the same fraction of the surviving weights. `initial_sparsity` is where
        the weights are before the first stage; it is not a stage of its own.

        >>> stairs = StepSparsity.uniform(0.0, 0.875, 0, 200, num_stages=3, spacing="geometric")
        >>> stairs.boundaries, [round(s, 4) for s in stairs.sparsities]
        ([0, 100, 200], [0.5, 0.75, 0.875])

        Args:
          initial_sparsity: sparsity before the first stage, in `[0, 1)`.
          final_sparsity: sparsity of the last stage, in `[0, 1)`.
          begin_step: step of the first stage, an integer >= 0.
          end_step: step of the last stage, an integer >= `begin_step`.
          num_stages: number of stairs, an integer in `[1, end_step - begin_step + 1]`.
          spacing: `"linear"` or `"geometric"` stairs.

        Raises:
          ValueError, TypeError: an argument is out of range, or
            `num_stages` is 1 while `begin_step != end_step`, or there are more
            stages than steps in the window.
        """
        initial = v.check_sparsity("initial_sparsity", initial_sparsity)
        final = v.check_sparsity("final_sparsity", final_sparsity)
        begin = v.check_step("begin_step", begin_step)
        end = v.check_end_step(end_step, begin)
        stages = v.check_int("num_stages", num_stages, minimum=1, maximum=end - begin + 1)
        spacing = v.check_choice("spacing", spacing, SPACINGS)
        if stages == 1:
            if begin != end:
                raise v.invalid(
                    "num_stages",
                    ">= 2 when begin_step != end_step (one stage is a one-shot prune at begin_step == end_step)",
                    v.received(num_stages=1, begin_step=begin, end_step=end),
                )
            boundaries = [begin]
        else:
            boundaries = [begin + (k * (end - begin)) // (stages - 1) for k in range(stages)]
        q = np.arange(1, stages + 1, dtype=np.float64) / stages
        if spacing == "linear":
            values = initial + (final - initial) * q
        else:
            values = 1.0 - (1.0 - initial) * ((1.0 - final) / (1.0 - initial)) ** q
        values[-1] = final
        return cls(boundaries, [float(s) for s in values])

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # i + 1, the boundaries <= step: a binary search in int64 (exact at any step) of the steps
        # as one row, reshaped back. Index 0 is the dense start (0.0), index i the stair of
        # boundaries[i - 1].
        passed = tf.raw_ops.UpperBound(
            sorted_inputs=tf.constant([self.boundaries], tf.int64), values=tf.reshape(step, [1, -1]), out_type=tf.int32
        )
        passed = tf.reshape(passed, tf.shape(step))
        # The latest boundary passed is the step at an event; before the first, the first
        # boundary stands in (above every such step).
        latest = tf.gather(tf.constant([self.boundaries[0], *self.boundaries], tf.int64), passed)
        return tf.equal(latest, step), tf.gather(tf.constant([0.0, *self.sparsities], tf.float64), passed)
