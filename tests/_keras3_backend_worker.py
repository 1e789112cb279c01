"""Two pruned `fit`s under the Keras backend of this process (`KERAS_BACKEND`), for `test_keras3.py`.

    KERAS_BACKEND=jax python _keras3_backend_worker.py OUT.npz

A small CNN whose weights are set from a seeded NumPy generator (the same on every backend), SGD,
the same batches (`shuffle=False`), `CubicSparsity(0.0, 0.8, 1, 50, frequency=7)`: eight pruning
events in 64 steps; then the same with 2:4 masks to 0.5 (arrays named `2:4_...`). A probe before the
callback keeps each kernel as the step starts; a probe after it keeps the masks after the step.
`OUT.npz` holds, per event `i` and layer, `before_<i>_<layer>` and `mask_<i>_<layer>`, the event's
`steps` and `sparsities`, the final kernels, and what a `PruningRecorder` recorded (`recorded`: step,
layer index, achieved sparsity per row).

Then `rewinding_run`: the same CNN and weights with SGD and momentum, pruned on three stairs (steps 6, 11
and 16) beside a `WeightRewinding(4)`, 32 steps; its arrays start with `rewind_` (see there).

Then `masked_run`: the same CNN, weights and batches with given masks (`MASKS`): a block-diagonal one on
"hidden", pruned by the schedule within it, and one on "logits", held. Its arrays start with `masked_`:
per event `before_<i>_hidden` and `mask_<i>_hidden`, and for both layers the final kernel and mask.
"""

from __future__ import annotations

import sys

import keras
import numpy as np

import schedules
from schedules.keras3 import PruningCallback

LAYERS = ("conv", "hidden", "logits")
#: The masked run's masks: two 32x4 blocks of "hidden" (64 -> 8) train; "logits" loses its first row.
MASKS = {
    "hidden": np.kron(np.eye(2), np.ones((32, 4))).astype(bool),
    "logits": np.arange(24).reshape(8, 3) >= 3,
}


class Before(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.kernels: dict[int, dict[str, np.ndarray]] = {}
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.step += 1
        if keras.backend.backend() == "jax":
            self.model.jax_state_sync()  # the trainer's state into the variables
        self.kernels[self.step] = {n: keras.ops.convert_to_numpy(self.model.get_layer(n).kernel) for n in LAYERS}


class After(keras.callbacks.Callback):
    def __init__(self, pruning: PruningCallback, layers: tuple[str, ...] = LAYERS) -> None:
        super().__init__()
        self.pruning, self.masks, self.step, self.layers = pruning, {}, 0, layers

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if keras.backend.backend() == "jax":
            self.model.jax_state_sync()  # fit holds the values in its state (the variables are emptied)
        self.masks[self.step] = {n: keras.ops.convert_to_numpy(self.pruning._masks[n][0]) for n in self.layers}


def build() -> keras.Model:
    """The small CNN of `LAYERS`, compiled with SGD (also `_keras3_devices_worker.py`'s model)."""
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(3, name="logits"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def pruned_fit(pruning: PruningCallback, prefix: str = "") -> dict[str, np.ndarray]:
    """The CNN, with weights from the seeded generator, pruned in 64 steps; its arrays, names after `prefix`."""
    model = build()
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.3)
    x, y = rng.normal(size=(256, 6, 6, 1)).astype("float32"), rng.integers(0, 3, size=256)
    before, after = Before(), After(pruning)
    recorder = schedules.PruningRecorder()
    callbacks = [before, pruning, recorder, after]  # the recorder reads the masks before `after` syncs
    model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)
    events = sorted({(step, sparsity) for step, _, sparsity in pruning.events})
    arrays = {"steps": np.array([s for s, _ in events]), "sparsities": np.array([s for _, s in events])}
    for i, (step, _) in enumerate(events):
        for name in LAYERS:
            arrays[f"before_{i}_{name}"] = before.kernels[step][name]
            arrays[f"mask_{i}_{name}"] = after.masks[step][name]
    rows = recorder.record.rows
    arrays["recorded"] = np.array([(row.step, LAYERS.index(row.layer), row.achieved) for row in rows])
    for name in LAYERS:
        arrays[f"final_{name}"] = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
    return {prefix + key: value for key, value in arrays.items()}


def main(out: str) -> None:
    """Unstructured to 0.8, and 2:4 (a cubic ramp to 0.5), with the same weights and batches; then rewinding,
    then given masks."""
    arrays = pruned_fit(PruningCallback(schedules.CubicSparsity(0.0, 0.8, 1, 50, frequency=7)))
    two_four = PruningCallback(schedules.CubicSparsity(0.0, 0.5, 1, 50, frequency=7), sparsity_m_by_n=(2, 4))
    arrays.update(pruned_fit(two_four, "2:4_"))
    arrays.update(rewinding_run())
    arrays.update(masked_run())
    arrays.update(channel_run())
    np.savez(out, **arrays)


