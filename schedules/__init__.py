"""Pruning schedules for the TensorFlow Model Optimization Toolkit.

Every schedule is a `tfmot.sparsity.keras.PruningSchedule`: pass it to
`tfmot.sparsity.keras.prune_low_magnitude(..., pruning_schedule=...)`. Importing
this package registers them with tf-keras, so pruned models that use them
reload with `keras.models.load_model` inside `tfmot.sparsity.keras.prune_scope()`.
"""

from schedules.base import SparsitySchedule
from schedules.cubic import CubicSparsity
from schedules.cyclic import CyclicSparsity
from schedules.exponential import ExponentialSparsity
from schedules.step import StepSparsity

__all__ = [
    "CubicSparsity",
    "CyclicSparsity",
    "ExponentialSparsity",
    "SparsitySchedule",
    "StepSparsity",
]

__version__ = "0.1.0"
