"""Where `PruningCallback`'s masks start when `fit` starts: all ones, or those of the run it resumes.

The schedule counts the optimizer's steps, so a model whose optimizer has taken
`done` steps (a reloaded one, or one trained on with a new callback) resumes at
step `done + 1`, and each layer the schedule pruned in those steps needs the
mask the earlier run ended with: the masks the model carries
(`keras3_masks.saved_masks`), else the kernels' zeros, with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import keras
import numpy as np

from schedules._tfmot import PruningSchedule
from schedules.evaluation import expected_kept
from schedules.keras3_masks import PruningMasks
from schedules.plan import PlanWarning, pruning_events

__all__ = ["resume"]


def resume(
    schedules: Mapping[str, PruningSchedule],
    layers: Mapping[str, tuple[list[keras.Variable], list[keras.Variable]]],
    update: Callable[[dict[str, float]], None],
    saved: PruningMasks | None,
    done: int,
) -> None:
    """Sets every mask of the layers of `schedules` (`layers` is `{layer name: (kernels, masks)}`): all ones
    for a layer the schedule has not pruned in the `done` steps trained; for one it has, those the model
    carries, `saved` by the run before (perhaps these very variables).

    A model reloaded with `keras3_masks.load_model` (or pruned before in this process) carries the masks the
    earlier run ended with. Without them, one warning, and each mask is the kernel's non-zeros (a kept weight
    that is exactly zero is then taken for a pruned one). A layer with no zero at all, whose last pruning
    step asked for a sparsity that leaves zeros and no lower than any before it, was not pruned: a model
    trained before without the callback. It is pruned to that sparsity now (`update`, the callback's mask
    update), with one warning for all such layers. (After a step that lowered the sparsity, every exact zero
    ties and is kept, and the weights grow back: no zeros is then what the earlier run left.)
    """
    guessed, unpruned = [], []
    for name, schedule in schedules.items():
        kernels, masks = layers[name]
        passed = None  # the pruning steps of the steps already trained: (last step, its sparsity, the most before)
        for steps, sparsity in pruning_events(schedule, 1, done):
            before = max([float(x) for x in sparsity[:-1]] + ([passed[2], passed[1]] if passed else []), default=0.0)
            passed = int(steps[-1]), float(sparsity[-1]), before
        if passed is None:
            for mask in masks:
                mask.assign(keras.ops.ones(mask.shape, mask.dtype))
            continue
        kept = saved.masks.get(name) if saved is not None else None
        if kept is not None and [tuple(m.shape) for m in kept] == [tuple(k.shape) for k in kernels]:
            for mask, value in zip(masks, kept, strict=True):
                mask.assign(np.asarray(keras.ops.convert_to_numpy(value)).astype(mask.dtype))
            continue
        _, sparsity, before = passed
        values = [keras.ops.convert_to_numpy(kernel) for kernel in kernels]
        pruned = any(expected_kept(sparsity, value.size) < value.size for value in values)  # leaves a zero
        if pruned and sparsity >= before and not any(np.any(value == 0) for value in values):
            unpruned.append(name)
            update({name: sparsity})
            continue
        guessed.append(name)
        for mask, value in zip(masks, values, strict=True):
            mask.assign((value != 0).astype(value.dtype))
    if unpruned:
        warnings.warn(
            f"PruningCallback: the optimizer has taken {done} steps, but the layers {unpruned} have no zeros "
            "although the schedule pruned them: pruned to the sparsity of its last pruning step now. The "
            "schedule counts the optimizer's steps: to start it at step 1 on a model trained before, compile the "
            "model again (a new optimizer).",
            PlanWarning,
            stacklevel=3,
        )
    if guessed:
        warnings.warn(
            f"PruningCallback: the model resumes at step {done + 1} without the masks of the run before (none "
            f"for the layers {guessed}): each mask is taken from its kernel's non-zeros, so a kept weight that "
            "is exactly zero stays at zero. Reload a saved model with schedules.keras3.load_model to resume "
            "with its masks.",
            stacklevel=3,
        )
