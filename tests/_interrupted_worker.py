"""One training process of `test_interrupted.py`: train, checkpoint, maybe die, resume.

    python _interrupted_worker.py VARIANT RUN_DIR OUT_DIR --epochs E --steps-per-epoch N
                                  [--kill-at-step S]

Trains `_models.build_branch_model` (one pruned branch per case of
`_registry.FRESH_PROCESS_CASES["interrupted"]`, plus tfmot's two as controls), compiled with
Adam, for `E x N` batches of 8, deterministically: fixed seeds and data, `shuffle=False`, op
determinism, one thread.
The callbacks are `UpdatePruningStep` and the variant's checkpointing:

* `reference`: none, the uninterrupted run;
* `backup`: `keras.callbacks.BackupAndRestore(RUN_DIR/backup)` after `UpdatePruningStep`,
  a backup at each epoch end;
* `keras`, `h5`, `savedmodel`: `ModelCheckpoint` after `UpdatePruningStep`, saving the
  whole model (with its optimizer) at each epoch end to `RUN_DIR/epochNN.keras`,
  `RUN_DIR/epochNN.h5` or the SavedModel directory `RUN_DIR/epochNN` (NN = epochs done);
* `wrong_order`: `ModelCheckpoint` to `RUN_DIR/unmaskedNN.keras` *before*
  `UpdatePruningStep` (the wrong order, to show what it costs);
* `checkpoints`: `BackupAndRestore` and the four `ModelCheckpoint`s above at once, each in
  its place, so that one killed run leaves a checkpoint of every kind (start only: a
  restart names its variant).

The same command line starts a run and restarts it, as a job supervisor would: with
`BackupAndRestore`, `fit` restores the backup itself; with `ModelCheckpoint` the worker
loads the variant's latest checkpoint in RUN_DIR (`import schedules`, `prune_scope()`,
no custom_objects; for a SavedModel also `load_weights`, see `load_checkpoint`) and
continues with `fit(..., initial_epoch=NN)`.

`--kill-at-step S`: SIGKILL this process right after training step S (the wrappers'
`pruning_step`), after writing `killed.json`.

Writes to OUT_DIR (not when killed, except `killed.json`):

* `restored.npz` (restarts only): the state right after restoring, before any batch;
* `epochNN.npz`: the state after epoch NN ended (after `UpdatePruningStep` re-masked);
* `final.npz`: the state at the end;
* `report.json`: what the run restored and did.

A state holds every model weight as `weights/<layer>/<i>` (`layer.weights[i]`: names
that do not depend on how a format renames variables), each pruned layer's kernel and
mask as `kernel/<wrapper>` and `mask/<wrapper>`, `pruning_step`, the optimizer's
`iterations`, and every optimizer variable as `optimizer/<i>` (`iterations`, then Adam's
moments once it has created them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import _models  # tests/ is sys.path[0]: this script's directory
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from _registry import CASES, FRESH_PROCESS_CASES

import schedules  # registers our schedules with tf-keras, which loading needs

SEED = 0
LEARNING_RATE = 0.01
#: ModelCheckpoint's file name pattern by variant (Keras formats `{epoch}` 1-based: epochs done).
CHECKPOINT_NAMES = {
    "keras": "epoch{epoch:02d}.keras",
    "h5": "epoch{epoch:02d}.h5",
    "savedmodel": "epoch{epoch:02d}",
    "wrong_order": "unmasked{epoch:02d}.keras",
}
#: The checkpoint listed before UpdatePruningStep.
CHECKPOINT_FIRST = "wrong_order"
VARIANTS = ("reference", "backup", *CHECKPOINT_NAMES, "checkpoints")


def layer_schedules() -> dict[str, object]:
    """The slow subset's cases (ours) and tfmot's two (controls), in a fixed order."""
    return {
        **{name: CASES[name](0) for name in sorted(FRESH_PROCESS_CASES["interrupted"])},
        **{name: factory() for name, factory in _models.TFMOT_SCHEDULES.items()},
    }


def build() -> keras.Model:
    model = _models.build_branch_model(layer_schedules(), seed=SEED)
    # Adam has state (two moments per weight, and `iterations` for its bias correction),
    # so a resumed run that lost the optimizer's state ends with other weights and masks.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="mse")
    return model


def state(model: keras.Model) -> dict[str, np.ndarray]:
    out = {}
    for layer in model.layers:
        for i, weight in enumerate(layer.weights):
            out[f"weights/{layer.name}/{i}"] = weight.numpy()
    out.update({f"mask/{name}": mask for name, mask in _models.masks(model).items()})
    out.update({f"kernel/{name}": kernel for name, kernel in _models.kernels(model).items()})
    out["pruning_step"] = np.int64(_models.pruning_step(model))
    out["iterations"] = np.int64(model.optimizer.iterations.numpy())
    # `iterations`, then Adam's two moments per trainable weight once it has created them.
    out.update({f"optimizer/{i}": variable.numpy() for i, variable in enumerate(model.optimizer.variables)})
    return out


def write_json(path: Path, data: dict) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


class Observer(keras.callbacks.Callback):
    """Goes last, so it sees what `BackupAndRestore.on_train_begin` restored and the
    weights `UpdatePruningStep.on_epoch_end` re-masked. Records the restored state, the
    first epoch and step run, a snapshot at each epoch end; kills after `kill_at_step`."""

    def __init__(self, out: Path, report: dict, kill_at_step: int | None) -> None:
        super().__init__()
        self.out, self.report, self.kill_at_step = out, report, kill_at_step

    def on_train_begin(self, logs=None):
        self.report["step_at_train_begin"] = _models.pruning_step(self.model)
        self.report["iterations_at_train_begin"] = int(self.model.optimizer.iterations.numpy())
        if self.report["restarted"] and self.kill_at_step is None:
            np.savez(self.out / "restored.npz", **state(self.model))

    def on_epoch_begin(self, epoch, logs=None):
        self.report.setdefault("first_epoch", epoch)
        self.report["epochs"].append({"epoch": epoch, "step_at_begin": _models.pruning_step(self.model)})

    def on_train_batch_end(self, batch, logs=None):
        step = _models.pruning_step(self.model)
        self.report.setdefault("first_batch", batch)
        self.report.setdefault("step_after_first_batch", step)
        if step == self.kill_at_step:
            write_json(self.out / "killed.json", {"step": step, "epoch": self.report["epochs"][-1]["epoch"]})
            os.kill(os.getpid(), signal.SIGKILL)

    def on_epoch_end(self, epoch, logs=None):
        np.savez(self.out / f"epoch{epoch + 1:02d}.npz", **state(self.model))
        self.report["epochs"][-1]["step_at_end"] = _models.pruning_step(self.model)


def latest_checkpoint(variant: str, run_dir: Path) -> tuple[Path, int] | None:
    """The ModelCheckpoint of the highest epoch in `run_dir`, and that epoch."""
    pattern = re.compile(re.escape(CHECKPOINT_NAMES[variant]).replace(r"\{epoch:02d\}", r"(\d+)") + "$")
    found = [(int(m.group(1)), path) for path in run_dir.iterdir() if (m := pattern.match(path.name))]
    if not found:
        return None
    epoch, path = max(found, key=lambda item: item[0])
    return path, epoch


def load_checkpoint(variant: str, path: Path, report: dict) -> keras.Model:
    # Plain tf-keras first, to pin what it restores: no optimizer state from a SavedModel
    # (no `iterations`, no Adam moments: tensorflow/tensorflow#44670).
    with tfmot.sparsity.keras.prune_scope():
        plain = keras.models.load_model(path)
    report["step_after_load_model"] = _models.pruning_step(plain)
    report["iterations_after_load_model"] = int(plain.optimizer.iterations.numpy())
    del plain
    # The restart itself uses schedules.load_model, which for a SavedModel also calls
    # `load_weights` on the same directory (restoring the moments when Adam creates them).
    return schedules.load_model(path)


def pruned_layer_weights(model: keras.Model) -> dict[str, list[str]]:
    """Each pruned wrapper's variables, by their last name component."""
    return {
        layer.name: [weight.name.rsplit("/", 1)[-1].split(":")[0] for weight in layer.weights]
        for layer in _models.pruned_layers(model)
    }


