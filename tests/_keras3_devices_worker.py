"""The Keras 3 callback on two devices of one host, in a fresh process, for `test_keras3.py`.

    KERAS_BACKEND=tensorflow python _keras3_devices_worker.py mirrored OUT.json
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python _keras3_devices_worker.py jax OUT.json

* `mirrored`: `tf.distribute.MirroredStrategy` over two logical CPUs (configured before TensorFlow
  starts its devices: hence a fresh process).
* `jax`: `keras.distribution.DataParallel` over two host devices (`XLA_FLAGS`, read when JAX starts).

The backend worker's small CNN (`build`), `CubicSparsity(0.0, 0.8, 1, 30, frequency=5)`, 48 steps of
global batches of 16. After every step a probe reads each pruned layer's mask on every replica (its
bytes as SHA-1 digests, and its kept count). `OUT.json`: the devices, per step the masks' digests and
counts per replica, the pruning steps, and each layer's final kernel size and count of non-zeros; then the
same for 2:4 masks ramped to 0.5 on a fresh model (`2:4 steps`, and `2:4 final`: the final kernels).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys

import keras
import numpy as np
from _keras3_backend_worker import LAYERS, build

import schedules
from schedules.keras3 import PruningCallback

#: "mirrored" or "jax", set by `main` (pytest imports this module for nothing else: no side effects here).
MODE = ""


def replicas(variable) -> list[np.ndarray]:
    """The value of `variable` on every device that holds it."""
    value = variable.value
    if MODE == "jax":
        return [np.asarray(shard.data) for shard in value.addressable_shards]
    return [np.asarray(component) for component in getattr(variable._value, "values", [value])]


class Probe(keras.callbacks.Callback):
    def __init__(self, pruning: PruningCallback) -> None:
        super().__init__()
        self.pruning, self.steps = pruning, []

    def on_train_batch_end(self, batch, logs=None):
        if MODE == "jax":
            self.model.jax_state_sync()
        row = {}
        for name in LAYERS:
            values = replicas(self.pruning._masks[name][0])
            row[name] = {
                "digests": [hashlib.sha1(v.tobytes()).hexdigest() for v in values],
                "kept": [int(v.sum()) for v in values],
            }
        self.steps.append(row)


def main(mode: str, out: str) -> None:
    global MODE
    MODE = mode
    if mode == "mirrored":  # two logical CPUs, before TensorFlow starts its devices (no op has run yet)
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    keras.utils.set_random_seed(0)
    if mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        devices = list(strategy.extended.worker_devices)
        with strategy.scope():
            model = build()
    else:
        import jax

        devices = [str(d) for d in jax.devices()]
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
        model = build()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16 * 16, 6, 6, 1)).astype("float32"), rng.integers(0, 3, size=16 * 16)
    pruning = PruningCallback(schedules.CubicSparsity(0.0, 0.8, 1, 30, frequency=5))
    probe = Probe(pruning)
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[pruning, probe])
    # Then 2:4 (a cubic ramp to 0.5) on a fresh model of the same scope: the pattern's NumPy mask update.
    with strategy.scope() if mode == "mirrored" else contextlib.nullcontext():
        patterned = build()
    two_four = PruningCallback(schedules.CubicSparsity(0.0, 0.5, 1, 30, frequency=5), sparsity_m_by_n=(2, 4))
    two_four_probe = Probe(two_four)
    patterned.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[two_four, two_four_probe])
    final, two_four_final = {}, {}
    for name in LAYERS:
        kernel = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
        final[name] = {"size": int(kernel.size), "nonzero": int(np.count_nonzero(kernel))}
        two_four_final[name] = keras.ops.convert_to_numpy(patterned.get_layer(name).kernel).tolist()
    report = {
        "devices": devices,
        "steps": probe.steps,
        "events": sorted({step for step, _, _ in pruning.events}),
        "final": final,
        "2:4 steps": two_four_probe.steps,
        "2:4 final": two_four_final,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
