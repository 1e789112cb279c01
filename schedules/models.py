"""The small convolutional network the demo, the quick start and the benchmarks prune."""

from __future__ import annotations

from types import ModuleType

__all__ = ["build_cnn"]


def build_cnn(keras: ModuleType, input_shape: tuple[int, int, int] = (8, 8, 1), num_classes: int = 10):
    """Conv2D(16, 3x3, same) -> Conv2D(32, 3x3) -> MaxPool(2) -> Dense(64) -> Dense(`num_classes`) logits.

    Sized for scikit-learn's 8x8 digits: `conv1` has 144 weights, `conv2`
    4608, `dense` 18432 and `logits` 640 (for 8x8x1 inputs and 10 classes).

    Args:
      keras: the Keras module to build with (`tf_keras` for tfmot).
      input_shape: the shape of one image.
      num_classes: the number of logits.

    >>> import tf_keras
    >>> [layer.count_params() for layer in build_cnn(tf_keras).layers if layer.weights]
    [160, 4640, 18496, 650]
    """
    layers = keras.layers
    return keras.Sequential(
        [
            layers.Input(input_shape),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(32, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense"),
            layers.Dense(num_classes, name="logits"),
        ]
    )
