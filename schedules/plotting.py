"""Pictures of schedules: what a schedule will do (before training) and what training did.

Importing this module does not import matplotlib; drawing does. Library code
here keeps no pyplot state: every function takes an optional
matplotlib `Axes`, draws on it with the object-oriented API and returns it;
with `ax=None` it makes a new `Figure` (not registered with pyplot, never
shown). Save with `ax.figure.savefig(path)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from schedules._tfmot import PruningSchedule
from schedules.allocation import Allocation
from schedules.evaluation import evaluate_schedule
from schedules.inspection import SparsityReport
from schedules.record import SparsityRecord
from schedules.sensitivity import SensitivitySweep

__all__ = [
    "label_axes",
    "new_axes",
    "plot_allocation",
    "plot_record",
    "plot_schedule",
    "plot_schedules",
    "plot_sensitivity",
    "save_figure",
]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D


def new_axes(figsize: tuple[float, float] = (7.0, 3.6)) -> Axes:
    """A fresh `Axes` on a new `Figure` that pyplot does not know about."""
    from matplotlib.figure import Figure  # matplotlib is imported only when something is drawn

    figure = Figure(figsize=figsize, layout="constrained")
    return figure.add_subplot()


def save_figure(ax: Axes, path: str | os.PathLike, **kwargs: Any) -> None:
    """Saves the whole figure `ax` is drawn on (`**kwargs` to `Figure.savefig`, e.g. `dpi`)."""
    figure = ax.get_figure(root=True)
    if figure is None:
        raise ValueError("Argument `ax` must be drawn on a figure. Received: an Axes on none")
    figure.savefig(path, **kwargs)


def plot_schedule(
    schedule: PruningSchedule,
    steps: int | Iterable[int] | np.ndarray,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    mark_pruning_steps: bool = True,
    marker_kwargs: Mapping[str, Any] | None = None,
    **line_kwargs: Any,
) -> Axes:
    """Draws a schedule's sparsity curve and marks its pruning steps.

    `ax.lines[-2]` (or `[-1]` without markers) is the curve, one point per
    step; `ax.lines[-1]` holds one marker at every step where `should_prune`
    is true, at the sparsity applied there. Works for any tfmot
    `PruningSchedule`: ours and tfmot's take the whole vector of steps in one
    call; a schedule that cannot is evaluated step by step.

    Args:
      schedule: any `tfmot.sparsity.keras.PruningSchedule`.
      steps: an int `n` (the steps `0 .. n`) or a 1-D sequence of integer steps.
      ax: the matplotlib `Axes` to draw on; `None` makes a new figure.
      label: legend label of the curve (default: the schedule's class name).
      mark_pruning_steps: draw the pruning-step markers.
      marker_kwargs: matplotlib options for the markers.
      **line_kwargs: matplotlib options for the curve.

    Returns:
      The matplotlib `Axes` drawn on.

    >>> from schedules import CubicSparsity
    >>> ax = plot_schedule(CubicSparsity(0.0, 0.8, 0, 100, frequency=50), 120)
    >>> [(int(x), round(float(y), 2)) for x, y in ax.lines[0].get_xydata()[[0, 50, 120]]]
    [(0, 0.0), (50, 0.7), (120, 0.8)]
    >>> ax.lines[1].get_xdata().tolist()
    [0, 1, 50, 100]
    """
    created = ax is None
    if ax is None:
        ax = new_axes()
    steps, should_prune, sparsity = evaluate_schedule(schedule, steps)
    label = type(schedule).__name__ if label is None else label
    (line,) = ax.plot(steps, sparsity, label=label, **{"linewidth": 1.6, **line_kwargs})
    if mark_pruning_steps:
        style = {"linestyle": "none", "marker": "o", "markersize": 3.5, "color": line.get_color()}
        ax.plot(steps[should_prune], sparsity[should_prune], **{**style, **dict(marker_kwargs or {})})
    label_axes(ax, created)
    return ax


def label_axes(ax: Axes, created: bool) -> None:
    """Axis labels where missing; limits and grid only on an Axes we created."""
    if not ax.get_xlabel():
        ax.set_xlabel("training step")
    if not ax.get_ylabel():
        ax.set_ylabel("sparsity")
    if created:
        ax.set_ylim(-0.02, 1.0)
        ax.grid(True, alpha=0.3)


def plot_schedules(
    schedules: Mapping[str, PruningSchedule],
    steps: int | Iterable[int] | np.ndarray,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    mark_pruning_steps: bool = True,
) -> Axes:
    """Draws several schedules on one Axes with a legend, `{label: schedule}`.

    Returns:
      The matplotlib `Axes` drawn on.
    """
    created = ax is None
    if ax is None:
        ax = new_axes()
    for label, schedule in schedules.items():
        plot_schedule(schedule, steps, ax=ax, label=label, mark_pruning_steps=mark_pruning_steps)
    label_axes(ax, created)
    if schedules:
        ax.legend(handles=[line for line in ax.lines if not str(line.get_label()).startswith("_")], loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def plot_record(
    record: SparsityRecord, *, ax: Axes | None = None, layers: Iterable[str] | None = None, title: str | None = None
) -> Axes:
    """Draws scheduled (line) against achieved (markers) sparsity per pruned weight.

    The line is the sparsity the schedule asked for at each pruning step; the
    markers are each mask's sparsity after that step. They agree to within
    one weight (`1 / size`): tfmot keeps `max(1, round(size * (1 - s)))` weights.

    Returns:
      The matplotlib `Axes` drawn on.
    """
    created = ax is None
    if ax is None:
        ax = new_axes()
    series = record.series()
    keys = list(series) if layers is None else [k for k in series if k.split("/")[0] in set(layers)]
    scheduled_drawn: set[tuple] = set()
    markers = "osD^vP*X"
    for index, key in enumerate(keys):
        data = series[key]
        signature = (tuple(data["step"]), tuple(data["scheduled"]))
        if signature not in scheduled_drawn:
            scheduled_drawn.add(signature)
            ax.step(data["step"], data["scheduled"], where="post", color="0.35", linewidth=1.2, label="scheduled")
        ax.plot(
            data["step"],
            data["achieved"],
            linestyle="none",
            marker=markers[index % len(markers)],
            markersize=max(3.0, 8.0 - 1.2 * index),
            markerfacecolor="none",
            label=f"achieved: {key.removeprefix('prune_low_magnitude_')}",
        )
    handles: dict[str, Line2D] = {}
    for line in ax.lines:
        handles.setdefault(str(line.get_label()), line)
    if handles:
        ax.legend(handles=list(handles.values()), loc="lower right", fontsize="small")
    label_axes(ax, created)
    if title:
        ax.set_title(title)
    return ax


def plot_allocation(
    allocation: Allocation | Iterable[Allocation] | None = None,
    report: SparsityReport | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Bars of each layer's sparsity: allocated (one or several `Allocation`s) next to achieved (a `SparsityReport`).

    Each bar is labelled with the weights the layer keeps. Give either or both.

    Returns:
      The matplotlib `Axes` drawn on.
    """
    if allocation is None and report is None:
        raise TypeError("plot_allocation needs an `allocation`, a `report`, or both")
    if ax is None:
        ax = new_axes()
    series = []
    allocations = [] if allocation is None else [allocation] if isinstance(allocation, Allocation) else allocation
    for one in allocations:
        kept = one.kept
        series.append((f"allocated ({one.method})", {n: (s, kept[n]) for n, s in one.items()}))
    if report is not None:
        series.append(("achieved", {row.name: (row.sparsity, row.kept) for row in report.layers}))
    names = list(series[0][1])
    width = 0.8 / len(series)
    x = np.arange(len(names))
    for index, (label, values) in enumerate(series):
        heights = [values.get(name, (0.0, 0))[0] for name in names]
        bars = ax.bar(x + (index - (len(series) - 1) / 2) * width, heights, width, label=label)
        ax.bar_label(bars, labels=[str(values.get(name, (0.0, 0))[1]) for name in names], fontsize="x-small")
    ax.set_xticks(x, names)
    ax.set_ylim(0.0, 1.3)  # room above the bars for the legend
    ax.set_ylabel("sparsity (bar labels: weights kept)")
    ax.legend(loc="upper center", ncol=len(series), fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_sensitivity(sweep: SensitivitySweep, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """The metric with each layer alone pruned, against that layer's sparsity (one line per layer).

    Returns:
      The matplotlib `Axes` drawn on.
    """
    if ax is None:
        ax = new_axes()
    for name, scores in sweep.scores.items():
        ax.plot(sweep.sparsities, scores, marker="o", markersize=3, label=name)
    ax.axhline(sweep.baseline, color="0.5", linewidth=0.8, linestyle="--", label="unpruned")
    ax.set_xlabel("sparsity of the one pruned layer")
    ax.set_ylabel("metric")
    ax.legend(loc="lower left", fontsize="small")
    if title:
        ax.set_title(title)
    return ax
