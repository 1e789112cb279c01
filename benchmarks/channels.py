"""Speed: channel-pruned, shrunk models against dense and unstructured-sparse ones, in TFLite.

`tf_keras.applications.MobileNetV2(weights=None)` (alpha 1.0) and
`tf_keras.applications.ResNet50(weights=None)` at 224x224x3, 1000 classes,
and the digits CNN (`schedules.models.build_cnn(tf_keras)`, 8x8x1), with
their random initial weights (speed does not depend on the values). Per model,
one row per variant:

* `dense`: the model as built;
* `unstructured 0.5`: every kernel tfmot would prune
  (`schedules.inspection.prunable_weights`: convolutions and Dense layers, no
  depthwise kernel) with its smallest half of magnitudes set to 0, converted
  as float32 like the others;
* `unstructured 0.5, sparse`: the same model converted with
  `tf.lite.Optimize.EXPERIMENTAL_SPARSITY` (float32 still; the converter
  stores the sparse kernels in a sparse format, each read through a
  `DENSIFY` op that rebuilds the dense kernel);
* `channels 0.25`, `channels 0.5`: 25% or 50% of the channels of every
  channel group (`schedules.channels.channel_groups`) removed, the kept ones
  chosen by `kept_channels(channel_scores(model, group), s)`, by
  `schedules.channels.shrink`: a smaller ordinary model.

Columns: parameters (`count_params`), nonzero weights, multiply-adds of the
convolutions, depthwise convolutions and Dense layers (`multiply_adds`: from
the layers' kernel and output shapes; batch normalization, activations,
additions and pooling are not counted, as TFLite folds the first into the
convolutions), the `.tflite` file's size as written and zipped
(`ZIP_DEFLATED`, as tfmot's guide measures), and the latency of one
`invoke()` in `tf.lite.Interpreter(model_content=..., num_threads=1)` with
its default XNNPack delegate, on one random input. The variants of a model
are timed interleaved (`benchmarks._timing.interleaved`): each round times
each variant once, in an order shuffled anew, for `invokes` invokes in a row
(enough for the dense model's to take about `ROUND_SECONDS`); a variant's ms is
the median over rounds of its time per invoke, its ratio the median over
rounds of its time over the dense model's in the same round (and the
ratio's first and third quartiles over rounds: the spread). Each
channel-pruned model's predictions are checked against the unshrunk model
with the same channels zeroed (`zero_channels`), in Keras, on the same random
input: the largest difference over the largest output, in magnitude.
"""

from __future__ import annotations

import io
import math
import statistics
import time
import warnings
import zipfile

import numpy as np
import tensorflow as tf
import tf_keras

from benchmarks._timing import interleaved, median_ratios
from schedules.channel_pruning import channel_scores, kept_channels
from schedules.channels import channel_groups, shrink, zero_channels
from schedules.inspection import prunable_weights
from schedules.models import build_cnn

#: name -> (builder, input shape)
MODELS = {
    "MobileNetV2 224x224": ("MobileNetV2", (224, 224, 3)),
    "ResNet50 224x224": ("ResNet50", (224, 224, 3)),
    "digits CNN 8x8x1": ("build_cnn", (8, 8, 1)),
}
QUICK_MODELS = {"digits CNN 8x8x1": MODELS["digits CNN 8x8x1"]}
DENSE = "dense"
VARIANTS = ("dense", "unstructured 0.5", "unstructured 0.5, sparse", "channels 0.25", "channels 0.5")
UNSTRUCTURED = 0.5
#: Interleaved rounds, and the seconds the dense model's invokes of one round take (about).
ROUNDS, ROUND_SECONDS = 61, 0.2
QUICK_ROUNDS, QUICK_ROUND_SECONDS = 5, 0.005
WARMUP_INVOKES = 3
#: The layers whose multiply-adds `multiply_adds` counts.
COUNTED = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "Dense")


