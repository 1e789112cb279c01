"""Training overhead: step time of the same model under each schedule, interleaved.

One pruned variant per family of `schedules.registry.families()` (ours, the two
compositions and tfmot's two). Every pruned variant updates its masks at the
same steps (every `frequency` steps from step 0, inside a window far longer than
the run), so the variants differ only in the schedule's own cost; they and an
unpruned model run in the same process, round after round, and each round's time
is divided by `PolynomialDecay`'s time in that round. The table reports the median
ratio over rounds (these machines are noisy: back-to-back runs differ by 30%).
"""

from __future__ import annotations

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from benchmarks._families import Case, Window, every_family
from benchmarks._timing import interleaved, median_ratios
from schedules import CyclicSparsity, StepSparsity
from schedules.models import build_cnn

BASELINE = "tfmot PolynomialDecay"
FOREVER = 10**9

#: The variants the quick mode times: the harness on a sliver.
QUICK_VARIANTS = ("unpruned", BASELINE, "CubicSparsity")


def variants(frequency: int, steps_per_round: int, rounds: int) -> dict[str, Case | None]:
    """Label -> `Case` (`None` for the unpruned model): every family, each updating its masks every `frequency` steps.

    The updates fall on the same steps for all: every `frequency` steps from
    step 0. Each ramp runs over a window far longer than the run (`FOREVER`
    steps), the staircase has a stair every `frequency` steps, the cycles are
    `FOREVER` steps long, and AC/DC's phases are `frequency` steps long.
    """
    horizon = steps_per_round * (rounds + 2)
    boundaries = list(range(0, horizon + frequency, frequency))
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
                CyclicSparsity(0.0, 0.8, 0, 2 * FOREVER - 1, num_cycles=2, frequency=frequency),
            ),
        },
    )
    return {"unpruned": None, **cases}


def models() -> dict:
    def mlp():
        return keras.Sequential(
            [
                keras.layers.Input((64,)),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(10),
            ]
        )

    return {"small CNN (8x8x1)": (lambda: build_cnn(keras), (8, 8, 1)), "MLP (64-128-64-10)": (mlp, (64,))}


def _trainer(build, input_shape, schedule, steps: int, batch_size: int):
    """A function that runs `steps` training steps of a fresh model.

    It drives Keras' compiled `train_function` directly (what `fit` runs per
    step), so the per-call overhead of `fit` does not drown the difference.
    """
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = build()
    if schedule is not None:
        model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if schedule is not None:
        callback = tfmot.sparsity.keras.UpdatePruningStep()
        callback.set_model(model)
        callback.on_train_begin()  # pruning_step: -1 -> 0, as in fit
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16 * batch_size, *input_shape)).astype(np.float32)
    y = rng.integers(0, 10, size=16 * batch_size)
    iterator = iter(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat())
    train_function = model.make_train_function()

    def train():
        for _ in range(steps):
            train_function(iterator)

    return train


def run(quick: bool = False) -> list[dict]:
    steps, rounds, batch_size, frequency = (10, 2, 32, 5) if quick else (200, 15, 32, 10)
    chosen_models = models()
    if quick:  # the harness on a sliver: the MLP, three variants
        chosen_models = {name: value for name, value in chosen_models.items() if name.startswith("MLP")}
    rows = []
    for model_name, (build, input_shape) in chosen_models.items():
        cases = {
            name: case
            for name, case in variants(frequency, steps, rounds).items()
            if not quick or name in QUICK_VARIANTS
        }
        trainers = {
            name: _trainer(build, input_shape, case and case.schedule, steps, batch_size)
            for name, case in cases.items()
        }
        for train in trainers.values():  # warm-up: trace and compile every variant
            train()
        times = interleaved(trainers, rounds)
        ratios = median_ratios(times, BASELINE)
        for name, values in times.items():
            rows.append(
                {
                    "model": model_name,
                    "schedule": name,
                    "family": cases[name] and cases[name].family,
                    "ms_per_step": float(np.median(values)) / steps * 1e3,
                    "ratio_to_polynomial_decay": ratios[name],
                    "rounds": rounds,
                    "steps_per_round": steps,
                    "mask_update_every": frequency,
                }
            )
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'model':<20}{'schedule':<40}{'ms/step':>9}{'vs PolynomialDecay':>20}"]
    for r in rows:
        lines.append(
            f"{r['model']:<20}{r['schedule']:<40}{r['ms_per_step']:>9.3f}{r['ratio_to_polynomial_decay']:>20.3f}"
        )
    return "\n".join(lines)
