"""Sparsity across layers: `schedules.allocate`, `schedules.prune_model`, `schedules.sparsity_report`.

References are computed here, independently, in NumPy float64: the Erdos-Renyi(-Kernel)
densities by RigL's own loop (`rigl/sparse_utils.py`: solve for eps, make the layers whose
density passes 1 dense, solve again), global-magnitude counts by sorting every weight of
the model. Training runs are real tf-keras `fit`s with `UpdatePruningStep`.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import _models
import keras as keras3
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_impl import Pruning

import schedules
from schedules import CubicSparsity, ScaledSparsity, allocate, prune_model, sparsity_report
from schedules.inspection import pruned_layers
from schedules.models import build_cnn
from schedules.sensitivity import SensitivitySweep

TARGETS = [0.0, 0.5, 0.9, 0.95, 0.98, 0.99]


def build_mlp(seed: int = 0) -> tf_keras.Model:
    """A functional MLP 64-128-64-10 with a nested Sequential block in the middle."""
    tf_keras.utils.set_random_seed(seed)
    inputs = tf_keras.Input((64,))
    hidden = tf_keras.layers.Dense(128, activation="relu", name="fc1")(inputs)
    block = tf_keras.Sequential([tf_keras.layers.Dense(64, activation="relu", name="fc2")], name="block")
    outputs = tf_keras.layers.Dense(10, name="out")(block(hidden))
    return tf_keras.Model(inputs, outputs, name="mlp")


@pytest.fixture(scope="module")
def cnn() -> tf_keras.Model:
    tf_keras.utils.set_random_seed(0)
    return build_cnn(tf_keras)


@pytest.fixture(scope="module")
def mlp() -> tf_keras.Model:
    return build_mlp()


def kernel_shapes(model) -> dict[str, tuple[int, ...]]:
    """Every Dense/Conv kernel shape, read from the layers (not through the package)."""
    shapes = {}
    stack = list(model.layers)
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, tf_keras.Model):
            stack = list(layer.layers) + stack
        elif hasattr(layer, "kernel"):
            shapes[layer.name] = tuple(layer.kernel.shape)
    return shapes


def rigl_sparsities(shapes: dict[str, tuple | list[tuple]], target: float, include_kernel: bool, dense=()) -> dict:
    """RigL's `get_sparsities_erdos_renyi` loop, with `dense` layers counted as RigL counts its dense ones.

    A layer given a list of shapes (attention's four kernels) counts as one, its sums and products
    added over them (as `allocate` documents; RigL has no such layer).
    """
    dense_layers = set(dense)
    while True:
        divisor, rhs, raw = 0.0, 0.0, {}
        for name, shape in shapes.items():
            kernels = shape if isinstance(shape, list) else [shape]
            n_param = float(sum(np.prod(k) for k in kernels))
            if name in dense_layers:
                rhs -= n_param * target
            else:
                rhs += n_param * (1.0 - target)
                if include_kernel:
                    raw[name] = sum(np.sum(k) for k in kernels) / n_param
                else:
                    raw[name] = sum(sum(k[-2:]) for k in kernels) / sum(np.prod(k[-2:]) for k in kernels)
                divisor += raw[name] * n_param
        if not raw:  # every layer dense (a target of 0)
            return {name: 0.0 for name in shapes}
        eps = rhs / divisor
        max_prob = max(raw.values())
        if max_prob * eps > 1:
            dense_layers |= {name for name, p in raw.items() if p == max_prob}
        else:
            break
    return {name: 0.0 if name in dense_layers else 1.0 - eps * raw[name] for name in shapes}


# --- the methods against their references ---------------------------------------------------


@pytest.mark.parametrize("model_name", ["cnn", "mlp"])
@pytest.mark.parametrize("method", ["erk", "erdos_renyi", "uniform"])
@pytest.mark.parametrize("target", TARGETS)
def test_density_methods_match_rigls_loop_to_one_weight(request, model_name, method, target):
    model = request.getfixturevalue(model_name)
    shapes = kernel_shapes(model)
    if method == "uniform":
        expected = {name: target for name in shapes}
    else:
        expected = rigl_sparsities(shapes, target, include_kernel=method == "erk")
    allocation = allocate(model, target, method)
    assert list(allocation) == list(shapes)
    for name, shape in shapes.items():
        n = math.prod(shape)
        # whole kept weights: within one weight of the real-valued density
        assert abs(allocation[name] - expected[name]) <= 1.0 / n + 1e-12, (name, allocation[name], expected[name])
    total = sum(math.prod(s) for s in shapes.values())
    kept = allocation.kept
    if method == "uniform":
        assert all(kept[name] == max(1, round(math.prod(s) * (1 - target))) for name, s in shapes.items())
    else:
        assert sum(kept.values()) == round(total * (1 - target))


def test_keep_dense_layers_count_in_the_overall_sparsity(cnn):
    shapes = kernel_shapes(cnn)
    allocation = allocate(cnn, 0.95, "erk", keep_dense=["logits"])
    expected = rigl_sparsities(shapes, 0.95, include_kernel=True, dense=["logits"])
    assert allocation["logits"] == 0.0
    for name, shape in shapes.items():
        assert abs(allocation[name] - expected[name]) <= 1.0 / math.prod(shape) + 1e-12
    assert sum(allocation.kept.values()) == round(sum(math.prod(s) for s in shapes.values()) * 0.05)


@pytest.mark.parametrize("method", ["uniform", "erk", "erdos_renyi", "global_magnitude", "lamp"])
@settings(max_examples=25, deadline=None)
@given(
    target=st.floats(0.0, 0.99),
    max_sparsity=st.one_of(st.none(), st.floats(0.9, 0.999)),
    min_weights=st.integers(1, 40),
)
def test_floors_and_caps_hold_and_the_total_is_met(cnn, method, target, max_sparsity, min_weights):
    """For any target the constraints allow: every layer keeps at least `min_weights` and at most
    `max_sparsity`, and the kept weights add up to the target's (uniform: one sparsity unless a
    floor binds)."""
    sizes = {name: math.prod(s) for name, s in kernel_shapes(cnn).items()}
    total = sum(sizes.values())
    floors = {
        name: min(n, max(min_weights, math.ceil(n * (1 - (max_sparsity or 1.0)) - 1e-9))) for name, n in sizes.items()
    }
    if round(total * (1 - target)) < sum(floors.values()):
        with pytest.raises(ValueError, match="Argument `target_sparsity` must be at most"):
            allocate(cnn, target, method, max_sparsity=max_sparsity, min_weights=min_weights)
        return
    allocation = allocate(cnn, target, method, max_sparsity=max_sparsity, min_weights=min_weights)
    for name, n in sizes.items():
        kept = round(n * (1 - allocation[name]))
        assert kept >= floors[name] - (method == "uniform"), (name, kept, floors[name])
        assert 0.0 <= allocation[name] < 1.0
    if method != "uniform":
        assert sum(allocation.kept.values()) == round(total * (1 - target))
    else:
        assert abs(allocation.sparsity - target) <= len(sizes) / total


def test_global_magnitude_counts_match_one_threshold(mlp):
    magnitudes = {}
    for name in kernel_shapes(mlp):
        magnitudes[name] = np.abs(_layer(mlp, name).kernel.numpy().astype(np.float64)).ravel()
    everything = np.sort(np.concatenate(list(magnitudes.values())))[::-1]
    for target in (0.5, 0.9, 0.98):
        budget = round(everything.size * (1 - target))
        threshold = everything[budget - 1]
        allocation = allocate(mlp, target, "global_magnitude")
        for name, values in magnitudes.items():
            assert allocation.kept[name] == max(1, int(np.sum(values >= threshold))), (target, name)


def test_lamp_counts_match_one_threshold_on_the_scores(mlp):
    """LAMP (Lee et al. 2021), by its definition: sort a layer's weights by magnitude, ascending;
    weight u scores w_u^2 / sum_{v >= u} w_v^2; one threshold over every layer's scores."""
    scores = {}
    for name in kernel_shapes(mlp):
        squares = np.sort(np.abs(_layer(mlp, name).kernel.numpy().astype(np.float64)).ravel()) ** 2
        scores[name] = np.array([squares[u] / squares[u:].sum() for u in range(squares.size)])
        assert scores[name][-1] == 1.0
    everything = np.sort(np.concatenate(list(scores.values())))[::-1]
    for target in (0.5, 0.9, 0.99):
        budget = round(everything.size * (1 - target))
        threshold = everything[budget - 1]
        allocation = allocate(mlp, target, "lamp")
        for name, values in scores.items():
            assert allocation.kept[name] == int(np.sum(values >= threshold)), (target, name)
        assert sum(allocation.kept.values()) == budget


