"""Training overhead: step time of the same model under each schedule, interleaved.

One pruned variant per family of `schedules.registry.families()` (ours, the two
compositions and tfmot's two), and a second, identical copy of `PolynomialDecay`
(`COPY`): how far two copies of one schedule land from each other is this run's
noise floor. The pruned variants are train functions of one pruned model (the
same variables), one per schedule, each run from the same steps; every one updates
the masks every `frequency` steps from step 0 (the cyclic also at each cycle's
last step: two more updates beside 400 or 800 timed ones), so they differ in the
schedule's ops and, as the copy shows, in up to a percent or two that each
traced function carries of its own. They and an unpruned model run round after round in a
shuffled order, and each round's time is divided by `PolynomialDecay`'s time in
that round. The table reports the median ratio over rounds. The timing runs in a
process of its own with one thread per TensorFlow pool (`THREADS`).

Three models: the demo's small CNN, an MLP, and a deep, narrow MLP with
`DEEP_LAYERS` pruned layers, where a schedule's share of the step is visible
(tfmot calls it twice per pruned layer per step). On the deep model every
schedule has `DEEP_COPIES` train functions (each carries an offset of its own):
its row is the mean of their ratios, each against the round's mean time of
`PolynomialDecay`'s copies, and the "copies" column gives their range. "added ms/100
layers" is what the schedule itself adds to a step, in milliseconds per 100
pruned layers: the median over rounds of its time minus that of `MINIMAL` (a
schedule of two ops that updates the masks at the same steps), per pruned layer,
times 100. "nodes/step" counts, instead of timing, the nodes of each train
function's graph as TensorFlow runs it (`walked_nodes`), and its ratio to
`PolynomialDecay`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow.python.eager import context

from benchmarks._families import Case, Window, every_family
from benchmarks._timing import interleaved, median_ratio
from schedules import CyclicSparsity, StepSparsity
from schedules.inspection import prunable_weights
from schedules.models import build_cnn

BASELINE = "tfmot PolynomialDecay"
FOREVER = 10**9
#: The reference for "what the schedule adds": as cheap as a schedule can be.
MINIMAL = "minimal (2 ops)"
#: A second `PolynomialDecay`, the same in every way: the spread between the two is the noise floor.
COPY = "tfmot PolynomialDecay (a second copy)"
#: Pruned layers of the deep model (and of its sliver in the quick mode).
DEEP_LAYERS, QUICK_DEEP_LAYERS = 50, 3
#: Rounds per model (at 9 to 15, in a fixed order, two copies of one schedule came out up to 0.03 apart).
ROUNDS = 40
#: Train functions per schedule on the deep model, and its rounds. Each traced train function
#: carries an offset of its own (three of `PolynomialDecay`'s came out at 0.966, 1.007 and 1.026 of
#: their mean in one run), larger than a bar of 1.02: a row is the mean of its copies' ratios.
DEEP_COPIES, DEEP_ROUNDS = 3, 20
#: Threads in each of TensorFlow's two pools (inter-op, intra-op) while timing. With the default
#: pools (sized by TensorFlow, on 2 cores), identical train functions of one model landed up to 5%
#: apart, and not the same ones from run to run (the MLP's copy at 0.997 in one run, 1.047 in the
#: next); with one thread each, five copies within 0.7% of each other on the MLP and 0.5% to 2.2% on
#: the deep model, in checks outside the benchmark. Every op of the schedule then lies on the step's
#: one path (none of it overlaps other work: the most it can add). Pools are set once per process,
#: before TensorFlow runs an op, so the timing runs in a process of its own (`run`), and the other
#: sections keep every core.
THREADS = 1


class MinimalSchedule(tfmot.sparsity.keras.PruningSchedule):
    """`step % frequency == 0` and a constant: the least a schedule can compute."""

    def __init__(self, sparsity: float, frequency: int) -> None:
        self.sparsity, self.frequency = sparsity, frequency

    def __call__(self, step):
        return tf.equal(tf.math.floormod(step, self.frequency), 0), tf.constant(self.sparsity, tf.float32)

    def get_config(self) -> dict:
        return {"class_name": "MinimalSchedule", "config": {"sparsity": self.sparsity, "frequency": self.frequency}}


#: The cyclic over a long window with many events (10**6 steps in three cycles of two lengths, an
#: event every `frequency` steps), as in the cost table.
LONG_CYCLIC = "CyclicSparsity (10**6 steps, 3 cycles)"

#: The variants the quick mode times: the harness on a sliver.
QUICK_VARIANTS = ("unpruned", MINIMAL, BASELINE, COPY, "CubicSparsity")


def variants(frequency: int, steps_per_round: int, rounds: int) -> dict[str, Case | None]:
    """Label -> `Case` (`None` for the unpruned model): every family, each updating its masks every `frequency` steps.

    The updates fall on the same steps for all: every `frequency` steps from
    step 0. Each ramp runs over a window far longer than the run (`FOREVER`
    steps), the staircase has a stair every `frequency` steps, and AC/DC's phases
    are `frequency` steps long. The cyclic's three cycles span the run (a whole
    number of `frequency` steps each, so every cycle starts on the grid), as a
    user's cycles of thousands of steps, and prunes at each cycle's last step too.
    `LONG_CYCLIC`'s first cycle spans the run.
    """
    horizon = steps_per_round * (rounds + 2)
    boundaries = list(range(0, horizon + frequency, frequency))
    cycle = -(-horizon // (3 * frequency)) * frequency  # three cycles of whole grids cover the run
    window = Window(final_sparsity=0.8, begin_step=0, end_step=FOREVER, frequency=frequency)
    cases = every_family(
        window,
        {
            "step": (
                f"StepSparsity ({len(boundaries)} stairs)",
                StepSparsity(boundaries, list(np.linspace(0.1, 0.8, len(boundaries)))),
            ),
            "cyclic": (
                "CyclicSparsity",
                CyclicSparsity(0.0, 0.8, 0, 3 * cycle - 1, num_cycles=3, frequency=frequency),
            ),
        },
    )
    baseline = cases[BASELINE].schedule
    copy = Case("polynomial", type(baseline)(**baseline.get_config()["config"]))
    cases[LONG_CYCLIC] = Case("cyclic", CyclicSparsity(0.0, 0.8, 0, 10**6 - 1, num_cycles=3, frequency=frequency))
    return {"unpruned": None, MINIMAL: Case("minimal", MinimalSchedule(0.8, frequency)), **cases, COPY: copy}


def deep_mlp(layers: int, width: int = 16):
    """`layers` Dense layers of `width` units (the last of 10): a deep, narrow network."""
    return keras.Sequential(
        [
            keras.layers.Input((width,)),
            *[keras.layers.Dense(width, activation="relu") for _ in range(layers - 1)],
            keras.layers.Dense(10),
        ]
    )


def models(deep_layers: int = DEEP_LAYERS) -> dict:
    def mlp():
        return keras.Sequential(
            [
                keras.layers.Input((64,)),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10),
            ]
        )

    return {
        "small CNN (8x8x1)": (lambda: build_cnn(keras), (8, 8, 1)),
        "MLP (64-128-64-10)": (mlp, (64,)),
        f"deep MLP ({deep_layers} x 16)": (lambda: deep_mlp(deep_layers), (16,)),
    }


def pruned_layers(build) -> int:
    """How many layers `prune_low_magnitude` wraps in the model `build` makes."""
    return len(prunable_weights(build()))


class _Runner:
    """Runs `steps` training steps by Keras' compiled `train_function` (what `fit` runs per
    step, without `fit`'s own per-call overhead to drown the difference).

    `prepare` (untimed) sets the pruned layers' step to where this runner's run starts: the
    j-th run of every runner starts at step `j * steps`, so that runners sharing one model
    see the same steps, round after round.
    """

    def __init__(
        self,
        train_function,
        iterator,
        steps: int,
        step_variables: list,
        traces: list | None = None,
        nodes: int | None = None,
    ) -> None:
        self.train_function, self.iterator, self.steps, self.nodes = train_function, iterator, steps, nodes
        self.step_variables, self.runs = step_variables, 0
        # The schedule's calls while traced (a pruned model's runner): more later means traced again.
        self.traces, self.first_traces = traces, len(traces or ())

    def prepare(self) -> None:
        if self.step_variables:
            keras.backend.batch_set_value([(v, self.runs * self.steps) for v in self.step_variables])

    def __call__(self) -> None:
        for _ in range(self.steps):
            self.train_function(self.iterator)
        self.runs += 1


def _compiled_model(build, input_shape, batch_size: int, schedule=None):
    """A fresh model (pruned by `schedule`, if any), compiled, and an endless iterator of batches."""
    keras.utils.set_random_seed(0)
    model = build()
    if schedule is not None:
        model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16 * batch_size, *input_shape)).astype(np.float32)
    y = rng.integers(0, 10, size=16 * batch_size)
    return model, iter(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat())


def _unpruned_runner(build, input_shape, steps: int, batch_size: int) -> _Runner:
    model, iterator = _compiled_model(build, input_shape, batch_size)
    train_function = model.make_train_function()
    return _Runner(train_function, iterator, steps, [], nodes=walked_nodes(train_function, iterator))


def _pruned_runners(build, input_shape, schedules: dict, steps: int, batch_size: int) -> dict[str, _Runner]:
    """One pruned model and a train function per schedule: every pruned layer is handed the
    schedule and the train function traced again.

    All of them train the same variables (weights, masks, optimizer slots). With TensorFlow's
    default thread pools (see `THREADS`), six identical models with one `PolynomialDecay` came
    out up to 7% apart on the MLP (the same model in one place of the build order was slower in
    two runs), four train functions of one model within 1% (though in a run of fifteen, two
    identical ones came out 5% apart). A train function traced again would take the last
    schedule handed over: `check_traced` says whether any was.
    """
    model, iterator = _compiled_model(build, input_shape, batch_size, next(iter(schedules.values())))
    callback = tfmot.sparsity.keras.UpdatePruningStep()
    callback.set_model(model)
    callback.on_train_begin()  # pruning_step: -1 -> 0, as in fit
    wrappers = callback.prunable_layers  # every PruneLowMagnitude, nested ones included
    # A first train function, run once, creates what Keras creates at the first step (the
    # optimizer's slots, the loss metric's variables): every variant is then traced alike.
    model.make_train_function()(iterator)
    runners = {}
    for name, schedule in schedules.items():
        calls = []

        def traced(step, schedule=schedule, calls=calls):
            calls.append(step)
            return schedule(step)

        for wrapper in wrappers:  # tfmot's Pruning object calls its `_pruning_schedule` when traced
            wrapper.pruning_schedule, wrapper.pruning_obj._pruning_schedule = schedule, traced
        train_function = model.make_train_function(force=True)
        nodes = walked_nodes(train_function, iterator)  # traces it now, with this schedule
        if not calls:
            raise RuntimeError(f"{name}: the traced train function did not call the schedule")
        runners[name] = _Runner(train_function, iterator, steps, [w.pruning_step for w in wrappers], calls, nodes)
    return runners


def walked_nodes(train_function, iterator) -> int:
    """Runs `train_function`'s first step and returns the nodes of its graph as TensorFlow runs it
    (after Grappler, its `tf.cond`s lowered): each is visited once per step, live or (in an untaken
    branch) dead. Unlike the time, this count does not vary from run to run."""
    eager = context.context()  # TensorFlow has no public API for a function's run metadata
    eager.enable_run_metadata()  # collected as a function is first instantiated
    try:
        train_function(iterator)
        metadata = eager.export_run_metadata()
    finally:
        eager.disable_run_metadata()
    return max(sum(len(g.node) for g in f.partition_graphs) for f in metadata.function_graphs)


def check_traced(runners: dict) -> None:
    """Raises if a train function was traced again after it was built (it would have taken
    another variant's schedule): each schedule is called as often as at its first trace."""
    for name, runner in runners.items():
        if len(runner.traces or ()) != runner.first_traces:
            raise RuntimeError(f"{name}: its train function was traced again, with another schedule")


def run(quick: bool = False) -> list[dict]:
    """The rows of `measure`, measured in a child process (`python -m benchmarks.overhead PATH`,
    `_child_main`) whose TensorFlow has `THREADS` thread per pool."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds `benchmarks`
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.json")
        command = [sys.executable, "-m", "benchmarks.overhead", path, *(["--quick"] if quick else [])]
        subprocess.run(command, check=True, cwd=root, env=env)
        with open(path, encoding="utf-8") as f:
            return json.load(f)


def measure(quick: bool = False) -> list[dict]:
    """Every model's rows, timed in this process, as its thread pools are (see `run`); each row
    records the pools' sizes (0: TensorFlow's default)."""
    batch_size, frequency = 32, (5 if quick else 10)
    threads = {
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }
    chosen_models = models(QUICK_DEEP_LAYERS if quick else DEEP_LAYERS)
    if quick:  # the harness on a sliver: a three-layer deep MLP, the QUICK_VARIANTS
        chosen_models = {name: value for name, value in chosen_models.items() if name.startswith("deep")}
    rows = []
    for model_name, (build, input_shape) in chosen_models.items():
        copies = 1
        if quick:
            steps, rounds = 10, 2
        elif model_name.startswith("deep"):  # several times the step time: shorter rounds, more copies
            steps, rounds, copies = 100, DEEP_ROUNDS, DEEP_COPIES
        else:
            steps, rounds = 200, ROUNDS
        cases = {
            name: case
            for name, case in variants(frequency, steps, rounds).items()
            if not quick or name in QUICK_VARIANTS
        }
        names = {
            name: [f"{name} #{k}" for k in range(copies)] if case and copies > 1 else [name]
            for name, case in cases.items()
        }
        schedules = {copy: case.schedule for name, case in cases.items() if case is not None for copy in names[name]}
        runners = {
            "unpruned": _unpruned_runner(build, input_shape, steps, batch_size),
            **_pruned_runners(build, input_shape, schedules, steps, batch_size),
        }
        for runner in runners.values():  # warm-up: the first run of every function
            runner.prepare()
            runner()
        times = interleaved(runners, rounds, before={name: runner.prepare for name, runner in runners.items()})
        check_traced(runners)
        baseline, minimal = (_round_means(times, names[name]) for name in (BASELINE, MINIMAL))
        layers = pruned_layers(build)
        nodes = {name: runners[labels[0]].nodes for name, labels in names.items()}  # the same in every copy
        for name, case in cases.items():
            ratios = [median_ratio(times[copy], baseline) for copy in names[name]]
            means = _round_means(times, names[name])
            added = [(t - m) / steps * 1e3 / layers * 100 for t, m in zip(means, minimal, strict=True)]
            rows.append(
                {
                    "model": model_name,
                    "schedule": name,
                    "family": case and case.family,
                    "ms_per_step": float(np.median(means)) / steps * 1e3,
                    "ratio_to_polynomial_decay": float(np.mean(ratios)),
                    "nodes_per_step": nodes[name],
                    "nodes_ratio_to_polynomial_decay": nodes[name] / nodes[BASELINE],
                    "copy_ratios": ratios,
                    "pruned_layers": layers,
                    "added_ms_per_100_layers": float(np.median(added)) if case is not None else None,
                    "rounds": rounds,
                    "steps_per_round": steps,
                    "mask_update_every": frequency,
                    **threads,
                }
            )
    return rows


def _round_means(times: dict[str, list[float]], names: list[str]) -> list[float]:
    """Each round's mean time over the train functions `names` (copies of one schedule)."""
    return [float(np.mean(round_times)) for round_times in zip(*(times[name] for name in names), strict=True)]


