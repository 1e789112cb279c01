"""The formulas of `allocate`'s methods, in NumPy, on layer sizes and a budget of kept weights.

* `"uniform"`, `"erdos_renyi"`, `"erk"`: a density per layer proportional to
  `raw_density`, scaled by `water_fill` to the budget (Evci et al. 2020);
* `"global_magnitude"`, `"lamp"`: one threshold over the whole model
  (`global_magnitude`), on the weights' magnitudes or on their `lamp_scores`
  (Lee et al. 2021);
* `"sensitivity"`: each layer at the largest sparsity whose measured damage
  stays under one common bound (`sensitivity_density`).

Each layer stays within its floor and its size. For every method but
`"uniform"`, `allocate` turns the densities into whole numbers of kept weights
(`schedules.allocation_counts`).
"""

from __future__ import annotations

import math

import numpy as np

from schedules import _validation as v
from schedules.allocation_counts import whole_weights
from schedules.sensitivity import SensitivitySweep

__all__ = ["global_magnitude", "lamp_scores", "raw_density", "sensitivity_density", "water_fill"]


def raw_density(method: str, shapes: list[tuple[int, ...]]) -> float:
    """The unscaled density of a layer with kernels of `shapes` under `method`."""
    if method == "uniform":
        return 1.0
    if method == "erdos_renyi":
        dims = [shape[-2:] if len(shape) >= 2 else shape for shape in shapes]
        return sum(sum(d) for d in dims) / sum(math.prod(d) for d in dims)
    return sum(sum(shape) for shape in shapes) / sum(math.prod(shape) for shape in shapes)  # erk


def water_fill(n: np.ndarray, raw: np.ndarray, low: np.ndarray, budget: float) -> np.ndarray:
    """Densities `clip(eps * raw, low, 1)` with `sum(n * density) == budget`, solved exactly.

    The kept count is piecewise linear and non-decreasing in `eps`, with breaks
    where a layer leaves its floor (`low / raw`) or fills up (`1 / raw`).
    """

    def kept(eps: float) -> float:
        return float(np.sum(n * np.clip(eps * raw, low, 1.0)))

    breaks = np.unique(np.concatenate([low / raw, 1.0 / raw]))
    values = np.array([kept(b) for b in breaks])
    i = int(np.searchsorted(values, budget))
    if i >= len(breaks):
        return np.ones_like(raw)
    if i == 0 or values[i] == values[i - 1]:
        eps = breaks[i]
    else:
        eps = breaks[i - 1] + (budget - values[i - 1]) * (breaks[i] - breaks[i - 1]) / (values[i] - values[i - 1])
    return np.clip(eps * raw, low, 1.0)


def global_magnitude(magnitudes: list[np.ndarray], floor: np.ndarray, budget: int) -> np.ndarray:
    """Kept counts from one threshold over all `magnitudes`: each layer keeps its weights at or
    above it (at least its floor), with the threshold the highest that keeps `budget` in all."""
    ranked = [np.sort(m)[::-1] for m in magnitudes]
    n = np.array([m.size for m in ranked], dtype=np.int64)

    def kept(threshold: float) -> np.ndarray:
        above = np.array([np.searchsorted(-m, -threshold, side="right") for m in ranked], dtype=np.int64)
        return np.clip(above, floor, n)

    candidates = np.unique(np.concatenate(ranked))[::-1]  # thresholds, highest first
    lo, hi = 0, len(candidates) - 1  # find the first (highest) threshold keeping >= budget
    while lo < hi:
        mid = (lo + hi) // 2
        if kept(candidates[mid]).sum() >= budget:
            hi = mid
        else:
            lo = mid + 1
    counts = kept(candidates[lo])
    # Ties at the threshold can overshoot: drop tied weights (tfmot breaks ties its own way).
    return whole_weights(counts.astype(np.float64), floor, n, budget)


def lamp_scores(magnitudes: np.ndarray) -> np.ndarray:
    """LAMP scores of one layer's weights, in float64 and in the order of `magnitudes`.

    They rise with the magnitude within a layer, so a threshold on them keeps a
    layer's largest weights, as a magnitude threshold does; only the counts differ.
    """
    order = np.argsort(magnitudes, kind="stable")
    squares = magnitudes[order].astype(np.float64) ** 2
    tail = np.cumsum(squares[::-1])[::-1]  # sum of the squares from each weight up
    scores = np.empty_like(squares)
    scores[order] = np.divide(squares, tail, out=np.zeros_like(squares), where=tail > 0)
    return scores


def sensitivity_density(
    sweep: SensitivitySweep, free: list[str], n: np.ndarray, floor: np.ndarray, budget: int
) -> np.ndarray:
    """Densities from the sweep: each layer at the largest sparsity whose (monotone) measured damage
    is at most `bound`, linearly between the measured sparsities; `bound` found by bisection."""
    grid = np.array([0.0, *sweep.sparsities])
    curves = []
    for name in free:
        damage = np.maximum.accumulate(np.maximum(np.array([0.0, *sweep.damage(name)]), 0.0))
        curves.append(damage + 1e-9 * np.arange(len(grid)))  # strictly increasing, so invertible

    def density(bound: float) -> np.ndarray:
        sparsity = np.array([np.interp(bound, curve, grid) for curve in curves])
        return np.clip(1.0 - sparsity, floor / n, 1.0)

    top = max(float(curve[-1]) for curve in curves)
    if np.sum(n * density(top)) > budget:
        raise v.invalid(
            "sparsities",
            f"a sweep reaching the target: with every layer at its largest tried sparsity "
            f"({grid[-1]}) the model keeps {int(np.sum(n * density(top)))} weights, more than {budget}",
            tuple(sweep.sparsities),
        )
    lo, hi = 0.0, top
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.sum(n * density(mid)) > budget:
            lo = mid
        else:
            hi = mid
    return density(hi)
