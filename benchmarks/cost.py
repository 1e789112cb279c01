"""Schedule cost: one `schedule(step)` call eager and inside a graph, and its op count.

The in-graph time is measured the way training uses a schedule: an int64 scalar
step, inside a `tf.function`, here a `tf.while_loop` with `CALLS` calls at distinct
steps per iteration, whose time is reported per call minus that of the same loop
with a trivial body (the same bookkeeping, no schedule). Each call is used three
ways (`USES`): both results ("graph", what a pruning step uses); the events only
("events": the graph drops the sparsity's ops); and "step", as tfmot's wrapper at
every training step: the events, and a second call's sparsity inside a `tf.cond`
on them, whose untaken branch TensorFlow still walks node by node. Every
schedule's loops (and the trivial ones) run once per round, in an order shuffled
anew each round, for `ROUNDS` rounds; each round's cost is divided by
`PolynomialDecay`'s in that round, and the table reports the medians (these
machines are noisy: timing one schedule after another gave ratios off by a factor
of two). The eager calls are timed the same way. Three columns count instead:
`ops`, the ops one call needs (`op_count`); "run: events" and "step", the nodes
TensorFlow runs for those two uses after its graph optimizer (`ops_run`).
"""

from __future__ import annotations

import dataclasses
import functools
import statistics

import tensorflow as tf

from benchmarks._families import Case, Window, every_family
from benchmarks._timing import interleaved, median_ratio
from schedules import CyclicSparsity

BASELINE = "tfmot PolynomialDecay"
#: 45, not 15: at 15 rounds the same graph (the cubic's) came out anywhere from 0.73 to 0.89 of
#: `PolynomialDecay` from one run to the next; at 45 the spread of identical schedules is about 0.05.
ROUNDS = 45


#: The cyclic over a long window (10**6 steps in three cycles of two lengths, 10,000 events), as
#: the overhead benchmark's: the same formula as over a short one.
LONG_CYCLIC = "CyclicSparsity (10**6 steps, 3 cycles)"


def schedules_under_test() -> dict:
    """Label -> `Case`: every family over steps 100..10,000, a mask update every 100 steps;
    then the cyclic over a long window (`LONG_CYCLIC`)."""
    window = Window(final_sparsity=0.9, begin_step=100, end_step=10_000, frequency=100)
    cases = every_family(window)
    longer = dataclasses.replace(window, end_step=1_000_099).ramp()
    cases[LONG_CYCLIC] = Case("cyclic", CyclicSparsity(**longer, num_cycles=3, frequency=window.frequency))
    return cases


def op_count(schedule) -> int:
    """Operations one call needs, traced with an int64 scalar step: those its results depend on,
    in its graph and in the bodies of the functions it calls (a schedule of ours keeps its
    sparsity in one), placeholders, identities and the calls themselves excluded."""
    function = tf.function(lambda step: schedule(step))
    graph = function.get_concrete_function(tf.TensorSpec([], tf.int64)).graph
    skipped = ("Placeholder", "NoOp", "Identity", "PartitionedCall", "StatefulPartitionedCall")
    outputs = [t.op for t in tf.nest.flatten(graph.structured_outputs)]
    count = sum(1 for op in _reachable(outputs, lambda op: [t.op for t in op.inputs]) if op.type not in skipped)
    for body in graph.as_graph_def().library.function:  # each body from its results back, by node name
        nodes = {node.name: node for node in body.node_def}
        results = [value.split(":")[0] for value in body.ret.values()]
        needed = _reachable(results, functools.partial(_body_inputs, nodes))
        count += sum(1 for name in needed if name in nodes and nodes[name].op not in skipped)
    return count


def _body_inputs(nodes: dict, name: str) -> list[str]:
    """The names of the nodes a function body's node `name` reads (none for an argument)."""
    return [i.lstrip("^").split(":")[0] for i in nodes[name].input] if name in nodes else []


def _reachable(starts: list, inputs_of) -> set:
    """`starts` and everything they depend on, through `inputs_of`."""
    seen, todo = set(), list(starts)
    while todo:
        item = todo.pop()
        if item not in seen:
            seen.add(item)
            todo.extend(inputs_of(item))
    return seen


def ops_run(schedule, use: str = "events") -> int:
    """Nodes that TensorFlow runs for one call used as `use` says (`USES`), once its graph
    optimizer (Grappler) has folded constants, dropped unused ops and lowered `tf.cond` to
    switches: the nodes of the partition graph of a run. For "step" that includes the untaken
    branch, whose nodes a step visits too (a function call is one)."""
    schedule(0)  # an eager call first: a schedule may evaluate something once, eagerly
    graph = tf.Graph()
    with graph.as_default():
        step = tf.compat.v1.placeholder(tf.int64, [])
        should_prune, sparsity = schedule(step)
        output = _used(use, should_prune, sparsity, lambda: schedule(step)[1])
        with tf.compat.v1.Session(graph=graph) as session:
            metadata = tf.compat.v1.RunMetadata()
            options = tf.compat.v1.RunOptions(output_partition_graphs=True)
            session.run(output, {step: 5_000}, options=options, run_metadata=metadata)
    skipped = ("_Arg", "_Retval", "_Recv", "_Send", "NoOp", "Identity")
    return sum(1 for g in metadata.partition_graphs for node in g.node if node.op not in skipped)


#: Schedule calls per loop iteration, at distinct steps (as tfmot makes one call per pruned
#: layer): the loop's own bookkeeping is shared by more calls, so it blurs them less.
CALLS = 10


