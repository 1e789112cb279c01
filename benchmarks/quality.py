"""Quality: test accuracy at high sparsity on scikit-learn's handwritten digits.

Every schedule gets the same budget: the same dense pre-trained model (one per
model and seed), then `prune_epochs` epochs of pruned training with the same
optimizer, ending with at least 30% of the pruning epochs at the final
sparsity. Schedules prune from 5% to 70% of the pruning steps:

- ExponentialSparsity, CubicSparsity, CyclicSparsity (3 cycles),
  StepSparsity (4 geometric stairs): 0 -> final over the window, every
  `frequency` steps;
- the per-event exponential form (`ExponentialSparsity.from_rate`), with the
  rate that reaches the final sparsity at the middle of the window (a typical
  hand-written choice);
- the other shapes over the same window: PolynomialSparsity fast late (power
  3, Intel Neural Compressor's `cube`) and SparseML's inverse cubic (power 1/3,
  fast late), CosineSparsity (S-curve), OneCycleSparsity (alpha 14, beta 6),
  AlternatingSparsity (AC/DC: three sparse and three dense phases of a sixth
  of the window each, sparse from its end on);
- tfmot's PolynomialDecay (power 3; the same window, so the same curve as
  CubicSparsity where tfmot applies it) and one-shot ConstantSparsity (the final
  sparsity from the window's start);
- the dense model itself, trained for the same number of extra epochs.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from typing import NamedTuple

import tensorflow_model_optimization as tfmot
import tf_keras as keras

from schedules import (
    AlternatingSparsity,
    CosineSparsity,
    CubicSparsity,
    CyclicSparsity,
    ExponentialSparsity,
    OneCycleSparsity,
    PolynomialSparsity,
    StepSparsity,
)
from schedules.demo import default_schedule_params, load_digits
from schedules.inspection import kernel_sparsity
from schedules.models import build_cnn


def build_mlp(keras_module):
    return keras_module.Sequential(
        [
            keras_module.layers.Input((8, 8, 1)),
            keras_module.layers.Flatten(),
            keras_module.layers.Dense(128, activation="relu", name="hidden1"),
            keras_module.layers.Dense(64, activation="relu", name="hidden2"),
            keras_module.layers.Dense(10, name="logits"),
        ]
    )


MODELS = {"MLP": build_mlp, "CNN": build_cnn}
#: Adam's learning rate in the dense pre-training every row starts from.
DENSE_LEARNING_RATE = 2e-3
#: Adam's learning rate in the pruned phase of the quality and lottery tables.
PRUNE_LEARNING_RATE = 1e-3


def schedules_for(final: float, total_steps: int) -> dict:
    window = default_schedule_params(total_steps, final)  # the demo's window: 5% .. 70% of pruning
    begin, end, frequency = window["begin_step"], window["end_step"], window["frequency"]
    middle = (end - begin) // 2
    rate = 1.0 - (1.0 - final) ** (frequency / middle)
    return {
        "ExponentialSparsity": ExponentialSparsity(0.0, final, begin, end, frequency=frequency),
        "Exponential per-event (from_rate)": ExponentialSparsity.from_rate(
            rate, final, begin_step=begin, frequency=frequency
        ),
        "CubicSparsity": CubicSparsity(0.0, final, begin, end, frequency=frequency),
        "StepSparsity (4 geometric stairs)": StepSparsity.uniform(
            0.0, final, begin, end, num_stages=4, spacing="geometric"
        ),
        "CyclicSparsity (3 cycles)": CyclicSparsity(0.0, final, begin, end, num_cycles=3, frequency=frequency),
        "Polynomial fast_late (INC cube)": PolynomialSparsity(
            0.0, final, begin, end, frequency=frequency, power=3, orientation="fast_late"
        ),
        "Polynomial inverse cubic (SparseML)": PolynomialSparsity(
            0.0, final, begin, end, frequency=frequency, power=1 / 3, orientation="fast_late"
        ),
        "CosineSparsity (s_curve)": CosineSparsity(0.0, final, begin, end, frequency=frequency),
        "OneCycleSparsity": OneCycleSparsity(0.0, final, begin, end, frequency=frequency),
        "Alternating (AC/DC, 3 phases)": AlternatingSparsity(
            final, begin, end, sparse_steps=window["sparse_steps"], dense_steps=window["dense_steps"]
        ),
        "tfmot PolynomialDecay": tfmot.sparsity.keras.PolynomialDecay(0.0, final, begin, end, frequency=frequency),
        "tfmot ConstantSparsity (one-shot)": tfmot.sparsity.keras.ConstantSparsity(
            final, begin_step=begin, frequency=total_steps
        ),
    }


#: Dense starts already trained in this process, shared by the sections that run in it.
_PRETRAINED: dict[tuple, list] = {}


def pretrained_weights(build, seed: int, x, y, batch_size: int, epochs: int) -> list:
    """The dense model's weights after `epochs` of training from seed `seed`: every row's start.

    Trained once per process for the same model, seed, data and budget (the quality,
    allocation and lottery sections start from the same dense models)."""
    key = (build, seed, batch_size, epochs, hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest())
    if key not in _PRETRAINED:
        keras.utils.set_random_seed(seed)
        dense = build(keras)
        _compile(dense, DENSE_LEARNING_RATE)
        dense.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
        _PRETRAINED[key] = dense.get_weights()
    return [w.copy() for w in _PRETRAINED[key]]


def start_from(build, weights: list, seed: int):
    """A new model with the dense start's `weights`, the random state set for the row's run."""
    keras.utils.set_random_seed(seed + 1000)
    model = build(keras)
    model.set_weights(weights)
    return model


def fit_pruned(
    pruned, x, y, batch_size: int, epochs: int, callbacks=(), learning_rate: float = PRUNE_LEARNING_RATE
) -> None:
    """The pruning run every row gets: Adam (1e-3 unless told) with `UpdatePruningStep` (then `callbacks`)."""
    _compile(pruned, learning_rate)
    pruned.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), *callbacks],
    )


def spread(values: list[float]) -> dict:
    """A row's accuracy over seeds: mean, standard deviation (0 for one seed) and count."""
    return {
        "mean_accuracy": statistics.fmean(values),
        "std_accuracy": statistics.stdev(values) if len(values) > 1 else 0.0,
        "seeds": len(values),
    }