def configure_tensorflow() -> None:
    """The same single-threaded, deterministic kernels in every process. In `main`, not at
    import: pytest's `--doctest-modules` imports this file into the test process."""
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--steps-per-epoch", type=int, required=True)
    parser.add_argument("--kill-at-step", type=int)
    args = parser.parse_args()
    configure_tensorflow()
    variant, run_dir, out = args.variant, args.run_dir, args.out_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file", UserWarning)

    keras.utils.set_random_seed(SEED)
    x, y = _models.make_data(args.steps_per_epoch * _models.BATCH_SIZE, seed=SEED)
    report: dict = {"variant": variant, "kill_at_step": args.kill_at_step, "epochs": []}

    initial_epoch = 0
    latest = latest_checkpoint(variant, run_dir) if variant in CHECKPOINT_NAMES else None
    if latest is not None:
        path, initial_epoch = latest
        model = load_checkpoint(variant, path, report)
        report.update(restarted=True, checkpoint=path.name)
    else:
        model = build()
        # BackupAndRestore restores inside `fit`, if it finds a backup.
        report["restarted"] = variant == "backup" and any((run_dir / "backup").rglob("checkpoint"))
    report["pruned_layer_weights"] = pruned_layer_weights(model)

    # The right order: UpdatePruningStep.on_epoch_end re-masks the weights (masked weights
    # to exact zeros) *before* a checkpoint callback listed after it saves them.
    before: list[keras.callbacks.Callback] = []
    after: list[keras.callbacks.Callback] = []
    if variant in ("backup", "checkpoints"):
        after.append(keras.callbacks.BackupAndRestore(str(run_dir / "backup")))
    if variant == "checkpoints":
        checkpoints = list(CHECKPOINT_NAMES)
    else:
        checkpoints = [variant] if variant in CHECKPOINT_NAMES else []
    for name in checkpoints:
        callback = keras.callbacks.ModelCheckpoint(str(run_dir / CHECKPOINT_NAMES[name]))
        (before if name == CHECKPOINT_FIRST else after).append(callback)
    ordered = [*before, tfmot.sparsity.keras.UpdatePruningStep(), *after]
    model.fit(
        x,
        y,
        batch_size=_models.BATCH_SIZE,
        epochs=args.epochs,
        initial_epoch=initial_epoch,
        shuffle=False,
        verbose=0,
        callbacks=[*ordered, Observer(out, report, args.kill_at_step)],
    )
    if args.kill_at_step is not None:
        sys.exit(f"training ended without reaching --kill-at-step {args.kill_at_step}")
    np.savez(out / "final.npz", **state(model))
    report["final_step"] = _models.pruning_step(model)
    write_json(out / "report.json", report)


if __name__ == "__main__":
    main()
