"""Pruning a whole model with one schedule, each layer at its own share of the sparsity."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow_model_optimization as tfmot
import tf_keras

from schedules import _validation as v
from schedules import fixed_masks
from schedules._attention import build_attention_projections
from schedules.allocation import allocate
from schedules.composition import ScaledSparsity, peak_sparsity
from schedules.inspection import check_tf_keras_model, flat_layers, prunable_weights, pruned_layers, unwrapped_name
from schedules.plan import PlanWarning

__all__ = ["prune_model"]

AllocationLike = str | Mapping[str, float] | Callable[[tf_keras.Model, float], Mapping[str, float]]


def prune_model(
    model: tf_keras.Model,
    schedule: tfmot.sparsity.keras.PruningSchedule | None = None,
    *,
    allocation: AllocationLike = "uniform",
    masks: Mapping[str, Any] | None = None,
    **prune_low_magnitude_kwargs: Any,
) -> tf_keras.Model:
    """A copy of `model` with each prunable layer wrapped by `prune_low_magnitude` at its own sparsity.

    Layer `l` with allocated sparsity `s_l` gets `schedule` itself when `s_l`
    is the schedule's peak sparsity `p`, `ScaledSparsity(schedule, factor=s_l / p)`
    otherwise (same pruning steps, ending at `s_l`), and is left unwrapped when
    `s_l == 0`. The copy starts from `model`'s weights: before the first
    pruning step it predicts what `model` does. Compile it and train it with
    `UpdatePruningStep` as any pruned model; it saves and reloads
    (`schedules.load_model`) in every format, each layer with its own schedule
    (except `.h5` when a pruned layer has several pruned weights, attention or
    RNN: tfmot names their masks alike, and `.h5` stores weights by name).

    A layer applied several times in a forward pass (a shared layer) gets one
    wrapper, which counts calls: its `pruning_step` advances that many times a
    training step, so its schedule runs that many times as fast as the other
    layers'. `prune_model` warns (`PlanWarning`) naming such a layer; keep it
    dense (`allocate(..., keep_dense=[name])`) or prune the model on Keras 3,
    whose `PruningCallback` counts optimizer steps.

    Transformers work too: tfmot prunes a `MultiHeadAttention`'s four projection
    kernels (query, key, value, output), and `Dense` feed-forward layers and
    `Embedding`s like any other layer.

    >>> from schedules import CubicSparsity, allocate
    >>> from schedules.models import build_cnn
    >>> model = build_cnn(tf_keras)
    >>> shares = allocate(model, 0.9, "erk", keep_dense=["conv1"])
    >>> pruned = prune_model(model, CubicSparsity(0.0, 0.9, 0, 1000), allocation=shares)
    >>> [layer.name for layer in pruned.layers]
    ['conv1', 'prune_low_magnitude_conv2', 'pool', 'flatten', 'prune_low_magnitude_dense', 'prune_low_magnitude_logits']

    Args:
      model: a built tf-keras model (Sequential or functional, nested ones
        included), not pruned yet.
      schedule: any tfmot `PruningSchedule` whose peak sparsity is known (ours,
        tfmot's, compositions of them); its peak is the overall target.
      allocation: a method of `schedules.allocate` (`"uniform"`, `"erk"`, ...;
        `"sensitivity"` needs data: call `allocate` and pass its result), a
        dict from every prunable layer's name to its final sparsity (what
        `allocate` returns), or a callable `(model, target_sparsity) -> dict`.
      masks: instead of a schedule, weights held at exactly zero
        (`schedules.fixed_masks`): a dict from layer name to a boolean mask of
        its pruned weight (`True`: the weight trains), or a list of masks, one
        per weight tfmot prunes in it (`schedules.inspection.prunable_weights`);
        0 and 1 count as booleans. Those layers are wrapped with their masks
        set and a schedule that never prunes (`fixed_masks.HOLD`), the others
        left as they are. Not with a schedule: tfmot recomputes masks from the
        whole kernel's magnitudes, where the locked weights are zeros that tie
        with any allowed weight at 0, and would let them train (on Keras 3,
        `PruningCallback` takes both).
      **prune_low_magnitude_kwargs: passed to `prune_low_magnitude`
        (`block_size`, `block_pooling_type`, ...).

    Raises:
      TypeError: `model` is not a tf-keras model (a Keras 3 model, say: tfmot
        needs tf-keras), `schedule` is not a `PruningSchedule` (nor None with
        `masks`), or `allocation` or `masks` is none of the above.
      ValueError: `model` is or holds a subclassed model (`clone_model` cannot
        rebuild it: the message names it and says what to do instead), is
        already pruned, the schedule's peak sparsity is
        unknown or 0, or the allocation misses or invents a layer or gives a
        sparsity outside `[0, 1)`; `masks` with a schedule, or a mask for a layer
        with nothing to prune, of the wrong shape, with a value other than 0
        and 1, or allowing no weight.
    """
    check_tf_keras_model(model)
    _check_clonable(model)
    wrapped = pruned_layers(model)
    if wrapped:
        raise v.invalid("model", "a model that is not pruned yet", [layer.name for layer in wrapped])
    if masks is not None:
        given = fixed_masks.check_masks(masks)
        if schedule is not None:
            raise v.invalid(
                "schedule",
                "None with `masks` on tf-keras (tfmot's mask update would let locked weights that tie at zero train: "
                "see schedules.fixed_masks; schedules.keras3.PruningCallback takes both)",
                schedule,
            )
        if prune_low_magnitude_kwargs.get("sparsity_m_by_n") is not None:  # tfmot sets its M-by-N masks at step 1
            raise v.invalid(
                "sparsity_m_by_n",
                "None with `masks` (tfmot computes M-by-N masks at step 1 whatever the schedule, over the given ones)",
                prune_low_magnitude_kwargs["sparsity_m_by_n"],
            )
        allowed = fixed_masks.match_masks(given, prunable_weights(model))
        pruned = _clone(model, dict.fromkeys(allowed, fixed_masks.HOLD), prune_low_magnitude_kwargs)
        _copy_weights(model, pruned)
        _set_masks(pruned, allowed)
        return pruned
    if not isinstance(schedule, tfmot.sparsity.keras.PruningSchedule):
        raise v.invalid("schedule", "a tfmot PruningSchedule, or None with `masks`", schedule, TypeError)
    peak = peak_sparsity(schedule)
    if peak is None or peak == 0.0:
        raise v.invalid("schedule", "a schedule whose peak sparsity is known and above 0", schedule)
    sparsities = layer_sparsities(model, peak, allocation)
    per_layer = {name: layer_schedule(schedule, peak, s) for name, s in sparsities.items() if s > 0.0}
    _warn_about_shared_layers(model, per_layer)
    pruned = _clone(model, per_layer, prune_low_magnitude_kwargs)
    _copy_weights(model, pruned)
    return pruned


def layer_sparsities(model: tf_keras.Model, peak: float, allocation: AllocationLike) -> dict[str, float]:
    """Each prunable layer's sparsity for an overall `peak`, from a method name, a dict or a callable."""
    names = list(prunable_weights(model))
    if isinstance(allocation, str):
        if allocation == "sensitivity":
            raise v.invalid(
                "allocation",
                "a method that needs no data; for 'sensitivity' pass schedules.allocate(model, target, "
                "'sensitivity', x=..., y=...)",
                allocation,
            )
        return dict(allocate(model, peak, allocation))
    if callable(allocation) and not isinstance(allocation, Mapping):
        allocation = allocation(model, peak)
    if not isinstance(allocation, Mapping):
        raise v.invalid(
            "allocation", "a method name, a dict from layer name to sparsity, or a callable", allocation, TypeError
        )
    missing = [name for name in names if name not in allocation]
    unknown = [name for name in allocation if name not in names]
    if missing or unknown:
        raise v.invalid("allocation", f"a sparsity for each prunable layer, {names}", sorted(allocation))
    return {name: v.check_float(f"allocation[{name!r}]", allocation[name], low=0.0, high=1.0) for name in names}


