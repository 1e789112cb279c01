"""The one workaround that lets tfmot prune a tf-keras `MultiHeadAttention` made from its config.

tfmot's registry prunes the four projection kernels of a `MultiHeadAttention`
(`_query_dense.kernel`, `_key_dense.kernel`, `_value_dense.kernel`,
`_output_dense.kernel`). `PruneLowMagnitude.build` reads them, through
`prune_registry.PruneRegistry.make_prunable`'s `get_prunable_weights_mha`,
before the wrapped layer has ever been called. A layer made by
`MultiHeadAttention.from_config` (as `clone_model` and every loader make it)
has run `_build_from_signature`, which creates those `EinsumDense` projections
but does not build them: their kernels appear only at the first call. So the
wrapper fails with `AttributeError: 'EinsumDense' object has no attribute
'kernel'` (tf-keras 2.21, tfmot 0.8.1). Building the projections from the
shapes the config saved, as the first call would, lets the wrapper build.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

__all__ = ["PruneLowMagnitudeLoader", "build_attention_projections"]


def build_attention_projections(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer:
    """Builds the projections of a `MultiHeadAttention` made from its config; returns `layer`.

    Any other layer, or one whose config saved no input shapes (never called),
    is returned as it is. The kernels are named as a call would name them
    (`<layer>/query/kernel:0`, ...): the `.h5` format stores weights by name.
    """
    if type(layer) is not tf_keras.layers.MultiHeadAttention or not layer._built_from_signature:
        return layer
    attention_shape = layer._query_shape[:-1].concatenate([layer._num_heads, layer._value_dim])
    projections = (
        (layer._query_dense, layer._query_shape),
        (layer._key_dense, layer._key_shape),
        (layer._value_dense, layer._value_shape),
        (layer._output_dense, attention_shape),
    )
    for dense, shape in projections:
        if not dense.built:
            with tf.name_scope(layer.name), tf.name_scope(dense.name):
                dense.build(shape)
    return layer


class PruneLowMagnitudeLoader:
    """Stands for tfmot's `PruneLowMagnitude` while loading: the same wrapper, its attention built.

    `schedules.load_model` maps the saved class name `PruneLowMagnitude` to this;
    `from_config` returns a real `PruneLowMagnitude`.
    """

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> tf_keras.layers.Layer:
        wrapper = PruneLowMagnitude.from_config(config)
        build_attention_projections(wrapper.layer)
        return wrapper
