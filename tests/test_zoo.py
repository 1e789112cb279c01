"""The model zoo: real architectures (`_zoo.ZOO`) through every path that applies, with the whole contract.

Paths: tf-keras (`schedules.prune_model` + tfmot's `UpdatePruningStep`) for every model but the
subclassed one, which gets a one-line error instead; Keras 3 (`schedules.keras3.PruningCallback`) for
every model but EfficientNetB0 (`KERAS3` says why). Each (model, path) is built and trained once
(module-scoped fixtures); the tests read that run. A run: `allocate` at `TARGET`, then `STEPS` training
steps of batch `BATCH` on random data with `CubicSparsity(0.5, 0.8, 2, 3, frequency=1)`, pruning events
at steps 2 (sparsity 0.5) and 3 (0.8), each layer at its share of the allocation. The references are
computed here: tfmot's `k = max(1, round(n (1 - s)))` in float64 (`_zoo.kept`), the mask as the
magnitudes at least the k-th largest of the kernel as a probe read it just before the event (ties
kept), the kernel sizes from a table written from tfmot's registry (`_zoo.PRUNED`).

On tf-keras the models train eagerly (`run_eagerly=True`) but for the nested and shared ones (`GRAPH`):
tracing a pruned training step costs 5 to 30 s, more than the few steps (graph mode is what the rest of
the suite trains in, on the small CNN and the encoder). The applications (MobileNetV2, EfficientNetB0)
train eagerly on Keras 3 too. `.h5` holds the masks of every model but those with a layer of several
pruned weights (attention, RNN); the SavedModel format (`SAVEDMODEL`) and TFLite (`TFLITE`) are checked
on a few small models: on the applications each takes tens of seconds. TFLite folds the ResNet's
BatchNormalization into its convolutions, scaling the kernels and keeping their zeros.

A layer applied twice (the shared model) is pruned by one tfmot wrapper that counts calls: its
`pruning_step` advances twice a training step, so its schedule runs twice as fast as the other layers'
(it prunes at its steps 2 and 3, in training steps 1 and 2), and `PruningRecorder` sees only the events
that end a step. `prune_model` warns about it; the tests expect exactly that. The Keras 3 callback
counts optimizer steps.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import _models
import _zoo
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

import schedules
from schedules import CubicSparsity, PruningRecorder, WeightRewinding, allocate, prune_model
from schedules.allocation import METHODS
from schedules.keras3 import PruningCallback

TARGET = 0.8
STEPS, BATCH = 3, 2
EVENTS = {2: 0.5, 3: 0.8}  # the cubic's events: p = 0 at step 2, 1 at step 3
TF_KERAS = [name for name in _zoo.ZOO if name != "subclassed"]
#: EfficientNetB0 trains on tf-keras only: on Keras 3 its eager fit with the callback took 45 s here (the
#: compiled mask update of its 66 layers included), half the zoo's budget; `allocate` reads its Keras 3 twin.
KERAS3 = [name for name in _zoo.ZOO if name != "efficientnet_b0"]
#: Formats each tf-keras model saves in: `.h5` cannot hold a layer's several masks (attention, RNN: docs/saving.md).
SEVERAL_MASKS = ("encoder", "gru")
TFLITE = ("resnet", "nested", "shared")
#: Saved as a SavedModel too (saving traces every layer: 2 to 5 s a model; the encoder's is in test_allocation).
SAVEDMODEL = ("resnet",)
#: Left out on EfficientNetB0, for time (about 5 s each): the resumed step and `compression_report` (MobileNetV2
#: has both).
LIGHT = ("efficientnet_b0",)
#: The tf-keras models trained in graph mode (the others: eagerly).
GRAPH = ("nested", "shared")
#: tfmot's wrapper counts calls, not steps: a layer applied twice advances its `pruning_step` twice a step.
CALLS = {"shared": 2}


def schedule() -> CubicSparsity:
    return CubicSparsity(0.5, TARGET, begin_step=2, end_step=3, frequency=1)


def layer_sparsity(share: float, step: int) -> float | None:
    """A layer's scheduled sparsity at `step` of its own (None: no event): `ScaledSparsity` of the cubic."""
    return None if step not in EVENTS else EVENTS[step] * share / TARGET


