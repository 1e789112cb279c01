"""Channel groups and shrinking (`schedules.channels`), on real models in tf-keras and Keras 3.

Models: the digits CNN (Sequential, `schedules.models.build_cnn`), `branches` (functional, below: two
Concatenates, a Flatten -> Dense, a sigmoid-gated Multiply), the zoo's ResNet, MobileNetV2 and
EfficientNetB0. Each (model, Keras) pair is built once (a module-scoped fixture) with random biases and
BatchNormalization statistics (so that a wrong slice shows), shrunk with random keep masks (about half
of each group kept, never none), then zeroed in place with the same masks; the tests compare the two in
inference mode. The expected groups are written out here by hand from the architectures; the parameter
count of the shrunk model is computed here from the layers' shapes and the kept counts. TFLite only on
the small models (`TFLITE`: MobileNetV2's conversion alone takes 10 to 50 s).
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import _zoo
import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from schedules.channels import channel_groups, channel_variables, shrink, zero_channels
from schedules.models import build_cnn

KERAS = {"tf_keras": tf_keras, "keras": keras}
TOLERANCE = 1e-4


def branches(module):
    """Conv `a` (relu) and conv `b` -> BN concatenated, pooled, conv `c` (tanh) on both, concatenated again,
    flattened into Dense `hidden`, gated by a sigmoid Dense `gate` of it (Multiply), Dense `logits`."""
    layers = module.layers
    inputs = module.Input((8, 8, 3))
    a = layers.Conv2D(6, 3, padding="same", activation="relu", name="a")(inputs)
    b = layers.BatchNormalization(name="b_bn")(layers.Conv2D(4, 1, activation="gelu", name="b")(inputs))
    x = layers.MaxPooling2D(2, name="pool")(layers.Concatenate(name="cat")([a, b]))
    c = layers.Conv2D(5, 3, padding="same", activation="tanh", name="c")(x)
    x = layers.Flatten(name="flat")(layers.Concatenate(name="cat2")([x, c]))
    hidden = layers.Dense(8, activation="relu", name="hidden")(x)
    gated = layers.Multiply(name="gated")([hidden, layers.Dense(8, activation="sigmoid", name="gate")(hidden)])
    return module.Model(inputs, layers.Dense(3, name="logits")(gated), name="branches")


#: name -> (builder, input shape)
MODELS = {
    "cnn": (build_cnn, (8, 8, 1)),
    "branches": (branches, (8, 8, 3)),
    "resnet": (_zoo.resnet, _zoo.SMALL_IMAGE),
    "mobilenet_v2": (_zoo.mobilenet_v2, _zoo.IMAGE),
    "efficientnet_b0": (_zoo.efficientnet_b0, _zoo.IMAGE),
}
CASES = [(model, name) for model in MODELS for name in KERAS]
#: Converted to TFLite (1 to 4 s each; MobileNetV2 alone takes 10 to 50 s): Sequential, functional with
#: concatenations and a gate, and residuals with BatchNormalization (Keras 3's SavedModel route).
TFLITE = [("cnn", "tf_keras"), ("cnn", "keras"), ("branches", "tf_keras"), ("branches", "keras"), ("resnet", "keras")]
#: Saved and reloaded: all but the applications' twins (3 to 10 s each; each application is saved once).
SAVED = [case for case in CASES if case not in (("efficientnet_b0", "tf_keras"), ("mobilenet_v2", "keras"))]


def randomize(model, rng) -> None:
    """Random biases and BatchNormalization weights and statistics (gamma and variance in [0.5, 1.5])."""
    for layer in model.layers:
        kind, weights = type(layer).__name__, layer.get_weights()
        if kind == "BatchNormalization":
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if i in (0, 3) else rng.normal(0, 0.5, w.shape)
                               for i, w in enumerate(weights)])  # fmt: skip
        elif kind in ("Conv2D", "Dense", "DepthwiseConv2D"):
            layer.set_weights([rng.normal(0, 0.3, w.shape) if w.ndim == 1 else w for w in weights])


def expected_parameters(model, analysis, keep) -> int:
    """The shrunk model's parameter count: each layer's weights' shapes with the kept counts put in."""
    kept, rows_gone = {}, {}
    for group in analysis.groups:
        count = int(keep[group.name].sum())
        kept.update(dict.fromkeys(group.producers + group.carriers, count))
        for name, _, repeat in group.consumers:
            rows_gone[name] = rows_gone.get(name, 0) + repeat * (group.size - count)
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "Dense"):
            *window, rows, channels = layer.kernel.shape
            out = kept.get(layer.name, channels)
            total += math.prod(window) * (rows - rows_gone.get(layer.name, 0)) * out + out * layer.use_bias
        elif kind == "DepthwiseConv2D":
            channels = kept.get(layer.name, layer.weights[0].shape[2])
            total += math.prod(layer.weights[0].shape[:2]) * channels + channels * layer.use_bias
        elif kind == "BatchNormalization":
            total += len(layer.weights) * kept.get(layer.name, layer.weights[0].shape[0])
        else:
            total += layer.count_params()
    return total


