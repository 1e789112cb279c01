"""The base class every schedule in this package derives from.

`SparsitySchedule` owns what all schedules share, so that a family writes only
its formula and its own arguments:

* step handling: a Python int, an int32/int64 scalar tensor, or a tensor of
  steps, converted once to int64 (integer arithmetic before any float cast);
* gating: step 1 is an event whenever step 0 is, because training with
  tfmot never evaluates step 0 (each family supplies its own events: tfmot's
  grid, the end of the window, a stair, a cycle start);
* the result dtypes (`tf.bool`, `tf.float32`) and shapes (those of `step`);
* `get_config` in tfmot's `{'class_name', 'config'}` shape with the
  registered Keras name, and a `from_config` that accepts the inner dict too;
* `__repr__`.

Writing a family of your own takes a constructor that validates and stores
its arguments, and `call(step)` (decorate it with `@schedules.register` so that
saved models reload it):

>>> import tensorflow as tf
>>> class LinearSparsity(SparsitySchedule):
...     # Linear from 0 at step 0 to `final_sparsity` at `end_step`, pruning every `frequency` steps.
...     def __init__(self, final_sparsity: float, end_step: int, *, frequency: int = 10) -> None:
...         self.final_sparsity = v.check_sparsity("final_sparsity", final_sparsity)
...         self.end_step = v.check_int("end_step", end_step, minimum=1)
...         self.frequency = v.check_int("frequency", frequency, minimum=1)
...     def call(self, step):
...         events = tf.logical_and(step <= self.end_step, tf.equal(step % self.frequency, 0))
...         progress = tf.cast(tf.clip_by_value(step, 0, self.end_step), tf.float64) / self.end_step
...         return events, self.final_sparsity * progress
>>> should_prune, sparsity = LinearSparsity(0.8, 100)(tf.constant([0, 1, 55, 100]))
>>> should_prune.numpy().tolist(), [round(float(s), 3) for s in sparsity]
([True, True, False, True], [0.0, 0.008, 0.44, 0.8])
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules import _validation as v
from schedules.units import build_from_epochs

__all__ = ["SparsitySchedule"]

_S = TypeVar("_S", bound="SparsitySchedule")


class SparsitySchedule(tfmot.sparsity.keras.PruningSchedule, metaclass=abc.ABCMeta):
    """Base class: gating, step handling and serialization for every schedule.

    A subclass implements:

    * `call(step)`: `(events, sparsity)` at int64 `step` (any shape), both
      of `step`'s shape, from element-wise tf ops: the bool pruning events and
      the sparsity (any float dtype; the base casts to float32). Computing both
      in one place lets them share work. Inside a `tf.function` the base adds
      `call`'s ops twice: inline for the events and inside one function op for
      the sparsity (tfmot uses one result of each call); stateless ops whose
      result is not used are pruned (a `call` with stateful ops, such as a
      variable read, stays inline). `__call__` converts the step and carries a
      step-0 event to step 1.
    * its constructor, storing each argument (validated with
      `schedules._validation`, as a plain JSON value) in the attribute of the
      same name: `get_config` reads them back, `from_config` passes them in.
    * `step_arguments`, if its step arguments are not `begin_step`,
      `end_step` and `frequency` (for `from_epochs`).

    Register it with `@schedules.register` so saved models reload it.
    """

    # --- what a family implements -------------------------------------------------
    @abc.abstractmethod
    def call(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`(events, sparsity)` at each int64 step: bool and float tensors of `step`'s shape."""

    #: The constructor arguments counted in steps, which `from_epochs` takes in
    #: epochs (as `begin_epoch`, `end_epoch`, `frequency`, ...).
    step_arguments: tuple[str, ...] = ("begin_step", "end_step", "frequency")

    def _config(self) -> dict[str, Any]:
        """The constructor arguments, as JSON values: the attributes named after them."""
        values = {name: getattr(self, name) for name in _constructor_arguments(type(self))}
        return {name: list(value) if isinstance(value, list) else value for name, value in values.items()}

    #: Whether `call` is right at every int64 step. If not (the default, for
    #: families of users), the base raises steps below -1 to -1 first, so that
    #: `step - begin_step` cannot overflow; ours clip before they subtract.
    handles_every_step: bool = False

    #: Whether eager calls may run a compiled graph after a few calls, and the graph
    #: needs no `abs` against -0.0. Only where the graph gives the op-by-op values
    #: bit for bit and never -0.0: true for ours (the contract tests check both);
    #: not by default, since float32 ops can differ (tfmot's own `PolynomialDecay`
    #: does, in its last bits).
    compiles_eagerly: bool = False

    #: Whether every event lies in `[begin_step, end_step]` (from `begin_step` on when
    #: `end_step` is -1), besides step 1 carried from step 0: true for our families
    #: (`tests/test_properties.py` checks), which lets `SequentialSparsity` join its
    #: children's events with one `or` where each child's window lies in its stretch.
    _prunes_only_in_window: bool = False

    # --- what the base provides ---------------------------------------------------
    @tf.autograph.experimental.do_not_convert
    def __call__(self, step: int | np.integer | np.ndarray | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns `(should_prune, sparsity)` at `step`.

        Inside a `tf.function` (as tfmot calls it) this adds the schedule's ops
        to the graph. Called eagerly, the first `EAGER_CALLS_BEFORE_COMPILING`
        calls run op by op; later ones run one compiled graph (a concrete
        function for scalar steps), several times faster than op by op, with
        the same values.

        Args:
          step: a Python int, an integer tensor (int32 or int64), scalar or of
            any shape; tfmot passes an int64 scalar starting at 1.

        Returns:
          `should_prune` (`tf.bool`) and `sparsity` (`tf.float32`), both with
          the shape of `step`.
        """
        step = _as_int64_step(step)
        if tf.executing_eagerly():
            compiled = self._compiled()
            if compiled is not None:
                function, scalar = compiled
                return scalar(step) if step.shape.rank == 0 else function(step)
            return self._ops(step)
        # In a graph, as tfmot traces it: the events inline, the sparsity as one function op.
        # tfmot computes the sparsity inside its `tf.cond`, whose untaken branch TensorFlow still
        # walks op by op at every step: inline, every op of the sparsity costs every step; kept
        # whole (`_noinline`), it is one op that a step without pruning skips. (The events' share
        # of this call's ops is unused, and dropped, where tfmot uses only the sparsity.)
        function = self._sparsity_function()
        if _is_stateful(function.get_concrete_function(step)):
            # A `call` with state (a variable read, a print) would make the function op run at
            # every step (automatic control dependencies keep stateful ops) and twice per call.
            return self._ops(step)
        return self._ops(step)[0], function(step)

    def _sparsity_function(self) -> Any:
        """`_ops`' sparsity as a `tf.function` that a graph calls as one op (traced once per shape)."""
        function = self.__dict__.get("_schedules_sparsity")
        if function is None:
            function = self.__dict__["_schedules_sparsity"] = tf.function(
                lambda step: self._ops(step)[1],
                autograph=False,
                reduce_retracing=True,
                experimental_attributes={"_noinline": True},
            )
        return function

    def _compiled(self) -> tuple[Any, Any] | None:
        """The eager path's `(tf.function, its scalar concrete function)`, once
        the schedule has been called eagerly often enough to repay tracing."""
        compiled = self.__dict__.get("_schedules_compiled")
        if compiled is None:
            if not self._compiles():
                return None
            calls = self.__dict__["_schedules_eager_calls"] = self.__dict__.get("_schedules_eager_calls", 0) + 1
            if calls <= EAGER_CALLS_BEFORE_COMPILING:
                return None
            with tf.init_scope():
                function = tf.function(self._ops, autograph=False, reduce_retracing=True)
                scalar = function.get_concrete_function(tf.TensorSpec([], tf.int64))
            compiled = self.__dict__["_schedules_compiled"] = (function, scalar)
        return compiled

    def _compiles(self) -> bool:
        return self.compiles_eagerly

    #: What `__getstate__` leaves out: compiled functions (a subclass that keeps one adds its name).
    #: The base keeps its caches in attributes whose names start with `_schedules_`.
    _transient: tuple[str, ...] = ("_schedules_compiled", "_schedules_eager_calls", "_schedules_sparsity")

    def __getstate__(self) -> dict[str, Any]:
        """For pickle and `copy.deepcopy`: the arguments, without compiled functions."""
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def _ops(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The schedule's ops at int64 `step`: `call`, the step-0 event carried to step 1, the dtypes."""
        should_prune, sparsity = self._uncast_ops(step)
        sparsity = tf.cast(sparsity, tf.float32)
        # abs: sparsities are >= 0, and this removes any -0.0: TensorFlow's eager scalar
        # cache treats 0.0 and -0.0 as one constant, so either can appear op by op. Our
        # families' graphs (compiles_eagerly) make no -0.0 (the contract tests check).
        if tf.executing_eagerly() or not self._compiles():
            sparsity = tf.abs(sparsity)
        return should_prune, sparsity

    def _uncast_ops(self, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`_ops` before the sparsity is cast to float32: a composition of our schedules
        works on its children's float64 values and casts once."""
        if not self.handles_every_step:
            step = tf.maximum(step, -1)
        with tf.name_scope(type(self).__name__.lstrip("_") or "schedule"):  # a root scope cannot start with _
            should_prune, sparsity = self.call(step)
            # tfmot increments its step before the first training batch, so a
            # schedule never sees step 0: an event at step 0 is carried to step 1.
            if self._is_event_at_zero():
                should_prune = tf.logical_or(should_prune, tf.equal(step, 1))
        return should_prune, sparsity

    def _is_event_at_zero(self) -> bool:
        """Whether step 0 is a pruning event (evaluated once, eagerly)."""
        cached = self.__dict__.get("_schedules_event_at_zero")
        if cached is None:
            with tf.init_scope():
                cached = bool(self.call(tf.constant(0, tf.int64))[0].numpy())
            self.__dict__["_schedules_event_at_zero"] = cached
        return cached

    def get_config(self) -> dict[str, Any]:
        """tfmot's config shape: `{'class_name': <registered name>, 'config': {...}}`."""
        return {
            "class_name": tf_keras.utils.get_registered_name(type(self)),
            "config": self._config(),
        }

    @classmethod
    def from_config(cls: type[_S], config: Mapping[str, Any]) -> _S:
        """Builds a schedule from `get_config()` or from its inner `'config'` dict.

        Raises:
          TypeError: `config` is not a mapping, or a wrapped config names
            another class.
          ValueError: keys are missing or unknown, or a value is invalid.
        """
        if not isinstance(config, Mapping):
            raise v.invalid("config", "a dict", config, TypeError)
        if "config" in config and "class_name" in config:
            extra = sorted(set(config) - {"class_name", "config"})
            if extra:
                raise v.invalid("config", "{'class_name': ..., 'config': {...}} with no other keys", config)
            name = config["class_name"]
            accepted = {cls.__name__, tf_keras.utils.get_registered_name(cls)}
            if name not in accepted:
                raise v.invalid(
                    "config",
                    f"a config of {cls.__name__} (class_name in {sorted(accepted)})",
                    v.received(class_name=name),
                    TypeError,
                )
            config = config["config"]
            if not isinstance(config, Mapping):
                raise v.invalid("config['config']", "a dict", config, TypeError)
        params = inspect.signature(cls.__init__).parameters
        allowed = _constructor_arguments(cls)
        required = [p for p in allowed if params[p].default is inspect.Parameter.empty]
        unknown = sorted(set(config) - set(allowed))
        missing = [p for p in required if p not in config]
        if unknown or missing:
            raise v.invalid(
                "config",
                f"the constructor arguments of {cls.__name__}, {allowed} (unknown keys {unknown}, "
                f"missing keys {missing})",
                dict(config),
            )
        return cls(**config)

    @classmethod
    def from_epochs(cls: type[_S], *, steps_per_epoch: int, epochs: float | None = None, **arguments: Any) -> _S:
        """Builds the schedule with its step arguments given in epochs.

        Each argument counted in steps is given in epochs under its epoch name
        (`begin_step` as `begin_epoch`, `sparse_steps` as `sparse_epochs`;
        `frequency` and `boundaries` keep their names), may be fractional, and
        is converted once: `steps = round(epochs * steps_per_epoch)` (halves
        up). With `epochs`, the planned length of training, the schedule is
        checked against it (`check_plan`): a `PlanWarning` says if it prunes
        nothing in that time or does not reach its final sparsity.

        >>> from schedules import CubicSparsity
        >>> CubicSparsity.from_epochs(
        ...     initial_sparsity=0.0, final_sparsity=0.9, begin_epoch=1, end_epoch=8, frequency=0.5,
        ...     steps_per_epoch=45)
        CubicSparsity(initial_sparsity=0.0, final_sparsity=0.9, begin_step=45, end_step=360, frequency=23)

        Args:
          steps_per_epoch: training steps (batches) per epoch, an integer >= 1.
          epochs: the planned number of training epochs, or None (no check).
          **arguments: the constructor's arguments, the step ones in epochs.
        """
        return build_from_epochs(cls, steps_per_epoch, epochs, arguments)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"


def _is_stateful(function: Any) -> bool:
    """Whether a concrete function holds a stateful op (a call of it would be a `StatefulPartitionedCall`)."""
    return any(op.op_def.is_stateful for op in function.graph.get_operations())


def _constructor_arguments(cls: type) -> list[str]:
    return list(inspect.signature(cls).parameters)


_STEP_REQUIREMENT = "an integer or integer tensor in the int64 range"


#: Eager calls of one schedule that run op by op before it compiles itself (tracing
#: costs about as much as this many calls; a schedule called once, as in a test or a
#: plot, never pays for it).
EAGER_CALLS_BEFORE_COMPILING = 8


def _as_int64_step(step) -> tf.Tensor:
    """Converts a step (Python int, integer tensor or array) to an int64 tensor."""
    if not isinstance(step, (tf.Tensor, tf.Variable)):
        kind = np.asarray(step).dtype.kind if not isinstance(step, bool) else "b"
        if kind not in "iu" or isinstance(step, bool):  # floats, bools, strings, None, objects
            raise v.invalid("step", _STEP_REQUIREMENT, step, TypeError)
    try:
        step = tf.convert_to_tensor(step, dtype_hint=tf.int64)
    except (TypeError, ValueError, OverflowError):
        raise v.invalid("step", _STEP_REQUIREMENT, step, TypeError) from None
    if not step.dtype.is_integer:
        raise v.invalid("step", _STEP_REQUIREMENT, f"a tensor of dtype {step.dtype.name}", TypeError)
    return tf.cast(step, tf.int64)
