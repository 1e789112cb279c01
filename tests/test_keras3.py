"""Keras 3 models pruned by `schedules.keras3.PruningCallback` in real `fit` runs.

The references are computed here, independently: the cubic formula in float64 at each step, tfmot's
`k = max(1, round(n (1 - s)))`, and the mask as the magnitudes at least the k-th largest of the
kernel as a probe callback saw it just before the step. The masks are read by probes around the
callback at every step, with and without XLA.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings

import _models
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl, pruning_utils

import schedules
from schedules.keras3 import PruningCallback, pruning_of
from schedules.keras3_patterns import m_by_n_mask
from schedules.keras3_tf import kth_largest

STEPS_PER_EPOCH, EPOCHS = 16, 4
BEGIN, END, FREQUENCY, FINAL = 1, 50, 7, 0.8
EVENTS = list(range(BEGIN, END + 1, FREQUENCY))  # 1, 8, ..., 50: END - BEGIN is a multiple of FREQUENCY


def data(samples=STEPS_PER_EPOCH * 16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 6, 6, 1)).astype("float32")
    return x, rng.integers(0, 3, size=samples)


def build(module=keras, seed=0):
    module.utils.set_random_seed(seed)
    layers = module.layers
    return module.Sequential(
        [
            module.Input((6, 6, 1)),
            layers.Conv2D(8, 3, activation="relu", name="conv"),
            layers.Flatten(name="flatten"),
            layers.Dense(24, activation="relu", name="hidden"),
            layers.Dense(3, name="logits"),
        ]
    )


def compile_(model, optimizer="adam", **kwargs):
    module = keras if isinstance(model, keras.Model) else tf_keras
    model.compile(optimizer=optimizer, loss=module.losses.SparseCategoricalCrossentropy(from_logits=True), **kwargs)
    return model


def cubic(step):
    p = np.clip(step - BEGIN, 0, END - BEGIN) / (END - BEGIN)
    return FINAL * (1.0 - (1.0 - p) ** 3)


def kept(sparsity, n):
    return max(1, round(n * (1.0 - sparsity)))


def tfmot_mask(kernel, sparsity, sparsity_m_by_n=None, block_size=(1, 1), block_pooling_type="AVG"):
    """tfmot's own mask of `kernel` at `sparsity` (its `Pruning` object: the code its wrapper runs)."""
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, 0)
    step = lambda: tf.constant(0, tf.int64)  # noqa: E731
    pruning = pruning_impl.Pruning(step, [], schedule, block_size, block_pooling_type, sparsity_m_by_n=sparsity_m_by_n)
    return pruning._maybe_update_block_mask(tf.constant(kernel))[1].numpy()


def gradual_m_by_n(kernel, sparsity, m, n):
    """The documented gradual N:M rule, group by group in plain Python on tfmot's layout (`weights_rearrange`):
    the candidates are each group's m smallest magnitudes (a partial last group of g weights: its
    m - (n - g) smallest), and the smallest `zeros` candidates are pruned (ties: the first in the layout),
    every candidate from sparsity m/n on."""
    rows = np.abs(pruning_utils.weights_rearrange(tf.constant(kernel)).numpy())
    candidates = []
    for r, row in enumerate(rows):
        for start in range(0, len(row), n):
            group = row[start : start + n]
            order = sorted(range(len(group)), key=lambda i: group[i])  # stable: ties by position
            candidates += [(group[i], r * len(row) + start + i) for i in order[: max(0, m - (n - len(group)))]]
    size = kernel.size
    kept_ = int(max(1.0, np.round(np.float32(size) * (np.float32(1.0) - np.float32(sparsity)))))
    zeros = len(candidates) if np.float32(sparsity) >= np.float32(m / n) else min(len(candidates), size - kept_)
    mask = np.ones(rows.size, np.float32)
    for _, index in sorted(candidates)[:zeros]:
        mask[index] = 0.0
    return pruning_utils.m_by_n_sparsity_mask_prepare(
        tf.constant(mask.reshape(rows.shape)), tf.TensorShape(kernel.shape)
    ).numpy()


class Probe(keras.callbacks.Callback):
    """Before the pruning callback: each step and the kernels it starts from."""

    def __init__(self):
        super().__init__()
        self.steps, self.before = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.steps.append(int(self.model.optimizer.iterations.numpy()) + 1)
        self.before.append({layer.name: layer.kernel.numpy() for layer in self.model.layers if layer.weights})


class After(keras.callbacks.Callback):
    """After the pruning callback: its masks before the step trains, and the kernels after it."""

    def __init__(self, pruning):
        super().__init__()
        self.pruning, self.masks, self.after = pruning, [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.masks.append({name: masks[0] for name, masks in self.pruning.masks.items()})

    def on_train_batch_end(self, batch, logs=None):
        self.after.append({layer.name: layer.kernel.numpy() for layer in self.model.layers if layer.weights})


@pytest.fixture(scope="module", params=[False, True], ids=["graph", "xla"])
def run(request):
    model = compile_(build(), jit_compile=request.param)
    x, y = data()
    shares = schedules.allocate(model, FINAL, "erk")
    pruning = PruningCallback(schedules.CubicSparsity(0.0, FINAL, BEGIN, END, frequency=FREQUENCY), allocation="erk")
    probe, after = Probe(), After(pruning)
    model.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, callbacks=[probe, pruning, after], verbose=0)
    return model, shares, pruning, probe, after


def test_masks_follow_the_schedule_at_every_step(run):
    _, shares, pruning, probe, after = run
    assert probe.steps == list(range(1, STEPS_PER_EPOCH * EPOCHS + 1))
    assert sorted({step for step, _, _ in pruning.events}) == EVENTS
    previous = {name: np.ones_like(kernel) for name, kernel in probe.before[0].items()}
    for step, before, masks in zip(probe.steps, probe.before, after.masks, strict=True):
        for name, mask in masks.items():
            if step in EVENTS:
                sparsity = shares[name] * cubic(step) / FINAL
                magnitudes = np.abs(before[name])
                k = kept(sparsity, magnitudes.size)
                threshold = np.sort(magnitudes.ravel())[::-1][k - 1]
                np.testing.assert_array_equal(mask, (magnitudes >= threshold).astype(np.float32), err_msg=f"{step}")
                assert int(mask.sum()) == k, (step, name)
            else:
                np.testing.assert_array_equal(mask, previous[name], err_msg=f"{name} changed at step {step}")
            previous[name] = mask
    assert int(previous["hidden"].sum()) == kept(shares["hidden"], previous["hidden"].size)


