"""Real architectures: what pruning costs on them, on tf-keras (tfmot) and Keras 3 (the callback).

`keras.applications` / `tf_keras.applications` models built with `weights=None`
(nothing downloaded) and a transformer encoder (Embedding + 4 x
(MultiHeadAttention + FFN), about 5.2 M prunable weights), on random data. Per model:

* **allocate**: seconds of one `schedules.allocate(model, 0.8, method)` on the
  dense tf-keras model, per method but `"sensitivity"` (which trains).
* **tf-keras step**: ms per training step of `prune_model(model, CubicSparsity,
  allocation="lamp")` against tfmot's own `prune_low_magnitude(model,
  PolynomialDecay)` (every layer at the same sparsity; the transformer, which
  tfmot's whole-model call refuses, through `prune_model(..., allocation="uniform")`
  with the same `PolynomialDecay`), both with `UpdatePruningStep`. Both
  schedules prune at steps 1 and 2 (to 0.8) and never after: the timed steps
  run with the masks in place and no mask update.
* **event**: one mask update of every pruned kernel at sparsity 0.8. Ours: the
  compiled update `PruningCallback` runs at a pruning step (each kernel's k-th
  largest magnitude found bit by bit, `schedules.keras3_tf.kth_largest`). tfmot's:
  every wrapper's `conditional_mask_update()` at a pruning step, in one
  `tf.function`, on the tf-keras twin (a `top_k` sort of each kernel). Medians of
  `EVENT_ROUNDS` calls each, interleaved, after one call that traces.
* **Keras 3 step**: ms per training step with the callback on a schedule that
  prunes nowhere in the timed steps, against plain Keras 3 (same model).
  The four fits (two tf-keras, two Keras 3) of `STEPS` steps are interleaved,
  in an order shuffled each round, for `STEP_ROUNDS` rounds; medians of the
  ratios of each round.
* **fit start**: the time a `fit` of one batch takes with the callback, after
  a first `fit` with the same callback, and without it (plain Keras 3 traces
  once; the callback reuses the step it traced).
* **save, load, report**: the lamp-pruned tf-keras model after its timed steps
  (compiled, Adam's state included) saved as `.keras`, loaded by
  `schedules.load_model`, against tfmot's pruned model saved the same way and
  loaded as tfmot says (`prune_scope()` + `tf_keras.models.load_model`; the
  transformer's through `schedules.load_model`, as tfmot's fails on its
  attention); one call each, ours then tfmot's, twice. `compression_report`
  on the saved file, end to end (load, strip, `.keras` and `.h5` written and
  zipped), with the seconds of each of its steps, and `python -m schedules
  report FILE` as a new process (Python and TensorFlow's import included).
"""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from benchmarks._timing import interleaved, median_ratios
from schedules import CubicSparsity, allocate, compression_report, load_model
from schedules.allocation import METHODS
from schedules.inspection import prunable_weights, pruned_layers
from schedules.keras3 import PruningCallback
from schedules.models import build_cnn
from schedules.pruning import prune_model

#: name -> (builder, input shape, keyword arguments)
MODELS = {
    "MobileNetV2 96x96": ("MobileNetV2", (96, 96, 3), {}),
    "ResNet50 64x64": ("ResNet50", (64, 64, 3), {}),
    "Transformer encoder": ("transformer", (64,), {}),
}
#: The quick mode checks the harness on the demo's CNN (tracing an application's graph takes tens of seconds).
QUICK_MODELS = {"demo CNN 8x8": ("build_cnn", (8, 8, 1), {})}
#: The transformer encoder: tokens, width, heads, feed-forward width, blocks (5,196,288 prunable weights).
TRANSFORMER = {"vocabulary": 8000, "width": 256, "heads": 4, "ffn": 1024, "blocks": 4}
ALLOCATIONS = tuple(method for method in METHODS if method != "sensitivity")
EVENT_ROUNDS, STEP_ROUNDS, STEPS, SAVE_ROUNDS = 7, 5, 10, 2
SPARSITY = 0.8
BATCH_SIZE = 8


