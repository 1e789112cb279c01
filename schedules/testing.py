"""`check_schedule`: the contract tfmot relies on, as a check anyone can run on any schedule.

Like chex for Optax: pass any `tfmot.sparsity.keras.PruningSchedule` (ours, tfmot's
own, your own subclass) and it raises `AssertionError` naming the first broken part
of the contract. This module imports only TensorFlow, tf-keras, tfmot, NumPy and
the standard library (no other module of this package, no matplotlib), so it also
checks schedules that have nothing to do with this package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

__all__ = ["CHECKS", "FORMATS", "GIANT_STEPS", "check_schedule"]

#: The check names, in the order they run. "reload" runs only when asked for.
CHECKS = ("dtypes", "range", "compilers", "config", "registration", "reload")

#: The save formats of the "reload" check: file or directory name by format.
FORMATS = {"keras": "model.keras", "h5": "model.h5", "savedmodel": "savedmodel"}

#: Steps far beyond float32's exact integers (2**24) and int32, up to 2**62.
GIANT_STEPS = (2**24 + 1, 2**31 + 5, 2**40 + 12_345, 2**62)

#: tfmot's wrapper resolves its two built-in schedules itself, with exactly these
#: `custom_objects` (`PruneLowMagnitude.from_config`); any other class must be
#: registered with tf-keras.
_TFMOT_BUILT_INS = {
    "ConstantSparsity": tfmot.sparsity.keras.ConstantSparsity,
    "PolynomialDecay": tfmot.sparsity.keras.PolynomialDecay,
}

_COND_EVENTS = 50  # "compilers" calls the tf.cond step at the first and last this many events
_TRAIN_STEPS = 3  # the "reload" model is saved at this step
_RELOAD_TIMEOUT = 600  # seconds for the fresh process (importing TensorFlow is most of it)

_T = TypeVar("_T")


def check_schedule(
    schedule: tfmot.sparsity.keras.PruningSchedule,
    *,
    max_step: int = 2000,
    atol: float = 1e-6,
    skip: str | Iterable[str] = (),
    reload: bool | Iterable[str] = False,
) -> None:
    """Checks that `schedule` keeps the contract tfmot's pruning wrapper relies on.

    With `steps` the int64 vector ``0, 1, ..., max_step`` followed by `GIANT_STEPS`
    (``2**24 + 1, 2**31 + 5, 2**40 + 12345, 2**62``), ``p, s = schedule(step)``,
    and ``==`` for sparsities meaning "within `atol`" between different ways of
    computing the same value and "bit for bit" between a schedule and its copy:

    ```python
    "dtypes":        for step as a Python int, a NumPy int64, an int32 and an int64 scalar tensor:
                         p.dtype == tf.bool, s.dtype == tf.float32, p.shape == s.shape == ()
                     for an int64 vector `v` of sample steps (those that fit int32 for int32):
                         p.dtype == tf.bool, s.dtype == tf.float32
                         p.shape, s.shape in {v.shape, ()}        # () broadcasts (tfmot's ConstantSparsity)
                         schedule(v)[k][i] == schedule(v[i])[k]   # for every kind of scalar step
    "range":         isfinite(s) and 0 <= s < 1                   # for every step in `steps`
    "compilers":     eager(steps) == tf.function(steps) == tf.function(jit_compile=True)(steps)
                     tf.cond(p, lambda: s, lambda: -1.0) in a tf.function(jit_compile=True), with
                         the step an int64 variable (as tfmot does it) == eager, and no NaN, at the
                         first and last 50 steps where p is true, at sample steps and giant steps
    "config":        c = schedule.get_config() has tfmot's shape {"class_name": str, "config": dict}
                     json.dumps(c) works; with j = json.loads(json.dumps(c)):
                     r = type(schedule).from_config(j["config"])     # what tf-keras calls on load
                     type(r) is type(schedule); r.get_config() == j; r(steps) == schedule(steps)
    "registration":  tf_keras.utils.get_registered_object(c["class_name"]) is type(schedule)
                     type(tf_keras.utils.deserialize_keras_object(j, module_objects={}, custom_objects={}))
                         is type(schedule)
                     # tfmot's ConstantSparsity and PolynomialDecay pass: its wrapper resolves them itself
    "reload":        (only with `reload`) a tiny tf-keras model pruned with this schedule, trained
                     3 steps with UpdatePruningStep, saved in each format and loaded in a fresh
                     Python process that imports only type(schedule).__module__:
                         the restored schedule is a type(schedule) with the same config and values,
                         the pruning step is 3, and one more training step makes it 4
    ```

    The `from_config` check uses the inner dict `c["config"]` because that is what
    tf-keras passes when it rebuilds a schedule; tfmot's own classes do not accept
    the whole `c`. A schedule that refuses float steps, or a `-0.0` sparsity, is
    a policy of its own, not part of this contract, so neither is checked.

    Example:

    >>> import tensorflow_model_optimization as tfmot
    >>> check_schedule(tfmot.sparsity.keras.PolynomialDecay(0.0, 0.8, 0, 100, frequency=10), max_step=200)
    >>> check_schedule(tfmot.sparsity.keras.PolynomialDecay(0.5, 0.5, 100, 100))  # begin_step == end_step
    Traceback (most recent call last):
      ...
    AssertionError: check_schedule: range: sparsity at step 100 is nan, expected a finite number in [0, 1)

    Args:
      schedule: the schedule to check.
      max_step: check every step from 0 to `max_step` (and the giant steps).
      atol: the tolerance for sparsities computed in different ways (scalar and
        vector calls, eager and compiled). The default, 1e-6 (about 16 float32
        ulps near 1), passes float32 formulas such as tfmot's
        `PolynomialDecay(power=3)`, whose compiled graph rewrites the division
        and differs from eager by up to 2.2e-7; a schedule that computes in
        float64 and casts once agrees within 6e-8, so `atol=1e-7` holds it to that.
      skip: the name of a check not to run, or several names, from `CHECKS`.
      reload: also run the "reload" check (it spawns a Python process, about 10 s):
        `True` for every format in `FORMATS` ("keras", "h5", "savedmodel"), or
        an iterable of some of them. The schedule's class must be importable
        from `type(schedule).__module__` in a fresh process: a class defined
        in `__main__` or inside a function fails this check. The fresh process
        gets this process's `sys.path`, so a class defined at the top of a test
        module can pass.

    Raises:
      AssertionError: a check fails. The message starts with
        ``check_schedule: <check>:`` and names the first failing step and the
        value seen there.
      TypeError, ValueError: `schedule` is not a `PruningSchedule`, or an option
        is invalid.
    """
    if not isinstance(schedule, tfmot.sparsity.keras.PruningSchedule):
        raise TypeError(
            "Argument `schedule` must be a tfmot.sparsity.keras.PruningSchedule. "
            f"Received: schedule={schedule!r} of type {type(schedule).__name__}"
        )
    if isinstance(max_step, bool) or not isinstance(max_step, (int, np.integer)) or not 1 <= max_step <= 10**7:
        raise ValueError(f"Argument `max_step` must be an integer in [1, 10000000]. Received: max_step={max_step!r}")
    if not 0 <= atol < 1:
        raise ValueError(f"Argument `atol` must be a number in [0, 1). Received: atol={atol!r}")
    skipped = {skip} if isinstance(skip, str) else set(skip)
    if not skipped <= set(CHECKS):
        raise ValueError(f"Argument `skip` must hold names from {list(CHECKS)}. Received: skip={skip!r}")
    formats = _formats(reload)

    steps = np.concatenate([np.arange(int(max_step) + 1), GIANT_STEPS]).astype(np.int64)
    sample = np.unique(np.concatenate([[0, 1, 2, 3], np.linspace(0, max_step, 9).astype(np.int64), GIANT_STEPS]))
    checks: dict[str, Callable[[], None]] = {
        "dtypes": lambda: _check_dtypes(schedule, sample, atol),
        "range": lambda: _check_range(schedule, steps),
        "compilers": lambda: _check_compilers(schedule, steps, sample, atol),
        "config": lambda: _check_config(schedule, steps),
        "registration": lambda: _check_registration(schedule),
        "reload": lambda: _check_reload(schedule, steps, formats),
    }
    for name, check in checks.items():
        if name not in skipped and (name != "reload" or formats):
            check()


# --- helpers -----------------------------------------------------------------------------


def _formats(reload: bool | Iterable[str]) -> tuple[str, ...]:
    if isinstance(reload, bool):
        return tuple(FORMATS) if reload else ()
    formats = (reload,) if isinstance(reload, str) else tuple(reload)
    if not formats or not set(formats) <= set(FORMATS):
        raise ValueError(
            f"Argument `reload` must be a bool or formats from {list(FORMATS)}. Received: reload={reload!r}"
        )
    return formats


def _failure(check: str, message: str) -> AssertionError:
    return AssertionError(f"check_schedule: {check}: {message}")


def _attempt(check: str, action: str, function: Callable[[], _T]) -> _T:
    """Runs `function` (which calls schedule or TensorFlow code); an exception fails `check`."""
    try:
        return function()
    except Exception as error:
        text = str(error).strip().splitlines()
        detail = text[0][:500] if text else ""
        raise _failure(check, f"{action} raised {type(error).__name__}: {detail}") from error


def _show_step(step: int) -> str:
    """`2**62 = 4611686018427387904` for giant steps near a power of two, else the number."""
    step = int(step)
    if step < 2**24:
        return str(step)
    power = step.bit_length() - 1
    rest = step - 2**power
    if rest >= 10**6:
        return str(step)
    return f"2**{power}{f' + {rest}' if rest else ''} = {step}"


def _dtype_name(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return f"a {type(value).__name__} without a dtype"
    try:
        return tf.as_dtype(dtype).name
    except TypeError:
        return str(dtype)


def _pair(check: str, what: str, result: Any) -> tuple[Any, Any]:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise _failure(check, f"{what} returned {result!r}, expected a pair (should_prune, sparsity)")
    return result[0], result[1]


def _evaluate(check: str, schedule: Any, steps: np.ndarray, action: str = "") -> tuple[np.ndarray, np.ndarray]:
    """`schedule` on an int64 vector of steps, as NumPy arrays of the steps' shape."""
    what = action or f"calling the schedule on an int64 vector of {steps.size} steps"
    should_prune, sparsity = _pair(check, what, _attempt(check, what, lambda: schedule(tf.constant(steps, tf.int64))))
    return _broadcast(check, what, should_prune, sparsity, steps)