def test_masked_weights_are_exact_zeros_after_every_step(run):
    _, _, _, _, after = run
    for masks, kernels in zip(after.masks, after.after, strict=True):
        for name, mask in masks.items():
            assert not np.any(kernels[name][mask == 0]), name


PATTERNS = {
    "2:4": ({"sparsity_m_by_n": (2, 4)}, 0.5),
    "blocks": ({"block_size": (4, 2), "layers": ["hidden", "logits"]}, FINAL),
}


@pytest.fixture(scope="module", params=list(PATTERNS))
def pattern_run(request):
    pattern, final = PATTERNS[request.param]
    model = compile_(build())
    x, y = data()
    pruning = PruningCallback(schedules.CubicSparsity(0.0, final, BEGIN, END, frequency=FREQUENCY), **pattern)
    probe, after = Probe(), After(pruning)
    model.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, callbacks=[probe, pruning, after], verbose=0)
    return request.param, pruning, probe, after


def test_patterns_follow_the_schedule_and_end_exactly_as_tfmots(pattern_run):
    """At each event: a block mask is tfmot's (its own code) at the schedule's sparsity; an N:M mask is the
    documented gradual rule (computed group by group here), and at the last event, at m/n, tfmot's 2:4
    mask, which tfmot's `is_pruned_m_by_n` accepts. Masked weights are exact zeros after every step."""
    name, pruning, probe, after = pattern_run
    pattern, final = PATTERNS[name]
    layers = pattern.get("layers", ["conv", "hidden", "logits"])
    assert sorted(pruning.masks) == layers
    for step, before, masks, kernels in zip(probe.steps, probe.before, after.masks, after.after, strict=True):
        for layer in layers:
            assert not np.any(kernels[layer][masks[layer] == 0]), (step, layer)
            if step not in EVENTS:
                continue
            sparsity = cubic(step) * final / FINAL
            if name == "blocks":
                expected = tfmot_mask(before[layer], sparsity, block_size=pattern["block_size"])
            else:
                expected = gradual_m_by_n(before[layer], sparsity, 2, 4)
            np.testing.assert_array_equal(masks[layer], expected, err_msg=f"{step} {layer}")
    last = probe.before[EVENTS[-1] - 1]
    for layer in layers:
        if name == "2:4":
            np.testing.assert_array_equal(masks[layer], tfmot_mask(last[layer], 0.5, sparsity_m_by_n=(2, 4)))
            assert pruning_utils.is_pruned_m_by_n(tf.constant(kernels[layer]), (2, 4)), layer
        else:
            assert 1.0 - masks[layer].mean() == pytest.approx(FINAL, abs=0.05), layer


KERNEL_SHAPES = st.tuples(st.integers(1, 9), st.integers(1, 6)) | st.tuples(
    *[st.integers(1, 3)] * 2, *[st.integers(1, 9)] * 2
)
VALUES = st.sampled_from([0.0, 0.5, -0.5, 1.0, 2.0]) | st.floats(-3, 3, width=32)


@settings(max_examples=60, deadline=None)
@given(
    kernel=KERNEL_SHAPES.flatmap(lambda shape: hnp.arrays(np.float32, shape, elements=VALUES)),
    m_by_n=st.sampled_from([(1, 2), (2, 4), (1, 4), (3, 4), (2, 8), (1, 3)]),
    sparsity=st.floats(0, 1) | st.sampled_from([0.25, 0.5, 1 / 3, 0.75]),
)
@example(kernel=np.array([[1.0], [2.0], [3.0]], np.float32), m_by_n=(2, 4), sparsity=0.25)  # one partial group
def test_gradual_m_by_n_masks_are_the_documented_rule(kernel, m_by_n, sparsity):
    """Ties (a few repeated values, zeros), partial groups, conv and dense layouts, every sparsity."""
    mask = m_by_n_mask(kernel, sparsity, m_by_n)
    np.testing.assert_array_equal(mask, gradual_m_by_n(kernel, sparsity, *m_by_n))
    if np.float32(sparsity) >= np.float32(m_by_n[0] / m_by_n[1]):
        assert pruning_utils.is_pruned_m_by_n(tf.constant(kernel * mask), m_by_n)


def test_report_and_allocation_match_the_tf_keras_twin(run):
    model, shares, pruning, _, _ = run
    report = pruning.sparsity_report()
    assert [row.name for row in report.layers] == ["conv", "hidden", "logits"]
    assert abs(report.sparsity - FINAL) <= 1.5 / report.weights * len(report.layers)
    assert [row.target for row in report.layers] == [shares[row.name] or None for row in report.layers]  # 0: unpruned
    counted = [(k.size, int(np.sum(k == 0))) for k in (model.get_layer(r.name).kernel.numpy() for r in report.layers)]
    assert [(r.weights, r.zeros) for r in report.layers] == counted
    plain = schedules.sparsity_report(model)  # a Keras 3 model: the zeros in the kernels, no targets
    assert [(r.weights, r.zeros, r.target) for r in plain.layers] == [(*c, None) for c in counted]
    twin = build(tf_keras)
    twin.set_weights([w.numpy() for w in model.weights])
    for method in ("erk", "global_magnitude", "lamp"):
        assert schedules.allocate(model, 0.9, method) == schedules.allocate(twin, 0.9, method), method
    # The sensitivity sweep prunes each layer alone and measures the model: the same weights, the same scores.
    x, y = data(64)
    sweeps = [schedules.sensitivity_sweep(m, x, y, sparsities=(0.5, 0.9), verbose=0) for m in (model, twin)]
    assert sweeps[0] == sweeps[1]
    sensitive = [
        schedules.allocate(m, 0.9, "sensitivity", x=x, y=y, sparsities=(0.5, 0.9), verbose=0) for m in (model, twin)
    ]
    assert sensitive[0] == sensitive[1]
    for original, now in zip(model.weights, twin.weights, strict=True):  # the sweep put every weight back
        np.testing.assert_array_equal(original.numpy(), now.numpy())


#: A block-diagonal mask between two Dense(8) layers: two 4x4 blocks train, the rest is held at zero.
BLOCKS = np.kron(np.eye(2), np.ones((4, 4))).astype(bool)


