"""tfmot's base class of every pruning schedule, imported so that a type checker can use it as a type.

`tfmot.sparsity.keras.PruningSchedule` is an attribute of tfmot's generated API module, which a type
checker cannot follow; this is the same class, from the module that defines it (the test suite checks
that they are one object). tfmot is pinned below 0.9 in setup.cfg.
"""

from tensorflow_model_optimization.python.core.sparsity.keras.pruning_schedule import PruningSchedule

__all__ = ["PruningSchedule"]
