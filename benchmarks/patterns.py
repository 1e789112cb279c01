"""Accuracy of 2:4 against unstructured 50%, on Keras 3: the digits CNN and MobileNetV2 on the digits.

`schedules.keras3.PruningCallback` (TensorFlow backend) on the digits, split
as in `zoo_accuracy` (1150 training, 287 validation, 360 test images): the demo
CNN on the 8x8 images, and `keras.applications.MobileNetV2(alpha=0.35,
weights=None)` on them resized to 32x32 with 3 channels (batch normalization
momentum 0.9, as in `zoo_accuracy`). Per seed: a dense phase (Adam, batch 64),
then a phase of `prune_epochs` epochs from the dense weights, one per row:

* `dense`: trained on, unpruned;
* `unstructured 0.5`: `CubicSparsity(0, 0.5)` over 5% to 70% of the phase's
  steps (the demo's window, about 20 mask updates), every layer at 0.5;
* `2:4 gradual`: the same schedule with `sparsity_m_by_n=(2, 4)`: the gradual
  N:M rule, exactly 2:4 from the last update on;
* `2:4 one-shot`: `ConstantSparsity(0.5)` from the window's first step with
  `sparsity_m_by_n=(2, 4)`: the whole pattern from the window's first step,
  recomputed at every update (tfmot's own M-by-N mode sets it once, at step 1,
  and keeps it: this row is not that).

The dense phase's settings are those `zoo_accuracy` chose on validation for
MobileNetV2 (3e-3, 30 epochs) and the quality section's for the CNN (1e-3, 10
epochs); each row's learning rate (1e-3 or 3e-3) is chosen on seed 0's
validation split; the test split is read once by each final model.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow_model_optimization as tfmot

from benchmarks.zoo_accuracy import VALIDATION_SHARE, Grid, digits
from schedules import ChannelPruning, CubicSparsity
from schedules.channels import shrink
from schedules.demo import default_schedule_params
from schedules.keras3 import PruningCallback
from schedules.keras3_layers import prunable_kernels
from schedules.models import build_cnn

BATCH_SIZE = 64
SEEDS = (0, 1, 2)
ROWS = ("dense", "unstructured 0.5", "2:4 gradual", "2:4 one-shot")


class Setup(NamedTuple):
    """One model of the section: its data grid (`zoo_accuracy.Grid`), dense phase and pruned phase."""

    grid: Grid
    dense_rate: float
    dense_epochs: int
    prune_rates: tuple[float, ...]
    prune_epochs: int


def _grid(model: str, image_size: int, train_images: int | None) -> Grid:
    return Grid(model, image_size, train_images, (), (), (), 0, (), ())


FULL = (
    Setup(_grid("demo CNN 8x8", 8, None), 1e-3, 10, (1e-3, 3e-3), 15),
    Setup(_grid("MobileNetV2 (alpha 0.35) 32x32", 32, None), 3e-3, 30, (1e-3, 3e-3), 20),
)
#: The harness check: the CNN, a sliver of the data, one rate, 1 + 2 epochs.
QUICK = (Setup(_grid("demo CNN 8x8", 8, 256), 2e-3, 1, (2e-3,), 2),)


def build(setup: Setup, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    if setup.grid.image_size == 8:
        model = build_cnn(keras)
    else:
        size = setup.grid.image_size
        model = keras.applications.MobileNetV2(
            input_shape=(size, size, 3), alpha=0.35, weights=None, classes=10, classifier_activation=None
        )
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.9
    return model


def _fit(model, rate: float, x, y, epochs: int, seed: int, callbacks=()) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    keras.utils.set_random_seed(seed + 1000)  # the batches' order
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, verbose=0, callbacks=list(callbacks))
    return model


def _pruning(row: str, window: dict) -> PruningCallback | None:
    """The callback of one of `ROWS` (None for the dense row) over the pruned phase's `window`."""
    begin, end, frequency = window["begin_step"], window["end_step"], window["frequency"]
    if row == "unstructured 0.5":
        return PruningCallback(CubicSparsity(0.0, 0.5, begin, end, frequency=frequency))
    if row == "2:4 gradual":
        return PruningCallback(CubicSparsity(0.0, 0.5, begin, end, frequency=frequency), sparsity_m_by_n=(2, 4))
    if row == "2:4 one-shot":
        one_shot = tfmot.sparsity.keras.ConstantSparsity(0.5, begin, frequency=frequency)
        return PruningCallback(one_shot, sparsity_m_by_n=(2, 4))
    return None


#: What a section trains: row name -> its callback over the pruned phase's window (None: dense).
Rows = Callable[[str, dict], Any]


