"""Pruning schedules for the TensorFlow Model Optimization Toolkit.

Every schedule is a `tfmot.sparsity.keras.PruningSchedule`: pass it to
`tfmot.sparsity.keras.prune_low_magnitude(..., pruning_schedule=...)`. Importing
this package registers them with tf-keras, so pruned models that use them
reload with `keras.models.load_model` inside `tfmot.sparsity.keras.prune_scope()`.

Also here: `plot_schedule` / `plot_schedules` (what a schedule will do),
`PruningRecorder` and `plot_record` (what training did), `evaluate_schedule`
(any schedule over many steps as NumPy arrays).
"""

from schedules.alternating import AlternatingSparsity
from schedules.base import SparsitySchedule
from schedules.composition import ScaledSparsity, SequentialSparsity, peak_sparsity
from schedules.cosine import CosineSparsity
from schedules.cubic import CubicSparsity
from schedules.cyclic import CyclicSparsity
from schedules.epochs import CheckPlan, PlanWarning, check_plan
from schedules.evaluation import evaluate_schedule
from schedules.exponential import ExponentialSparsity
from schedules.one_cycle import OneCycleSparsity
from schedules.plotting import plot_schedule, plot_schedules
from schedules.polynomial import PolynomialSparsity
from schedules.recording import PruningRecorder, SparsityRecord, plot_record
from schedules.saving import check_pruned_model, load_model
from schedules.step import StepSparsity

__all__ = [
    "AlternatingSparsity",
    "CheckPlan",
    "CosineSparsity",
    "CubicSparsity",
    "CyclicSparsity",
    "ExponentialSparsity",
    "OneCycleSparsity",
    "PlanWarning",
    "PolynomialSparsity",
    "PruningRecorder",
    "ScaledSparsity",
    "SequentialSparsity",
    "SparsityRecord",
    "SparsitySchedule",
    "StepSparsity",
    "check_plan",
    "check_pruned_model",
    "evaluate_schedule",
    "load_model",
    "peak_sparsity",
    "plot_record",
    "plot_schedule",
    "plot_schedules",
]

__version__ = "0.1.0"