def multiply_adds(model) -> int:
    """The multiply-adds of one example through the model's convolutions, depthwise convolutions and Dense
    layers: each kernel's entries times the output positions (a grouped convolution's kernel holds only
    its group's inputs). Biases, normalization, activations, merges and pooling are not counted.

    >>> multiply_adds(build_cnn(tf_keras))  # conv1 8*8 * 144, conv2 6*6 * 4608, dense 288 * 64, logits 64 * 10
    194176
    """
    total = 0
    for layer in model.layers:
        if type(layer).__name__ in COUNTED:
            kernel = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel
            positions = math.prod(layer.output.shape[1:-1])
            total += positions * math.prod(kernel.shape)
    return total


def _build(name: str, shape: tuple[int, ...]):
    tf_keras.utils.set_random_seed(0)
    if name == "build_cnn":
        return build_cnn(tf_keras, shape, 10)
    return getattr(tf_keras.applications, name)(input_shape=shape, weights=None)


def _copy(model):
    twin = tf_keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def unstructured(model, sparsity: float):
    """A copy of `model` whose every prunable kernel has its `floor(n * sparsity)` smallest magnitudes at 0."""
    twin = _copy(model)
    for weights in prunable_weights(twin).values():
        for weight in weights:
            value = weight.numpy()
            flat = value.reshape(-1)
            flat[np.argsort(np.abs(flat), kind="stable")[: int(flat.size * sparsity)]] = 0
            weight.assign(value)
    return twin


def channel_keep(model, sparsity: float) -> dict[str, np.ndarray]:
    """Every channel group's kept channels at `sparsity`, by `kept_channels(channel_scores(...))`."""
    return {group.name: kept_channels(channel_scores(model, group), sparsity) for group in channel_groups(model).groups}


def convert(model, sparse: bool = False) -> bytes:
    """The float32 `.tflite` flatbuffer of a tf-keras model (`EXPERIMENTAL_SPARSITY` with `sparse`)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if sparse:
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def _zipped(data: bytes) -> int:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("model.tflite", data)
    return len(archive.getvalue())


def _nonzero(model) -> int:
    return int(sum(np.count_nonzero(weight) for weight in model.get_weights()))


def _interpreter(flatbuffer: bytes, x: np.ndarray) -> tf.lite.Interpreter:
    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    for _ in range(WARMUP_INVOKES):
        interpreter.invoke()
    return interpreter


def _model_rows(model_name: str, builder: str, shape: tuple[int, ...], rounds: int, round_seconds: float, progress):
    started = time.perf_counter()
    dense = _build(builder, shape)
    x = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    analysis = channel_groups(dense)
    models = {DENSE: dense, "unstructured 0.5": unstructured(dense, UNSTRUCTURED)}
    models["unstructured 0.5, sparse"] = models["unstructured 0.5"]
    agreement = {}
    for variant in VARIANTS[3:]:
        sparsity = float(variant.split()[-1])
        keep = channel_keep(dense, sparsity)
        models[variant] = small = shrink(dense, keep)
        zeroed = _copy(dense)
        zero_channels(zeroed, keep)
        expected = np.asarray(zeroed(x, training=False))
        agreement[variant] = float(
            np.max(np.abs(np.asarray(small(x, training=False)) - expected)) / np.max(np.abs(expected))
        )
    build_s = time.perf_counter() - started
    progress(f"  {model_name}: built and shrunk in {build_s:.1f} s")
    flatbuffers, convert_s = {}, {}
    for variant in VARIANTS:
        started = time.perf_counter()
        flatbuffers[variant] = convert(models[variant], sparse=variant.endswith("sparse"))
        convert_s[variant] = time.perf_counter() - started
        progress(f"  {model_name}: {variant} converted in {convert_s[variant]:.1f} s")
    interpreters = {variant: _interpreter(flatbuffers[variant], x) for variant in VARIANTS}
    one = min(statistics.median(_invoke_times(interpreters[DENSE], 5)), round_seconds)
    invokes = max(1, round(round_seconds / one))

    def timed(interpreter):
        def call():
            for _ in range(invokes):
                interpreter.invoke()

        return call

    started = time.perf_counter()
    times = interleaved({variant: timed(interpreter) for variant, interpreter in interpreters.items()}, rounds)
    timing_s = time.perf_counter() - started
    ratios = median_ratios(times, DENSE)
    progress(f"  {model_name}: {rounds} rounds of {invokes} invokes timed in {timing_s:.1f} s")
    dense_stats = (multiply_adds(dense), dense.count_params())
    rows = []
    for variant in VARIANTS:
        model = models[variant]
        rows.append(
            {
                "model": model_name,
                "variant": variant,
                "parameters": model.count_params(),
                "nonzero_weights": _nonzero(model),
                "multiply_adds": multiply_adds(model),
                "multiply_adds_ratio": multiply_adds(model) / dense_stats[0],
                "parameters_ratio": model.count_params() / dense_stats[1],
                "tflite_bytes": len(flatbuffers[variant]),
                "tflite_zipped_bytes": _zipped(flatbuffers[variant]),
                "ms": statistics.median(t / invokes for t in times[variant]) * 1000,
                "ratio_to_dense": ratios[variant],
                "ratio_quartiles": _ratio_quartiles(times[variant], times[DENSE]),
                "rounds": rounds,
                "invokes_per_round": invokes,
                "groups": len(analysis.groups),
                "left_whole": sorted(analysis.whole),
                "max_relative_diff_to_zeroed": agreement.get(variant),
                "convert_s": convert_s[variant],
                "tensorflow": tf.__version__,
            }
        )
    del interpreters
    tf_keras.backend.clear_session()
    return rows


def _ratio_quartiles(times: list[float], dense: list[float]) -> list[float]:
    """The first and third quartiles over rounds of the time over the dense model's in the same round."""
    first, _, third = statistics.quantiles([t / d for t, d in zip(times, dense, strict=True)], n=4, method="inclusive")
    return [first, third]


