"""The benchmark harness runs in its quick mode, so it cannot rot; the timing benchmarks cover every family."""

from __future__ import annotations

import json

import pytest
import tf_keras

from benchmarks import channel_accuracy, channels, cost, curve, lottery, overhead, patterns, quality, zoo
from benchmarks.__main__ import main
from benchmarks._timing import interleaved
from schedules import registry
from schedules.models import build_cnn

FAMILIES = sorted(family.name for family in registry.families())


#: Each timing benchmark's full list of schedules (label -> `Case`), built as its full run builds it.
FULL_LISTS = {
    "overhead": lambda: {
        label: case
        for label, case in overhead.variants(10, 200, overhead.ROUNDS).items()
        if case is not None and label not in (overhead.MINIMAL, overhead.COPY, overhead.LONG_CYCLIC)
    },
    "cost": cost.schedules_under_test,
    "curve": lambda: curve.schedules_under_test(1_000_000),
}


@pytest.mark.parametrize("benchmark", sorted(FULL_LISTS))
def test_timing_benchmarks_time_one_schedule_of_every_family(benchmark):
    built = FULL_LISTS[benchmark]()
    families = [case.family for label, case in built.items() if label != cost.LONG_CYCLIC]
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
def test_the_overhead_cyclics_span_the_run_and_the_copy_is_the_baseline(steps):
    cases = overhead.variants(10, steps, overhead.ROUNDS)
    cyclic, long_cyclic = cases["CyclicSparsity"].schedule, cases[overhead.LONG_CYCLIC].schedule
    assert long_cyclic.cycle_bounds(0)[1] >= (overhead.ROUNDS + 1) * steps  # its first cycle spans the run
    last_step = (overhead.ROUNDS + 1) * steps  # the warm-up and the rounds
    (staircase,) = [case.schedule for label, case in cases.items() if label.startswith("StepSparsity")]
    assert cyclic.end_step >= last_step and staircase.boundaries[-1] >= last_step  # a stair every 10 steps to the end
    baseline, copy = cases[overhead.BASELINE].schedule, cases[overhead.COPY].schedule
    assert copy is not baseline and copy.get_config() == baseline.get_config()


def test_interleaved_shuffles_each_round_the_same_way_for_a_seed_and_prepares_each_call():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abcdef"}
    before = {name: (lambda name=name: calls.append("before " + name)) for name in "abcdef"}
    times = interleaved(fns, 4, seed=1, before=before)
    assert all(len(values) == 4 for values in times.values())
    assert calls[0::2] == ["before " + name for name in calls[1::2]]  # each just before its own call
    rounds = [tuple(calls[1::2][6 * r : 6 * r + 6]) for r in range(4)]
    assert all(sorted(order) == list("abcdef") for order in rounds) and len(set(rounds)) > 1
    calls.clear()
    interleaved(fns, 4, seed=1, before=before)
    assert [tuple(calls[1::2][6 * r : 6 * r + 6]) for r in range(4)] == rounds