def build_blocks(module=keras, seed=0):
    """Flatten, then Dense(8) -> Dense(8) -> Dense(3): "second" is the layer the block-diagonal mask holds."""
    module.utils.set_random_seed(seed)
    layers = module.layers
    return module.Sequential(
        [
            module.Input((6, 6, 1)),
            layers.Flatten(name="flatten"),
            layers.Dense(8, activation="relu", name="first"),
            layers.Dense(8, activation="relu", name="second"),
            layers.Dense(3, name="logits"),
        ]
    )


@pytest.fixture(scope="module", params=["held", "scheduled"])
def masked_run(request):
    """`masks={"second": BLOCKS}` (as 0/1 integers) alone, or with the cubic schedule on "second" and "logits"."""
    model = compile_(build_blocks())
    x, y = data()
    schedule = schedules.CubicSparsity(0.0, FINAL, BEGIN, END, frequency=FREQUENCY)
    if request.param == "held":
        pruning = PruningCallback(masks={"second": BLOCKS.astype(int)})
    else:
        pruning = PruningCallback(schedule, layers=["second", "logits"], masks={"second": BLOCKS.astype(int)})
    probe, after = Probe(), After(pruning)
    model.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, callbacks=[probe, pruning, after], verbose=0)
    return request.param, model, pruning, probe, after


def test_given_masks_hold_through_fit_and_a_schedule_ranks_only_inside_them(masked_run):
    """At every step: held masks are the given ones; with the schedule, at each event the mask keeps the
    `max(1, round(a (1 - s)))` largest of the `a` allowed magnitudes (ties kept, found here with a sort),
    the other layer tfmot's rule on all its weights; the locked weights are exact zeros after every step."""
    kind, model, pruning, probe, after = masked_run
    assert sorted(pruning.masks) == (["second"] if kind == "held" else ["logits", "second"])
    allowed = int(BLOCKS.sum())
    previous = {"second": BLOCKS.astype(np.float32), "logits": np.ones((8, 3), np.float32)}
    for step, before, masks, kernels in zip(probe.steps, probe.before, after.masks, after.after, strict=True):
        assert not np.any(before["second"][~BLOCKS]) and not np.any(kernels["second"][~BLOCKS]), step
        for name, mask in masks.items():
            if kind == "scheduled" and step in EVENTS:
                ok = BLOCKS if name == "second" else np.ones(mask.shape, bool)
                magnitudes = np.abs(before[name])
                k = kept(cubic(step), int(ok.sum()))
                threshold = np.sort(magnitudes[ok])[::-1][k - 1]
                np.testing.assert_array_equal(mask, (magnitudes >= threshold) & ok, err_msg=f"{name} {step}")
                assert int(mask.sum()) == k, (name, step)
            else:
                np.testing.assert_array_equal(mask, previous[name], err_msg=f"{name} changed at step {step}")
            previous[name] = mask
    final = pruning.masks["second"][0]
    assert int(final.sum()) == (allowed if kind == "held" else kept(FINAL, allowed)) and not np.any(final[~BLOCKS])
    trained = model.get_layer("second").kernel.numpy()
    assert np.count_nonzero(trained) == int(final.sum())  # the kept weights trained away from 0
    assert not np.allclose(trained[BLOCKS], probe.before[0]["second"][BLOCKS])
    assert pruning.schedules.keys() == ({"second", "logits"} if kind == "scheduled" else set())


def test_given_masks_save_reload_and_resume(masked_run, tmp_path):
    """Saved as `.keras`, reloaded with `schedules.keras3.load_model`: the masks come back; a new callback with
    the same arguments trains on (the schedule is past its end) with the masks unchanged and the locked zeros."""
    kind, model, pruning, _, _ = masked_run
    model.save(tmp_path / "masked.keras")
    reloaded = schedules.keras3.load_model(tmp_path / "masked.keras")
    saved = schedules.keras3_masks.saved_masks(reloaded).masks
    assert sorted(saved) == sorted(pruning.masks)
    for name, masks in pruning.masks.items():
        np.testing.assert_array_equal(saved[name][0], masks[0] != 0, err_msg=name)
    schedule = None if kind == "held" else pruning.schedule
    layers = None if kind == "held" else ["second", "logits"]
    resumed = PruningCallback(schedule, layers=layers, masks={"second": BLOCKS})
    x, y = data(64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reloaded.fit(x, y, batch_size=16, epochs=1, callbacks=[resumed], verbose=0)
    assert not [w for w in caught if "PruningCallback" in str(w.message)]  # none "without the masks"
    assert resumed.events == []
    for name, masks in pruning.masks.items():
        np.testing.assert_array_equal(resumed.masks[name][0], masks[0], err_msg=name)
        kernel = reloaded.get_layer(name).kernel.numpy()
        assert not np.any(kernel[masks[0] == 0]) and np.all(kernel[masks[0] != 0] != 0), name
        assert not np.array_equal(kernel, model.get_layer(name).kernel.numpy()), name  # it trained


def test_same_final_masks_as_tfmot_on_the_tf_keras_twin():
    """Plain SGD, the same weights and batches: tfmot's wrappers and the callback keep the same weights."""
    x, y = data()
    schedule = schedules.CubicSparsity(0.0, FINAL, BEGIN, END, frequency=FREQUENCY)
    model = compile_(build(), optimizer=keras.optimizers.SGD(0.05))
    twin = build(tf_keras)
    twin.set_weights(model.get_weights())
    twin = compile_(
        tfmot.sparsity.keras.prune_low_magnitude(twin, pruning_schedule=schedule),
        optimizer=tf_keras.optimizers.SGD(0.05),
    )
    pruning = PruningCallback(schedule)
    model.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, callbacks=[pruning], verbose=0)
    twin.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    wrappers = {layer.layer.name: layer for layer in twin.layers if getattr(layer, "pruning_vars", None)}
    for name, masks in pruning.masks.items():
        np.testing.assert_array_equal(masks[0], wrappers[name].pruning_vars[0][1].numpy(), err_msg=name)


