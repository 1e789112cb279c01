"""Schedule cost: one `schedule(step)` call eager and inside a graph, and its op count.

The in-graph time is measured the way training uses a schedule: an int64 scalar
step, inside a `tf.function`, here a `tf.while_loop` of many calls whose
per-iteration time is reported minus that of the same loop with a trivial body
(measured in the same run).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_model_optimization as tfmot

from benchmarks._timing import best_of
from schedules import CubicSparsity, CyclicSparsity, ExponentialSparsity, StepSparsity


def schedules_under_test() -> dict:
    return {
        "ExponentialSparsity": ExponentialSparsity(0.0, 0.9, 100, 10_000, 100),
        "ExponentialSparsity.from_rate": ExponentialSparsity.from_rate(0.1, 0.9, 100, 100),
        "CubicSparsity": CubicSparsity(0.0, 0.9, 100, 10_000, 100),
        "StepSparsity (4 stairs)": StepSparsity.uniform(0.0, 0.9, 100, 10_000, 4),
        "CyclicSparsity": CyclicSparsity(0.0, 0.9, 100, 10_000, 3, 100),
        "tfmot PolynomialDecay": tfmot.sparsity.keras.PolynomialDecay(0.0, 0.9, 100, 10_000, frequency=100),
        "tfmot ConstantSparsity": tfmot.sparsity.keras.ConstantSparsity(0.9, 100, frequency=100),
    }


def op_count(schedule) -> int:
    """Operations in the traced graph of one call with an int64 scalar step (placeholder excluded)."""
    function = tf.function(lambda step: schedule(step))
    graph = function.get_concrete_function(tf.TensorSpec([], tf.int64)).graph
    return sum(1 for op in graph.get_operations() if op.type not in ("Placeholder", "NoOp", "Identity"))


def _loop(body, iterations: int):
    @tf.function
    def run():
        def step_fn(i, total):
            return i + 1, total + body(i)

        return tf.while_loop(lambda i, _: i < iterations, step_fn, (tf.constant(0, tf.int64), tf.constant(0.0)))

    return run


def run(quick: bool = False) -> list[dict]:
    iterations = 2_000 if quick else 100_000
    eager_calls = 50 if quick else 1_000
    repeats = 2 if quick else 7
    empty = _loop(lambda i: tf.cast(i, tf.float32), iterations)
    empty()
    rows = []
    for name, schedule in schedules_under_test().items():

        def body(i, s=schedule):
            should_prune, sparsity = s(i)
            return tf.cast(should_prune, tf.float32) + sparsity

        loop = _loop(body, iterations)
        loop()
        graph_seconds = best_of(loop, repeats) - best_of(empty, repeats)
        step = tf.constant(5_000, tf.int64)
        schedule(step)

        def eager(s=schedule, step=step):
            for _ in range(eager_calls):
                s(step)

        eager_seconds = best_of(eager, max(1, repeats // 2))
        rows.append(
            {
                "schedule": name,
                "graph_us_per_call": max(graph_seconds, 0.0) / iterations * 1e6,
                "eager_us_per_call": eager_seconds / eager_calls * 1e6,
                "ops": op_count(schedule),
            }
        )
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'schedule':<32}{'in graph (us)':>14}{'eager (us)':>12}{'ops':>6}"]
    for r in rows:
        lines.append(f"{r['schedule']:<32}{r['graph_us_per_call']:>14.2f}{r['eager_us_per_call']:>12.1f}{r['ops']:>6}")
    return "\n".join(lines)