def _compile(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


class Budget(NamedTuple):
    """What a run of the quality, allocation or lottery benchmark trains on, and for how long."""

    models: dict
    data: tuple  # x_train, y_train, x_test, y_test
    sparsities: tuple
    seeds: tuple
    dense_epochs: int
    prune_epochs: int


def budget(quick: bool, sparsities, seeds, dense_epochs: int, prune_epochs: int, *, quick_sparsity: float) -> Budget:
    """The digits and both models at the given budget; `quick`: the harness on a sliver (the MLP,
    one seed, 256 training images, `quick_sparsity`, 1 dense and 2 pruned epochs)."""
    x_train, y_train, x_test, y_test = load_digits(0)
    if not quick:
        return Budget(MODELS, (x_train, y_train, x_test, y_test), sparsities, seeds, dense_epochs, prune_epochs)
    return Budget({"MLP": build_mlp}, (x_train[:256], y_train[:256], x_test, y_test), (quick_sparsity,), (0,), 1, 2)


def run(
    quick: bool = False,
    sparsities=(0.90, 0.95, 0.98),
    seeds=(0, 1, 2, 3, 4),
    dense_epochs: int = 10,
    prune_epochs: int = 15,
    batch_size: int = 32,
    progress=print,
) -> list[dict]:
    models, data, sparsities, seeds, dense_epochs, prune_epochs = budget(
        quick, sparsities, seeds, dense_epochs, prune_epochs, quick_sparsity=0.9
    )  # quick: two schedules
    x_train, y_train, x_test, y_test = data
    total = math.ceil(len(x_train) / batch_size) * prune_epochs
    keep = ("CubicSparsity", "tfmot PolynomialDecay") if quick else None
    results: dict[tuple, list[float]] = {}
    reached: dict[tuple, list[float]] = {}  # the least sparse layer's share of zeros, per run
    for model_name, build in models.items():
        for seed in seeds:
            weights = pretrained_weights(build, seed, x_train, y_train, batch_size, dense_epochs)
            # The dense baseline gets the same extra budget.
            extra = start_from(build, weights, seed)
            _compile(extra, PRUNE_LEARNING_RATE)
            extra.fit(x_train, y_train, batch_size=batch_size, epochs=prune_epochs, verbose=0)
            accuracy = float(extra.evaluate(x_test, y_test, verbose=0)[1])
            for final in sparsities:
                results.setdefault((model_name, "dense", final), []).append(accuracy)
            for final in sparsities:
                for name, schedule in schedules_for(final, total).items():
                    if keep is not None and name not in keep:
                        continue
                    model = start_from(build, weights, seed)
                    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
                    fit_pruned(pruned, x_train, y_train, batch_size, prune_epochs)
                    accuracy = float(pruned.evaluate(x_test, y_test, verbose=0)[1])
                    results.setdefault((model_name, name, final), []).append(accuracy)
                    zeros = kernel_sparsity(tfmot.sparsity.keras.strip_pruning(pruned))
                    reached.setdefault((model_name, name, final), []).append(min(zeros.values()))
                progress(f"  {model_name} seed {seed} sparsity {final}: done")
    rows = []
    for (model_name, name, final), accuracies in results.items():
        rows.append(
            {
                "model": model_name,
                "schedule": name,
                "final_sparsity": final,
                **spread(accuracies),
                "min_layer_sparsity": min(reached.get((model_name, name, final), [0.0])),
            }
        )
    return rows


def format_rows(rows: list[dict]) -> str:
    sparsities = sorted({r["final_sparsity"] for r in rows})
    lines = []
    for model_name in dict.fromkeys(r["model"] for r in rows):
        header = f"{model_name:<36}" + "".join(f"{f'sparsity {s:g}':>18}" for s in sparsities)
        lines.append(header)
        names = dict.fromkeys(r["schedule"] for r in rows if r["model"] == model_name)
        for name in names:
            cells = []
            for s in sparsities:
                match = [
                    r for r in rows if r["model"] == model_name and r["schedule"] == name and r["final_sparsity"] == s
                ]
                r = match[0]
                cells.append(f"{r['mean_accuracy']:.4f} ± {r['std_accuracy']:.4f}".rjust(18))
            lines.append(f"{name:<36}" + "".join(cells))
        lines.append("")
    return "\n".join(lines)
