"""Dropping channel groups: zeroing them in place (`zero_channels`), or removing them (`shrink`).

`keep` maps a group's name (`channel_groups(model).groups`) to a boolean array
of `group.size` entries, True for the channels kept; a group not named keeps
all its channels. `zero_channels` sets the dropped channels' weights to 0
(`channel_variables`: the producers' kernels and biases, the
BatchNormalization gammas and betas, the depthwise kernels and biases), so
each dropped channel is exactly zero wherever a consumer reads it. `shrink`
returns a new, ordinary model of the same Keras without those channels:
producers with fewer `filters`/`units`, carriers' per-channel weights and
consumers' kernel rows cut to match. It predicts what the zeroed model
predicts, to float32 rounding.

>>> import keras, numpy as np
>>> inputs = keras.Input((8, 8, 3))
>>> x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
>>> model = keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x)))
>>> small = shrink(model, {"conv": np.array([True, False, True, False])})
>>> small.get_layer("conv").filters, tuple(small.get_layer("head").kernel.shape)
(2, (72, 2))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from schedules._channel_layers import DEPTHWISE
from schedules.channel_groups import ChannelAnalysis, ChannelGroup, channel_groups, graph_module

__all__ = ["channel_variables", "shrink", "zero_channels"]


def channel_variables(model, group: ChannelGroup) -> list[tuple[Any, int]]:
    """`(variable, axis)` for every variable whose entries along `axis` are `group`'s channels.

    The producers' kernels (last axis) and biases, the BatchNormalization
    gammas and betas, the depthwise kernels (axis 2 in 2-D) and biases: the
    variables to zero for a dropped channel to be exactly zero everywhere
    (BatchNormalization's moving statistics need not be). Backend variables:
    `tf.Variable` on tf-keras, `keras.Variable` on Keras 3.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(1)])
    >>> group = channel_groups(model).groups[0]
    >>> [(variable.name, axis) for variable, axis in channel_variables(model, group)]
    [('kernel', 1), ('bias', 0)]
    """
    found: list[tuple[object, int]] = []
    for name in group.producers:
        layer = model.get_layer(name)
        found.append((layer.kernel, len(layer.kernel.shape) - 1))
        if layer.use_bias:
            found.append((layer.bias, 0))
    for name in group.carriers:
        layer = model.get_layer(name)
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            found += [(weight, 0) for weight in (layer.gamma, layer.beta) if weight is not None]
        elif kind in DEPTHWISE:
            kernel = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel  # tf-keras, Keras 3
            found.append((kernel, len(kernel.shape) - 2))
            if layer.use_bias:
                found.append((layer.bias, 0))
    return found


def zero_channels(model, keep: Mapping[str, np.ndarray]) -> None:
    """Sets every `channel_variables` entry of the channels `keep` drops to 0, in place.

    Raises:
      ValueError: a name in `keep` is not a channel group, or its mask is not
        `group.size` booleans with at least one True.
    """
    analysis = channel_groups(model)
    for group, mask in _masks(model, analysis, keep).items():
        for variable, axis in channel_variables(model, group):
            value = np.array(variable)
            index: list = [slice(None)] * value.ndim
            index[axis] = ~mask
            value[tuple(index)] = 0
            variable.assign(value)


def shrink(model, keep: Mapping[str, np.ndarray]):
    """A new model of the same Keras with the channels `keep` drops removed, every consumer's input cut to match.

    Built from the layers' configs (`clone_model`), with the producers'
    `filters`/`units` (and a `Reshape`'s last dimension) set to the kept
    count, and given the model's weights, sliced: producers' kernels and
    biases on the output axis, carriers' per-channel weights
    (BatchNormalization's four, depthwise kernels and biases), consumers'
    kernels on the input axis (a Dense after a Flatten by the channels-last
    order, a concatenation's groups at their offsets). Other layers keep their
    weights. It holds no wrapper and nothing registered: it saves, reloads
    with a plain `load_model` and converts to TFLite.

    Raises:
      TypeError: `model` is subclassed.
      ValueError: as `zero_channels`.
    """
    module = graph_module(model)
    analysis = channel_groups(model)
    masks = _masks(model, analysis, keep)
    outputs: dict[str, np.ndarray] = {}  # layer -> kept channels of its output (producers) or its channels (carriers)
    inputs: dict[str, list[tuple[int, int, np.ndarray]]] = {}  # consumer -> (offset, repeat, kept)
    for group, mask in masks.items():
        outputs.update(dict.fromkeys(group.producers + group.carriers, mask))
        for name, offset, repeat in group.consumers:
            inputs.setdefault(name, []).append((offset, repeat, mask))

    def clone(layer):
        config = layer.get_config()
        if layer.name in outputs and type(layer).__name__ in ("Conv1D", "Conv2D", "Conv3D", "Dense", "Reshape"):
            key = {"Dense": "units", "Reshape": "target_shape"}.get(type(layer).__name__, "filters")
            kept = int(outputs[layer.name].sum())
            config[key] = (*tuple(config[key])[:-1], kept) if key == "target_shape" else kept
        return type(layer).from_config(config)

    small = module.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.weights:
            weights = layer.get_weights()
            if layer.name in inputs:
                weights[0] = weights[0].compress(_rows(weights[0].shape[-2], inputs[layer.name]), axis=-2)
            if layer.name in outputs:
                weights = _cut(type(layer).__name__, weights, outputs[layer.name])
            small.get_layer(layer.name).set_weights(weights)
    return small


def _cut(kind: str, weights: list[np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
    """A producer's or carrier's weights without its dropped channels."""
    if kind == "BatchNormalization":
        return [weight[mask] for weight in weights]
    axis = -2 if kind in DEPTHWISE else -1
    return [weight.compress(mask, axis=axis if weight.ndim > 1 else 0) for weight in weights]


def _rows(count: int, parts: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """Which of a consumer kernel's `count` input rows are kept: row `position * total + offset + c`."""
    kept = np.ones(count, dtype=bool)
    for offset, repeat, mask in parts:
        total = count // repeat
        rows = (np.arange(repeat)[:, None] * total + offset + np.arange(mask.size)[None, :]).ravel()
        kept[rows] = np.tile(mask, repeat)
    return kept


def _masks(model, analysis: ChannelAnalysis, keep: Mapping[str, np.ndarray]) -> dict[ChannelGroup, np.ndarray]:
    """`keep` checked against the groups: each named group's kept channels, for groups that lose some."""
    groups = {group.name: group for group in analysis.groups}
    found = {}
    for name, mask in keep.items():
        if name not in groups:
            why = f"left whole: {analysis.whole[name]}" if name in analysis.whole else "no such group"
            raise ValueError(
                f"Argument `keep` must name channel groups of model {model.name!r}. Received: {name!r} ({why})"
            )
        group, array = groups[name], np.asarray(mask)
        if array.dtype != bool or array.shape != (group.size,) or not array.any():
            raise ValueError(
                f"Argument `keep` must map channel group {name!r} to {group.size} booleans, at least one True. "
                f"Received: keep[{name!r}] of shape {array.shape}, dtype {array.dtype}, "
                f"{int(np.count_nonzero(array))} nonzero"
            )
        if not array.all():
            found[group] = array
    return found
