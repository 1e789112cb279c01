"""Timing helpers: interleaved rounds, medians, ratios against a baseline of the same run."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    seed: int = 0,
    before: Mapping[str, Callable[[], object]] | None = None,
) -> dict[str, list[float]]:
    """Times every function once per round, for `rounds` rounds, in an order shuffled
    anew each round (seeded): no function always runs first, or always after another.
    `before[name]()`, if given, runs untimed before each call of `fns[name]`."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    order, rng = list(fns), random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            if before is not None:
                before[name]()
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratios(times: dict[str, list[float]], baseline: str) -> dict[str, float]:
    """Per variant, the median over rounds of its time divided by the baseline's in that round."""
    return {name: median_ratio(values, times[baseline]) for name, values in times.items()}


def median_ratio(values: list[float], baseline: list[float]) -> float:
    """The median over rounds of `values[k] / baseline[k]` (NaN for a round whose baseline is 0)."""
    return statistics.median(v / b if b > 0 else float("nan") for v, b in zip(values, baseline, strict=True))
