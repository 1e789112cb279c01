"""Finding what tfmot prunes or pruned in a model, and how sparse it is."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras
from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

from schedules import _validation as v
from schedules.composition import peak_sparsity
from schedules.keras3_layers import is_keras3_model, prunable_kernels

__all__ = ["LayerSparsity", "SparsityReport", "kernel_sparsity", "prunable_weights", "pruned_layers", "sparsity_report"]


def pruned_layers(model: tf_keras.Model, *, built: bool = False) -> list[tf_keras.layers.Layer]:
    """The layers of `model` that tfmot's `prune_low_magnitude` wrapped, depth first in `model.layers` order.

    A wrapper sets `pruning_schedule` and `pruning_vars` in its constructor;
    when it is built, `pruning_vars` is filled (one `(weight, mask,
    threshold)` per pruned weight) and `pruning_step` made.

    Args:
      model: a tf-keras model, pruned or not (nested models are searched).
      built: only wrappers that are built and prune at least one weight
        (whole-model pruning also wraps weightless layers such as `Flatten`).
    """
    found = []
    for layer in flat_layers(model):
        if hasattr(layer, "pruning_schedule") and hasattr(layer, "pruning_vars"):
            if not built or (layer.pruning_vars and hasattr(layer, "pruning_step")):
                found.append(layer)
    return found


def prunable_weights(model: tf_keras.Model) -> dict[str, list[tf_keras.Variable]]:
    """The weights tfmot's `prune_low_magnitude` would prune, by layer name, in layer order.

    A layer is prunable when tfmot's registry supports it (Dense, Conv, RNN
    and attention layers: their kernels) or it implements tfmot's
    `PrunableLayer`, and it has at least one such weight; a pruned layer (a
    `PruneLowMagnitude` wrapper) counts with the weights it prunes. Nested
    models are searched. The model must be built.

    >>> from schedules.models import build_cnn
    >>> {name: [tuple(w.shape) for w in ws] for name, ws in prunable_weights(build_cnn(tf_keras)).items()}
    {'conv1': [(3, 3, 1, 16)], 'conv2': [(3, 3, 16, 32)], 'dense': [(288, 64)], 'logits': [(64, 10)]}

    A Keras 3 model gives the weights tfmot would prune in its tf-keras twin
    (`schedules.keras3_layers.KERNELS`).

    Raises:
      TypeError: `model` is not a tf-keras or Keras 3 model.
      ValueError: the model is not built, or two prunable layers share a name.
    """
    if is_keras3_model(model):
        return prunable_kernels(model)
    check_tf_keras_model(model)
    if not model.built:
        raise v.invalid("model", "a built model (give it an Input, or call it once on data)", model.name)
    found: dict[str, list] = {}
    for layer in flat_layers(model):
        weights = _layer_prunable_weights(layer)
        if weights:
            name = unwrapped_name(layer)
            if name in found:
                raise v.invalid("model", "a model whose prunable layers have distinct names", name)
            found[name] = weights
    return found


def unwrapped_name(layer) -> str:
    """A layer's name; for a pruning wrapper, the name of the layer it wraps."""
    return layer.layer.name if hasattr(layer, "pruning_schedule") and hasattr(layer, "layer") else layer.name


def check_tf_keras_model(model: object) -> None:
    """Raises `TypeError` unless `model` is a tf-keras model (tfmot cannot prune Keras 3 models)."""
    if not isinstance(model, tf_keras.Model):
        kind = f"{type(model).__module__}.{type(model).__qualname__}"
        hint = (
            " (a Keras 3 model: tfmot prunes tf-keras models; build it with `import tf_keras`, or prune the Keras 3"
            " model with `schedules.keras3.PruningCallback`)"
        )
        raise v.invalid("model", "a tf-keras Model" + (hint if kind.startswith("keras.") else ""), kind, TypeError)


