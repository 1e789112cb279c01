"""Alternating sparsity: dense and sparse phases in turn (AC/DC, dense-sparse-dense)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from schedules import _validation as v
from schedules._ops import clip, select
from schedules.base import SparsitySchedule
from schedules.registry import register

__all__ = ["AlternatingSparsity"]


@register
class AlternatingSparsity(SparsitySchedule):
    """Sparse and dense phases in turn after a dense warm-up; sparse for good from `end_step`.

    Alternating Compressed/DeCompressed training (AC/DC, Peste et al. 2021):
    the model trains dense until `begin_step`, then alternates a sparse phase
    of `sparse_steps` steps at `final_sparsity` with a dense phase of
    `dense_steps` steps (the mask is reset to all ones, so pruned weights can
    grow back from zero), and from `end_step` on it stays sparse at
    `final_sparsity`: the last phase is always sparse.

    ```python
    t = step - begin_step
    position = t % (sparse_steps + dense_steps)
    sparse = step >= end_step or (t >= 0 and position < sparse_steps)
    sparsity = final_sparsity if sparse else 0.0
    should_prune = (begin_step <= step < end_step and position in (0, sparse_steps)) or step == end_step
    ```

    Each phase's mask is computed once, at its first step (a dense phase's
    mask is all ones); within a sparse phase the pruned weights stay at zero.
    A dense phase that `end_step` falls into is cut short there.

    Example (the AC/DC layout for CIFAR in steps: 10 dense, then 20 sparse and
    20 dense in turn, sparse fine-tuning from step 170):

    >>> schedule = AlternatingSparsity(0.9, begin_step=10, end_step=170, sparse_steps=20, dense_steps=20)
    >>> [round(float(schedule(step)[1]), 2) for step in (5, 10, 29, 30, 50, 169, 170, 10_000)]
    [0.0, 0.9, 0.9, 0.0, 0.9, 0.0, 0.9, 0.9]
    >>> [int(step) for step, prune in zip(range(200), schedule(tf.range(200))[0]) if prune]
    [10, 30, 50, 70, 90, 110, 130, 150, 170]

    Args:
      final_sparsity: sparsity of every sparse phase and of the end, in `[0, 1)`.
      begin_step: first step of the first sparse phase (the dense warm-up
        ends there), an integer >= 0.
      end_step: first step of the final sparse phase, an integer >= `begin_step`.
      sparse_steps: length of each sparse phase, an integer >= 1.
      dense_steps: length of each dense phase, an integer >= 1.

    Raises:
      ValueError, TypeError: an argument is outside its range or of the wrong type.

    References:
      A. Peste, E. Iofinova, A. Vladu, D. Alistarh. AC/DC: Alternating
      Compressed/DeCompressed Training of Deep Neural Networks. NeurIPS 2021.
      https://arxiv.org/abs/2106.12379
    """

    compiles_eagerly = True
    handles_every_step = True  # clips the step before it subtracts
    _prunes_only_in_window = True

    step_arguments = ("begin_step", "end_step", "sparse_steps", "dense_steps")

    def __init__(
        self,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        *,
        sparse_steps: int,
        dense_steps: int,
    ) -> None:
        self.final_sparsity = v.check_sparsity("final_sparsity", final_sparsity)
        self.begin_step = v.check_step("begin_step", begin_step)
        self.end_step = v.check_end_step(end_step, self.begin_step)
        self.sparse_steps = v.check_int("sparse_steps", sparse_steps, minimum=1)
        self.dense_steps = v.check_int("dense_steps", dense_steps, minimum=1)
        if self.sparse_steps + self.dense_steps > v.MAX_STEP:
            raise v.invalid(
                "sparse_steps` + `dense_steps",
                f"at most {v.MAX_STEP} (a period in int64 steps)",
                v.received(sparse_steps=self.sparse_steps, dense_steps=self.dense_steps),
            )

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        begin, end = self.begin_step, self.end_step
        sparse_steps, dense_steps = self.sparse_steps, self.dense_steps
        period = sparse_steps + dense_steps
        # One clip: every step before the window stands at `begin_step - 1`, the last step of a
        # dense phase (as the warm-up is); every step after it at `end_step + 1`.
        widened = clip(step, begin - 1, end + 1)
        # The position in the period is counted from the start of the longer phase, so
        # that the two phase starts are the multiples of its length (the only ones below
        # the period, which is at most twice as long): one modulo tells a phase start.
        longer = max(sparse_steps, dense_steps)
        sparse_first = sparse_steps >= dense_steps
        phase = (begin - (0 if sparse_first else dense_steps)) % period  # folded in Python
        position = tf.math.floormod(widened - phase if phase else widened, period)
        left = end - widened  # 0 at end_step, -1 after it
        # An event where the distance past a phase start or the steps left is 0: never at
        # `end_step + 1` (left is -1), nor at `begin_step - 1` (the end of a dense phase),
        # unless dense phases are one step long: then also the steps gone must not be -1.
        if dense_steps == 1:  # (then the sparse phase comes first)
            left = tf.minimum(left, widened - begin if begin else widened)
        offset = tf.minimum(tf.math.floormod(position, longer), left)
        events = tf.equal(offset, 0)
        # Sparse in a sparse phase or from end_step on (left <= 0), in one compare: sparse
        # phases first, min(position, left + sparse_steps - 1) < sparse_steps; dense phases
        # first, max(position, dense_steps - left) >= dense_steps.
        if sparse_first:
            sparse = tf.less(tf.minimum(position, (end + sparse_steps - 1) - widened), sparse_steps)
        else:
            sparse = tf.greater_equal(tf.maximum(position, widened - (end - dense_steps)), dense_steps)
        # The final sparsity in float32 as the other families' casts give it: a subnormal flushed to 0.
        final = np.float32(self.final_sparsity)
        final = final if final >= np.finfo(np.float32).tiny else np.float32(0.0)
        return events, select(sparse, tf.constant(final, tf.float32), 0.0)
