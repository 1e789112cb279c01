"""`PruningCallback`'s mask variables, and their update at a pruning step on each backend.

Each pruned kernel has a mask variable, ones until the schedule prunes it
(`mask_variables`). At a pruning step the callback passes `{layer name:
sparsity}` for the layers pruned to one function (`updater`), which sets their
masks and multiplies their kernels by them:

* under TensorFlow, unstructured: one compiled function (`keras3_tf`);
* under JAX: in NumPy, between two steps of `fit` (`keras3_jax`);
* under PyTorch (eager: the variables are the state), or for a pattern on any
  backend: in NumPy (`keras3_patterns`);
* the layers with given masks: ranked within their allowed weights, in NumPy
  on every backend (`fixed_masks`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import keras
import numpy as np

from schedules import fixed_masks, keras3_jax, keras3_patterns, keras3_tf

__all__ = ["mask_variables", "updater"]


def mask_variables(model: keras.Model, kernels: Mapping[str, list[keras.Variable]]) -> dict[str, list[keras.Variable]]:
    """A mask of ones for each of `kernels` (`{layer name: kernels}`), made in the scope of the model's
    distribution strategy."""
    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        return {
            name: [keras.Variable(keras.ops.ones(k.shape, k.dtype), trainable=False, name="mask") for k in ks]
            for name, ks in kernels.items()
        }


def updater(
    model: keras.Model,
    layers: dict[str, tuple[list[keras.Variable], list[keras.Variable]]],
    allowed: Mapping[str, list[np.ndarray]],
    rule: keras3_patterns.Rule,
) -> Callable[[dict[str, float]], None]:
    """The mask update of the layers pruned at a step, `{layer name: sparsity}`, for the backend.

    `layers` is `{layer name: (kernels, masks)}`, `allowed` the given masks of those that have some
    (`fixed_masks.match_masks`), `rule` the mask rule (`keras3_patterns.checked_rule`).
    """
    plain = {name: layer for name, layer in layers.items() if name not in allowed}
    if keras.backend.backend() == "jax":
        update = keras3_jax.updater(model, plain, rule)
    elif keras.backend.backend() == "tensorflow" and rule is keras3_patterns.mask_of:
        update = keras3_tf.updater(plain)
    else:  # PyTorch (eager: the variables are the state), or a pattern: in NumPy (`keras3_patterns`)

        def update(sparsities: dict[str, float]) -> None:
            keras3_patterns.update(plain, sparsities, rule)

    if allowed:  # the layers with given masks: ranked within them, in NumPy
        update = fixed_masks.updater(update, model, layers, allowed)
    return update