def _layer(model, name):
    for layer in model.layers:
        if isinstance(layer, tf_keras.Model):
            found = _layer(layer, name)
            if found is not None:
                return found
        elif layer.name == name:
            return layer
    return None


# --- bad requests ----------------------------------------------------------------------------


def test_bad_requests_are_refused_with_the_argument_named(cnn):
    cases = [
        (dict(target_sparsity=1.0), ValueError, r"Argument `target_sparsity` must be .*Received: target_sparsity=1\.0"),
        (dict(target_sparsity=-0.1), ValueError, "Argument `target_sparsity`"),
        (dict(target_sparsity="0.9"), TypeError, "Argument `target_sparsity`"),
        (dict(method="magic"), ValueError, r"Argument `method` must be one of .*'erk'.*Received: method='magic'"),
        (dict(keep_dense=["conv9"]), ValueError, r"Argument `keep_dense` must be names of prunable layers .*conv1"),
        (dict(keep_dense="conv1"), TypeError, "Argument `keep_dense` must be a list of layer names"),
        (dict(max_sparsity=0.5), ValueError, r"Argument `target_sparsity` must be at most 0\.5"),
        (dict(min_weights=0), ValueError, "Argument `min_weights`"),
        (dict(method=3), TypeError, r"Argument `method` must be one of .*Received: method=3"),
        (dict(max_sparsity=1.0), ValueError, r"Argument `max_sparsity` must be .*Received: max_sparsity=1\.0"),
        (
            dict(x=np.zeros((1, 8, 8, 1))),
            TypeError,
            r"Argument `x` must be given only with method='sensitivity' .*Received: method='erk'$",
        ),
        (dict(metric="accuracy"), TypeError, r"Argument `metric` must be given only with method='sensitivity'"),
        (dict(method="sensitivity"), TypeError, r"Argument `x` must be validation data .*Received: x=None$"),
        (
            dict(method="sensitivity", x=np.zeros((1, 8, 8, 1))),
            TypeError,
            r"Argument `y` must be validation data .*Received: y=None$",
        ),
    ]
    for overrides, error, message in cases:
        arguments = {"target_sparsity": 0.9, "method": "erk", **overrides}
        with pytest.raises(error, match=message):
            allocate(cnn, **arguments)


