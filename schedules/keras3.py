"""Gradual magnitude pruning of Keras 3 models, on the same schedules.

tfmot 0.8 prunes only tf-keras (Keras 2) models. `PruningCallback` prunes a
Keras 3 model (the `keras` that TensorFlow 2.16 and later install) the way
tfmot's `prune_low_magnitude` with `UpdatePruningStep` prunes its tf-keras
twin: on the steps of any `PruningSchedule` (ours, tfmot's, your own), each
pruned kernel keeping its largest magnitudes, with each layer's share of the
sparsity from an allocation. The model keeps plain layers, so it saves and
reloads with `model.save` and `keras.models.load_model` and nothing to
register; the masks ride along in the `.keras` file (`keras3_masks`), and
`load_model` reloads them to resume a run exactly.

This module is the callback: its arguments, state and hooks. Beside it: the
layers it prunes (`keras3_selection`), the masks' variables and their update on
each backend (`keras3_updates`), the masks as the kernels' constraints in the
training step (`keras3_constraints`), the masks a resumed run starts from (`keras3_resume`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import keras
import numpy as np

from schedules import _validation as v
from schedules import fixed_masks, keras3_constraints, keras3_jax, keras3_patterns, keras3_updates
from schedules._tfmot import PruningSchedule
from schedules.allocation import METHODS
from schedules.composition import peak_sparsity
from schedules.evaluation import EventLookup
from schedules.inspection import LayerSparsity, SparsityReport
from schedules.keras3_constraints import Masked as Masked  # re-exported: schedules.keras3.Masked
from schedules.keras3_layers import is_keras3_model, prunable_kernels
from schedules.keras3_masks import ATTRIBUTE, PruningMasks, load_model, saved_masks
from schedules.keras3_resume import resume
from schedules.keras3_selection import chosen_kernels, kernel_ids
from schedules.pruning import AllocationLike, layer_schedule, layer_sparsities

__all__ = ["PruningCallback", "load_model", "pruning_of"]


#: Allocation methods that read the trained weights (the others read only the shapes).
WEIGHT_METHODS = ("global_magnitude", "lamp")

#: The callback pruning each model in its current `fit` (what `PruningRecorder` reads).
_PRUNING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: The Keras backends the callback prunes with.
BACKENDS = ("tensorflow", "jax", "torch")


def pruning_of(model: keras.Model) -> PruningCallback | None:
    """The `PruningCallback` pruning `model` in its current `fit`, or None."""
    return _PRUNING.get(model)


class PruningCallback(keras.callbacks.Callback):
    """Prunes a Keras 3 model by magnitude while it trains, on a `PruningSchedule`'s steps.

    The schedule sees the steps tfmot's wrappers see: the first training batch
    is step 1, counted from the optimizer's `iterations`, so a reloaded model
    (whose optimizer state is saved with it) resumes where it stopped, with the
    masks saved with it (reload it with `schedules.keras3.load_model`). (A model trained before without
    pruning: compile it again, so that the schedule starts at step 1; otherwise
    the pruning steps already passed are applied at once, with a `PlanWarning`.)
    At a step
    where `should_prune` is true, each pruned kernel's mask keeps the
    `k = max(1, round(n * (1 - s)))` largest magnitudes of its `n` weights
    (every weight tied with the k-th largest too, as tfmot does), and the
    kernel is multiplied by it before the step trains. After every optimizer
    step the masked weights are exact zeros: the mask is the kernel's
    `constraint` during `fit` (applied by the optimizer inside the compiled
    training step, with XLA and under `tf.distribute` too; a constraint the
    layer already had is applied first). The schedule is evaluated ahead of
    time, a few thousand steps per call (`EventLookup`), so a training step
    pays only a lookup.

    ```python
    pruning = schedules.keras3.PruningCallback(schedules.CubicSparsity(0.0, 0.9, 100, 1000), allocation="erk")
    model.fit(x, y, epochs=10, callbacks=[pruning])
    print(pruning.sparsity_report())
    ```

    Args:
      schedule: any tfmot `PruningSchedule` whose peak sparsity is known (ours,
        tfmot's `ConstantSparsity` and `PolynomialDecay`, compositions of them);
        None with `masks`: the given masks are held, nothing else is pruned.
      allocation: each layer's share, as for `schedules.prune_model`: a method
        name of `schedules.allocate` (not `"sensitivity"`, which needs data: pass
        its result), a dict from layer name to sparsity for every prunable
        layer, or a callable `(model, peak) -> dict`. A layer at sparsity 0 is
        not pruned.
      layers: the names of the layers to prune (default: every layer with
        weights tfmot would prune in the tf-keras twin, see
        `schedules.keras3_layers.KERNELS`). Each keeps the share the
        allocation gives it in the whole model.
      sparsity_m_by_n: `(m, n)` for `m` zeros in every `n` consecutive weights
        along the input channels, tfmot's argument and orientation (2:4 is what
        sparse hardware runs). The schedule decides when and how far, and must
        peak at `m / n`: at sparsity `s`, the smallest of each group's `m`
        smallest weights are zero, `s` of the layer in all where the groups
        allow (a last group shorter than `n` keeps at most `n - m`), and at
        `m / n` the masks are exactly the pattern (`keras3_patterns`). Allocation does not
        apply: `allocation` must be `"uniform"`.
      block_size: `(rows, columns)` of the blocks a 2-D kernel (`Dense`) is pruned
        in, as tfmot's argument: each block scored by `block_pooling_type`
        (`"AVG"` or `"MAX"` of its magnitudes), the blocks kept by the
        unstructured rule on their scores. Every pruned layer must have a 2-D
        kernel: pass `layers` on a model with others.
      masks: weights held at exactly zero (`schedules.fixed_masks`): a dict
        from layer name to a boolean mask of its pruned kernel (`True`: the
        weight trains), or a list of masks, one per kernel of
        `schedules.keras3_layers.prunable_kernels`; 0 and 1 count as booleans.
        With a schedule, a layer's sparsity `s` counts within its `a` allowed
        weights: it keeps the `max(1, round(a * (1 - s)))` largest of them.
        Saved with the model like the schedule's masks: give the same
        `masks` to the callback that resumes.

    An allocation that reads the weights (`"global_magnitude"`, `"lamp"`) reads
    them at the start of the first `fit`, before pruning; a new callback on a
    model that has trained since (a reloaded one) is refused: pass it the
    allocation computed before the first `fit` (`schedules.allocate`), a dict.

    The TensorFlow, JAX and PyTorch backends of Keras 3 are supported
    (`BACKENDS`); under JAX the masks ride in `fit`'s state with the optimizer's
    variables (`schedules.keras3_jax`); under JAX and PyTorch, and for a pattern
    or given masks on any backend, the masks are updated with NumPy
    (`keras3_patterns`). Another backend is refused.

    Raises:
      TypeError: `schedule` is not a `PruningSchedule` (nor None with `masks`),
        `allocation`, `layers` or `masks` is of the wrong type; the model is
        not a Keras 3 model.
      ValueError: a Keras backend other than TensorFlow, JAX or PyTorch, the schedule's peak
        sparsity is unknown or 0, an unknown allocation method, a pattern argument
        out of range, both patterns, an N:M pattern with another allocation than
        `"uniform"` or a schedule peaking elsewhere than `m / n`, `masks` with a pattern,
        a mask with a value other than 0 and 1 or with no weight allowed; at the start of
        `fit`: a weight-reading allocation method on a resumed run, a layer name the model does
        not have (in `layers` or `masks`), a layer with no kernel to prune, a mask of the wrong
        shape, a model with nothing to prune, blocks for a layer whose kernel is not 2-D.
    """

    def __init__(
        self,
        schedule: PruningSchedule | None = None,
        *,
        allocation: AllocationLike = "uniform",
        layers: Iterable[str] | None = None,
        sparsity_m_by_n: tuple[int, int] | None = None,
        block_size: tuple[int, int] = (1, 1),
        block_pooling_type: str = "AVG",
        masks: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if keras.backend.backend() not in BACKENDS:
            raise v.invalid(
                "keras.backend.backend()",
                "'tensorflow', 'jax' or 'torch' for PruningCallback (set KERAS_BACKEND to one of them)",
                keras.backend.backend(),
            )
        #: The masks given (`schedules.fixed_masks`), as boolean arrays by layer name.
        self.fixed = fixed_masks.check_masks(masks) if masks is not None else {}
        if schedule is None and masks is None:
            raise v.invalid("schedule", "a tfmot PruningSchedule, or None with `masks` (held masks)", None, TypeError)
        if schedule is None and layers is not None:
            raise v.invalid("layers", "None without a schedule (`masks` names its layers)", layers)
        if schedule is not None and not isinstance(schedule, PruningSchedule):
            raise v.invalid("schedule", "a tfmot PruningSchedule", schedule, TypeError)
        peak = None if schedule is None else peak_sparsity(schedule)
        if schedule is not None and (peak is None or peak == 0.0):
            raise v.invalid("schedule", "a schedule whose peak sparsity is known and above 0", schedule)
        if isinstance(allocation, str):
            v.check_choice("allocation", allocation, tuple(m for m in METHODS if m != "sensitivity"))
        elif not isinstance(allocation, Mapping) and not callable(allocation):
            raise v.invalid(
                "allocation", "a method name, a dict from layer name to sparsity, or a callable", allocation, TypeError
            )
        if layers is not None:
            if isinstance(layers, str) or not all(isinstance(name, str) for name in layers):
                raise v.invalid("layers", "a list of layer names", layers, TypeError)
            layers = list(layers)
        keras3_patterns.check_block_size(block_size)
        if masks is not None and (sparsity_m_by_n is not None or tuple(block_size) != (1, 1)):
            raise v.invalid(
                "masks",
                "None with sparsity_m_by_n or block_size (a pattern ranks whole groups or blocks, not allowed weights)",
                sorted(self.fixed),
            )
        self._rule = keras3_patterns.checked_rule(
            schedule, peak or 0.0, allocation, sparsity_m_by_n, block_size, block_pooling_type
        )
        self.sparsity_m_by_n = sparsity_m_by_n
        self.block_size = tuple(block_size)
        self.schedule = schedule
        self.allocation = allocation
        self.layers = layers
        self._peak = 0.0 if peak is None else peak
        #: Each pruned layer's schedule (the schedule, or scaled to the layer's share), set when `fit` starts.
        self.schedules: dict[str, PruningSchedule] = {}
        self._kernels: dict[str, list[keras.Variable]] = {}
        self._masks: dict[str, list[keras.Variable]] = {}
        self._constraints: list[tuple[keras.Variable, Any]] = []
        self._lookups: list[tuple[EventLookup, list[str]]] = []
        self._updater: Callable[[dict[str, float]], None] = lambda sparsities: None  # set when fit starts
        #: The masked training function of the last `fit`, and what it was traced for (`keras3_constraints`).
        self._traced: tuple[tuple[Any, ...], Any] | None = None
        self._step = 1
        self._per_execution = 1
        self._shares_of: weakref.ref | None = None
        self._sparsities: dict[str, float] = {}
        #: `(step, layer, sparsity)` of every mask update in the current `fit`, in order.
        self.events: list[tuple[int, str, float]] = []

    @property
    def kernels(self) -> dict[str, list[keras.Variable]]:
        """Each pruned layer's pruned kernels (the variables), in the order of `masks`."""
        return dict(self._kernels)

    @property
    def masks(self) -> dict[str, list[np.ndarray]]:
        """Each pruned layer's masks (1 kept, 0 pruned), one per pruned kernel, as NumPy arrays."""
        self._sync()
        return {name: [keras.ops.convert_to_numpy(mask) for mask in masks] for name, masks in self._masks.items()}

    def sparsity_report(self) -> SparsityReport:
        """Weights, target (the layer's peak sparsity), zeros and kept weights of each prunable layer."""
        self._sync()
        rows = []
        for name, kernels in prunable_kernels(self.model).items():
            schedule = self.schedules.get(name)
            zeros = sum(int(np.sum(keras.ops.convert_to_numpy(kernel) == 0)) for kernel in kernels)
            size = sum(int(np.prod(kernel.shape)) for kernel in kernels)
            rows.append(LayerSparsity(name, size, None if schedule is None else peak_sparsity(schedule), zeros))
        return SparsityReport(tuple(rows))

    def _sync(self) -> None:
        """Under JAX, in the middle of `fit`: the trainer's state into the variables, for reading them."""
        model = getattr(self, "_model", None)
        if _jax() and model is not None:
            model.jax_state_sync()

    def on_train_begin(self, logs: dict | None = None) -> None:
        model = self.model
        self._check_model(model)
        self.events = []
        every = prunable_kernels(model)
        allowed = fixed_masks.match_masks(self.fixed, every)  # each layer's given masks
        kernels = chosen_kernels(model, self.layers, self.block_size) if self.schedule is not None else {}
        keras3_constraints.unmask(kernel for name in {*kernels, *allowed} for kernel in every[name])
        done = int(keras.ops.convert_to_numpy(model.optimizer.iterations))  # steps trained so far
        shares = self._shares(model, done) if self.schedule is not None else {}
        self.schedules = {
            name: layer_schedule(self.schedule, self._peak, shares[name]) for name in kernels if shares[name] > 0.0
        }
        chosen = {name: kernels[name] for name in self.schedules} | {n: every[n] for n in allowed}  # held ones too
        same = kernel_ids(self._kernels) == kernel_ids(chosen)
        self._kernels = chosen
        by_schedule: dict[int, tuple[PruningSchedule, list[str]]] = {}
        for name, schedule in self.schedules.items():
            by_schedule.setdefault(id(schedule), (schedule, []))[1].append(name)
        self._lookups = [(EventLookup(schedule), names) for schedule, names in by_schedule.values()]

        if not same:  # else the last fit's masks and compiled functions serve again (`resume` sets the masks)
            self._masks = keras3_updates.mask_variables(model, self._kernels)
            layers = {name: (self._kernels[name], self._masks[name]) for name in self._kernels}
            self._updater = keras3_updates.updater(model, layers, allowed, self._rule)
            self._traced = None
        if _jax():  # the masks become part of the state the compiled step is passed
            keras3_jax.attach(model, [mask for ms in self._masks.values() for mask in ms])
        layers = {name: (self._kernels[name], self._masks[name]) for name in self._kernels}
        resume(self.schedules, layers, self._updater, saved_masks(model), done)
        fixed_masks.hold({name: layers[name] for name in allowed}, allowed)
        self._constraints = keras3_constraints.constrain(layers)
        setattr(model, ATTRIBUTE, PruningMasks(dict(self._masks)))  # saved with the model from now on
        _PRUNING[model] = self
        keras3_constraints.set_train_function(model, self._traced)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        # Counted again at each epoch: a loss-scaling optimizer does not count the steps it skips. (Reading
        # `iterations` at every batch would wait for each step to finish: about 0.6 ms a step, measured.)
        self._step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) + 1

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # The pruning steps of the execution about to run (one step, unless `steps_per_execution` > 1):
        # applied now, before its first step, each layer at the sparsity of its last pruning step in it.
        first = self._step
        self._step += self._per_execution
        pruned: dict[str, float] = {}
        for step in range(first, self._step):
            for lookup, names in self._lookups:
                should_prune, sparsity = lookup(step)
                if should_prune:
                    for name in names:
                        pruned[name] = sparsity
                        self.events.append((step, name, sparsity))
        if pruned:  # every layer pruned in this execution in one compiled call
            self._updater(pruned)

    def on_train_end(self, logs: dict | None = None) -> None:
        for name, kernels in self._kernels.items():  # an optimizer with `use_ema` has just overwritten them
            for kernel, mask in zip(kernels, self._masks[name], strict=True):
                kernel.assign(kernel * mask)
        keras3_constraints.release(self._constraints)
        self._constraints = []
        if _jax():
            keras3_jax.detach(self.model, [mask for ms in self._masks.values() for mask in ms])
        _PRUNING.pop(self.model, None)
        self._traced = keras3_constraints.traced(self.model)  # for the next fit with this callback
        self.model.train_function = None  # the next fit without it traces without the masks

    def _shares(self, model: keras.Model, done: int) -> dict[str, float]:
        """Each layer's sparsity, computed once per model: a method that reads the weights reads them before pruning."""
        if self._shares_of is not None and self._shares_of() is model:
            return self._sparsities
        if done > 0 and self.allocation in WEIGHT_METHODS:
            raise v.invalid(
                "allocation",
                "a dict once the optimizer has taken steps (a resumed run's weights have been pruned since; a model "
                "trained before: compile it again to start at step 1): pass "
                f"schedules.allocate(model, {self._peak}, {self.allocation!r}) computed before the first fit",
                self.allocation,
            )
        self._sparsities = layer_sparsities(model, self._peak, self.allocation)
        self._shares_of = weakref.ref(model)
        return self._sparsities

    def set_model(self, model: Any) -> None:
        if not is_keras3_model(model):  # before tf-keras' callback list calls a Keras 3 callback's private hooks
            kind = f"{type(model).__module__}.{type(model).__qualname__}"
            raise v.invalid(
                "model",
                "a Keras 3 model (a tf-keras model is pruned by tfmot: schedules.prune_model or prune_low_magnitude)",
                kind,
                TypeError,
            )
        super().set_model(model)

    def _check_model(self, model: Any) -> None:
        # Keras calls the batch hooks once per execution of `steps_per_execution` steps.
        self._per_execution = int(getattr(model, "steps_per_execution", 1) or 1)


def _jax() -> bool:
    return keras.backend.backend() == "jax"
