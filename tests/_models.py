"""Tiny tf-keras models, data and mask readers shared by the training and reload tests.

Everything here follows tfmot 0.8.1 as it is (see `/work/shared/TFMOT-NOTES.md`):

* `PruneLowMagnitude` wrappers own `pruning_step` (int64, -1 until `UpdatePruningStep`
  sets it to 0); each training batch first increments it, then updates the masks if the
  schedule says so, so the first batch of `fit` is step 1.
* At a pruning step the mask keeps the `k` largest-magnitude weights, `k` as in
  `pruning_impl.Pruning._update_mask` (reproduced by `expected_kept`, written here
  independently of the package's `expected_mask_sparsity`), plus every weight
  tied with the k-th largest magnitude.

The models are built so that ties cannot happen (see `build_model`), so a mask keeps
exactly `expected_kept(n, sparsity)` weights at every pruning step.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

from schedules import inspection

INPUT_SHAPE = (8, 8, 1)
OUTPUTS = 4
BATCH_SIZE = 8
LEARNING_RATE = 0.05

#: tfmot's own schedules, mixed with ours in the single-layer and reload tests.
TFMOT_SCHEDULES: dict[str, Callable[[], tfmot.sparsity.keras.PruningSchedule]] = {
    "tfmot_constant": lambda: tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=15, frequency=30),
    # (end_step - begin_step) is a multiple of frequency, so tfmot really applies 0.7 at step 210.
    "tfmot_polynomial": lambda: tfmot.sparsity.keras.PolynomialDecay(
        0.1, 0.7, begin_step=10, end_step=210, frequency=25
    ),
}


# --- models and data --------------------------------------------------------------


def build_model(seed: int = 0) -> keras.Model:
    """Conv2D(4, 3x3) -> Flatten -> Dense(16) -> Dense(4), plus two weightless skips.

    The skips and the noise are there so that magnitude pruning never meets ties, which
    would make tfmot keep more than `k` weights (it keeps every weight tied with the
    k-th largest magnitude):

    * skip paths (`GlobalAveragePooling` of the conv maps and of the hidden units, added
      to the output) give every unit a gradient even when all its outgoing weights are
      masked; without them such a unit's incoming weights get a zero gradient and stay
      exact zeros, so a later, lower sparsity (a cycle restart) keeps all those zeros;
    * `GaussianNoise` after the conv breaks the symmetry of a fully pruned conv filter:
      its map is constant over positions, which would give the Dense weights reading it
      identical gradients, hence magnitudes tied exactly.

    Every layer with weights is prunable, so `prune_low_magnitude(model)` prunes the
    three kernels: conv (36 weights), hidden (2304) and head (64).
    """
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(INPUT_SHAPE)
    maps = layers.Conv2D(4, 3, activation="tanh", name="conv")(inputs)
    noisy = layers.GaussianNoise(0.05, name="noise")(maps)
    hidden = layers.Dense(16, activation="tanh", name="hidden")(layers.Flatten(name="flatten")(noisy))
    head = layers.Dense(OUTPUTS, name="head")(hidden)
    skip_hidden = layers.GlobalAveragePooling1D(name="pool_hidden")(layers.Reshape((4, 4), name="fold")(hidden))
    skip_maps = layers.GlobalAveragePooling2D(name="pool_maps")(maps)
    outputs = layers.Add(name="add")([head, skip_hidden, skip_maps])
    return keras.Model(inputs, outputs, name="tiny")


def prune_whole_model(schedule, seed: int = 0) -> keras.Model:
    """`build_model` pruned with `prune_low_magnitude(model, pruning_schedule=schedule)`, compiled."""
    model = tfmot.sparsity.keras.prune_low_magnitude(build_model(seed), pruning_schedule=schedule)
    return compile_model(model)


def build_branch_model(layer_schedules: Mapping[str, object], seed: int = 0) -> keras.Model:
    """One pruned branch per `(name, schedule)`, each wrapped on its own, summed by a Dense head.

    Branches alternate between `Conv2D(4, 3x3)` (36 weights) and `Dense(8)` on the
    flattened input (512 weights); the wrapper of branch `name` is called
    `prune_low_magnitude_conv_<name>` or `prune_low_magnitude_dense_<name>`. The head
    is not pruned, so every branch weight keeps a gradient (no ties, see `build_model`).
    The model is compiled.
    """
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    prune = tfmot.sparsity.keras.prune_low_magnitude
    inputs = keras.Input(INPUT_SHAPE)
    flat = layers.Flatten(name="flat_input")(inputs)
    branches = []
    for i, (name, schedule) in enumerate(layer_schedules.items()):
        if i % 2 == 0:
            conv = prune(layers.Conv2D(4, 3, activation="tanh", name=f"conv_{name}"), pruning_schedule=schedule)
            branches.append(layers.Flatten(name=f"flat_{name}")(conv(inputs)))
        else:
            dense = prune(layers.Dense(8, activation="tanh", name=f"dense_{name}"), pruning_schedule=schedule)
            branches.append(dense(flat))
    outputs = layers.Dense(OUTPUTS, name="head")(layers.Concatenate(name="concat")(branches))
    return compile_model(keras.Model(inputs, outputs, name="branches"))


def compile_model(model: keras.Model) -> keras.Model:
    # Plain SGD: a masked weight moves by -lr * gradient, distinct per weight. (Adam's
    # first steps move every weight by about lr, which makes near-ties.)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), loss="mse")
    return model


def make_data(num_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic random inputs and regression targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_samples, *INPUT_SHAPE)).astype(np.float32)
    y = rng.normal(size=(num_samples, OUTPUTS)).astype(np.float32)
    return x, y


# --- reading the pruning state ----------------------------------------------------


def pruned_layers(model: keras.Model) -> list[PruneLowMagnitude]:
    """The wrappers that prune a weight (whole-model pruning also wraps `Flatten` & co.)."""
    layers = inspection.pruned_layers(model, built=True)
    for layer in layers:
        assert len(layer.pruning_vars) == 1, f"{layer.name} prunes {len(layer.pruning_vars)} weights"
    return layers


def masks(model: keras.Model) -> dict[str, np.ndarray]:
    """Each pruned layer's mask (0/1 floats), by wrapper name."""
    return {layer.name: layer.pruning_vars[0][1].numpy() for layer in pruned_layers(model)}


def kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """Each pruned layer's pruned weight, by wrapper name."""
    return {layer.name: layer.pruning_vars[0][0].numpy() for layer in pruned_layers(model)}


def mask_sparsity(model: keras.Model) -> dict[str, float]:
    """Each pruned layer's mask sparsity `1 - kept / n`, by wrapper name."""
    return {name: 1.0 - float(mask.sum()) / mask.size for name, mask in masks(model).items()}


def pruning_step(model: keras.Model) -> int:
    """The `pruning_step` of the pruned layers (they all advance together)."""
    steps = {layer.name: int(layer.pruning_step.numpy()) for layer in pruned_layers(model)}
    assert len(set(steps.values())) == 1, steps
    return next(iter(steps.values()))


# --- the reference ----------------------------------------------------------------


def expected_kept(sparsity: float, n: int) -> int:
    """How many of `n` weights a tfmot mask keeps at `sparsity` (no ties); the package's argument order.

    `pruning_impl.Pruning._update_mask`:
    `k = cast(maximum(round(cast(n, float32) * (1 - sparsity)), 1), int32)`, all in
    float32 (the schedule's sparsity is float32), and `tf.math.round` rounds half to
    even, as `np.round` does.
    """
    kept = np.round(np.float32(n) * (np.float32(1.0) - np.float32(sparsity)))
    return int(max(kept, np.float32(1.0)))


def expected_mask_sparsity(sparsity: float, n: int) -> float:
    """The mask sparsity `1 - k / n` tfmot gives `n` weights at `sparsity`."""
    return 1.0 - expected_kept(sparsity, n) / n