def dense_kernel_zeros(values: list[np.ndarray]) -> int:
    return sum(int(np.sum(v == 0)) for v in values)


# --- allocate, every method, both libraries -----------------------------------------------------------------


@pytest.fixture(scope="module", params=[(n, "tf_keras") for n in TF_KERAS] + [(n, "keras3") for n in _zoo.ZOO], ids=str)
def dense(request):
    name, path = request.param
    return name, _zoo.build(name, tf_keras if path == "tf_keras" else keras)


def test_allocate_meets_the_target_by_its_documented_rule(dense):
    """Every method but "uniform" keeps `round(N (1 - target))` weights in all, counted as tfmot keeps them
    (`max(1, round(n_i (1 - s)))` for each pruned weight of a layer); "uniform" gives every layer the target,
    within half a weight per pruned weight of it. ("sensitivity", one `predict` per layer and sparsity, is
    left out on the applications: 10 to 30 s each.)"""
    name, model = dense
    sizes = _zoo.sizes(model)
    total = sum(map(sum, sizes.values()))
    for method in METHODS:
        extra = {}
        if method == "sensitivity":
            if name in _zoo.APPLICATIONS:
                continue
            x, y = _zoo.inputs(name, 4)
            extra = dict(x=x, y=y, sparsities=(0.5, 0.95), verbose=0)
        allocation = allocate(model, TARGET, method, **extra)
        assert list(allocation) == list(sizes), method
        kept = {layer: sum(_models.expected_kept(allocation[layer], n) for n in ns) for layer, ns in sizes.items()}
        if method == "uniform":
            assert set(allocation.values()) == {TARGET}
            assert abs(sum(kept.values()) - total * (1 - TARGET)) <= 0.5 * sum(map(len, sizes.values()))
        else:
            assert sum(kept.values()) == round(total * (1 - TARGET)), (method, total - sum(kept.values()))
        assert allocation.kept == kept, method


# --- tf-keras: prune_model, UpdatePruningStep ---------------------------------------------------------------


class TfKerasProbe(tf_keras.callbacks.Callback):
    """Each wrapper's kernels before every step and its step and masks after it; all weights after step 1."""

    def __init__(self):
        super().__init__()
        self.before, self.after, self.steps, self.at_step_1 = [], [], [], None

    def wrappers(self):
        return [layer for layer in _zoo.flat_layers(self.model) if getattr(layer, "pruning_vars", None)]

    def on_train_batch_begin(self, batch, logs=None):
        self.before.append({w.layer.name: [v.numpy() for v, _, _ in w.pruning_vars] for w in self.wrappers()})

    def on_train_batch_end(self, batch, logs=None):
        self.after.append({w.layer.name: [m.numpy() for _, m, _ in w.pruning_vars] for w in self.wrappers()})
        self.steps.append({w.layer.name: int(w.pruning_step.numpy()) for w in self.wrappers()})
        if batch == 0:
            self.at_step_1 = [w.numpy() for w in self.model.weights]


@pytest.fixture(scope="module", params=TF_KERAS)
def tf_run(request, tmp_path_factory):
    """`prune_model` with ERK at `TARGET`, trained `STEPS` steps with a recorder and rewinding to step 1,
    then saved in every format it supports."""
    name = request.param
    model = _zoo.build(name, tf_keras)
    shares = allocate(model, TARGET, "erk")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", schedules.PlanWarning)
        pruned = prune_model(model, schedule(), allocation=shares)
    pruned.compile(tf_keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", run_eagerly=name not in GRAPH)
    x, y = _zoo.inputs(name, STEPS * BATCH)
    probe, recorder, rewinding = TfKerasProbe(), PruningRecorder(), WeightRewinding(1)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep(), probe, recorder, rewinding]
    pruned.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0, callbacks=callbacks)
    directory = tmp_path_factory.mktemp(name)
    formats = ["model.keras"]
    formats += [] if name in SEVERAL_MASKS or name == "efficientnet_b0" else ["model.h5"]  # (its load: 6 s)
    formats += ["savedmodel"] if name in SAVEDMODEL else []
    for fmt in formats:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # .h5 is a legacy format: saving it is the point
            pruned.save(directory / fmt, **({"save_format": "tf"} if fmt == "savedmodel" else {}))
    return SimpleNamespace(
        name=name,
        model=model,
        pruned=pruned,
        shares=shares,
        x=x,
        y=y,
        probe=probe,
        recorder=recorder,
        rewinding=rewinding,
        directory=directory,
        formats=formats,
        warnings=[str(w.message) for w in caught if issubclass(w.category, schedules.PlanWarning)],
    )


