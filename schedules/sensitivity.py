"""How much each layer's pruning alone costs: a one-shot sweep on validation data."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tf_keras

from schedules import _validation as v
from schedules.evaluation import expected_kept
from schedules.inspection import prunable_weights, text_table

__all__ = ["DEFAULT_SPARSITIES", "SensitivitySweep", "sensitivity_sweep"]

#: The sparsities each layer is tried at, by default.
DEFAULT_SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


@dataclasses.dataclass(frozen=True)
class SensitivitySweep:
    """The metric with each layer alone pruned to each sparsity.

    Attributes:
      sparsities: the sparsities tried, increasing.
      baseline: the metric of the model as it is.
      scores: by layer name, the metric at each of `sparsities`.
    """

    sparsities: tuple[float, ...]
    baseline: float
    scores: dict[str, tuple[float, ...]]

    def damage(self, layer: str) -> np.ndarray:
        """`baseline - score` at each sparsity: how much pruning `layer` alone costs."""
        return self.baseline - np.asarray(self.scores[layer], dtype=np.float64)

    def __str__(self) -> str:
        header = ["layer", *(f"{s:g}" for s in self.sparsities)]
        rows = [header] + [[name, *(f"{x:.3f}" for x in values)] for name, values in self.scores.items()]
        return f"metric with one layer pruned (baseline {self.baseline:.3f})\n{text_table(rows)}"


def sensitivity_sweep(
    model: tf_keras.Model,
    x: Any,
    y: Any,
    *,
    metric: Callable | tf_keras.metrics.Metric | None = None,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    layers: Sequence[str] | None = None,
    batch_size: int = 256,
    verbose: int = 1,
) -> SensitivitySweep:
    """Prunes each layer alone to each sparsity (by magnitude, as tfmot's mask would) and measures.

    The model's weights are restored after each measurement, also on error.

    Args:
      model: a built tf-keras model (trained: the sweep measures its damage).
      x: validation inputs.
      y: validation targets.
      metric: a `tf_keras.metrics.Metric` or a callable `(y_true, y_pred) -> float`,
        higher is better; default sparse categorical accuracy.
      sparsities: increasing sparsities in `(0, 1)`.
      layers: the prunable layers to sweep (default: all).
      batch_size: for `model.predict`.
      verbose: 1 shows a progress bar, 0 nothing.

    Raises:
      TypeError, ValueError: `sparsities` not increasing in `(0, 1)`, a name in
        `layers` that is not a prunable layer, a `metric` that is not callable
        or gives no finite number on `x` and `y` (before any layer is pruned).
    """
    weights = prunable_weights(model)
    sparsities = v.check_sequence("sparsities", sparsities)
    sparsities = [v.check_float("sparsities", s, low=0.0, high=1.0, low_inclusive=False) for s in sparsities]
    v.check_strictly_increasing("sparsities", sparsities)
    names = list(weights) if layers is None else list(layers)
    unknown = [name for name in names if name not in weights]
    if unknown:
        raise v.invalid("layers", f"names of prunable layers of the model, {list(weights)}", names)
    if metric is not None and not callable(metric):  # a Metric is callable too
        requirement = "a tf_keras.metrics.Metric or a callable (y_true, y_pred) -> float"
        raise v.invalid("metric", requirement, metric, TypeError)
    metric = tf_keras.metrics.SparseCategoricalAccuracy() if metric is None else metric

    def score() -> float:
        predicted = model.predict(x, batch_size=batch_size, verbose=0)
        if isinstance(metric, tf_keras.metrics.Metric):
            metric.reset_state()
            metric.update_state(y, predicted)
            return float(metric.result())
        return float(metric(y, predicted))

    baseline = score()
    if not math.isfinite(baseline):
        raise v.invalid("metric", "a metric that gives a finite number on `x` and `y`", baseline)
    progress = tf_keras.utils.Progbar(len(names) * len(sparsities), verbose=verbose, unit_name="evaluation")
    scores = {}
    for name in names:
        originals = [w.numpy() for w in weights[name]]
        values = []
        try:
            for sparsity in sparsities:
                for variable, original in zip(weights[name], originals, strict=True):
                    variable.assign(_magnitude_pruned(original, sparsity))
                values.append(score())
                progress.add(1)
        finally:
            for variable, original in zip(weights[name], originals, strict=True):
                variable.assign(original)
        scores[name] = tuple(values)
    return SensitivitySweep(tuple(sparsities), baseline, scores)


def _magnitude_pruned(weight: np.ndarray, sparsity: float) -> np.ndarray:
    """`weight` with all but its `expected_kept(sparsity, n)` largest magnitudes set to 0, as tfmot's mask."""
    keep = expected_kept(sparsity, weight.size)
    flat = weight.ravel().copy()
    order = np.argsort(-np.abs(flat), kind="stable")
    flat[order[keep:]] = 0.0
    return flat.reshape(weight.shape)
