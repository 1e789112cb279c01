"""Keras 3: what `schedules.keras3.PruningCallback` adds to a training step.

The same network built with Keras 3 and with tf-keras, trained on the same
generated data with Adam, in interleaved rounds: Keras 3 without pruning (the
baseline of each round), Keras 3 with `PruningCallback` (`CubicSparsity` to
0.9, a mask update every 10 steps, ERK allocation), tf-keras without pruning,
and tf-keras pruned by tfmot (`prune_low_magnitude` + `UpdatePruningStep`, the
same schedule). Each round is one `fit` of `steps` steps per variant; a timing
callback measures the steady state (from the 20th batch to the last), so the
one trace each `fit` makes is not counted (the callback adds one retrace per
`fit`, reported apart: "fit start" is the time to the second batch).
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules import CubicSparsity
from schedules.keras3 import PruningCallback
from schedules.models import build_cnn

BASELINE = "Keras 3, unpruned"
#: Batches left out at the start of each fit (tracing, warm-up).
SKIP = 20


class _Timer(tf_keras.callbacks.Callback):  # a tf-keras callback: Keras 3's fit takes it too
    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()
        self.first = None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 1:  # the callbacks' on_train_begin, the trace and the first step
            self.setup = time.perf_counter() - self.started
        if batch == SKIP:
            self.first = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.last, self.batches = time.perf_counter(), batch + 1


def _mlp(module):
    layers = module.layers
    return module.Sequential(
        [
            module.Input((64,)),
            layers.Dense(128, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(10),
        ]
    )


MODELS = {"small CNN (8x8x1)": (lambda m: build_cnn(m), (8, 8, 1)), "MLP (64-128-64-10)": (_mlp, (64,))}


def _variant(name: str, build, shape, steps: int):
    module = keras if name.startswith("Keras 3") else tf_keras
    module.utils.set_random_seed(0)
    model = build(module)
    schedule = CubicSparsity(0.0, 0.9, begin_step=10, end_step=10**6, frequency=10)
    callbacks = []
    if name == "tf-keras, tfmot":
        model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
        callbacks.append(tfmot.sparsity.keras.UpdatePruningStep())
    model.compile(optimizer="adam", loss=module.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16 * 32, *shape)).astype(np.float32)
    y = rng.integers(0, 10, size=16 * 32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat()
    timer = _Timer()

    def train():
        pruning = [PruningCallback(schedule, allocation="erk")] if name == "Keras 3, PruningCallback" else []
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer, *pruning, *callbacks])
        return (timer.last - timer.first) / (timer.batches - SKIP), timer.setup

    return train


def run(quick: bool = False) -> list[dict]:
    steps, rounds = (SKIP + 5, 1) if quick else (SKIP + 300, 9)
    names = (BASELINE, "Keras 3, PruningCallback", "tf-keras, unpruned", "tf-keras, tfmot")
    if quick:  # the harness on a sliver
        names = names[:2]
    chosen = dict(list(MODELS.items())[1:]) if quick else MODELS
    rows = []
    for model_name, (build, shape) in chosen.items():
        trainers = {name: _variant(name, build, shape, steps) for name in names}
        for train in trainers.values():  # warm-up
            train()
        times: dict[str, list[float]] = {name: [] for name in names}
        setups: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            for name, train in trainers.items():
                step, setup = train()
                times[name].append(step)
                setups[name].append(setup)
        for name in names:
            ratios = [t / b for t, b in zip(times[name], times[BASELINE], strict=True)]
            rows.append(
                {
                    "model": model_name,
                    "variant": name,
                    "ms_per_step": statistics.median(times[name]) * 1e3,
                    "ratio_to_keras3_unpruned": statistics.median(ratios),
                    "fit_start_s": statistics.median(setups[name]),
                    "rounds": rounds,
                    "steps_per_round": steps - SKIP,
                }
            )
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'model':<22}{'variant':<28}{'ms/step':>9}{'vs Keras 3 unpruned':>21}{'fit start s':>13}"]
    for r in rows:
        lines.append(
            f"{r['model']:<22}{r['variant']:<28}{r['ms_per_step']:>9.3f}"
            f"{r['ratio_to_keras3_unpruned']:>21.3f}{r['fit_start_s']:>13.2f}"
        )
    return "\n".join(lines)
