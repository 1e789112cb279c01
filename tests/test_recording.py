"""The recorder's record matches the masks of a real `fit` and round-trips JSON and CSV; inspecting pruned models."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from matplotlib.figure import Figure

from schedules import CyclicSparsity, StepSparsity
from schedules.callbacks import PruningRecorder
from schedules.evaluation import expected_mask_sparsity
from schedules.inspection import kernel_sparsity, pruned_layers
from schedules.plotting import plot_record
from schedules.record import RecordRow, SparsityRecord


class MaskSnapshots(keras.callbacks.Callback):
    """Independent reader: every mask after every batch, keyed by step."""

    def __init__(self):
        super().__init__()
        self.snapshots = {}

    def on_train_batch_end(self, batch, logs=None):
        for layer in self.model.layers:
            if hasattr(layer, "pruning_vars"):
                step = int(layer.pruning_step.numpy())
                for weight, mask, _ in layer.pruning_vars:
                    self.snapshots[(step, layer.name, weight.name.split("/")[-1].split(":")[0])] = mask.numpy()


def train(schedules_by_layer, steps=120, seed=0, log_dir=None):
    keras.utils.set_random_seed(seed)
    prune = tfmot.sparsity.keras.prune_low_magnitude
    model = keras.Sequential(
        [
            keras.layers.Input((6, 6, 1)),
            prune(keras.layers.Conv2D(6, 3, activation="tanh", name="conv"), pruning_schedule=schedules_by_layer[0]),
            keras.layers.Flatten(),
            prune(keras.layers.Dense(3, name="dense"), pruning_schedule=schedules_by_layer[1]),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps * 4, 6, 6, 1)).astype(np.float32)
    y = rng.normal(size=(steps * 4, 3)).astype(np.float32)
    recorder, snapshots = PruningRecorder(log_dir=log_dir), MaskSnapshots()
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), recorder, snapshots],
    )
    return model, recorder.record, snapshots.snapshots


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def trained(log_dir):
    """Also writes TensorBoard logs into `log_dir`."""
    conv_schedule = CyclicSparsity(0.0, 0.75, begin_step=0, end_step=99, num_cycles=2, frequency=10)
    dense_schedule = StepSparsity([5, 40, 80], [0.3, 0.6, 0.9])
    return (conv_schedule, dense_schedule), *train((conv_schedule, dense_schedule), log_dir=log_dir)


def tensorboard_scalars(log_dir) -> dict[str, dict[int, float]]:
    """Every scalar in the event files under `log_dir`, read back with TensorFlow: tag -> step -> value."""
    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return scalars


def test_tensorboard_logs_hold_the_record_and_the_overall_sparsity(trained, log_dir):
    """Scheduled and achieved per weight at every pruning step, as recorded; the overall sparsity
    from the masks read by the independent snapshot callback."""
    _, _, record, snapshots = trained
    assert len(list(Path(log_dir).rglob("events.out.tfevents.*"))) == 1
    scalars = tensorboard_scalars(log_dir)
    expected_tags = {"conv/kernel/scheduled", "conv/kernel/achieved", "dense/kernel/scheduled", "dense/kernel/achieved"}
    assert set(scalars) == expected_tags | {"overall/achieved"}
    for row in record.rows:
        tag = f"{row.layer.removeprefix('prune_low_magnitude_')}/{row.weight}"
        assert scalars[f"{tag}/scheduled"][row.step] == np.float32(row.scheduled), row
        mask = snapshots[(row.step, row.layer, row.weight)]  # read by the independent callback
        assert scalars[f"{tag}/achieved"][row.step] == pytest.approx(1.0 - mask.mean(), abs=1e-7), row
    steps = sorted({row.step for row in record.rows})
    assert sorted(scalars["overall/achieved"]) == steps
    for step in steps:
        masks = [mask for (s, _, _), mask in snapshots.items() if s == step]
        overall = sum(int(np.sum(mask == 0)) for mask in masks) / sum(mask.size for mask in masks)
        assert scalars["overall/achieved"][step] == pytest.approx(overall, abs=1e-6), step


def test_tensorboard_logging_names_what_to_install_when_tensorboard_is_missing(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(
        ImportError, match=r'needs the tensorboard package: pip install "tfmot-schedules\[tensorboard\]"'
    ):
        PruningRecorder(log_dir=tmp_path)
    with pytest.raises(TypeError, match="Argument `log_dir` must be a directory path or None"):
        PruningRecorder(log_dir=3)


def test_record_has_one_row_per_pruning_step_and_weight(trained):
    (conv_schedule, dense_schedule), _model, record, _ = trained
    steps = np.arange(1, 121)
    for layer, schedule in (("prune_low_magnitude_conv", conv_schedule), ("prune_low_magnitude_dense", dense_schedule)):
        rows = [r for r in record.rows if r.layer == layer]
        prune, sparsity = (t.numpy() for t in schedule(steps))
        assert [r.step for r in rows] == steps[prune].tolist()
        assert [r.weight for r in rows] == ["kernel"] * len(rows)
        np.testing.assert_array_equal([r.scheduled for r in rows], sparsity[prune].astype(np.float64))


def test_recorded_achieved_sparsity_is_the_masks(trained):
    _, _model, record, snapshots = trained
    for row in record.rows:
        mask = snapshots[(row.step, row.layer, row.weight)]
        assert row.size == mask.size
        assert row.achieved == pytest.approx(1.0 - mask.mean(), abs=1e-12)
        # ... and the masks follow the schedule to one weight, down at the cycle restart too.
        assert abs(row.achieved - row.expected) <= 1.0 / row.size + 1e-12


def test_cycle_restart_lowers_the_recorded_sparsity(trained):
    _, _model, record, _ = trained
    conv = record.series()["prune_low_magnitude_conv/kernel"]
    restart = int(np.flatnonzero(conv["step"] == 50)[0])
    assert conv["achieved"][restart - 1] > 0.7 and conv["achieved"][restart] == 0.0


def test_inspection_finds_the_pruned_layers_and_their_zeros(trained):
    _, model, record, _ = trained
    wrappers = ["prune_low_magnitude_conv", "prune_low_magnitude_dense"]
    assert sorted(layer.name for layer in pruned_layers(model)) == wrappers
    assert sorted(layer.name for layer in pruned_layers(model, built=True)) == wrappers
    assert pruned_layers(keras.Sequential([keras.layers.Input((2,)), keras.layers.Dense(1)])) == []
    # After strip_pruning each kernel is zero exactly where its last mask is (fit re-masks at the epoch's end);
    # the record's mask means are float32.
    last = {row.layer.removeprefix("prune_low_magnitude_"): row.achieved for row in record.rows}
    assert kernel_sparsity(tfmot.sparsity.keras.strip_pruning(model)) == pytest.approx(last, abs=1e-6)


@pytest.mark.parametrize("extension", [".json", ".csv"])
def test_record_round_trips(trained, tmp_path, extension):
    _, _, record, _ = trained
    path = tmp_path / f"record{extension}"
    record.save(path)
    loaded = SparsityRecord.load(path)
    assert loaded == record


def test_recorder_saves_at_train_end(tmp_path):
    path = tmp_path / "r.csv"
    recorder = PruningRecorder(path)
    recorder.record.rows.append(RecordRow(1, "layer", "kernel", 10, 0.5, 0.5))
    recorder.on_train_end()
    assert SparsityRecord.load(path) == recorder.record


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "not a sparsity record"),
        ('{"rows": [{"step": 1}]}', "exactly the fields"),
        (
            '{"rows": [{"step": "x", "layer": "a", "weight": "k", "size": 1, "scheduled": 0.1, "achieved": 0.1}]}',
            "invalid row",
        ),
    ],
)
def test_bad_json_records_are_rejected(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        SparsityRecord.load(path)


def test_bad_extension_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        PruningRecorder(tmp_path / "r.txt")
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        SparsityRecord().save(tmp_path / "r.parquet")


def test_plot_record_draws_scheduled_and_achieved(trained):
    _, _, record, _ = trained
    ax = Figure().add_subplot()
    assert plot_record(record, ax=ax, title="t") is ax
    series = record.series()
    achieved = [line for line in ax.lines if line.get_label().startswith("achieved")]
    assert len(achieved) == len(series)
    for line, data in zip(achieved, series.values(), strict=True):
        np.testing.assert_array_equal(line.get_xdata(), data["step"])
        np.testing.assert_array_equal(line.get_ydata(), data["achieved"])
    json.dumps([t.get_text() for t in ax.get_legend().get_texts()])


def test_expected_mask_sparsity_follows_tfmot_rounding():
    # k = max(1, round(n * (1 - s))), round half to even as tf.math.round
    assert expected_mask_sparsity(0.5, 9) == 1 - 4 / 9
    assert expected_mask_sparsity(0.99, 10) == 0.9
    assert expected_mask_sparsity(0.0, 7) == 0.0