@pytest.fixture(scope="module", params=CASES, ids=lambda case: "-".join(case))
def case(request):
    """A model (zeroed in place at the end), its analysis, keep masks, its shrunk form and their predictions."""
    name, keras_name = request.param
    build, shape = MODELS[name]
    module = KERAS[keras_name]
    module.utils.set_random_seed(0)
    model = build(module)
    rng = np.random.default_rng(0)
    randomize(model, rng)
    analysis = channel_groups(model)
    keep = {}
    for group in analysis.groups:
        mask = rng.random(group.size) < 0.5
        mask[rng.integers(group.size)] = True
        keep[group.name] = mask
    inputs = rng.normal(size=(4, *shape)).astype(np.float32)
    dense = np.asarray(model(inputs, training=False))
    expected = expected_parameters(model, analysis, keep)
    small = shrink(model, keep)
    untouched = np.asarray(model(inputs, training=False))
    zero_channels(model, keep)
    return SimpleNamespace(
        key=request.param, name=name, module=module, model=model, analysis=analysis, keep=keep, inputs=inputs,
        dense=dense, untouched=untouched, zeroed=np.asarray(model(inputs, training=False)), small=small,
        expected_parameters=expected,
    )  # fmt: skip


def test_the_shrunk_model_predicts_what_the_zeroed_model_predicts(case):
    shrunk = np.asarray(case.small(case.inputs, training=False))
    assert np.abs(shrunk - case.zeroed).max() <= TOLERANCE
    assert np.abs(case.dense - case.zeroed).max() > 100 * TOLERANCE  # the masks did change the model
    np.testing.assert_array_equal(case.untouched, case.dense)  # shrink left the model as it was


def test_the_shrunk_model_has_the_parameters_of_the_kept_channels(case):
    assert case.small.count_params() == case.expected_parameters < case.model.count_params()
    assert type(case.small) is type(case.model) and isinstance(case.small, case.module.Model)
    for group in case.analysis.groups:
        for name in group.producers:
            assert case.small.get_layer(name).weights[0].shape[-1] == case.keep[group.name].sum()


def test_zeroing_sets_exactly_the_dropped_channels_of_the_group_variables(case):
    backend = tf.Variable if case.module is tf_keras else keras.Variable
    for group in case.analysis.groups:
        for variable, axis in channel_variables(case.model, group):
            assert isinstance(variable, backend) and variable.shape[axis] == group.size
            values = np.moveaxis(np.asarray(variable), axis, 0)
            assert not values[~case.keep[group.name]].any()
            assert values[case.keep[group.name]].any()


def test_the_shrunk_model_saves_and_reloads(case, tmp_path):
    if case.key not in SAVED:
        pytest.skip("3 to 10 s: the application is saved in the other Keras")
    path = tmp_path / "small.keras"
    case.small.save(path)
    restored = case.module.models.load_model(path)
    expected = case.small(case.inputs, training=False)
    np.testing.assert_allclose(restored(case.inputs, training=False), expected, atol=1e-6)


