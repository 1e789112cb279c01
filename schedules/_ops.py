"""Graph helpers the families share, chosen for what they cost per call.

tfmot calls a schedule twice per pruned layer per training step with an int64
scalar step, so an op's fixed cost counts more than its arithmetic. `select` is
`tf.where` without its broadcasting: `SelectV2` works out broadcast shapes at
every call (about 2.7 us per pin in a `tf.while_loop` of calls on this
project's machine), `Select` on scalars about 1.1 us. `clip` is one op where
`tf.clip_by_value` is two.

>>> import tensorflow as tf
>>> float(select(tf.constant(True), 0.5, tf.constant(0.25, tf.float64)))
0.5
>>> select(tf.constant([True, False]), 0.5, tf.constant([0.25, 0.75], tf.float64)).numpy().tolist()
[0.5, 0.75]
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

__all__ = ["clip", "select"]


def select(condition: tf.Tensor, x: Any, y: Any) -> tf.Tensor:
    """`tf.where(condition, x, y)`: `Select` where everything is a scalar, `SelectV2` otherwise.

    `x` or `y` may be a Python number, made a constant of the other's dtype.
    """
    if not isinstance(x, tf.Tensor):
        x = tf.constant(x, y.dtype)
    if not isinstance(y, tf.Tensor):
        y = tf.constant(y, x.dtype)
    if condition.shape.rank == 0 and x.shape.rank == 0 and y.shape.rank == 0:
        return tf.raw_ops.Select(condition=condition, x=x, y=y)
    return tf.where(condition, x, y)


def clip(values: tf.Tensor, low: int | float, high: int | float) -> tf.Tensor:
    """`values` clipped to `[low, high]`, in their dtype: one `ClipByValue` op.

    >>> clip(tf.constant([-2**63, 5, 15, 2**63 - 1], tf.int64), 9, 21).numpy().tolist()
    [9, 9, 15, 21]
    """
    return tf.raw_ops.ClipByValue(
        t=values,
        clip_value_min=tf.constant(low, values.dtype),
        clip_value_max=tf.constant(high, values.dtype),
    )