def layer_schedule(schedule, peak: float, sparsity: float):
    """`schedule` for a layer at its peak `sparsity`, or the schedule scaled to a layer at another one."""
    if sparsity == peak:
        return schedule
    return ScaledSparsity(schedule, factor=sparsity / peak)


def layer_calls(model: tf_keras.Model) -> dict[str, int]:
    """How many times each layer of `model` runs in one forward pass, by name (nested models' layers too).

    A functional model's own nodes are `model._network_nodes` (`"<layer>_ib-<i>"`, one per call of a
    layer in this model; a layer may have more inbound nodes, from other models built on it).
    """
    counts: dict[str, int] = {}

    def walk(network, times: int) -> None:
        nodes = getattr(network, "_network_nodes", None)
        for layer in network.layers:
            if nodes is None or not getattr(network, "_is_graph_network", False):
                calls = 1
            else:
                calls = sum(f"{layer.name}_ib-{i}" in nodes for i in range(len(layer._inbound_nodes))) or 1
            if isinstance(layer, tf_keras.Model):
                walk(layer, times * calls)
            else:
                counts[layer.name] = counts.get(layer.name, 0) + times * calls

    walk(model, 1)
    return counts


def _warn_about_shared_layers(model: tf_keras.Model, per_layer: Mapping[str, Any]) -> None:
    calls = layer_calls(model)
    for name in per_layer:
        if calls.get(name, 1) > 1:
            c = calls[name]
            warnings.warn(
                f"Layer {name!r} runs {c} times in a forward pass, and tfmot's wrapper counts calls: its "
                f"pruning_step advances {c} times a training step, so its schedule runs {c} times as fast as the "
                "other layers' (PruningRecorder and WeightRewinding read that step too). Keep it dense "
                f"(schedules.allocate(..., keep_dense=[{name!r}])) or prune the Keras 3 model with "
                "schedules.keras3.PruningCallback, which counts optimizer steps.",
                PlanWarning,
                stacklevel=3,
            )


