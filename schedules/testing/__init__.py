"""`check_schedule`: the contract tfmot relies on, as a check anyone can run on any schedule.

Like chex for Optax: pass any `tfmot.sparsity.keras.PruningSchedule` (ours, tfmot's
own, your own subclass) and it raises `AssertionError` naming the first broken part
of the contract. This package imports only TensorFlow, tf-keras, tfmot, NumPy and
the standard library (no other module of `schedules`, no matplotlib), so it also
checks schedules that have nothing to do with `schedules`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import tensorflow_model_optimization as tfmot

from schedules.testing._config import check_config, check_registration
from schedules.testing._reload import check_reload
from schedules.testing._values import check_compilers, check_dtypes, check_range

__all__ = ["CHECKS", "FORMATS", "GIANT_STEPS", "check_schedule"]

#: The check names, in the order they run. "reload" runs only when asked for.
CHECKS = ("dtypes", "range", "compilers", "config", "registration", "reload")

#: The save formats of the "reload" check: file or directory name by format.
FORMATS = {"keras": "model.keras", "h5": "model.h5", "savedmodel": "savedmodel"}

#: Steps far beyond float32's exact integers (2**24) and int32, up to 2**62.
GIANT_STEPS = (2**24 + 1, 2**31 + 5, 2**40 + 12_345, 2**62)


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
        "dtypes": lambda: check_dtypes(schedule, sample, atol),
        "range": lambda: check_range(schedule, steps),
        "compilers": lambda: check_compilers(schedule, steps, sample, atol),
        "config": lambda: check_config(schedule, steps),
        "registration": lambda: check_registration(schedule),
        "reload": lambda: check_reload(schedule, steps, formats),
    }
    for name, check in checks.items():
        if name not in skipped and (name != "reload" or formats):
            check()


def _formats(reload: bool | Iterable[str]) -> dict[str, str]:
    """The formats `reload` asks for, with their file names (empty: no "reload" check)."""
    if isinstance(reload, bool):
        return dict(FORMATS) if reload else {}
    formats = (reload,) if isinstance(reload, str) else tuple(reload)
    if not formats or not set(formats) <= set(FORMATS):
        raise ValueError(
            f"Argument `reload` must be a bool or formats from {list(FORMATS)}. Received: reload={reload!r}"
        )
    return {fmt: FORMATS[fmt] for fmt in formats}
