"""Finding what tfmot pruned in a model, and how sparse it is."""

from __future__ import annotations

import numpy as np
import tf_keras

__all__ = ["kernel_sparsity", "pruned_layers"]


def pruned_layers(model: tf_keras.Model, *, built: bool = False) -> list[tf_keras.layers.Layer]:
    """The layers of `model` that tfmot's `prune_low_magnitude` wrapped, depth first in `model.layers` order.

    A wrapper sets `pruning_schedule` and `pruning_vars` in its constructor;
    when it is built, `pruning_vars` is filled (one `(weight, mask,
    threshold)` per pruned weight) and `pruning_step` made.

    Args:
      model: a tf-keras model, pruned or not (nested models are searched).
      built: only wrappers that are built and prune at least one weight
        (whole-model pruning also wraps weightless layers such as `Flatten`).
    """
    found = []
    for layer in _layers(model):
        if hasattr(layer, "pruning_schedule") and hasattr(layer, "pruning_vars"):
            if not built or (layer.pruning_vars and hasattr(layer, "pruning_step")):
                found.append(layer)
    return found


def _layers(model) -> list:
    """Every layer of `model`, nested models' layers included, depth first.

    (Walking `.layers` is cheap; `model.submodules` walks every attribute of every
    module, which made reading the masks after each batch the cost of a test run.)
    """
    layers = []
    for layer in getattr(model, "layers", []):
        layers.append(layer)
        layers += _layers(layer)
    return layers


def kernel_sparsity(model: tf_keras.Model) -> dict[str, float]:
    """Share of exactly-zero entries in each layer's `kernel`, by layer name.

    Use it on a model after `tfmot.sparsity.keras.strip_pruning`.
    """
    return {
        layer.name: float(np.mean(layer.kernel.numpy() == 0.0)) for layer in model.layers if hasattr(layer, "kernel")
    }
