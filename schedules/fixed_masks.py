"""Masks a user gives: weights held at exactly zero while the model trains, on both paths.

`masks` maps a layer's name to a boolean mask of each weight pruned in it: `True` where the
weight trains, `False` where it is held at exactly 0. One array for a layer with one pruned
kernel (`Dense`, `Conv2D`), a list of arrays for one with several, in the order of
`schedules.keras3_layers.prunable_kernels` on Keras 3 and of tfmot's prunable weights
(`schedules.inspection.prunable_weights`) on tf-keras: an RNN's kernel then recurrent kernel,
attention's query, key, value and output kernels. Numbers that are all 0 or 1 count as booleans.

* Keras 3, `PruningCallback(masks=...)`: the masks are the callback's masks, held by the
  kernels' constraints and saved with the model. With a schedule, sparsity `s` counts within
  the allowed weights: a kernel with `a` of them keeps the `max(1, round(a * (1 - s)))` largest
  by magnitude (tfmot's k, `expected_kept`; every allowed weight tied with the k-th largest
  too), the locked ones always zero (`keras3_patterns.mask_of` with `allowed`, in NumPy on every backend).
* tf-keras, `prune_model(model, masks=...)`: tfmot's wrappers' mask variables, set once, with a
  schedule that never prunes (`HOLD`). A schedule on top is refused: tfmot recomputes a mask
  from the magnitudes of the whole kernel, where the locked weights are zeros, so at a pruning
  step where the k-th largest magnitude is 0 (an allowed weight exactly 0 among the k kept) its
  `>=` keeps every zero, the locked weights too, and they train from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow_model_optimization as tfmot

from schedules import _validation as v
from schedules import keras3_jax, keras3_patterns

__all__ = ["HOLD", "check_masks", "hold", "match_masks", "updater"]

#: tf-keras: the schedule of a layer whose mask is held. It prunes only at step 0, and tfmot's
#: wrapper never evaluates step 0 (it counts training steps from 1), so it never recomputes the
#: mask; it is tfmot's own class, which every saved format reloads.
HOLD = tfmot.sparsity.keras.ConstantSparsity(0.0, begin_step=0, end_step=0)


class _Text(str):
    """A description shown as it is in an error's "Received:" part."""

    def __repr__(self) -> str:
        return str(self)


def check_masks(masks: object) -> dict[str, list[np.ndarray]]:
    """`masks` as boolean arrays by layer name, checked for all that the model is not needed for.

    >>> check_masks({"dense": [[1, 0], [0, 1]]})["dense"][0].tolist()
    [[True, False], [False, True]]

    Raises:
      TypeError: `masks` is not a non-empty dict from layer names, or a mask is not an array of numbers.
      ValueError: a mask holds a number other than 0 and 1, or allows no weight at all.
    """
    if not isinstance(masks, Mapping) or not masks:
        requirement = "a non-empty dict from layer name to a boolean mask (an array, or a list of arrays)"
        raise v.invalid("masks", requirement, masks, TypeError)
    checked = {}
    for name, given in masks.items():
        if not isinstance(name, str):
            raise v.invalid("masks", "a dict keyed by layer names", name, TypeError)
        several = isinstance(given, (list, tuple)) and all(_is_array(item) for item in given)
        items = list(given) if several else [given]
        if not items:
            raise v.invalid(f"masks[{name!r}]", "a mask, or a non-empty list of masks", given)
        checked[name] = [_boolean(f"masks[{name!r}]" + (f"[{i}]" if several else ""), m) for i, m in enumerate(items)]
    return checked


