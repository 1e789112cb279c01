"""The demo on Keras 3 (`python -m schedules demo --keras3`): the same network, data and schedule, no tfmot.

1. Train the demo's CNN, built with Keras 3 (`import keras`), dense.
2. Prune it with `schedules.keras3.PruningCallback`, each layer at the sparsity
   the allocation gives it, recording scheduled and achieved sparsity with
   `PruningRecorder`; report test accuracy and each layer's sparsity.
3. Save it with `model.save` (`.keras`), reload it with
   `keras.models.load_model` (nothing to register) and check that it keeps its
   zeros and predicts what the trained model did.
4. Write the scheduled-against-achieved picture and the record (CSV).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from schedules.callbacks import PruningRecorder
from schedules.demo import LEARNING_RATE, DemoResult, allocate_for, prepare, train_dense
from schedules.keras3 import BACKENDS as PRUNING_BACKENDS
from schedules.keras3 import PruningCallback
from schedules.plotting import plot_record, save_figure
from schedules.rewinding import WeightRewinding

__all__ = ["BACKENDS", "parse_pattern", "rerun_with_backend", "run_keras3_demo"]

#: The backends the demo runs on (those `PruningCallback` prunes with).
BACKENDS = PRUNING_BACKENDS


def parse_pattern(text: str | None) -> dict[str, Any]:
    """`PruningCallback`'s pattern arguments for `--pattern`: `"M:N"`, `"RxC"`, or None for unstructured.

    >>> parse_pattern("2:4"), parse_pattern("4x1"), parse_pattern(None)
    ({'sparsity_m_by_n': (2, 4)}, {'block_size': (4, 1)}, {})
    """
    if text is None:
        return {}
    found = re.fullmatch(r"(\d+)([:x])(\d+)", text.strip())
    if found is None:
        raise ValueError(f"--pattern must be M:N (2:4) or RxC (4x1); received {text!r}")
    first, kind, second = int(found[1]), found[2], int(found[3])
    if kind == ":":
        if not 0 < first < second:
            raise ValueError(f"--pattern M:N needs 0 < M < N (M zeros in every N weights); received {text!r}")
        return {"sparsity_m_by_n": (first, second)}
    if first < 1 or second < 1:
        raise ValueError(f"--pattern RxC needs blocks of at least 1x1; received {text!r}")
    return {"block_size": (first, second)}


def rerun_with_backend(backend: str, argv: Sequence[str]) -> Callable[[], None]:
    """The demo's job when it must run on another Keras backend: the same command in a new process with
    `KERAS_BACKEND` set (Keras picks its backend once, when it is first imported)."""
    if importlib.util.find_spec(backend) is None:
        raise ValueError(f"--backend {backend} needs the {backend} package: pip install {backend}")

    def job() -> None:
        env = {**os.environ, "KERAS_BACKEND": backend}
        done = subprocess.run([sys.executable, "-m", "schedules", *argv], env=env, check=False)
        if done.returncode:
            sys.exit(done.returncode)

    return job


def run_keras3_demo(
    schedule_spec: str = "cubic",
    *,
    allocation: str = "uniform",
    final_sparsity: float = 0.9,
    dense_epochs: int = 10,
    prune_epochs: int = 15,
    batch_size: int = 32,
    output_dir: str | os.PathLike = "demo-output",
    seed: int = 0,
    verbose: int = 1,
    pattern: dict[str, Any] | None = None,
    rewind_step: int | None = None,
    print_fn: Callable[[str], None] = print,
) -> DemoResult:
    """Runs the Keras 3 demo; see the module docstring. Returns what it measured."""
    start = time.perf_counter()
    print_fn(f"Keras {keras.__version__} ({keras.backend.backend()} backend), no tfmot.")
    output, schedule, total, data = prepare(
        keras, schedule_spec, final_sparsity, prune_epochs, batch_size, output_dir, seed, print_fn
    )
    x_train, y_train, x_test, y_test = data
    print_fn(f"Schedule: {schedule!r}")

    model, loss, dense_accuracy = train_dense(keras, data, dense_epochs, batch_size, verbose, print_fn)
    print_fn(f"\n[2/4] Pruning for {prune_epochs} epochs ({total} steps), {allocation} allocation")
    shares = allocate_for(model, data, final_sparsity, allocation, verbose)
    print_fn(str(shares))
    # A fresh optimizer: step 1.
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=loss, metrics=["accuracy"])
    pattern = dict(pattern or {})
    if "sparsity_m_by_n" in pattern:  # every layer at M/N: no allocation
        pruning = PruningCallback(schedule, **pattern)
    elif "block_size" in pattern:  # blocks of the 2-D kernels: the Dense layers
        dense = [layer.name for layer in model.layers if len(getattr(layer, "kernel", np.zeros(())).shape) == 2]
        pruning = PruningCallback(schedule, allocation=dict(shares), layers=dense, **pattern)
    else:
        pruning = PruningCallback(schedule, allocation=dict(shares))
    if pattern:
        print_fn(f"Pattern: {pattern}, on the layers {sorted(pruning.layers or shares)}")
    recorder = PruningRecorder(output / "sparsity.csv")
    rewinding = None if rewind_step is None else WeightRewinding(rewind_step, filepath=output / "rewind.npz")
    callbacks = [pruning, recorder] + ([rewinding] if rewinding is not None else [])
    model.fit(x_train, y_train, batch_size=batch_size, epochs=prune_epochs, verbose=verbose, callbacks=callbacks)
    if rewinding is not None:
        steps = ", ".join(map(str, rewinding.rewinds)) or "none"
        print_fn(f"Rewound to the weights of step {rewind_step} after the mask changes at steps: {steps}")
    pruned_accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    report = pruning.sparsity_report()
    print_fn(f"Pruned test accuracy: {pruned_accuracy:.4f} (dense: {dense_accuracy:.4f})")
    print_fn("Weights per layer (zeros counted in the kernels):")
    print_fn(str(report))

    print_fn("\n[3/4] Saving and reloading the pruned model (model.save, keras.models.load_model)")
    model_path = output / "pruned-keras3.keras"
    model.save(model_path)
    reloaded = keras.models.load_model(model_path)
    difference = float(np.max(np.abs(model.predict(x_test, verbose=0) - reloaded.predict(x_test, verbose=0))))
    zeros = {layer.name: float(np.mean(layer.kernel.numpy() == 0.0)) for layer in reloaded.layers if layer.weights}
    print_fn(f"Reloaded {model_path}: step {int(reloaded.optimizer.iterations.numpy())}, kernel zeros {zeros}")
    print_fn(f"Largest difference between trained and reloaded predictions: {difference:.2e}")
    if difference > 1e-4 or [zeros[row.name] for row in report.layers] != [row.sparsity for row in report.layers]:
        raise RuntimeError(f"The reloaded model differs from the trained one (predictions by {difference})")

    print_fn("\n[4/4] Writing the scheduled-against-achieved picture")
    ax = plot_record(recorder.record, title=f"Keras 3, {type(schedule).__name__}: scheduled vs achieved sparsity")
    picture = output / "sparsity-keras3.png"
    save_figure(ax, picture, dpi=120)
    files = {"model": model_path, "record": output / "sparsity.csv", "picture": picture}
    for name, path in files.items():
        print_fn(f"  {name:<8} {path}")
    seconds = time.perf_counter() - start
    print_fn(f"Done in {seconds:.0f} s.")
    return DemoResult(schedule, dense_accuracy, pruned_accuracy, zeros, difference, files, seconds)
