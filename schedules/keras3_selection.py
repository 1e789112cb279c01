"""The layers `PruningCallback` prunes in a Keras 3 model, and whether they are those of its last `fit`.

Without `layers`, every layer with a kernel to prune (`keras3_layers.prunable_kernels`),
with one warning naming the layers with weights it leaves whole
(`keras3_layers.skipped_layers`); with `layers`, the layers named, each checked to be a layer
of the model (nested models searched) with a kernel to prune. Pruned in blocks, every chosen
layer must have 2-D kernels, as in tfmot.
"""

from __future__ import annotations

import warnings

import keras

from schedules import _validation as v
from schedules.keras3_layers import prunable_kernels, skipped_layers

__all__ = ["chosen_kernels", "kernel_ids"]


def chosen_kernels(
    model: keras.Model, layers: list[str] | None, block_size: tuple[int, ...]
) -> dict[str, list[keras.Variable]]:
    """The pruned kernels of each layer the callback prunes, by layer name, for its `layers` and `block_size`.

    Raises:
      ValueError: a model with nothing to prune, a name in `layers` the model does not have or whose layer
        has no kernel to prune, blocks for a layer whose kernel is not 2-D.
    """
    chosen = _named(model, layers)
    if block_size != (1, 1):
        other = [name for name, ks in chosen.items() if any(len(k.shape) != 2 for k in ks)]
        if other:  # as tfmot, which prunes blocks of 2-D kernels only
            raise v.invalid(
                "layers",
                f"layers with 2-D kernels (Dense) with block_size={block_size}: pass the names of those "
                f"to prune in blocks; {other} have kernels of other ranks",
                layers,
            )
    return chosen


def kernel_ids(kernels: dict[str, list[keras.Variable]]) -> dict[str, list[int]]:
    """Each layer's kernels by identity: equal for the same variables (a second `fit` of the same model)."""
    return {name: [id(kernel) for kernel in ks] for name, ks in kernels.items()}


def _named(model: keras.Model, layers: list[str] | None) -> dict[str, list[keras.Variable]]:
    kernels = prunable_kernels(model)
    if not kernels:
        raise v.invalid("model", "a model with at least one layer to prune (Dense, Conv, ...)", model.name)
    if layers is None:
        skipped = skipped_layers(model)
        if skipped:
            warnings.warn(
                f"PruningCallback prunes no weight of {len(skipped)} layer(s) with weights: "
                f"{', '.join(skipped)}. To prune a layer of your own, give it a get_prunable_weights() "
                "method returning the variables to prune; to silence this, pass `layers`.",
                stacklevel=3,
            )
        return kernels
    every = {layer.name: layer for layer in _all_layers(model)}
    for name in layers:
        if name not in every:
            raise v.invalid("layers", f"names of layers of the model, for example {list(kernels)}", name)
        if name not in kernels:
            kind = type(every[name]).__name__
            raise v.invalid("layers", f"layers with a kernel to prune ({kind} {name!r} has none)", name)
    return {name: kernels[name] for name in layers}


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if isinstance(layer, keras.Model):
            layers += _all_layers(layer)
    return layers
