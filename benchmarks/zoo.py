"""Real architectures: what a pruning event and a `fit` cost, Keras 3 callback against tfmot.

`keras.applications` / `tf_keras.applications` models built with `weights=None`
(nothing downloaded), random data. Per model:

* **event**: one mask update of every pruned kernel at sparsity 0.8. Ours: the
  compiled update `PruningCallback` runs at a pruning step (each kernel's k-th
  largest magnitude found bit by bit, `schedules.keras3.kth_largest`). tfmot's:
  every wrapper's `conditional_mask_update()` at a pruning step, in one
  `tf.function`, on the tf-keras twin (a `top_k` sort of each kernel). Medians of
  `EVENT_ROUNDS` calls each, interleaved, after one call that traces.
* **step**: ms per training step with the callback on a schedule that prunes
  nowhere in the timed steps, against plain Keras 3 (same model, interleaved
  fits, medians).
* **fit start**: the time a `fit` of one batch takes with the callback, after
  a first `fit` with the same callback, and without it (plain Keras 3 traces
  once; the callback reuses the step it traced).
"""

from __future__ import annotations

import functools
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules.inspection import prunable_weights, pruned_layers
from schedules.keras3 import PruningCallback
from schedules.models import build_cnn
from schedules.pruning import prune_model

#: name -> (application, input shape, keyword arguments)
MODELS = {
    "MobileNetV2 96x96": ("MobileNetV2", (96, 96, 3), {}),
    "ResNet50 64x64": ("ResNet50", (64, 64, 3), {}),
}
#: The quick mode checks the harness on the demo's CNN (tracing an application's graph takes tens of seconds).
QUICK_MODELS = {"demo CNN 8x8": ("build_cnn", (8, 8, 1), {})}
EVENT_ROUNDS, STEP_ROUNDS, STEPS = 7, 5, 10
SPARSITY = 0.8


def _build(module, name: str, shape: tuple[int, ...], kwargs: dict):
    module.utils.set_random_seed(0)
    if name == "build_cnn":
        return build_cnn(module, shape, 10)
    return getattr(module.applications, name)(input_shape=shape, weights=None, classes=10, **kwargs)


def _tfmot_event(name: str, shape: tuple[int, ...], kwargs: dict):
    """A call that runs tfmot's mask update of every pruned kernel of the tf-keras twin, and the number of
    prunable weights."""
    schedule = tfmot.sparsity.keras.ConstantSparsity(SPARSITY, 0, frequency=1)
    dense = _build(tf_keras, name, shape, kwargs)
    weights = sum(int(np.prod(w.shape)) for ws in prunable_weights(dense).values() for w in ws)
    model = prune_model(dense, schedule)
    model(np.zeros((1, *shape), np.float32))
    wrappers = pruned_layers(model, built=True)
    for wrapper in wrappers:
        wrapper.pruning_step.assign(1)  # a pruning step of the schedule

    @tf.function
    def event():
        for wrapper in wrappers:
            wrapper.pruning_obj.conditional_mask_update()

    return event, weights


def _keras3(name: str, shape: tuple[int, ...], kwargs: dict):
    """The callback, and `fit(pruned, steps)`: a fit of the model pruned by it, or of a plain twin."""
    models = {}
    for pruned in (False, True):
        models[pruned] = _build(keras, name, shape, kwargs)
        models[pruned].compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8 * STEPS, *shape)).astype(np.float32)
    y = rng.integers(0, 10, size=8 * STEPS)
    never = tfmot.sparsity.keras.ConstantSparsity(SPARSITY, 10**9, frequency=1)  # prunes after the timed steps
    pruning = PruningCallback(never)

    def fit(pruned: bool, steps: int = STEPS) -> float:
        started = time.perf_counter()
        callbacks = [pruning] if pruned else []
        models[pruned].fit(x[: 8 * steps], y[: 8 * steps], batch_size=8, epochs=1, verbose=0, callbacks=callbacks)
        return time.perf_counter() - started

    return pruning, fit


def run(quick: bool = False) -> list[dict]:
    rows = []
    for label, (name, shape, kwargs) in (QUICK_MODELS if quick else MODELS).items():
        rounds = 2 if quick else EVENT_ROUNDS
        tfmot_event, weights = _tfmot_event(name, shape, kwargs)
        pruning, fit = _keras3(name, shape, kwargs)
        fit(False)  # plain Keras traces its step
        fit(True)  # the callback traces its masked step and builds its mask update
        ours = functools.partial(pruning._updater, dict.fromkeys(pruning.schedules, SPARSITY))  # a pruning step's
        tfmot_event()
        ours()
        events = {"ours": [], "tfmot": []}
        for _ in range(rounds):
            for key, call in (("ours", ours), ("tfmot", tfmot_event)):
                started = time.perf_counter()
                call()
                events[key].append(time.perf_counter() - started)
        steps = {"plain": [], "ours": []}
        for _ in range(2 if quick else STEP_ROUNDS):
            steps["plain"].append(fit(False))
            steps["ours"].append(fit(True))
        starts = {"plain": [fit(False, 1) for _ in range(3)], "ours": [fit(True, 1) for _ in range(3)]}
        rows.append(
            {
                "model": label,
                "prunable_weights": weights,
                "pruned_layers": len(pruning.schedules),
                "event_ms_ours": statistics.median(events["ours"]) * 1e3,
                "event_ms_tfmot": statistics.median(events["tfmot"]) * 1e3,
                "event_ratio": statistics.median(a / b for a, b in zip(events["ours"], events["tfmot"], strict=True)),
                "step_ratio": statistics.median(a / b for a, b in zip(steps["ours"], steps["plain"], strict=True)),
                "fit_start_s_ours": statistics.median(starts["ours"]),
                "fit_start_s_plain": statistics.median(starts["plain"]),
                "event_rounds": rounds,
            }
        )
        keras.backend.clear_session()
        tf_keras.backend.clear_session()
    return rows


def format_rows(rows: list[dict]) -> str:
    head = f"{'model':<24}{'weights':>11}{'layers':>7}{'event ms ours':>15}{'tfmot':>9}{'ratio':>7}"
    lines = [head + f"{'step vs plain':>15}{'2nd fit s ours':>16}{'plain':>7}"]
    for r in rows:
        lines.append(
            f"{r['model']:<24}{r['prunable_weights']:>11,}{r['pruned_layers']:>7}{r['event_ms_ours']:>15.1f}"
            f"{r['event_ms_tfmot']:>9.1f}{r['event_ratio']:>7.2f}{r['step_ratio']:>15.3f}"
            f"{r['fit_start_s_ours']:>16.2f}{r['fit_start_s_plain']:>7.2f}"
        )
    return "\n".join(lines)
