"""The files a sparsity record is kept in: JSON (`{"rows": [...]}`) or CSV (a header, one row a line).

Rows are plain dicts with the fields given; the record type (`schedules.record`)
turns them into typed rows.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["EXTENSIONS", "check_extension", "read_rows", "write_rows"]

EXTENSIONS = (".json", ".csv")


def check_extension(path: str | os.PathLike) -> str:
    """The file's extension, `.json` or `.csv`, or a `ValueError` naming the path."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in EXTENSIONS:
        raise ValueError(f"Argument `path` must end in .json or .csv. Received: path={os.fspath(path)!r}")
    return extension


def write_rows(path: str | os.PathLike, fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Writes `rows` as JSON or CSV, chosen by the file's extension."""
    if check_extension(path) == ".json":
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"rows": list(rows)}, f, indent=1)
        return
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def read_rows(path: str | os.PathLike) -> list[Any]:
    """The rows of a JSON or CSV record file (CSV values are strings).

    Raises:
      ValueError: a JSON file that is not `{"rows": [...]}`.
    """
    if check_extension(path) == ".json":
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise ValueError(f"{os.fspath(path)!r} is not a sparsity record: expected {{'rows': [...]}}")
        return data["rows"]
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