def test_the_shrunk_model_converts_to_tflite(case, tmp_path):
    if case.key not in TFLITE:
        pytest.skip("1 to 50 s a model: TFLITE only")
    small = case.small
    if case.module is keras:
        small.export(str(tmp_path / "exported"), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "exported"))
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(small)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    inputs = np.random.default_rng(1).normal(size=(1, *MODELS[case.name][1])).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], inputs)
    interpreter.invoke()
    found = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(found, small(inputs, training=False), atol=TOLERANCE)


# --- the groups ----------------------------------------------------------------------------------------

#: The groups written out from the architectures: name -> (size, producers, carriers, consumers).
GROUPS = {
    "cnn": {
        "conv1": (16, ("conv1",), (), (("conv2", 0, 1),)),
        "conv2": (32, ("conv2",), ("pool", "flatten"), (("dense", 0, 9),)),  # 8x8 -> 6x6 -> pooled 3x3
        "dense": (64, ("dense",), (), (("logits", 0, 1),)),
    },
    "branches": {
        "a": (6, ("a",), ("cat", "pool", "cat2", "flat"), (("c", 0, 1), ("hidden", 0, 16))),
        "b": (4, ("b",), ("b_bn", "cat", "pool", "cat2", "flat"), (("c", 6, 1), ("hidden", 6, 16))),
        "c": (5, ("c",), ("cat2", "flat"), (("hidden", 10, 16),)),
        "hidden": (8, ("hidden", "gate"), ("gated",), (("gate", 0, 1), ("logits", 0, 1))),
    },
    "resnet": {
        "stem_conv": (8, ("stem_conv", "b1b_conv"), ("stem_bn", "stem_relu", "b1b_bn", "b1_add", "b1_out"),
                      (("b1a_conv", 0, 1), ("b2a_conv", 0, 1), ("b2s_conv", 0, 1))),
        "b1a_conv": (8, ("b1a_conv",), ("b1a_bn", "b1a_relu"), (("b1b_conv", 0, 1),)),
        "b2a_conv": (16, ("b2a_conv",), ("b2a_bn", "b2a_relu"), (("b2b_conv", 0, 1),)),
        "b2s_conv": (16, ("b2s_conv", "b2b_conv"), ("b2s_bn", "b2b_bn", "b2_add", "b2_out", "pool"), (("head", 0, 1),)),
    },
}  # fmt: skip
#: The applications: number of groups, and what is left whole.
COUNTS = {"mobilenet_v2": 25, "efficientnet_b0": 40}
WHOLE = {
    "mobilenet_v2": {"predictions": "a model output"},
    "efficientnet_b0": {"normalization": "Normalization is not followed", "predictions": "a model output"},
}


def conv_before(tensor) -> str:
    """The convolution or Dense layer a tensor comes from (through an Add, from its first input)."""
    layer = tensor._keras_history[0]
    while type(layer).__name__ not in ("Conv2D", "Dense"):
        tensor = layer.input[0] if isinstance(layer.input, list) else layer.input
        layer = tensor._keras_history[0]
    return layer.name


def test_the_groups_are_the_architecture_s(case):
    groups = {group.name: group for group in case.analysis.groups}
    if case.name in GROUPS:
        assert {name: (g.size, g.producers, g.carriers, g.consumers) for name, g in groups.items()} == GROUPS[case.name]
        assert case.analysis.whole == {case.model.layers[-1].name: "a model output"}
    else:
        assert len(groups) == COUNTS[case.name] and case.analysis.whole == WHOLE[case.name]
    producers = [name for group in groups.values() for name in group.producers]
    layers = [layer.name for layer in case.model.layers if type(layer).__name__ in ("Conv2D", "Dense")]
    assert sorted(producers + [name for name in case.analysis.whole if name in layers]) == sorted(layers)


