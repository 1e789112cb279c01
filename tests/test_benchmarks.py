"""The benchmark harness runs in its quick mode, so it cannot rot."""

from __future__ import annotations

import json

from benchmarks.__main__ import main


def test_quick_benchmarks_run_and_write_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["--quick", "--json", str(path)]) == 0
    results = {name: section["rows"] for name, section in json.loads(path.read_text()).items()}
    assert all(section["quick"] is True for section in json.loads(path.read_text()).values())
    out = capsys.readouterr().out
    for title in ("Training overhead", "Schedule cost", "Curve evaluation", "Quality"):
        assert title in out
    rows = results["curve"]
    assert {row["schedule"] for row in rows} >= {"CubicSparsity", "CyclicSparsity", "tfmot PolynomialDecay"}
    for row in rows:
        assert row["vectorized_steps_per_s"] > 0 and row["loop_steps_per_s"] > 0
    overhead = {row["schedule"]: row for row in results["overhead"]}
    assert overhead["tfmot PolynomialDecay"]["ratio_to_polynomial_decay"] == 1.0
    assert all(row["ops"] > 0 for row in results["cost"])
    quality = results["quality"]
    assert {row["schedule"] for row in quality} >= {"dense", "CubicSparsity", "tfmot PolynomialDecay"}
    assert all(0.0 <= row["mean_accuracy"] <= 1.0 for row in quality)