def _broadcast(
    check: str, what: str, should_prune: Any, sparsity: Any, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, value in (("should_prune", should_prune), ("sparsity", sparsity)):
        array = np.asarray(value)
        if array.shape not in (steps.shape, ()):
            raise _failure(
                check, f"{what} gives {name} of shape {array.shape}, expected {steps.shape} (or a scalar, broadcast)"
            )
        arrays.append(np.broadcast_to(array, steps.shape))
    return arrays[0], arrays[1]


def _first_mismatch(a: np.ndarray, b: np.ndarray, atol: float | None) -> int | None:
    """The first index where `a` and `b` differ (NaN equals NaN); `atol=None` means exactly."""
    if atol is None or a.dtype == bool:
        same = (a == b) | (np.isnan(a) & np.isnan(b) if a.dtype.kind == "f" else False)
    else:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        same = (np.abs(a64 - b64) <= atol) | (np.isnan(a64) & np.isnan(b64))
    wrong = np.flatnonzero(~np.asarray(same))
    return int(wrong[0]) if wrong.size else None


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two JSON-like values first differ, as a readable path, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{path}[{key!r}] is {'missing' if key not in a else a[key]!r} in the copy"
            found = _first_difference(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if a != b:
        return f"{path or 'the config'} is {a!r} in the copy, {b!r} in the original"
    return None


def _same_values(check: str, what: str, copy: Any, original: Any, steps: np.ndarray) -> None:
    """`copy` evaluates bit for bit like `original` on `steps` (arrays or schedules)."""
    for index, name in enumerate(("should_prune", "sparsity")):
        mine = np.asarray(copy[index])
        theirs = np.asarray(original[index])
        wrong = _first_mismatch(mine, theirs, None)
        if wrong is not None:
            raise _failure(
                check,
                f"{what} differs at step {_show_step(steps[wrong])}: {name} {mine[wrong]!s} in the copy, "
                f"{theirs[wrong]!s} in the original",
            )


# --- the checks --------------------------------------------------------------------------


def _check_dtypes(schedule: Any, sample: np.ndarray, atol: float) -> None:
    check = "dtypes"
    what = f"an int64 vector of {sample.size} steps"
    should_prune, sparsity = _pair(
        check,
        f"calling the schedule on {what}",
        _attempt(check, f"calling the schedule on {what}", lambda: schedule(tf.constant(sample, tf.int64))),
    )
    _check_types(check, f"for {what}", should_prune, sparsity)
    vector = _broadcast(check, f"{what}", should_prune, sparsity, sample)

    kinds: dict[str, Callable[[int], Any]] = {
        "a Python int": int,
        "a NumPy int64": np.int64,
        "an int32 scalar tensor": lambda step: tf.constant(step, tf.int32),
        "an int64 scalar tensor": lambda step: tf.constant(step, tf.int64),
    }
    for kind, make in kinds.items():
        for i, step in enumerate(sample.tolist()):
            if kind.startswith("an int32") and step >= 2**31:
                continue
            where = f"for {kind} step {_show_step(step)}"
            result = _attempt(check, f"calling the schedule {where}", lambda make=make, step=step: schedule(make(step)))
            p, s = _pair(check, f"the schedule {where}", result)
            _check_types(check, where, p, s)
            for name, value in (("should_prune", p), ("sparsity", s)):
                if np.shape(value) != ():
                    raise _failure(check, f"{where}, {name} has shape {np.shape(value)}, expected a scalar ()")
            for name, got, expected in (("should_prune", p, vector[0][i]), ("sparsity", s, vector[1][i])):
                got = np.asarray(got)
                if _first_mismatch(got.reshape(1), np.asarray(expected).reshape(1), atol) is not None:
                    raise _failure(
                        check,
                        f"{where}, {name} is {got!s}, but the vector call gives {expected!s} at that step"
                        + (f" (tolerance {atol})" if name == "sparsity" else ""),
                    )


def _check_types(check: str, where: str, should_prune: Any, sparsity: Any) -> None:
    for name, value, expected in (("should_prune", should_prune, "bool"), ("sparsity", sparsity, "float32")):
        found = _dtype_name(value)
        if found != expected:
            raise _failure(check, f"{where}, {name} has dtype {found}, expected tf.{expected}")


def _check_range(schedule: Any, steps: np.ndarray) -> None:
    check = "range"
    _, sparsity = _evaluate(check, schedule, steps)
    values = sparsity.astype(np.float64)
    with np.errstate(invalid="ignore"):
        wrong = np.flatnonzero(~(np.isfinite(values) & (values >= 0) & (values < 1)))
    if wrong.size:
        i = int(wrong[0])
        raise _failure(
            check,
            f"sparsity at step {_show_step(steps[i])} is {sparsity[i]!s}, expected a finite number in [0, 1)",
        )


def _check_compilers(schedule: Any, steps: np.ndarray, sample: np.ndarray, atol: float) -> None:
    check = "compilers"
    eager = _evaluate(check, schedule, steps, "the eager call on the vector of steps")

    def run(step_tensor: tf.Tensor) -> Any:
        return schedule(step_tensor)

    for label, jit_compile in (("tf.function", False), ("tf.function(jit_compile=True)", True)):
        compiled = tf.function(run, jit_compile=jit_compile)
        other = _evaluate(check, compiled, steps, f"{label} on the vector of steps")
        for name, mine, theirs in zip(("should_prune", "sparsity"), other, eager, strict=True):
            wrong = _first_mismatch(mine, theirs, atol)
            if wrong is not None:
                raise _failure(
                    check,
                    f"at step {_show_step(steps[wrong])}, {label} gives {name} {mine[wrong]!s}, "
                    f"eager gives {theirs[wrong]!s}" + (f" (tolerance {atol})" if name == "sparsity" else ""),
                )

    # As tfmot's wrapper does it, under XLA (where fusion can turn `0.0 ** (1/3)` into NaN):
    # the step is an int64 variable, incremented in the training step, and the sparsity is
    # computed only inside `tf.cond(should_prune, ...)`.
    events = steps[np.asarray(eager[0], dtype=bool)]
    if events.size > 2 * _COND_EVENTS:  # each probe is one call; the edges of a window are what break
        events = np.concatenate([events[:_COND_EVENTS], events[-_COND_EVENTS:]])
    probe = np.unique(np.concatenate([events, sample]))
    position = {int(step): i for i, step in enumerate(steps.tolist())}
    step_variable = tf.Variable(-1, dtype=tf.int64, trainable=False)

    def train_step() -> tuple[tf.Tensor, tf.Tensor]:
        step_variable.assign_add(1)
        should_prune = schedule(step_variable)[0]

        def update() -> tf.Tensor:
            return tf.cast(schedule(step_variable)[1], tf.float32)

        return should_prune, tf.cond(should_prune, update, lambda: tf.constant(-1.0, tf.float32))

    compiled = tf.function(train_step, jit_compile=True)
    where = "inside tf.cond(should_prune, ...) under XLA"
    for step in probe.tolist():
        step_variable.assign(step - 1)
        p, s = _attempt(check, f"the schedule {where} at step {_show_step(step)}", compiled)
        p, s = bool(p), np.float32(s)
        i = position[step]
        if p != bool(eager[0][i]):
            raise _failure(
                check, f"{where}, should_prune at step {_show_step(step)} is {p}, eager gives {bool(eager[0][i])}"
            )
        expected = eager[1][i] if p else np.float32(-1.0)
        if _first_mismatch(np.array([s]), np.array([expected]), atol) is not None:
            raise _failure(
                check,
                f"{where}, sparsity at step {_show_step(step)} is {s!s}, eager gives {expected!s}"
                + ("" if np.isnan(s) else f" (tolerance {atol})"),
            )


def _json_config(check: str, schedule: Any) -> dict[str, Any]:
    """`schedule.get_config()` checked for tfmot's shape and passed through JSON."""
    config = _attempt(check, "get_config()", schedule.get_config)
    if not (
        isinstance(config, dict)
        and isinstance(config.get("class_name"), str)
        and isinstance(config.get("config"), dict)
    ):
        raise _failure(
            check,
            f"get_config() returned {config!r}, expected tfmot's shape {{'class_name': str, 'config': dict}} "
            "(tfmot's wrapper stores it and rebuilds the schedule from its class_name)",
        )
    try:
        text = json.dumps(config)
    except (TypeError, ValueError) as error:
        raise _failure(check, f"get_config() = {config!r} is not JSON-serializable: {error}") from error
    return json.loads(text)


def _check_config(schedule: Any, steps: np.ndarray) -> None:
    check = "config"
    config = _json_config(check, schedule)
    cls = type(schedule)
    action = f"{cls.__name__}.from_config(get_config()['config'])"
    copy = _attempt(check, action, lambda: cls.from_config(config["config"]))
    if type(copy) is not cls:
        raise _failure(check, f"{action} returned a {type(copy).__qualname__}, expected a {cls.__qualname__}")
    copy_config = _json_config(check, copy)
    difference = _first_difference(copy_config, config)
    if difference:
        raise _failure(check, f"the config of the copy rebuilt by {action} differs: {difference}")
    _same_values(
        check, f"the copy rebuilt by {action}", _evaluate(check, copy, steps), _evaluate(check, schedule, steps), steps
    )


def _check_registration(schedule: Any) -> None:
    check = "registration"
    cls = type(schedule)
    config = _json_config(check, schedule)
    class_name = config["class_name"]
    if _TFMOT_BUILT_INS.get(class_name) is cls:
        custom_objects = {class_name: cls}  # as tfmot's wrapper passes them
    else:
        custom_objects = {}
        found = tf_keras.utils.get_registered_object(class_name)
        registered_name = tf_keras.utils.get_registered_name(cls)
        is_registered = tf_keras.utils.get_registered_object(registered_name) is cls
        if found is not cls:
            if found is not None:
                problem = (
                    f"resolves to {found.__module__}.{found.__qualname__}, not to {cls.__module__}.{cls.__qualname__}"
                )
            elif is_registered:
                problem = (
                    f"is not the name {cls.__qualname__} is registered under, {registered_name!r}: "
                    "write class_name = tf_keras.utils.get_registered_name(type(self)) in get_config()"
                )
            else:
                problem = (
                    f"does not resolve: {cls.__qualname__} is not registered with tf-keras. Decorate it with "
                    "@tf_keras.utils.register_keras_serializable(package=...) (tf-keras, not Keras 3) and write "
                    "class_name = tf_keras.utils.get_registered_name(type(self)) in get_config()"
                )
            raise _failure(
                check, f"class_name {class_name!r} from get_config() {problem}; tfmot's wrapper could not reload it"
            )
    action = "tf_keras.utils.deserialize_keras_object(get_config(), module_objects={}, custom_objects={})"
    restored = _attempt(
        check,
        action,
        lambda: tf_keras.utils.deserialize_keras_object(config, module_objects={}, custom_objects=custom_objects),
    )
    if type(restored) is not cls:
        raise _failure(check, f"{action} returned {restored!r}, expected a {cls.__qualname__}")


# --- reload in a fresh process -----------------------------------------------------------

# Runs in a fresh interpreter: argv[1] is the request (JSON), argv[2] where to write the report.
_LOADER = textwrap.dedent(
    """
    import importlib, json, os, sys, traceback
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(sys.argv[1]) as file:
        request = json.load(file)
    sys.path[:] = request["sys_path"]
    report = {}
    try:
        importlib.import_module(request["module"])
    except BaseException as error:
        report["import_error"] = f"{type(error).__name__}: {error}"
    if "import_error" not in report:
        import numpy as np
        import tensorflow as tf
        import tensorflow_model_optimization as tfmot
        import tf_keras

        steps = tf.constant(request["steps"], tf.int64)
        x, y = np.array(request["x"], np.float32), np.array(request["y"], np.float32)
        for fmt, path in request["paths"].items():
            entry = report[fmt] = {}
            try:
                with tfmot.sparsity.keras.prune_scope():
                    model = tf_keras.models.load_model(path)
                layers = [m for m in model.submodules if hasattr(m, "pruning_schedule") and hasattr(m, "pruning_step")]
                entry["layer_types"] = [type(m).__qualname__ for m in model.layers]
                if len(layers) != 1:
                    continue
                (layer,) = layers
                schedule = layer.pruning_schedule
                entry["schedule_type"] = f"{type(schedule).__module__}.{type(schedule).__qualname__}"
                entry["schedule_repr"] = repr(schedule)[:300]
                if not isinstance(schedule, tfmot.sparsity.keras.PruningSchedule):
                    continue
                entry["config"] = json.loads(json.dumps(schedule.get_config(), default=repr))
                entry["step_after_load"] = int(layer.pruning_step.numpy())
                should_prune, sparsity = schedule(steps)
                shape = steps.shape
                entry["should_prune"] = np.broadcast_to(should_prune.numpy(), shape).tolist()
                entry["sparsity"] = np.broadcast_to(sparsity.numpy(), shape).astype(float).tolist()
                if model.optimizer is None:
                    model.compile(optimizer=tf_keras.optimizers.SGD(0.01), loss="mse")
                model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0,
                          callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
                entry["step_after_fit"] = int(layer.pruning_step.numpy())
            except Exception:
                entry["error"] = traceback.format_exc()[-3000:]
    with open(sys.argv[2], "w") as file:
        json.dump(report, file)
    """
)


def _check_reload(schedule: Any, steps: np.ndarray, formats: tuple[str, ...]) -> None:
    check = "reload"
    cls = type(schedule)
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        where = "in __main__" if module == "__main__" else f"inside a function ({module}.{qualname})"
        raise _failure(
            check,
            f"{qualname} is defined {where}, so a fresh process cannot import it and cannot reload a model "
            "that uses it. Define the schedule class at the top of an importable module, registered with tf-keras.",
        )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * _TRAIN_STEPS, 4)).astype(np.float32)
    y = rng.normal(size=(4 * _TRAIN_STEPS, 3)).astype(np.float32)
    expected = _evaluate(check, schedule, steps)
    config = _json_config(check, schedule)

    with tempfile.TemporaryDirectory(prefix="check_schedule_") as directory:
        folder = Path(directory)
        paths = {fmt: str(folder / FORMATS[fmt]) for fmt in formats}
        _save_trained_model(schedule, x, y, paths)
        request = {
            "module": module,
            "sys_path": [os.path.abspath(p) if p else os.getcwd() for p in sys.path],
            "paths": paths,
            "steps": steps.tolist(),
            "x": x[:4].tolist(),
            "y": y[:4].tolist(),
        }
        (folder / "request.json").write_text(json.dumps(request))
        (folder / "loader.py").write_text(_LOADER)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        command = [sys.executable, str(folder / "loader.py"), str(folder / "request.json"), str(folder / "report.json")]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, cwd=directory, timeout=_RELOAD_TIMEOUT
            )
        except subprocess.TimeoutExpired as error:
            raise _failure(check, f"the fresh process did not finish in {_RELOAD_TIMEOUT} s") from error
        if done.returncode != 0 or not (folder / "report.json").exists():
            raise _failure(check, f"the fresh process failed (exit code {done.returncode}):\n{done.stderr[-3000:]}")
        report = json.loads((folder / "report.json").read_text())

    if "import_error" in report:
        raise _failure(
            check,
            f"a fresh process cannot import {module!r}, the module that defines {qualname} "
            f"({report['import_error']}), so it cannot reload a model that uses it. A class defined in __main__, "
            "in a test file or inside a function is not importable there: define it in an importable module.",
        )
    for fmt in formats:
        _check_reloaded(f"{check}: {fmt}", report[fmt], cls, config, expected, steps)


