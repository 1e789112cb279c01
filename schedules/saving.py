"""Loading pruned models, with a clear error where tfmot would load a broken schedule."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
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
        _weights_extracted(),
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


@contextlib.contextmanager
def _weights_extracted() -> Iterator[None]:
    """While loading: tf-keras reads a `.keras` file's weights from a file extracted from the archive first.

    tf-keras 2.21 hands h5py the weights inside the zip archive as a `zipfile` stream, and each backward
    seek of h5py makes `zipfile` read the member again from its start: loading a pruned ResNet50 (a 472 MB
    `.keras`) took 80 to 250 s here, nearly all of it seeking (`docs/benchmarks.md`, the zoo). Keras 3 fixed
    its own loader the same way (keras-team/keras#19793). tf-keras' store class is private: where it is not
    what this expects, loading goes on unchanged.
    """
    try:
        from tf_keras.src.saving import saving_lib
    except ImportError:  # another tf-keras layout: its own loader
        yield
        return
    original = getattr(saving_lib, "H5IOStore", None)
    if not isinstance(original, type):
        yield
        return

    def extracted(root_path, archive=None, mode="r"):
        if archive is None or mode != "r":
            return original(root_path, archive=archive, mode=mode)
        directory = tempfile.TemporaryDirectory(prefix="schedules-weights-")
        store = original(archive.extract(root_path, directory.name), mode=mode)
        close = store.close

        def close_and_clean() -> None:
            try:
                close()
            finally:
                directory.cleanup()

        store.close = close_and_clean
        return store

    saving_lib.H5IOStore = extracted
    try:
        yield
    finally:
        saving_lib.H5IOStore = original
