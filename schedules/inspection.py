"""Finding what tfmot pruned in a model, and how sparse it is."""

from __future__ import annotations

import numpy as np
import tf_keras

__all__ = ["kernel_sparsity", "pruned_layers"]


def pruned_layers(model: tf_keras.Model, *, built: bool = False) -> list[tf_keras.layers.Layer]:
    """The layers of `model` that tfmot's `prune_low_magnitude` wrapped, in `model.submodules` order.

    A wrapper sets `pruning_schedule` and `pruning_vars` in its constructor;
    when it is built, `pruning_vars` is filled (one `(weight, mask,
    threshold)` per pruned weight) and `pruning_step` made.

    Args:
      model: a tf-keras model, pruned or not (nested models are searched).
      built: only wrappers that are built and prune at least one weight
        (whole-model pruning also wraps weightless layers such as `Flatten`).
    """
    return [
        layer
        for layer in model.submodules
        if hasattr(layer, "pruning_schedule")
        and hasattr(layer, "pruning_vars")
        and (not built or (layer.pruning_vars and hasattr(layer, "pruning_step")))
    ]


def kernel_sparsity(model: tf_keras.Model) -> dict[str, float]:
    """Share of exactly-zero entries in each layer's `kernel`, by layer name.

    Use it on a model after `tfmot.sparsity.keras.strip_pruning`.
    """
    return {
        layer.name: float(np.mean(layer.kernel.numpy() == 0.0)) for layer in model.layers if hasattr(layer, "kernel")
    }
