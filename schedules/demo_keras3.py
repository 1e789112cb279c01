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

import os
import time
from collections.abc import Callable

import keras
import numpy as np

from schedules.callbacks import PruningRecorder
from schedules.demo import LEARNING_RATE, DemoResult, allocate_for, prepare, train_dense
from schedules.keras3 import PruningCallback
from schedules.plotting import plot_record, save_figure

__all__ = ["run_keras3_demo"]


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
    print_fn: Callable[[str], None] = print,
) -> DemoResult:
    """Runs the Keras 3 demo; see the module docstring. Returns what it measured."""
    start = time.perf_counter()
    output, schedule, total, data = prepare(
        keras, schedule_spec, final_sparsity, prune_epochs, batch_size, output_dir, seed
    )
    x_train, y_train, x_test, y_test = data
    print_fn(f"Keras {keras.__version__} ({keras.backend.backend()} backend), no tfmot.")
    print_fn(f"Data: scikit-learn digits, {len(x_train)} training and {len(x_test)} test images (8x8).")
    print_fn(f"Schedule: {schedule!r}")

    model, loss, dense_accuracy = train_dense(keras, data, dense_epochs, batch_size, verbose, print_fn)
    print_fn(f"\n[2/4] Pruning for {prune_epochs} epochs ({total} steps), {allocation} allocation")
    shares = allocate_for(model, data, final_sparsity, allocation, verbose)
    print_fn(str(shares))
    # A fresh optimizer: step 1.
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=loss, metrics=["accuracy"])
    pruning = PruningCallback(schedule, allocation=dict(shares))
    recorder = PruningRecorder(output / "sparsity.csv")
    model.fit(
        x_train, y_train, batch_size=batch_size, epochs=prune_epochs, verbose=verbose, callbacks=[pruning, recorder]
    )
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
