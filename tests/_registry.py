"""The cases every schedule contract test runs over: each registered family with typical arguments.

A new family joins the whole contract by adding one entry to `CASES`: a
function of a step `offset` that builds the schedule with all its steps shifted
by `offset` (used to check exactness at giant steps). Entries use typical
arguments whose events fall inside the first few hundred steps.
`test_registry.py` fails if a registered family has no case here.

The in-process training runs under other compilers and converters (test_compilers,
test_deployment) run over `SLOW_SUBSET`: one case of every family. The slow
multi-process tests (SIGKILL and resume, distribution strategies, fresh-process
reload) each run over a part of it, `FRESH_PROCESS_CASES`: every family is in at
least one of them, and each process traces a model of 4 pruned branches (plus
tfmot's two) instead of 11.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow_model_optimization as tfmot

import schedules
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
)

Factory = Callable[[int], schedules.SparsitySchedule]

CASES: dict[str, Factory] = {
    "cubic": lambda o=0: CubicSparsity(0.1, 0.8, begin_step=o + 20, end_step=o + 320, frequency=110),
    "cubic_one_shot": lambda o=0: CubicSparsity(0.0, 0.6, begin_step=o + 50, end_step=o + 50, frequency=10),
    "exponential": lambda o=0: ExponentialSparsity(0.0, 0.9, begin_step=o + 10, end_step=o + 250, frequency=30),
    "exponential_rate": lambda o=0: ExponentialRateSparsity(0.2, 0.85, begin_step=o, frequency=25),
    "step": lambda o=0: StepSparsity([o + 30, o + 90, o + 200], [0.3, 0.6, 0.85]),
    "step_many": lambda o=0: StepSparsity([o + 5 * k for k in range(1, 41)], [0.02 * k for k in range(1, 41)]),
    "step_geometric": lambda o=0: StepSparsity.uniform(0.0, 0.9, o + 0, o + 240, num_stages=4, spacing="geometric"),
    "cyclic": lambda o=0: CyclicSparsity(0.0, 0.8, begin_step=o + 0, end_step=o + 299, num_cycles=3, frequency=20),
    "cyclic_uneven": lambda o=0: CyclicSparsity(
        0.2, 0.75, begin_step=o + 7, end_step=o + 207, num_cycles=4, frequency=15, power=2
    ),
    "polynomial_fast_late": lambda o=0: PolynomialSparsity(
        0.05, 0.85, begin_step=o + 10, end_step=o + 260, frequency=40, power=3, orientation="fast_late"
    ),
    "polynomial_inverse_cubic": lambda o=0: PolynomialSparsity(
        0.0, 0.8, begin_step=o, end_step=o + 200, frequency=25, power=1 / 3, orientation="fast_late"
    ),
    "polynomial_root": lambda o=0: PolynomialSparsity(
        0.1, 0.7, begin_step=o + 5, end_step=o + 205, frequency=30, power=0.5, orientation="fast_early"
    ),
    "cosine": lambda o=0: CosineSparsity(0.0, 0.8, begin_step=o + 20, end_step=o + 220, frequency=20),
    "cosine_fast_late": lambda o=0: CosineSparsity(0.2, 0.9, o + 0, o + 150, frequency=15, shape="fast_late"),
    "cosine_fast_early": lambda o=0: CosineSparsity(0.0, 0.6, o + 3, o + 303, frequency=50, shape="fast_early"),
    "one_cycle": lambda o=0: OneCycleSparsity(0.1, 0.9, begin_step=o, end_step=o + 300, frequency=30),
    "alternating": lambda o=0: AlternatingSparsity(
        0.8, begin_step=o + 20, end_step=o + 200, sparse_steps=30, dense_steps=20
    ),
    "sequential": lambda o=0: SequentialSparsity(
        [
            CyclicSparsity(0.0, 0.7, begin_step=o, end_step=o + 149, num_cycles=2, frequency=25),
            CubicSparsity(0.7, 0.9, begin_step=o + 150, end_step=o + 300, frequency=50),
        ],
        boundaries=[o + 150],
    ),
    "sequential_tfmot": lambda o=0: SequentialSparsity(
        [
            tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, begin_step=o + 10, end_step=o + 110, frequency=20),
            StepSparsity([o + 150, o + 250], [0.7, 0.85]),
        ],
        boundaries=[o + 140],
    ),
    "scaled": lambda o=0: ScaledSparsity(CubicSparsity(0.0, 0.6, o + 0, o + 200, frequency=40), factor=1.5),
}

#: One case of every family (and the cases the slow tests' designs need: `cyclic_uneven`, a cycle
#: restart to a non-zero sparsity; `sequential_tfmot`, tfmot children inside a composition).
SLOW_SUBSET: tuple[str, ...] = (
    "alternating",
    "cosine_fast_late",
    "cubic",
    "cyclic_uneven",
    "exponential",
    "exponential_rate",
    "one_cycle",
    "polynomial_inverse_cubic",
    "scaled",
    "sequential_tfmot",
    "step_geometric",
)

#: The cases each fresh-process test trains, chosen for what its design needs (asserted in
#: the test): `interrupted`, pruning events between its checkpoint and its kill and after
#: it, and `cyclic_uneven`'s cycle restart as the first resumed step; `distribute`, rising
#: and falling sparsity across its epoch boundary; `reload`, the compositions (tfmot
#: children inside `SequentialSparsity`) and a resumed step that prunes some layers only.
FRESH_PROCESS_CASES: dict[str, tuple[str, ...]] = {
    "interrupted": ("cyclic_uneven", "exponential_rate", "one_cycle", "step_geometric"),
    "distribute": ("alternating", "cubic", "cyclic_uneven", "polynomial_inverse_cubic"),
    "reload": ("cosine_fast_late", "exponential", "scaled", "sequential_tfmot"),
}

#: The last step at which any case changes; cases are constant after it
#: (the open-ended exponential reaches its cap well before).
HORIZON = 400
