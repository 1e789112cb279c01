"""Weight rewinding for lottery tickets: `WeightRewinding`, a Keras callback used beside tfmot's pruning.

Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et
al. 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis"): after
each pruning round the surviving weights go back to their values from early in
training, and the pruned ones stay zero.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tf_keras

from schedules import _validation as v
from schedules.evaluation import EventLookup
from schedules.inspection import pruned_layers
from schedules.plan import pruning_events

__all__ = ["WeightRewinding", "check_rewind_step"]


def check_rewind_step(rewind_step: int, schedule, *, name: str = "rewind_step", where: str = "the schedule") -> int:
    """`rewind_step` if `schedule` does not prune at any step from 1 to it, else a `ValueError`
    naming `name`, the value, and the largest step allowed."""
    rewind_step = v.check_int(name, rewind_step, minimum=0)
    if rewind_step == 0:
        return rewind_step
    events = next(pruning_events(schedule, 1, rewind_step), None)  # a chunk at a time, first events first
    if events is not None:
        first = int(events[0][0])
        raise v.invalid(
            name,
            f"before the first pruning step ({where} prunes first at step {first}: at most {first - 1})",
            rewind_step,
        )
    return rewind_step


class WeightRewinding(tf_keras.callbacks.Callback):
    """Rewinds the weights of a pruned model to those of step `rewind_step` whenever a mask changes.

    Steps are tfmot's: the first training batch is step 1, and step 0 is
    before it. The callback records every weight of the model as it is at
    the end of step `rewind_step` (kernels, biases, unpruned layers,
    normalization statistics: everything but the pruning wrappers' own mask,
    threshold and step). Then, at the end of every later step at which a
    pruned layer's schedule pruned (`should_prune`) and some layer's mask
    came out different from before, it sets every recorded weight back:

    ```python
    kernel = recorded_kernel * mask     # pruned weights exact zeros, kept ones their rewound values
    other  = recorded_other             # biases, unpruned layers
    ```

    and, with `reset_optimizer`, puts the optimizer's slot variables (momenta,
    second moments, accumulators) back to the values a new optimizer starts
    with; `optimizer.iterations`, and so the learning-rate schedule and the
    pruning step, run on. The whole model rewinds when any layer's mask
    changes, as in the papers, where all layers are pruned together.

    A lottery ticket in five lines (20% of the survivors pruned at each of 4 stairs, rewound to
    step 100):

    ```python
    schedule = schedules.StepSparsity.uniform(0.0, 1 - 0.8**4, 500, 2000, num_stages=4, spacing="geometric")
    model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    model.compile(...)
    rewinding = schedules.WeightRewinding(100, filepath="rewind.npz")
    model.fit(x, y, epochs=..., callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), rewinding])
    ```

    The order of the two callbacks does not matter: this one reads each
    wrapper's own step, and reads the model at the first batch, after every
    callback's `on_train_begin` (`BackupAndRestore` restores the model
    there). Put it before a callback that saves the model within an epoch
    (`ModelCheckpoint` with an integer `save_freq`), so that what is saved at a
    mask change is rewound. With `steps_per_execution > 1` Keras calls callbacks
    once per execution: the rewind happens at the end of the execution in
    which a mask changed, and `rewind_step` must end an execution.

    A run that resumes after `rewind_step` (a reloaded model, or a new `fit`
    after a crash) needs the recorded weights: with `filepath` they are
    written there (NumPy `.npz`) the moment they are recorded, and read back
    when a run starts past `rewind_step`.

    Args:
      rewind_step: the step whose weights are the rewind point, an integer
        >= 0 before the first pruning step of every pruned layer (checked at
        the start of `fit`).
      reset_optimizer: reset the optimizer's slot variables at each rewind
        (needs a `tf_keras.optimizers.Optimizer`, not a legacy one).
      filepath: where to keep the recorded weights (`.npz`), or None (kept
        in memory only: a resumed run cannot rewind).

    Attributes:
      recorded: the recorded weights (a list of arrays, in the order of the
        model's rewound variables), or None before `rewind_step`.
      rewinds: the steps at which the weights were rewound, in order, over
        every `fit` of the same model (given another model, the callback
        starts afresh; a run from before `rewind_step` records anew).
    """

    def __init__(
        self, rewind_step: int = 0, *, reset_optimizer: bool = True, filepath: str | os.PathLike | None = None
    ) -> None:
        super().__init__()
        self.rewind_step = v.check_int("rewind_step", rewind_step, minimum=0)
        if not isinstance(reset_optimizer, bool):
            raise v.invalid("reset_optimizer", "True or False", reset_optimizer, TypeError)
        self.reset_optimizer = reset_optimizer
        if filepath is not None:
            if not isinstance(filepath, (str, os.PathLike)):
                raise v.invalid("filepath", "a path ending in .npz, or None", filepath, TypeError)
            if not os.fspath(filepath).endswith(".npz"):
                raise v.invalid("filepath", "a path ending in .npz, or None", os.fspath(filepath))
            filepath = os.fspath(filepath)
        self.filepath = filepath
        self.recorded: list[np.ndarray] | None = None
        self.rewinds: list[int] = []

    # --- Keras hooks -------------------------------------------------------------------------------

    def on_train_begin(self, logs=None) -> None:
        self._layers = pruned_layers(self.model, built=True)
        if not self._layers:
            raise v.invalid(
                "model", "a built model pruned with prune_low_magnitude, for WeightRewinding", self.model.name
            )
        if self.reset_optimizer:
            _check_optimizer(self.model.optimizer)
        if self.filepath is not None and not os.path.isdir(os.path.dirname(os.path.abspath(self.filepath))):
            raise v.invalid("filepath", "a path in an existing directory", self.filepath)
        self._check_first_event()
        self._started = False  # the rest waits for the first batch: other callbacks may restore the model first

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if self._started:
            return
        self._started = True
        if getattr(self, "_model_id", None) != id(self.model):  # a new model: nothing of the last one's holds
            self.recorded, self.rewinds, self._model_id = None, [], id(self.model)
        self._variables, self._masks = _rewound_variables(self.model, self._layers)
        self._lookups = {id(layer): EventLookup(layer.pruning_schedule) for layer in self._layers}
        step = max(int(self._layers[0].pruning_step.numpy()), 0)  # -1: UpdatePruningStep has not set it yet
        self._last_step = step
        self._previous = self._mask_values()
        if step < self.rewind_step:  # a run from (before) the rewind point: it records anew
            self.recorded = None
        elif step == self.rewind_step:
            self._record(step)
        elif self.recorded is None:
            self._load(step)

    def on_train_batch_end(self, batch, logs=None) -> None:
        step = int(self._layers[0].pruning_step.numpy())
        if step == self._last_step:  # nothing ran
            return
        ran = range(self._last_step + 1, step + 1)  # several steps with steps_per_execution > 1
        self._last_step = step
        if self.recorded is None and self.rewind_step in ran:
            if step != self.rewind_step:
                n = len(ran)
                raise v.invalid(
                    "rewind_step",
                    f"the last step of an execution with steps_per_execution={n} (this one ran steps {ran.start} "
                    f"to {step}): a multiple of {n}, such as {self.rewind_step - self.rewind_step % n}",
                    self.rewind_step,
                )
            self._record(step)
            return
        if step <= self.rewind_step:
            return
        if not any(self._lookups[id(layer)](t)[0] for layer in self._layers for t in ran):
            return
        masks = self._mask_values()
        if all(np.array_equal(a, b) for a, b in zip(masks, self._previous, strict=True)):
            return
        self._previous = masks
        self._rewind(step, masks)

    # --- the work ----------------------------------------------------------------------------------

    def _check_first_event(self) -> None:
        """A rewind point at or after a pruning event would record pruned weights: refused."""
        for layer in self._layers:
            check_rewind_step(self.rewind_step, layer.pruning_schedule, where=f"layer {layer.name!r}")

    def _mask_values(self) -> list[np.ndarray]:
        return [mask.numpy() for mask in self._masks]

    def _record(self, step: int) -> None:
        self.recorded = [variable.numpy() for variable, _ in self._variables]
        if self.filepath is not None:
            names = np.array([variable.name for variable, _ in self._variables])
            temporary = self.filepath + ".tmp.npz"
            np.savez(temporary, *self.recorded, step=step, names=names)
            os.replace(temporary, self.filepath)

    def _load(self, step: int) -> None:
        if self.filepath is None or not os.path.exists(self.filepath):
            raise v.invalid(
                "filepath",
                f"the .npz file the first run recorded the weights of step {self.rewind_step} in: this run "
                f"starts at step {step}, after rewind_step, so it cannot record them",
                self.filepath,
            )
        with np.load(self.filepath) as saved:
            arrays = [saved[f"arr_{i}"] for i in range(len(saved.files) - 2)]
            saved_step = int(saved["step"])
        shapes = [tuple(variable.shape) for variable, _ in self._variables]
        if saved_step != self.rewind_step or [a.shape for a in arrays] != shapes:
            raise v.invalid(
                "filepath",
                f"weights of this model recorded at step {self.rewind_step} (the file has {len(arrays)} "
                f"arrays from step {saved_step}; the model has {len(shapes)} weights to rewind)",
                self.filepath,
            )
        self.recorded = arrays

    def _rewind(self, step: int, masks: list[np.ndarray]) -> None:
        """Every recorded weight back, a pruned one times `masks` (the values of `self._masks`, in order)."""
        assert self.recorded is not None, "rewinding after rewind_step: recorded then, or loaded at the start of fit"
        mask_values = iter(masks)
        values = []
        for (variable, mask), recorded in zip(self._variables, self.recorded, strict=True):
            values.append((variable, recorded if mask is None else recorded * next(mask_values)))
        tf_keras.backend.batch_set_value(values)
        if self.reset_optimizer:
            _reset_slots(self.model.optimizer, self.model.trainable_variables)
        self.rewinds.append(step)


def _rewound_variables(model: tf_keras.Model, layers: list) -> tuple[list[tuple[Any, Any]], list]:
    """Every variable of `model` but the wrappers' own, each with its mask (or None); and the masks."""
    mask_of = {}
    own = set()
    for layer in layers:
        for weight, mask, threshold in layer.pruning_vars:
            mask_of[weight.ref()] = mask
            own.update({mask.ref(), threshold.ref()})
        own.add(layer.pruning_step.ref())
    variables = [(w, mask_of.get(w.ref())) for w in model.weights if w.ref() not in own]
    masks = [mask for _, mask in variables if mask is not None]
    return variables, masks


def _check_optimizer(optimizer) -> None:
    """Refuses, before training, an optimizer `_reset_slots` cannot renew."""
    requirement = (
        "False with a legacy or foreign optimizer (resetting needs a tf_keras.optimizers.Optimizer, "
        f"such as tf_keras.optimizers.Adam; the model has {type(optimizer).__name__})"
    )
    if not isinstance(optimizer, tf_keras.optimizers.Optimizer):
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


def _reset_slots(optimizer, trainable_variables: list) -> None:
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