def test_save_reload_and_resume_equals_an_uninterrupted_run_and_tflite_keeps_the_zeros(tmp_path):
    x, y = data()
    # Ramps up to 0.8 by step 30, restarts at 31 to 0.3 (all exact zeros tie: the mask keeps everything), saved at 32.
    schedule = schedules.CyclicSparsity(0.3, FINAL, 1, 60, num_cycles=2, frequency=4)
    shares = schedules.allocate(build(), FINAL, "lamp")  # from the weights before training, once

    def fit(model, first, last):
        callback = PruningCallback(schedule, allocation=shares)
        model.fit(x, y, batch_size=16, epochs=last, initial_epoch=first, shuffle=False, callbacks=[callback], verbose=0)

    whole = compile_(build())
    fit(whole, 0, EPOCHS)
    part = compile_(build())
    fit(part, 0, 2)  # stops at step 32
    part.save(tmp_path / "pruned.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras' notice that .h5 is a legacy format
        part.save(tmp_path / "pruned.h5")
    legacy = keras.models.load_model(tmp_path / "pruned.h5")  # keeps the zeros (Keras 3 cannot train it on)
    for a, b in zip(part.weights, legacy.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    reloaded = schedules.keras3.load_model(tmp_path / "pruned.keras")
    assert int(reloaded.optimizer.iterations.numpy()) == 32
    fit(reloaded, 2, EPOCHS)
    for a, b in zip(whole.weights, reloaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    with pytest.raises(ValueError, match="Argument `allocation` must be a dict once the optimizer has taken steps"):
        reloaded.fit(x, y, verbose=0, callbacks=[PruningCallback(schedule, allocation="lamp")])
    # Exported for inference and converted to TFLite, the pruned kernels keep their zeros.
    whole.export(tmp_path / "exported", format="tf_saved_model", verbose=False)
    flatbuffer = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "exported")).convert()
    constants = _models.tflite_constants(flatbuffer)
    for name in ("conv", "hidden"):
        kernel = whole.get_layer(name).kernel.numpy()
        same = [
            t
            for t in constants
            if t.size == kernel.size and np.array_equal(np.sort(t.ravel()), np.sort(kernel.ravel()))
        ]
        assert len(same) == 1 and np.count_nonzero(same[0]) == np.count_nonzero(kernel) < kernel.size, name


@pytest.mark.slow
def test_a_run_resumed_in_a_fresh_process_is_the_uninterrupted_run_bit_for_bit(tmp_path):
    """Saved in one process, resumed in another (`_keras3_resume_worker.py` says what each case does).

    With `schedules.keras3.load_model`, every resumed run ends with exactly the weights of the uninterrupted
    run, whatever step it was saved at: right after a cycle's restart, at every step of a cycle, with a kept
    weight at exactly 0. A plain `keras.models.load_model` predicts what the saved model did; resumed from
    it, the callback warns once and takes the kernels' zeros for the masks, which is where those two differ.
    """
    worker = os.path.join(os.path.dirname(__file__), "_keras3_resume_worker.py")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": os.pathsep.join(sys.path)}
    for job in ("save", "resume"):
        done = subprocess.run(
            [sys.executable, worker, job, str(tmp_path)], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "resumed.json").read_text())
    ours = [r for r in results if r["loader"] == "schedules"]
    assert {(r["case"], r["step"]) for r in ours} == {
        ("cubic", 32),
        ("cyclic3", 32),
        ("cyclic2", 32),
        ("kept_zero", 24),
        *(("cycle", s) for s in range(8, 17)),
    }
    for r in ours:
        assert r["identical"] and r["warnings"] == [], r
    plain = {r["case"]: r for r in results if r["loader"] == "plain"}
    for r in plain.values():
        assert r["same_predictions"] and len(r["warnings"]) == 1 and "without the masks" in r["warnings"][0], r
    assert not plain["cyclic2"]["identical"] and not plain["kept_zero"]["identical"]


def test_under_mirrored_strategy_with_a_recorder_and_tensorboard(tmp_path):
    x, y = data()
    with tf.distribute.MirroredStrategy().scope():
        model = compile_(build())
    pruning = PruningCallback(schedules.CubicSparsity(0.0, FINAL, BEGIN, END, frequency=FREQUENCY), layers=["hidden"])
    recorder = schedules.PruningRecorder(tmp_path / "record.csv", log_dir=tmp_path / "logs")
    model.fit(x, y, batch_size=16, epochs=EPOCHS, callbacks=[pruning, recorder], verbose=0)
    assert pruning_of(model) is None and list(pruning.masks) == ["hidden"]  # registered during the fit only
    kernel = model.get_layer("hidden").kernel.numpy()
    assert np.count_nonzero(kernel) == kept(FINAL, kernel.size)
    assert np.all(model.get_layer("conv").kernel.numpy())  # not among `layers`: dense
    rows = recorder.record.rows
    assert [row.step for row in rows] == EVENTS and {row.layer for row in rows} == {"hidden"}
    np.testing.assert_allclose([row.scheduled for row in rows], [cubic(s) for s in EVENTS], atol=1e-6)
    assert [row.achieved for row in rows] == pytest.approx(
        [1 - kept(cubic(s), kernel.size) / kernel.size for s in EVENTS]
    )
    scalars = {}
    for event_file in (tmp_path / "logs").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(event.step)
    assert scalars["hidden/kernel/achieved"] == EVENTS and scalars["overall/achieved"] == EVENTS
    # The constraint is gone after fit: training on without the callback lets the zeros grow back.
    assert model.get_layer("hidden").kernel.constraint is None and model.train_function is None


