"""What `PruningCallback` does differently under the JAX backend of Keras 3.

Under JAX, `fit` runs a compiled, stateless training step on a copy of the
variables' values (the trainer's state) and writes them back to the variables
only at the end of an epoch, or when a callback asks (`model.jax_state_sync()`).
Two consequences:

* The masks must be part of that state, or the compiled step would see the values
  they had when it was traced. They ride with the optimizer's variables, which the
  trainer passes into the step and the optimizer's constraints read: added at the
  start of `fit` (`attach`), removed at its end (`detach`), so a saved model and
  its optimizer are what they would be without pruning.
* A mask update first syncs the state into the variables, sets masks and kernels,
  then tells the trainer to read the state back (`update`).

The update itself is the TensorFlow one's rule in NumPy on the host
(`keras3_patterns`): each mask keeps the magnitudes at least the k-th largest,
`k = expected_kept(s, n)` (tfmot's `max(1, round(n * (1 - s)))` in float32, halves
to even), or the pattern's rule.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import keras

from schedules import keras3_patterns

__all__ = ["attach", "detach", "editing", "updater"]


def attach(model: keras.Model, masks: list[keras.Variable]) -> None:
    """Makes `masks` part of the state `fit` passes into the compiled step (as optimizer variables)."""
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    known = {id(variable) for variable in optimizer._variables}
    optimizer._variables.extend(mask for mask in masks if id(mask) not in known)


def detach(model: keras.Model, masks: list[keras.Variable]) -> None:
    """Takes `masks` out of the optimizer's variables again (`attach` undone)."""
    gone = {id(mask) for mask in masks}
    optimizer = model.optimizer
    optimizer._variables[:] = [variable for variable in optimizer._variables if id(variable) not in gone]


@contextlib.contextmanager
def editing(model: keras.Model) -> Iterator[None]:
    """For setting variables of `model` between two steps of `fit`: under JAX, the trainer's state is synced
    into the variables first (so that no other value is lost), and `fit` reads them back after the block.
    Nothing to do under another backend.

    `_jax_state_synced` is private (Keras 3.15's JAX trainer): `fit` reads its state back from the variables
    before the next step when it is True. `jax_state_sync` sets it whenever `fit` had a state to sync; it is
    set again in case a later Keras does not.
    """
    if keras.backend.backend() != "jax":
        yield
        return
    model.jax_state_sync()
    yield
    model._jax_state_synced = True


def updater(
    model: keras.Model,
    layers: dict[str, tuple[list[keras.Variable], list[keras.Variable]]],
    rule: keras3_patterns.Rule = keras3_patterns.mask_of,
) -> Callable[[dict[str, float]], None]:
    """The mask update of the layers pruned at a step, `{layer name: sparsity}`, between two steps of `fit`."""

    def update(sparsities: dict[str, float]) -> None:
        with editing(model):
            keras3_patterns.update(layers, sparsities, rule)

    return update
