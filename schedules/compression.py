"""What pruning saved: zeros per layer and the size of the stripped model's files, raw and compressed.

Pruning writes zeros; it does not remove weights. A saved `.keras` or `.h5`
file stores every weight, zeros included, so it is as large as the dense
model's. The zeros pay off once the file is compressed (zipped here, with
`zipfile.ZIP_DEFLATED` at its default level, as tfmot's pruning guide measures
sizes, so the figures compare with tfmot's), or stored sparse: TFLite's
converter with `tf.lite.Optimize.EXPERIMENTAL_SPARSITY` writes sparse tensors
into the flatbuffer itself. Both need the pruning wrappers stripped
(`tfmot.sparsity.keras.strip_pruning`), which `compression_report` does.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules import _validation as v
from schedules.inspection import SparsityReport, pruned_layers, sparsity_report, text_table
from schedules.keras3_layers import is_keras3_model
from schedules.keras3_masks import load_model as load_keras3_model
from schedules.saving import load_model

__all__ = ["CompressionReport", "FileSize", "compression_report", "file_sizes", "tflite_converter"]

#: The file forms measured: Keras' own and HDF5; TFLite with `tflite=True`, by its converter's optimizations:
#: none, sparse tensors, int8 weights (dynamic-range quantization, which maps 0 to 0), and both.
FORMS = (".keras", ".h5")
TFLITE_FORMS = {
    ".tflite": [],
    ".tflite (sparse)": [tf.lite.Optimize.EXPERIMENTAL_SPARSITY],
    ".tflite (int8)": [tf.lite.Optimize.DEFAULT],
    ".tflite (int8, sparse)": [tf.lite.Optimize.DEFAULT, tf.lite.Optimize.EXPERIMENTAL_SPARSITY],
}

WHY = (
    "A saved model stores every weight, zeros included, so the raw file does not shrink with pruning; "
    "compressed (zip, as tfmot's pruning guide measures) or stored sparse (.tflite with EXPERIMENTAL_SPARSITY), "
    "the zeros cost little."
)

#: Where `compression_report` says what it is doing (a few seconds a step on a large model), or None.
Progress = Callable[[str], None] | None


@dataclasses.dataclass(frozen=True)
class FileSize:
    """One saved form of a model: its bytes as written, and as a ZIP_DEFLATED archive of it (tfmot's measure)."""

    form: str
    raw: int
    zipped: int


@dataclasses.dataclass(frozen=True)
class CompressionReport:
    """Per-layer zeros and file sizes of a pruned model, and of its dense original when given; `str()` is
    the printed report."""

    sparsity: SparsityReport
    files: tuple[FileSize, ...]
    dense_sparsity: SparsityReport | None = None
    dense_files: tuple[FileSize, ...] | None = None

    def __str__(self) -> str:
        lines = ["Prunable weights (zeros counted in the weights the stripped model saves):", str(self.sparsity)]
        header = ["file", "pruned", "pruned zip"]
        if self.dense_files is not None:
            header += ["dense", "dense zip", "zip: pruned / dense"]
        rows = [tuple(header)]
        dense = {size.form: size for size in self.dense_files or ()}
        for size in self.files:
            row = [size.form, _bytes(size.raw), _bytes(size.zipped)]
            if size.form in dense:
                other = dense[size.form]
                row += [_bytes(other.raw), _bytes(other.zipped), f"{size.zipped / other.zipped:.3f}"]
            rows.append(tuple(row))
        lines += ["", "Stripped model files:", text_table(rows), "", WHY]
        if self.dense_sparsity is not None:
            lines.insert(2, f"Dense model: overall sparsity {self.dense_sparsity.sparsity:.4f}")
        return "\n".join(lines)


def _bytes(n: int) -> str:
    return f"{n:,} B"


def file_sizes(model: tf_keras.Model, *, tflite: bool = False, progress: Progress = None) -> tuple[FileSize, ...]:
    """`model` saved as `.keras` and `.h5` (and converted to the `TFLITE_FORMS` with `tflite`), each
    measured as written and zipped. Strip the pruning wrappers first."""
    say = progress or (lambda line: None)
    sizes = []
    with tempfile.TemporaryDirectory() as directory:
        for form in FORMS:
            say(f"  {model.name}: saving and zipping {form}")
            path = Path(directory) / f"model{form}"
            with warnings.catch_warnings():  # measuring .h5 is the point here, not a choice of format to warn about
                warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
                model.save(path)
            sizes.append(_measure(form, path.read_bytes()))
        if tflite:
            if is_keras3_model(model):
                say(f"  {model.name}: exporting a SavedModel")
            converter = tflite_converter(model, directory)
        for form, optimizations in TFLITE_FORMS.items() if tflite else ():
            say(f"  {model.name}: converting to {form}")
            converter.optimizations = optimizations
            sizes.append(_measure(form, converter.convert()))
    return tuple(sizes)


def tflite_converter(model: tf_keras.Model | keras.Model, directory: str | os.PathLike) -> tf.lite.TFLiteConverter:
    """A TFLite converter of a tf-keras `model`, or of a Keras 3 one through the SavedModel `model.export`
    writes into `directory` (as `exported/`).

    Raises:
      ValueError: a Keras 3 model under the PyTorch backend, whose `model.export` writes no SavedModel here.
    """
    if is_keras3_model(model):
        if keras.backend.backend() == "torch":
            raise v.invalid(
                "model",
                "a tf-keras model or a Keras 3 one under the TensorFlow or JAX backend for TFLite (Keras 3's "
                "export fails under PyTorch here, in torch.export)",
                model.name,
            )
        exported = os.path.join(directory, "exported")
        model.export(exported, verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(exported)
    return tf.lite.TFLiteConverter.from_keras_model(model)


def _measure(form: str, data: bytes) -> FileSize:
    """As tfmot's pruning guide measures a file: the size of a ZIP_DEFLATED archive (default level) holding it."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(f"model{form.split()[0]}", data)
    return FileSize(form, len(data), len(archive.getvalue()))


def compression_report(
    model_or_path: tf_keras.Model | str | os.PathLike,
    *,
    dense: tf_keras.Model | str | os.PathLike | None = None,
    tflite: bool = False,
    progress: Progress = None,
) -> CompressionReport:
    """Zeros per pruned layer and the size of the stripped model's files, raw and zipped.

    ```python
    print(schedules.compression_report(pruned_model, dense=dense_model, tflite=True))
    ```

    Args:
      model_or_path: a pruned tf-keras model (with its pruning wrappers, or
        stripped), or the path of one saved (`.keras`, `.h5`, SavedModel).
      dense: the dense model, or its path, for the same figures side by side.
      tflite: also convert to TFLite (`TFLITE_FORMS`): with the default
        converter, with `tf.lite.Optimize.EXPERIMENTAL_SPARSITY`, with int8
        weights (`tf.lite.Optimize.DEFAULT`, dynamic-range quantization,
        which keeps the zeros) and with both (a few seconds each; ResNet50
        about 20 s each).
      progress: called with a line before each step (loading, stripping,
        each file), e.g. `print`; the command line prints them on stderr.

    Raises:
      FileNotFoundError: a path that does not exist.
      ValueError: a file that is not a tf-keras model, or a model with
        no pruned layer (no pruning wrapper and no zero in its prunable weights).
      TypeError: not a tf-keras model or path.
    """
    say = progress or (lambda line: None)
    say("loading the model" if isinstance(model_or_path, (str, os.PathLike)) else "stripping the model")
    stripped, report = strip_checked(as_model(model_or_path, "model_or_path"), "model_or_path")
    if isinstance(dense, (str, os.PathLike)):
        say("loading the dense model")
    dense_model = None if dense is None else as_model(dense, "dense")
    return measure(stripped, report, dense_model, tflite=tflite, progress=progress)


def measure(
    stripped: tf_keras.Model,
    report: SparsityReport,
    dense: tf_keras.Model | None,
    *,
    tflite: bool,
    progress: Progress = None,
) -> CompressionReport:
    """The report of a model `strip_checked` gave, with its `report`, next to `dense` if given."""
    result = CompressionReport(report, file_sizes(stripped, tflite=tflite, progress=progress))
    if dense is not None:
        dense_model = _bare(dense) if is_keras3_model(dense) else tfmot.sparsity.keras.strip_pruning(dense)
        dense_files = file_sizes(dense_model, tflite=tflite, progress=progress)
        result = dataclasses.replace(result, dense_sparsity=sparsity_report(dense_model), dense_files=dense_files)
    return result


def strip_checked(model: tf_keras.Model, name: str) -> tuple[tf_keras.Model, SparsityReport]:
    """`model` without its pruning wrappers and the sparsity of the weights it will save, or a
    `ValueError` naming `name` if nothing in it is pruned."""
    if is_keras3_model(model):  # no wrappers: its layers and weights, without optimizer state and saved masks
        stripped = _bare(model)
    else:
        stripped = tfmot.sparsity.keras.strip_pruning(model) if pruned_layers(model, built=True) else model
    report = sparsity_report(stripped)
    if report.zeros == 0 and (stripped is model or is_keras3_model(model)):
        raise v.invalid(
            name, "a pruned model (it has no pruning wrapper and no zero in its prunable weights)", model.name
        )
    return stripped, report


def as_model(value, name: str) -> tf_keras.Model | keras.Model:
    """`value` if it is a tf-keras or Keras 3 model, else the model saved at that path (`schedules.load_model`,
    or `schedules.keras3.load_model` for a `.keras` file Keras 3 wrote); a one-line error naming `name` for a
    missing file or a file that is no model."""
    if isinstance(value, (tf_keras.Model, keras.Model)):
        return value
    if not isinstance(value, (str, os.PathLike)):
        raise v.invalid(name, "a Keras model or the path of a saved one", type(value).__name__, TypeError)
    path = os.fspath(value)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Argument `{name}` must be a saved model. Received: {name}={path!r} (no such file)")
    try:
        return load_keras3_model(path) if _written_by_keras3(path) else load_model(path)
    except Exception as error:  # h5py, zipfile and Keras each raise their own kind for a file that is no model
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise v.invalid(name, f"a saved Keras model ({first[:200]})", path) from error


def _written_by_keras3(path: str) -> bool:
    """Whether `path` is a `.keras` archive whose `metadata.json` names Keras 3 (tf-keras writes 2.x)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        if "metadata.json" not in archive.namelist():
            return False
        version = str(json.loads(archive.read("metadata.json")).get("keras_version", ""))
    return version.split(".")[0] == "3"


def _bare(model: keras.Model) -> keras.Model:
    """A Keras 3 model's layers and weights alone, as `strip_pruning` leaves a tf-keras model: no optimizer
    state and no masks in its files (a clone; a subclassed model, which cannot be cloned, as it is)."""
    try:
        bare = keras.models.clone_model(model)
    except Exception:  # a subclassed model: Keras cannot rebuild it from its config
        return model
    bare.set_weights(model.get_weights())
    return bare
