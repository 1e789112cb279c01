"""Evidence after training: what the masks did at every pruning step.

`PruningRecorder` is a Keras callback. During `fit` it watches every
`PruneLowMagnitude` wrapper of the model and, at each step where the wrapper's
schedule says `should_prune`, records for every pruned weight the scheduled
sparsity and the sparsity of its mask (`1 - mean(mask)`). The resulting
`SparsityRecord` saves to and loads from JSON or CSV, and `plot_record` draws
scheduled against achieved sparsity per layer.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import tf_keras

from schedules.evaluation import evaluate_schedule

__all__ = ["PruningRecorder", "RecordRow", "SparsityRecord", "expected_mask_sparsity", "kernel_sparsity", "plot_record"]

#: How many steps of a schedule the recorder evaluates at once (and caches).
_CHUNK = 4096


def expected_mask_sparsity(sparsity: float | np.ndarray, size: int) -> float | np.ndarray:
    """The mask sparsity tfmot produces for a scheduled `sparsity` on `size` weights.

    tfmot keeps the `k = max(1, round(size * (1 - sparsity)))` largest
    magnitudes (computed in float32), so the mask's sparsity is `1 - k / size`.

    >>> expected_mask_sparsity(0.5, 9)
    0.5555555555555556
    """
    keep = np.maximum(1, np.round(np.float32(size) * (np.float32(1.0) - np.float32(sparsity))))
    result = 1.0 - keep.astype(np.float64) / size
    return float(result) if np.ndim(result) == 0 else result


@dataclasses.dataclass(frozen=True)
class RecordRow:
    """One pruned weight at one pruning step."""

    step: int
    layer: str
    weight: str
    size: int
    scheduled: float
    achieved: float

    @property
    def expected(self) -> float:
        """The mask sparsity tfmot gives `scheduled` on `size` weights."""
        return expected_mask_sparsity(self.scheduled, self.size)


_FIELDS = [field.name for field in dataclasses.fields(RecordRow)]
_TYPES = {"step": int, "layer": str, "weight": str, "size": int, "scheduled": float, "achieved": float}


@dataclasses.dataclass
class SparsityRecord:
    """Rows of (step, layer, weight, size, scheduled, achieved), in recording order."""

    rows: list[RecordRow] = dataclasses.field(default_factory=list)

    def series(self) -> dict[str, dict[str, np.ndarray]]:
        """Per `"layer/weight"`: arrays `step`, `scheduled`, `achieved`, `expected`."""
        grouped: dict[str, list[RecordRow]] = {}
        for row in self.rows:
            grouped.setdefault(f"{row.layer}/{row.weight}", []).append(row)
        return {
            key: {
                "step": np.array([r.step for r in rows], dtype=np.int64),
                "scheduled": np.array([r.scheduled for r in rows]),
                "achieved": np.array([r.achieved for r in rows]),
                "expected": np.array([r.expected for r in rows]),
            }
            for key, rows in grouped.items()
        }

    def to_json(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"rows": [dataclasses.asdict(row) for row in self.rows]}, f, indent=1)

    def to_csv(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=_FIELDS)
            writer.writeheader()
            writer.writerows(dataclasses.asdict(row) for row in self.rows)

    def save(self, path: str | os.PathLike) -> None:
        """Saves as JSON or CSV, chosen by the file's extension."""
        {".json": self.to_json, ".csv": self.to_csv}[_extension(path)](path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SparsityRecord:
        """Loads a record saved as JSON or CSV (by extension)."""
        if _extension(path) == ".json":
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
                raise ValueError(f"{os.fspath(path)!r} is not a sparsity record: expected {{'rows': [...]}}")
            return cls([_row(item, path) for item in data["rows"]])
        with open(path, encoding="utf-8", newline="") as f:
            return cls([_row(item, path) for item in csv.DictReader(f)])


def _extension(path) -> str:
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in (".json", ".csv"):
        raise ValueError(f"Argument `path` must end in .json or .csv. Received: path={os.fspath(path)!r}")
    return extension


def _row(item: Any, path) -> RecordRow:
    if not isinstance(item, dict) or set(item) != set(_FIELDS):
        raise ValueError(f"{os.fspath(path)!r}: a row must have exactly the fields {_FIELDS}. Received: {item!r}")
    try:
        return RecordRow(**{name: _TYPES[name](item[name]) for name in _FIELDS})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{os.fspath(path)!r}: invalid row {item!r}: {error}") from None


def pruning_wrappers(model) -> list:
    """The layers of `model` that tfmot's `prune_low_magnitude` wrapped, built or not.

    (The wrapper sets `pruning_schedule` and `pruning_vars` in its constructor;
    `pruning_vars` is filled, and `pruning_step` made, when it is built.)
    """
    return [
        layer for layer in model.submodules if hasattr(layer, "pruning_schedule") and hasattr(layer, "pruning_vars")
    ]


class PruningRecorder(tf_keras.callbacks.Callback):
    """Records scheduled and achieved mask sparsity at every pruning step of `fit`.

    Use it next to `tfmot.sparsity.keras.UpdatePruningStep()`; the record is
    in `recorder.record` (a `SparsityRecord`) and, if `path` is given, saved
    there (`.json` or `.csv`) at the end of training. It reads the masks after
    every batch, so with `steps_per_execution > 1` it sees only the pruning
    steps that end an execution.

    ```python
    recorder = PruningRecorder("sparsity.csv")
    model.fit(x, y, callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), recorder])
    plot_record(recorder.record).figure.savefig("sparsity.png")
    ```
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        if path is not None:
            _extension(path)
        self.path = path
        self.record = SparsityRecord()
        self._events: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
        self._last_step: dict[int, int] = {}

    def _schedule_at(self, layer, step: int) -> tuple[bool, float]:
        cached = self._events.get(id(layer))
        if cached is None or not cached[0] <= step < cached[0] + _CHUNK:
            first = max(step, 0)
            _, prune, sparsity = evaluate_schedule(layer.pruning_schedule, np.arange(first, first + _CHUNK))
            cached = self._events[id(layer)] = (first, prune, sparsity)
        first, prune, sparsity = cached
        return bool(prune[step - first]), float(sparsity[step - first])

    def on_train_begin(self, logs=None) -> None:
        self._layers = None  # found at the first batch, once the model is built

    def on_train_batch_end(self, batch, logs=None) -> None:
        if getattr(self, "_layers", None) is None:
            self._layers = [layer for layer in pruning_wrappers(self.model) if layer.pruning_vars]
        for layer in self._layers:
            step = int(layer.pruning_step.numpy())
            if step < 0 or self._last_step.get(id(layer)) == step:
                continue
            self._last_step[id(layer)] = step
            should_prune, scheduled = self._schedule_at(layer, step)
            if not should_prune:
                continue
            for weight, mask, _threshold in layer.pruning_vars:
                mask_value = mask.numpy()
                self.record.rows.append(
                    RecordRow(
                        step=step,
                        layer=layer.name,
                        weight=_short_name(weight.name),
                        size=int(mask_value.size),
                        scheduled=scheduled,
                        achieved=float(1.0 - mask_value.mean()),
                    )
                )

    def on_train_end(self, logs=None) -> None:
        if self.path is not None:
            self.record.save(self.path)


def kernel_sparsity(model) -> dict[str, float]:
    """Share of exactly-zero entries in each layer's `kernel`, by layer name.

    Use it on a model after `tfmot.sparsity.keras.strip_pruning`.
    """
    return {
        layer.name: float(np.mean(layer.kernel.numpy() == 0.0)) for layer in model.layers if hasattr(layer, "kernel")
    }


def _short_name(name: str) -> str:
    return name.rsplit("/", 1)[-1].split(":")[0]


def plot_record(record: SparsityRecord, *, ax=None, layers: Iterable[str] | None = None, title: str | None = None):
    """Draws scheduled (line) against achieved (markers) sparsity per pruned weight.

    The line is the sparsity the schedule asked for at each pruning step; the
    markers are each mask's sparsity after that step. They agree to within
    one weight (`1 / size`): tfmot keeps `max(1, round(size * (1 - s)))` weights.

    Returns:
      The matplotlib `Axes` drawn on.
    """
    from schedules.plotting import label_axes, new_axes

    created = ax is None
    if created:
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
    handles = {}
    for line in ax.lines:
        handles.setdefault(line.get_label(), line)
    if handles:
        ax.legend(handles=list(handles.values()), loc="lower right", fontsize="small")
    label_axes(ax, created)
    if title:
        ax.set_title(title)
    return ax
