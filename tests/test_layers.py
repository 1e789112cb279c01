"""Imports point one way: core <- tools <- application, checked on the source of every module of the
package as imported (in .ci/run, the installed wheel: a module missing from it fails here).

The core (the schedules, validation, the registry, evaluation, epochs as units,
the plan check) never imports the tools (callbacks, records, plotting, saving,
the contract tool) or the application (command line, demo, quick start,
gallery), and the tools never import the application. No module of the
package is imported inside a function (where it would hide a cycle), and
nothing in the core imports matplotlib.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import schedules

PACKAGE = Path(schedules.__file__).parent

LAYERS = {
    "core": {
        "_validation",
        "_tfmot",
        "_ops",
        "registry",
        "base",
        "ramp",
        "alternating",
        "cosine",
        "cubic",
        "cyclic",
        "exponential",
        "one_cycle",
        "polynomial",
        "step",
        "child_schedules",
        "composition",
        "evaluation",
        "units",
        "plan",
    },
    "tools": {
        "_attention",
        "_channel_layers",
        "channel_groups",
        "shrinking",
        "channels",
        "keras3_layers",
        "fixed_masks",
        "inspection",
        "sensitivity",
        "allocation",
        "allocation_counts",
        "allocation_methods",
        "pruning",
        "record",
        "record_files",
        "callbacks",
        "rewinding",
        "rewinding_state",
        "compression",
        "keras3_masks",
        "keras3_patterns",
        "keras3_tf",
        "keras3_jax",
        "keras3_updates",
        "keras3_constraints",
        "keras3_selection",
        "keras3_resume",
        "keras3",
        "channel_pruning",
        "plotting",
        "saving",
        "testing",
        "__init__",
    },
    "application": {
        "catalog",
        "cli",
        "demo",
        "demo_channels",
        "demo_keras3",
        "quickstart",
        "gallery",
        "models",
        "__main__",
    },
}
RANK = {module: rank for rank, layer in enumerate(LAYERS.values()) for module in layer}
#: The modules and subpackages of `schedules/` (a subpackage, such as `testing/`, has one layer for all its files).
MODULES = sorted(
    [path.stem for path in PACKAGE.glob("*.py")] + [path.parent.name for path in PACKAGE.glob("*/__init__.py")]
)


def imports(module: str) -> list[tuple[str, bool]]:
    """`(imported module, inside a function)` for every import statement of `schedules/<module>.py`, or of
    every file of the subpackage `schedules/<module>/`.

    `from schedules import x` counts as importing `schedules.x` when `x` is a module (else the package).
    """
    files = sorted((PACKAGE / module).glob("*.py")) if (PACKAGE / module).is_dir() else [PACKAGE / f"{module}.py"]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module:
                if child.module == "schedules":
                    for alias in child.names:
                        name = f"schedules.{alias.name}" if alias.name in MODULES else "schedules"
                        found.append((name, in_function))
                else:
                    found.append((child.module, in_function))
            visit(child, nested)

    for path in files:
        visit(ast.parse(path.read_text()), False)
    return found


def test_every_module_has_a_layer():
    assert set(MODULES) == set(RANK), "place the new module in LAYERS"


def test_the_package_carries_its_type_marker():
    """`py.typed` (PEP 561; setup.cfg's package_data): type checkers read the package's annotations."""
    assert (PACKAGE / "py.typed").is_file()


@pytest.mark.parametrize("module", MODULES)
def test_imports_point_down(module):
    for name, in_function in imports(module):
        if name == "schedules":  # the package itself: only the application may use its re-exports
            assert RANK[module] == RANK["cli"] or module == "__init__", f"{module} imports the package __init__"
            continue
        if name.startswith("schedules."):
            target = name.split(".")[1]
            assert RANK[target] <= RANK[module], f"{module} ({RANK[module]}) imports {target} ({RANK[target]}) above it"
            assert not in_function, f"{module} imports {target} inside a function"


@pytest.mark.parametrize("module", sorted(LAYERS["core"]))
def test_the_core_uses_no_matplotlib(module):
    assert not [name for name, _ in imports(module) if name.split(".")[0] == "matplotlib"]