def test_models_that_cannot_be_allocated_are_refused():
    nothing = tf_keras.Sequential([tf_keras.Input((4, 4, 1)), tf_keras.layers.Flatten()])
    with pytest.raises(ValueError, match="Argument `model` must be a model with at least one layer tfmot can prune"):
        allocate(nothing, 0.5)
    unbuilt = tf_keras.Sequential([tf_keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="Argument `model` must be a built model"):
        allocate(unbuilt, 0.5)
    keras3_model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])  # allocate takes it; tfmot not
    with pytest.raises(TypeError, match=r"Keras 3 model: tfmot prunes tf-keras models.*keras3\.PruningCallback"):
        prune_model(keras3_model, CubicSparsity(0.0, 0.5, 0, 10))


def test_prune_model_refuses_bad_requests(cnn):
    schedule = CubicSparsity(0.0, 0.9, 0, 100)
    already = prune_model(cnn, schedule)
    with pytest.raises(ValueError, match="Argument `model` must be a model that is not pruned yet"):
        prune_model(already, schedule)
    with pytest.raises(TypeError, match="Argument `schedule` must be a tfmot PruningSchedule"):
        prune_model(cnn, 0.9)
    with pytest.raises(ValueError, match="Argument `allocation` must be a sparsity for each prunable layer"):
        prune_model(cnn, schedule, allocation={"conv1": 0.5})
    with pytest.raises(ValueError, match="Argument `allocation` must be a method that needs no data"):
        prune_model(cnn, schedule, allocation="sensitivity")
    with pytest.raises(ValueError, match=r"Argument `allocation\['conv1'\]`"):
        prune_model(cnn, schedule, allocation={"conv1": 1.0, "conv2": 0.9, "dense": 0.9, "logits": 0.9})
    with pytest.raises(TypeError, match=r"Argument `allocation` must be a method name, a dict .*, or a callable"):
        prune_model(cnn, schedule, allocation=[0.9, 0.9, 0.9, 0.9])
    with pytest.raises(ValueError, match="Argument `schedule` must be a schedule whose peak sparsity is known"):
        prune_model(cnn, CubicSparsity(0.0, 0.0, 0, 100))
    with pytest.raises(TypeError, match=r"Argument `schedule` must be a tfmot PruningSchedule, or None with `masks`"):
        prune_model(cnn)
    held = np.ones((64, 10), bool)
    with pytest.raises(ValueError, match=r"Argument `schedule` must be None with `masks` on tf-keras \(tfmot's"):
        prune_model(cnn, schedule, masks={"logits": held})
    with pytest.raises(ValueError, match=r"Argument `sparsity_m_by_n` must be None with `masks` \(tfmot computes"):
        prune_model(cnn, masks={"logits": held}, sparsity_m_by_n=(2, 4))
    with pytest.raises(ValueError, match=r"`masks` must be a dict keyed by names of layers with weights to prune, \["):
        prune_model(cnn, masks={"pool": held})
    with pytest.raises(ValueError, match=r"`masks\['logits'\]` must be a mask of the pruned weight's shape \(64, 10\)"):
        prune_model(cnn, masks={"logits": held.T})
    with pytest.raises(ValueError, match=r"`masks\['logits'\]` must be booleans, or numbers that are all 0 or 1"):
        prune_model(cnn, masks={"logits": held * 2})
    with pytest.raises(ValueError, match=r"`masks\['logits'\]` must be a mask that lets at least one weight train"):
        prune_model(cnn, masks={"logits": ~held})


