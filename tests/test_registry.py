"""One list of families: every exported schedule is registered, and everything that should know a
family does (the test cases, the command line, the gallery, the benchmarks, the docs)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from _registry import CASES, FRESH_PROCESS_CASES, SLOW_SUBSET

import schedules
from benchmarks import cost
from schedules import catalog, gallery, registry

ROOT = Path(__file__).resolve().parent.parent

EXPORTED = sorted(
    (
        cls
        for name in schedules.__all__
        if isinstance(cls := getattr(schedules, name), type)
        and issubclass(cls, tfmot.sparsity.keras.PruningSchedule)
        and not inspect.isabstract(cls)
    ),
    key=lambda cls: cls.__name__,
)
OURS = [family for family in registry.families() if family.cls.__module__.startswith("schedules.")]


def test_every_exported_schedule_is_a_registered_family_and_nothing_else_is():
    assert {family.cls for family in OURS} == set(EXPORTED)
    assert len(EXPORTED) == 11
    assert {family.name for family in registry.families()} - {family.name for family in OURS} == {
        "constant",
        "polynomial",
    }


@pytest.mark.parametrize("family", OURS, ids=lambda family: family.name)
def test_the_family_is_known_everywhere_it_should_be(family):
    cls = family.cls
    cases = [name for name, factory in CASES.items() if type(factory(0)) is cls]
    assert cases, f"{cls.__name__} has no case in tests/_registry.py CASES"
    assert any(type(CASES[name](0)) is cls for name in SLOW_SUBSET), f"{cls.__name__} is not in SLOW_SUBSET"
    fresh = [test for test, names in FRESH_PROCESS_CASES.items() if any(type(CASES[n](0)) is cls for n in names)]
    assert fresh, f"{cls.__name__} is in none of the fresh-process tests (FRESH_PROCESS_CASES)"
    assert tfmot.sparsity.keras.PruningSchedule in cls.__mro__
    assert registry.schedule_classes()[f"schedules>{cls.__name__}"] is cls
    if family.command_line:
        assert family in catalog.command_line_families()
        catalog.build(family.name)  # the command line builds it from its defaults alone
        drawn = {
            spec.get("_family", picture) for picture, curves in gallery.PICTURES.items() for spec in curves.values()
        }
        assert family.name in drawn, f"{family.name} has no picture in schedules/gallery.py PICTURES"
    families = (ROOT / "docs" / "families.md").read_text()
    section = re.search(rf"^## .*`{cls.__name__}\(", families, re.MULTILINE)
    assert section, f"docs/families.md has no section for {cls.__name__}"
    timed = {type(case.schedule) for case in cost.schedules_under_test().values()}
    assert cls in timed, f"the cost benchmark does not time {cls.__name__}"


def test_the_slow_cases_are_cases_once_each():
    """`SLOW_SUBSET` holds one case of each family (the per-family test above checks that
    each is there); each fresh-process test's cases are distinct cases of `CASES`."""
    assert len(set(SLOW_SUBSET)) == len(SLOW_SUBSET) == len(OURS) and set(SLOW_SUBSET) <= set(CASES)
    for names in FRESH_PROCESS_CASES.values():
        assert len(set(names)) == len(names) and set(names) <= set(CASES), names


def test_register_adds_a_family_that_the_catalog_builds():
    @schedules.register(name="test_only_linear")
    class LinearTestSparsity(schedules.RampSchedule):
        def ramp(self, gone, length):
            progress = tf.cast(gone, tf.float64) / length
            return self.initial_sparsity + (self.final_sparsity - self.initial_sparsity) * progress

    try:
        family = registry.family("test_only_linear")
        assert family.cls is LinearTestSparsity and family.parameters()[-1] == "frequency"
        built = catalog.build("test_only_linear", {"final_sparsity": 0.5})
        assert type(built) is LinearTestSparsity and float(built(1000)[1]) == pytest.approx(0.5)
        with pytest.raises(ValueError, match=r"'test_only_linear' .*takes no parameter 'power'"):
            catalog.build("test_only_linear", {"power": 2})
        with pytest.raises(ValueError, match="clashes"):
            registry.add(CASES["cubic"](0).__class__, "test_only_linear")
        with pytest.raises(ValueError, match="clashes"):
            registry.add(LinearTestSparsity, "another_name")

        @schedules.register(name="test_only_linear")
        class LinearTestSparsity(schedules.RampSchedule):  # defined again, as a notebook cell run twice
            def ramp(self, gone, length):
                return self.final_sparsity * tf.cast(gone, tf.float64) / length

        assert registry.family("test_only_linear").cls is LinearTestSparsity
    finally:
        registry._FAMILIES.pop("test_only_linear")


def test_unknown_family_names_every_known_one():
    with pytest.raises(ValueError, match=r"Unknown schedule family 'cubical'\. Choose one of: alternating, cosine"):
        registry.family("cubical")


def test_the_typed_pruning_schedule_is_tfmots():
    from schedules._tfmot import PruningSchedule

    assert PruningSchedule is tfmot.sparsity.keras.PruningSchedule
