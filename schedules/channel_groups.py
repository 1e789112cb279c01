"""Which output channels of a Keras model must be removed together: the channel groups.

A producer (`Conv1D`/`Conv2D`/`Conv3D`, `Dense`) makes channels: its kernel's
last axis and its bias. The channels travel through carriers that keep them
one by one (`BatchNormalization`, `DepthwiseConv2D` with `depth_multiplier=1`,
activations whose f(0) == 0, pooling, padding, dropout, `Flatten`, a `Reshape`
that keeps the last axis, merges, concatenations) to consumers, the layers
whose kernel's input axis holds them. Removing channel c of a group removes it
from every producer, carrier and consumer of the group at once. Layers that
meet in one `Add` (`Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`)
share a group; a `Concatenate` keeps each input's group and shifts its offset
in the consumer; a `Dense` after a `Flatten` sees each channel once per
spatial position (`repeat`, channels-last order: input index
`position * C_total + offset + c`).

A group is left whole (`ChannelAnalysis.whole`, with the reason) when it
reaches a model output, a layer the analysis does not follow (`Lambda`,
attention, recurrent, custom layers, a shared layer), or a consumer through
an activation with f(0) != 0 (sigmoid: a zeroed channel would not stay zero),
unless a `Multiply` with a zeroed channel makes it zero again
(squeeze-and-excitation gates).

>>> import keras
>>> inputs = keras.Input((8, 8, 3))
>>> x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
>>> x = keras.layers.BatchNormalization(name="bn")(x)
>>> x = keras.layers.Flatten(name="flat")(keras.layers.ReLU(name="relu")(x))
>>> analysis = channel_groups(keras.Model(inputs, keras.layers.Dense(2, name="head")(x)))
>>> group, = analysis.groups
>>> group.name, group.size, group.carriers, group.consumers
('conv', 4, ('bn', 'relu', 'flat'), (('head', 0, 36),))
>>> analysis.whole
{'head': 'a model output'}
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from types import ModuleType

import keras
import tf_keras

try:  # Keras 3's class of functional models; not public API (Keras 3.15 here), so guarded
    from keras.src.models.functional import Functional
except ImportError:  # pragma: no cover - another Keras: Sequential models only, the others refused as subclassed
    Functional = keras.Sequential

from schedules import _validation as v
from schedules._channel_layers import ACTIVATIONS, DEPTHWISE, FLAT_OK, MERGES, PRODUCERS, at_zero, refusal

__all__ = ["ChannelAnalysis", "ChannelGroup", "channel_groups", "graph_module"]


@dataclass(frozen=True)
class ChannelGroup:
    """Channels removed together: the i-th channel of every member is one channel.

    Attributes:
      name: the name of its first producer (in `model.layers` order).
      size: the number of channels.
      producers: the layers whose kernel's last axis and bias are the channels.
      carriers: the layers on the way that keep the channel axis, in layer order.
      consumers: `(layer, offset, repeat)`: the channels are rows `position * C_total + offset + c`
        (`position < repeat`) of the layer's kernel's input axis of `C_total * repeat` rows.
    """

    name: str
    size: int
    producers: tuple[str, ...]
    carriers: tuple[str, ...]
    consumers: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class ChannelAnalysis:
    """The channel groups of a model, and the layers whose channels are left whole, each with the reason."""

    groups: tuple[ChannelGroup, ...]
    whole: dict[str, str]


@dataclass(frozen=True)
class _Segment:
    """Consecutive channels of a tensor's last axis: one group's (`gid`) or not followed (`None`)."""

    gid: int | None
    size: int
    unsafe: str = ""  # why a dropped channel may be nonzero here ("" when it is exactly zero)


@dataclass(frozen=True)
class _Tensor:
    segments: tuple[_Segment, ...]
    repeat: int = 1  # > 1 after a Flatten of spatial positions


@dataclass
class _Groups:
    """Union-find over the groups the walk makes; a root holds the members and the reason it is whole."""

    parent: list[int] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    producers: list[list[str]] = field(default_factory=list)
    carriers: list[list[str]] = field(default_factory=list)
    consumers: list[list[tuple[str, int, int]]] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)

    def new(self, producer: str, size: int) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.producers.append([producer])
        self.carriers.append([])
        self.consumers.append([])
        self.reason.append("")
        return len(self.parent) - 1

    def find(self, gid: int) -> int:
        while self.parent[gid] != gid:
            self.parent[gid] = gid = self.parent[self.parent[gid]]
        return gid

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.producers[a] += self.producers[b]
            self.carriers[a] += self.carriers[b]
            self.consumers[a] += self.consumers[b]
            self.reason[a] = self.reason[a] or self.reason[b]
        return a

    def whole(self, gid: int, reason: str) -> None:
        root = self.find(gid)
        self.reason[root] = self.reason[root] or reason


def graph_module(model) -> ModuleType:
    """The Keras module of a Sequential or functional `model` (`keras` or `tf_keras`); TypeError otherwise."""
    if isinstance(model, (keras.Sequential, Functional)) and model.built:
        return keras
    if getattr(model, "_is_graph_network", False):
        return tf_keras
    raise v.invalid(
        "model", "a built Sequential or functional Keras model (a subclassed model's graph cannot be read)",
        v.received(model=f"{type(model).__name__} {getattr(model, 'name', '')!r}"), TypeError
    )  # fmt: skip


def channel_groups(model) -> ChannelAnalysis:
    """The channel groups of a built Sequential or functional tf-keras or Keras 3 `model`.

    Raises:
      TypeError: `model` is subclassed (or not a Keras model).
    """
    graph_module(model)
    order = {layer.name: index for index, layer in enumerate(model.layers)}
    walk = _Walk(_nodes(model))
    for node in walk.nodes:
        walk.visit(node)
    for tensor in _flat(model.outputs):
        for segment in walk.tensors[id(tensor)].segments:
            if segment.gid is not None:  # the first reason to tell a user, whatever else keeps it whole
                walk.groups.reason[walk.groups.find(segment.gid)] = "a model output"
    groups, whole = [], dict(walk.whole)
    by_order = lambda name: order.get(name, len(order))  # noqa: E731
    for root in sorted({walk.groups.find(gid) for gid in range(len(walk.groups.parent))}):
        producers = sorted(dict.fromkeys(walk.groups.producers[root]), key=by_order)
        if walk.groups.reason[root]:
            whole.update(dict.fromkeys(producers, walk.groups.reason[root]))
            continue
        consumers = sorted(set(walk.groups.consumers[root]), key=lambda c: (by_order(c[0]), c[1]))
        carriers = sorted(dict.fromkeys(walk.groups.carriers[root]), key=by_order)
        size = walk.groups.size[root]
        groups.append(ChannelGroup(producers[0], size, tuple(producers), tuple(carriers), tuple(consumers)))
    groups.sort(key=lambda group: by_order(group.name))
    return ChannelAnalysis(tuple(groups), dict(sorted(whole.items(), key=lambda item: by_order(item[0]))))


def _flat(tensors) -> list:
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def _node_parts(node) -> tuple[object, list, list]:
    """`(layer or operation, input tensors, output tensors)` of a graph node, tf-keras' or Keras 3's."""
    if hasattr(node, "operation"):  # Keras 3
        return node.operation, list(node.input_tensors), list(node.output_tensors)
    return node.layer, _flat(node.keras_inputs), _flat(node.outputs)


def _nodes(model) -> list:
    """The graph's nodes from the inputs to `model.outputs`, each after the nodes it reads (depth first)."""
    ordered, seen = [], set()
    stack = [(tensor, False) for tensor in reversed(_flat(model.outputs))]
    while stack:
        item, expanded = stack.pop()
        if expanded:
            ordered.append(item)
            continue
        layer, node_index, _ = item._keras_history
        node = layer._inbound_nodes[node_index]
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((tensor, False) for tensor in reversed(_node_parts(node)[1]))
    return ordered