# --- prune_model ------------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["cnn", "mlp"])
def test_prune_model_wraps_each_layer_with_its_share_and_keeps_the_weights(request, model_name):
    model = request.getfixturevalue(model_name)
    schedule = CubicSparsity(0.0, 0.95, 0, 100, frequency=10)
    allocation = allocate(model, 0.95, "erk")
    calls = []  # a callable allocation gets the model and the schedule's peak
    pruned = prune_model(model, schedule, allocation=lambda *args: calls.append(args) or allocation)
    assert calls == [(model, 0.95)]
    wrappers = {layer.layer.name: layer for layer in pruned_layers(pruned)}
    assert sorted(wrappers) == sorted(name for name, s in allocation.items() if s > 0)
    for name, wrapper in wrappers.items():
        got = wrapper.pruning_schedule
        if allocation[name] == 0.95:
            assert got is schedule
        else:
            assert isinstance(got, ScaledSparsity) and got.schedule is schedule
            assert float(got(100)[1]) == pytest.approx(allocation[name], abs=1e-6)
    x = np.random.default_rng(0).normal(size=(4, *model.input_shape[1:])).astype(np.float32)
    np.testing.assert_allclose(pruned(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    # A copy: training the pruned model leaves the original alone.
    assert pruned.get_weights()[0] is not model.get_weights()[0]


@pytest.fixture(scope="module")
def trained_erk(tmp_path_factory):
    """The test CNN pruned by `prune_model` with ERK at 0.95 overall, trained past its schedule."""
    model = _models.build_model()
    schedule = CubicSparsity(0.0, 0.95, 0, 60, frequency=10)
    allocation = allocate(model, 0.95, "erk")
    pruned = _models.compile_model(prune_model(model, schedule, allocation=allocation))
    _models.fit(pruned, steps_per_epoch=80)
    return pruned, allocation


def test_a_trained_model_reaches_the_overall_target_to_the_weight(trained_erk):
    pruned, allocation = trained_erk
    report = sparsity_report(pruned)
    assert [row.name for row in report.layers] == list(allocation)
    for row in report.layers:
        assert row.kept == allocation.kept[row.name], row
        assert row.target == pytest.approx(allocation[row.name], abs=1e-6)
    assert report.zeros == report.weights - round(report.weights * 0.05)
    text = str(report)
    assert text.splitlines()[0].split() == ["layer", "weights", "target", "zeros", "kept", "sparsity"]
    assert text.splitlines()[-1].split()[0] == "overall"


@pytest.mark.parametrize("fmt", ["model.keras", "model.h5", "savedmodel"])
def test_per_layer_schedules_reload_in_every_format_and_train_on(trained_erk, tmp_path, fmt):
    pruned, _ = trained_erk
    path = tmp_path / fmt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pruned.save(path)
    restored = schedules.load_model(path)
    before = {layer.layer.name: layer.pruning_schedule.get_config() for layer in pruned_layers(pruned)}
    after = {layer.layer.name: layer.pruning_schedule.get_config() for layer in pruned_layers(restored)}
    assert after == before
    assert len({str(config) for config in after.values()}) > 1, "the layers should have different schedules"
    assert str(sparsity_report(restored)) == str(sparsity_report(pruned))
    _models.fit(restored, steps_per_epoch=2)
    assert str(sparsity_report(restored)) == str(sparsity_report(pruned))


#: A block-diagonal mask between two Dense(8) layers: two 4x4 blocks train, the rest is held at zero.
BLOCKS = np.kron(np.eye(2), np.ones((4, 4))).astype(bool)


def test_tfmots_mask_update_would_let_locked_weights_that_tie_at_zero_train():
    """Why `prune_model` takes no schedule with `masks`: tfmot ranks the whole kernel, where the locked weights
    are zeros. Even at a sparsity that keeps `k` of the `a` allowed weights in tfmot's own count (`f + (1 - f) s`
    for a locked fraction `f`), one allowed weight at exactly 0 among the k largest makes the threshold 0, and
    tfmot's `>=` keeps every zero: the 32 locked weights of a block-diagonal 8x8 kernel are let go."""
    kernel = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32) * BLOCKS
    kernel[0, 0] = 0.0  # an allowed weight at exactly 0
    for sparsity, kept_locked in [(0.5, 0), (0.0, 32)]:  # s = 0.5: 16 of the 32 allowed kept; s = 0: all 32
        scaled = 0.5 + 0.5 * sparsity  # in tfmot's count over all 64 weights
        weight = tf.Variable(kernel)
        pruning = Pruning(
            lambda: tf.constant(1, tf.int64),
            [(weight, tf.Variable(tf.ones((8, 8))), tf.Variable(0.0))],
            tfmot.sparsity.keras.ConstantSparsity(scaled, 0, frequency=1),
            (1, 1),
            "AVG",
        )
        mask = pruning._update_mask(weight)[1].numpy() != 0
        assert int(mask[~BLOCKS].sum()) == kept_locked, sparsity


@pytest.fixture(scope="module")
def trained_blocks():
    """`prune_model(model, masks={"second": BLOCKS})` on Flatten -> Dense(8) -> Dense(8) -> Dense(4), trained
    two epochs of 16 steps; the recorder reads the masks after every step."""
    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    model = tf_keras.Sequential(
        [
            tf_keras.Input(_models.INPUT_SHAPE),
            layers.Flatten(name="flatten"),
            layers.Dense(8, activation="tanh", name="first"),
            layers.Dense(8, activation="tanh", name="second"),
            layers.Dense(_models.OUTPUTS, name="out"),
        ]
    )
    dense = model.get_layer("second").kernel.numpy()
    pruned = _models.compile_model(prune_model(model, masks={"second": BLOCKS}))
    return pruned, dense, _models.fit(pruned, steps_per_epoch=16, epochs=2)


def test_given_masks_hold_through_a_tf_keras_fit(trained_blocks):
    """One wrapper, its mask the given one at every step (the schedule never prunes), the kernel zero
    off the blocks at the end, the blocks trained; the other layers left as they were."""
    pruned, dense, recorder = trained_blocks
    (wrapper,) = pruned_layers(pruned)
    assert wrapper.layer.name == "second" and wrapper.pruning_schedule.get_config()["config"] == {
        "target_sparsity": 0.0,
        "begin_step": 0,
        "end_step": 0,
        "frequency": 100,
    }
    assert recorder.steps == list(range(33))
    for masks in recorder.masks:
        np.testing.assert_array_equal(masks[wrapper.name], BLOCKS)
    kernel = wrapper.layer.kernel.numpy()
    assert not np.any(kernel[~BLOCKS]) and np.all(kernel[BLOCKS] != 0)
    assert not np.allclose(kernel[BLOCKS], dense[BLOCKS])


@pytest.mark.parametrize("fmt", ["model.keras", "model.h5", "savedmodel"])
def test_given_masks_reload_in_every_format_and_hold_on(trained_blocks, tmp_path, fmt):
    pruned, _, _ = trained_blocks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pruned.save(tmp_path / fmt)
    restored = schedules.load_model(tmp_path / fmt)
    (wrapper,) = pruned_layers(restored)
    np.testing.assert_array_equal(wrapper.pruning_vars[0][1].numpy(), BLOCKS)
    before = wrapper.layer.kernel.numpy()
    np.testing.assert_array_equal(before, pruned_layers(pruned)[0].layer.kernel.numpy())
    recorder = _models.fit(restored, steps_per_epoch=4)
    assert recorder.steps == list(range(32, 37))  # resumed at step 33
    np.testing.assert_array_equal(wrapper.pruning_vars[0][1].numpy(), BLOCKS)
    kernel = wrapper.layer.kernel.numpy()
    assert not np.any(kernel[~BLOCKS]) and np.all(kernel[BLOCKS] != 0) and not np.array_equal(kernel, before)


def test_prune_model_under_mirrored_strategy(tmp_path):
    """Also: the recorder's TensorBoard logs under the strategy, one writer, the final overall sparsity."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _models.build_model()
        pruned = _models.compile_model(
            prune_model(model, CubicSparsity(0.0, 0.9, 0, 20, frequency=10), allocation="erdos_renyi")
        )
    allocation = allocate(model, 0.9, "erdos_renyi")
    _models.fit(pruned, steps_per_epoch=25, callbacks=(schedules.PruningRecorder(log_dir=tmp_path),))
    report = sparsity_report(pruned)
    assert {row.name: row.kept for row in report.layers} == allocation.kept
    (events,) = tmp_path.rglob("events.out.tfevents.*")
    overall = [
        (event.step, float(tf.make_ndarray(value.tensor)))
        for event in tf.compat.v1.train.summary_iterator(str(events))
        for value in event.summary.value
        if value.tag == "overall/achieved"
    ]
    assert [step for step, _ in overall] == [1, 10, 20]
    assert overall[-1][1] == pytest.approx(report.sparsity, abs=1e-6)


# --- sensitivity -------------------------------------------------------------------------------


def test_sensitivity_sweep_measures_each_layer_alone_and_meets_the_target(mlp):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 64)).astype(np.float32)
    y = np.argmax(mlp.predict(x, verbose=0), axis=1)  # the model's own answers: baseline accuracy 1
    before = [w.copy() for w in mlp.get_weights()]
    allocation = allocate(mlp, 0.9, "sensitivity", x=x, y=y, sparsities=(0.5, 0.9, 0.99), verbose=0)
    sweep = allocation.sweep
    assert all(np.array_equal(a, b) for a, b in zip(mlp.get_weights(), before, strict=True)), "weights restored"
    assert sweep.baseline == 1.0 and list(sweep.scores) == ["fc1", "fc2", "out"]
    # One measurement, recomputed here: fc2 alone pruned to 0.9 by magnitude.
    layer = _layer(mlp, "fc2")
    kernel = layer.kernel.numpy()
    keep = max(1, round(kernel.size * 0.1))
    threshold = np.sort(np.abs(kernel).ravel())[::-1][keep - 1]
    layer.kernel.assign(np.where(np.abs(kernel) >= threshold, kernel, 0.0))
    try:
        expected = float(np.mean(np.argmax(mlp.predict(x, verbose=0), axis=1) == y))
    finally:
        layer.kernel.assign(kernel)
    assert sweep.scores["fc2"][1] == pytest.approx(expected)
    assert sum(allocation.kept.values()) == round(sum(allocation.weights.values()) * 0.1)
    assert str(sweep).splitlines()[1].split() == ["layer", "0.5", "0.9", "0.99"]
    with pytest.raises(ValueError, match=r"Argument `sparsities` must be a sweep reaching the target: .*\(0\.5\)"):
        allocate(mlp, 0.9, "sensitivity", x=x, y=y, sparsities=(0.5,), verbose=0)
    with pytest.raises(TypeError, match=r"Argument `metric` must be a tf_keras.metrics.Metric or a callable"):
        allocate(mlp, 0.9, "sensitivity", x=x, y=y, metric="accuracy")
    with pytest.raises(ValueError, match=r"Argument `metric` must be a metric that gives a finite number"):
        allocate(mlp, 0.9, "sensitivity", x=x, y=y, metric=lambda *_: float("nan"), verbose=0)


# --- pictures and the command line -------------------------------------------------------------


def test_plots_draw_the_allocation_the_report_and_the_sweep(trained_erk):
    from matplotlib.figure import Figure

    pruned, allocation = trained_erk
    report = sparsity_report(pruned)
    ax = Figure().add_subplot()
    assert schedules.plot_allocation(allocation, report, ax=ax) is ax
    allocated, achieved = ax.containers
    assert [bar.get_height() for bar in allocated] == list(allocation.values())
    assert [bar.get_height() for bar in achieved] == [row.sparsity for row in report.layers]
    sweep = SensitivitySweep((0.5, 0.9), 0.75, {"conv": (0.7, 0.2), "head": (0.74, 0.6)})
    ax = Figure().add_subplot()
    assert schedules.plot_sensitivity(sweep, ax=ax) is ax
    assert [tuple(line.get_ydata()) for line in ax.lines[:2]] == [(0.7, 0.2), (0.74, 0.6)]
    np.testing.assert_allclose(sweep.damage("conv"), [0.05, 0.55])


def test_allocate_command_prints_the_allocation_of_a_saved_model(trained_erk, tmp_path, capsys):
    from schedules.cli import main

    pruned, _ = trained_erk
    path = tmp_path / "pruned.keras"
    pruned.save(path)
    assert main(["allocate", str(path), "--target", "0.9", "--method", "erdos_renyi", "--keep-dense", "head"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "erdos_renyi allocation for an overall sparsity of 0.9"
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert list(rows) == ["conv", "hidden", "head", "overall"] and rows["head"][2] == "0.0000"
    assert rows["overall"][3] == str(round(2404 * 0.1))  # conv 36 + hidden 2304 + head 64 weights
    with pytest.raises(SystemExit):
        main(["allocate", str(tmp_path / "missing.keras")])
    assert "Argument `model` must be a saved model" in capsys.readouterr().err


# --- transformers: attention and feed-forward layers -------------------------------------------

#: The encoder's schedule (CubicSparsity's arguments): events at steps 4, 8, 12 and 16.
ENCODER_RAMP = dict(initial_sparsity=0.0, final_sparsity=0.8, begin_step=4, end_step=16, frequency=4)
ENCODER_SAVED_STEP = 10  # saved between the events at 8 and 12
ENCODER_STEPS = 20


@pytest.fixture(scope="module")
def encoder() -> tf_keras.Model:
    return _models.build_encoder(blocks=2)


def encoder_kernels(model) -> dict[str, list[tuple[int, ...]]]:
    """The shapes of the weights tfmot prunes in each layer of `_models.build_encoder`, read from the layers:
    an attention layer's four projection kernels (its `EinsumDense` sublayers), the others' kernel or
    embeddings."""
    shapes = {}
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.MultiHeadAttention):
            projections = (layer._query_dense, layer._key_dense, layer._value_dense, layer._output_dense)
            shapes[layer.name] = [tuple(p.kernel.shape) for p in projections]
        elif isinstance(layer, tf_keras.layers.Embedding):
            shapes[layer.name] = [tuple(layer.embeddings.shape)]
        elif hasattr(layer, "kernel"):
            shapes[layer.name] = [tuple(layer.kernel.shape)]
    return shapes


def cubic_event(step: int) -> float | None:
    """NumPy reference for the encoder's schedule: the sparsity of the last pruning event at or before
    `step` (None before the first), `final + (initial - final) * (1 - p) ** 3`."""
    r = ENCODER_RAMP
    events = range(r["begin_step"], r["end_step"] + 1, r["frequency"])
    done = [event for event in events if event <= step]
    if not done:
        return None
    p = (done[-1] - r["begin_step"]) / (r["end_step"] - r["begin_step"])
    return r["final_sparsity"] + (r["initial_sparsity"] - r["final_sparsity"]) * (1 - p) ** 3


ENCODER_METHODS = ["uniform", "erk", "lamp", "global_magnitude", "erk_attention_dense"]


def encoder_allocation(encoder, method: str):
    if method == "erk_attention_dense":
        return allocate(encoder, 0.8, "erk", keep_dense=["mha1"])
    return allocate(encoder, 0.8, method)


@pytest.mark.parametrize("method", ENCODER_METHODS)
def test_allocate_counts_attention_kernels_as_tfmot_rounds_them(encoder, method):
    """tfmot prunes an attention layer's four kernels each at the layer's sparsity, rounding each on its
    own: the kept weights `allocate` reports are those, and they meet the target to the weight (an
    attention layer keeps a multiple of 4 here, the embedding takes the difference)."""
    shapes = encoder_kernels(encoder)
    assert list(shapes) == ["embedding", "mha0", "ff0a", "ff0b", "mha1", "ff1a", "ff1b", "head"]
    assert shapes["mha0"] == [(16, 2, 8), (16, 2, 8), (16, 2, 8), (2, 8, 16)]
    allocation = encoder_allocation(encoder, method)
    total = sum(math.prod(s) for ss in shapes.values() for s in ss)
    kept = {name: sum(_models.expected_kept(allocation[name], math.prod(s)) for s in ss) for name, ss in shapes.items()}
    assert allocation.kept == kept
    if method == "uniform":
        assert set(allocation.values()) == {0.8}
    else:
        assert sum(kept.values()) == round(total * 0.2)
        assert kept["mha0"] % 4 == 0 and kept["mha1"] % 4 == 0
    if method == "erk":
        # Within the rounding: each attention layer moves up to 2 weights to the others (the embedding).
        expected = rigl_sparsities(shapes, 0.8, include_kernel=True)
        assert expected["head"] == 0.0 and allocation["head"] == 0.0
        for name, ss in shapes.items():
            assert abs(allocation[name] - expected[name]) <= 5 / sum(map(math.prod, ss)), name


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.integers(1, 5000), min_size=2, max_size=5), share=st.floats(0.0, 1.0))
def test_a_several_weight_layer_gets_the_reachable_counts_around_its_share(parts, share):
    """For any kernel sizes and asked count k: the counts offered are the nearest tfmot can keep at or
    below and at or above k, and each offered sparsity makes tfmot keep exactly that count."""
    from schedules.allocation_counts import reachable_counts

    k = len(parts) + round(share * (sum(parts) - len(parts)))
    options = reachable_counts(parts, k)
    assert options
    for count, density in options:
        assert sum(_models.expected_kept(1.0 - density, n) for n in parts) == count
    counts = [count for count, _ in options]
    assert min(counts) <= k <= max(counts) or counts == [k]
    # Nothing reachable strictly between them: a fine scan of the densities (off the half-integers).
    grid = (np.arange(100_000) + 0.318) / 100_000
    reachable = np.maximum(1, np.round(np.outer(grid, parts))).sum(axis=1)
    assert not np.any((reachable > min(counts)) & (reachable < max(counts)))


@pytest.mark.parametrize("method", ENCODER_METHODS)
def test_prune_model_prunes_attention_projections_and_feed_forward_layers(encoder, method):
    """Each layer with a share is wrapped, pruning what tfmot's registry names (an attention layer's
    four projection kernels) at its share; the copy predicts what the model does."""
    shapes = encoder_kernels(encoder)
    allocation = encoder_allocation(encoder, method)
    pruned = prune_model(encoder, CubicSparsity(**ENCODER_RAMP), allocation=allocation)
    wrappers = {layer.layer.name: layer for layer in pruned_layers(pruned)}
    assert sorted(wrappers) == sorted(name for name, s in allocation.items() if s > 0)
    for name, wrapper in wrappers.items():
        assert [tuple(w.shape) for w, _, _ in wrapper.pruning_vars] == shapes[name]
        assert float(wrapper.pruning_schedule(ENCODER_RAMP["end_step"])[1]) == pytest.approx(allocation[name], abs=1e-6)
    attention = wrappers["mha0"].layer
    assert [w for w, _, _ in wrappers["mha0"].pruning_vars] == [
        attention._query_dense.kernel,
        attention._key_dense.kernel,
        attention._value_dense.kernel,
        attention._output_dense.kernel,
    ]
    x, _ = _models.make_tokens(4)
    np.testing.assert_allclose(pruned(x).numpy(), encoder(x).numpy(), rtol=1e-5, atol=1e-6)


class MaskCounts(tf_keras.callbacks.Callback):
    """After every batch: the wrappers' step and each pruned weight's kept count, by layer name."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []
        self.kept: list[dict[str, list[int]]] = []

    def on_train_batch_end(self, batch, logs=None):
        wrappers = pruned_layers(self.model)
        (step,) = {int(layer.pruning_step.numpy()) for layer in wrappers}
        self.steps.append(step)
        self.kept.append(
            {layer.layer.name: [int(m.numpy().sum()) for _, m, _ in layer.pruning_vars] for layer in wrappers}
        )


