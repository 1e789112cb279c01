"""The model zoo: real architectures (`_zoo.ZOO`) through every path that applies.

What cannot be supported gets a one-line error: a subclassed tf-keras model, which tfmot cannot wrap.
"""

from __future__ import annotations

import _zoo
import pytest
import tf_keras

from schedules import CubicSparsity, prune_model


def schedule() -> CubicSparsity:
    return CubicSparsity(0.5, 0.8, begin_step=2, end_step=3, frequency=1)


# --- what is not supported ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["alone", "nested"])
def test_a_subclassed_tf_keras_model_gets_a_one_line_error_naming_it(where):
    """`clone_model` cannot rebuild a subclassed model: `prune_model` says which one and what to do."""
    model = _zoo.build("subclassed", tf_keras)
    if where == "nested":
        inputs = tf_keras.Input((10,))
        model = tf_keras.Model(inputs, model(inputs), name="outer")
    with pytest.raises(ValueError) as raised:
        prune_model(model, schedule())
    message = str(raised.value)
    assert "\n" not in message
    assert "the subclassed model 'subclassed' (Subclassed)" in message
    assert "build it with the functional API" in message and "schedules.keras3.PruningCallback" in message
