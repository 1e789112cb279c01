"""The demo with channel pruning (`python -m schedules demo --channels`): fewer channels, a smaller model.

1. Train the demo's CNN dense (tf-keras, or Keras 3 with `--keras3`).
2. Prune whole channels with `schedules.ChannelPruning` on the schedule (the
   sparsity is the share of each group's channels removed); report test
   accuracy and the channels each group kept.
3. Shrink it with `schedules.channels.shrink` to a plain model without the
   dropped channels, check that it predicts what the pruned model does, save
   it and reload it with plain `load_model`.
4. Time both in TFLite (one thread, interleaved rounds) and write the models.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from types import ModuleType

import numpy as np
import tensorflow as tf

from schedules.channel_pruning import ChannelPruning
from schedules.channels import channel_groups, shrink
from schedules.compression import tflite_converter
from schedules.demo import LEARNING_RATE, DemoResult, prepare, train_dense
from schedules.keras3_layers import is_keras3_model

__all__ = ["run_channels_demo", "tflite_model"]


def tflite_model(model) -> bytes:
    """`model` (tf-keras or Keras 3) converted to TFLite."""
    with tempfile.TemporaryDirectory() as directory:
        return tflite_converter(model, directory).convert()


def _milliseconds(contents: dict[str, bytes], image: np.ndarray, rounds: int = 15, invokes: int = 200) -> dict:
    """The median time of one TFLite invoke (one thread) of each model, timed in interleaved rounds."""
    interpreters = {}
    for name, content in contents.items():
        interpreter = tf.lite.Interpreter(model_content=content, num_threads=1)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
        interpreter.invoke()
        interpreters[name] = interpreter
    times: dict[str, list[float]] = {name: [] for name in contents}
    for _ in range(rounds):
        for name, interpreter in interpreters.items():
            start = time.perf_counter()
            for _ in range(invokes):
                interpreter.invoke()
            times[name].append((time.perf_counter() - start) / invokes * 1e3)
    return {name: float(np.median(values)) for name, values in times.items()}


def run_channels_demo(
    keras_module: ModuleType,
    schedule_spec: str = "cubic",
    *,
    final_sparsity: float = 0.5,
    dense_epochs: int = 10,
    prune_epochs: int = 15,
    batch_size: int = 32,
    output_dir: str | os.PathLike = "demo-output",
    seed: int = 0,
    verbose: int = 1,
    print_fn: Callable[[str], None] = print,
) -> DemoResult:
    """Runs the channel-pruning demo with `keras_module` (`tf_keras` or `keras`); see the module docstring."""
    start = time.perf_counter()
    output, schedule, total, data = prepare(
        keras_module, schedule_spec, final_sparsity, prune_epochs, batch_size, output_dir, seed, print_fn
    )
    x_train, y_train, x_test, y_test = data
    print_fn(f"Schedule: {schedule!r}, the share of each group's channels removed")

    model, loss, dense_accuracy = train_dense(keras_module, data, dense_epochs, batch_size, verbose, print_fn)
    dense_copy = keras_module.models.clone_model(model)
    dense_copy.set_weights(model.get_weights())
    analysis = channel_groups(model)
    print_fn(f"\n[2/4] Pruning channels for {prune_epochs} epochs ({total} steps)")
    for group in analysis.groups:
        print_fn(f"  group {group.name}: {group.size} channels of {', '.join(group.producers)}")
    for name, reason in analysis.whole.items():
        print_fn(f"  left whole: {name} ({reason})")
    model.compile(optimizer=keras_module.optimizers.Adam(LEARNING_RATE), loss=loss, metrics=["accuracy"])
    pruning = ChannelPruning(schedule)
    model.fit(x_train, y_train, batch_size=batch_size, epochs=prune_epochs, verbose=verbose, callbacks=[pruning])
    pruned_accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    print_fn(f"Pruned test accuracy: {pruned_accuracy:.4f} (dense: {dense_accuracy:.4f})")
    sparsity = {name: 1.0 - float(keep.mean()) for name, keep in pruning.keep.items()}  # of each group's channels
    for name, keep in pruning.keep.items():
        print_fn(f"  {name}: kept {int(keep.sum())} of {keep.size} channels")

    print_fn("\n[3/4] Shrinking (schedules.channels.shrink), saving and reloading the small model")
    small = shrink(model, pruning.keep)
    difference = float(np.max(np.abs(small.predict(x_test, verbose=0) - model.predict(x_test, verbose=0))))
    print_fn(f"Parameters: {model.count_params():,} -> {small.count_params():,}")
    print_fn(f"Largest difference between pruned and shrunk predictions: {difference:.2e}")
    if difference > 1e-4:
        raise RuntimeError(f"The shrunk model's predictions differ from the pruned model's by {difference}")
    small_path = output / "channels-small.keras"
    small.save(small_path)
    reloaded = keras_module.models.load_model(small_path)
    if not np.allclose(reloaded.predict(x_test, verbose=0), small.predict(x_test, verbose=0), atol=1e-6):
        raise RuntimeError(f"{small_path} reloaded does not predict what the shrunk model did")
    print_fn(f"Saved {small_path} and reloaded it with plain load_model: same predictions")

    files = {"model": small_path}
    if is_keras3_model(small) and keras_module.backend.backend() == "torch":
        print_fn("\n[4/4] TFLite: skipped (Keras 3's model.export fails under PyTorch; use tensorflow or jax)")
    else:
        print_fn("\n[4/4] TFLite, one thread: the dense and the shrunk model")
        contents = {"dense": tflite_model(dense_copy), "shrunk": tflite_model(small)}
        for name, content in contents.items():
            files[f"{name} tflite"] = output / f"channels-{name}.tflite"
            files[f"{name} tflite"].write_bytes(content)
        ms = _milliseconds(contents, x_test[:1])
        print_fn(
            f"Invoke: dense {ms['dense'] * 1e3:.1f} us, shrunk {ms['shrunk'] * 1e3:.1f} us "
            f"({ms['shrunk'] / ms['dense']:.2f} of dense); files {len(contents['dense']):,} -> "
            f"{len(contents['shrunk']):,} bytes"
        )
    for name, path in files.items():
        print_fn(f"  {name:<13} {path}")
    seconds = time.perf_counter() - start
    print_fn(f"Done in {seconds:.0f} s.")
    return DemoResult(schedule, dense_accuracy, pruned_accuracy, sparsity, difference, files, seconds)