@pytest.fixture(scope="module")
def trained_encoder(tmp_path_factory):
    """A one-block encoder pruned by `prune_model` (ERK at 0.8 overall; momentum SGD, whose state must
    come back), trained `ENCODER_SAVED_STEP` steps, saved as `.keras` and SavedModel, then trained on
    to `ENCODER_STEPS` (events at 12 and 16 after the save)."""
    directory = tmp_path_factory.mktemp("encoder")
    model = _models.build_encoder(blocks=1)
    allocation = allocate(model, 0.8, "erk")
    pruned = prune_model(model, CubicSparsity(**ENCODER_RAMP), allocation=allocation)
    pruned.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.05, momentum=0.9), loss="mse")
    x, y = _models.make_tokens(ENCODER_STEPS * _models.BATCH_SIZE)
    split = ENCODER_SAVED_STEP * _models.BATCH_SIZE
    counts = MaskCounts()
    pruned.fit(
        x[:split],
        y[:split],
        batch_size=_models.BATCH_SIZE,
        shuffle=False,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), counts],
    )
    saved_predictions = pruned(x[:32], training=False).numpy()
    pruned.save(directory / "model.keras")
    pruned.save(directory / "savedmodel", save_format="tf")
    pruned.fit(
        x[split:],
        y[split:],
        batch_size=_models.BATCH_SIZE,
        shuffle=False,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), counts],
    )
    return SimpleNamespace(
        model=model,
        pruned=pruned,
        allocation=allocation,
        counts=counts,
        x=x,
        y=y,
        split=split,
        directory=directory,
        saved_predictions=saved_predictions,
    )


