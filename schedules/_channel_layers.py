"""What each Keras layer does to the channels that reach it: the tables `channel_groups` walks by.

Layers are known by class name, from Keras 3 (`keras.layers`) or tf-keras, never
a subclass of your own (its `call` may do anything): producers make channels,
carriers pass them on one by one, merges line up their inputs' channels.
`refusal` says why a layer is not followed (its input channels are then left
whole); `at_zero` whether an activation keeps a zeroed channel zero.

>>> import keras
>>> at_zero(keras.layers.Dense(3, activation="sigmoid")), at_zero(keras.layers.ReLU())
(('sigmoid', False), ('relu', True))
"""

from __future__ import annotations

import keras
import tf_keras

__all__ = [
    "ACTIVATIONS", "CARRIERS", "DEPTHWISE", "FLAT_OK", "MERGES", "NONZERO_AT_ZERO", "PASSING", "PRODUCERS",
    "ZERO_AT_ZERO", "at_zero", "refusal",
]  # fmt: skip

PRODUCERS = frozenset({"Conv1D", "Conv2D", "Conv3D", "Dense"})
DEPTHWISE = frozenset({"DepthwiseConv1D", "DepthwiseConv2D"})
MERGES = frozenset({"Add", "Subtract", "Average", "Maximum", "Minimum", "Multiply"})
#: Element-wise activations with f(0) == 0: a zeroed channel stays zero.
ZERO_AT_ZERO = frozenset(
    {"linear", "relu", "relu6", "swish", "silu", "gelu", "tanh", "elu", "selu", "leaky_relu", "softsign", "mish"}
    | {"hard_swish", "hard_silu", "celu"}
)
#: Element-wise activations with f(0) != 0: a zeroed channel becomes f(0).
NONZERO_AT_ZERO = frozenset({"sigmoid", "hard_sigmoid", "softplus", "exponential", "log_sigmoid"})
_POOLS = [f"{kind}Pooling{d}D" for kind in ("Max", "Average", "GlobalMax", "GlobalAverage") for d in (1, 2, 3)]
_SHAPES = [f"{kind}{d}D" for kind in ("ZeroPadding", "Cropping", "UpSampling", "SpatialDropout") for d in (1, 2, 3)]
#: Weightless layers that pass each channel on unchanged in place (a zero stays zero).
PASSING = frozenset({*_POOLS, *_SHAPES, "Dropout", "GaussianDropout", "ActivityRegularization", "Identity"})
#: Activation layers (`at_zero` says which keep a zero).
ACTIVATIONS = frozenset({"Activation", "ReLU", "LeakyReLU", "ELU"})
#: What a flattened tensor (spatial positions times channels) may pass through on its way to a Dense.
FLAT_OK = ACTIVATIONS | {"Flatten", "Dropout", "GaussianDropout", "ActivityRegularization", "Identity"}
#: Every single-input layer the walk follows but the producers.
CARRIERS = PASSING | DEPTHWISE | FLAT_OK | {"BatchNormalization", "Reshape"}


def at_zero(layer) -> tuple[str, bool | None]:
    """`(activation, f(0) == 0)` of a layer's activation; None when it is not known to act element-wise."""
    kind, config = type(layer).__name__, layer.get_config()
    if kind == "ReLU":
        return "relu", (config.get("threshold") or 0) <= 0 or not config.get("negative_slope")
    if kind in ("LeakyReLU", "ELU"):
        return kind, True
    name = config.get("activation", "linear")
    if not isinstance(name, str):
        return "a custom function", None
    return name, True if name in ZERO_AT_ZERO else False if name in NONZERO_AT_ZERO else None


def refusal(layer, kind: str, inputs: list, calls: int) -> str:
    """Why the walk does not follow channels through this node ("" when it does)."""
    if not inputs:
        return "an input"
    known = kind in PRODUCERS | MERGES | CARRIERS or kind == "Concatenate"
    # A Keras layer, not an op of the same class name (Keras 3's `keras.ops.add` is a node of class `Add`).
    layer_classes = (keras.layers.Layer, tf_keras.layers.Layer)
    if (
        not known
        or not isinstance(layer, layer_classes)
        or not type(layer).__module__.startswith(("keras.", "tf_keras."))
    ):
        return f"{kind} is not followed"
    if calls > 1:
        return f"a shared layer (called {calls} times)"
    config = layer.get_config()
    rank = len(inputs[0].shape)
    if config.get("data_format", "channels_last") not in ("channels_last", None):
        return f"{config['data_format']} data"
    if kind in PRODUCERS | DEPTHWISE and (
        config.get("groups", 1) != 1 or config.get("depth_multiplier", 1) != 1 or getattr(layer, "lora_enabled", False)
    ):
        return "grouped, multiplied or LoRA kernel"
    if kind in PRODUCERS and getattr(getattr(layer, "dtype_policy", None), "quantization_mode", None):
        return "a quantized kernel"
    if kind in ("BatchNormalization", "Concatenate"):
        axes = list(config["axis"]) if isinstance(config["axis"], (list, tuple)) else [config["axis"]]
        if len(axes) != 1 or axes[0] not in (-1, rank - 1):
            return "not over the last axis"
        if kind == "BatchNormalization" and not config["scale"]:
            return "no scale (gamma) to zero"
    if kind == "Reshape" and (inputs[0].shape[-1] is None or tuple(config["target_shape"])[-1] != inputs[0].shape[-1]):
        return "a Reshape that moves the channels"
    if kind == "Flatten" and any(d is None for d in inputs[0].shape[1:]):
        return "a Flatten of unknown size"
    return ""
