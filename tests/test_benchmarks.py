"""The benchmark harness runs in its quick mode, so it cannot rot."""

from __future__ import annotations

import json

from benchmarks.__main__ import main


def test_quick_benchmarks_run_and_write_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["--quick", "--json", str(path)]) == 0
    results = json.loads(path.read_text())
    assert results["quick"] is True
    out = capsys.readouterr().out
    assert "Curve evaluation" in out
    rows = results["curve"]
    assert {row["schedule"] for row in rows} >= {"CubicSparsity", "CyclicSparsity", "tfmot PolynomialDecay"}
    for row in rows:
        assert row["vectorized_steps_per_s"] > 0 and row["loop_steps_per_s"] > 0