def test_multiply_adds_count_each_kernel_once_per_output_position():
    inputs = tf_keras.Input((10, 10, 4))
    x = tf_keras.layers.Conv2D(8, 3, strides=2, padding="same", groups=2)(inputs)  # 5x5 out, kernel 3x3x2x8
    x = tf_keras.layers.BatchNormalization()(x)  # not counted
    x = tf_keras.layers.DepthwiseConv2D(3)(x)  # 3x3 out, kernel 3x3x8x1
    x = tf_keras.layers.Dense(6)(x)  # on each of the 3x3 positions, kernel 8x6
    assert channels.multiply_adds(tf_keras.Model(inputs, x)) == 25 * 144 + 9 * 72 + 9 * 48


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
        "Real architectures",
        "Real architecture accuracy",
        "Keras 3 patterns",
        "Channel pruning against unstructured",
        "Channel pruning's speed",
    ):
        assert title in out
    # The quick mode still puts every family through the cost and curve harness.
    assert sorted(row["family"] for row in results["cost"] if row["schedule"] != cost.LONG_CYCLIC) == FAMILIES
    events = {"events_us_per_call", "events_ratio_to_polynomial_decay"}  # the events alone
    step = {"step_us_per_call", "step_ratio_to_polynomial_decay"}  # the events and tfmot's tf.cond
    assert all(events | step <= set(row) for row in results["cost"])
    # What a step walks is counted, not timed: each of ours walks fewer nodes than PolynomialDecay.
    cost_rows = {row["schedule"]: row for row in results["cost"]}
    for name, row in cost_rows.items():
        assert row["step_ops_run"] > row["events_ops_run"] > 0, name
        if not name.startswith("tfmot"):
            assert row["step_ops_run"] < cost_rows[cost.BASELINE]["step_ops_run"], name
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
    assert overhead_rows[overhead.COPY]["family"] == "polynomial"
    assert overhead_rows[overhead.COPY]["nodes_ratio_to_polynomial_decay"] == 1.0
    assert overhead_rows["CubicSparsity"]["nodes_per_step"] < overhead_rows[overhead.BASELINE]["nodes_per_step"]
    # Timed in a child process whose TensorFlow has one thread per pool.
    assert {(row["inter_op_threads"], row["intra_op_threads"]) for row in overhead_rows.values()} == {(1, 1)}
    assert all(section["machine"]["cpu"] for section in sections.values())
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
    (zoo_row,) = results["zoo"]
    assert zoo_row["pruned_layers"] == 4 and zoo_row["event_ms_ours"] > 0 and zoo_row["event_ms_tfmot"] > 0
    assert sorted(zoo_row["allocate_s"]) == sorted(zoo.ALLOCATIONS) and zoo_row["tf_keras_step_ratio"] > 0
    assert zoo_row["load_ours_s"] > 0 and zoo_row["report_s"] > 0
    assert abs(zoo_row["report_sparsity"] - 0.8) <= 1e-3  # the saved model's masks, lamp at 0.8 overall
    accuracy_rows = {(row["allocation"], row["target_sparsity"]): row for row in results["zoo-accuracy"]}
    assert sorted(accuracy_rows) == [("dense", 0.0), ("lamp", 0.9), ("uniform", 0.9)]
    for row in accuracy_rows.values():  # each reaches its target, to a weight in a thousand
        assert abs(row["achieved_sparsity"] - row["target_sparsity"]) <= 1e-3 and 0.0 <= row["mean_accuracy"] <= 1.0
    assert accuracy_rows["dense", 0.0]["train_images"] + accuracy_rows["dense", 0.0]["validation_images"] <= 1437
    pattern_rows = {row["row"]: row for row in results["patterns"]}
    assert list(pattern_rows) == list(patterns.ROWS)
    assert pattern_rows["dense"]["zeros"] == 0.0
    for name in ("unstructured 0.5", "2:4 gradual", "2:4 one-shot"):  # conv1 (one input channel) keeps its 144
        assert abs(pattern_rows[name]["zeros"] - 0.5) <= 73 / 23824, pattern_rows[name]
    accuracy_rows = {row["row"]: row for row in results["channel-accuracy"]}
    assert list(accuracy_rows) == list(channel_accuracy.ROWS)
    # The CNN shrunk to half or three quarters of each group's channels (the logits stay whole).
    assert accuracy_rows["channels 0.5"]["parameters"] == 6218 and accuracy_rows["channels 0.25"]["parameters"] == 13642
    assert accuracy_rows["unstructured 0.5"]["parameters"] == accuracy_rows["dense"]["parameters"] == 23946
    channel_rows = {row["variant"]: row for row in results["channels"]}
    assert list(channel_rows) == list(channels.VARIANTS)
    assert {row["model"] for row in channel_rows.values()} == {"digits CNN 8x8x1"}
    dense, sparse = channel_rows["dense"], channel_rows["unstructured 0.5, sparse"]
    assert dense["ratio_to_dense"] == 1.0 and all(row["ms"] > 0 for row in channel_rows.values())
    assert dense["multiply_adds"] == 194_176 and dense["parameters"] == 23_946  # conv1, conv2, dense, logits
    assert channel_rows["unstructured 0.5"]["nonzero_weights"] == dense["nonzero_weights"] - 23_824 // 2
    assert sparse["tflite_bytes"] < dense["tflite_bytes"] == channel_rows["unstructured 0.5"]["tflite_bytes"]
    shrunk = [channel_rows["channels 0.25"], channel_rows["channels 0.5"]]
    assert dense["multiply_adds"] > shrunk[0]["multiply_adds"] > shrunk[1]["multiply_adds"]
    assert dense["parameters"] > shrunk[0]["parameters"] > shrunk[1]["parameters"]
    assert all(row["max_relative_diff_to_zeroed"] <= 1e-5 for row in shrunk)  # it predicts what the zeroed model does