def format_rows(rows: list[dict]) -> str:
    header = (
        f"{'model':<22}{'schedule':<40}{'ms/step':>9}{'vs PolynomialDecay':>20}{'added ms/100 layers':>21}"
        f"{'copies':>15}{'nodes/step':>12}{'ratio':>7}"
    )
    lines = [header]
    for r in rows:
        added, copies = r.get("added_ms_per_100_layers"), r.get("copy_ratios") or []
        line = (
            f"{r['model']:<22}{r['schedule']:<40}{r['ms_per_step']:>9.3f}{r['ratio_to_polynomial_decay']:>20.3f}"
            + (f"{added:>21.3f}" if added is not None else " " * 21)
            + (f"{min(copies):>9.3f}-{max(copies):.3f}" if len(copies) > 1 else " " * 15)
            + f"{r['nodes_per_step']:>12}{r['nodes_ratio_to_polynomial_decay']:>7.3f}"
        )
        lines.append(line.rstrip())
    return "\n".join(lines)


def _child_main(argv=None) -> int:
    """The child process of `run` (not meant to be run by hand: `python -m benchmarks --only overhead`
    prints the table): sets TensorFlow's pools to `THREADS` threads, then writes `measure`'s rows."""
    description = "The overhead benchmark's rows, timed with one thread per pool."
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=description)
    parser.add_argument("path", help="where to write the rows, as JSON")
    parser.add_argument("--quick", action="store_true", help="the harness on a sliver")
    args = parser.parse_args(argv)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    rows = measure(quick=args.quick)
    with open(args.path, "w", encoding="utf-8") as f:
        json.dump(rows, f)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
