"""Accuracy of channel pruning against unstructured pruning at 25% and 50%, on the digits.

The section `patterns` trains (`benchmarks/patterns.py`: the same split, models, dense phase,
pruned phase and choices on validation), with other rows: `dense`; `unstructured 0.25` and
`unstructured 0.5` (`PruningCallback`, `CubicSparsity` to the sparsity over 5% to 70% of the
phase's steps); `channels 0.25` and `channels 0.5` (`schedules.ChannelPruning` on the same
schedule: that share of every channel group's channels removed, the rest of the model whole).
`params` is the parameters of the model shrunk to its kept channels (`schedules.channels.shrink`),
or of the model itself for the other rows.
"""

from __future__ import annotations

from benchmarks.patterns import FULL, QUICK, SEEDS, format_rows, section
from schedules import ChannelPruning, CubicSparsity
from schedules.keras3 import PruningCallback

ROWS = ("dense", "unstructured 0.25", "unstructured 0.5", "channels 0.25", "channels 0.5")

__all__ = ["ROWS", "format_rows", "run"]


def _callback(row: str, window: dict):
    if row == "dense":
        return None
    kind, sparsity = row.split()
    schedule = CubicSparsity(
        0.0, float(sparsity), window["begin_step"], window["end_step"], frequency=window["frequency"]
    )
    return ChannelPruning(schedule) if kind == "channels" else PruningCallback(schedule)


def run(quick: bool = False, seeds=SEEDS, progress=print) -> list[dict]:
    seeds = tuple(seeds)[:1] if quick else tuple(seeds)
    setups = QUICK if quick else FULL
    return [row for setup in setups for row in section(setup, seeds, progress, ROWS, _callback)]