def _zeros(model: keras.Model) -> float:
    """Zeros over every kernel the callback prunes."""
    kernels = [np.asarray(k) for ks in prunable_kernels(model).values() for k in ks]
    return float(sum(np.sum(k == 0) for k in kernels) / sum(k.size for k in kernels))


def section(
    setup: Setup, seeds: tuple[int, ...], progress, rows: tuple[str, ...] = ROWS, callback: Rows = _pruning
) -> list[dict]:
    """Trains `setup`'s model for each of `rows` (`callback(row, window)`) over `seeds`: the rows' results."""
    x_train, y_train, x_val, y_val, x_test, y_test = digits(setup.grid)
    steps = -(-len(x_train) // BATCH_SIZE) * setup.prune_epochs
    window = default_schedule_params(steps, 0.5)

    keeps: dict[int, tuple[keras.Model, dict]] = {}  # a ChannelPruning row's model (held: its id stays its own)

    def row_run(row: str, start: list, rate: float, seed: int) -> keras.Model:
        model = build(setup, seed)
        model.set_weights(start)
        pruning = callback(row, window)
        model = _fit(model, rate, x_train, y_train, setup.prune_epochs, seed, [pruning] if pruning else [])
        if isinstance(pruning, ChannelPruning):
            keeps[id(model)] = (model, dict(pruning.keep))
        return model

    def accuracy(model: keras.Model, x, y) -> float:
        return float(model.evaluate(x, y, batch_size=256, verbose=0)[1])

    finals: dict[str, list[keras.Model]] = {row: [] for row in rows}
    chosen: dict[str, tuple[float, dict[float, float]]] = {}
    for seed in seeds:
        dense = _fit(build(setup, seed), setup.dense_rate, x_train, y_train, setup.dense_epochs, seed)
        start = dense.get_weights()
        for row in rows:
            if row not in chosen:  # seed 0: each rate, chosen on validation
                runs = {rate: row_run(row, start, rate, seed) for rate in setup.prune_rates}
                val = {rate: accuracy(model, x_val, y_val) for rate, model in runs.items()}
                best = max(val, key=val.__getitem__)
                chosen[row] = (best, val)
                finals[row].append(runs[best])
                progress(f"  {setup.grid.model}, {row}: rate {best:g} (validation {val[best]:.4f})")
            else:
                finals[row].append(row_run(row, start, chosen[row][0], seed))
        progress(f"  {setup.grid.model}: seed {seed} done")
    rows = []
    for row, models in finals.items():
        accuracies = [accuracy(model, x_test, y_test) for model in models]
        rate, val = chosen[row]
        rows.append(
            {
                "model": setup.grid.model,
                "row": row,
                "mean_accuracy": statistics.fmean(accuracies),
                "std_accuracy": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                "accuracies": accuracies,
                "seeds": len(accuracies),
                "zeros": statistics.fmean(_zeros(model) for model in models),
                "parameters": statistics.fmean(
                    shrink(model, keeps[id(model)][1]).count_params() if id(model) in keeps else model.count_params()
                    for model in models
                ),
                "learning_rate": rate,
                "validation": {f"{r:g}": a for r, a in val.items()},
                "dense_learning_rate": setup.dense_rate,
                "dense_epochs": setup.dense_epochs,
                "epochs": setup.prune_epochs,
                "train_images": len(x_train),
                "validation_images": len(x_val),
                "validation_share": VALIDATION_SHARE,
                "test_images": len(x_test),
                "keras": keras.__version__,
            }
        )
    keras.backend.clear_session()
    return rows


def run(quick: bool = False, seeds=SEEDS, progress=print) -> list[dict]:
    seeds = tuple(seeds)[:1] if quick else tuple(seeds)
    return [row for setup in (QUICK if quick else FULL) for row in section(setup, seeds, progress)]


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'model':<32}{'row':<18}{'test accuracy':>20}{'zeros':>8}{'params':>10}{'rate':>8}{'validation':>12}"]
    for r in rows:
        accuracy = f"{r['mean_accuracy']:.4f} ± {r['std_accuracy']:.4f}"
        val = r["validation"][f"{r['learning_rate']:g}"]
        lines.append(
            f"{r['model']:<32}{r['row']:<18}{accuracy:>20}{r['zeros']:>8.4f}{r.get('parameters', float('nan')):>10,.0f}"
            f"{r['learning_rate']:>8g}{val:>12.4f}"
        )
    for model in dict.fromkeys(r["model"] for r in rows):
        first = next(r for r in rows if r["model"] == model)
        lines.append(
            f"{model}: dense phase rate {first['dense_learning_rate']:g}, {first['dense_epochs']} epochs; pruned "
            f"phase {first['epochs']} epochs; {first['seeds']} seeds; {first['train_images']} train / "
            f"{first['validation_images']} validation / {first['test_images']} test; Keras {first['keras']}"
        )
    return "\n".join(lines)
