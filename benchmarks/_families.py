"""One schedule of every registered family, over a window a benchmark chooses.

The timing benchmarks (overhead, cost, curve) time every family of
`schedules.registry.families()`: ours, the two compositions (a
`SequentialSparsity` of two ramps, a `ScaledSparsity` of a cubic ramp) and
tfmot's two. A family without an entry in `_BUILDERS` is built by the catalog
from the window (as `schedules plot FAMILY` builds it), so a new family is
timed without editing the benchmarks; a new composition needs an entry here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import tensorflow_model_optimization as tfmot

from schedules import (
    AlternatingSparsity,
    CosineSparsity,
    CubicSparsity,
    CyclicSparsity,
    ExponentialRateSparsity,
    ExponentialSparsity,
    OneCycleSparsity,
    PolynomialSparsity,
    ScaledSparsity,
    SequentialSparsity,
    StepSparsity,
    catalog,
    registry,
)

PruningSchedule = tfmot.sparsity.keras.PruningSchedule


@dataclasses.dataclass(frozen=True)
class Window:
    """From `initial_sparsity` at `begin_step` to `final_sparsity` at `end_step`, a mask update every `frequency`."""

    final_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    initial_sparsity: float = 0.0

    def ramp(self) -> dict:
        """The window arguments every ramp takes before its keyword-only ones."""
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self.final_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
        }

    def middle(self) -> int:
        """A step near the window's middle on the update grid (`begin_step + k * frequency`)."""
        half = (self.end_step - self.begin_step) // 2
        return self.begin_step + max(1, half // self.frequency) * self.frequency


@dataclasses.dataclass(frozen=True)
class Case:
    """A schedule under test and the registry family it belongs to."""

    family: str
    schedule: PruningSchedule


def _rate(w: Window) -> float:
    """The per-event rate that reaches `final_sparsity` at `end_step` (tiny for a long window, still exact)."""
    events = max(1, (w.end_step - w.begin_step) // w.frequency)
    keep = (1.0 - w.final_sparsity) / (1.0 - w.initial_sparsity)
    return -math.expm1(math.log(keep) / events)


def _sequential(w: Window) -> SequentialSparsity:
    middle = w.middle()
    halfway = (w.initial_sparsity + w.final_sparsity) / 2
    return SequentialSparsity(
        [
            CubicSparsity(w.initial_sparsity, halfway, w.begin_step, middle - 1, frequency=w.frequency),
            ExponentialSparsity(halfway, w.final_sparsity, middle, w.end_step, frequency=w.frequency),
        ],
        boundaries=[middle],
    )


#: Family name -> (label, builder from a window). Labels are the class names (tfmot's prefixed).
_BUILDERS: dict[str, tuple[str, Callable[[Window], PruningSchedule]]] = {
    "alternating": (
        "AlternatingSparsity",
        lambda w: AlternatingSparsity(
            w.final_sparsity, w.begin_step, w.end_step, sparse_steps=w.frequency, dense_steps=w.frequency
        ),
    ),
    "cosine": ("CosineSparsity", lambda w: CosineSparsity(**w.ramp(), frequency=w.frequency)),
    "cubic": ("CubicSparsity", lambda w: CubicSparsity(**w.ramp(), frequency=w.frequency)),
    "cyclic": ("CyclicSparsity", lambda w: CyclicSparsity(**w.ramp(), num_cycles=3, frequency=w.frequency)),
    "exponential": ("ExponentialSparsity", lambda w: ExponentialSparsity(**w.ramp(), frequency=w.frequency)),
    "exponential_rate": (
        "ExponentialRateSparsity",
        lambda w: ExponentialRateSparsity(
            _rate(w),
            w.final_sparsity,
            begin_step=w.begin_step,
            frequency=w.frequency,
            initial_sparsity=w.initial_sparsity,
        ),
    ),
    "one_cycle": ("OneCycleSparsity", lambda w: OneCycleSparsity(**w.ramp(), frequency=w.frequency)),
    "power": (
        "PolynomialSparsity (fast_late)",
        lambda w: PolynomialSparsity(**w.ramp(), frequency=w.frequency, power=3, orientation="fast_late"),
    ),
    "step": ("StepSparsity (4 stairs)", lambda w: StepSparsity.uniform(**w.ramp(), num_stages=4)),
    "sequential": ("SequentialSparsity (cubic, exponential)", _sequential),
    "scaled": (
        "ScaledSparsity (cubic x 0.5)",
        lambda w: ScaledSparsity(CubicSparsity(**w.ramp(), frequency=w.frequency), factor=0.5),
    ),
    "constant": (
        "tfmot ConstantSparsity",
        lambda w: tfmot.sparsity.keras.ConstantSparsity(
            w.final_sparsity, begin_step=w.begin_step, frequency=w.frequency
        ),
    ),
    "polynomial": (
        "tfmot PolynomialDecay",
        lambda w: tfmot.sparsity.keras.PolynomialDecay(**w.ramp(), frequency=w.frequency),
    ),
}


def every_family(window: Window, overrides: Mapping[str, tuple[str, PruningSchedule]] | None = None) -> dict:
    """Label -> `Case`, one per family of `registry.families()`, in the registry's order.

    Args:
      window: the window every schedule prunes over.
      overrides: family name -> (label, schedule) replacing the default one.

    Raises:
      ValueError: a family built from other schedules that has no builder here.
    """
    overrides = dict(overrides or {})
    cases = {}
    for family in registry.families():
        if family.name in overrides:
            label, schedule = overrides.pop(family.name)
        elif family.name in _BUILDERS:
            label, build = _BUILDERS[family.name]
            schedule = build(window)
        elif family.command_line:
            shared = {**dataclasses.asdict(window)}
            label, schedule = family.cls.__name__, catalog.build(family.name, shared=shared)
        else:
            raise ValueError(f"benchmarks/_families.py has no builder for the composition family {family.name!r}")
        cases[label] = Case(family.name, schedule)
    if overrides:
        raise ValueError(f"Overrides for unknown families: {sorted(overrides)}")
    return cases