def _layer_prunable_weights(layer) -> list:
    if hasattr(layer, "pruning_vars") and hasattr(layer, "pruning_schedule"):  # a pruning wrapper
        return [weight for weight, _, _ in layer.pruning_vars]
    if isinstance(layer, (tf_keras.Model, tf_keras.layers.InputLayer)):
        return []
    if isinstance(layer, tfmot.sparsity.keras.PrunableLayer):
        return list(layer.get_prunable_weights())
    if not PruneRegistry.supports(layer) or not layer.built:
        return []
    # make_prunable sets `get_prunable_weights` on the layer (the wrapper does it too);
    # read the weights through it and leave the user's layer as it was.
    had = "get_prunable_weights" in vars(layer)
    try:
        return list(PruneRegistry.make_prunable(layer).get_prunable_weights())
    finally:
        if not had:
            delattr(layer, "get_prunable_weights")


def flat_layers(model) -> list:
    """Every layer of `model`, nested models' layers included, depth first.

    (Walking `.layers` is cheap; `model.submodules` walks every attribute of every
    module, which made reading the masks after each batch the cost of a test run.)
    """
    layers = []
    for layer in getattr(model, "layers", []):
        layers.append(layer)
        layers += flat_layers(layer)
    return layers


def kernel_sparsity(model: tf_keras.Model) -> dict[str, float]:
    """Share of exactly-zero entries in each layer's `kernel`, by layer name.

    Use it on a model after `tfmot.sparsity.keras.strip_pruning`.
    """
    return {
        layer.name: float(np.mean(layer.kernel.numpy() == 0.0)) for layer in model.layers if hasattr(layer, "kernel")
    }


@dataclasses.dataclass(frozen=True)
class LayerSparsity:
    """One prunable layer in a `SparsityReport`.

    Attributes:
      name: the layer's name (the wrapped layer's, for a pruning wrapper).
      weights: how many weights tfmot prunes in it (its kernels).
      target: the sparsity its schedule ends at (None: not pruned, or not known).
      zeros: how many of those weights are zero now (in `weight * mask` when pruned).
    """

    name: str
    weights: int
    target: float | None
    zeros: int

    @property
    def kept(self) -> int:
        return self.weights - self.zeros

    @property
    def sparsity(self) -> float:
        return self.zeros / self.weights


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """Per-layer and overall sparsity of a model's prunable weights; `str()` is a table."""

    layers: tuple[LayerSparsity, ...]

    @property
    def weights(self) -> int:
        return sum(layer.weights for layer in self.layers)

    @property
    def zeros(self) -> int:
        return sum(layer.zeros for layer in self.layers)

    @property
    def sparsity(self) -> float:
        """Zeros over all the weights tfmot would prune (dense layers' included)."""
        return self.zeros / self.weights

    def __str__(self) -> str:
        rows = [("layer", "weights", "target", "zeros", "kept", "sparsity")]
        for layer in self.layers:
            target = "-" if layer.target is None else f"{layer.target:.4f}"
            rows.append(
                (layer.name, str(layer.weights), target, str(layer.zeros), str(layer.kept), f"{layer.sparsity:.4f}")
            )
        rows.append(
            ("overall", str(self.weights), "-", str(self.zeros), str(self.weights - self.zeros), f"{self.sparsity:.4f}")
        )
        return text_table(rows)


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells as aligned text: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def sparsity_report(model: tf_keras.Model) -> SparsityReport:
    """Weights, target, zeros and kept weights of every prunable layer of `model`.

    Works on a pruned model (zeros counted in `weight * mask`, the target read
    from each wrapper's schedule) and on a plain or stripped one (zeros in the
    weights, no target). Overall sparsity counts every prunable layer,
    including the ones left dense.

    >>> from schedules.models import build_cnn
    >>> report = sparsity_report(build_cnn(tf_keras))
    >>> report.weights, report.zeros
    (23824, 0)
    """
    rows = []
    wrappers = {unwrapped_name(layer): layer for layer in pruned_layers(model, built=True)}
    for name, weights in prunable_weights(model).items():
        size = sum(int(np.prod(w.shape)) for w in weights)
        wrapper = wrappers.get(name)
        if wrapper is None:
            zeros = sum(int(np.sum(w.numpy() == 0)) for w in weights)
            rows.append(LayerSparsity(name, size, None, zeros))
        else:
            zeros = sum(int(np.sum((w.numpy() * m.numpy()) == 0)) for w, m, _ in wrapper.pruning_vars)
            rows.append(LayerSparsity(name, size, peak_sparsity(wrapper.pruning_schedule), zeros))
    return SparsityReport(tuple(rows))
