"""The two processes of `test_keras3.py`'s resume test: save in one, resume in another.

    python _keras3_resume_worker.py save DIR      # every case: the uninterrupted run, and saves on the way
    python _keras3_resume_worker.py resume DIR    # every save: reloaded, resumed, compared; writes DIR/resumed.json

The model is the digits MLP `Dense(32, relu) -> Dense(10)`, Adam 1e-3, batches of 32 from the
first 1,024 of scikit-learn's digits (32 steps an epoch), `shuffle=False`, fixed seeds, op
determinism. Each case of `CASES` runs once uninterrupted (`DIR/<case>.npz` holds its final
weights) and is saved on the way, as a user would:

* `"fits"` cases: a second model trains one epoch in its own `fit` and is saved with `model.save`
  (`DIR/<case>-32.keras`); the resumed run loads it and trains one more epoch with a new callback.
* `"steps"` cases: the uninterrupted run saves the model after each listed step from a callback
  (as `ModelCheckpoint(save_freq=1)` would); the resumed run trains the rest of the epoch.
* `zero_at`: after that step, both runs set a kept weight of `"hidden"` to exactly 0 (so that the
  kernels' zeros are not the masks).

`resume` loads each save with `schedules.keras3.load_model` (and, for the cases in `PLAIN`, with
plain `keras.models.load_model` too), checks that it predicts what the saved model did, resumes with
a new `PruningCallback(schedule)`, and records the largest difference from the uninterrupted run's
final weights and the warnings it gave.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

import schedules
from schedules.keras3 import PruningCallback

STEPS, BATCH = 32, 32  # steps an epoch, batch size
CASES = {
    # the rows of issue 28: one fit of 2 epochs against fit 1 epoch, save, reload, fit 1 epoch
    "cubic": {"schedule": ("CubicSparsity", (0.0, 0.8, 0, 63), {"frequency": 4}), "fits": 2},
    "cyclic3": {"schedule": ("CyclicSparsity", (0.0, 0.8, 0, 59), {"num_cycles": 3, "frequency": 4}), "fits": 2},
    # the save falls right after the restart at step 32 (the second cycle's first pruning step, at sparsity 0)
    "cyclic2": {"schedule": ("CyclicSparsity", (0.0, 0.8, 0, 63), {"num_cycles": 2, "frequency": 4}), "fits": 2},
    # cycles of 8 steps (0-7, 8-15, 16-23), an event every 2: saved after every step of the second cycle, and
    # after the first step of the third (its restart)
    "cycle": {
        "schedule": ("CyclicSparsity", (0.0, 0.8, 0, 23), {"num_cycles": 3, "frequency": 2}),
        "steps": list(range(8, 17)),
    },
    # the schedule ends at step 16; after step 24 a kept weight is set to exactly 0, and the model saved
    "kept_zero": {"schedule": ("CubicSparsity", (0.0, 0.5, 0, 16), {"frequency": 4}), "steps": [24], "zero_at": 24},
}
PLAIN = ("cyclic2", "kept_zero")  # also resumed after a plain keras.models.load_model: the kernels' zeros


def data() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return digits.data[: STEPS * BATCH].astype("float32") / 16, digits.target[: STEPS * BATCH]


def build() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu", name="hidden"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def schedule(case: str) -> schedules.SparsitySchedule:
    name, args, kwargs = CASES[case]["schedule"]
    return getattr(schedules, name)(*args, **kwargs)


class SaveAndZero(keras.callbacks.Callback):
    """After the pruning callback: at the end of the listed steps, a kept weight set to 0, the model saved."""

    def __init__(self, case: str, directory: Path) -> None:
        super().__init__()
        self.case, self.directory = case, directory

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        if step == CASES[self.case].get("zero_at"):
            zero_a_kept_weight(self.model)
        if step in CASES[self.case].get("steps", ()):
            self.model.save(self.directory / f"{self.case}-{step}.keras")


class ZeroAfter(keras.callbacks.Callback):
    """In a resumed run: the same kept weight set to 0 at the same step as in the uninterrupted run."""

    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if int(self.model.optimizer.iterations.numpy()) == CASES[self.case].get("zero_at"):
            zero_a_kept_weight(self.model)


def zero_a_kept_weight(model: keras.Model) -> None:
    kernel = model.get_layer("hidden").kernel
    value = kernel.numpy()
    index = np.unravel_index(np.argmax(np.abs(value)), value.shape)  # the largest: kept whatever the sparsity
    value[index] = 0.0
    kernel.assign(value)


def save(directory: Path) -> None:
    x, y = data()
    for case, spec in CASES.items():
        whole = build()
        whole.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=spec.get("fits", 1),
            shuffle=False,
            verbose=0,
            callbacks=[PruningCallback(schedule(case)), SaveAndZero(case, directory)],
        )
        np.savez(directory / f"{case}.npz", *[w.numpy() for w in whole.weights])
        if "fits" in spec:
            part = build()
            part.fit(
                x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[PruningCallback(schedule(case))]
            )
            part.save(directory / f"{case}-{STEPS}.keras")
            np.save(directory / f"{case}-{STEPS}-predictions.npy", part.predict(x, verbose=0))


def resume(directory: Path) -> None:
    x, y = data()
    results = []
    for case, spec in CASES.items():
        with np.load(directory / f"{case}.npz") as saved:
            expected = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        for step in spec.get("steps", [STEPS]):
            for loader in ("schedules", "plain") if case in PLAIN else ("schedules",):
                path = directory / f"{case}-{step}.keras"
                load = schedules.keras3.load_model if loader == "schedules" else keras.models.load_model
                model = load(path)
                done = int(model.optimizer.iterations.numpy())
                predictions = directory / f"{case}-{step}-predictions.npy"
                same_predictions = not predictions.exists() or np.array_equal(
                    np.load(predictions), model.predict(x, verbose=0)
                )
                callbacks = [PruningCallback(schedule(case)), ZeroAfter(case)]
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    if "fits" in spec:
                        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
                    else:
                        rest = slice(done * BATCH, None)
                        model.fit(x[rest], y[rest], batch_size=BATCH, shuffle=False, verbose=0, callbacks=callbacks)
                difference = max(
                    float(np.max(np.abs(w.numpy() - e))) for w, e in zip(model.weights, expected, strict=True)
                )
                identical = all(np.array_equal(w.numpy(), e) for w, e in zip(model.weights, expected, strict=True))
                ours = [str(w.message) for w in caught if "PruningCallback" in str(w.message)]
                results.append(
                    {
                        "case": case,
                        "step": done,
                        "loader": loader,
                        "identical": identical,
                        "difference": difference,
                        "same_predictions": same_predictions,
                        "warnings": ours,
                    }
                )
    (directory / "resumed.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    tf.config.experimental.enable_op_determinism()
    {"save": save, "resume": resume}[sys.argv[1]](Path(sys.argv[2]))
