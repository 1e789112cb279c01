"""Lottery tickets: iterative magnitude pruning (IMP) with and without weight rewinding.

The quality benchmark's budget (`benchmarks/quality.py`): the same dense
pre-trained model per model and seed, then `prune_epochs` epochs of pruned
training, pruning from 5% to 70% of the pruning steps, every layer at the
share of the best allocation of the allocation benchmark (`global_magnitude`,
computed once on the dense weights). Rows:

- `CubicSparsity` (gradual pruning, about 20 mask updates);
- IMP: `StepSparsity.uniform(0, final, ..., num_stages=5, spacing="geometric")`,
  five stairs geometric in the overall sparsity (each layer's stairs scaled by
  its share, so a layer's own stairs are not exactly geometric), without
  rewinding (the survivors train on from where they are);
- IMP with `WeightRewinding(0)`: after each stair the survivors go back to
  their values at step 0, here the dense pre-trained weights (Renda et al.
  2020 call rewinding this far back "fine-tuning from the original weights");
- IMP with `WeightRewinding(k)`, `k` the step before the first stair.
"""

from __future__ import annotations

import math

import numpy as np
import tf_keras as keras

from benchmarks.quality import budget, fit_pruned, pretrained_weights, schedules_for, spread, start_from
from schedules import StepSparsity, WeightRewinding, allocate, prune_model, sparsity_report

ALLOCATION = "global_magnitude"
STAIRS = 5
ROWS = ("CubicSparsity", "IMP, no rewinding", "IMP, rewind to step 0", "IMP, rewind to the step before the first stair")


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
    )
    x_train, y_train, x_test, y_test = data
    rows = ROWS[2:3] if quick else ROWS  # quick: one row
    total = math.ceil(len(x_train) / batch_size) * prune_epochs
    accuracy: dict[tuple, list[float]] = {}
    overall: dict[tuple, list[float]] = {}
    rewinds: dict[tuple, list[int]] = {}
    for model_name, build in models.items():
        for seed in seeds:
            weights = pretrained_weights(build, seed, x_train, y_train, batch_size, dense_epochs)
            dense = build(keras)
            dense.set_weights(weights)
            for final in sparsities:
                shares = allocate(dense, final, ALLOCATION)
                cubic = schedules_for(final, total)["CubicSparsity"]
                stairs = StepSparsity.uniform(
                    0.0, final, cubic.begin_step, cubic.end_step, num_stages=STAIRS, spacing="geometric"
                )
                for row in rows:
                    schedule = cubic if row == "CubicSparsity" else stairs
                    pruned = prune_model(start_from(build, weights, seed), schedule, allocation=shares)
                    rewinding = None
                    if "rewind" in row and "no rewinding" not in row:
                        rewinding = WeightRewinding(0 if row.endswith("step 0") else stairs.boundaries[0] - 1)
                    fit_pruned(
                        pruned, x_train, y_train, batch_size, prune_epochs, callbacks=[rewinding] if rewinding else []
                    )
                    key = (model_name, row, final)
                    accuracy.setdefault(key, []).append(float(pruned.evaluate(x_test, y_test, verbose=0)[1]))
                    overall.setdefault(key, []).append(sparsity_report(pruned).sparsity)
                    if rewinding is not None:
                        rewinds.setdefault(key, rewinding.rewinds)  # the first seed's
                progress(f"  {model_name} seed {seed} sparsity {final}: done")
    return [
        {
            "model": model_name,
            "schedule": row,
            "final_sparsity": final,
            **spread(values),
            "overall_sparsity": float(np.mean(overall[(model_name, row, final)])),
            "rewinds": rewinds.get((model_name, row, final), []),
        }
        for (model_name, row, final), values in accuracy.items()
    ]


def format_rows(rows: list[dict]) -> str:
    sparsities = sorted({r["final_sparsity"] for r in rows})
    lines = []
    for model_name in dict.fromkeys(r["model"] for r in rows):
        lines.append(f"{model_name:<48}" + "".join(f"{f'overall {s:g}':>18}" for s in sparsities))
        for name in dict.fromkeys(r["schedule"] for r in rows if r["model"] == model_name):
            cells = []
            for s in sparsities:
                (r,) = [r for r in rows if (r["model"], r["schedule"], r["final_sparsity"]) == (model_name, name, s)]
                cells.append(f"{r['mean_accuracy']:.4f} ± {r['std_accuracy']:.4f}".rjust(18))
            lines.append(f"{name:<48}" + "".join(cells))
        lines.append("")
    return "\n".join(lines)
