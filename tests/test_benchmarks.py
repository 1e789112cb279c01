"""The benchmark harness runs in its quick mode, so it cannot rot; the timing benchmarks cover every family."""

from __future__ import annotations

import json

import pytest

from benchmarks import cost, curve, lottery, overhead, quality
from benchmarks.__main__ import main
from schedules import registry
from schedules.models import build_cnn

FAMILIES = sorted(family.name for family in registry.families())


#: Each timing benchmark's full list of schedules (label -> `Case`), built as its full run builds it.
FULL_LISTS = {
    "overhead": lambda: {
        label: case
        for label, case in overhead.variants(10, 200, 15).items()
        if case is not None and label not in (overhead.MINIMAL, overhead.COPY)
    },
    "cost": cost.schedules_under_test,
    "curve": lambda: curve.schedules_under_test(1_000_000),
}


@pytest.mark.parametrize("benchmark", sorted(FULL_LISTS))
def test_timing_benchmarks_time_one_schedule_of_every_family(benchmark):
    built = FULL_LISTS[benchmark]()
    families = [case.family for label, case in built.items() if label not in cost.CYCLIC_PATHS]
    assert sorted(families) == FAMILIES, f"{benchmark}: one schedule per family of schedules.registry.families()"
    for case in built.values():
        assert isinstance(case.schedule, registry.family(case.family).cls)


def test_the_models_are_the_demo_cnn():
    assert quality.MODELS["CNN"] is build_cnn
    cnn, input_shape = overhead.models()["small CNN (8x8x1)"]
    assert input_shape == (8, 8, 1)
    assert [layer.name for layer in cnn().layers if layer.weights] == ["conv1", "conv2", "dense", "logits"]
    deep, _ = overhead.models()[f"deep MLP ({overhead.DEEP_LAYERS} x 16)"]
    assert overhead.pruned_layers(deep) == overhead.DEEP_LAYERS == 50


@pytest.mark.parametrize("steps", [100, 200])
def test_the_overhead_cyclic_takes_its_tables_of_runs_and_the_copy_is_the_baseline(steps):
    cases = overhead.variants(10, steps, overhead.ROUNDS)
    assert cases["CyclicSparsity"].schedule._segments is not None  # as a user's cycles of thousands of steps
    baseline, copy = cases[overhead.BASELINE].schedule, cases[overhead.COPY].schedule
    assert copy is not baseline and copy.get_config() == baseline.get_config()


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_quick_benchmarks_run_and_write_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["--quick", "--json", str(path)]) == 0
    sections = json.loads(path.read_text())
    assert all(section["quick"] is True for section in sections.values())
    results = {name: section["rows"] for name, section in sections.items()}
    out = capsys.readouterr().out
    for title in (
        "Training overhead",
        "Schedule cost",
        "Curve evaluation",
        "Quality",
        "Allocation",
        "Lottery",
        "Keras 3",
    ):
        assert title in out
    # The quick mode still puts every family through the cost and curve harness.
    assert sorted(row["family"] for row in results["cost"] if row["schedule"] not in cost.CYCLIC_PATHS) == FAMILIES
    assert sorted(row["family"] for row in results["curve"]) == FAMILIES
    for row in results["curve"]:
        assert row["vectorized_steps_per_s"] > 0 and row["loop_steps_per_s"] > 0
    assert all(row["ops"] > 0 for row in results["cost"])
    overhead_rows = {row["schedule"]: row for row in results["overhead"]}
    assert overhead_rows["tfmot PolynomialDecay"]["ratio_to_polynomial_decay"] == 1.0
    assert overhead_rows["CubicSparsity"]["family"] == "cubic" and overhead_rows["unpruned"]["family"] is None
    assert {row["pruned_layers"] for row in overhead_rows.values()} == {overhead.QUICK_DEEP_LAYERS}
    assert overhead_rows[overhead.MINIMAL]["added_ms_per_100_layers"] == 0.0  # the reference itself
    assert overhead_rows["unpruned"]["added_ms_per_100_layers"] is None
    quality_rows = results["quality"]
    assert {row["schedule"] for row in quality_rows} >= {"dense", "CubicSparsity", "tfmot PolynomialDecay"}
    assert all(0.0 <= row["mean_accuracy"] <= 1.0 for row in quality_rows)
    allocation_rows = {row["allocation"]: row for row in results["allocation"]}
    assert sorted(allocation_rows) == ["erk", "uniform"]
    for row in allocation_rows.values():  # every allocation reaches the same overall sparsity
        assert abs(row["overall_sparsity"] - 0.98) <= 4 / 10_000, row
    lottery_rows = {row["schedule"]: row for row in results["lottery"]}
    assert list(lottery_rows) == ["IMP, rewind to step 0"]
    assert len(lottery_rows["IMP, rewind to step 0"]["rewinds"]) == lottery.STAIRS  # one rewind per stair
    keras3_rows = {row["variant"]: row for row in results["keras3"]}
    assert list(keras3_rows) == ["Keras 3, unpruned", "Keras 3, PruningCallback"]
    assert keras3_rows["Keras 3, unpruned"]["ratio_to_keras3_unpruned"] == 1.0
    assert all(row["ms_per_step"] > 0 and row["fit_start_s"] > 0 for row in keras3_rows.values())