def channel_run() -> dict[str, np.ndarray]:
    """`ChannelPruning` of the CNN to half its channels (`channels_...`): the kept channels and the kernels
    after the fit, and the predictions of the shrunk model and of the pruned one on the training inputs."""
    from schedules.channel_pruning import ChannelPruning
    from schedules.channels import shrink

    model = build()
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.3)
    x, y = rng.normal(size=(256, 6, 6, 1)).astype("float32"), rng.integers(0, 3, size=256)
    pruning = ChannelPruning(schedules.CubicSparsity(0.0, 0.5, 1, 30, frequency=5))
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[pruning])
    arrays = {f"channels_keep_{name}": keep for name, keep in pruning.keep.items()}
    for name in LAYERS:
        arrays[f"channels_final_{name}"] = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
    arrays["channels_pruned"] = keras.ops.convert_to_numpy(model.predict(x, verbose=0))
    arrays["channels_shrunk"] = keras.ops.convert_to_numpy(shrink(model, pruning.keep).predict(x, verbose=0))
    return arrays


class Steps(keras.callbacks.Callback):
    """After the rewinding: every weight, each layer's mask and the optimizer's slots at the end of every step."""

    def __init__(self, pruning: PruningCallback) -> None:
        super().__init__()
        self.pruning, self.states = pruning, {}

    def on_train_batch_end(self, batch, logs=None):
        if keras.backend.backend() == "jax":
            self.model.jax_state_sync()
        optimizer = self.model.optimizer
        step = int(keras.ops.convert_to_numpy(optimizer.iterations))
        self.states[step] = {
            "weights": [keras.ops.convert_to_numpy(w) for w in self.model.weights],
            "masks": {name: masks[0] for name, masks in self.pruning.masks.items()},
            # (under JAX the masks ride with the optimizer's variables during fit)
            "slots": [
                keras.ops.convert_to_numpy(w)
                for w in optimizer.variables
                if w.name not in ("iteration", "learning_rate", "mask")
            ],
        }


def rewinding_run() -> dict[str, np.ndarray]:
    """`rewind_steps` (the callback's), `rewind_names` (each weight's layer and name, in `model.weights`
    order), `rewind_iterations` (the optimizer's at the end); at step 4 and at each rewind step `t`: each
    weight, `rewind_<t>_<i>`; at each `t`, each layer's mask `rewind_mask_<t>_<layer>` and the largest
    magnitude among the optimizer's slots `rewind_slots_<t>`; each weight at the end, `rewind_final_<i>`."""
    model = build()
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), model.loss)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.3)
    x, y = rng.normal(size=(128, 6, 6, 1)).astype("float32"), rng.integers(0, 3, size=128)
    pruning = PruningCallback(schedules.StepSparsity.uniform(0.0, 0.6, 6, 16, num_stages=3))
    rewinding = schedules.WeightRewinding(4)
    steps = Steps(pruning)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[pruning, rewinding, steps])
    arrays = {
        "rewind_steps": np.array(rewinding.rewinds),
        "rewind_names": np.array(["/".join(w.path.split("/")[-2:]) for w in model.weights]),
        "rewind_iterations": keras.ops.convert_to_numpy(model.optimizer.iterations),
    }
    for t in [4, *rewinding.rewinds]:
        state = steps.states[t]
        arrays.update({f"rewind_{t}_{i}": value for i, value in enumerate(state["weights"])})
        arrays.update({f"rewind_mask_{t}_{name}": mask for name, mask in state["masks"].items()})
        arrays[f"rewind_slots_{t}"] = np.array(max(float(np.max(np.abs(slot))) for slot in state["slots"]))
    arrays.update({f"rewind_final_{i}": value for i, value in enumerate(steps.states[max(steps.states)]["weights"])})
    return arrays


def masked_run() -> dict[str, np.ndarray]:
    """The masked run's arrays (`masked_...`), with `pruned_fit`'s weights and batches."""
    model = build()
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.3)
    x, y = rng.normal(size=(256, 6, 6, 1)).astype("float32"), rng.integers(0, 3, size=256)
    pruning = PruningCallback(schedules.CubicSparsity(0.0, 0.8, 1, 50, frequency=7), layers=["hidden"], masks=MASKS)
    before, after = Before(), After(pruning, tuple(MASKS))
    model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0, callbacks=[before, pruning, after])
    steps = sorted({step for step, _, _ in pruning.events})
    arrays = {"masked_steps": np.array(steps), "masked_sparsities": np.array([s for _, _, s in pruning.events])}
    for i, step in enumerate(steps):
        arrays[f"masked_before_{i}_hidden"] = before.kernels[step]["hidden"]
        arrays[f"masked_mask_{i}_hidden"] = after.masks[step]["hidden"]
    for name in MASKS:
        arrays[f"masked_final_{name}"] = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
        arrays[f"masked_final_mask_{name}"] = pruning.masks[name][0]
    return arrays


if __name__ == "__main__":
    main(sys.argv[1])
