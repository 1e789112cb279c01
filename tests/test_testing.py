"""`schedules.testing.check_schedule` on correct and deliberately broken schedules.

The schedules here are plain tfmot `PruningSchedule` subclasses, as a user would
write them; each broken one breaks exactly one part of the contract.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules import testing
from schedules.testing import check_schedule

K = tfmot.sparsity.keras
ALL_BUT = {name: tuple(c for c in testing.CHECKS if c != name) for name in testing.CHECKS}
FAST = {"max_step": 300}  # the broken schedules break well before step 300


@tf_keras.utils.register_keras_serializable(package="tests")
class StairSparsity(K.PruningSchedule):
    """A correct user schedule: equal stairs up to `final_sparsity`, one per event.

    Events every `frequency` steps from `begin_step` to `end_step`; integer
    arithmetic on the step, one float32 cast of a small count.
    """

    def __init__(self, final_sparsity: float, begin_step: int, end_step: int, frequency: int = 10) -> None:
        self.final_sparsity = final_sparsity
        self.begin_step = begin_step
        self.end_step = end_step
        self.frequency = frequency
        self._validate_step(begin_step, end_step, frequency, False)
        self._validate_sparsity(final_sparsity, "final_sparsity")

    def _events(self, step: tf.Tensor) -> tf.Tensor:
        """How many events happened up to `step` (int64)."""
        total = (self.end_step - self.begin_step) // self.frequency + 1
        return tf.clip_by_value(tf.math.floordiv(step - self.begin_step, self.frequency) + 1, 0, total)

    def __call__(self, step):
        step = tf.cast(step, tf.int64)
        total = (self.end_step - self.begin_step) // self.frequency + 1
        should_prune = self._should_prune_in_step(
            step, tf.constant(self.begin_step, tf.int64), tf.constant(self.end_step, tf.int64), self.frequency
        )
        sparsity = self.final_sparsity * tf.cast(self._events(step), tf.float32) / total
        return should_prune, sparsity

    def get_config(self):
        return {
            "class_name": tf_keras.utils.get_registered_name(type(self)),
            "config": {
                "final_sparsity": self.final_sparsity,
                "begin_step": self.begin_step,
                "end_step": self.end_step,
                "frequency": self.frequency,
            },
        }


def stairs(cls: type[StairSparsity] = StairSparsity) -> StairSparsity:
    return cls(0.8, 20, 220, frequency=25)


# --- broken schedules, one fault each ------------------------------------------------------


@tf_keras.utils.register_keras_serializable(package="tests")
class NanAtStepSparsity(StairSparsity):
    def __call__(self, step):
        should_prune, sparsity = super().__call__(step)
        return should_prune, tf.where(tf.cast(step, tf.int64) == 123, float("nan"), sparsity)


@tf_keras.utils.register_keras_serializable(package="tests")
class AboveOneSparsity(StairSparsity):
    def __call__(self, step):
        should_prune, sparsity = super().__call__(step)
        return should_prune, tf.where(tf.cast(step, tf.int64) > 150, 1.5, sparsity)


@tf_keras.utils.register_keras_serializable(package="tests")
class Float64Sparsity(StairSparsity):
    def __call__(self, step):
        should_prune, sparsity = super().__call__(step)
        return should_prune, tf.cast(sparsity, tf.float64)


@tf_keras.utils.register_keras_serializable(package="tests")
class IntShouldPruneSparsity(StairSparsity):
    def __call__(self, step):
        should_prune, sparsity = super().__call__(step)
        return tf.cast(should_prune, tf.int32), sparsity


@tf_keras.utils.register_keras_serializable(package="tests")
class SumOfVectorSparsity(StairSparsity):
    """Reduces a vector of steps to one value."""

    def __call__(self, step):
        should_prune, sparsity = super().__call__(step)
        return should_prune, tf.reduce_max(sparsity)


@tf_keras.utils.register_keras_serializable(package="tests")
class FloatCastSparsity(StairSparsity):
    """Goes through a float32 -> int32 cast that overflows from step 2**31: eager wraps it to
    INT_MIN (so the sparsity drops to 0), XLA saturates it to INT_MAX (final sparsity)."""

    def _events(self, step):
        total = (self.end_step - self.begin_step) // self.frequency + 1
        steps_in = tf.cast(tf.cast(step - self.begin_step, tf.float32), tf.int32)
        return tf.cast(tf.clip_by_value(tf.math.floordiv(steps_in, self.frequency) + 1, 0, total), tf.int64)


@tf_keras.utils.register_keras_serializable(package="tests")
class PyFunctionSparsity(StairSparsity):
    """Runs Python inside the graph: XLA cannot compile it."""

    def __call__(self, step):
        should_prune, sparsity = super().__call__(step)
        return should_prune, tf.py_function(lambda s: s, [sparsity], tf.float32)


class UnregisteredSparsity(StairSparsity):
    """Not registered with tf-keras: its class_name would not resolve on load."""


@tf_keras.utils.register_keras_serializable(package="tests")
class BareClassNameSparsity(StairSparsity):
    """Registered as "tests>BareClassNameSparsity", but its config says "BareClassNameSparsity"."""

    def get_config(self):
        return {**super().get_config(), "class_name": type(self).__name__}


@tf_keras.utils.register_keras_serializable(package="tests")
class LossyConfigSparsity(StairSparsity):
    """Forgets `frequency`: the copy has the same config but other values."""

    def get_config(self):
        config = super().get_config()
        del config["config"]["frequency"]
        return config


@tf_keras.utils.register_keras_serializable(package="tests")
class NumpyConfigSparsity(StairSparsity):
    """Keeps a NumPy float32 in its config: not JSON-serializable."""

    def get_config(self):
        config = super().get_config()
        config["config"]["final_sparsity"] = np.float32(self.final_sparsity)
        return config


@tf_keras.utils.register_keras_serializable(package="tests")
class FlatConfigSparsity(StairSparsity):
    """A Keras-style flat config, without tfmot's {'class_name', 'config'} envelope."""

    def get_config(self):
        return super().get_config()["config"]


