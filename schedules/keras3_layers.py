"""The weights magnitude pruning prunes in a Keras 3 model: the ones tfmot prunes in the tf-keras twin.

tfmot's registry (`prune_registry.py`) names, for each tf-keras layer class, the
weights `prune_low_magnitude` prunes; `KERNELS` is the same table for the Keras 3
classes of the same name: convolution and dense kernels, embeddings, the
kernels of recurrent cells and of attention's projections. Depthwise kernels
and biases are not pruned, as in tfmot. Beyond tfmot's table: `EinsumDense`
(alone; inside `MultiHeadAttention` it is part of that layer) and, in a
`Bidirectional`, what its two recurrent layers prune.

A layer of your own says what it prunes as tfmot's `PrunableLayer` does: a
`get_prunable_weights()` method returning the variables to prune (the layer's
own or its sublayers'). It comes before the table.
"""

from __future__ import annotations

import keras

from schedules import _validation as v

__all__ = ["KERNELS", "NOTHING_TO_PRUNE", "is_keras3_model", "layer_kernels", "prunable_kernels", "skipped_layers"]

_CONV = ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
_RNN = ("LSTM", "GRU", "SimpleRNN")
#: Keras 3 layer class (by name in `keras.layers`) -> the attribute paths of the weights pruned in it.
KERNELS: dict[str, tuple[str, ...]] = {
    "Dense": ("kernel",),
    **{name: ("kernel",) for name in _CONV},
    "SeparableConv1D": ("pointwise_kernel",),
    "SeparableConv2D": ("pointwise_kernel",),
    "Embedding": ("embeddings",),
    **{name: ("cell.kernel", "cell.recurrent_kernel") for name in _RNN},
    "EinsumDense": ("kernel",),
    "MultiHeadAttention": (
        "_query_dense.kernel",
        "_key_dense.kernel",
        "_value_dense.kernel",
        "_output_dense.kernel",
    ),
}
_CLASSES = tuple((getattr(keras.layers, name), paths) for name, paths in KERNELS.items())
#: Layers with weights that tfmot's table also leaves whole (normalizations, depthwise kernels): not
#: listed by `skipped_layers`.
NOTHING_TO_PRUNE: tuple[str, ...] = (
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "RMSNormalization",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "Normalization",
)
_WHOLE = tuple(getattr(keras.layers, name) for name in NOTHING_TO_PRUNE if hasattr(keras.layers, name))


def is_keras3_model(model: object) -> bool:
    """Whether `model` is a Keras 3 model (`keras.Model`, not tf-keras')."""
    return isinstance(model, keras.Model)


def layer_kernels(layer: keras.layers.Layer) -> list[keras.Variable]:
    """The weights pruned in `layer` (empty for a layer with none, or not built); the most derived class wins."""
    if not layer.built:
        return []
    own = getattr(layer, "get_prunable_weights", None)
    if callable(own):
        weights = list(own())
        for weight in weights:
            if not isinstance(weight, keras.Variable):
                raise v.invalid(f"{layer.name!r}.get_prunable_weights()", "a list of keras.Variable", weight, TypeError)
        return weights
    if isinstance(layer, keras.layers.Bidirectional):
        return layer_kernels(layer.forward_layer) + layer_kernels(layer.backward_layer)
    for cls, paths in _CLASSES:
        if type(layer) is cls:
            return [_attribute(layer, path) for path in paths]
    for cls, paths in _CLASSES:
        if isinstance(layer, cls):
            return [_attribute(layer, path) for path in paths]
    return []


def prunable_kernels(model: keras.Model) -> dict[str, list[keras.Variable]]:
    """The weights pruned in each prunable layer of a built Keras 3 model, by layer name, in layer order.

    Nested models are searched; a layer inside another layer (an attention
    layer's projections) counts as part of it.

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Flatten()])
    >>> {name: [tuple(w.shape) for w in ws] for name, ws in prunable_kernels(model).items()}
    {'hidden': [(4, 3)]}
    """
    if not model.built:
        raise v.invalid("model", "a built model (give it an Input, or call it once on data)", model.name)
    found: dict[str, list[keras.Variable]] = {}
    for layer in _flat_layers(model):
        kernels = layer_kernels(layer)
        if kernels:
            if layer.name in found:
                raise v.invalid("model", "a model whose prunable layers have distinct names", layer.name)
            found[layer.name] = kernels
    return found


def skipped_layers(model: keras.Model) -> list[str]:
    """Layers of a built model that have weights but nothing to prune, as `"name (Class)"`, in layer order.

    Layers of `NOTHING_TO_PRUNE` (normalizations, depthwise convolutions) are not listed: tfmot
    leaves them whole too. What is listed is usually a layer of your own: give it a
    `get_prunable_weights()` method to prune it.

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.PReLU(name="act")])
    >>> skipped_layers(model)
    ['act (PReLU)']
    """
    return [
        f"{layer.name} ({type(layer).__name__})"
        for layer in _flat_layers(model)
        if layer.weights and not layer_kernels(layer) and not isinstance(layer, _WHOLE)
    ]


def _flat_layers(model: keras.Model) -> list[keras.layers.Layer]:
    layers = []
    for layer in model.layers:
        layers += _flat_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return layers


def _attribute(layer: keras.layers.Layer, path: str) -> keras.Variable:
    value = layer
    for part in path.split("."):
        value = getattr(value, part)
    if not isinstance(value, keras.Variable):  # a LoRA-enabled or quantized layer computes its kernel
        raise v.invalid(
            f"layer {layer.name!r}", "a layer whose kernel is a plain variable (no LoRA, not quantized)", path
        )
    return value
