"""Trains a pruned model under a `tf.distribute` strategy and reports every replica's masks.

Run by `tests/test_distribute.py` in fresh processes (pytest only imports it for its
constants; importing it does nothing else):

    python tests/_distribute_worker.py mirrored OUT_DIR
    TF_CONFIG='{"cluster": ..., "task": ...}' python tests/_distribute_worker.py multiworker OUT_DIR

* `mirrored`: `MirroredStrategy` over two logical CPU devices of this process. They must
  be configured before TensorFlow initializes its devices, hence a fresh process.
* `multiworker`: `MultiWorkerMirroredStrategy()` (default communication: ring
  all-reduce on CPU), one replica per worker, the cluster read from `TF_CONFIG`. Every
  worker runs this same script with the same seed and data; the chief (worker 0) saves
  the trained model to `OUT_DIR/model.keras`, the other workers save to a scratch
  directory that they delete (every worker must call `save`).

The model is `_models.build_branch_model` with one pruned layer per case of
`_registry.FRESH_PROCESS_CASES["distribute"]` plus tfmot's ConstantSparsity and PolynomialDecay, trained
`EPOCHS * STEPS_PER_EPOCH` steps (past the last change of their schedules) on global batches of
`GLOBAL_BATCH_SIZE`, with `UpdatePruningStep`. It writes to OUT_DIR:

* `report.json`: the strategy and devices; per model weight, a digest of each local
  replica's value; per schedule name, the wrapper, its weight count `size`, the final
  `pruning_step`, mask sparsity and scheduled sparsity, tfmot's expected mask sparsity,
  and after every step (record 0: before training) each local replica's `step`, `kept`
  (mask entries equal to 1) and `digest` (SHA-1 of the mask's bytes);
* `masks.npz`: the final mask and kernel of every layer on every local replica, as
  `"<name>/mask/<replica>"` and `"<name>/kernel/<replica>"`.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODE = sys.argv[1] if __name__ == "__main__" else None

import tensorflow as tf  # noqa: E402

if MODE == "mirrored":
    # Before anything initializes the devices: split the one physical CPU in two.
    (_cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import _models  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402
from _registry import CASES, FRESH_PROCESS_CASES  # noqa: E402

#: Two epochs, so `UpdatePruningStep.on_epoch_end` (the re-masking in cross-replica
#: context) runs in the middle of training too; in all, past the last change of the
#: run's schedules (cubic's end, step 320; test_distribute checks it).
EPOCHS = 2
STEPS_PER_EPOCH = 165
STEPS = EPOCHS * STEPS_PER_EPOCH
#: The batch of one training step, split across all replicas (of all workers).
GLOBAL_BATCH_SIZE = 16
NUM_REPLICAS = 2


def layer_schedules() -> dict[str, object]:
    """One pruned layer per case of the slow subset, plus tfmot's two as a reference."""
    return {
        **{name: CASES[name](0) for name in sorted(FRESH_PROCESS_CASES["distribute"])},
        **{name: factory() for name, factory in _models.TFMOT_SCHEDULES.items()},
    }


