"""What `WeightRewinding` records and sets back: the weights, their `.npz` file, and the optimizer's slots.

On a tf-keras model the rewound variables are every weight but the pruning
wrappers' own (`rewound_variables`), and `reset_slots` renews the optimizer's
slot variables. On a Keras 3 model they are `model.weights`: `keras3_assign`
sets them between two steps of `fit` (under JAX, in `fit`'s own state), with the
optimizer's variables from `keras3_fresh_slots`. `write_recorded` and
`read_recorded` keep the recorded weights in a `.npz` file for a resumed run.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tf_keras

from schedules import _validation as v
from schedules import keras3_jax
from schedules.keras3 import PruningCallback
from schedules.keras3_layers import is_keras3_model
from schedules.keras3_masks import saved_masks

__all__ = [
    "check_optimizer",
    "keras3_assign",
    "keras3_fresh_slots",
    "keras3_masks",
    "read_recorded",
    "read_values",
    "reset_slots",
    "rewound_variables",
    "write_recorded",
]


def read_values(model: keras.Model, variables: list) -> list[np.ndarray]:
    """Copies of the values of `variables` (under JAX, in the middle of `fit`, the trainer's state first)."""
    if is_keras3_model(model):
        if _jax():
            model.jax_state_sync()
        return [np.array(keras.ops.convert_to_numpy(variable)) for variable in variables]
    return [variable.numpy() for variable in variables]


def write_recorded(filepath: str, arrays: list[np.ndarray], *, step: int, names: list[str]) -> None:
    """Writes the weights recorded at `step` (`arrays`, of the variables `names`) to `filepath`, whole or not at all."""
    temporary = filepath + ".tmp.npz"
    np.savez(temporary, *arrays, step=step, names=np.array(names))
    os.replace(temporary, filepath)


def read_recorded(
    filepath: str | None, *, rewind_step: int, step: int, shapes: list[tuple[int, ...]]
) -> list[np.ndarray]:
    """The weights of step `rewind_step` from `filepath`, for a run that starts at `step`, after it; a
    `ValueError` if there is no such file, or it holds another step or weights of other `shapes`."""
    if filepath is None or not os.path.exists(filepath):
        raise v.invalid(
            "filepath",
            f"the .npz file the first run recorded the weights of step {rewind_step} in: this run "
            f"starts at step {step}, after rewind_step, so it cannot record them",
            filepath,
        )
    with np.load(filepath) as saved:
        arrays = [saved[f"arr_{i}"] for i in range(len(saved.files) - 2)]
        saved_step = int(saved["step"])
    if saved_step != rewind_step or [a.shape for a in arrays] != shapes:
        raise v.invalid(
            "filepath",
            f"weights of this model recorded at step {rewind_step} (the file has {len(arrays)} "
            f"arrays from step {saved_step}; the model has {len(shapes)} weights to rewind)",
            filepath,
        )
    return arrays


def check_optimizer(optimizer, *, keras3: bool) -> None:
    """Refuses, before training, an optimizer `reset_slots` (`keras3_fresh_slots`) cannot renew."""
    requirement = (
        "False with a legacy or foreign optimizer (resetting needs a tf_keras.optimizers.Optimizer, "
        f"such as tf_keras.optimizers.Adam; the model has {type(optimizer).__name__})"
    )
    if not keras3 and not isinstance(optimizer, tf_keras.optimizers.Optimizer):
        raise v.invalid("reset_optimizer", requirement, True, TypeError)
    try:
        type(optimizer).from_config(optimizer.get_config())
    except Exception as error:  # an unregistered custom learning-rate schedule, say
        raise v.invalid(
            "reset_optimizer",
            f"False with an optimizer that cannot be rebuilt from its config ({type(error).__name__}: {error})",
            True,
            TypeError,
        ) from error


# --- tf-keras --------------------------------------------------------------------------------------


def rewound_variables(model: tf_keras.Model, layers: list) -> tuple[list[tuple[Any, int | None]], list]:
    """Every variable of `model` but the wrappers' own, each with the index of its mask (or None); and the masks."""
    mask_of = {}
    own = set()
    for layer in layers:
        for weight, mask, threshold in layer.pruning_vars:
            mask_of[weight.ref()] = mask
            own.update({mask.ref(), threshold.ref()})
        own.add(layer.pruning_step.ref())
    variables: list[tuple[Any, int | None]] = []
    masks: list[Any] = []
    for w in model.weights:
        if w.ref() in own:
            continue
        mask = mask_of.get(w.ref())
        variables.append((w, None if mask is None else len(masks)))
        if mask is not None:
            masks.append(mask)
    return variables, masks


def reset_slots(optimizer, trainable_variables: list) -> None:
    """The optimizer's slot variables set to what a new optimizer of the same config starts with
    (zeros for most; Adagrad's accumulators start at `initial_accumulator_value`)."""
    if not optimizer.variables or len(optimizer.variables) == 1:  # not built yet: nothing to reset
        return
    fresh = type(optimizer).from_config(optimizer.get_config())
    fresh.build(trainable_variables)
    old = [w for w in optimizer.variables if w is not optimizer.iterations]
    new = [w for w in fresh.variables if w is not fresh.iterations]
    if [_slot_key(w, optimizer.name) for w in old] != [_slot_key(w, fresh.name) for w in new]:
        raise RuntimeError(
            f"WeightRewinding cannot match the slot variables of {type(optimizer).__name__} with a new one's: "
            "pass reset_optimizer=False"
        )
    tf_keras.backend.batch_set_value([(w, n.numpy()) for w, n in zip(old, new, strict=True)])


def _slot_key(variable, optimizer_name: str) -> tuple:
    """A slot variable's name without the optimizer's name in front, and its shape."""
    name = variable.name
    return name.removeprefix(optimizer_name + "/"), tuple(variable.shape)


# --- Keras 3 ---------------------------------------------------------------------------------------

#: The names Keras 3's optimizers give their step count and learning rate (a wrapped optimizer's too), and
#: a `LossScaleOptimizer` its loss scale and the steps since it changed: the variables a rewind leaves as they
#: are. (With `use_ema`, the moving averages are reset as slots: the average restarts from zero.)
_NOT_SLOTS = ("iteration", "learning_rate", "step_counter", "dynamic_scale")


def _jax() -> bool:
    return keras.backend.backend() == "jax"


def keras3_masks(pruning: PruningCallback) -> list[np.ndarray]:
    """The masks of a PruningCallback, in the order of its kernels."""
    masks = pruning.masks  # (syncs the trainer's state under JAX)
    return [mask for name in pruning.kernels for mask in masks[name]]


def keras3_fresh_slots(model: keras.Model) -> list[tuple[keras.Variable, np.ndarray]]:
    """Each of the optimizer's variables but `_NOT_SLOTS`, with its value in a new optimizer of the same config
    (zeros for most; Adagrad's accumulators start at `initial_accumulator_value`)."""
    optimizer = model.optimizer
    if not optimizer.built:  # nothing to reset
        return []
    fresh = type(optimizer).from_config(optimizer.get_config())
    fresh.build(model.trainable_variables)
    saved = saved_masks(model)  # under JAX, the PruningCallback's masks ride with the optimizer's variables
    masks = {id(mask) for ms in saved.masks.values() for mask in ms} if saved is not None else set()
    old = [w for w in optimizer.variables if w.name not in _NOT_SLOTS and id(w) not in masks]
    new = [w for w in fresh.variables if w.name not in _NOT_SLOTS]
    if [(w.name, tuple(w.shape)) for w in old] != [(w.name, tuple(w.shape)) for w in new]:
        raise RuntimeError(
            f"WeightRewinding cannot match the slot variables of {type(optimizer).__name__} with a new one's: "
            "pass reset_optimizer=False"
        )
    return [(w, np.array(keras.ops.convert_to_numpy(n))) for w, n in zip(old, new, strict=True)]


def keras3_assign(model: keras.Model, values: list[tuple[Any, np.ndarray]]) -> None:
    """Sets variables of a Keras 3 model between two steps of `fit`.

    Under JAX `fit` holds the values in its own state (`keras3_jax.editing`).
    """
    with keras3_jax.editing(model):
        for variable, value in values:
            variable.assign(value)