# --- correct schedules pass ----------------------------------------------------------------


def test_a_correct_user_schedule_passes():
    check_schedule(stairs())


def test_tfmot_polynomial_decay_passes():
    check_schedule(K.PolynomialDecay(0.1, 0.8, 100, 1000, frequency=50))


def test_tfmot_constant_sparsity_passes_with_a_scalar_sparsity_for_a_vector():
    schedule = K.ConstantSparsity(0.5, 100, 1000, frequency=100)
    assert schedule(tf.constant([1, 2], tf.int64))[1].shape == ()  # broadcast, accepted
    check_schedule(schedule)


def test_tfmot_polynomial_decay_with_begin_equal_to_end_fails_range():
    with pytest.raises(AssertionError, match=r"^check_schedule: range: sparsity at step 100 is nan"):
        check_schedule(K.PolynomialDecay(0.5, 0.5, 100, 100), **FAST)


def test_tfmot_polynomial_decay_with_a_root_power_differs_when_compiled():
    """Compiled, `p = step / 97` is computed as `step * (1 / 97)`, which is not exactly 1
    at end_step, and a cube root magnifies it: training's final sparsity is 0.796875."""
    schedule = K.PolynomialDecay(0.0, 0.8, 0, 97, power=1 / 3, frequency=1)
    with pytest.raises(AssertionError, match=r"compilers: at step 97, tf.function gives sparsity 0.79687"):
        check_schedule(schedule, max_step=100)


# --- broken schedules fail, naming the check, the step and the value -----------------------


def test_nan_fails_range_at_its_step():
    with pytest.raises(
        AssertionError,
        match=r"^check_schedule: range: sparsity at step 123 is nan, expected a finite number in \[0, 1\)$",
    ):
        check_schedule(stairs(NanAtStepSparsity), **FAST)


def test_sparsity_above_one_fails_range_at_the_first_such_step():
    with pytest.raises(AssertionError, match=r"^check_schedule: range: sparsity at step 151 is 1.5, expected"):
        check_schedule(stairs(AboveOneSparsity), skip=ALL_BUT["range"], **FAST)


def test_range_reaches_giant_steps():
    class NanAtGiantStep(StairSparsity):
        def __call__(self, step):
            should_prune, sparsity = super().__call__(step)
            return should_prune, tf.where(tf.cast(step, tf.int64) >= 2**62, float("nan"), sparsity)

    with pytest.raises(
        AssertionError,
        match=r"^check_schedule: range: sparsity at step 2\*\*62 = 4611686018427387904 is nan, expected",
    ):
        check_schedule(stairs(NanAtGiantStep), skip=ALL_BUT["range"], **FAST)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (Float64Sparsity, r"sparsity has dtype float64, expected tf.float32"),
        (IntShouldPruneSparsity, r"should_prune has dtype int32, expected tf.bool"),
        (SumOfVectorSparsity, r"vector of \d+ steps gives sparsity of shape \(\), expected|sparsity is .*, but the"),
    ],
    ids=["float64", "int32", "reduced"],
)
def test_wrong_dtype_or_shape_fails_dtypes(cls, message):
    with pytest.raises(AssertionError, match=r"^check_schedule: dtypes: .*" + message):
        check_schedule(stairs(cls), **FAST)


def test_eager_and_xla_disagreeing_at_a_giant_step_fails_compilers():
    with pytest.raises(
        AssertionError,
        match=r"^check_schedule: compilers: at step 2\*\*31 \+ 5 = 2147483653, "
        r"tf.function\(jit_compile=True\) gives sparsity 0.8, eager gives 0.0 \(tolerance 1e-06\)$",
    ):
        check_schedule(stairs(FloatCastSparsity), skip=ALL_BUT["compilers"], **FAST)


