"""Deployment: `strip_pruning` and then TFLite conversion keep the sparsity our schedules reached.

One model holds a layer pruned with each case of `_registry.SLOW_SUBSET`, a case of every
family (`_models.build_branch_model`:
Conv2D and Dense branches alternate), trained past `HORIZON`, so every layer is at its
final sparsity. It is stripped with `tfmot.sparsity.keras.strip_pruning`, converted with
`tf.lite.TFLiteConverter.from_keras_model(...).convert()` (default options: float32
weights, no quantization) and loaded in `tf.lite.Interpreter`. Each pruned kernel must
appear among the TFLite model's tensors with exactly its zeros: `n - k` of them, `k` the
weights tfmot keeps at the schedule's final sparsity, at the same positions. TFLite
stores a Dense kernel transposed (`[out, in]`) and a Conv2D kernel as OHWI.
"""

from __future__ import annotations

import contextlib
import os
import warnings
import zipfile

import _models
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras
from _registry import CASES, HORIZON, SLOW_SUBSET
from test_training import final_sparsity

from schedules import compression_report

STEPS = HORIZON + 10

#: Keras kernel layout -> TFLite layout: Conv2D HWIO -> OHWI, Dense [in, out] -> [out, in].
TFLITE_LAYOUT = {4: (3, 0, 1, 2), 2: (1, 0)}


@pytest.fixture(scope="module")
def deployed():
    """`(schedules, stripped model, {layer name: kernel}, TFLite tensors, interpreter)`."""
    schedules_by_name = {name: CASES[name](0) for name in sorted(SLOW_SUBSET)}
    model = _models.build_branch_model(schedules_by_name)
    recorder = _models.fit(model, steps_per_epoch=STEPS)
    assert recorder.steps[-1] == STEPS
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    kernels = {name: stripped.get_layer(branch(name)).kernel.numpy() for name in schedules_by_name}
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(stripped).convert()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    tensors = []
    for detail in interpreter.get_tensor_details():
        with_data = detail["dtype"] == np.float32 and len(detail["shape"]) in TFLITE_LAYOUT
        if with_data:
            try:  # constants (the weights) have data; activations have none until invoked
                tensors.append((detail["name"], interpreter.get_tensor(detail["index"]).copy()))
            except ValueError:
                pass
    return schedules_by_name, stripped, kernels, tensors, interpreter


def branch(name: str) -> str:
    """The stripped layer of branch `name` (`build_branch_model` alternates Conv2D, Dense)."""
    return f"conv_{name}" if sorted(SLOW_SUBSET).index(name) % 2 == 0 else f"dense_{name}"


def tflite_kernel(kernel: np.ndarray, tensors: list[tuple[str, np.ndarray]]) -> tuple[str, np.ndarray]:
    """The one TFLite tensor holding `kernel`: same size and the same values (sorted)."""
    values = np.sort(kernel.ravel())
    found = [(n, t) for n, t in tensors if t.size == kernel.size and np.array_equal(np.sort(t.ravel()), values)]
    assert len(found) == 1, f"{len(found)} TFLite tensors hold this kernel: {[n for n, _ in found]}"
    return found[0]


def test_every_pruned_kernel_is_in_the_tflite_model(deployed):
    schedules_by_name, _, kernels, tensors, _ = deployed
    names = {name: tflite_kernel(kernel, tensors)[0] for name, kernel in kernels.items()}
    assert len(set(names.values())) == len(schedules_by_name)
    for name, tensor_name in names.items():
        assert f"/{branch(name)}/" in tensor_name, tensor_name


@pytest.mark.parametrize("name", sorted(SLOW_SUBSET))
def test_tflite_keeps_the_final_sparsity(name, deployed):
    """The TFLite kernel has exactly the stripped kernel's zeros, `n - k` for the final
    sparsity, at the same positions (in TFLite's layout)."""
    schedules_by_name, _, kernels, tensors, _ = deployed
    kernel = kernels[name]
    n = kernel.size
    expected_zeros = n - _models.expected_kept(final_sparsity(schedules_by_name[name]), n)
    assert 0 < expected_zeros < n
    assert np.count_nonzero(kernel == 0) == expected_zeros, "the stripped Keras kernel"
    _, converted = tflite_kernel(kernel, tensors)
    assert np.count_nonzero(converted == 0) == expected_zeros, "the TFLite kernel"
    np.testing.assert_array_equal(converted, kernel.transpose(TFLITE_LAYOUT[kernel.ndim]))


