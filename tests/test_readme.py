"""The README's example of a schedule of your own runs as written and passes `check_schedule`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from schedules import registry

README = Path(__file__).resolve().parent.parent / "README.md"


def code_block_after(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading) :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_your_own_schedule_example_runs_and_passes_the_contract():
    code = code_block_after("## Your own schedule")
    namespace = {"__name__": "readme_example"}
    try:
        exec(compile(code, "README.md", "exec"), namespace)  # runs check_schedule: raises if it fails
        schedule = namespace["schedule"]
        assert type(schedule).__name__ == "SineSparsity" and registry.family("sine").cls is type(schedule)
        steps = np.array([100, 550, 1000])
        p = (steps - 100) / 900
        expected = 0.9 * np.sin(np.pi / 2 * p)  # the docstring's formula, in float64
        np.testing.assert_allclose(schedule(steps)[1].numpy(), expected, atol=1e-7)
    finally:
        registry._FAMILIES.pop("sine", None)


def test_the_example_is_about_twenty_lines():
    lines = [line for line in code_block_after("## Your own schedule").splitlines() if line.strip()]
    assert len(lines) <= 20, len(lines)
    code = code_block_after("## Your own schedule")
    assert "def ramp(self, progress)" in code and "@schedules.register" in code
