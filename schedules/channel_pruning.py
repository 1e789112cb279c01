"""Channel pruning on a schedule: `ChannelPruning`, one callback for tf-keras and Keras 3 models.

Magnitude pruning zeroes single weights: the file shrinks once compressed, but
the model runs no faster. Channel pruning zeroes whole output channels of the
layers that produce them (a convolution's filters, a Dense layer's units), so
that `schedules.channels.shrink` can remove them and return a smaller, faster
ordinary model. The channels that must go together (the layers feeding one
residual `Add`, a convolution and the depthwise convolution and normalization
after it) are one group (`schedules.channels.channel_groups`), ranked and
pruned as one.

At a step where the schedule's `should_prune` is true, each group at sparsity
`s` keeps its `k = max(1, round(C * (1 - s)))` highest-scoring channels of `C`
(tfmot's k rule, on channels), the score of channel `c` being the L2 norm of
its weights in all the group's producers (their kernels' slices along the
output axis, and biases), ties to the lower index:

```python
score[c] = sqrt(sum over producers p of sum(kernel_p[..., c] ** 2) + bias_p[c] ** 2)
```

The L2 norm of a filter is the usual criterion (Li et al., 2017, "Pruning
Filters for Efficient ConvNets", used L1; both rank alike in practice; L2 sums
the producers of a residual group as one vector). Every weight of a dropped
channel is then zero: the producers' slices and biases, and the slices of the
per-channel layers on its way (batch normalization's scale and offset,
depthwise kernels), so the channel's output is exactly 0 and shrinking the
model changes nothing it predicts. Between pruning steps the zeros are held as
the variables' constraint (applied by the optimizer after each step), as the
Keras 3 `PruningCallback` holds its masks.

Steps are the optimizer's (`iterations`; the first batch is step 1), on both
paths. The share of each group is the schedule's sparsity (`allocation="uniform"`)
or a dict from group name to its sparsity; weight-level allocations (ERK, LAMP)
rank weights, not channels, and are refused.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tf_keras

from schedules import _validation as v
from schedules import keras3_constraints, keras3_jax
from schedules._tfmot import PruningSchedule
from schedules.channels import ChannelAnalysis, channel_groups, channel_variables
from schedules.composition import peak_sparsity
from schedules.evaluation import EventLookup, expected_kept
from schedules.keras3_layers import is_keras3_model
from schedules.pruning import layer_schedule

__all__ = ["ChannelPruning", "channel_scores", "kept_channels"]


def channel_scores(model: Any, group: Any) -> np.ndarray:
    """The L2 norm of each of `group`'s channels over its producers' kernels and biases (float64)."""
    squares = np.zeros(group.size)
    for name in group.producers:
        layer = model.get_layer(name)
        for weight in (layer.kernel, getattr(layer, "bias", None)):
            if weight is not None:
                value = np.asarray(weight, np.float64)
                squares += np.sum(np.square(value.reshape(-1, value.shape[-1])), axis=0)
    return np.sqrt(squares)


def kept_channels(scores: np.ndarray, sparsity: float) -> np.ndarray:
    """The `k = max(1, round(C * (1 - s)))` highest scores kept (ties: the lower index), as booleans.

    >>> kept_channels(np.array([0.5, 2.0, 0.5, 1.0]), 0.5).tolist()
    [False, True, False, True]
    """
    k = int(expected_kept(sparsity, scores.size))
    order = np.argsort(-scores, kind="stable")
    keep = np.zeros(scores.size, bool)
    keep[order[:k]] = True
    return keep


class ChannelPruning(tf_keras.callbacks.Callback):
    """Prunes whole channels of a tf-keras or Keras 3 model while it trains, on a schedule's steps.

    ```python
    pruning = schedules.ChannelPruning(schedules.CubicSparsity(0.0, 0.5, 100, 1000))
    model.fit(x, y, epochs=10, callbacks=[pruning])
    small = schedules.channels.shrink(model, pruning.keep)  # a plain model, half the channels
    ```

    Args:
      schedule: any `PruningSchedule` whose peak sparsity is known; its
        sparsity is the share of each group's channels removed.
      allocation: `"uniform"` (every group at the schedule's sparsity) or a
        dict from group name (`channel_groups(model).groups[i].name`) to its
        peak sparsity, for every group (0 leaves a group whole).

    After `fit`, `keep` holds each group's kept channels (booleans) and
    `analysis` the groups and the layers left whole.

    Raises:
      TypeError: `schedule` is not a `PruningSchedule`, `allocation` is neither a
        string nor a dict; at the start of `fit`: a subclassed model (its graph
        cannot be read).
      ValueError: an unknown peak sparsity, an allocation method other than
        `"uniform"`; at the start of `fit`: a dict that does not name every
        group, a model with no group to prune.
    """

    def __init__(self, schedule: PruningSchedule, *, allocation: str | Mapping[str, float] = "uniform") -> None:
        super().__init__()
        if not isinstance(schedule, PruningSchedule):
            raise v.invalid("schedule", "a tfmot PruningSchedule", schedule, TypeError)
        peak = peak_sparsity(schedule)
        if peak is None or peak == 0.0:
            raise v.invalid("schedule", "a schedule whose peak sparsity is known and above 0", schedule)
        if isinstance(allocation, str):
            if allocation != "uniform":
                raise v.invalid(
                    "allocation",
                    "'uniform' or a dict from group name to sparsity (ERK and LAMP rank weights, not channels)",
                    allocation,
                )
        elif not isinstance(allocation, Mapping):
            raise v.invalid("allocation", "'uniform' or a dict from group name to sparsity", allocation, TypeError)
        self.schedule = schedule
        self.allocation = allocation
        self._peak = peak
        self.analysis: ChannelAnalysis | None = None
        #: Each group's kept channels (booleans), by group name.
        self.keep: dict[str, np.ndarray] = {}
        #: `(step, group, sparsity)` of every update in the current `fit`, in order.
        self.events: list[tuple[int, str, float]] = []
        self._masks: dict[str, list[tuple[Any, Any, tuple[int, ...]]]] = {}  # group -> (variable, mask, its shape)
        self._lookups: dict[str, EventLookup] = {}
        self._restore: list[tuple[Any, Any]] = []
        self._step = 1
        self._per_execution = 1
        self._model_ref: weakref.ref | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        model = self.model
        self._keras3 = is_keras3_model(model)
        if self._model_ref is None or self._model_ref() is not model:  # a new model: nothing of the last one's holds
            self.keep = {}
            self._model_ref = weakref.ref(model)
        self._per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
        analysis = channel_groups(model)
        if not analysis.groups:
            raise v.invalid("model", "a model with at least one group of channels to prune", model.name)
        shares = self._shares(analysis)
        self.analysis = analysis
        self.events = []
        groups = {group.name: group for group in analysis.groups if shares[group.name] > 0.0}
        self._groups = groups
        self._lookups = {name: EventLookup(layer_schedule(self.schedule, self._peak, shares[name])) for name in groups}
        self._masks = {}
        for name, group in groups.items():
            kept = self.keep.get(name)
            if kept is None or kept.shape != (group.size,):
                kept = self._found(model, group)
            self.keep[name] = kept
            self._masks[name] = []
            for variable, axis in channel_variables(model, group):
                shape = [1] * len(variable.shape)  # the channels along `axis`, broadcast over the rest
                shape[axis] = group.size
                mask = self._variable(kept.reshape(shape).astype(_dtype(variable)))
                self._masks[name].append((variable, mask, tuple(shape)))
        self.keep = {name: keep for name, keep in self.keep.items() if name in groups}
        layers = {name: ([v for v, _, _ in masks], [m for _, m, _ in masks]) for name, masks in self._masks.items()}
        keras3_constraints.unmask(variable for variables, _ in layers.values() for variable in variables)
        self._restore = keras3_constraints.constrain(layers)
        if self._keras3 and keras.backend.backend() == "jax":
            keras3_jax.attach(model, self._mask_variables())
        model.make_train_function(force=True)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._step = int(np.asarray(self.model.optimizer.iterations)) + 1

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # The pruning steps of the execution about to run (one step, unless `steps_per_execution` > 1),
        # applied before its first step, each group at the sparsity of its last pruning step in it.
        first = self._step
        self._step += self._per_execution
        pruned = {}
        for step in range(first, self._step):
            for name, lookup in self._lookups.items():
                should_prune, sparsity = lookup(step)
                if should_prune:
                    pruned[name] = sparsity
                    self.events.append((step, name, sparsity))
        if not pruned:
            return
        with keras3_jax.editing(self.model) if self._keras3 else contextlib.nullcontext():
            for name, sparsity in pruned.items():
                keep = kept_channels(channel_scores(self.model, self._groups[name]), sparsity)
                self.keep[name] = keep
                for variable, mask, shape in self._masks[name]:
                    value = keep.reshape(shape).astype(np.asarray(mask).dtype)
                    mask.assign(value)
                    variable.assign(np.asarray(variable) * value)

    def on_train_end(self, logs: dict | None = None) -> None:
        jax = self._keras3 and keras.backend.backend() == "jax"
        for masks in self._masks.values():  # an optimizer with `use_ema` has just overwritten the weights
            for variable, mask, _ in masks:
                variable.assign(np.asarray(variable) * np.asarray(mask))
        keras3_constraints.release(self._restore)
        self._restore = []
        if jax:
            keras3_jax.detach(self.model, self._mask_variables())
        self.model.train_function = None  # the next fit traces without the masks

    def _mask_variables(self) -> list[Any]:
        return [mask for masks in self._masks.values() for _, mask, _ in masks]

    def _variable(self, value: np.ndarray) -> Any:
        if self._keras3:
            return keras.Variable(value, trainable=False, name="channel_mask")
        return tf.Variable(value, trainable=False, name="channel_mask")

    def _shares(self, analysis: ChannelAnalysis) -> dict[str, float]:
        names = [group.name for group in analysis.groups]
        if self.allocation == "uniform":
            return dict.fromkeys(names, self._peak)
        assert isinstance(self.allocation, Mapping)
        missing = sorted(set(names) - set(self.allocation))
        unknown = sorted(set(self.allocation) - set(names))
        if missing or unknown:
            raise v.invalid(
                "allocation",
                f"a dict naming every channel group of the model (missing {missing}, unknown {unknown})",
                dict(self.allocation),
            )
        return {name: v.check_sparsity(f"allocation[{name!r}]", self.allocation[name]) for name in names}

    def _found(self, model: Any, group: Any) -> np.ndarray:
        """The channels a run before left (a channel with every producer weight 0 was pruned), else all."""
        scores = channel_scores(model, group)
        keep = scores > 0
        if not keep.any():
            warnings.warn(f"ChannelPruning: every channel of group {group.name!r} is zero", stacklevel=3)
            return np.ones(group.size, bool)
        return keep


def _dtype(variable: Any) -> np.dtype:
    """A variable's dtype as NumPy's (a string on Keras 3, a `tf.DType` on tf-keras)."""
    return np.dtype(getattr(variable.dtype, "as_numpy_dtype", variable.dtype))
