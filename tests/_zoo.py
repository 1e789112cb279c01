"""The model zoo of `test_zoo.py`: real architectures, built for tf-keras (tfmot's path) or Keras 3.

Every builder takes the Keras module to build with (`tf_keras` or `keras`) and returns a built model
whose last layer is a softmax over `CLASSES` classes. The applications are built with `weights=None`
(nothing is downloaded) at small inputs; the others are hand-built and small. `kernels` reads the
weights magnitude pruning prunes in each layer from a table written here from tfmot's registry
(`prune_registry.py`), not from the package.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from types import ModuleType

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tf_keras

CLASSES = 4
IMAGE = (32, 32, 3)
SMALL_IMAGE = (16, 16, 3)
VOCAB, SEQUENCE, WIDTH = 64, 8, 16

#: Layer class name -> attribute paths of the weights tfmot prunes (`prune_registry.py`). DepthwiseConv2D,
#: BatchNormalization, LayerNormalization and the biases are not pruned.
PRUNED = {
    "Dense": ("kernel",),
    "Conv1D": ("kernel",),
    "Conv2D": ("kernel",),
    "Embedding": ("embeddings",),
    "GRU": ("cell.kernel", "cell.recurrent_kernel"),
    "LSTM": ("cell.kernel", "cell.recurrent_kernel"),
    "MultiHeadAttention": ("_query_dense.kernel", "_key_dense.kernel", "_value_dense.kernel", "_output_dense.kernel"),
}


def mobilenet_v2(module: ModuleType):
    """MobileNetV2, `alpha=0.35`, 32x32 inputs: 36 prunable layers (the depthwise convolutions are not)."""
    return module.applications.MobileNetV2(input_shape=IMAGE, alpha=0.35, weights=None, classes=CLASSES)


def efficientnet_b0(module: ModuleType):
    """EfficientNetB0, 32x32: tfmot's own `prune_low_magnitude(model)` refuses its `Rescaling` layer."""
    return module.applications.EfficientNetB0(input_shape=IMAGE, weights=None, classes=CLASSES)


def resnet(module: ModuleType):
    """A small ResNet v1: a stem, an identity block and a projection block (stride 2), each
    conv -> BatchNormalization -> ReLU -> conv -> BatchNormalization, added to the shortcut, ReLU."""
    layers = module.layers
    inputs = module.Input(SMALL_IMAGE)

    def conv_bn(x, filters, kernel, stride, name, relu=True):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x) if relu else x

    x = conv_bn(inputs, 8, 3, 1, "stem")
    y = conv_bn(conv_bn(x, 8, 3, 1, "b1a"), 8, 3, 1, "b1b", relu=False)
    x = layers.ReLU(name="b1_out")(layers.Add(name="b1_add")([x, y]))  # identity shortcut
    y = conv_bn(conv_bn(x, 16, 3, 2, "b2a"), 16, 3, 1, "b2b", relu=False)
    shortcut = conv_bn(x, 16, 1, 2, "b2s", relu=False)  # projection shortcut
    x = layers.ReLU(name="b2_out")(layers.Add(name="b2_add")([shortcut, y]))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return module.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="head")(x), name="resnet")


def encoder(module: ModuleType):
    """A transformer encoder block: Embedding, MultiHeadAttention (2 heads), add & LayerNormalization,
    feed-forward Dense(4 * WIDTH, relu) -> Dense(WIDTH), add & LayerNormalization, mean, softmax head."""
    layers = module.layers
    tokens = module.Input((SEQUENCE,), dtype="int32")
    x = layers.Embedding(VOCAB, WIDTH, name="embedding")(tokens)
    attended = layers.MultiHeadAttention(2, WIDTH // 2, name="mha")(x, x)
    x = layers.LayerNormalization(name="ln_a")(layers.Add(name="add_a")([x, attended]))
    hidden = layers.Dense(4 * WIDTH, activation="relu", name="ff_a")(x)
    x = layers.LayerNormalization(name="ln_b")(layers.Add(name="add_b")([x, layers.Dense(WIDTH, name="ff_b")(hidden)]))
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    return module.Model(tokens, layers.Dense(CLASSES, activation="softmax", name="head")(x), name="encoder")


def gru_classifier(module: ModuleType):
    """A text classifier: Embedding -> GRU(12) -> softmax head."""
    layers = module.layers
    tokens = module.Input((SEQUENCE,), dtype="int32")
    x = layers.GRU(12, name="gru")(layers.Embedding(VOCAB, 8, name="embedding")(tokens))
    return module.Model(tokens, layers.Dense(CLASSES, activation="softmax", name="head")(x), name="gru_classifier")


def nested(module: ModuleType):
    """A Sequential holding a functional model (conv -> flatten -> dense) and a softmax head."""
    layers = module.layers
    inputs = module.Input(SMALL_IMAGE)
    x = layers.Conv2D(6, 3, strides=2, activation="relu", name="inner_conv")(inputs)
    x = layers.Dense(16, activation="relu", name="inner_dense")(layers.Flatten(name="inner_flatten")(x))
    inner = module.Model(inputs, x, name="inner")
    return module.Sequential(
        [module.Input(SMALL_IMAGE), inner, layers.Dense(CLASSES, activation="softmax", name="head")], name="nested"
    )


def shared(module: ModuleType):
    """One Dense(24) applied twice (the same kernel in two places of the graph), then a softmax head."""
    layers = module.layers
    inputs = module.Input((24,))
    dense = layers.Dense(24, activation="tanh", name="shared")
    x = layers.Dense(24, activation="tanh", name="first")(inputs)
    x = dense(layers.Add(name="add")([dense(x), x]))
    return module.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="head")(x), name="shared_layers")


