"""Alternating sparsity: dense and sparse phases in turn (AC/DC, dense-sparse-dense)."""

from __future__ import annotations

import tensorflow as tf

from schedules import _validation as v
from schedules.base import SparsitySchedule, register

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

    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        begin, end = self.begin_step, self.end_step
        # Clip before the modulo: no overflow, and the same phases at any step.
        clipped = tf.clip_by_value(step, begin, end)
        position = tf.math.floormod(clipped - begin if begin else clipped, self.sparse_steps + self.dense_steps)
        at_end = tf.equal(clipped, end)  # from end_step on
        sparse = tf.logical_and(step >= begin, tf.logical_or(position < self.sparse_steps, at_end))
        # Inside [begin, end] (where the clipped step is the step): a phase starts, or the end.
        starts = tf.logical_or(tf.logical_or(tf.equal(position, 0), tf.equal(position, self.sparse_steps)), at_end)
        events = tf.logical_and(tf.equal(step, clipped), starts)
        return events, tf.cast(sparse, tf.float64) * self.final_sparsity