def _loop(body, iterations: int):
    """A `tf.function` running `body` `iterations` times in a `tf.while_loop`.

    The loop carries `CALLS` steps (the j-th starts at j and grows by `CALLS` each
    iteration) and `CALLS` bool and float values, so that a trivial body has the
    same bookkeeping as a real one (the steps' additions, a cast and two additions
    per call) and nothing else: the difference is the schedule's ops alone.
    """

    @tf.function
    def run():
        def step_fn(i, total, steps, flags, values):
            return i + 1, total + body(steps, flags, values), [s + CALLS for s in steps], flags, values

        steps = [tf.constant(j, tf.int64) for j in range(CALLS)]
        flags = [tf.constant(j % 2 == 0) for j in range(CALLS)]
        values = [tf.constant(float(j)) for j in range(CALLS)]
        init = (tf.constant(0, tf.int64), tf.constant(0.0), steps, flags, values)
        return tf.while_loop(lambda i, *_: i < iterations, step_fn, init)

    return run


#: What a loop uses of each call: "both" results; "events" only (the graph drops the sparsity's
#: ops); "step": as tfmot's wrapper at every training step, the events, and the sparsity of a
#: second call inside a `tf.cond` on them (at steps that do not prune, its untaken branch).
USES = ("both", "events", "step")


def _body(schedule, use: str = "both"):
    """Calls of `schedule` whose results are summed, used as `use` says (`USES`)."""

    def body(steps, flags, values):
        total = tf.constant(0.0)
        for step in steps:
            should_prune, sparsity = schedule(step)
            total = total + _used(use, should_prune, sparsity, lambda step=step: schedule(step)[1])
        return total

    return body


def _trivial_body(use: str = "both"):
    """The same bookkeeping as `_body`'s with the loop's carried values in place of a schedule's results."""

    def body(steps, flags, values):
        total = tf.constant(0.0)
        for flag, value in zip(flags, values, strict=True):
            total = total + _used(use, flag, value, lambda value=value: value)
        return total

    return body


def _used(use: str, should_prune, sparsity, sparsity_again) -> tf.Tensor:
    flag = tf.cast(should_prune, tf.float32)
    if use == "events":
        return flag
    if use == "step":
        return flag + tf.cond(should_prune, sparsity_again, lambda: tf.constant(0.0))
    return flag + sparsity


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


def run(quick: bool = False) -> list[dict]:
    # Quick: every family once through the harness, at sizes that only check it works.
    iterations, eager_calls, rounds = (20, 10, 2) if quick else (2_000, 200, ROUNDS)
    cases = schedules_under_test()
    # Keyed (name, use); name "" is the trivial loop.
    loops = {(name, use): _loop(_body(case.schedule, use), iterations) for name, case in cases.items() for use in USES}
    loops.update({("", use): _loop(_trivial_body(use), iterations) for use in USES})
    eagers = {name: _eager(case.schedule, eager_calls) for name, case in cases.items()}
    for fn in [*loops.values(), *eagers.values()]:  # warm-up: trace, and compile the eager calls
        fn()
    graph_times = interleaved(loops, rounds)
    graph, events, step = (
        _per_call(
            {name: v for (name, u), v in graph_times.items() if name and u == use},
            graph_times[("", use)],
            iterations * CALLS,
        )
        for use in USES
    )
    eager = _per_call(interleaved(eagers, rounds), [0.0] * rounds, eager_calls)
    rows = []
    for name, case in cases.items():
        rows.append(
            {
                "schedule": name,
                "family": case.family,
                "graph_us_per_call": statistics.median(graph[name]),
                "graph_ratio_to_polynomial_decay": median_ratio(graph[name], graph[BASELINE]),
                "events_us_per_call": statistics.median(events[name]),
                "events_ratio_to_polynomial_decay": median_ratio(events[name], events[BASELINE]),
                "step_us_per_call": statistics.median(step[name]),
                "step_ratio_to_polynomial_decay": median_ratio(step[name], step[BASELINE]),
                "eager_us_per_call": statistics.median(eager[name]),
                "eager_ratio_to_polynomial_decay": median_ratio(eager[name], eager[BASELINE]),
                "ops": op_count(case.schedule),
                "events_ops_run": ops_run(case.schedule, "events"),
                "step_ops_run": ops_run(case.schedule, "step"),
                "rounds": rounds,
            }
        )
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [
        f"{'schedule':<40}{'graph us':>9}{'ratio':>7}{'events us':>10}{'ratio':>7}{'step us':>9}{'ratio':>7}"
        f"{'eager us':>10}{'ratio':>7}{'ops':>5}{'run: events':>12}{'step':>6}"
    ]
    for r in rows:
        lines.append(
            f"{r['schedule']:<40}{r['graph_us_per_call']:>9.2f}{r['graph_ratio_to_polynomial_decay']:>7.2f}"
            f"{r['events_us_per_call']:>10.2f}{r['events_ratio_to_polynomial_decay']:>7.2f}"
            f"{r['step_us_per_call']:>9.2f}{r['step_ratio_to_polynomial_decay']:>7.2f}"
            f"{r['eager_us_per_call']:>10.1f}{r['eager_ratio_to_polynomial_decay']:>7.2f}{r['ops']:>5}"
            f"{r['events_ops_run']:>12}{r['step_ops_run']:>6}"
        )
    return "\n".join(lines)