def test_tflite_model_predicts_what_the_stripped_model_does(deployed):
    _, stripped, _, _, interpreter = deployed
    x, _ = _models.make_data(4, seed=1)
    (input_detail,), (output_detail,) = interpreter.get_input_details(), interpreter.get_output_details()
    predictions = []
    for sample in x:
        interpreter.set_tensor(input_detail["index"], sample[None])
        interpreter.invoke()
        predictions.append(interpreter.get_tensor(output_detail["index"])[0])
    np.testing.assert_allclose(np.array(predictions), stripped.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_compression_report_counts_the_zeros_and_measures_the_files(deployed, tmp_path):
    """The report's zeros are the kernels' own; its sizes are those of files written here."""
    _, stripped, kernels, _, _ = deployed
    dense = tf_keras.models.clone_model(stripped)  # the same layers, fresh (dense) weights
    report = compression_report(stripped, dense=dense)
    rows = {layer.name: layer for layer in report.sparsity.layers}
    for name, kernel in kernels.items():
        assert (rows[branch(name)].weights, rows[branch(name)].zeros) == (kernel.size, np.count_nonzero(kernel == 0))
    assert report.dense_sparsity.zeros == 0 and report.sparsity.sparsity > 0.3
    sizes = {size.form: size for size in report.files}
    dense_sizes = {size.form: size for size in report.dense_files}
    assert list(sizes) == [".keras", ".h5"] == list(dense_sizes)
    for form, slack in ((".keras", 64), (".h5", 0)):  # .keras holds the time it was saved
        path = tmp_path / f"model{form}"
        stripped.save(path)
        assert abs(sizes[form].raw - os.path.getsize(path)) <= slack, form
        archive = tmp_path / f"model{form}.zip"  # tfmot's pruning guide's measure, as it writes it
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
            zipped.write(path, f"model{form}")
        assert abs(sizes[form].zipped - os.path.getsize(archive)) <= slack, form
        assert abs(sizes[form].raw - dense_sizes[form].raw) <= slack, "the zeros are stored: no smaller raw file"
        assert sizes[form].zipped < dense_sizes[form].zipped, "but a smaller compressed one"
    text = str(report)
    assert "the raw file does not shrink with pruning" in text
    assert f"{sizes['.h5'].zipped:,} B" in text


def test_int8_tflite_keeps_the_pruned_zeros():
    """Dynamic-range quantization (`Optimize.DEFAULT`, int8 weights) maps 0 to 0: each kernel it quantizes
    (more than 1,024 weights) keeps its zeros, and only those, with sparse tensors too."""
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential(
        [
            tf_keras.Input((8, 8, 16)),
            tf_keras.layers.Conv2D(16, 3, name="conv"),  # 2,304 weights
            tf_keras.layers.Flatten(),
            tf_keras.layers.Dense(32, name="dense"),  # 18,432 weights
        ]
    )
    rng = np.random.default_rng(0)
    for name in ("conv", "dense"):
        kernel = model.get_layer(name).kernel
        value = kernel.numpy() + np.sign(kernel.numpy()) * 0.1  # no weight near enough to 0 to round to it
        kernel.assign(np.where(rng.random(value.shape) < 0.8, 0.0, value))
    for extra in ([], [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT, *extra]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            interpreter = tf.lite.Interpreter(model_content=converter.convert())
        quantized = []
        for detail in interpreter.get_tensor_details():
            if detail["dtype"] == np.int8:
                with contextlib.suppress(ValueError):  # a sparse tensor has no dense data to read
                    quantized.append(interpreter.get_tensor(detail["index"]))
        if extra:  # sparse: the int8 values are stored without their zeros (checked by size below)
            continue
        for name in ("conv", "dense"):
            kernel = model.get_layer(name).kernel.numpy()
            zeros = kernel.transpose(TFLITE_LAYOUT[kernel.ndim]) == 0
            (tensor,) = [t for t in quantized if t.shape == zeros.shape]
            np.testing.assert_array_equal(tensor == 0, zeros, err_msg=name)
    sizes = {size.form: size.raw for size in compression_report(model, tflite=True).files}
    assert sizes[".tflite (int8, sparse)"] < sizes[".tflite (int8)"] < sizes[".tflite"], sizes