@pytest.mark.parametrize("mode", ["mirrored", "jax"])
def test_every_replica_of_two_devices_holds_the_same_masks(mode, tmp_path):
    """Two devices of this host in a fresh process: MirroredStrategy over two logical CPUs (TensorFlow), and
    DataParallel over two host devices (JAX). After each of 48 steps, every replica's mask is the same bytes,
    keeping tfmot's k at the cubic's sparsity of the last pruning step (computed here)."""
    if mode == "jax":
        pytest.importorskip("jax")
    out = tmp_path / "report.json"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow" if mode == "mirrored" else "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if mode == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    worker = os.path.join(os.path.dirname(__file__), "_keras3_devices_worker.py")
    done = subprocess.run(
        [sys.executable, worker, mode, str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert len(report["devices"]) == 2 and len(report["steps"]) == 48
    events = [*range(1, 27, 5), 30]  # every 5 steps from 1, and the end step

    def scheduled(step):
        p = np.clip(step - 1, 0, 29) / 29
        return 0.8 * (1.0 - (1.0 - p) ** 3)

    for step, row in enumerate(report["steps"], start=1):
        last = max(e for e in events if e <= step)
        for name, masks in row.items():
            size = report["final"][name]["size"]
            assert len(set(masks["digests"])) == 1 and len(masks["digests"]) == 2, (step, name)
            assert masks["kept"] == [kept(scheduled(last), size)] * 2, (step, name)
    assert report["events"] == events
    for name, final in report["final"].items():
        assert final["nonzero"] == kept(0.8, final["size"]), name
    # 2:4 on two devices: the replicas agree after every step, and the final kernels are tfmot's 2:4.
    assert len(report["2:4 steps"]) == 48
    for step, row in enumerate(report["2:4 steps"], start=1):
        for name, masks in row.items():
            assert len(set(masks["digests"])) == 1 and len(masks["digests"]) == 2, (step, name)
    for name in ("hidden", "logits"):
        kernel = np.array(report["2:4 final"][name], np.float32)
        assert pruning_utils.is_pruned_m_by_n(tf.constant(kernel), (2, 4)) and np.mean(kernel == 0) == 0.5, name


def test_a_second_fit_with_the_same_callback_reuses_its_masks_and_its_traced_step():
    """Two fits of two epochs with one callback are one fit of four, bit for bit, with one training function."""
    x, y = data()
    schedule = schedules.CyclicSparsity(0.3, FINAL, 1, 60, num_cycles=2, frequency=4)
    whole, parts = compile_(build()), compile_(build())
    whole.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[PruningCallback(schedule)])
    pruning = PruningCallback(schedule)
    parts.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[pruning])
    traced = pruning._traced[1]
    parts.fit(x, y, batch_size=16, epochs=EPOCHS, initial_epoch=2, shuffle=False, verbose=0, callbacks=[pruning])
    assert pruning._traced[1] is traced  # the function fit 1 traced ran fit 2: no new trace
    for a, b in zip(whole.weights, parts.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    compile_(parts)  # a new optimizer: the step it traced before no longer applies
    parts.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[pruning])
    assert pruning._traced[1] is not traced


def test_a_model_trained_before_is_pruned_at_once_with_a_warning():
    x, y = data(128)
    model = compile_(build())
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # 8 steps, dense
    pruning = PruningCallback(schedules.CubicSparsity(0.0, 0.5, 1, 4, frequency=1))
    with pytest.warns(
        schedules.PlanWarning, match=r"taken 8 steps, but the layers \['conv', 'hidden', 'logits'\] have"
    ):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[pruning])
    assert pruning.events == []  # steps 9..16: the schedule's last pruning step (4) was applied before them
    kernel = model.get_layer("hidden").kernel.numpy()
    assert np.count_nonzero(kernel) == kept(0.5, kernel.size)


def test_tfmot_own_schedules_work_too():
    x, y = data(128)
    model = compile_(build())
    pruning = PruningCallback(tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=2, frequency=3))
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[pruning])  # steps 1..16
    assert sorted({step for step, _, _ in pruning.events}) == [2, 5, 8, 11, 14]
    for name in ("conv", "hidden", "logits"):
        kernel = model.get_layer(name).kernel.numpy()
        assert np.count_nonzero(kernel) == kept(0.5, kernel.size), name


class Scale(keras.layers.Layer):
    """A layer of one's own with a kernel and a way to say it is prunable."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), initializer="glorot_uniform", name="kernel")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)

    def get_prunable_weights(self):
        return [self.kernel]


class Shift(keras.layers.Layer):
    """A layer of one's own with a weight and no word on pruning it."""

    def build(self, input_shape):
        self.shift = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="shift")

    def call(self, x):
        return x + self.shift


def test_layers_beyond_tfmots_table_are_pruned_and_skipped_ones_named_once():
    """EinsumDense, Bidirectional and a layer with `get_prunable_weights` are pruned to the schedule's
    share (each kernel alone); a layer with weights and nothing to prune is named in one warning, a
    BatchNormalization (which tfmot leaves whole too) is not."""
    inputs = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), name="both_ways")(inputs)
    x = keras.layers.EinsumDense("abc,cd->abd", output_shape=(5, 6), name="einsum")(x)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = Shift(name="shift")(x)
    x = keras.layers.Flatten()(x)
    outputs = Scale(name="scale")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5, 3)).astype("float32"), rng.normal(size=(64, 4)).astype("float32")
    pruning = PruningCallback(tfmot.sparsity.keras.ConstantSparsity(0.6, begin_step=1, frequency=2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[pruning])  # steps 1..4: events at 1, 3
    ours = [str(w.message) for w in caught if "PruningCallback prunes no weight" in str(w.message)]
    assert len(ours) == 1 and "shift (Shift)" in ours[0] and "norm" not in ours[0], ours
    assert sorted(pruning.schedules) == ["both_ways", "einsum", "scale"]
    kernels = {
        "both_ways": [w for w in model.get_layer("both_ways").weights if "bias" not in w.path],
        "einsum": [model.get_layer("einsum").kernel],
        "scale": [model.get_layer("scale").kernel],
    }
    assert [len(ks) for ks in kernels.values()] == [4, 1, 1]
    for name, ks in kernels.items():
        for kernel in ks:
            value = keras.ops.convert_to_numpy(kernel)
            assert value.size - np.count_nonzero(value) == value.size - kept(0.6, value.size), (name, kernel.path)
    assert set(schedules.allocate(model, 0.6, "erk")) == {"both_ways", "einsum", "scale"}


def test_steps_per_execution_applies_an_executions_pruning_steps_before_it():
    """With 4 steps per execution, Keras calls the callback before each execution: the masks there are the
    ones of the last pruning step among its 4 steps (tfmot's k at the cubic's sparsity, computed here), and
    the run ends at the final sparsity."""
    x, y = data()
    model = compile_(build(), steps_per_execution=4)
    pruning = PruningCallback(schedules.CubicSparsity(0.0, FINAL, BEGIN, END, frequency=FREQUENCY))
    seen = {}

    class Masks(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))  # the execution's last
            seen[step] = int(np.sum(keras.ops.convert_to_numpy(pruning._masks["hidden"][0])))

    model.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[pruning, Masks()])
    assert sorted(seen) == list(range(4, STEPS_PER_EPOCH * EPOCHS + 1, 4))
    assert sorted({step for step, _, _ in pruning.events}) == EVENTS
    size = int(np.prod(model.get_layer("hidden").kernel.shape))
    expected = size
    for last in sorted(seen):
        in_it = [step for step in EVENTS if last - 4 < step <= last]
        if in_it:
            expected = kept(cubic(in_it[-1]), size)
        assert seen[last] == expected, last
    assert np.count_nonzero(keras.ops.convert_to_numpy(model.get_layer("hidden").kernel)) == kept(FINAL, size)