def make_strategy(mode: str) -> tf.distribute.Strategy:
    if mode == "mirrored":
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        assert len(devices) == NUM_REPLICAS, devices
        return tf.distribute.MirroredStrategy(devices)
    if mode == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise SystemExit(f"unknown mode {mode!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = strategy.cluster_resolver
    if resolver is None or resolver.task_type in (None, "chief"):
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def make_dataset() -> tf.data.Dataset:
    """The same global batches on every worker. With `DATA` sharding, Keras splits each
    global batch across the replicas: each worker trains on its part of every batch."""
    x, y = _models.make_data(STEPS_PER_EPOCH * GLOBAL_BATCH_SIZE)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH_SIZE).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def digest(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


class ReplicaRecorder(keras.callbacks.Callback):
    """Before training and after every batch, reads each local replica's pruning state."""

    def __init__(self, strategy: tf.distribute.Strategy, wrappers: dict[str, object]) -> None:
        super().__init__()
        self.local = strategy.experimental_local_results
        self.wrappers = wrappers  # schedule name -> PruneLowMagnitude
        self.records = {name: {"step": [], "kept": [], "digest": []} for name in wrappers}

    def on_train_begin(self, logs=None):
        self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._record()

    def _record(self) -> None:
        for name, wrapper in self.wrappers.items():
            masks = [mask.numpy() for mask in self.local(wrapper.pruning_vars[0][1])]
            record = self.records[name]
            record["step"].append([int(step.numpy()) for step in self.local(wrapper.pruning_step)])
            record["kept"].append([int(mask.sum()) for mask in masks])
            record["digest"].append([digest(mask) for mask in masks])


def main(mode: str, out: str) -> None:
    started = time.monotonic()
    strategy = make_strategy(mode)
    schedules_by_name = layer_schedules()
    with strategy.scope():
        model = _models.build_branch_model(schedules_by_name)
    wrappers = {}
    for name in schedules_by_name:
        (wrappers[name],) = [
            layer for layer in model.layers if layer.name.endswith((f"_conv_{name}", f"_dense_{name}"))
        ]
    recorder = ReplicaRecorder(strategy, wrappers)
    fit_started = time.monotonic()
    model.fit(
        make_dataset(),
        epochs=EPOCHS,
        steps_per_epoch=STEPS_PER_EPOCH,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), recorder],
    )
    fit_seconds = time.monotonic() - fit_started

    local = strategy.experimental_local_results
    arrays, layers = {}, {}
    for name, wrapper in wrappers.items():
        weight, mask, _ = wrapper.pruning_vars[0]
        masks = [m.numpy() for m in local(mask)]
        for replica, (m, w) in enumerate(zip(masks, local(weight), strict=True)):
            arrays[f"{name}/mask/{replica}"] = m
            arrays[f"{name}/kernel/{replica}"] = w.numpy()
        steps = [int(step.numpy()) for step in local(wrapper.pruning_step)]
        _, scheduled = schedules_by_name[name](tf.constant(steps[0], tf.int64))
        n = int(masks[0].size)
        layers[name] = {
            "layer": wrapper.name,
            "size": n,
            "final_step": steps,
            "mask_sparsity": [1.0 - float(m.sum()) / n for m in masks],
            "replicas_identical": all(np.array_equal(m, masks[0]) for m in masks),
            "final_scheduled_sparsity": float(scheduled),
            "expected_mask_sparsity": _models.expected_mask_sparsity(float(scheduled), n),
            **recorder.records[name],
        }
    np.savez(os.path.join(out, "masks.npz"), **arrays)

    # Every worker saves (saving may run collective ops); only the chief's file is kept.
    chief = is_chief(strategy)
    save_dir = out if chief else os.path.join(out, f"scratch-{strategy.cluster_resolver.task_id}")
    os.makedirs(save_dir, exist_ok=True)
    model.save(os.path.join(save_dir, "model.keras"))
    if not chief:
        shutil.rmtree(save_dir)

    resolver = strategy.cluster_resolver
    report = {
        "mode": mode,
        "strategy": type(strategy).__name__,
        "num_replicas_in_sync": strategy.num_replicas_in_sync,
        "worker_devices": list(strategy.extended.worker_devices),
        "task": None if resolver is None else [resolver.task_type, resolver.task_id],
        "chief": chief,
        "steps": STEPS,
        "global_batch_size": GLOBAL_BATCH_SIZE,
        "weights": {w.name: [digest(v.numpy()) for v in local(w)] for w in model.weights},
        "seconds": time.monotonic() - started,
        "fit_seconds": fit_seconds,
        "cpu_seconds": time.process_time(),
        "layers": layers,
    }
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f)
    if mode == "multiworker":
        # A barrier: no worker exits (taking its part of the cluster down) before every worker has written its
        # report, after its last collective. On files: a collective barrier's last receive could still be in
        # flight on one worker when the other, done, exited ("Socket closed", seen once in CI).
        reports = os.path.join(os.path.dirname(os.path.abspath(out)), "*", "report.json")
        deadline = time.monotonic() + 300
        while len(glob.glob(reports)) < strategy.num_replicas_in_sync:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the other workers wrote no {reports} in 300 s")
            time.sleep(0.05)


if __name__ == "__main__":
    main(MODE, sys.argv[2])
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is written; do not wait at exit for the other workers' gRPC servers.
    os._exit(0)