def test_a_pruned_encoder_follows_its_schedule_weight_by_weight(trained_encoder):
    """After every batch, each pruned weight's mask keeps tfmot's k = max(1, round(n (1 - s))) of its
    own n weights at its layer's share s of the last event; at the end the zeros in the weights meet
    the overall target to the weight."""
    run = trained_encoder
    assert run.counts.steps == list(range(1, ENCODER_STEPS + 1))
    shapes = encoder_kernels(run.model)
    share = {name: s / ENCODER_RAMP["final_sparsity"] for name, s in run.allocation.items()}
    for step, kept in zip(run.counts.steps, run.counts.kept, strict=True):
        sparsity = cubic_event(step)
        for name, counts in kept.items():
            sizes = [math.prod(s) for s in shapes[name]]
            if sparsity is None:
                assert counts == sizes, (step, name)
            else:
                assert counts == [_models.expected_kept(sparsity * share[name], n) for n in sizes], (step, name)
    assert set(run.counts.kept[-1]) == {"embedding", "mha0", "ff0a", "ff0b"}  # the head stays dense (ERK)
    report = sparsity_report(run.pruned)
    assert {row.name: row.kept for row in report.layers} == run.allocation.kept
    assert report.weights - report.zeros == round(report.weights * 0.2) == 1261