def match_masks(masks: Mapping[str, list[np.ndarray]], kernels: Mapping[str, Sequence[Any]]) -> dict[str, list]:
    """`masks` (from `check_masks`), checked against the model's pruned weights `{layer: [weights]}`.

    Raises:
      ValueError: a name that is not a layer with weights to prune, or not one mask of the right
        shape for each of its pruned weights.
    """
    for name, given in masks.items():
        if name not in kernels:
            raise v.invalid("masks", f"a dict keyed by names of layers with weights to prune, {list(kernels)}", name)
        shapes = [tuple(kernel.shape) for kernel in kernels[name]]
        if len(given) != len(shapes):
            raise v.invalid(
                f"masks[{name!r}]",
                f"{len(shapes)} mask(s), one for each weight pruned in the layer, of shapes {shapes}",
                _Text(f"{len(given)} masks"),
            )
        for i, (mask, shape) in enumerate(zip(given, shapes, strict=True)):
            if mask.shape != shape:
                label = f"masks[{name!r}]" + (f"[{i}]" if len(shapes) > 1 else "")
                raise v.invalid(label, f"a mask of the pruned weight's shape {shape}", _Text(f"shape {mask.shape}"))
    return dict(masks)


def hold(layers: Mapping[str, tuple[list[Any], list[Any]]], allowed: Mapping[str, list[np.ndarray]]) -> None:
    """Keras 3: each mask of a layer with given masks times its given mask, and the kernel times the mask.

    `layers` is `{layer: (kernels, mask variables)}`. A mask the schedule has not pruned yet
    (all ones) becomes the given mask; one pruned already (resumed) stays inside it.
    """
    for name, given in allowed.items():
        for kernel, mask, ok in zip(*layers[name], given, strict=True):
            value = np.asarray(keras.ops.convert_to_numpy(mask)) * ok
            mask.assign(value.astype(mask.dtype))
            kernel.assign(kernel * mask)


def updater(
    base: Callable[[dict[str, float]], None],
    model: keras.Model,
    layers: Mapping[str, tuple[list[Any], list[Any]]],
    allowed: Mapping[str, list[np.ndarray]],
) -> Callable[[dict[str, float]], None]:
    """Keras 3: the mask update of the layers pruned at a step, `{layer: sparsity}`: `base` for the layers
    without given masks, `keras3_patterns.mask_of` with `allowed` for those with, in NumPy on every backend.

    A pruning event of MobileNetV2 96x96 (36 layers, 2.1 M weights) with a mask on every layer took
    119 ms in NumPy here, against 92 ms for the TensorFlow backend's compiled update of the same
    layers without masks (medians of 7; tfmot's own event: about 200 ms, `docs/benchmarks.md`).
    """

    def update(sparsities: dict[str, float]) -> None:
        rest = {name: s for name, s in sparsities.items() if name not in allowed}
        if rest:
            base(rest)
        masked = {name: s for name, s in sparsities.items() if name in allowed}
        if not masked:
            return
        with keras3_jax.editing(model):
            for name, sparsity in masked.items():
                for kernel, mask, ok in zip(*layers[name], allowed[name], strict=True):
                    value = np.asarray(keras.ops.convert_to_numpy(kernel))
                    new = keras3_patterns.mask_of(value, sparsity, ok)
                    mask.assign(new)
                    kernel.assign(value * new)

    return update


def _is_array(value: object) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _boolean(label: str, value: object) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise v.invalid(label, "an array of booleans (or of 0 and 1)", value, TypeError) from None
    if array.dtype == bool:
        mask = array
    elif np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating):
        other = array[(array != 0) & (array != 1)]
        if other.size:
            shown = _Text(f"a {array.dtype} array of shape {array.shape} holding {other.ravel()[0]!r}")
            raise v.invalid(label, "booleans, or numbers that are all 0 or 1", shown)
        mask = array != 0
    else:
        shown = _Text(f"an array of dtype {array.dtype} and shape {array.shape}")
        raise v.invalid(label, "an array of booleans (or of 0 and 1)", shown, TypeError)
    if array.ndim == 0:
        raise v.invalid(label, "an array of the pruned weight's shape", _Text(f"the scalar {array!r}"))
    if not mask.any():
        raise v.invalid(label, "a mask that lets at least one weight train", _Text(f"all False, shape {mask.shape}"))
    return mask
