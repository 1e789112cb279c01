"""How sparse to make each layer so that the whole model reaches one overall sparsity.

tfmot gives every pruned layer the sparsity of its schedule. At 95-99% that
decides accuracy: a small first convolution pruned to 98% keeps 3 of its 144
weights. `allocate` spreads an overall target across the prunable layers;
`schedules.prune_model` wraps each layer with the schedule scaled to its share.

*Overall* sparsity is zeros over every weight tfmot would prune in the model:
the kernels of every prunable layer (`schedules.inspection.prunable_weights`), the layers
kept dense included.

Every method but `"uniform"` returns whole numbers of kept weights: layer `l`
with `n_l` weights keeps `k_l` and gets sparsity `1 - k_l / n_l`, and the `k_l`
add up to `round(N * (1 - target_sparsity))` over the model's `N` prunable
weights. tfmot keeps `max(1, round(n * (1 - s)))` weights, computed in float32,
which gives back exactly `k_l` for a layer under about a million weights (above
it, within a few weights): so the trained model reaches the target to one
weight in `N`. `"uniform"` gives every layer the same sparsity, as tfmot does,
and tfmot's rounding leaves the model within half a weight per pruned weight of it.

A layer with several pruned weights (a `MultiHeadAttention`'s four projection
kernels, an RNN's kernel and recurrent kernel) gets one sparsity, and tfmot
rounds each of its weights on its own: it keeps `sum_i max(1, round(n_i * (1 -
s)))`, so only some totals are reachable (multiples of 4 for attention whose
projections are the same size). Such a layer gets the reachable total nearest
its share, at a sparsity in the middle of the range that gives it, and the
difference goes to the layers with one pruned weight, so the total still
meets the target when the model has any.

`allocate` (here) checks the request, sets the budget and gives each layer its
share; the methods' formulas are in `schedules.allocation_methods`, and the
whole numbers of kept weights, with the sparsities that give them, in
`schedules.allocation_counts`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tf_keras

from schedules import _validation as v
from schedules.allocation_counts import layer_kept, reachable_sparsities, whole_weights
from schedules.allocation_methods import global_magnitude, lamp_scores, raw_density, sensitivity_density, water_fill
from schedules.inspection import prunable_weights, text_table
from schedules.sensitivity import DEFAULT_SPARSITIES, SensitivitySweep, sensitivity_sweep

__all__ = ["METHODS", "Allocation", "allocate"]

#: The allocation methods `allocate` knows.
METHODS = ("uniform", "erdos_renyi", "erk", "global_magnitude", "lamp", "sensitivity")


class Allocation(dict):
    """A sparsity for each prunable layer, by layer name (a `dict[str, float]`).

    Attributes:
      method: the method that made it.
      target_sparsity: the overall sparsity asked for.
      weights: how many prunable weights each layer has, by name.
      parts: the sizes of each layer's pruned weights (one for a Dense or
        Conv kernel, four for attention), by name; they add up to `weights`.
      sweep: the `SensitivitySweep` behind a `"sensitivity"` allocation, else None.
    """

    def __init__(
        self,
        sparsities: Mapping[str, float],
        *,
        method: str,
        target_sparsity: float,
        weights: Mapping[str, int],
        sweep: SensitivitySweep | None = None,
        parts: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__(sparsities)
        self.method = method
        self.target_sparsity = target_sparsity
        self.weights = dict(weights)
        self.sweep = sweep
        self.parts = {name: tuple(parts[name]) if parts else (n,) for name, n in self.weights.items()}

    @property
    def kept(self) -> dict[str, int]:
        """Weights each layer keeps: tfmot's `max(1, round(n * (1 - s)))` (`expected_kept`) for each of its
        pruned weights, summed."""
        return {name: layer_kept(self.parts[name], s) for name, s in self.items()}

    @property
    def sparsity(self) -> float:
        """The overall sparsity the allocation gives (zeros over every prunable weight)."""
        total = sum(self.weights.values())
        return 1.0 - sum(self.kept.values()) / total

    def __str__(self) -> str:
        kept = self.kept
        rows = [("layer", "weights", "sparsity", "kept")]
        rows += [(name, str(self.weights[name]), f"{s:.4f}", str(kept[name])) for name, s in self.items()]
        total = sum(self.weights.values())
        rows.append(("overall", str(total), f"{self.sparsity:.4f}", str(sum(kept.values()))))
        return f"{self.method} allocation for an overall sparsity of {self.target_sparsity}\n{text_table(rows)}"


def allocate(
    model: tf_keras.Model,
    target_sparsity: float,
    method: str = "erk",
    *,
    keep_dense: Iterable[str] = (),
    max_sparsity: float | None = None,
    min_weights: int = 1,
    x: Any = None,
    y: Any = None,
    metric: Callable | None = None,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    verbose: int = 1,
) -> Allocation:
    """A sparsity for each prunable layer of `model` such that the overall sparsity is `target_sparsity`.

    Methods (density = 1 - sparsity, the share of weights a layer keeps):

    ```python
    "uniform":      density_l = eps                            # the same everywhere
    "erdos_renyi":  density_l = eps * (n_in + n_out) / (n_in * n_out)      # last two kernel dims
    "erk":          density_l = eps * sum(kernel.shape) / prod(kernel.shape)
    # eps solves sum_l n_l * clip(density_l, floor_l, 1) = N * (1 - target) - (weights kept dense);
    # a layer whose density would pass 1 is dense and the others share the rest (Evci et al. 2020).
    "global_magnitude": keep the weights above one magnitude threshold over the whole model
                        (the current, trained weights; computed once, here);
    "lamp":         the same with each weight's LAMP score instead of its magnitude,
                    score_u = w_u**2 / sum(w_v**2 for v >= u), the layer's weights sorted
                    by magnitude, ascending (Lee et al. 2021): a layer's largest weight
                    scores 1, so every layer keeps some;
    "sensitivity":  prune each layer alone to each of `sparsities` and measure `metric` on (x, y);
                    then give each layer the largest sparsity whose measured damage stays under
                    one common bound, the bound chosen to meet the target.
    ```

    `floor_l` is `max(min_weights, n_l * (1 - max_sparsity)) / n_l`. A layer with
    several prunable weights (RNN, attention) sums its shapes over them.

    >>> from schedules.models import build_cnn
    >>> allocation = allocate(build_cnn(tf_keras), 0.9, "erk")
    >>> {name: round(s, 3) for name, s in allocation.items()}
    {'conv1': 0.243, 'conv2': 0.944, 'dense': 0.91, 'logits': 0.453}
    >>> round(allocation.sparsity, 4)
    0.9

    Args:
      model: a built tf-keras or Keras 3 model (Sequential, functional, nested).
      target_sparsity: the overall sparsity, in `[0, 1)`.
      method: one of `METHODS`.
      keep_dense: names of prunable layers to leave dense (sparsity 0); they
        still count in the overall sparsity.
      max_sparsity: the most any layer may be pruned, in `[0, 1)`; None: no cap.
      min_weights: the fewest weights any layer keeps (an integer >= 1).
      x: validation inputs, for `"sensitivity"` only.
      y: validation targets, for `"sensitivity"` only.
      metric: for `"sensitivity"`: a `tf_keras.metrics.Metric` or a callable
        `(y_true, y_pred) -> float`, higher is better (default: sparse
        categorical accuracy).
      sparsities: for `"sensitivity"`: the sparsities each layer is tried at.
      verbose: for `"sensitivity"`: 1 shows a progress bar, 0 nothing.

    Returns:
      An `Allocation`: a dict from layer name to sparsity, in layer order.

    Raises:
      TypeError: `model` is not a tf-keras or Keras 3 model, or an argument
        has the wrong type.
      ValueError: `target_sparsity` outside `[0, 1)`, an unknown `method`, a
        `keep_dense` name that is not a prunable layer, a target the
        constraints cannot reach (the message gives the largest reachable),
        a model with nothing to prune.
    """
    target_sparsity = v.check_sparsity("target_sparsity", target_sparsity)
    if not isinstance(method, str):
        raise v.invalid("method", f"one of {list(METHODS)}", method, TypeError)
    method = v.check_choice("method", method, METHODS)
    weights = prunable_weights(model)
    if not weights:
        raise v.invalid("model", "a model with at least one layer tfmot can prune (Dense, Conv, ...)", model.name)
    dense = _check_keep_dense(keep_dense, weights)
    if max_sparsity is not None:
        max_sparsity = v.check_sparsity("max_sparsity", max_sparsity)
    min_weights = v.check_int("min_weights", min_weights, minimum=1)
    given = [name for name, value in (("x", x), ("y", y), ("metric", metric)) if value is not None]
    if method != "sensitivity" and given:
        raise v.invalid(
            given[0],
            "given only with method='sensitivity' (as `x`, `y` and `metric`)",
            v.received(method=method),
            TypeError,
        )

    parts = {name: [int(np.prod(w.shape)) for w in ws] for name, ws in weights.items()}
    sizes = {name: sum(p) for name, p in parts.items()}
    free = [name for name in weights if name not in dense]
    n = np.array([sizes[name] for name in free], dtype=np.int64)
    most = 1.0 if max_sparsity is None else max_sparsity
    fewest = np.array([max(min_weights, len(parts[name])) for name in free], dtype=np.int64)  # tfmot keeps 1 of each
    floor = np.minimum(n, np.maximum(fewest, np.ceil(n * (1.0 - most) - 1e-9))).astype(np.int64)
    total = sum(sizes.values())
    budget = round(total * (1.0 - target_sparsity)) - sum(sizes[name] for name in dense)
    if budget < floor.sum():
        reachable = 1.0 - (floor.sum() + sum(sizes[name] for name in dense)) / total
        raise v.invalid(
            "target_sparsity",
            f"at most {reachable:.6f}, the largest overall sparsity this model reaches with "
            f"keep_dense={sorted(dense)}, max_sparsity={max_sparsity}, min_weights={min_weights}",
            target_sparsity,
        )

    sweep = None
    if not free:  # every layer kept dense, at a target of (about) 0
        kept = density = np.zeros(0)
    elif method in ("global_magnitude", "lamp"):
        magnitudes = [np.concatenate([np.abs(w.numpy()).ravel() for w in weights[name]]) for name in free]
        if method == "lamp":
            magnitudes = [lamp_scores(m) for m in magnitudes]
        kept = global_magnitude(magnitudes, floor, budget)
    else:
        if method == "sensitivity":
            if x is None or y is None:
                missing = "x" if x is None else "y"
                requirement = "validation data (`x` and `y`) for method='sensitivity'"
                raise v.invalid(missing, requirement, None, TypeError)
            sweep = sensitivity_sweep(model, x, y, metric=metric, sparsities=sparsities, layers=free, verbose=verbose)
            density = sensitivity_density(sweep, free, n, floor, budget)
        else:
            raw = np.array([raw_density(method, [tuple(w.shape) for w in weights[name]]) for name in free])
            # The real-valued budget: "uniform" with nothing kept dense gives exactly the target.
            exact = total * (1.0 - target_sparsity) - sum(sizes[name] for name in dense)
            density = water_fill(n, raw, floor / n, exact)
        kept = whole_weights(n * density, floor, n, budget)
    result = {name: 0.0 for name in weights}
    if method == "uniform":  # one sparsity for every layer, as tfmot gives: no whole-weight adjustment
        sparsity = [float(1.0 - d) for d in density]
        result.update(
            {
                name: target_sparsity if abs(x - target_sparsity) < 1e-12 else x
                for name, x in zip(free, sparsity, strict=True)
            }
        )
    else:
        result.update(reachable_sparsities([parts[name] for name in free], free, kept, floor, n))
    return Allocation(result, method=method, target_sparsity=target_sparsity, weights=sizes, sweep=sweep, parts=parts)


def _check_keep_dense(keep_dense: Iterable[str], weights: Mapping[str, Any]) -> set[str]:
    if isinstance(keep_dense, str) or not isinstance(keep_dense, Iterable):
        raise v.invalid("keep_dense", "a list of layer names", keep_dense, TypeError)
    names = list(keep_dense)
    unknown = [name for name in names if name not in weights]
    if unknown:
        raise v.invalid("keep_dense", f"names of prunable layers of the model, {list(weights)}", names)
    return set(names)
