"""The end-to-end demo: prune a small CNN on scikit-learn's handwritten digits.

1. Train a small convolutional network, dense, on the 8x8 digits that
   scikit-learn ships (real data, no download), and report test accuracy.
2. Prune it with the chosen schedule (`prune_low_magnitude` +
   `UpdatePruningStep`), each layer at the sparsity the chosen allocation gives
   it (`schedules.prune_model`; `uniform`: every layer the same), recording
   scheduled and achieved sparsity with `PruningRecorder`; report test
   accuracy and each layer's sparsity (`schedules.sparsity_report`).
3. Save the pruned model, reload it in `prune_scope()`, strip the pruning
   wrappers and check the stripped model predicts what the pruned one does.
4. Write the scheduled-against-achieved picture, the record (CSV) and, for an
   allocation other than uniform, the allocated-against-achieved picture.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from schedules import catalog
from schedules.allocation import allocate
from schedules.callbacks import PruningRecorder
from schedules.compression import compression_report
from schedules.inspection import kernel_sparsity, pruned_layers, sparsity_report
from schedules.models import build_cnn
from schedules.plotting import plot_allocation, plot_record, save_figure
from schedules.pruning import prune_model
from schedules.rewinding import WeightRewinding

__all__ = ["DemoResult", "load_digits", "run_demo"]


#: What the demo's entry points say, after their name, when scikit-learn (the `demo` extra) is not installed.
NEEDS_SCIKIT_LEARN = (
    "needs scikit-learn (the demo's data are its digits), which is not installed: "
    'pip install "tfmot-schedules[demo]" (or pip install scikit-learn)'
)
#: Training images in the demo's 80/20 split of scikit-learn's 1797 digits.
DIGITS_TRAIN_SIZE = int(0.8 * 1797)
#: Adam's learning rate in both phases: a lower fine-tuning rate in the pruned phase costs accuracy
#: above 95% sparsity (the allocation benchmark: docs/benchmarks.md).
LEARNING_RATE = 2e-3


def has_scikit_learn() -> bool:
    """Whether scikit-learn, the demo's data, is installed (the `demo` extra)."""
    return importlib.util.find_spec("sklearn") is not None