@pytest.mark.parametrize("fmt", ["model.keras", "savedmodel"])
def test_a_pruned_encoder_reloads_and_resumes_bit_for_bit(trained_encoder, fmt):
    """`schedules.load_model` gives the saved predictions, step and schedules; trained on from there, it
    ends with the same weights, bit for bit, as the run that never stopped."""
    run = trained_encoder
    restored = schedules.load_model(run.directory / fmt)
    np.testing.assert_array_equal(restored(run.x[:32], training=False).numpy(), run.saved_predictions)
    wrappers = pruned_layers(restored)
    assert {int(layer.pruning_step.numpy()) for layer in wrappers} == {ENCODER_SAVED_STEP}
    assert [len(layer.pruning_vars) for layer in wrappers] == [1, 4, 1, 1]
    assert [layer.pruning_schedule.get_config() for layer in wrappers] == [
        layer.pruning_schedule.get_config() for layer in pruned_layers(run.pruned)
    ]
    restored.fit(
        run.x[run.split :],
        run.y[run.split :],
        batch_size=_models.BATCH_SIZE,
        shuffle=False,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    assert {int(layer.pruning_step.numpy()) for layer in wrappers} == {ENCODER_STEPS}
    weights, expected = restored.get_weights(), run.pruned.get_weights()
    assert len(weights) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(weights, expected, strict=True))