def test_residual_squeeze_excitation_and_depthwise_layers_share_their_producers_group(case):
    """Read from the graph here: the convolutions feeding one Add or Multiply, a depthwise convolution's."""
    group_of = {name: group.name for group in case.analysis.groups for name in group.producers + group.carriers}
    seen = 0
    for layer in case.model.layers:
        kind = type(layer).__name__
        if kind in ("Add", "Multiply"):
            assert len({group_of[conv_before(tensor)] for tensor in layer.input}) == 1, layer.name
        elif kind == "DepthwiseConv2D":
            assert group_of[layer.name] == group_of[conv_before(layer.input)], layer.name
        seen += kind in ("Add", "Multiply", "DepthwiseConv2D")
    assert seen == {"cnn": 0, "branches": 1, "resnet": 2, "mobilenet_v2": 27, "efficientnet_b0": 41}[case.name]


def unfollowed(module):
    """Dense `d1` feeding five branches that keep their channels whole, concatenated into the head."""
    layers = module.layers
    inputs = module.Input((6,))
    x = layers.Dense(8, activation="relu", name="d1")(inputs)
    shared = layers.Dense(8, name="shared")
    branches = [
        layers.Dense(8, activation="sigmoid", name="sig")(x),
        layers.Dense(8, activation="softmax", name="soft")(x),
        layers.LayerNormalization(name="ln")(layers.Dense(8, name="d3")(x)),
        shared(shared(layers.Dense(8, name="d4")(x))),
        layers.Lambda(lambda t: 2 * t, name="lam")(layers.Dense(8, name="d5")(x)),
    ]
    return module.Model(inputs, layers.Dense(2, name="head")(layers.Concatenate(name="cat")(branches)))


@pytest.mark.parametrize("module", KERAS.values(), ids=KERAS)
def test_what_the_analysis_does_not_follow_is_left_whole_with_the_reason(module):
    analysis = channel_groups(unfollowed(module))
    (group,) = analysis.groups
    assert group.name == "d1" and sorted(name for name, _, _ in group.consumers) == ["d3", "d4", "d5", "sig", "soft"]
    assert analysis.whole == {
        "sig": "sigmoid (f(0) != 0) at 'sig' reaches 'head'",
        "soft": "activation 'softmax' at 'soft'",
        "d3": "feeds 'ln': LayerNormalization is not followed",
        "ln": "LayerNormalization is not followed",
        "shared": "a shared layer (called 2 times)",
        "d4": "feeds 'shared': a shared layer (called 2 times)",
        "d5": "feeds 'lam': Lambda is not followed",
        "head": "a model output",
    }


# --- bad input -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    return keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, activation="relu", name="hidden"), keras.layers.Dense(2, name="head")]
    )


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ({"hidden": np.ones(3, bool)}, r"group 'hidden' to 4 booleans.*shape \(3,\)"),
        ({"hidden": np.zeros(4, bool)}, r"group 'hidden' to 4 booleans, at least one True.*0 nonzero"),
        ({"hidden": np.ones(4, int)}, r"group 'hidden' to 4 booleans.*dtype int64"),
        ({"head": np.ones(2, bool)}, r"Received: 'head' \(left whole: a model output\)"),
        ({"nope": np.ones(4, bool)}, r"Received: 'nope' \(no such group\)"),
    ],
)
@pytest.mark.parametrize("function", [shrink, zero_channels])
def test_a_bad_keep_mask_is_a_one_line_error_naming_the_group(tiny, keep, message, function):
    with pytest.raises(ValueError, match=message) as raised:
        function(tiny, keep)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("module", KERAS.values(), ids=KERAS)
@pytest.mark.parametrize("function", [channel_groups, lambda model: shrink(model, {})])
def test_a_subclassed_model_is_a_one_line_type_error(module, function):
    with pytest.raises(TypeError, match=r"""Sequential or functional .* Received: model="Subclassed 'subclassed'"$"""):
        function(_zoo.subclassed(module))
