"""Pruning schedules for the TensorFlow Model Optimization Toolkit.

Every schedule is a `tfmot.sparsity.keras.PruningSchedule`: pass it to
`tfmot.sparsity.keras.prune_low_magnitude(..., pruning_schedule=...)`. Importing
this package registers them with tf-keras, so pruned models that use them
reload with `keras.models.load_model` inside `tfmot.sparsity.keras.prune_scope()`.

The package has three layers, each importing only from the ones below it:

* the core: the schedules (`SparsitySchedule`, `RampSchedule`, the families,
  composition), `register` and the `schedules.registry` of families, validation,
  `evaluate_schedule`, epochs as units and `check_plan`; no matplotlib;
* the tools: `PruningRecorder`, `CheckPlan`, `WeightRewinding` and `ChannelPruning` (callbacks), `SparsityRecord`,
  `compression_report`,
  `plot_schedule` / `plot_schedules` / `plot_record`, `load_model`,
  `schedules.testing.check_schedule`; sparsity across layers: `allocate`,
  `prune_model`, `sparsity_report`, `sensitivity_sweep` and their plots; Keras 3
  models: `schedules.keras3.PruningCallback`;
* the application: the command line, the demo, the quick start and the
  gallery (`schedules.cli`, `schedules.demo`, ...), not imported here.

`__all__` is what a user calls. The result types those return (`Allocation`,
`SparsityReport`, `CompressionReport`, ...) are importable from their modules.
"""

from schedules import testing
from schedules.allocation import allocate
from schedules.alternating import AlternatingSparsity
from schedules.base import SparsitySchedule
from schedules.callbacks import CheckPlan, PruningRecorder
from schedules.channel_pruning import ChannelPruning
from schedules.composition import ScaledSparsity, SequentialSparsity
from schedules.compression import compression_report
from schedules.cosine import CosineSparsity
from schedules.cubic import CubicSparsity
from schedules.cyclic import CyclicSparsity
from schedules.evaluation import evaluate_schedule
from schedules.exponential import ExponentialRateSparsity, ExponentialSparsity
from schedules.inspection import sparsity_report
from schedules.one_cycle import OneCycleSparsity
from schedules.plan import PlanWarning, check_plan
from schedules.plotting import plot_allocation, plot_record, plot_schedule, plot_schedules, plot_sensitivity
from schedules.polynomial import PolynomialSparsity
from schedules.pruning import prune_model
from schedules.ramp import RampSchedule
from schedules.record import SparsityRecord
from schedules.registry import register
from schedules.rewinding import WeightRewinding
from schedules.saving import load_model
from schedules.sensitivity import sensitivity_sweep
from schedules.step import StepSparsity

__all__ = [
    "AlternatingSparsity",
    "ChannelPruning",
    "CheckPlan",
    "CosineSparsity",
    "CubicSparsity",
    "CyclicSparsity",
    "ExponentialRateSparsity",
    "ExponentialSparsity",
    "OneCycleSparsity",
    "PlanWarning",
    "PolynomialSparsity",
    "PruningRecorder",
    "RampSchedule",
    "ScaledSparsity",
    "SequentialSparsity",
    "SparsityRecord",
    "SparsitySchedule",
    "StepSparsity",
    "WeightRewinding",
    "allocate",
    "check_plan",
    "compression_report",
    "evaluate_schedule",
    "load_model",
    "plot_allocation",
    "plot_record",
    "plot_schedule",
    "plot_schedules",
    "plot_sensitivity",
    "prune_model",
    "register",
    "sensitivity_sweep",
    "sparsity_report",
    "testing",
]

__version__ = "0.2.0.dev0"
