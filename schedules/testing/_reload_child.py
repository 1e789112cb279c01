"""The fresh process of the "reload" check: loads the saved models, reports what came back.

Run as ``python .../_reload_child.py REQUEST REPORT`` by path, not with ``-m``, so that it
imports nothing of this package: REQUEST (JSON, written by `schedules.testing._reload`)
holds the parent's `sys.path`, the module that defines the schedule's class (the only one
imported before loading), the saved models by format, the steps and a batch of data;
REPORT (JSON) gets, by format, what the restored schedule is, its config and values, the
pruning step after loading and after one more training step, or the error.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any


def main(request_path: str, report_path: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(request_path) as file:
        request = json.load(file)
    sys.path[:] = request["sys_path"]
    report: dict[str, Any] = {}
    try:
        importlib.import_module(request["module"])
    except BaseException as error:
        report["import_error"] = f"{type(error).__name__}: {error}"
    if "import_error" not in report:
        for fmt, path in request["paths"].items():
            report[fmt] = _load_and_train(path, request)
    with open(report_path, "w") as file:
        json.dump(report, file)


def _load_and_train(path: str, request: dict[str, Any]) -> dict[str, Any]:
    """What the model saved at `path` restores, as a JSON-ready dict."""
    # Imported here, after the parent's sys.path is in place and the schedule's module is imported.
    import numpy as np
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    entry: dict[str, Any] = {}
    try:
        with tfmot.sparsity.keras.prune_scope():
            model = tf_keras.models.load_model(path)
        layers = [m for m in model.submodules if hasattr(m, "pruning_schedule") and hasattr(m, "pruning_step")]
        entry["layer_types"] = [type(m).__qualname__ for m in model.layers]
        if len(layers) != 1:
            return entry
        (layer,) = layers
        schedule = layer.pruning_schedule
        entry["schedule_type"] = f"{type(schedule).__module__}.{type(schedule).__qualname__}"
        entry["schedule_repr"] = repr(schedule)[:300]
        if not isinstance(schedule, tfmot.sparsity.keras.PruningSchedule):
            return entry
        entry["config"] = json.loads(json.dumps(schedule.get_config(), default=repr))
        entry["step_after_load"] = int(layer.pruning_step.numpy())
        steps = tf.constant(request["steps"], tf.int64)
        should_prune, sparsity = schedule(steps)
        entry["should_prune"] = np.broadcast_to(should_prune.numpy(), steps.shape).tolist()
        entry["sparsity"] = np.broadcast_to(sparsity.numpy(), steps.shape).astype(float).tolist()
        if model.optimizer is None:
            model.compile(optimizer=tf_keras.optimizers.SGD(0.01), loss="mse")
        x, y = np.array(request["x"], np.float32), np.array(request["y"], np.float32)
        model.fit(
            x,
            y,
            batch_size=len(x),
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        )
        entry["step_after_fit"] = int(layer.pruning_step.numpy())
    except Exception:
        entry["error"] = traceback.format_exc()[-3000:]
    return entry


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
