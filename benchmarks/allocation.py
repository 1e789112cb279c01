"""Allocation: test accuracy at 95-99% overall sparsity, by how the sparsity is spread over layers.

The quality benchmark's budget (`benchmarks/quality.py`): the same dense
pre-trained model per model and seed, then `prune_epochs` epochs of pruned
training with the schedule pruning from 5% to 70% of the pruning steps. Every
row reaches the same *overall* sparsity (zeros over every prunable weight,
measured on the trained masks and reported); what differs is each layer's share:

- `uniform`: every layer at the target (tfmot's behaviour);
- `erdos_renyi`, `erk`: Erdos-Renyi densities without and with the kernels'
  spatial dimensions (Evci et al. 2020);
- `global_magnitude`: one magnitude threshold over the dense model's trained weights;
- `lamp`: one threshold over the same weights' LAMP scores (Lee et al. 2021);
- `sensitivity`: a one-shot sweep of each layer on the last 300 training images (not held out:
  the test set stays unseen, and the model has trained on these).

Schedules: `CubicSparsity` (about 20 mask updates, as in the quality
benchmark) for every allocation; the same curve with a mask update at every
step (`frequency=1`) with `global_magnitude` and `lamp`; `ExponentialSparsity`
with a mask update at every step and `lamp` (the best of the probes); and
`OneCycleSparsity`, the best other shape of the quality table on the CNN at
95-98%, with `lamp`.

The pruned phase trains with Adam at the dense phase's learning rate (2e-3);
the quality and lottery tables use 1e-3. On the CNN, `uniform` and the best row
are also run at 1e-3 and 5e-3: how much of the result is the learning rate.
"""

from __future__ import annotations

import math

import numpy as np
import tf_keras as keras

from benchmarks.quality import (
    DENSE_LEARNING_RATE,
    budget,
    fit_pruned,
    pretrained_weights,
    schedules_for,
    spread,
    start_from,
)
from schedules import CubicSparsity, ExponentialSparsity, allocate, prune_model, sparsity_report

ALLOCATIONS = ("uniform", "erdos_renyi", "erk", "global_magnitude", "lamp", "sensitivity")
EVERY_STEP = "CubicSparsity, every step"
EXPONENTIAL_EVERY_STEP = "ExponentialSparsity, every step"
#: Other time shapes and the allocations they are tried with.
OTHER_RUNS = (
    (EVERY_STEP, "global_magnitude"),
    (EVERY_STEP, "lamp"),
    (EXPONENTIAL_EVERY_STEP, "lamp"),
    ("OneCycleSparsity", "lamp"),
)
#: The runs also made at other learning rates of the pruned phase, on the CNN: (shape, allocation).
LEARNING_RATE_RUNS = (("CubicSparsity", "uniform"), (EXPONENTIAL_EVERY_STEP, "lamp"))
OTHER_LEARNING_RATES = (1e-3, 5e-3)
#: The last training images, measured by the sensitivity sweep (the test set stays unseen).
SWEEP_IMAGES = 300


def run(
    quick: bool = False,
    sparsities=(0.95, 0.98, 0.99),
    seeds=(0, 1, 2, 3, 4),
    dense_epochs: int = 10,
    prune_epochs: int = 15,
    batch_size: int = 32,
    learning_rate: float = DENSE_LEARNING_RATE,
    progress=print,
) -> list[dict]:
    models, data, sparsities, seeds, dense_epochs, prune_epochs = budget(
        quick, sparsities, seeds, dense_epochs, prune_epochs, quick_sparsity=0.98
    )
    x_train, y_train, x_test, y_test = data
    allocations, others = (("uniform", "erk"), ()) if quick else (ALLOCATIONS, OTHER_RUNS)
    x_sweep, y_sweep = x_train[-SWEEP_IMAGES:], y_train[-SWEEP_IMAGES:]
    total = math.ceil(len(x_train) / batch_size) * prune_epochs
    accuracy: dict[tuple, list[float]] = {}
    overall: dict[tuple, list[float]] = {}
    for model_name, build in models.items():
        for seed in seeds:
            weights = pretrained_weights(build, seed, x_train, y_train, batch_size, dense_epochs)
            dense = build(keras)
            dense.set_weights(weights)
            for final in sparsities:
                shares = {}
                for method in allocations:
                    sweep = {"x": x_sweep, "y": y_sweep, "verbose": 0} if method == "sensitivity" else {}
                    shares[method] = allocate(dense, final, method, **sweep)
                runs = [("CubicSparsity", method, learning_rate) for method in allocations]
                runs += [(shape, method, learning_rate) for shape, method in others]
                if not quick and model_name == "CNN":
                    rates = [rate for rate in OTHER_LEARNING_RATES if rate != learning_rate]
                    runs += [(shape, method, rate) for rate in rates for shape, method in LEARNING_RATE_RUNS]
                shapes = schedules_for(final, total)
                cubic = shapes["CubicSparsity"]
                shapes[EVERY_STEP] = CubicSparsity(0.0, final, cubic.begin_step, cubic.end_step, frequency=1)
                shapes[EXPONENTIAL_EVERY_STEP] = ExponentialSparsity(
                    0.0, final, cubic.begin_step, cubic.end_step, frequency=1
                )
                for shape, method, rate in runs:
                    schedule = shapes[shape]
                    pruned = prune_model(start_from(build, weights, seed), schedule, allocation=shares[method])
                    fit_pruned(pruned, x_train, y_train, batch_size, prune_epochs, learning_rate=rate)
                    key = (model_name, shape, method, rate, final)
                    accuracy.setdefault(key, []).append(float(pruned.evaluate(x_test, y_test, verbose=0)[1]))
                    overall.setdefault(key, []).append(sparsity_report(pruned).sparsity)
                progress(f"  {model_name} seed {seed} sparsity {final}: done")
    rows = []
    for (model_name, shape, method, rate, final), values in accuracy.items():
        rows.append(
            {
                "model": model_name,
                "schedule": shape,
                "allocation": method,
                "learning_rate": rate,
                "target_sparsity": final,
                **spread(values),
                "overall_sparsity": float(np.mean(overall[(model_name, shape, method, rate, final)])),
            }
        )
    return rows


def format_rows(rows: list[dict]) -> str:
    sparsities = sorted({r["target_sparsity"] for r in rows})
    lines = []
    for model_name in dict.fromkeys(r["model"] for r in rows):
        lines.append(f"{model_name:<52}" + "".join(f"{f'overall {s:g}':>26}" for s in sparsities))
        keys = dict.fromkeys(
            (r["schedule"], r["allocation"], r["learning_rate"]) for r in rows if r["model"] == model_name
        )
        usual = max(rates := [rate for *_, rate in keys], key=rates.count)
        for shape, method, rate in keys:
            cells = []
            for s in sparsities:
                (r,) = [
                    r
                    for r in rows
                    if (r["model"], r["schedule"], r["allocation"], r["learning_rate"], r["target_sparsity"])
                    == (model_name, shape, method, rate, s)
                ]
                text = f"{r['mean_accuracy']:.4f} ± {r['std_accuracy']:.4f} ({r['overall_sparsity']:.4f})"
                cells.append(text.rjust(26))
            label = f"{shape}, {method}" + ("" if rate == usual else f", Adam {rate:g}")
            lines.append(f"{label:<52}" + "".join(cells))
        lines.append("")
    return "\n".join(lines)