def load_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 1797 handwritten digits as 8x8x1 images in [0, 1], 80/20 split.

    Raises:
      ImportError: scikit-learn is not installed; the message says what to install.
    """
    if not has_scikit_learn():
        raise ImportError(f"schedules.demo.load_digits {NEEDS_SCIKIT_LEARN}")
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = int(0.8 * len(labels))
    train, test = order[:cut], order[cut:]
    return images[train], labels[train], images[test], labels[test]


def default_schedule_params(total_steps: int, final_sparsity: float) -> dict:
    """Window from 5% to 70% of pruning, about 20 mask updates, 3 cycles, 4 stairs, 3 sparse phases."""
    begin, end = total_steps // 20, (total_steps * 7) // 10
    return {
        "initial_sparsity": 0.0,
        "final_sparsity": final_sparsity,
        "begin_step": begin,
        "end_step": end,
        "frequency": max(1, (end - begin) // 20),
        "sparse_steps": max(1, (end - begin) // 6),
        "dense_steps": max(1, (end - begin) // 6),
    }


def build_schedule(spec: str, final_sparsity: float, prune_epochs: int, batch_size: int = 32):
    """The schedule the demo prunes with: `spec` over the demo's default window."""
    steps_per_epoch = -(-DIGITS_TRAIN_SIZE // batch_size)
    family, overrides = catalog.parse_spec(spec)
    window = default_schedule_params(steps_per_epoch * prune_epochs, final_sparsity)
    return catalog.build(family, overrides, shared=window)


def prepare(
    keras_module: ModuleType,
    schedule_spec: str,
    final_sparsity: float,
    prune_epochs: int,
    batch_size: int,
    output_dir,
    seed: int,
    print_fn,
):
    """The output directory (made), the schedule, the pruning steps and the data split of a demo run, seeded
    with `keras_module`'s `set_random_seed` (tf-keras or Keras 3, which also seeds its own generator); says
    what the data are."""
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    keras_module.utils.set_random_seed(seed)
    data = load_digits(seed)
    print_fn(f"Data: scikit-learn digits, {len(data[0])} training and {len(data[2])} test images (8x8).")
    total = -(-len(data[0]) // batch_size) * prune_epochs
    return output, build_schedule(schedule_spec, final_sparsity, prune_epochs, batch_size), total, data


def train_dense(keras_module: ModuleType, data, dense_epochs: int, batch_size: int, verbose: int, print_fn):
    """The demo's CNN built with `keras_module` (tf-keras or Keras 3), trained dense: `(model, loss, accuracy)`."""
    x_train, y_train, x_test, y_test = data
    loss = keras_module.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = build_cnn(keras_module)
    model.compile(optimizer=keras_module.optimizers.Adam(LEARNING_RATE), loss=loss, metrics=["accuracy"])
    print_fn(f"\n[1/4] Training the dense model for {dense_epochs} epochs")
    model.fit(x_train, y_train, batch_size=batch_size, epochs=dense_epochs, verbose=verbose)
    dense_accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    print_fn(f"Dense test accuracy: {dense_accuracy:.4f}")
    return model, loss, dense_accuracy


def allocate_for(model, data, final_sparsity: float, allocation: str, verbose: int):
    """`allocate` for the demo; `"sensitivity"` measures the last 300 training images, not the test set."""
    x_train, y_train = data[0], data[1]
    sweep_data = {"x": x_train[-300:], "y": y_train[-300:], "verbose": verbose} if allocation == "sensitivity" else {}
    return allocate(model, final_sparsity, allocation, **sweep_data)


@dataclass
class DemoResult:
    schedule: object
    dense_accuracy: float
    pruned_accuracy: float
    layer_sparsity: dict[str, float]
    max_prediction_difference: float
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def run_demo(
    schedule_spec: str = "cubic",
    *,
    allocation: str = "uniform",
    rewind_step: int | None = None,
    final_sparsity: float = 0.9,
    dense_epochs: int = 10,
    prune_epochs: int = 15,
    batch_size: int = 32,
    output_dir: str | os.PathLike = "demo-output",
    seed: int = 0,
    verbose: int = 1,
    print_fn: Callable[[str], None] = print,
) -> DemoResult:
    """Runs the demo; see the module docstring. Returns what it measured."""
    start = time.perf_counter()
    output, schedule, total, data = prepare(
        keras, schedule_spec, final_sparsity, prune_epochs, batch_size, output_dir, seed, print_fn
    )
    x_train, y_train, x_test, y_test = data
    print_fn(f"Schedule: {schedule!r}")

    model, loss, dense_accuracy = train_dense(keras, data, dense_epochs, batch_size, verbose, print_fn)
    print_fn(f"\n[2/4] Pruning for {prune_epochs} epochs ({total} steps), {allocation} allocation")
    shares = allocate_for(model, data, final_sparsity, allocation, verbose)
    if shares.sweep is not None:
        print_fn(str(shares.sweep))
    print_fn(str(shares))
    pruned = prune_model(model, schedule, allocation=shares)
    pruned.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=loss, metrics=["accuracy"])
    recorder = PruningRecorder(output / "sparsity.csv")
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep(), recorder]
    if rewind_step is not None:
        callbacks.append(WeightRewinding(rewind_step, filepath=output / "rewind.npz"))
    pruned.fit(x_train, y_train, batch_size=batch_size, epochs=prune_epochs, verbose=verbose, callbacks=callbacks)
    if rewind_step is not None:
        steps = ", ".join(map(str, callbacks[-1].rewinds)) or "none"
        print_fn(f"Rewound to the weights of step {rewind_step} after the mask changes at steps: {steps}")
    pruned_accuracy = float(pruned.evaluate(x_test, y_test, verbose=0)[1])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    layer_sparsity = kernel_sparsity(stripped)
    report = sparsity_report(pruned)
    print_fn(f"Pruned test accuracy: {pruned_accuracy:.4f} (dense: {dense_accuracy:.4f})")
    print_fn("Weights per layer (zeros counted in weight * mask):")
    print_fn(str(report))

    print_fn("\n[3/4] Saving, reloading and stripping the pruned model")
    model_path = output / "pruned.keras"
    pruned.save(model_path)
    with tfmot.sparsity.keras.prune_scope():
        reloaded = keras.models.load_model(model_path)
    reloaded_stripped = tfmot.sparsity.keras.strip_pruning(reloaded)
    expected = pruned.predict(x_test, verbose=0)
    got = reloaded_stripped.predict(x_test, verbose=0)
    difference = float(np.max(np.abs(expected - got)))
    wrappers = pruned_layers(reloaded)
    restored = ", ".join(f"{layer.layer.name} {type(layer.pruning_schedule).__name__}" for layer in wrappers)
    print_fn(f"Reloaded {model_path}: schedules {restored}; step {int(wrappers[0].pruning_step)}")
    print_fn(f"Largest difference between pruned and reloaded-stripped predictions: {difference:.2e}")
    if difference > 1e-4:
        raise RuntimeError(f"The stripped model's predictions differ from the pruned model's by {difference}")

    print_fn("\nWhat pruning saved (schedules.compression_report):")
    print_fn(str(compression_report(pruned, dense=model)))

    print_fn("\n[4/4] Writing the scheduled-against-achieved picture")
    ax = plot_record(recorder.record, title=f"{type(schedule).__name__}: scheduled vs achieved sparsity")
    picture = output / "sparsity.png"
    save_figure(ax, picture, dpi=120)
    files = {"model": model_path, "record": output / "sparsity.csv", "picture": picture}
    if allocation != "uniform":
        ax = plot_allocation(shares, report, title=f"{allocation} allocation: allocated vs achieved sparsity")
        files["allocation"] = output / "allocation.png"
        save_figure(ax, files["allocation"], dpi=120)
    for name, path in files.items():
        print_fn(f"  {name:<8} {path}")
    seconds = time.perf_counter() - start
    print_fn(f"Done in {seconds:.0f} s.")
    return DemoResult(schedule, dense_accuracy, pruned_accuracy, layer_sparsity, difference, files, seconds)
