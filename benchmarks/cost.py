"""Schedule cost: one `schedule(step)` call eager and inside a graph, and its op count.

The in-graph time is measured the way training uses a schedule: an int64 scalar
step, inside a `tf.function`, here a `tf.while_loop` of many calls whose
per-iteration time is reported minus that of the same loop with a trivial body.
Every schedule's loop (and the trivial one) runs once per round, in turn, for
`ROUNDS` rounds; each round's cost is divided by `PolynomialDecay`'s in that round,
and the table reports the medians (these machines are noisy: timing one schedule
after another gave ratios off by a factor of two). The eager calls are timed the
same way. `ops` counts the traced graph's ops; `ops run` those left after
TensorFlow's graph optimizer (Grappler), which is what executes.
"""

from __future__ import annotations

import statistics

import tensorflow as tf

from benchmarks._families import Window, every_family
from benchmarks._timing import interleaved

BASELINE = "tfmot PolynomialDecay"
ROUNDS = 15


def schedules_under_test() -> dict:
    """Label -> `Case`: every family over steps 100..10,000, a mask update every 100 steps."""
    return every_family(Window(final_sparsity=0.9, begin_step=100, end_step=10_000, frequency=100))


def op_count(schedule) -> int:
    """Operations in the traced graph of one call with an int64 scalar step (placeholder excluded)."""
    function = tf.function(lambda step: schedule(step))
    graph = function.get_concrete_function(tf.TensorSpec([], tf.int64)).graph
    return sum(1 for op in graph.get_operations() if op.type not in ("Placeholder", "NoOp", "Identity"))


def ops_run(schedule) -> int:
    """Ops that execute for one call once Grappler has optimized the graph (constants
    folded, divisions by constants made products), from the partition graph of a run."""
    schedule(0)  # an eager call first: a schedule may evaluate something once, eagerly
    graph = tf.Graph()
    with graph.as_default():
        step = tf.compat.v1.placeholder(tf.int64, [])
        outputs = schedule(step)
        with tf.compat.v1.Session(graph=graph) as session:
            metadata = tf.compat.v1.RunMetadata()
            options = tf.compat.v1.RunOptions(output_partition_graphs=True)
            session.run(outputs, {step: 5_000}, options=options, run_metadata=metadata)
    skipped = ("_Arg", "_Retval", "_Recv", "_Send", "NoOp", "Identity")
    return sum(1 for g in metadata.partition_graphs for node in g.node if node.op not in skipped)


def _loop(body, iterations: int):
    @tf.function
    def run():
        def step_fn(i, total):
            return i + 1, total + body(i)

        return tf.while_loop(lambda i, _: i < iterations, step_fn, (tf.constant(0, tf.int64), tf.constant(0.0)))

    return run


def _body(schedule):
    def body(i):
        should_prune, sparsity = schedule(i)
        return tf.cast(should_prune, tf.float32) + sparsity

    return body


def _eager(schedule, calls: int):
    step = tf.constant(5_000, tf.int64)

    def eager():
        for _ in range(calls):
            schedule(step)

    return eager


def _per_call(times: dict[str, list[float]], empty: list[float], count: int) -> dict[str, list[float]]:
    """Microseconds per call in each round, the trivial loop's time of that round taken off."""
    return {
        name: [max(t - e, 0.0) / count * 1e6 for t, e in zip(values, empty, strict=True)]
        for name, values in times.items()
    }


def _median_ratio(values: list[float], baseline: list[float]) -> float:
    return statistics.median(v / b if b > 0 else float("nan") for v, b in zip(values, baseline, strict=True))


def run(quick: bool = False) -> list[dict]:
    # Quick: every family once through the harness, at sizes that only check it works.
    iterations, eager_calls, rounds = (200, 10, 2) if quick else (20_000, 200, ROUNDS)
    cases = schedules_under_test()
    loops = {name: _loop(_body(case.schedule), iterations) for name, case in cases.items()}
    loops[""] = _loop(lambda i: tf.cast(i, tf.float32), iterations)  # the trivial body
    eagers = {name: _eager(case.schedule, eager_calls) for name, case in cases.items()}
    for fn in [*loops.values(), *eagers.values()]:  # warm-up: trace, and compile the eager calls
        fn()
    graph_times = interleaved(loops, rounds)
    empty = graph_times[""]
    graph = _per_call({k: v for k, v in graph_times.items() if k}, empty, iterations)
    eager = _per_call(interleaved(eagers, rounds), [0.0] * rounds, eager_calls)
    rows = []
    for name, case in cases.items():
        rows.append(
            {
                "schedule": name,
                "family": case.family,
                "graph_us_per_call": statistics.median(graph[name]),
                "graph_ratio_to_polynomial_decay": _median_ratio(graph[name], graph[BASELINE]),
                "eager_us_per_call": statistics.median(eager[name]),
                "eager_ratio_to_polynomial_decay": _median_ratio(eager[name], eager[BASELINE]),
                "ops": op_count(case.schedule),
                "ops_run": ops_run(case.schedule),
                "rounds": rounds,
            }
        )
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'schedule':<40}{'graph us':>9}{'ratio':>7}{'eager us':>10}{'ratio':>7}{'ops':>5}{'ops run':>9}"]
    for r in rows:
        lines.append(
            f"{r['schedule']:<40}{r['graph_us_per_call']:>9.2f}{r['graph_ratio_to_polynomial_decay']:>7.2f}"
            f"{r['eager_us_per_call']:>10.1f}{r['eager_ratio_to_polynomial_decay']:>7.2f}{r['ops']:>5}{r['ops_run']:>9}"
        )
    return "\n".join(lines)
