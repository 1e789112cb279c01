"""`ChannelPruning` in real `fit` runs, on tf-keras and Keras 3 models: the channels kept at each pruning
step, the zeros held between them, and the shrunk model predicting what the pruned one does.

The references are computed here: the cubic formula in float64, tfmot's `k = max(1, round(C (1 - s)))`
on channels, each channel's score as the L2 norm of its producers' kernel slices and biases (NumPy,
float64), the kept channels as the k best (ties to the lower index).
"""

from __future__ import annotations

import _zoo
import keras
import numpy as np
import pytest
import tf_keras

import schedules
from schedules.channel_pruning import ChannelPruning
from schedules.channels import channel_groups, shrink
from schedules.models import build_cnn

BEGIN, END, FREQUENCY, FINAL = 2, 10, 2, 0.5
EVENTS = list(range(BEGIN, END + 1, FREQUENCY))
MODULES = {"tf_keras": tf_keras, "keras3": keras}


def cubic(step):
    p = np.clip(step - BEGIN, 0, END - BEGIN) / (END - BEGIN)
    return FINAL * (1.0 - (1.0 - p) ** 3)


def weights_of(model, names):
    """Each layer's kernel and bias (None without one), as NumPy."""
    out = {}
    for name in names:
        layer = model.get_layer(name)
        bias = getattr(layer, "bias", None)
        out[name] = (np.array(layer.kernel), None if bias is None else np.array(bias))
    return out


def reference_keep(producers, sparsity):
    """The documented rule, from the producers' weights as they were before the step."""
    squares = 0.0
    for kernel, bias in producers:
        squares = squares + np.sum(kernel.astype(np.float64).reshape(-1, kernel.shape[-1]) ** 2, axis=0)
        if bias is not None:
            squares = squares + bias.astype(np.float64) ** 2
    scores = np.sqrt(squares)
    k = max(1, round(scores.size * (1.0 - sparsity)))
    keep = np.zeros(scores.size, bool)
    keep[sorted(range(scores.size), key=lambda c: (-scores[c], c))[:k]] = True
    return keep


def probes(module, pruning, producers):
    """A callback before `pruning` (the weights each step starts from) and one after it (the kept
    channels before the step trains, the weights after it)."""

    class Before(module.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.weights = []

        def on_train_batch_begin(self, batch, logs=None):
            self.weights.append(weights_of(self.model, producers))

    class After(module.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.keep, self.weights = [], []

        def on_train_batch_begin(self, batch, logs=None):
            self.keep.append({name: keep.copy() for name, keep in pruning.keep.items()})

        def on_train_batch_end(self, batch, logs=None):
            self.weights.append(weights_of(self.model, producers))

    return Before(), After()


@pytest.fixture(scope="module", params=list(MODULES))
def cnn_run(request):
    module = MODULES[request.param]
    module.utils.set_random_seed(0)
    model = build_cnn(module)
    model.compile(optimizer="adam", loss=module.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 8, 8, 1)).astype("float32"), rng.integers(0, 10, size=256)
    pruning = ChannelPruning(schedules.CubicSparsity(0.0, FINAL, BEGIN, END, frequency=FREQUENCY))
    producers = [layer.name for layer in model.layers if layer.weights]
    before, after = probes(module, pruning, producers)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[before, pruning, after])
    return model, pruning, before, after, x


def test_groups_of_the_cnn_are_its_hidden_layers_and_the_logits_stay_whole(cnn_run):
    model, pruning, *_ = cnn_run
    analysis = channel_groups(model)
    assert [(g.name, g.size, g.producers) for g in analysis.groups] == [
        ("conv1", 16, ("conv1",)),
        ("conv2", 32, ("conv2",)),
        ("dense", 64, ("dense",)),
    ]
    assert "logits" in analysis.whole
    assert sorted({step for step, _, _ in pruning.events}) == EVENTS


def test_kept_channels_follow_the_schedule_and_dropped_ones_stay_zero(cnn_run):
    model, pruning, before, after, _ = cnn_run
    groups = channel_groups(model).groups
    previous = {g.name: np.ones(g.size, bool) for g in groups}
    for step, (start, keep, end) in enumerate(zip(before.weights, after.keep, after.weights, strict=True), start=1):
        for group in groups:
            if step in EVENTS:
                expected = reference_keep([start[p] for p in group.producers], cubic(step))
                np.testing.assert_array_equal(keep[group.name], expected, err_msg=f"{step} {group.name}")
            else:
                np.testing.assert_array_equal(keep[group.name], previous[group.name], err_msg=f"{step}")
            previous[group.name] = keep[group.name]
            for name in group.producers:
                kernel, bias = end[name]
                assert not np.any(kernel[..., ~keep[group.name]]), (step, name)
                assert bias is None or not np.any(bias[~keep[group.name]]), (step, name)
    assert {name: int(keep.sum()) for name, keep in pruning.keep.items()} == {"conv1": 8, "conv2": 16, "dense": 32}