def _check_clonable(model: tf_keras.Model) -> None:
    """Refuses a subclassed model, or a model holding one: `clone_model` cannot rebuild its layers."""
    for candidate in [model, *flat_layers(model)]:
        functional = isinstance(candidate, tf_keras.Sequential) or getattr(candidate, "_is_graph_network", False)
        if isinstance(candidate, tf_keras.Model) and not functional:
            kind = type(candidate).__name__
            raise v.invalid(
                "model",
                "a Sequential or functional model, nested models too: tfmot wraps layers through "
                f"tf_keras.models.clone_model, which cannot rebuild the subclassed model {candidate.name!r} ({kind}); "
                "build it with the functional API, or wrap its layers with tfmot.sparsity.keras.prune_low_magnitude "
                "in its __init__, or prune it on Keras 3 with schedules.keras3.PruningCallback",
                f"{candidate.name} ({kind})",
            )


def _clone(model: tf_keras.Model, per_layer: Mapping[str, Any], kwargs: Mapping[str, Any]) -> tf_keras.Model:
    def clone_layer(layer):
        if isinstance(layer, tf_keras.Model):
            return _clone(layer, per_layer, kwargs)
        fresh = build_attention_projections(layer.__class__.from_config(layer.get_config()))
        if layer.name not in per_layer:
            return fresh
        return tfmot.sparsity.keras.prune_low_magnitude(fresh, pruning_schedule=per_layer[layer.name], **kwargs)

    return tf_keras.models.clone_model(model, clone_function=clone_layer)


def _set_masks(model: tf_keras.Model, allowed: Mapping[str, list]) -> None:
    """Each wrapper's mask variables to the given masks, and its weights times them."""
    for layer in pruned_layers(model, built=True):
        for (weight, mask, _threshold), given in zip(layer.pruning_vars, allowed[unwrapped_name(layer)], strict=True):
            mask.assign(given.astype(mask.dtype.as_numpy_dtype))
            weight.assign(weight * mask)


def _copy_weights(source: tf_keras.Model, target: tf_keras.Model) -> None:
    """Each layer's weights (a wrapper's inner layer's) from `source` to the same-named layer of `target`."""
    targets = {unwrapped_name(layer): layer for layer in flat_layers(target) if not isinstance(layer, tf_keras.Model)}
    for layer in flat_layers(source):
        if isinstance(layer, tf_keras.Model) or not layer.weights:
            continue
        copy = targets[layer.name]
        (copy.layer if hasattr(copy, "pruning_schedule") else copy).set_weights(layer.get_weights())