def expected_masks(run, layer: str, batch: int) -> list[np.ndarray] | None:
    """tfmot's masks of `layer` after `batch` (0-based) if the layer pruned in it, else None.

    The wrapper's step after batch b is `c (b + 1)` for a layer called c times a step; an event at one of
    those steps masks each kernel by its magnitudes as the event's call sees them: the kernel before the
    step, times the masks an earlier call of the same step applied (a shared layer).
    """
    calls = CALLS.get(run.name, 1) if layer == "shared" else 1
    masks = None
    previous = run.probe.after[batch - 1][layer] if batch else [np.ones_like(k) for k in run.probe.before[0][layer]]
    for step in range(calls * batch + 1, calls * (batch + 1) + 1):
        sparsity = layer_sparsity(run.shares[layer], step)
        if sparsity is None:
            continue
        seen = run.probe.before[batch][layer]
        if step > calls * batch + 1:  # a later call of the same step: the first applied the masks
            seen = [k * m for k, m in zip(seen, previous if masks is None else masks, strict=True)]
        masks = [pick_mask(k, sparsity) for k in seen]
    return masks


def pick_mask(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """The mask of `kernel` at `sparsity` (one of two where float32 rounding may go either way)."""
    candidates = [_zoo.magnitude_mask(kernel, k) for k in sorted(_zoo.kept(sparsity, kernel.size))]
    return candidates[0] if len(candidates) == 1 else np.stack(candidates)


def assert_mask(mask: np.ndarray, expected: np.ndarray, message: str) -> None:
    if expected.ndim == mask.ndim + 1:  # two candidates
        assert any(np.array_equal(mask, e) for e in expected), message
    else:
        np.testing.assert_array_equal(mask, expected, err_msg=message)


def test_tf_keras_masks_are_tfmots_rule_at_every_event_and_hold_between(tf_run):
    """Each pruned layer is wrapped with its share (ERK), the others not; after every step each kernel's mask
    keeps the k-th largest magnitudes (ties kept) of its kernel at the event, at the layer's scheduled share,
    and stays as it was between events. At the end each kernel keeps its final share, to one weight."""
    run = tf_run
    pruned_names = {name for name, share in run.shares.items() if share > 0}
    assert set(run.probe.after[0]) == pruned_names
    if run.name == "shared":  # prune_model says so, in one warning
        (warning,) = run.warnings
        assert warning.startswith("Layer 'shared' runs 2 times in a forward pass, and tfmot's wrapper counts calls")
        assert "keep_dense=['shared']" in warning and "schedules.keras3.PruningCallback" in warning
    else:
        assert run.warnings == []
    for layer, steps in run.probe.steps[-1].items():
        assert steps == STEPS * (CALLS.get(run.name, 1) if layer == "shared" else 1), layer
    sizes = _zoo.sizes(run.model)
    for batch in range(STEPS):
        for layer in pruned_names:
            masks = run.probe.after[batch][layer]
            expected = expected_masks(run, layer, batch)
            if expected is None:
                previous = run.probe.after[batch - 1][layer] if batch else [np.ones_like(m) for m in masks]
                expected = previous
            for i, (mask, e) in enumerate(zip(masks, expected, strict=True)):
                assert_mask(mask, e, f"{layer}[{i}] after step {batch + 1}")
    for layer in pruned_names:
        for mask, n in zip(run.probe.after[-1][layer], sizes[layer], strict=True):
            assert min(abs(int(mask.sum()) - k) for k in _zoo.kept(run.shares[layer], n)) == 0, layer


def test_tf_keras_recorder_and_rewinding_follow_the_events(tf_run):
    """`PruningRecorder` has one row per pruned weight at each event, the masks' sparsity as the probe read
    them; `WeightRewinding` rewound at both events (the masks changed), so every weight is its step-1 value,
    a pruned kernel's times its mask."""
    run = tf_run
    rows = run.recorder.record.rows
    calls = {layer: CALLS.get(run.name, 1) if layer == "shared" else 1 for layer in run.probe.after[0]}
    expected = []
    for batch in range(STEPS):
        for wrapper in (w for w in _zoo.flat_layers(run.pruned) if getattr(w, "pruning_vars", None)):
            layer = wrapper.layer.name
            step = calls[layer] * (batch + 1)
            if step in EVENTS:
                for mask in run.probe.after[batch][layer]:
                    expected.append((step, wrapper.name, pytest.approx(1 - mask.mean())))
    assert [(row.step, row.layer, row.achieved) for row in rows] == expected
    assert run.rewinding.rewinds == [2, 3]
    wrappers = [w for w in _zoo.flat_layers(run.pruned) if getattr(w, "pruning_vars", None)]
    masks = {weight.ref(): mask.numpy() for w in wrappers for weight, mask, _ in w.pruning_vars}
    own = {v.ref() for w in wrappers for _, mask, threshold in w.pruning_vars for v in (mask, threshold)}
    own |= {w.pruning_step.ref() for w in wrappers}
    for weight, at_step_1 in zip(run.pruned.weights, run.probe.at_step_1, strict=True):
        if weight.ref() in masks:
            np.testing.assert_array_equal(weight.numpy(), at_step_1 * masks[weight.ref()], err_msg=weight.name)
        elif weight.ref() not in own:
            np.testing.assert_array_equal(weight.numpy(), at_step_1, err_msg=weight.name)


def test_tf_keras_reloads_in_every_format_and_resumes_at_the_saved_step(tf_run):
    """`schedules.load_model` gives the same predictions, masks and steps in each format; trained on (`.keras`),
    the wrappers count on from the saved step."""
    run = tf_run
    predictions = run.pruned(run.x, training=False).numpy()
    steps = {w.name: int(w.pruning_step.numpy()) for w in _zoo.flat_layers(run.pruned) if hasattr(w, "pruning_step")}
    masks = {
        w.name: [m.numpy() for _, m, _ in w.pruning_vars]
        for w in _zoo.flat_layers(run.pruned)
        if hasattr(w, "pruning_step")
    }
    for fmt in run.formats:
        restored = schedules.load_model(run.directory / fmt)
        np.testing.assert_array_equal(restored(run.x, training=False).numpy(), predictions, err_msg=fmt)
        wrappers = [w for w in _zoo.flat_layers(restored) if hasattr(w, "pruning_step")]
        assert {w.name: int(w.pruning_step.numpy()) for w in wrappers} == steps, fmt
        for w in wrappers:
            for (_, mask, _), saved in zip(w.pruning_vars, masks[w.name], strict=True):
                np.testing.assert_array_equal(mask.numpy(), saved, err_msg=f"{fmt} {w.name}")
        if fmt == "model.keras" and run.name not in LIGHT:
            restored.run_eagerly = run.name not in GRAPH
            restored.fit(run.x[:BATCH], run.y[:BATCH], verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
            resumed = {w.name: int(w.pruning_step.numpy()) for w in wrappers}
            assert resumed == {n: s + s // STEPS for n, s in steps.items()}, fmt  # one step: c calls


def test_tf_keras_strips_reports_and_converts_to_tflite_with_the_zeros(tf_run):
    """The stripped model's kernels hold the masks' zeros; `compression_report` counts them; TFLite keeps them
    (the ResNet's BatchNormalization folded into its convolutions scales a kernel, keeps its zeros)."""
    run = tf_run
    stripped = tfmot.sparsity.keras.strip_pruning(run.pruned)
    assert not any(hasattr(layer, "pruning_vars") for layer in _zoo.flat_layers(stripped))
    masks = run.probe.after[-1]
    kernels = {name: [v.numpy() for v in vs] for name, vs in _zoo.kernels(stripped).items()}
    zeros = {}
    for name, values in kernels.items():
        if name in masks:
            for value, mask in zip(values, masks[name], strict=True):
                np.testing.assert_array_equal(value == 0, mask == 0, err_msg=name)
        zeros[name] = dense_kernel_zeros(values)
    if run.name not in LIGHT:
        report = schedules.compression_report(run.pruned)
        assert {row.name: row.zeros for row in report.sparsity.layers} == zeros
        assert [size.form for size in report.files] == [".keras", ".h5"] and all(s.raw > 0 for s in report.files)
    np.testing.assert_allclose(stripped(run.x).numpy(), run.pruned(run.x, training=False).numpy(), rtol=1e-5, atol=1e-6)
    if run.name not in TFLITE:
        return
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(stripped).convert()
    constants = _models.tflite_constants(flatbuffer)
    layout = {4: (3, 0, 1, 2), 2: (1, 0)}  # Conv2D HWIO -> OHWI, Dense [in, out] -> [out, in]
    for name, (kernel,) in kernels.items():
        if name not in masks:
            continue
        zero = kernel.transpose(layout[kernel.ndim]) == 0
        same = [t for t in constants if t.shape == zero.shape and np.array_equal(t == 0, zero)]
        assert same, f"no TFLite tensor holds the zeros of {name}"


# --- Keras 3: PruningCallback -------------------------------------------------------------------------------


class Before(keras.callbacks.Callback):
    """Before the pruning callback: each step and the kernels it starts from."""

    def __init__(self):
        super().__init__()
        self.steps, self.kernels = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.steps.append(int(self.model.optimizer.iterations.numpy()) + 1)
        self.kernels.append({name: [v.numpy() for v in vs] for name, vs in _zoo.kernels(self.model).items()})


class After(keras.callbacks.Callback):
    """After the pruning callback: its masks before the step trains, and the kernels after the step."""

    def __init__(self, pruning):
        super().__init__()
        self.pruning, self.masks, self.kernels = pruning, [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.masks.append(self.pruning.masks)

    def on_train_batch_end(self, batch, logs=None):
        self.kernels.append({name: [v.numpy() for v in vs] for name, vs in _zoo.kernels(self.model).items()})


@pytest.fixture(scope="module", params=KERAS3)
def keras3_run(request, tmp_path_factory):
    """`PruningCallback` with the LAMP allocation (computed before training) and a `PruningRecorder`, trained
    `STEPS` steps, saved as `.keras`."""
    name = request.param
    model = _zoo.build(name, keras)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", run_eagerly=name in _zoo.APPLICATIONS)
    shares = allocate(model, TARGET, "lamp")
    pruning = PruningCallback(schedule(), allocation=dict(shares))
    before, after, recorder = Before(), After(pruning), PruningRecorder()
    x, y = _zoo.inputs(name, STEPS * BATCH)
    model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[before, pruning, after, recorder])
    path = tmp_path_factory.mktemp(name) / "model.keras"
    model.save(path)
    return SimpleNamespace(
        name=name,
        model=model,
        shares=shares,
        pruning=pruning,
        before=before,
        after=after,
        recorder=recorder,
        x=x,
        y=y,
        path=path,
    )


def test_keras3_masks_are_tfmots_rule_at_every_event_and_zeros_stay(keras3_run):
    """At each event every pruned kernel's mask is tfmot's rule on the kernel as it stood before the step
    (k-th largest magnitude, ties kept), at the layer's share of the scheduled sparsity; unchanged between
    events; the masked weights are exact zeros after every step; the recorder has the events."""
    run = keras3_run
    assert run.before.steps == list(range(1, STEPS + 1))
    pruned_names = {name for name, share in run.shares.items() if share > 0}
    assert set(run.after.masks[0]) == pruned_names
    previous = {name: [np.ones_like(k) for k in run.before.kernels[0][name]] for name in pruned_names}
    for step, kernels, masks, after in zip(
        run.before.steps, run.before.kernels, run.after.masks, run.after.kernels, strict=True
    ):
        for name in pruned_names:
            sparsity = layer_sparsity(run.shares[name], step)
            for i, (kernel, mask) in enumerate(zip(kernels[name], masks[name], strict=True)):
                expected = previous[name][i] if sparsity is None else pick_mask(kernel, sparsity)
                assert_mask(mask, expected, f"{name}[{i}] at step {step}")
                assert not np.any(after[name][i][mask == 0]), f"{name}[{i}] after step {step}"
            previous[name] = masks[name]
    sizes = _zoo.sizes(run.model)
    for name in pruned_names:
        for mask, n in zip(previous[name], sizes[name], strict=True):
            assert int(mask.sum()) in _zoo.kept(run.shares[name], n), name
    rows = sorted((row.step, row.layer, row.weight, row.achieved) for row in run.recorder.record.rows)
    expected = sorted(
        (step, name, kernel.name, 1 - float(mask.mean()))
        for step, masks in zip(run.before.steps, run.after.masks, strict=True)
        if step in EVENTS
        for name in pruned_names
        for kernel, mask in zip(_zoo.kernels(run.model)[name], masks[name], strict=True)
    )
    assert [row[:3] for row in rows] == [row[:3] for row in expected]
    np.testing.assert_allclose([row[3] for row in rows], [row[3] for row in expected], rtol=1e-6)


def test_keras3_reloads_with_its_masks_and_resumes_at_the_saved_step(keras3_run):
    """`schedules.keras3.load_model` predicts what the model did, at the saved step; a new callback with the
    same arguments resumes with the saved masks (no warning, no event: the schedule has ended).

    (The kernels after that step are not checked: on MobileNetV2 a plain Keras `fit` step of the pruned
    model, with or without the callback, gives NaN weights in its first layers, where `train_on_batch` on
    the same batch does not; the zeros after every training step are checked on the run above.)"""
    run = keras3_run
    restored = schedules.keras3.load_model(run.path)
    np.testing.assert_array_equal(restored(run.x, training=False).numpy(), run.model(run.x, training=False).numpy())
    assert int(restored.optimizer.iterations.numpy()) == STEPS
    restored.run_eagerly = run.name in _zoo.APPLICATIONS
    pruning = PruningCallback(schedule(), allocation=dict(run.shares))
    with warnings.catch_warnings():
        warnings.simplefilter("error", schedules.PlanWarning)
        restored.fit(run.x[:BATCH], run.y[:BATCH], batch_size=BATCH, verbose=0, callbacks=[pruning])
    assert int(restored.optimizer.iterations.numpy()) == STEPS + 1 and pruning.events == []
    for name, masks in run.pruning.masks.items():
        for mask, saved in zip(pruning.masks[name], masks, strict=True):
            np.testing.assert_array_equal(mask, saved, err_msg=name)


# --- what is not supported ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["alone", "nested"])
def test_a_subclassed_tf_keras_model_gets_a_one_line_error_naming_it(where):
    """`clone_model` cannot rebuild a subclassed model: `prune_model` says which one and what to do."""
    model = _zoo.build("subclassed", tf_keras)
    if where == "nested":
        inputs = tf_keras.Input((10,))
        model = tf_keras.Model(inputs, model(inputs), name="outer")
    with pytest.raises(ValueError) as raised:
        prune_model(model, schedule())
    message = str(raised.value)
    assert "\n" not in message
    assert "the subclassed model 'subclassed' (Subclassed)" in message
    assert "build it with the functional API" in message and "schedules.keras3.PruningCallback" in message
