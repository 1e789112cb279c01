"""Keras callbacks for pruned training: `PruningRecorder` (what the masks did) and `CheckPlan`.

Use them next to `tfmot.sparsity.keras.UpdatePruningStep()`.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Any

import tensorflow as tf
import tf_keras

from schedules._tfmot import PruningSchedule
from schedules.evaluation import EventLookup
from schedules.inspection import pruned_layers, sparsity_report, unwrapped_name
from schedules.keras3 import pruning_of
from schedules.keras3_layers import is_keras3_model
from schedules.plan import PlanWarning, check_plan
from schedules.record import RecordRow, SparsityRecord
from schedules.record_files import check_extension

__all__ = ["CheckPlan", "PruningRecorder"]


class PruningRecorder(tf_keras.callbacks.Callback):
    """Records scheduled and achieved mask sparsity at every pruning step of `fit`.

    During `fit` it watches every `PruneLowMagnitude` wrapper of the model and,
    at each step where the wrapper's schedule says `should_prune`, records for
    every pruned weight the scheduled sparsity and the sparsity of its mask
    (`1 - mean(mask)`). Use it next to
    `tfmot.sparsity.keras.UpdatePruningStep()`; the record is in
    `recorder.record` (a `SparsityRecord`) and, if `path` is given, saved there
    (`.json` or `.csv`) at the end of training. It reads the masks after every
    batch, so with `steps_per_execution > 1` it sees only the pruning steps
    that end an execution.

    On a Keras 3 model it records the mask updates of the model's
    `schedules.keras3.PruningCallback` in the same way, by the layer's own name.

    With `log_dir` it also writes TensorBoard scalars at every pruning step,
    at that step: `LAYER/WEIGHT/scheduled` and `LAYER/WEIGHT/achieved` for
    every weight it records (the layer's own name, without tfmot's
    `prune_low_magnitude_`), and `overall/achieved`, the model's overall
    sparsity (zeros in `weight * mask` over every prunable weight, the
    unpruned layers' included). Writing them needs the `tensorboard`
    package (`pip install "tfmot-schedules[tensorboard]"`), which
    TensorFlow 2.21 no longer installs.

    ```python
    recorder = PruningRecorder("sparsity.csv", log_dir="logs/pruning")
    model.fit(x, y, callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), recorder])
    plot_record(recorder.record).figure.savefig("sparsity.png")
    # tensorboard --logdir logs
    ```
    """

    def __init__(self, path: str | os.PathLike | None = None, *, log_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        if path is not None:
            check_extension(path)
        if log_dir is not None:
            if not isinstance(log_dir, (str, os.PathLike)):
                raise TypeError(f"Argument `log_dir` must be a directory path or None. Received: log_dir={log_dir!r}")
            if importlib.util.find_spec("tensorboard") is None:
                raise ImportError(
                    "PruningRecorder(log_dir=...) writes TensorBoard logs and needs the tensorboard package: "
                    'pip install "tfmot-schedules[tensorboard]" (or pip install tensorboard)'
                )
            log_dir = os.fspath(log_dir)
        self.log_dir = log_dir
        self._writer: Any = None  # a tf.summary writer
        self._layers: list[Any] | None = None  # the pruned wrappers, found at the first batch of each fit
        self._seen = 0
        self.path = path
        self.record = SparsityRecord()
        self._events: dict[int, EventLookup] = {}
        self._last_step: dict[int, int] = {}

    def on_train_begin(self, logs=None) -> None:
        self._layers = None  # found at the first batch, once the model is built
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self._layers is None:
            self._layers = [] if is_keras3_model(self.model) else pruned_layers(self.model, built=True)
            self._seen = 0
        layers = self._layers
        first = len(self.record.rows)
        pruning = pruning_of(self.model) if is_keras3_model(self.model) else None
        if pruning is not None:
            self._record_keras3(pruning)
        for layer in layers:
            step = int(layer.pruning_step.numpy())
            if step < 0 or self._last_step.get(id(layer)) == step:
                continue
            self._last_step[id(layer)] = step
            lookup = self._events.setdefault(id(layer), EventLookup(layer.pruning_schedule))
            should_prune, scheduled = lookup(step)
            if not should_prune:
                continue
            for weight, mask, _threshold in layer.pruning_vars:
                mask_value = mask.numpy()
                self.record.rows.append(
                    RecordRow(
                        step=step,
                        layer=layer.name,
                        weight=_short_name(weight.name),
                        size=int(mask_value.size),
                        scheduled=scheduled,
                        achieved=float(1.0 - mask_value.mean()),
                    )
                )
        if self._writer is not None and len(self.record.rows) > first:
            self._log(self.record.rows[first:], layers)

    def _record_keras3(self, pruning) -> None:
        """The mask updates a Keras 3 model's `schedules.keras3.PruningCallback` made since the last batch."""
        events, self._seen = pruning.events[self._seen :], len(pruning.events)
        if not events:
            return
        masks, kernels = pruning.masks, pruning.kernels
        for step, name, scheduled in events:
            for kernel, mask_value in zip(kernels[name], masks[name], strict=True):
                self.record.rows.append(
                    RecordRow(
                        step=step,
                        layer=name,
                        weight=_short_name(kernel.name),
                        size=int(mask_value.size),
                        scheduled=scheduled,
                        achieved=float(1.0 - mask_value.mean()),
                    )
                )

    def _log(self, rows: list[RecordRow], layers: list[Any]) -> None:
        names = {layer.name: unwrapped_name(layer) for layer in layers}
        with self._writer.as_default():
            for row in rows:
                tag = f"{names.get(row.layer, row.layer)}/{row.weight}"
                tf.summary.scalar(f"{tag}/scheduled", row.scheduled, step=row.step)
                tf.summary.scalar(f"{tag}/achieved", row.achieved, step=row.step)
            tf.summary.scalar("overall/achieved", sparsity_report(self.model).sparsity, step=rows[-1].step)

    def on_train_end(self, logs=None) -> None:
        if self.path is not None:
            self.record.save(self.path)
        if self._writer is not None:
            self._writer.flush()


def _short_name(name: str) -> str:
    return name.rsplit("/", 1)[-1].split(":")[0]


class CheckPlan(tf_keras.callbacks.Callback):
    """At the start of `fit`, runs `check_plan` for every pruned layer's schedule.

    The run is `epochs * steps_per_epoch` steps as `fit` knows them, so a
    schedule that prunes nothing or is cut short in *this* run is reported
    before the first batch, as a `PlanWarning` naming the layers (one per
    schedule object). Turn it into an error with
    `warnings.simplefilter("error", schedules.PlanWarning)`.

    ```python
    model.fit(x, y, epochs=10, callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), schedules.CheckPlan()])
    ```

    On a Keras 3 model it checks the schedules of the `schedules.keras3.PruningCallback`
    of the same `fit`, before the first batch (once that callback has chosen each layer's
    schedule).
    """

    def on_train_begin(self, logs=None) -> None:
        self._pending = is_keras3_model(self.model)  # a Keras 3 model: its PruningCallback is known at the first batch
        if not self._pending:
            self._check({layer.name: layer.pruning_schedule for layer in pruned_layers(self.model)})

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if getattr(self, "_pending", False):
            self._pending = False
            pruning = pruning_of(self.model)
            if pruning is None:
                warnings.warn(
                    "CheckPlan found no schedules.keras3.PruningCallback in this fit of a Keras 3 model: nothing to "
                    "check (pass the PruningCallback to fit, with CheckPlan)",
                    PlanWarning,
                    stacklevel=2,
                )
                return
            self._check(pruning.schedules)

    def _check(self, schedules: dict[str, Any]) -> None:
        """Warns once per schedule object of `{layer name: schedule}` about what it fails to do in this fit."""
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        if not epochs or not steps:
            warnings.warn(
                "CheckPlan cannot check the schedules: fit does not know the number of steps per epoch "
                "(pass steps_per_epoch to fit)",
                PlanWarning,
                stacklevel=3,
            )
            return
        by_schedule: dict[int, tuple[PruningSchedule, list[str]]] = {}
        for name, schedule in schedules.items():
            if isinstance(schedule, PruningSchedule):  # (a schedule that did not reload is a string)
                by_schedule.setdefault(id(schedule), (schedule, []))[1].append(name)
        for schedule, layers in by_schedule.values():
            for problem in check_plan(schedule, int(epochs) * int(steps), warn=False):
                warnings.warn(f"layers {', '.join(sorted(layers))}: {problem}", PlanWarning, stacklevel=3)