def test_the_shrunk_model_predicts_what_the_pruned_one_does(cnn_run):
    model, pruning, _, _, x = cnn_run
    small = shrink(model, pruning.keep)
    assert [layer.count_params() for layer in small.layers if layer.weights] == [
        3 * 3 * 1 * 8 + 8,
        3 * 3 * 8 * 16 + 16,
        3 * 3 * 16 * 32 + 32,
        32 * 10 + 10,
    ]
    np.testing.assert_allclose(small.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-4)


def test_bad_input_is_refused_with_a_message_naming_it():
    schedule = schedules.CubicSparsity(0.0, FINAL, BEGIN, END)
    with pytest.raises(TypeError, match="Argument `schedule` must be a tfmot PruningSchedule"):
        ChannelPruning("cubic")
    with pytest.raises(ValueError, match=r"Argument `allocation` must be 'uniform' or a dict .*ERK and LAMP"):
        ChannelPruning(schedule, allocation="erk")
    model = build_cnn(keras)
    model.compile(optimizer="adam", loss="mse")
    x = np.zeros((16, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match=r"naming every channel group of the model \(missing \['conv2', 'dense'\]"):
        model.fit(x, np.zeros((16, 10)), verbose=0, callbacks=[ChannelPruning(schedule, allocation={"conv1": 0.5})])


@pytest.mark.parametrize("name", list(MODULES))
def test_a_residual_network_prunes_whole_groups_shrinks_and_resumes_from_a_saved_file(name, tmp_path):
    """The zoo's ResNet: the convolutions feeding one `Add` lose the same channels; the shrunk model
    predicts what the pruned one does; a model saved and reloaded resumes with the channels it kept."""
    module = MODULES[name]
    model = _zoo.build("resnet", module)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = _zoo.inputs("resnet", 32)
    pruning = ChannelPruning(schedules.CubicSparsity(0.0, FINAL, 1, 4, frequency=1))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[pruning])
    groups = channel_groups(model).groups
    assert any(len(group.producers) == 2 for group in groups)  # a residual Add's two convolutions
    for group in groups:
        keep = pruning.keep[group.name]
        assert keep.sum() == max(1, round(group.size * (1 - FINAL))), group.name
        for producer in group.producers:
            assert not np.any(np.array(model.get_layer(producer).kernel)[..., ~keep]), (group.name, producer)
    small = shrink(model, pruning.keep)
    assert small.count_params() < model.count_params()
    np.testing.assert_allclose(small.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-4)

    path = str(tmp_path / "pruned.keras")
    model.save(path)
    reloaded = schedules.load_model(path) if module is tf_keras else keras.models.load_model(path)
    resumed = ChannelPruning(schedules.CubicSparsity(0.0, FINAL, 1, 4, frequency=1))
    reloaded.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[resumed])  # past the last pruning step
    assert resumed.events == []
    for group_name, keep in pruning.keep.items():
        np.testing.assert_array_equal(resumed.keep[group_name], keep, err_msg=group_name)


def test_an_execution_of_several_steps_applies_its_pruning_steps_before_it():
    """`steps_per_execution=4`: Keras calls the batch hooks once per 4 steps; every pruning step is applied
    before its execution, the last at the schedule's final share."""
    model = build_cnn(keras)
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=4
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 8, 8, 1)).astype("float32"), rng.integers(0, 10, size=256)
    pruning = ChannelPruning(schedules.CubicSparsity(0.0, FINAL, BEGIN, END, frequency=FREQUENCY))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[pruning])
    assert sorted({step for step, _, _ in pruning.events}) == EVENTS
    assert {name: int(keep.sum()) for name, keep in pruning.keep.items()} == {"conv1": 8, "conv2": 16, "dense": 32}


def test_a_fit_that_stopped_and_a_new_model_leave_no_masks_behind():
    """A fit that raised keeps its constraints until the next fit with the callback, which takes them off first
    (no mask on a mask); the same callback on a fresh model starts from all channels, not the last model's."""

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 5:
                raise RuntimeError("stop")

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(128, 8, 8, 1)).astype("float32"), rng.integers(0, 10, size=128)
    model = build_cnn(keras)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruning = ChannelPruning(schedules.CubicSparsity(0.0, FINAL, 1, 4, frequency=1))
    with pytest.raises(RuntimeError, match="stop"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[pruning, Stop()])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[pruning])
    constraints = [w.constraint for w in model.weights]
    assert not any(isinstance(c, schedules.keras3.Masked) for c in constraints), constraints
    fresh = build_cnn(keras)
    fresh.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    later = ChannelPruning(schedules.CubicSparsity(0.0, FINAL, 100, 200, frequency=1))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[later])
    fresh.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[later])  # its steps 1..8: no pruning yet
    assert all(keep.all() for keep in later.keep.values()), later.keep


def test_an_op_of_a_merge_layers_name_is_not_taken_for_the_layer():
    """Keras 3's `keras.ops.add(x, 1.0)` is a graph node of class `Add`: a dropped channel would be 1 after it,
    so the group before it stays whole."""
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(keras.ops.add(hidden, 1.0)))
    analysis = channel_groups(model)
    assert analysis.groups == () and "Add is not followed" in analysis.whole["hidden"]