def scheduled(schedule, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """`(should_prune, sparsity)` at steps `0 .. num_steps - 1`, in one vectorized call.

    tfmot's `ConstantSparsity` returns a scalar sparsity for a vector of steps; it is
    broadcast to the steps' shape.
    """
    steps = tf.range(num_steps, dtype=tf.int64)
    should_prune, sparsity = schedule(steps)
    should_prune = np.broadcast_to(np.asarray(should_prune, dtype=bool), (num_steps,))
    sparsity = np.broadcast_to(np.asarray(sparsity, dtype=np.float32), (num_steps,))
    return should_prune.copy(), sparsity.copy()


def tied_with_kth(weights: np.ndarray, k: int) -> int:
    """How many weights have exactly the k-th largest magnitude (> 1 means tfmot keeps extra)."""
    magnitudes = np.sort(np.abs(weights).ravel())[::-1]
    return int(np.sum(magnitudes == magnitudes[k - 1]))


# --- training ---------------------------------------------------------------------


class MaskRecorder(keras.callbacks.Callback):
    """Records the pruning state around every training batch.

    Record 0 is the state before training (`on_train_begin`, after `UpdatePruningStep`
    has set a fresh model's step to 0, so pass `UpdatePruningStep()` first); record
    `i >= 1` is the state after batch `i`. For each record: `steps[i]` is the wrappers'
    `pruning_step`, `masks[i]` each pruned layer's mask, `kernels_before[i]` the weights
    the batch's mask update saw (read at `on_train_batch_begin`, so after any epoch-end
    re-masking), and `epoch_start[i]` whether the batch was the first of an epoch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []
        self.masks: list[dict[str, np.ndarray]] = []
        self.kernels_before: list[dict[str, np.ndarray] | None] = []
        self.epoch_start: list[bool] = []
        self._first_batch = False
        self._before: dict[str, np.ndarray] | None = None

    def on_train_begin(self, logs=None):
        self._append(None, False)

    def on_epoch_begin(self, epoch, logs=None):
        self._first_batch = True

    def on_train_batch_begin(self, batch, logs=None):
        self._before = kernels(self.model)

    def on_train_batch_end(self, batch, logs=None):
        self._append(self._before, self._first_batch)
        self._first_batch = False

    def _append(self, before, epoch_start: bool) -> None:
        self.steps.append(pruning_step(self.model))
        self.masks.append(masks(self.model))
        self.kernels_before.append(before)
        self.epoch_start.append(epoch_start)

    def kept(self, name: str) -> np.ndarray:
        """Weights kept by layer `name`'s mask at every record."""
        return np.array([int(m[name].sum()) for m in self.masks])

    def size(self, name: str) -> int:
        return int(self.masks[0][name].size)


def fit(
    model: keras.Model, steps_per_epoch: int, epochs: int = 1, seed: int = 0, callbacks: tuple = ()
) -> MaskRecorder:
    """Trains `steps_per_epoch * epochs` batches of `BATCH_SIZE` with `UpdatePruningStep` (and `callbacks`)."""
    x, y = make_data(steps_per_epoch * BATCH_SIZE, seed)
    recorder = MaskRecorder()
    model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), recorder, *callbacks],
    )
    return recorder


# --- a transformer encoder ----------------------------------------------------------

VOCAB = 200
SEQUENCE = 8
WIDTH = 16
HEADS = 2


def tflite_constants(flatbuffer: bytes) -> list[np.ndarray]:
    """The constant tensors (the weights) of a converted TFLite model, in the interpreter's order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    constants = []
    for detail in interpreter.get_tensor_details():
        try:  # constants have data; activations have none until invoked
            constants.append(interpreter.get_tensor(detail["index"]))
        except ValueError:
            pass
    return constants


def build_encoder(blocks: int = 2, seed: int = 0) -> keras.Model:
    """Tokens -> Embedding(VOCAB, WIDTH) -> `blocks` encoder blocks -> mean over positions -> Dense(2).

    A block is `MultiHeadAttention(HEADS, WIDTH // HEADS)` self-attention `mha{i}`, added to its input
    and normalized (`ln{i}a`), then a feed-forward `Dense(4 * WIDTH, relu)` `ff{i}a` and `Dense(WIDTH)`
    `ff{i}b`, added and normalized (`ln{i}b`). tfmot prunes the embeddings, the four projection
    kernels of each attention layer (query, key, value: `(16, 2, 8)`; output: `(2, 8, 16)`), the
    feed-forward kernels and the head.
    """
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    tokens = keras.Input((SEQUENCE,), dtype="int32")
    x = layers.Embedding(VOCAB, WIDTH, name="embedding")(tokens)
    for i in range(blocks):
        attended = layers.MultiHeadAttention(HEADS, WIDTH // HEADS, name=f"mha{i}")(x, x)
        x = layers.LayerNormalization(name=f"ln{i}a")(x + attended)
        hidden = layers.Dense(4 * WIDTH, activation="relu", name=f"ff{i}a")(x)
        x = layers.LayerNormalization(name=f"ln{i}b")(x + layers.Dense(WIDTH, name=f"ff{i}b")(hidden))
    pooled = layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(tokens, layers.Dense(2, name="head")(pooled), name="encoder")


def make_tokens(num_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic random token sequences and regression targets for `build_encoder`."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, size=(num_samples, SEQUENCE), dtype=np.int32)
    return tokens, rng.normal(size=(num_samples, 2)).astype(np.float32)