def _invoke_times(interpreter, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - started)
    return times


def run(quick: bool = False, progress=print) -> list[dict]:
    rounds, seconds = (QUICK_ROUNDS, QUICK_ROUND_SECONDS) if quick else (ROUNDS, ROUND_SECONDS)
    return [
        row
        for name, (builder, shape) in (QUICK_MODELS if quick else MODELS).items()
        for row in _model_rows(name, builder, shape, rounds, seconds, progress)
    ]


def format_rows(rows: list[dict]) -> str:
    lines = [
        f"{'model':<22}{'variant':<27}{'params':>12}{'nonzero':>12}{'MACs':>15}{'.tflite':>12}{'zipped':>12}"
        f"{'ms':>10}{'vs dense':>10}{'quartiles':>13}"
    ]
    for r in rows:
        lines.append(
            f"{r['model']:<22}{r['variant']:<27}{r['parameters']:>12,}{r['nonzero_weights']:>12,}"
            f"{r['multiply_adds']:>15,}{r['tflite_bytes']:>12,}{r['tflite_zipped_bytes']:>12,}"
            f"{r['ms']:>10.4g}{r['ratio_to_dense']:>10.3f}{'  {:.3f}-{:.3f}'.format(*r['ratio_quartiles']):>13}"
        )
    for model in dict.fromkeys(r["model"] for r in rows):
        first = next(r for r in rows if r["model"] == model)
        diffs = ", ".join(
            f"{r['variant']} {r['max_relative_diff_to_zeroed']:.1e}"
            for r in rows
            if r["model"] == model and r["variant"].startswith("channels")
        )
        lines.append(
            f"{model}: {first['groups']} channel groups, left whole: {', '.join(first['left_whole']) or 'none'}; "
            f"{first['rounds']} rounds of {first['invokes_per_round']} invokes; shrunk vs zeroed, relative {diffs}"
        )
    return "\n".join(lines)