def test_a_pruned_encoder_cannot_be_saved_as_h5(trained_encoder, tmp_path):
    """A documented limit: tfmot names an attention layer's four masks alike
    (`prune_low_magnitude_mha0/mask:0`) and `.h5` stores a layer's weights by name."""
    names = [mask.name for _, mask, _ in pruned_layers(trained_encoder.pruned)[1].pruning_vars]
    assert names == ["prune_low_magnitude_mha0/mask:0"] * 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="name already exists"):
            trained_encoder.pruned.save(tmp_path / "model.h5")


def test_a_pruned_rnn_cannot_be_saved_as_h5_either(tmp_path):
    """The same limit for a recurrent layer: its kernel's and recurrent kernel's masks share a name."""
    inputs = tf_keras.Input((4, 3))
    model = tf_keras.Model(inputs, tf_keras.layers.LSTM(2, name="lstm")(inputs))
    pruned = prune_model(model, CubicSparsity(0.0, 0.5, 0, 10))
    assert [mask.name for _, mask, _ in pruned.layers[1].pruning_vars] == ["prune_low_magnitude_lstm/mask:0"] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="name already exists"):
            pruned.save(tmp_path / "model.h5")


def test_a_pruned_encoder_strips_and_reports(trained_encoder, tmp_path):
    """`strip_pruning` gives plain layers holding the zeros, which save as `.h5` too (no masks left)."""
    run = trained_encoder
    stripped = tfmot.sparsity.keras.strip_pruning(run.pruned)
    assert [type(layer).__name__ for layer in stripped.layers if layer.weights] == [
        "Embedding",
        "MultiHeadAttention",
        "LayerNormalization",
        "Dense",
        "Dense",
        "LayerNormalization",
        "Dense",
    ]
    shapes = encoder_kernels(stripped)
    attention = stripped.get_layer("mha0")
    kernels = [
        p.kernel.numpy()
        for p in (attention._query_dense, attention._key_dense, attention._value_dense, attention._output_dense)
    ]
    assert [k.shape for k in kernels] == shapes["mha0"]
    assert sum(int(np.sum(k != 0)) for k in kernels) == run.allocation.kept["mha0"]
    rows = [(row.name, row.weights, row.zeros) for row in sparsity_report(run.pruned).layers]
    assert [(row.name, row.weights, row.zeros) for row in sparsity_report(stripped).layers] == rows
    report = schedules.compression_report(run.pruned, dense=run.model)
    assert report.sparsity.zeros == sparsity_report(run.pruned).zeros and report.dense_sparsity.zeros == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # .h5 is legacy: it is the point here
        stripped.save(tmp_path / "stripped.h5")
    again = tf_keras.models.load_model(tmp_path / "stripped.h5")
    np.testing.assert_array_equal(again.predict(run.x[:8], verbose=0), stripped.predict(run.x[:8], verbose=0))