class _Walk:
    """Follows the channels node by node: each tensor's segments, the groups, the layers left whole."""

    def __init__(self, nodes: list) -> None:
        self.nodes = nodes
        self.tensors: dict[int, _Tensor] = {}
        self.groups = _Groups()
        self.whole: dict[str, str] = {}
        self.calls: dict[int, int] = {}  # id(layer) -> its calls in the graph
        for node in nodes:
            layer = _node_parts(node)[0]
            self.calls[id(layer)] = self.calls.get(id(layer), 0) + 1

    def visit(self, node) -> None:
        layer, inputs, outputs = _node_parts(node)
        kind = type(layer).__name__
        states = [self.tensors[id(tensor)] for tensor in inputs]
        why = refusal(layer, kind, inputs, self.calls[id(layer)])
        result: _Tensor | None = None
        if why:
            self._unknown(layer, states, why)
        elif kind in PRODUCERS:
            result = self._produce(layer, states[0], outputs[0])
        elif kind in MERGES:
            result = self._merge(layer, states)
        elif kind == "Concatenate":
            result = self._concatenate(layer, states)
        else:
            result = self._carry(layer, kind, states[0], inputs[0])
        for tensor in outputs:
            self.tensors[id(tensor)] = result or _opaque(tensor)

    def _unknown(self, layer, states: Iterable[_Tensor], why: str) -> None:
        for state in states:
            for segment in state.segments:
                if segment.gid is not None:
                    self.groups.whole(segment.gid, f"feeds {layer.name!r}: {why}")
        if getattr(layer, "weights", None):
            self.whole[layer.name] = why

    def _consume(self, layer, state: _Tensor) -> None:
        offset = 0
        for segment in state.segments:
            if segment.gid is not None:
                if segment.unsafe:
                    self.groups.whole(segment.gid, f"{segment.unsafe} reaches {layer.name!r}")
                self.groups.consumers[self.groups.find(segment.gid)].append((layer.name, offset, state.repeat))
            offset += segment.size

    def _produce(self, layer, state: _Tensor, output) -> _Tensor | None:
        if state.repeat > 1 and type(layer).__name__ != "Dense":
            self._unknown(layer, [state], "a flattened input")
            return None
        self._consume(layer, state)
        gid = self.groups.new(layer.name, int(output.shape[-1]))
        return _Tensor((_Segment(gid, int(output.shape[-1]), self._activated(layer, gid, "")),))

    def _activated(self, layer, gid: int, unsafe: str) -> str:
        """What `layer`'s activation leaves of a zero: `unsafe`, a new reason, or the group made whole."""
        name, zero = at_zero(layer)
        if zero is None:
            self.groups.whole(gid, f"activation {name!r} at {layer.name!r}")
        return unsafe if zero is not False else unsafe or f"{name} (f(0) != 0) at {layer.name!r}"

    def _carry(self, layer, kind: str, state: _Tensor, tensor) -> _Tensor | None:
        gids = {segment.gid for segment in state.segments}
        if gids == {None}:
            return None  # nothing followed goes through
        weighted = kind in DEPTHWISE or kind in ("BatchNormalization", "Reshape")
        if (weighted and len(state.segments) > 1) or (state.repeat > 1 and kind not in FLAT_OK):
            why = "several channel groups" if state.repeat == 1 else "a flattened input"
            self._unknown(layer, [state], f"{kind} over {why}")
            return None
        repeat = state.repeat
        if kind == "Flatten" and len(tensor.shape) > 2:
            repeat = math.prod(int(d) for d in tensor.shape[1:-1])
        segments = []
        for segment in state.segments:
            gid = segment.gid
            if gid is not None:
                self.groups.carriers[self.groups.find(gid)].append(layer.name)
                unsafe = segment.unsafe
                if kind in DEPTHWISE or kind == "BatchNormalization":  # their zeroed weights give exactly zero
                    unsafe = self._activated(layer, gid, "") if kind in DEPTHWISE else ""
                elif kind in ACTIVATIONS:
                    unsafe = self._activated(layer, gid, unsafe)
                segment = replace(segment, unsafe=unsafe)
            segments.append(segment)
        return _Tensor(tuple(segments), repeat)

    def _merge(self, layer, states: list[_Tensor]) -> _Tensor | None:
        sizes = {tuple(segment.size for segment in state.segments) for state in states}
        if len(sizes) > 1 or any(state.repeat > 1 for state in states):
            self._unknown(layer, states, "inputs whose channels do not line up")
            return None
        segments = []
        for parts in zip(*(state.segments for state in states), strict=True):
            gids = [part.gid for part in parts]
            if None in gids:
                for gid in gids:
                    if gid is not None:
                        self.groups.whole(gid, f"merged with channels not followed at {layer.name!r}")
                segments.append(_Segment(None, parts[0].size))
                continue
            for gid in gids[1:]:
                self.groups.union(gids[0], gid)
            self.groups.carriers[self.groups.find(gids[0])].append(layer.name)
            reasons = [part.unsafe for part in parts]
            unsafe = "" if type(layer).__name__ == "Multiply" and "" in reasons else next(filter(None, reasons), "")
            segments.append(_Segment(gids[0], parts[0].size, unsafe))
        return _Tensor(tuple(segments))

    def _concatenate(self, layer, states: list[_Tensor]) -> _Tensor | None:
        if any(state.repeat > 1 for state in states):
            self._unknown(layer, states, "a flattened input")
            return None
        for state in states:
            for segment in state.segments:
                if segment.gid is not None:
                    self.groups.carriers[self.groups.find(segment.gid)].append(layer.name)
        return _Tensor(tuple(segment for state in states for segment in state.segments))


def _opaque(tensor) -> _Tensor:
    last = tensor.shape[-1] if len(tensor.shape) else 1
    return _Tensor((_Segment(None, int(last) if last is not None else 0),))