def test_an_op_xla_cannot_compile_fails_compilers():
    with pytest.raises(
        AssertionError, match=r"^check_schedule: compilers: tf.function\(jit_compile=True\) .* raised InvalidArgument"
    ):
        check_schedule(stairs(PyFunctionSparsity), skip=ALL_BUT["compilers"], **FAST)


def test_an_unregistered_class_fails_registration():
    with pytest.raises(
        AssertionError,
        match=r"^check_schedule: registration: class_name 'UnregisteredSparsity' .* not registered with tf-keras",
    ):
        check_schedule(stairs(UnregisteredSparsity), skip=ALL_BUT["registration"])


def test_a_class_name_other_than_the_registered_name_fails_registration():
    with pytest.raises(AssertionError, match=r"^check_schedule: registration: .* registered under, 'tests>BareClass"):
        check_schedule(stairs(BareClassNameSparsity), skip=ALL_BUT["registration"])


def test_a_config_that_loses_an_argument_fails_config():
    schedule = LossyConfigSparsity(0.8, 20, 220, frequency=25)  # the copy gets frequency=10
    with pytest.raises(
        AssertionError,
        match=r"^check_schedule: config: the copy rebuilt by LossyConfigSparsity.from_config\(get_config\(\)"
        r"\['config'\]\) differs at step 30: should_prune True in the copy, False in the original$",
    ):
        check_schedule(schedule, skip=ALL_BUT["config"], **FAST)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (NumpyConfigSparsity, r"is not JSON-serializable: Object of type float32"),
        (FlatConfigSparsity, r"expected tfmot's shape \{'class_name': str, 'config': dict\}"),
    ],
    ids=["numpy", "flat"],
)
def test_a_config_tfmot_cannot_store_fails_config(cls, message):
    with pytest.raises(AssertionError, match=r"^check_schedule: config: get_config\(\).* " + message):
        check_schedule(stairs(cls), skip=ALL_BUT["config"])


# --- options and arguments -----------------------------------------------------------------


def test_skip_leaves_out_the_named_checks():
    check_schedule(stairs(UnregisteredSparsity), skip=("registration", "compilers"), **FAST)
    check_schedule(stairs(NanAtStepSparsity), skip="range", **FAST)  # one name is enough


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"schedule": lambda step: (True, 0.5)}, TypeError, r"Argument `schedule` must be a tfmot"),
        ({"max_step": 0}, ValueError, r"Argument `max_step` must be an integer in \[1, 10000000\]\. Received: max"),
        ({"skip": ("speed",)}, ValueError, r"Argument `skip` must hold names from \['dtypes'"),
        ({"reload": ("zip",)}, ValueError, r"Argument `reload` must be a bool or formats from \['keras', 'h5'"),
    ],
    ids=["schedule", "max_step", "skip", "reload"],
)
def test_invalid_arguments(arguments, error, message):
    arguments = {"schedule": stairs(), **arguments}
    with pytest.raises(error, match=message):
        check_schedule(**arguments)


def test_reload_refuses_a_class_a_fresh_process_cannot_import():
    class LocalSparsity(StairSparsity):
        pass

    with pytest.raises(AssertionError, match=r"^check_schedule: reload: .*LocalSparsity is defined inside a function"):
        check_schedule(stairs(LocalSparsity), skip=ALL_BUT["reload"], reload=("keras",))

    LocalSparsity.__module__, LocalSparsity.__qualname__ = "__main__", "LocalSparsity"
    with pytest.raises(AssertionError, match=r"^check_schedule: reload: LocalSparsity is defined in __main__, so"):
        check_schedule(stairs(LocalSparsity), skip=ALL_BUT["reload"], reload=True)


@pytest.mark.slow
def test_reload_in_a_fresh_process():
    """The user schedule of this test module reloads from `.keras` in a fresh process,
    which imports this module (it gets this process's sys.path)."""
    check_schedule(stairs(), skip=ALL_BUT["reload"], reload=("keras",))


def test_the_package_imports_only_tensorflow_tf_keras_tfmot_numpy_and_the_standard_library():
    """Every module of `schedules.testing`, the fresh process's program too, imports only these and its
    own package's modules: nothing else of `schedules`."""
    allowed = {"tensorflow", "tf_keras", "tensorflow_model_optimization", "numpy", "__future__"}
    modules = sorted(Path(testing.__file__).parent.glob("*.py"))
    assert {path.stem for path in modules} >= {"__init__", "_reload_child"}
    for path in modules:
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {
            importlib.util.resolve_name("." * node.level + (node.module or ""), testing.__name__)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        own = {name for name in imported if f"{name}.".startswith(f"{testing.__name__}.")}
        roots = {name.split(".")[0] for name in imported - own}
        assert roots - allowed <= set(sys.stdlib_module_names), (path.name, roots - allowed)
