"""Schedule cost: one `schedule(step)` call eager and inside a graph, and its op count.

The in-graph time is measured the way training uses a schedule: an int64 scalar
step, inside a `tf.function`, here a `tf.while_loop` of many calls whose
per-iteration time is reported minus that of the same loop with a trivial body
(measured in the same run).
"""

from __future__ import annotations

import tensorflow as tf

from benchmarks._families import Window, every_family
from benchmarks._timing import best_of


def schedules_under_test() -> dict:
    """Label -> `Case`: every family over steps 100..10,000, a mask update every 100 steps."""
    return every_family(Window(final_sparsity=0.9, begin_step=100, end_step=10_000, frequency=100))


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
    # Quick: every family once through the harness, at sizes that only check it works.
    iterations = 200 if quick else 100_000
    eager_calls = 10 if quick else 1_000
    repeats = 1 if quick else 7
    empty = _loop(lambda i: tf.cast(i, tf.float32), iterations)
    empty()
    rows = []
    for name, case in schedules_under_test().items():
        schedule = case.schedule

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
                "family": case.family,
                "graph_us_per_call": max(graph_seconds, 0.0) / iterations * 1e6,
                "eager_us_per_call": eager_seconds / eager_calls * 1e6,
                "ops": op_count(schedule),
            }
        )
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'schedule':<40}{'in graph (us)':>14}{'eager (us)':>12}{'ops':>6}"]
    for r in rows:
        lines.append(f"{r['schedule']:<40}{r['graph_us_per_call']:>14.2f}{r['eager_us_per_call']:>12.1f}{r['ops']:>6}")
    return "\n".join(lines)
