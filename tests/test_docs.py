"""The documentation's code runs as written: every Python block of `docs/`, page by page, and the README's.

A page's blocks run in order in one namespace, in a scratch directory, after the page's hidden setup
(an HTML comment `<!-- test-setup ... -->`, invisible on the page, that makes the data an example
refers to). A block that is not a program (a formula) is marked `<!-- not-run: why -->` on the line
before it. The README's examples are copies of the docs' (checked), so they run there. Beyond running,
the own-schedule example is checked against its formula, and the README keeps to its size and links to
pages that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from schedules import registry

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))

# A fenced block (```python ... ```), a hidden setup, or a not-run mark before a block.
_PIECE = re.compile(
    r"^<!-- not-run: (?P<why>[^\n]*?) -->\n```python\n.*?^```$"
    r"|^<!-- test-setup[^\n]*\n(?P<setup>.*?)^-->$"
    r"|^```python\n(?P<code>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)


def programs(page: Path) -> list[tuple[int, str]]:
    """The code a page runs, in order: `(line, source)` for each setup and each block not marked not-run."""
    text = page.read_text()
    found = []
    for match in _PIECE.finditer(text):
        if match.group("why") is not None:
            assert match.group("why").strip(), f"{page.name}: a not-run mark must say why"
            continue
        code = match.group("setup") if match.group("setup") is not None else match.group("code")
        found.append((text.count("\n", 0, match.start()) + 1, code))
    return found


def run_page(page: Path) -> dict:
    namespace: dict = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for line, code in programs(page):
        # Pad so that a traceback gives the line in the Markdown file.
        exec(compile("\n" * line + code, str(page), "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def _scratch(tmp_path, monkeypatch):
    """Examples write files (`pruned.keras`, `sparsity.csv`): in a scratch directory, with no display."""
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("page", [p for p in PAGES if programs(p)], ids=lambda p: p.name)
def test_page_examples_run(page):
    try:
        run_page(page)
    finally:
        registry._FAMILIES.pop("sine", None)  # the own-schedule page registers one
        matplotlib.pyplot.close("all")


def test_your_own_schedule_is_the_formula_and_about_twenty_lines():
    page = DOCS / "custom-schedules.md"
    try:
        namespace = run_page(page)  # runs check_schedule: raises if the contract fails
        schedule = namespace["schedule"]
        assert type(schedule).__name__ == "SineSparsity" and registry.family("sine").cls is type(schedule)
        steps = np.array([100, 550, 1000])
        expected = 0.9 * np.sin(np.pi / 2 * (steps - 100) / 900)  # the docstring's formula, in float64
        np.testing.assert_allclose(schedule(steps)[1].numpy(), expected, atol=1e-7)
    finally:
        registry._FAMILIES.pop("sine", None)
    (_, code), *_ = programs(page)
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 20 and "def ramp(self, gone, length)" in code and "@schedules.register" in code


def test_every_python_block_is_run_or_says_why_not():
    for page in PAGES:
        text = page.read_text()
        blocks = len(re.findall(r"^```python$", text, re.MULTILINE))
        marked = len(re.findall(r"^<!-- not-run: .+ -->\n```python$", text, re.MULTILINE))
        run = sum(1 for _, code in programs(page)) - len(re.findall(r"^<!-- test-setup", text, re.MULTILINE))
        assert blocks == run + marked, page.name


def test_the_readme_examples_are_docs_examples_that_run():
    docs = "".join(page.read_text() for page in PAGES)
    blocks = re.findall(r"^```python\n.*?^```$", README.read_text(), re.DOTALL | re.MULTILINE)
    assert blocks
    for block in blocks:
        assert block in docs, f"README block not found verbatim in docs/ (so not run): {block[:80]!r}"


def test_the_docs_home_page_opens_with_the_readme_front_matter():
    """What it is, the headline and the family table: the same on the README and the docs' home page."""
    readme = README.read_text()
    front = readme[: readme.index("![The ramp families")].replace("](docs/", "](")
    assert (DOCS / "index.md").read_text().startswith(front)


def test_the_readme_is_a_front_page_whose_links_and_pictures_exist():
    text = README.read_text()
    assert len(text) <= 15_000, len(text)
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert any(t.startswith("docs/") for t in local)
    for target in local:
        assert (ROOT / target).exists(), target


def test_the_docs_pictures_exist():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            assert (DOCS / target).is_file(), f"{page.name}: {target}"


def test_the_api_reference_has_every_export():
    import schedules

    reference = (DOCS / "reference.md").read_text()
    missing = [name for name in schedules.__all__ if f"::: schedules.{name}\n" not in reference]
    assert not missing, f"docs/reference.md does not document {missing}"


def test_the_changelog_keeps_a_changelog_strictly():
    """Keep a Changelog 1.1: each release dated (but Unreleased), only its six kinds of change, each once."""
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    assert releases and releases[0].startswith("[Unreleased]\n")
    for release in releases:
        heading = release.splitlines()[0]
        assert heading == "[Unreleased]" or re.fullmatch(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}", heading), heading
        kinds = re.findall(r"^### (.*)$", release, flags=re.MULTILINE)
        assert kinds and len(kinds) == len(set(kinds)), (heading, kinds)
        assert set(kinds) <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, (heading, kinds)