def test_check_plan_reads_the_keras3_callbacks_schedules():
    """CheckPlan on a Keras 3 fit: one PlanWarning per schedule, naming the layers; without a PruningCallback, one
    warning saying there is nothing to check."""
    x, y = data(128)  # 8 steps an epoch, 2 epochs: 16 steps; the window runs to step 100
    model = compile_(build())
    pruning = PruningCallback(schedules.CubicSparsity(0.0, FINAL, 1, 100, frequency=5))
    for callbacks, expected in (
        ([pruning, schedules.CheckPlan()], "layers conv, hidden, logits: CubicSparsity is cut short"),
        ([schedules.CheckPlan()], "CheckPlan found no schedules.keras3.PruningCallback"),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=callbacks)
        messages = [str(w.message) for w in caught if issubclass(w.category, schedules.PlanWarning)]
        assert len(messages) == 1 and messages[0].startswith(expected), messages
        assert pruning not in callbacks or "after the planned 16 training steps" in messages[0]


def test_compression_report_and_the_report_command_take_a_keras3_model(tmp_path):
    """compression_report on a Keras 3 model pruned by the callback, and on its `.keras` file (as `python -m
    schedules report` reads it): each layer's zeros are the kernel's own, the files are measured, TFLite (through
    `model.export`) included, and the zipped file is smaller than the dense model's."""
    x, y = data(128)
    model, dense = compile_(build()), compile_(build(seed=1))
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        verbose=0,
        callbacks=[PruningCallback(tfmot.sparsity.keras.ConstantSparsity(0.8, 1))],
    )
    path = tmp_path / "pruned.keras"
    model.save(path)
    report = schedules.compression_report(model, dense=dense, tflite=True)
    for name in ("conv", "hidden", "logits"):
        kernel = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
        row = next(layer for layer in report.sparsity.layers if layer.name == name)
        assert (row.weights, row.zeros) == (kernel.size, kernel.size - kept(0.8, kernel.size)), name
    sizes = {size.form: size for size in report.files}
    dense_sizes = {size.form: size for size in report.dense_files}
    assert list(sizes) == [".keras", ".h5", ".tflite", ".tflite (sparse)", ".tflite (int8)", ".tflite (int8, sparse)"]
    assert sizes[".keras"].zipped < dense_sizes[".keras"].zipped and report.dense_sparsity.zeros == 0
    assert sizes[".tflite (sparse)"].raw < dense_sizes[".tflite (sparse)"].raw  # sparse tensors in the flatbuffer
    from_file = schedules.compression_report(path)
    assert from_file.sparsity == report.sparsity
    done = subprocess.run(
        [sys.executable, "-m", "schedules", "report", str(path)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    overall = next(line for line in done.stdout.splitlines() if line.startswith("overall"))
    assert overall.split()[1:5] == ["3216", "-", str(report.sparsity.zeros), str(3216 - report.sparsity.zeros)]


def test_bad_input_is_refused_with_a_message_naming_it():
    cubic_schedule = schedules.CubicSparsity(0.0, FINAL, BEGIN, END)
    with pytest.raises(TypeError, match="Argument `schedule` must be a tfmot PruningSchedule"):
        PruningCallback("cubic")
    with pytest.raises(
        ValueError, match="Argument `schedule` must be a schedule whose peak sparsity is known and above 0"
    ):
        PruningCallback(tfmot.sparsity.keras.ConstantSparsity(0.0, 0))
    with pytest.raises(ValueError, match="Argument `allocation` must be one of"):
        PruningCallback(cubic_schedule, allocation="sensitivity")
    with pytest.raises(TypeError, match="Argument `layers` must be a list of layer names"):
        PruningCallback(cubic_schedule, layers="hidden")
    half = schedules.CubicSparsity(0.0, 0.5, BEGIN, END)
    for kwargs, message in [
        ({"sparsity_m_by_n": (4, 4)}, r"`sparsity_m_by_n` must be a pair of integers \(m, n\), 0 < m < n"),
        ({"sparsity_m_by_n": (2, 4), "block_size": (2, 2)}, "`block_size` must be .1, 1. with sparsity_m_by_n"),
        ({"sparsity_m_by_n": (2, 4), "allocation": "erk"}, "`allocation` must be 'uniform' with sparsity_m_by_n"),
        ({"block_size": (0, 2)}, "`block_size` must be a pair of integers .rows, columns., each >= 1"),
        ({"sparsity_m_by_n": (2, 4), "block_size": 2}, "`block_size` must be a pair of integers .rows, columns."),
        ({"block_size": (2, 2), "block_pooling_type": "MIN"}, "`block_pooling_type` must be one of"),
        ({"block_size": (2, 2), "masks": {"hidden": np.ones((128, 24))}}, "`masks` must be None with sparsity_m_by"),
    ]:
        with pytest.raises(ValueError, match=message):
            PruningCallback(half, **kwargs)
    with pytest.raises(ValueError, match=r"peak sparsity is m/n = 0.5 .* this one peaks at 0.8"):
        PruningCallback(cubic_schedule, sparsity_m_by_n=(2, 4))
    with pytest.raises(TypeError, match=r"Argument `schedule` must be a tfmot PruningSchedule, or None with `masks`"):
        PruningCallback()
    with pytest.raises(ValueError, match=r"Argument `layers` must be None without a schedule"):
        PruningCallback(masks={"hidden": np.ones((128, 24))}, layers=["hidden"])
    with pytest.raises(TypeError, match=r"Argument `masks` must be a non-empty dict from layer name"):
        PruningCallback(cubic_schedule, masks=np.ones((128, 24)))
    with pytest.raises(ValueError, match=r"`masks\['hidden'\]` must be booleans, or numbers that are all 0 or 1\. "):
        PruningCallback(masks={"hidden": np.full((128, 24), 0.5)})
    with pytest.raises(ValueError, match=r"`masks\['hidden'\]` must be a mask that lets at least one weight train"):
        PruningCallback(masks={"hidden": np.zeros((128, 24), bool)})
    with pytest.raises(TypeError, match=r"`masks\['hidden'\]\[1\]` must be an array of booleans"):
        PruningCallback(masks={"hidden": [np.ones((128, 24)), np.array(["yes"])]})
    x, y = data(32)
    cases = [
        (build(), {"layers": ["nope"]}, ValueError, "Argument `layers` must be names of layers of the model"),
        (build(), {"layers": ["flatten"]}, ValueError, "Flatten 'flatten' has none"),
        (build(tf_keras), {}, TypeError, "Argument `model` must be a Keras 3 model"),
        (build(), {"block_size": (2, 2)}, ValueError, r"2-D kernels .* \['conv'\] have kernels of other ranks"),
        (build(), {"masks": {"nope": [[1]]}}, ValueError, r"`masks` must be a dict keyed by names of layers with"),
        (build(), {"masks": {"flatten": [[1]]}}, ValueError, r"\['conv', 'hidden', 'logits'\]. Received: masks='fl"),
        (build(), {"masks": {"hidden": np.ones((24, 128))}}, ValueError, r"shape \(128, 24\). Received: masks\['hi"),
        (build(), {"masks": {"hidden": [np.ones((128, 24))] * 2}}, ValueError, r"1 mask\(s\), one for each weight"),
    ]
    for model, kwargs, error, message in cases:
        compile_(model)
        with pytest.raises(error, match=message):
            model.fit(x, y, verbose=0, callbacks=[PruningCallback(cubic_schedule, **kwargs)])


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from(["float16", "bfloat16", "float32", "float64"]),
    values=st.lists(st.sampled_from([0.0, 1e-30, 0.25, 0.5, 1.0, 3.0, 65000.0]) | st.floats(0, 1e4), min_size=1),
    share=st.floats(0, 1),
)
def test_kth_largest_is_the_sorted_magnitudes_kth(dtype, values, share):
    """Against a sort (NumPy, float64), with ties, zeros and tiny values; bfloat16 and float16 round first."""
    magnitudes = tf.cast(tf.constant(values, tf.float64), dtype)
    k = max(1, min(len(values), round(share * len(values))))
    expected = np.sort(tf.cast(magnitudes, tf.float64).numpy())[::-1][k - 1]
    assert float(kth_largest(magnitudes, tf.constant(k))) == expected


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, -0.0, 0.5, -0.5, 1.0, 2.0]) | st.floats(-10, 10, width=32), min_size=1),
    seed=st.integers(0, 2**16),
    sparsity=st.floats(0, 0.75, width=32) | st.sampled_from([0.5, 0.75, 0.9]),
)
def test_mask_of_ranks_only_the_allowed_weights(values, seed, sparsity):
    """Against a sort of the allowed magnitudes: `k = max(1, round(a (1 - s)))` in float32, every allowed weight
    tied with the k-th largest kept (an allowed exact zero too, when the k-th largest is 0), no locked one."""
    kernel = np.array(values, np.float32)
    allowed = np.random.default_rng(seed).random(kernel.size) < 0.6
    allowed[seed % kernel.size] = True
    a = int(allowed.sum())
    k = int(max(1, np.round(np.float32(a) * (np.float32(1) - np.float32(sparsity)))))
    threshold = np.sort(np.abs(kernel[allowed]))[::-1][k - 1]
    expected = (np.abs(kernel) >= threshold) & allowed
    np.testing.assert_array_equal(schedules.keras3_patterns.mask_of(kernel, sparsity, allowed), expected)


