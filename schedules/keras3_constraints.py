"""The masks in `PruningCallback`'s training step: each pruned kernel's constraint while `fit` runs.

After every optimizer step the masked weights are exact zeros: the mask is the
kernel's `constraint` during `fit` (`Masked`, applied by the optimizer inside
the compiled training step, with XLA and under `tf.distribute` too; a
constraint the layer already had is applied first). `constrain` sets them when
`fit` starts and `release` gives each kernel its own back when it ends. A
training function traced without them would miss them: `fit` traces anew,
unless the one the same callback traced for its last `fit` (`traced`) was
traced for the same compiled model (`set_train_function`). `ChannelPruning`
holds its channel masks with the same functions, on tf-keras variables too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import keras

__all__ = [
    "Masked",
    "compiled",
    "constrain",
    "constraint_of",
    "release",
    "set_constraint",
    "set_train_function",
    "traced",
    "unmask",
]


class Masked:
    """A variable's constraint while it is pruned: the mask (broadcast) after the variable's own constraint."""

    def __init__(self, mask: keras.Variable, inner: Any) -> None:
        self.mask = mask
        self.inner = inner

    def __call__(self, weight: Any) -> Any:
        return (weight if self.inner is None else self.inner(weight)) * self.mask


def constraint_of(variable: Any) -> Any:
    """A variable's constraint (None where it has none): a Keras 3 variable or a tf-keras `tf.Variable`."""
    return getattr(variable, "constraint", None)


def set_constraint(variable: Any, constraint: Any) -> None:
    """Sets a variable's constraint: a Keras 3 variable's property, or a tf-keras `tf.Variable`'s
    `_constraint` (its `constraint` is read-only; its optimizers read `_constraint`)."""
    try:
        variable.constraint = constraint
    except AttributeError:
        variable._constraint = constraint


def unmask(kernels: Iterable[Any]) -> None:
    """Takes off `kernels` the `Masked` constraints a `fit` that stopped with an exception left on them."""
    for kernel in kernels:
        while isinstance(constraint_of(kernel), Masked):
            set_constraint(kernel, constraint_of(kernel).inner)


def constrain(
    layers: dict[str, tuple[list[keras.Variable], list[keras.Variable]]],
) -> list[tuple[keras.Variable, Any]]:
    """Makes each mask its kernel's constraint, after the kernel's own; `layers` is `{layer name: (kernels,
    masks)}`. Returns each kernel with its own constraint, for `release`."""
    constraints = []
    for kernels, masks in layers.values():
        for kernel, mask in zip(kernels, masks, strict=True):
            constraints.append((kernel, constraint_of(kernel)))
            set_constraint(kernel, Masked(mask, constraint_of(kernel)))
    return constraints


def release(constraints: list[tuple[keras.Variable, Any]]) -> None:
    """Gives each kernel its own constraint back (`constrain` undone)."""
    for kernel, constraint in constraints:
        set_constraint(kernel, constraint)


def compiled(model: keras.Model) -> tuple[Any, ...]:
    """What a traced training function depends on besides the masks (`compile` makes them anew), compared by `is`."""
    return (
        model.optimizer,
        getattr(model, "_compile_loss", None),
        getattr(model, "_compile_metrics", None),
        bool(model.jit_compile),
        bool(model.run_eagerly),
    )


def traced(model: keras.Model) -> tuple[tuple[Any, ...], Any]:
    """The training function `fit` ran, with what it was traced for (`compiled`): for the next `fit`."""
    return compiled(model), model.train_function


def set_train_function(model: keras.Model, last: tuple[tuple[Any, ...], Any] | None) -> None:
    """Gives `model` a training function with the masks' constraints: the one of the last `fit` (`traced`),
    if it was traced for the same compiled model, else a new trace."""
    if last is not None and all(a is b for a, b in zip(last[0], compiled(model), strict=True)):
        model.train_function = last[1]  # no new trace: 3.4 s a fit on MobileNetV2 (issue 30)
    else:
        model.make_train_function(force=True)  # a training function traced before would miss the constraints