def build_transformer(module, length: int, vocabulary: int, width: int, heads: int, ffn: int, blocks: int):
    """Embedding, `blocks` x (MultiHeadAttention + residual + LayerNormalization, FFN + residual +
    LayerNormalization), average pooling, 10 logits; built with `module` (tf-keras or Keras 3)."""
    layers = module.layers
    inputs = module.Input((length,), dtype="int32")
    x = layers.Embedding(vocabulary, width, name="embedding")(inputs)
    for i in range(blocks):
        attended = layers.MultiHeadAttention(heads, width // heads, name=f"attention{i}")(x, x)
        x = layers.LayerNormalization(name=f"norm{i}a")(x + attended)
        hidden = layers.Dense(ffn, activation="relu", name=f"ffn{i}a")(x)
        x = layers.LayerNormalization(name=f"norm{i}b")(x + layers.Dense(width, name=f"ffn{i}b")(hidden))
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    return module.Model(inputs, layers.Dense(10, activation="softmax", name="logits")(x))


def _build(module, name: str, shape: tuple[int, ...], kwargs: dict):
    module.utils.set_random_seed(0)
    if name == "build_cnn":
        return build_cnn(module, shape, 10)
    if name == "transformer":
        return build_transformer(module, shape[0], **TRANSFORMER)
    return getattr(module.applications, name)(input_shape=shape, weights=None, classes=10, **kwargs)


def _data(name: str, shape: tuple[int, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if name == "transformer":
        x = rng.integers(0, TRANSFORMER["vocabulary"], size=(n, *shape)).astype(np.int32)
    else:
        x = rng.normal(size=(n, *shape)).astype(np.float32)
    return x, rng.integers(0, 10, size=n)


def _seconds(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _tfmot_event(name: str, shape: tuple[int, ...], kwargs: dict):
    """A call that runs tfmot's mask update of every pruned kernel of the tf-keras twin, and the number of
    prunable weights."""
    schedule = tfmot.sparsity.keras.ConstantSparsity(SPARSITY, 0, frequency=1)
    dense = _build(tf_keras, name, shape, kwargs)
    weights = sum(int(np.prod(w.shape)) for ws in prunable_weights(dense).values() for w in ws)
    model = prune_model(dense, schedule)
    model(_data(name, shape, 1)[0])
    wrappers = pruned_layers(model, built=True)
    for wrapper in wrappers:
        wrapper.pruning_step.assign(1)  # a pruning step of the schedule

    @tf.function
    def event():
        for wrapper in wrappers:
            wrapper.pruning_obj.conditional_mask_update()

    return event, weights


def _tf_keras(name: str, shape: tuple[int, ...], kwargs: dict):
    """`(allocate seconds by method, {"ours": model, "tfmot": model}, how tfmot's was wrapped, fit)`: the
    lamp-pruned model and tfmot's, each compiled and trained through its two pruning steps."""
    dense = _build(tf_keras, name, shape, kwargs)
    allocate_s = {method: _seconds(lambda m=method: allocate(dense, SPARSITY, m)) for method in ALLOCATIONS}
    # Both prune at steps 1 and 2 and never after: the timed steps have masks and no mask update.
    ours = prune_model(dense, CubicSparsity(0.0, SPARSITY, 1, 2, frequency=1), allocation="lamp")
    polynomial = tfmot.sparsity.keras.PolynomialDecay(0.0, SPARSITY, 1, 2, frequency=1)
    if name == "transformer":  # tfmot's whole-model call refuses MultiHeadAttention
        theirs, wrapped = prune_model(dense, polynomial, allocation="uniform"), "prune_model uniform"
    else:
        theirs, wrapped = tfmot.sparsity.keras.prune_low_magnitude(dense, pruning_schedule=polynomial), "tfmot"
    models = {"ours": ours, "tfmot": theirs}
    x, y = _data(name, shape, BATCH_SIZE * STEPS)

    def fit(key: str, steps: int = STEPS) -> None:
        callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
        n = BATCH_SIZE * steps
        models[key].fit(x[:n], y[:n], batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=callbacks)

    for model in models.values():
        model.compile("adam", "sparse_categorical_crossentropy")
    return allocate_s, models, wrapped, fit


def _keras3(name: str, shape: tuple[int, ...], kwargs: dict):
    """The callback, and `fit(pruned, steps)`: a fit of the model pruned by it, or of a plain twin."""
    models = {}
    for pruned in (False, True):
        models[pruned] = _build(keras, name, shape, kwargs)
        models[pruned].compile("adam", "sparse_categorical_crossentropy")
    x, y = _data(name, shape, BATCH_SIZE * STEPS)
    never = tfmot.sparsity.keras.ConstantSparsity(SPARSITY, 10**9, frequency=1)  # prunes after the timed steps
    pruning = PruningCallback(never)

    def fit(pruned: bool, steps: int = STEPS) -> float:
        callbacks = [pruning] if pruned else []
        n = BATCH_SIZE * steps
        return _seconds(
            lambda: models[pruned].fit(x[:n], y[:n], batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=callbacks)
        )

    return pruning, fit


def _tfmot_load(path: str) -> tf_keras.Model:
    with tfmot.sparsity.keras.prune_scope():
        return tf_keras.models.load_model(path)


def _files(models: dict, wrapped: str, directory: str, quick: bool) -> dict:
    """Save and load times of both tf-keras models, and the report's, in seconds."""
    paths = {key: os.path.join(directory, f"{key}.keras") for key in models}
    loaders = {"ours": load_model, "tfmot": load_model if wrapped != "tfmot" else _tfmot_load}
    times: dict[str, list[float]] = {f"{what}_{key}": [] for what in ("save", "load") for key in models}
    for _ in range(1 if quick else SAVE_ROUNDS):
        for key, model in models.items():
            times[f"save_{key}"].append(_seconds(lambda m=model, k=key: m.save(paths[k])))
            times[f"load_{key}"].append(_seconds(lambda k=key: loaders[k](paths[k])))
            tf_keras.backend.clear_session()
    result = {f"{key}_s": statistics.median(values) for key, values in times.items()}
    steps: list[tuple[str, float]] = []
    started = time.perf_counter()
    report = compression_report(paths["ours"], progress=lambda line: steps.append((line, time.perf_counter())))
    result["report_s"] = time.perf_counter() - started
    marks = [*steps, ("done", time.perf_counter())]
    result["report_steps_s"] = {
        line.strip().split(": ", 1)[-1]: round(marks[i + 1][1] - t, 2) for i, (line, t) in enumerate(steps)
    }
    result["report_sparsity"] = report.sparsity.sparsity
    if not quick:  # a new process imports TensorFlow: seconds, not for the harness check
        command = [sys.executable, "-m", "schedules", "report", paths["ours"]]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        cwd = str(Path(__file__).resolve().parent.parent)
        startup = [sys.executable, "-c", "import schedules.cli"]  # what the command pays before it reads the file
        result["cli_import_s"] = _seconds(
            lambda: subprocess.run(startup, check=True, capture_output=True, env=env, cwd=cwd)
        )
        result["cli_report_s"] = _seconds(
            lambda: subprocess.run(command, check=True, capture_output=True, env=env, cwd=cwd)
        )
    return result


def run(quick: bool = False) -> list[dict]:
    rows = []
    for label, (name, shape, kwargs) in (QUICK_MODELS if quick else MODELS).items():
        rounds = 2 if quick else EVENT_ROUNDS
        tfmot_event, weights = _tfmot_event(name, shape, kwargs)
        allocate_s, tf_models, wrapped, tf_fit = _tf_keras(name, shape, kwargs)
        pruning, fit = _keras3(name, shape, kwargs)
        fit(False)  # plain Keras traces its step
        fit(True)  # the callback traces its masked step and builds its mask update
        tf_fit("ours")  # traces, and prunes at steps 1 and 2
        tf_fit("tfmot")
        ours = functools.partial(pruning._updater, dict.fromkeys(pruning.schedules, SPARSITY))  # a pruning step's
        tfmot_event()
        ours()
        events = interleaved({"ours": ours, "tfmot": tfmot_event}, rounds)
        steps = interleaved(
            {
                "keras3 plain": functools.partial(fit, False),
                "keras3 ours": functools.partial(fit, True),
                "tf-keras ours": functools.partial(tf_fit, "ours"),
                "tf-keras tfmot": functools.partial(tf_fit, "tfmot"),
            },
            2 if quick else STEP_ROUNDS,
        )
        starts = {"plain": [fit(False, 1) for _ in range(3)], "ours": [fit(True, 1) for _ in range(3)]}
        with tempfile.TemporaryDirectory() as directory:
            files = _files(tf_models, wrapped, directory, quick)
        ms = {key: statistics.median(values) / STEPS * 1e3 for key, values in steps.items()}
        rows.append(
            {
                "model": label,
                "prunable_weights": weights,
                "pruned_layers": len(pruning.schedules),
                "allocate_s": allocate_s,
                "tf_keras_step_ms_ours": ms["tf-keras ours"],
                "tf_keras_step_ms_tfmot": ms["tf-keras tfmot"],
                "tf_keras_step_ratio": median_ratios(
                    {"ours": steps["tf-keras ours"], "tfmot": steps["tf-keras tfmot"]}, "tfmot"
                )["ours"],
                "tfmot_wrapping": wrapped,
                "event_ms_ours": statistics.median(events["ours"]) * 1e3,
                "event_ms_tfmot": statistics.median(events["tfmot"]) * 1e3,
                "event_ratio": median_ratios(events, "tfmot")["ours"],
                "keras3_step_ms_ours": ms["keras3 ours"],
                "keras3_step_ms_plain": ms["keras3 plain"],
                "step_ratio": median_ratios({"ours": steps["keras3 ours"], "plain": steps["keras3 plain"]}, "plain")[
                    "ours"
                ],
                "fit_start_s_ours": statistics.median(starts["ours"]),
                "fit_start_s_plain": statistics.median(starts["plain"]),
                **files,
                "event_rounds": rounds,
                "step_rounds": 2 if quick else STEP_ROUNDS,
            }
        )
        keras.backend.clear_session()
        tf_keras.backend.clear_session()
    return rows


def format_rows(rows: list[dict]) -> str:
    head = f"{'model':<22}{'weights':>11}{'layers':>7}"
    lines = [
        head + f"{'tf-keras step ms ours':>22}{'tfmot':>8}{'ratio':>7}{'event ms ours':>15}{'tfmot':>9}{'ratio':>7}"
        f"{'K3 step ms':>11}{'plain':>8}{'ratio':>7}{'2nd fit s':>10}{'plain':>7}"
    ]
    for r in rows:
        lines.append(
            f"{r['model']:<22}{r['prunable_weights']:>11,}{r['pruned_layers']:>7}{r['tf_keras_step_ms_ours']:>22.1f}"
            f"{r['tf_keras_step_ms_tfmot']:>8.1f}{r['tf_keras_step_ratio']:>7.3f}{r['event_ms_ours']:>15.1f}"
            f"{r['event_ms_tfmot']:>9.1f}{r['event_ratio']:>7.2f}{r['keras3_step_ms_ours']:>11.1f}"
            f"{r['keras3_step_ms_plain']:>8.1f}{r['step_ratio']:>7.3f}"
            f"{r['fit_start_s_ours']:>10.2f}{r['fit_start_s_plain']:>7.2f}"
        )
    lines.append("")
    lines.append(f"{'model':<22}" + "".join(f"{m:>17}" for m in ALLOCATIONS) + "   (allocate, s)")
    for r in rows:
        lines.append(f"{r['model']:<22}" + "".join(f"{r['allocate_s'][m]:>17.2f}" for m in ALLOCATIONS))
    lines.append("")
    lines.append(
        f"{'model':<22}{'save s ours':>12}{'tfmot':>7}{'load s ours':>12}{'tfmot':>7}{'report s':>10}"
        f"{'CLI report s':>14}{'import':>8}   (tfmot's wrapping)"
    )
    for r in rows:
        cli = f"{r['cli_report_s']:>14.1f}{r['cli_import_s']:>8.1f}" if "cli_report_s" in r else f"{'-':>14}{'-':>8}"
        lines.append(
            f"{r['model']:<22}{r['save_ours_s']:>12.1f}{r['save_tfmot_s']:>7.1f}{r['load_ours_s']:>12.1f}"
            f"{r['load_tfmot_s']:>7.1f}{r['report_s']:>10.1f}{cli}   ({r['tfmot_wrapping']})"
        )
    for r in rows:
        lines.append(
            f"{r['model']}: compression_report's steps (s): "
            + ", ".join(f"{step} {s:.1f}" for step, s in r["report_steps_s"].items())
        )
    return "\n".join(lines)
