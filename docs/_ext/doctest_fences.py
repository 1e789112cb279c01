"""A griffe extension for the API reference: docstring examples (`>>>` lines) become `pycon` code blocks.

The docstrings keep plain doctest examples, which `pytest --doctest-modules` runs; without this, Markdown
would read `>>>` as a block quote and `[0.0, 0.5]` in an output line as a link.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """Wraps each run of doctest lines (from a `>>>` line to the next blank line) in a `pycon` fence."""
    out: list[str] = []
    fence = ""  # the indentation of the open doctest block, or "" when none is open
    in_fence = False
    for line in text.splitlines():
        stripped = line.lstrip()
        if not in_fence and stripped.startswith(">>>"):
            fence = line[: len(line) - len(stripped)]
            out.append(f"{fence}```pycon")
            in_fence = True
        elif in_fence and not stripped:
            out.append(f"{fence}```")
            in_fence = False
        out.append(line)
    if in_fence:
        out.append(f"{fence}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fences the doctest examples of every docstring mkdocstrings renders."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
