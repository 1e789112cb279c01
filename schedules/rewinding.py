"""Weight rewinding for lottery tickets: `WeightRewinding`, a Keras callback used beside the pruning.

Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et
al. 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis"): after
each pruning round the surviving weights go back to their values from early in
training, and the pruned ones stay zero. One callback for both paths: a tf-keras
model pruned by tfmot's wrappers, or a Keras 3 model pruned by
`schedules.keras3.PruningCallback` in the same `fit`.

This module decides when to record and when to rewind; what is recorded and
set back (the weights, their `.npz` file, the optimizer's slots) is
`schedules.rewinding_state`.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tf_keras

from schedules import _validation as v
from schedules.evaluation import EventLookup
from schedules.inspection import pruned_layers
from schedules.keras3 import PruningCallback, pruning_of
from schedules.keras3_layers import is_keras3_model
from schedules.plan import pruning_events
from schedules.rewinding_state import (
    check_optimizer,
    keras3_assign,
    keras3_fresh_slots,
    keras3_masks,
    read_recorded,
    read_values,
    reset_slots,
    rewound_variables,
    write_recorded,
)

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

    On a Keras 3 model it rewinds what a `schedules.keras3.PruningCallback`
    prunes in the same `fit` (pass both, in either order), by the same rule and
    steps: the optimizer's `iterations` (the first batch is step 1), and a
    rewind at the end of a step whose pruning (applied by that callback just
    before the step) changed a mask. The weights are `model.weights`
    (trainable and not: kernels, biases, normalization statistics; not the
    random seeds), and `reset_optimizer` sets every optimizer variable but
    `iterations` and the learning rate to a new optimizer's. Under JAX, where
    `fit` trains a copy of the variables, it syncs that copy into them before
    reading them and has `fit` read them back after a rewind.

    ```python
    pruning = schedules.keras3.PruningCallback(schedule)
    model.fit(x, y, epochs=..., callbacks=[pruning, schedules.WeightRewinding(100)])
    ```

    Args:
      rewind_step: the step whose weights are the rewind point, an integer
        >= 0 before the first pruning step of every pruned layer (checked at
        the start of `fit`; on a Keras 3 model, at its first batch).
      reset_optimizer: reset the optimizer's slot variables at each rewind
        (on tf-keras, needs a `tf_keras.optimizers.Optimizer`, not a legacy
        one).
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
        self._keras3 = is_keras3_model(self.model)
        if self._keras3:
            self._before = self._keras3_before()
        else:
            self._layers = pruned_layers(self.model, built=True)
            if not self._layers:
                raise v.invalid(
                    "model",
                    "a built model pruned with prune_low_magnitude (or a Keras 3 model with a "
                    "schedules.keras3.PruningCallback in the same fit), for WeightRewinding",
                    self.model.name,
                )
        if self.reset_optimizer:
            check_optimizer(self.model.optimizer, keras3=self._keras3)
        if self.filepath is not None and not os.path.isdir(os.path.dirname(os.path.abspath(self.filepath))):
            raise v.invalid("filepath", "a path in an existing directory", self.filepath)
        if not self._keras3:
            self._check_first_event()
        self._started = False  # the rest waits for the first batch: other callbacks may restore the model first

    def on_epoch_begin(self, epoch, logs=None) -> None:
        if getattr(self, "_keras3", False):  # the steps done, read when and as the PruningCallback reads them
            self._done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if self._started:
            return
        self._started = True
        if getattr(self, "_model_id", None) != id(self.model):  # a new model: nothing of the last one's holds
            self.recorded, self.rewinds, self._model_id = None, [], id(self.model)
        values = None  # the weights the run starts from, when they can no longer be read from the model
        if self._keras3:
            step, values = self._keras3_start()
        else:
            self._variables, self._masks = rewound_variables(self.model, self._layers)
            self._lookups = {id(layer): EventLookup(layer.pruning_schedule) for layer in self._layers}
            step = max(int(self._layers[0].pruning_step.numpy()), 0)  # -1: UpdatePruningStep has not set it yet
            self._last_step = step
            self._previous = self._mask_values()
        if step < self.rewind_step:  # a run from (before) the rewind point: it records anew
            self.recorded = None
        elif step == self.rewind_step:
            self._record(step, values)
        elif self.recorded is None:
            self._load(step)

    def on_train_batch_end(self, batch, logs=None) -> None:
        ran = self._ran()  # several steps with steps_per_execution > 1
        if not ran:  # nothing ran
            return
        step = ran[-1]
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
        if step <= self.rewind_step or not self._pruned(ran):
            return
        masks = self._mask_values()
        if all(np.array_equal(a, b) for a, b in zip(masks, self._previous, strict=True)):
            return
        self._previous = masks
        self._rewind(step, masks)

    # --- the two kinds of model --------------------------------------------------------------------

    def _keras3_before(self) -> tuple[PruningCallback, list[np.ndarray], list[np.ndarray] | None] | None:
        """What a Keras 3 run starts from, if a PruningCallback came before this one in `callbacks`.

        That one has begun its `fit` already; at the first batch it will have pruned that batch's steps
        before this callback sees them, so the masks (and the weights, if they are to be recorded) are
        kept now. Otherwise (None, or the callback of a fit that stopped with an exception) this callback reads
        them at the first batch.
        """
        pruning = pruning_of(self.model)
        if pruning is None:
            return None
        done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        weights = read_values(self.model, self.model.weights) if done == self.rewind_step else None
        return pruning, keras3_masks(pruning), weights

    def _keras3_start(self) -> tuple[int, list[np.ndarray] | None]:
        """At the first batch of a Keras 3 run: the PruningCallback's layers; the step and the weights, if known
        only from `_keras3_before`."""
        pruning = pruning_of(self.model)
        if pruning is None:
            raise v.invalid(
                "model",
                "a Keras 3 model pruned by a schedules.keras3.PruningCallback in the same fit, for WeightRewinding",
                self.model.name,
            )
        for name, schedule in pruning.schedules.items():
            check_rewind_step(self.rewind_step, schedule, where=f"layer {name!r}")
        kernels = [kernel for ks in pruning.kernels.values() for kernel in ks]
        index = {id(kernel): i for i, kernel in enumerate(kernels)}  # each kernel's place among the masks
        self._variables = [(w, index.get(id(w))) for w in self.model.weights]
        assert len({i for _, i in self._variables if i is not None}) == len(kernels), "a pruned kernel is a weight"
        self._pruning, self._seen = pruning, 0
        self._per_execution = int(getattr(self.model, "steps_per_execution", 1) or 1)
        before, values = self._before, None
        if pruning.events and before is not None and before[0] is pruning:  # it has pruned this batch already
            _, self._previous, values = before
        else:
            self._previous = self._mask_values()
        return self._done, values

    def _ran(self) -> range:
        """The steps the execution that just ended ran (none: nothing ran)."""
        if self._keras3:  # counted as the PruningCallback counts them
            first = self._done + 1
            self._done += self._per_execution
            events = len(self._pruning.events)
            self._pruned_now, self._seen = events > self._seen, events
            return range(first, self._done + 1)
        step = int(self._layers[0].pruning_step.numpy())
        ran = range(self._last_step + 1, step + 1)
        self._last_step = step
        return ran

    def _pruned(self, ran: range) -> bool:
        """Whether a pruned layer's schedule pruned at one of the steps `ran`."""
        if self._keras3:
            return self._pruned_now  # its PruningCallback pruned before this execution
        return any(self._lookups[id(layer)](t)[0] for layer in self._layers for t in ran)

    def _mask_values(self) -> list[np.ndarray]:
        if self._keras3:
            return keras3_masks(self._pruning)
        return [mask.numpy() for mask in self._masks]

    def _check_first_event(self) -> None:
        """A rewind point at or after a pruning event would record pruned weights: refused."""
        for layer in self._layers:
            check_rewind_step(self.rewind_step, layer.pruning_schedule, where=f"layer {layer.name!r}")

    # --- the work ----------------------------------------------------------------------------------

    def _record(self, step: int, values: list[np.ndarray] | None = None) -> None:
        """Records the weights (`values`, or else the model's now), and writes them to `filepath`."""
        variables = [variable for variable, _ in self._variables]
        self.recorded = values if values is not None else read_values(self.model, variables)
        if self.filepath is not None:
            names = [variable.path if self._keras3 else variable.name for variable in variables]
            write_recorded(self.filepath, self.recorded, step=step, names=names)

    def _load(self, step: int) -> None:
        """The recorded weights read back from `filepath`, for a run that starts at `step`, after `rewind_step`."""
        shapes = [tuple(variable.shape) for variable, _ in self._variables]
        self.recorded = read_recorded(self.filepath, rewind_step=self.rewind_step, step=step, shapes=shapes)

    def _rewind(self, step: int, masks: list[np.ndarray]) -> None:
        """Every recorded weight back, a pruned one times its mask (`masks`: the values of the masks, in order)."""
        assert self.recorded is not None, "rewinding after rewind_step: recorded then, or loaded at the start of fit"
        values = [
            (variable, recorded if i is None else recorded * masks[i])
            for (variable, i), recorded in zip(self._variables, self.recorded, strict=True)
        ]
        if self._keras3:
            if self.reset_optimizer:
                values += keras3_fresh_slots(self.model)
            keras3_assign(self.model, values)
        else:
            tf_keras.backend.batch_set_value(values)
            if self.reset_optimizer:
                reset_slots(self.model.optimizer, self.model.trainable_variables)
        self.rewinds.append(step)
