"""Whole numbers of kept weights for `allocate`, and the sparsities at which tfmot keeps them.

`whole_weights` rounds each layer's real-valued share to a whole count, the
counts adding up to the budget. tfmot keeps `max(1, round(n * (1 - s)))`
weights of each pruned weight of `n` (`layer_kept`): for a layer with one pruned
weight, `1 - k / n` gives back `k`. A layer with several (a
`MultiHeadAttention`'s four projection kernels, an RNN's kernel and recurrent
kernel) reaches only some totals; `reachable_counts` finds those around a count,
and `reachable_sparsities` gives such a layer the nearest and moves the
difference to the layers with one pruned weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from schedules.evaluation import expected_kept

__all__ = ["layer_kept", "reachable_counts", "reachable_sparsities", "whole_weights"]


def layer_kept(parts: Sequence[int], sparsity: float) -> int:
    """What tfmot keeps of a layer whose pruned weights have `parts` sizes, at `sparsity`."""
    return sum(int(expected_kept(sparsity, size)) for size in parts)


def whole_weights(ideal: np.ndarray, floor: np.ndarray, n: np.ndarray, budget: int) -> np.ndarray:
    """Whole kept counts in `[floor, n]` adding up to `budget`, nearest to `ideal` (largest remainders)."""
    whole = np.floor(ideal + 1e-9)
    kept = np.clip(whole, floor, n).astype(np.int64)
    remainder = ideal - whole
    while kept.sum() < budget:  # one more weight each, largest remainders first
        for i in np.argsort(-remainder, kind="stable"):
            if kept.sum() < budget and kept[i] < n[i]:
                kept[i] += 1
    while kept.sum() > budget:  # one fewer each, smallest remainders first
        for i in np.argsort(remainder, kind="stable"):
            if kept.sum() > budget and kept[i] > floor[i]:
                kept[i] -= 1
    return kept


def reachable_sparsities(
    parts: Sequence[Sequence[int]], names: Sequence[str], kept: np.ndarray, floor: np.ndarray, n: np.ndarray
) -> dict[str, float]:
    """Sparsities that make tfmot keep `kept` weights of each layer, by name.

    A layer with one pruned weight gets `1 - k / n`. One with several gets the count nearest `k`
    it can keep (`reachable_counts`); the difference goes to the layers with one pruned weight, the largest
    first, within their `[floor, n]`.
    """
    kept = kept.astype(np.int64)
    density = kept / n
    missing = 0  # weights the several-weight layers keep fewer than asked
    for i, p in enumerate(parts):
        if len(p) > 1:
            options = [o for o in reachable_counts(p, int(kept[i])) if floor[i] <= o[0] <= n[i]]
            count, density[i] = min(options, key=lambda o: (abs(o[0] - kept[i]), o[0]))
            missing += int(kept[i]) - count
            kept[i] = count
    for i in sorted((i for i, p in enumerate(parts) if len(p) == 1), key=lambda i: -n[i]):
        change = min(missing, n[i] - kept[i]) if missing > 0 else max(missing, floor[i] - kept[i])
        kept[i] += change
        missing -= change
        density[i] = kept[i] / n[i]
    return {name: float(1.0 - d) for name, d in zip(names, density, strict=True)}


def reachable_counts(parts: Sequence[int], k: int) -> list[tuple[int, float]]:
    """The kept counts nearest `k`, at most and at least `k`, that a layer whose pruned weights have
    `parts` sizes can keep, each with the density in the middle of the densities that give it.

    At density `d` tfmot keeps `sum_i max(1, round(n_i * d))`: a step function of `d`, stepping
    where some `n_i * d` is a half-integer. The middle of a step is the furthest from rounding
    otherwise (for equal sizes, `k_i / n_i` exactly, as for a layer with one weight).
    """
    sizes = np.asarray(parts, dtype=np.float64)

    def step(d: float) -> tuple[int, float, float]:
        """The count on the step holding density `d`, and the step's ends."""
        count = int(np.sum(np.maximum(1.0, np.floor(sizes * d + 0.5))))
        below = np.floor(sizes * d - 0.5) + 0.5  # the half-integers around each n_i * d
        return count, float(np.max(below / sizes)), float(np.min((below + 1.0) / sizes))

    def found(count: int, low: float, high: float) -> tuple[int, float]:
        return count, 1.0 if count == sizes.sum() else (max(low, 0.0) + min(high, 1.0)) / 2

    count, low, high = step(k / sizes.sum())
    while count > k and low > 0.0:  # down to a step at most k
        count, low, high = step(low - 1e-9 / sizes.max())
    below = found(count, low, high) if count <= k else None
    while count < k and high < 1.0:  # up, step by step, to the lowest step at least k
        count, low, high = step(high + 1e-9 / sizes.max())
        if count <= k:
            below = found(count, low, high)
    above = found(count, low, high) if count >= k else None
    return [option for option in (below, above) if option is not None]
