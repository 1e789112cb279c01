"""The quick-start job: prune a small model with each schedule family and report.

Trains a small convolutional network on a synthetic image task generated here
(nothing is downloaded), once per schedule family, with
`tfmot.sparsity.keras.prune_low_magnitude` and `UpdatePruningStep`, and prints
the sparsity each schedule asked for at the end and the share of zeros each
pruned layer really has after `strip_pruning`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from schedules.base import SparsitySchedule
from schedules.cubic import CubicSparsity
from schedules.cyclic import CyclicSparsity
from schedules.exponential import ExponentialSparsity
from schedules.inspection import kernel_sparsity
from schedules.models import build_cnn
from schedules.step import StepSparsity

__all__ = ["default_schedules", "make_data", "prune_with", "run"]


def default_schedules(steps: int, final_sparsity: float = 0.8) -> dict[str, SparsitySchedule]:
    """One schedule per family, pruning from step `steps // 10` to `steps * 3 // 4`."""
    begin, end = steps // 10, (steps * 3) // 4
    frequency = max(1, (end - begin) // 12)
    return {
        "exponential": ExponentialSparsity(0.0, final_sparsity, begin, end, frequency=frequency),
        "cubic": CubicSparsity(0.0, final_sparsity, begin, end, frequency=frequency),
        "step": StepSparsity.uniform(0.0, final_sparsity, begin, end, num_stages=4, spacing="geometric"),
        "cyclic": CyclicSparsity(0.0, final_sparsity, begin, end, num_cycles=3, frequency=frequency),
    }


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 4-class task on 12x12 images: which quadrant holds a bright blob."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    images = rng.normal(0.0, 0.3, size=(n, 12, 12, 1)).astype(np.float32)
    rows, cols = np.divmod(labels, 2)
    for i in range(n):
        r, c = 6 * rows[i] + rng.integers(1, 4), 6 * cols[i] + rng.integers(1, 4)
        images[i, r : r + 2, c : c + 2, 0] += 1.0
    return images, labels.astype(np.int64)


@dataclass
class Result:
    name: str
    scheduled: float
    achieved: dict[str, float]
    accuracy: float
    seconds: float


def prune_with(schedule: SparsitySchedule, steps: int, batch_size: int = 32, seed: int = 0, verbose: int = 0) -> Result:
    """Trains the small model for `steps` steps pruned with `schedule`."""
    keras.utils.set_random_seed(seed)
    x, y = make_data(steps * batch_size + 512, seed)
    x_test, y_test = x[-512:], y[-512:]
    x, y = x[:-512], y[:-512]
    model = tfmot.sparsity.keras.prune_low_magnitude(build_cnn(keras, (12, 12, 1), 4), pruning_schedule=schedule)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(
        x, y, batch_size=batch_size, epochs=1, verbose=verbose, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
    )
    seconds = time.perf_counter() - start
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    achieved = kernel_sparsity(stripped)
    accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    return Result(type(schedule).__name__, float(schedule(steps)[1]), achieved, accuracy, seconds)


def run(
    steps: int = 300,
    final_sparsity: float = 0.8,
    seed: int = 0,
    print_fn: Callable[[str], None] = print,
) -> list[Result]:
    """Prunes the small model once per family and prints a table."""
    results = []
    layers = ["conv1", "conv2", "dense", "logits"]
    print_fn(f"Pruning a small CNN for {steps} steps with each schedule family (final sparsity {final_sparsity}).")
    header = f"{'schedule':<22}{'scheduled':>10}" + "".join(f"{name:>9}" for name in layers) + f"{'accuracy':>10}"
    print_fn(header)
    for label, schedule in default_schedules(steps, final_sparsity).items():
        result = prune_with(schedule, steps, seed=seed)
        results.append(result)
        zeros = "".join(f"{result.achieved.get(name, float('nan')):>9.3f}" for name in layers)
        print_fn(f"{label:<22}{result.scheduled:>10.3f}{zeros}{result.accuracy:>10.3f}")
    print_fn("Columns conv1 .. logits: share of zero weights per layer after strip_pruning.")
    return results