BACKENDS = ["tensorflow", "jax", "torch"]


@pytest.fixture(scope="module")
def backend_runs(tmp_path_factory):
    """The worker's pruned fits under each backend installed, in fresh processes (Keras picks its backend
    at import)."""
    runs = {}
    for backend in BACKENDS:
        if backend != "tensorflow" and importlib.util.find_spec(backend) is None:
            continue
        out = tmp_path_factory.mktemp(backend) / "run.npz"
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        worker = os.path.join(os.path.dirname(__file__), "_keras3_backend_worker.py")
        done = subprocess.run([sys.executable, worker, str(out)], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[backend] = dict(np.load(out))
    return runs


def run_on(backend_runs, backend):
    if backend not in backend_runs:
        pytest.skip(f"{backend} is not installed")
    return backend_runs[backend]


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_prunes_by_tfmots_rule_at_every_event(backend_runs, backend):
    """At each of the eight events, each mask keeps exactly the magnitudes at least the k-th largest of
    the kernel the step started from (k = max(1, round(n (1 - s))), ties kept), computed here with a sort;
    after the last event the kernels keep the last masks' zeros."""
    run = run_on(backend_runs, backend)
    assert run["steps"].tolist() == [1, 8, 15, 22, 29, 36, 43, 50]
    for i, sparsity in enumerate(run["sparsities"]):
        for name in ("conv", "hidden", "logits"):
            magnitudes = np.abs(run[f"before_{i}_{name}"])
            k = kept(float(sparsity), magnitudes.size)
            threshold = np.sort(magnitudes.ravel())[::-1][k - 1]
            np.testing.assert_array_equal(run[f"mask_{i}_{name}"], magnitudes >= threshold, err_msg=f"{i} {name}")
    for name in ("conv", "hidden", "logits"):
        final = run[f"final_{name}"]
        assert np.count_nonzero(final) == kept(float(run["sparsities"][-1]), final.size), name
    # A PruningRecorder in the same fit (under JAX it reads the masks in the middle of an epoch):
    # one row per layer and event, at the achieved sparsity of the mask.
    expected = [
        (step, index, 1.0 - kept(float(sparsity), run[f"final_{name}"].size) / run[f"final_{name}"].size)
        for step, sparsity in zip(run["steps"], run["sparsities"], strict=True)
        for index, name in enumerate(("conv", "hidden", "logits"))
    ]
    np.testing.assert_allclose(run["recorded"], expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_rewinds_the_weights_at_each_mask_change(backend_runs, backend):
    """`WeightRewinding(4)` beside the PruningCallback (the worker's `rewinding_run`): at the end of each stair's
    step every kept kernel weight is its step-4 value, every pruned one 0, every bias its step-4 value, and
    the momenta are zeros; the optimizer's steps run on. Under JAX, `fit` would overwrite a rewind it does
    not read back; and the final weights agree with TensorFlow's."""
    run = run_on(backend_runs, backend)
    assert run["rewind_steps"].tolist() == [6, 11, 16]
    assert int(run["rewind_iterations"]) == 32
    for t in (6, 11, 16):
        for i, name in enumerate(run["rewind_names"]):
            value, start = run[f"rewind_{t}_{i}"], run[f"rewind_4_{i}"]
            layer, weight = name.split("/")
            if weight == "kernel":
                mask = run[f"rewind_mask_{t}_{layer}"]
                assert 0 < mask.sum() < mask.size
                np.testing.assert_array_equal(value, start * mask, err_msg=f"{t} {name}")
            else:
                np.testing.assert_array_equal(value, start, err_msg=f"{t} {name}")
        assert float(run[f"rewind_slots_{t}"]) == 0.0
    tf_run = backend_runs["tensorflow"]
    for i in range(len(run["rewind_names"])):
        np.testing.assert_allclose(run[f"rewind_final_{i}"], tf_run[f"rewind_final_{i}"], atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_holds_given_masks_and_ranks_within_them(backend_runs, backend):
    """The worker's masked run: at each event the block-diagonal mask of "hidden" keeps the `max(1, round(a (1 -
    s)))` largest of its `a` allowed magnitudes (ties kept; a sort here); "logits" holds its given mask; at the
    end both kernels are zero wherever their masks are, and non-zero wherever they are not."""
    run = run_on(backend_runs, backend)
    blocks = np.kron(np.eye(2), np.ones((32, 4))).astype(bool)  # the worker's MASKS, written again
    held = np.arange(24).reshape(8, 3) >= 3
    assert run["masked_steps"].tolist() == [1, 8, 15, 22, 29, 36, 43, 50]
    for i, sparsity in enumerate(run["masked_sparsities"]):
        magnitudes = np.abs(run[f"masked_before_{i}_hidden"])
        k = kept(float(sparsity), int(blocks.sum()))
        threshold = np.sort(magnitudes[blocks])[::-1][k - 1]
        np.testing.assert_array_equal(run[f"masked_mask_{i}_hidden"], (magnitudes >= threshold) & blocks, err_msg=i)
    np.testing.assert_array_equal(run["masked_final_mask_logits"], held)
    assert int(run["masked_final_mask_hidden"].sum()) == kept(0.8, int(blocks.sum()))
    for name in ("hidden", "logits"):
        np.testing.assert_array_equal(run[f"masked_final_{name}"] != 0, run[f"masked_final_mask_{name}"] != 0)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_tensorflow_and_another_backend_give_the_same_masks_from_the_same_weights(backend_runs, backend):
    """Same weights, batches and schedule: the first event's masks are equal on both backends, and every
    later mask equal wherever the two kernels (trained apart by each backend's float rounding) order alike."""
    tf_run, jax_run = backend_runs["tensorflow"], run_on(backend_runs, backend)
    assert tf_run["steps"].tolist() == jax_run["steps"].tolist()
    np.testing.assert_array_equal(tf_run["sparsities"], jax_run["sparsities"])
    for name in ("conv", "hidden", "logits"):
        np.testing.assert_array_equal(tf_run[f"before_0_{name}"], jax_run[f"before_0_{name}"])
        np.testing.assert_array_equal(tf_run[f"mask_0_{name}"], jax_run[f"mask_0_{name}"])
        for i in range(len(tf_run["steps"])):
            order = [np.argsort(run[f"before_{i}_{name}"], axis=None, kind="stable") for run in (tf_run, jax_run)]
            if np.array_equal(*order):  # so far at every event: the kernels differ by an ulp or two
                np.testing.assert_array_equal(tf_run[f"mask_{i}_{name}"], jax_run[f"mask_{i}_{name}"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_prunes_2_4_by_the_gradual_rule_and_both_agree(backend_runs, backend):
    """The 2:4 run: at every event each mask is the documented rule on the kernel the step started from;
    the last masks are tfmot's 2:4 masks; each backend's masks equal TensorFlow's where the kernels order
    alike."""
    run, reference = run_on(backend_runs, backend), backend_runs["tensorflow"]
    assert run["2:4_steps"].tolist() == EVENTS
    for i, sparsity in enumerate(run["2:4_sparsities"]):
        for name in ("conv", "hidden", "logits"):
            before = run[f"2:4_before_{i}_{name}"]
            mask = run[f"2:4_mask_{i}_{name}"]
            np.testing.assert_array_equal(mask, gradual_m_by_n(before, float(sparsity), 2, 4), err_msg=f"{i} {name}")
            same_order = np.array_equal(
                *[np.argsort(r[f"2:4_before_{i}_{name}"], axis=None, kind="stable") for r in (run, reference)]
            )
            if same_order:
                np.testing.assert_array_equal(mask, reference[f"2:4_mask_{i}_{name}"])
    for name in ("hidden", "logits"):
        assert pruning_utils.is_pruned_m_by_n(tf.constant(run[f"2:4_final_{name}"]), (2, 4)), name
        assert np.mean(run[f"2:4_final_{name}"] == 0) == 0.5, name


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_prunes_channels_and_the_shrunk_model_predicts_the_same(backend_runs, backend):
    """`ChannelPruning` of the worker's CNN to half its channels: the dropped channels' kernels are zero,
    the shrunk model predicts what the pruned one does, and the kept channels are TensorFlow's."""
    run, reference = run_on(backend_runs, backend), backend_runs["tensorflow"]
    assert sorted(key for key in run if key.startswith("channels_keep_")) == [
        "channels_keep_conv",
        "channels_keep_hidden",
    ]
    for name in ("conv", "hidden"):
        keep = run[f"channels_keep_{name}"]
        assert keep.sum() == keep.size // 2, name
        assert not np.any(run[f"channels_final_{name}"][..., ~keep]), name
        np.testing.assert_array_equal(keep, reference[f"channels_keep_{name}"])
    np.testing.assert_allclose(run["channels_shrunk"], run["channels_pruned"], atol=1e-5)


def test_a_backend_it_cannot_prune_with_is_refused_with_a_message():
    """Keras 3's NumPy backend (it cannot train): a fresh process, since Keras picks its backend at import."""
    code = (
        "import schedules, schedules.keras3 as k\n"
        "try:\n    k.PruningCallback(schedules.CubicSparsity(0.0, 0.5, 1, 10))\n"
        "except ValueError as error:\n    print(error)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "numpy", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert (
        "Argument `keras.backend.backend()` must be 'tensorflow', 'jax' or 'torch' for PruningCallback" in done.stdout
    ), done.stderr[-3000:]
    assert "Received: keras.backend.backend()='numpy'" in done.stdout