def _save_trained_model(schedule: Any, x: np.ndarray, y: np.ndarray, paths: dict[str, str]) -> None:
    """A one-layer model pruned with `schedule`, trained `_TRAIN_STEPS` steps, saved to `paths`."""
    check = "reload"

    def build_and_train() -> tf_keras.Model:
        pruned = tfmot.sparsity.keras.prune_low_magnitude(tf_keras.layers.Dense(3), pruning_schedule=schedule)
        model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(4,)), pruned])
        model.compile(optimizer=tf_keras.optimizers.SGD(0.01), loss="mse")
        model.fit(
            x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
        )
        return model

    model = _attempt(check, "training a model pruned with the schedule", build_and_train)
    for fmt, path in paths.items():

        def save(fmt: str = fmt, path: str = path) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if fmt == "savedmodel":
                    model.save(path, save_format="tf")
                else:
                    model.save(path)

        _attempt(check, f"saving the model as {fmt}", save)


def _check_reloaded(
    check: str,
    entry: dict[str, Any],
    cls: type,
    config: dict[str, Any],
    expected: tuple[np.ndarray, np.ndarray],
    steps: np.ndarray,
) -> None:
    if "error" in entry:
        raise _failure(check, f"loading the model in a fresh process raised:\n{entry['error']}")
    if "schedule_type" not in entry:
        raise _failure(
            check,
            f"the reloaded model has no pruning wrapper (its layers came back as {entry.get('layer_types')}): "
            "tf-keras could not rebuild the wrapper from its config",
        )
    name = f"{cls.__module__}.{cls.__qualname__}"
    if entry["schedule_type"] != name:
        raise _failure(
            check,
            f"the restored schedule is {entry['schedule_repr']} of type {entry['schedule_type']}, expected a {name} "
            "(a str means tfmot could not resolve its class_name)",
        )
    difference = _first_difference(entry["config"], config)
    if difference:
        raise _failure(check, f"the config of the restored schedule differs: {difference}")
    if entry["step_after_load"] != _TRAIN_STEPS:
        raise _failure(check, f"the pruning step after loading is {entry['step_after_load']}, expected {_TRAIN_STEPS}")
    restored = (np.array(entry["should_prune"], bool), np.array(entry["sparsity"], np.float64).astype(np.float32))
    _same_values(check, "the restored schedule", restored, expected, steps)
    if entry["step_after_fit"] != _TRAIN_STEPS + 1:
        raise _failure(
            check,
            f"after one more training step the pruning step is {entry['step_after_fit']}, expected {_TRAIN_STEPS + 1}",
        )