def _subclassed_class(module: ModuleType) -> type:
    """A subclassed model (Dense -> Dense), for either Keras; registered for Keras 3's `.keras` files."""

    class Subclassed(module.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = module.layers.Dense(16, activation="relu", name="hidden")
            self.head = module.layers.Dense(CLASSES, activation="softmax", name="head")

        def call(self, inputs):
            return self.head(self.hidden(inputs))

    if module is keras:
        return keras.saving.register_keras_serializable(package="zoo")(Subclassed)
    return Subclassed


SUBCLASSED = {id(module): _subclassed_class(module) for module in (keras, tf_keras)}


def subclassed(module: ModuleType):
    """A subclassed `Model` with two Dense layers, built on (None, 10) inputs."""
    model = SUBCLASSED[id(module)](name="subclassed")
    model(np.zeros((1, 10), np.float32))
    return model


#: name -> (builder, input kind). The input kinds are those of `inputs`.
ZOO: dict[str, tuple[Callable, str]] = {
    "mobilenet_v2": (mobilenet_v2, "image"),
    "resnet": (resnet, "small_image"),
    "efficientnet_b0": (efficientnet_b0, "image"),
    "encoder": (encoder, "tokens"),
    "gru": (gru_classifier, "tokens"),
    "nested": (nested, "small_image"),
    "shared": (shared, "vector24"),
    "subclassed": (subclassed, "vector10"),
}
#: The applications: trained eagerly (`run_eagerly=True`), since tracing their pruned training step costs
#: 20-30 s each for the few steps the tests run; no SavedModel or TFLite (tens of seconds each).
APPLICATIONS = ("mobilenet_v2", "efficientnet_b0")


def build(name: str, module: ModuleType, seed: int = 0):
    module.utils.set_random_seed(seed)
    return ZOO[name][0](module)


def inputs(name: str, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic random inputs for model `name` and class labels."""
    rng = np.random.default_rng(seed)
    kind = ZOO[name][1]
    if kind == "tokens":
        x = rng.integers(0, VOCAB, size=(count, SEQUENCE), dtype=np.int32)
    else:
        shape = {"image": IMAGE, "small_image": SMALL_IMAGE, "vector24": (24,), "vector10": (10,)}[kind]
        x = rng.normal(size=(count, *shape)).astype(np.float32)
    return x, rng.integers(0, CLASSES, size=count)


# --- reading the models, independently of the package --------------------------------------------


def flat_layers(model) -> list:
    """Every layer of `model`, nested models' layers instead of the models, depth first."""
    found = []
    for layer in model.layers:
        found += flat_layers(layer) if hasattr(layer, "layers") and not hasattr(layer, "pruning_vars") else [layer]
    return found


def inner(layer):
    """A tfmot wrapper's layer, or the layer itself."""
    return layer.layer if hasattr(layer, "pruning_vars") else layer


def kernels(model) -> dict[str, list]:
    """The variables magnitude pruning prunes in each layer (`PRUNED`), by layer name, in layer order."""
    found: dict[str, list] = {}
    for layer in map(inner, flat_layers(model)):
        for path in PRUNED.get(type(layer).__name__, ()):
            value = layer
            for part in path.split("."):
                value = getattr(value, part)
            found.setdefault(layer.name, []).append(value)
    return found


def sizes(model) -> dict[str, list[int]]:
    """Each prunable layer's pruned weights' sizes."""
    return {name: [math.prod(v.shape) for v in vs] for name, vs in kernels(model).items()}


def kept(sparsity: float, n: int) -> set[int]:
    """What tfmot's `k = max(1, round(n (1 - s)))` can be for `sparsity` (float64): one count, or the two
    around a half-integer that float32 arithmetic in the schedule may round either way."""
    exact = n * (1.0 - sparsity)
    counts = {round(exact)} if abs(exact - math.floor(exact) - 0.5) > 1e-3 else {math.floor(exact), math.ceil(exact)}
    return {max(1, count) for count in counts}


def magnitude_mask(weights: np.ndarray, k: int) -> np.ndarray:
    """1 where `|w|` is at least the k-th largest magnitude (every weight tied with it kept), else 0."""
    magnitudes = np.abs(weights)
    threshold = np.sort(magnitudes.ravel())[::-1][k - 1]
    return (magnitudes >= threshold).astype(np.float32)
