"""The "reload" check: a model pruned with the schedule, saved, loaded in a fresh process (`_reload_child`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules.testing._common import attempt, evaluate, failure, first_difference, json_config, same_values

_CHILD = Path(__file__).with_name("_reload_child.py")  # run by path: the fresh process imports nothing of ours
_TRAIN_STEPS = 3  # the model is saved at this step
_TIMEOUT = 600  # seconds for the fresh process (importing TensorFlow is most of it)


def check_reload(schedule: Any, steps: np.ndarray, file_names: dict[str, str]) -> None:
    """Saves a model pruned with `schedule` as each format of `file_names` (format: file name) and
    checks what a fresh process loads from each."""
    check = "reload"
    cls = type(schedule)
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        where = "in __main__" if module == "__main__" else f"inside a function ({module}.{qualname})"
        raise failure(
            check,
            f"{qualname} is defined {where}, so a fresh process cannot import it and cannot reload a model "
            "that uses it. Define the schedule class at the top of an importable module, registered with tf-keras.",
        )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * _TRAIN_STEPS, 4)).astype(np.float32)
    y = rng.normal(size=(4 * _TRAIN_STEPS, 3)).astype(np.float32)
    expected = evaluate(check, schedule, steps)
    config = json_config(check, schedule)

    with tempfile.TemporaryDirectory(prefix="check_schedule_") as directory:
        folder = Path(directory)
        paths = {fmt: str(folder / name) for fmt, name in file_names.items()}
        _save_trained_model(schedule, x, y, paths)
        request = {
            "module": module,
            "sys_path": [os.path.abspath(p) if p else os.getcwd() for p in sys.path],
            "paths": paths,
            "steps": steps.tolist(),
            "x": x[:4].tolist(),
            "y": y[:4].tolist(),
        }
        (folder / "request.json").write_text(json.dumps(request))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        command = [sys.executable, str(_CHILD), str(folder / "request.json"), str(folder / "report.json")]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=directory, timeout=_TIMEOUT)
        except subprocess.TimeoutExpired as error:
            raise failure(check, f"the fresh process did not finish in {_TIMEOUT} s") from error
        if done.returncode != 0 or not (folder / "report.json").exists():
            raise failure(check, f"the fresh process failed (exit code {done.returncode}):\n{done.stderr[-3000:]}")
        report = json.loads((folder / "report.json").read_text())

    if "import_error" in report:
        raise failure(
            check,
            f"a fresh process cannot import {module!r}, the module that defines {qualname} "
            f"({report['import_error']}), so it cannot reload a model that uses it. A class defined in __main__, "
            "in a test file or inside a function is not importable there: define it in an importable module.",
        )
    for fmt in file_names:
        _check_reloaded(f"{check}: {fmt}", report[fmt], cls, config, expected, steps)


def _save_trained_model(schedule: Any, x: np.ndarray, y: np.ndarray, paths: dict[str, str]) -> None:
    """A one-layer model pruned with `schedule`, trained `_TRAIN_STEPS` steps, saved to `paths`."""
    check = "reload"

    def build_and_train() -> tf_keras.Model:
        pruned = tfmot.sparsity.keras.prune_low_magnitude(tf_keras.layers.Dense(3), pruning_schedule=schedule)
        model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(4,)), pruned])
        model.compile(optimizer=tf_keras.optimizers.SGD(0.01), loss="mse")
        model.fit(
            x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
        )
        return model

    model = attempt(check, "training a model pruned with the schedule", build_and_train)
    for fmt, path in paths.items():

        def save(fmt: str = fmt, path: str = path) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if fmt == "savedmodel":
                    model.save(path, save_format="tf")
                else:
                    model.save(path)

        attempt(check, f"saving the model as {fmt}", save)


def _check_reloaded(
    check: str,
    entry: dict[str, Any],
    cls: type,
    config: dict[str, Any],
    expected: tuple[np.ndarray, np.ndarray],
    steps: np.ndarray,
) -> None:
    if "error" in entry:
        raise failure(check, f"loading the model in a fresh process raised:\n{entry['error']}")
    if "schedule_type" not in entry:
        raise failure(
            check,
            f"the reloaded model has no pruning wrapper (its layers came back as {entry.get('layer_types')}): "
            "tf-keras could not rebuild the wrapper from its config",
        )
    name = f"{cls.__module__}.{cls.__qualname__}"
    if entry["schedule_type"] != name:
        raise failure(
            check,
            f"the restored schedule is {entry['schedule_repr']} of type {entry['schedule_type']}, expected a {name} "
            "(a str means tfmot could not resolve its class_name)",
        )
    difference = first_difference(entry["config"], config)
    if difference:
        raise failure(check, f"the config of the restored schedule differs: {difference}")
    if entry["step_after_load"] != _TRAIN_STEPS:
        raise failure(check, f"the pruning step after loading is {entry['step_after_load']}, expected {_TRAIN_STEPS}")
    restored = (np.array(entry["should_prune"], bool), np.array(entry["sparsity"], np.float64).astype(np.float32))
    same_values(check, "the restored schedule", restored, expected, steps)
    if entry["step_after_fit"] != _TRAIN_STEPS + 1:
        raise failure(
            check,
            f"after one more training step the pruning step is {entry['step_after_fit']}, expected {_TRAIN_STEPS + 1}",
        )
