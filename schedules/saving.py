"""Loading pruned models, with a clear error where tfmot would load a broken schedule."""

from __future__ import annotations

import os
from typing import Any

import tensorflow_model_optimization as tfmot
import tf_keras

from schedules._attention import PruneLowMagnitudeLoader
from schedules.inspection import pruned_layers

__all__ = ["check_pruned_model", "load_model"]


def load_model(path: str | os.PathLike, **kwargs: Any) -> tf_keras.Model:
    """Loads a pruned tf-keras model (`.keras`, `.h5` or SavedModel) and checks its schedules.

    The same as ``with tfmot.sparsity.keras.prune_scope(): tf_keras.models.load_model(path)``,
    plus, for a SavedModel directory, `model.load_weights(path)` (tf-keras'
    `load_model` restores no optimizer state from a SavedModel, so training
    would not resume exactly), then `check_pruned_model`: tfmot itself accepts a saved schedule whose
    `class_name` it cannot resolve and keeps the *string* as the schedule, so
    training fails later with an obscure error; this raises at load time.
    Loading runs no code from the file: schedules are rebuilt only from
    registered classes and validated arguments. A pruned `MultiHeadAttention`
    loads only through this function: plain `prune_scope()` loading fails in
    tfmot (`schedules/_attention.py` says why and what is done about it).

    Args:
      path: the saved model.
      **kwargs: passed to `tf_keras.models.load_model` (e.g. `custom_objects`).

    Raises:
      ValueError: a pruned layer's schedule is not a `PruningSchedule`, or a
        schedule's saved arguments are invalid (unknown, missing or out of range).
    """
    # tfmot's prune_scope, with its wrapper's MultiHeadAttention built (see schedules/_attention.py).
    with (
        tfmot.sparsity.keras.prune_scope(),
        tf_keras.utils.custom_object_scope({"PruneLowMagnitude": PruneLowMagnitudeLoader}),
    ):
        model = tf_keras.models.load_model(path, **kwargs)
        if os.path.isdir(path) and getattr(model, "optimizer", None) is not None:
            # A SavedModel: tf-keras' load_model restores no optimizer state from it
            # (tensorflow/tensorflow#44670); load_weights on the same directory does.
            model.load_weights(path)
    check_pruned_model(model)
    return model


def check_pruned_model(model: tf_keras.Model) -> tf_keras.Model:
    """Raises `ValueError` unless every pruned layer of `model` holds a real `PruningSchedule`."""
    for layer in pruned_layers(model):
        schedule = layer.pruning_schedule
        if not isinstance(schedule, tfmot.sparsity.keras.PruningSchedule):
            raise ValueError(
                f"Layer {layer.name!r} has pruning_schedule={schedule!r} of type {type(schedule).__name__}, "
                "not a tfmot PruningSchedule: the saved config names a schedule class that is not registered. "
                "Import the package that defines it (for ours: `import schedules`) or pass `custom_objects`."
            )
    return model
