"""The record of what pruning did: scheduled and achieved mask sparsity at every pruning step.

`PruningRecorder` (in `schedules.callbacks`) fills a `SparsityRecord` during
`fit`; `plot_record` (in `schedules.plotting`) draws it.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from schedules.evaluation import expected_mask_sparsity
from schedules.record_files import read_rows, write_rows

__all__ = ["RecordRow", "SparsityRecord"]


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
        return float(expected_mask_sparsity(self.scheduled, self.size))


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

    def save(self, path: str | os.PathLike) -> None:
        """Saves as JSON or CSV, chosen by the file's extension."""
        write_rows(path, _FIELDS, (dataclasses.asdict(row) for row in self.rows))

    @classmethod
    def load(cls, path: str | os.PathLike) -> SparsityRecord:
        """Loads a record saved as JSON or CSV (by extension).

        Raises:
          ValueError: the file is not a record, or a row is invalid.
        """
        return cls([_row(item, path) for item in read_rows(path)])


def _row(item: object, path: str | os.PathLike) -> RecordRow:
    if not isinstance(item, dict) or set(item) != set(_FIELDS):
        raise ValueError(f"{os.fspath(path)!r}: a row must have exactly the fields {_FIELDS}. Received: {item!r}")
    try:
        return RecordRow(**{name: _TYPES[name](item[name]) for name in _FIELDS})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{os.fspath(path)!r}: invalid row {item!r}: {error}") from None
