"""Weight rewinding (`schedules.WeightRewinding`) in real `fit`s: tf-keras models with tfmot's pruning,
and their Keras 3 twins with `schedules.keras3.PruningCallback` (the `framework` parameter).

The reference values are captured independently: a probe callback after the rewinding
copies every weight, mask and optimizer slot at the end of every step, and the expected
rewind steps are read off the captured masks (a step where some mask changed).
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow_model_optimization as tfmot
import tf_keras

import schedules
from schedules import CubicSparsity, StepSparsity, WeightRewinding
from schedules.keras3 import PruningCallback, pruning_of

STEPS_PER_EPOCH = 8
#: Three geometric stairs (20% of the survivors each) at steps 6, 11 and 16 of a 24-step run.
STAIRS = StepSparsity.uniform(0.0, 1 - 0.8**3, 6, 16, num_stages=3, spacing="geometric")
#: Half of each kernel pruned at step 1, and again (the same mask) every 5 steps.
AT_ONCE = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=1, frequency=5)
#: The model's pruning: tfmot's wrappers on tf-keras, `schedules.keras3.PruningCallback` on Keras 3.
FRAMEWORKS = {"tf_keras": tf_keras, "keras3": keras}
#: The names Keras 3's optimizers give the variables that are not slots.
NOT_SLOTS = ("iteration", "learning_rate")


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS_PER_EPOCH * 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, size=len(x))
    return x, y


def build(schedule, optimizer=None, steps_per_execution=1, framework="tf_keras"):
    """Two pruned Dense layers and one left dense, compiled with Adam. On Keras 3 the layers are plain:
    `train` prunes the first two with a `PruningCallback`."""
    module = FRAMEWORKS[framework]
    module.utils.set_random_seed(0)
    prune = tfmot.sparsity.keras.prune_low_magnitude if module is tf_keras else (lambda layer, **_: layer)
    model = module.Sequential(
        [
            module.layers.Input((8,)),
            prune(module.layers.Dense(16, activation="relu", name="hidden"), pruning_schedule=schedule),
            prune(module.layers.Dense(16, activation="relu", name="hidden2"), pruning_schedule=schedule),
            module.layers.Dense(4, name="out"),
        ]
    )
    model.compile(
        optimizer or module.optimizers.Adam(1e-2),
        module.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return model


def key(weight) -> str:
    """A weight's name, the same in a model and its twin: `hidden/kernel` (a tf-keras variable's name, without
    the wrapper's prefix; a Keras 3 variable's path without the model's name)."""
    name = "/".join(weight.path.split("/")[-2:]) if isinstance(weight, keras.Variable) else weight.name
    return name.removeprefix("prune_low_magnitude_").removesuffix(":0")


class Probe(tf_keras.callbacks.Callback):
    """Copies of every weight (by name), mask and optimizer slot: before training and after every step."""

    def __init__(self):
        super().__init__()
        self.states: dict[int, dict] = {}

    def _capture(self, step):
        optimizer = self.model.optimizer
        if isinstance(self.model, keras.Model):
            masks = {name: masks[0] for name, masks in pruning_of(self.model).masks.items()}
            slots = [w.numpy() for w in optimizer.variables if w.name not in NOT_SLOTS]
        else:
            pruned = [layer for layer in self.model.layers if hasattr(layer, "pruning_vars")]
            masks = {layer.layer.name: layer.pruning_vars[0][1].numpy() for layer in pruned}
            slots = [w.numpy() for w in optimizer.variables if w is not optimizer.iterations]
        weights = {key(w): w.numpy() for w in self.model.weights if "mask" not in w.name}
        self.states[step] = {"weights": weights, "masks": masks, "slots": slots}

    def on_train_begin(self, logs=None):
        self._capture(int(self.model.optimizer.iterations.numpy()))

    def on_train_batch_end(self, batch, logs=None):
        self._capture(int(self.model.optimizer.iterations.numpy()))


def mask_changes(probe: Probe, after: int) -> list[int]:
    steps = sorted(probe.states)
    return [
        t
        for previous, t in itertools.pairwise(steps)
        if t > after
        and any(
            not np.array_equal(probe.states[t]["masks"][name], probe.states[previous]["masks"][name])
            for name in probe.states[t]["masks"]
        )
    ]


def train(model, rewinding, *, epochs, initial_epoch=0, rewinding_first=False, schedule=STAIRS):
    """`fit` with the pruning (on Keras 3, a `PruningCallback` on `schedule`), `rewinding`, and a `Probe` last."""
    probe = Probe()
    if isinstance(model, keras.Model):
        pruning = PruningCallback(schedule, layers=["hidden", "hidden2"])
    else:
        pruning = tfmot.sparsity.keras.UpdatePruningStep()
    callbacks = [pruning, rewinding]
    if rewinding_first:
        callbacks.reverse()
    x, y = data()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,
        verbose=0,
        callbacks=[*callbacks, probe],
    )
    return probe


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("schedule", "rewind_step", "rewinding_first", "optimizer", "new_slots", "steps_per_execution", "expected_rewinds"),
    [
        (STAIRS, 0, False, "adam", 0.0, 1, [6, 11, 16]),
        (STAIRS, 4, True, "sgd_momentum", None, 1, [6, 11, 16]),  # reset_optimizer=False: the momenta run on
        # At step 6 the cubic sparsity is 0: no mask change. Adagrad's accumulators start at 0.1. Callbacks
        # run after every 2 steps: the change at step 11 is rewound at the end of step 12.
        (CubicSparsity(0.0, 0.8, 6, 16, frequency=5), 2, False, "adagrad", 0.1, 2, [12, 16]),
        # Pruned at the first step, by a PruningCallback that comes first (before this callback's first
        # batch): the change is still seen. Pruned again at the same sparsity: the same masks, no rewind.
        (AT_ONCE, 0, False, "adam", 0.0, 1, [1]),
    ],
    ids=[
        "stairs-rewind-to-0-adam",
        "stairs-rewind-to-4-callback-first-no-reset",
        "cubic-rewind-to-2-adagrad-2-steps-per-execution",
        "pruned-at-step-1-rewind-to-0",
    ],
)
def test_every_mask_change_rewinds_kept_weights_to_step_k_and_pruned_ones_to_zero(
    schedule, rewind_step, rewinding_first, optimizer, new_slots, steps_per_execution, expected_rewinds, framework
):
    module = FRAMEWORKS[framework]
    optimizers = {
        "adam": module.optimizers.Adam(1e-2),
        "sgd_momentum": module.optimizers.SGD(1e-2, momentum=0.9),
        "adagrad": module.optimizers.Adagrad(0.1, initial_accumulator_value=0.1),
    }
    model = build(schedule, optimizers[optimizer], steps_per_execution, framework)
    rewinding = WeightRewinding(rewind_step, reset_optimizer=new_slots is not None)
    probe = train(model, rewinding, epochs=3, rewinding_first=rewinding_first, schedule=schedule)

    reference = probe.states[rewind_step]["weights"]  # the weights at the end of step k, captured here
    changes = mask_changes(probe, rewind_step)
    assert changes == expected_rewinds
    assert rewinding.rewinds == changes
    for t in changes:
        state = probe.states[t]
        for name, value in state["weights"].items():
            if name.endswith(("threshold", "pruning_step")):
                continue
            layer = name.split("/")[-2]
            if name.endswith("/kernel") and layer in state["masks"]:
                mask = state["masks"][layer]
                assert np.array_equal(value[mask == 1], reference[name][mask == 1]), (t, name)
                assert np.all(value[mask == 0] == 0.0), (t, name)
                assert 0 < mask.sum() < mask.size
            else:  # biases and the unpruned layer
                np.testing.assert_array_equal(value, reference[name], err_msg=f"step {t}: {name}")
        if new_slots is None:
            assert not all(np.all(slot == 0.0) for slot in state["slots"]), t
        else:  # what a new optimizer starts with
            assert state["slots"] and all(np.all(slot == np.float32(new_slots)) for slot in state["slots"]), t
        after = probe.states[t + 1]["weights"] if t + 1 in probe.states else None
        if after is not None:  # and training goes on from there
            assert not np.array_equal(after["out/kernel"], reference["out/kernel"])
    assert int(model.optimizer.iterations.numpy()) == 3 * STEPS_PER_EPOCH  # the steps ran on through the rewinds
    np.testing.assert_array_equal(rewinding.recorded[0], reference[key(model.weights[0])])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_resumed_run_rewinds_to_the_recorded_weights(tmp_path, framework):
    """Save after the first stair, reload, resume with a new callback reading the file: the same
    weights at the end as the uninterrupted run."""
    path = tmp_path / "rewind.npz"
    whole = build(STAIRS, framework=framework)
    first_rewinding = WeightRewinding(4, filepath=path)
    train(whole, first_rewinding, epochs=3)
    assert first_rewinding.rewinds == [6, 11, 16]

    first = build(STAIRS, framework=framework)
    train(first, first_rewinding, epochs=1)  # the same callback on a new model starts afresh
    assert first_rewinding.rewinds == [6]
    first.save(tmp_path / "model.keras")
    load_model = schedules.keras3.load_model if framework == "keras3" else schedules.load_model
    resumed = load_model(tmp_path / "model.keras")  # (on Keras 3, with the PruningCallback's masks)
    rewinding = WeightRewinding(4, filepath=path)
    train(resumed, rewinding, epochs=3, initial_epoch=1)
    assert rewinding.rewinds == [11, 16]
    for a, b in zip(first_rewinding.recorded, rewinding.recorded, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    with pytest.raises(ValueError, match=r"Argument `filepath` must be the \.npz file the first run recorded"):
        train(first, WeightRewinding(4), epochs=2, initial_epoch=1)  # past step 4, and nothing to read


class Crash(tf_keras.callbacks.Callback):
    """Stops the run with an error at the end of the first epoch (after the backup is written)."""

    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("crash")


def test_placed_before_backup_and_restore_it_resumes_from_the_restored_model(tmp_path):
    """`BackupAndRestore` restores the model in its own `on_train_begin`, after this callback's when
    this one comes first: it must read the model at the first batch, not before (else it records a
    new model's weights at step 0 over the file, or loads nothing). The restarted run, on a newly
    built model, ends with the uninterrupted run's weights."""
    x, y = data()
    fits = {"batch_size": 8, "shuffle": False, "verbose": 0}
    whole = build(STAIRS)
    whole.fit(x, y, epochs=3, callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), WeightRewinding(0)], **fits)

    def callbacks():
        backup = tf_keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
        return [WeightRewinding(0, filepath=tmp_path / "rewind.npz"), tfmot.sparsity.keras.UpdatePruningStep(), backup]

    with pytest.raises(RuntimeError, match="crash"):
        build(STAIRS).fit(x, y, epochs=3, callbacks=[*callbacks(), Crash()], **fits)
    restarted = build(STAIRS)
    for weight in restarted.trainable_weights:  # other initial weights: restored anyway
        weight.assign(weight + 0.5)
    restarted.fit(x, y, epochs=3, callbacks=callbacks(), **fits)
    for a, b in zip(whole.get_weights(), restarted.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_rewind_step_inside_an_execution_is_refused():
    """Keras' loop driven by hand on a real pruned model: the wrappers' steps jump from 3 to 6 between
    two calls, as with steps_per_execution=3 (a fit would trace a three-step function for this)."""
    model = build(STAIRS)
    rewinding = WeightRewinding(5)
    rewinding.set_model(model)
    wrappers = [layer for layer in model.layers if hasattr(layer, "pruning_step")]
    for layer in wrappers:
        layer.pruning_step.assign(3)
    rewinding.on_train_begin()
    rewinding.on_train_batch_begin(0)
    for layer in wrappers:
        layer.pruning_step.assign(6)
    with pytest.raises(
        ValueError,
        match=r"last step of an execution with steps_per_execution=3 \(this one ran steps 4 to 6\): .*such as 3",
    ):
        rewinding.on_train_batch_end(0)


def test_bad_arguments_are_refused_with_the_argument_named():
    cases = [
        (dict(rewind_step=-1), ValueError, r"Argument `rewind_step` must be an integer in \[0, "),
        (dict(rewind_step=1.0), TypeError, "Argument `rewind_step`"),
        (dict(rewind_step=True), TypeError, "Argument `rewind_step`"),
        (dict(reset_optimizer="yes"), TypeError, "Argument `reset_optimizer` must be True or False"),
        (dict(filepath="weights.h5"), ValueError, r"Argument `filepath` must be a path ending in \.npz"),
        (dict(filepath=3), TypeError, r"Argument `filepath` must be a path ending in \.npz"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            WeightRewinding(**kwargs)


def test_wrong_use_is_refused_at_the_start_of_fit():
    first = r"\(layer 'prune_low_magnitude_hidden' prunes first at step 6: at most 5\)"
    with pytest.raises(ValueError, match=r"Argument `rewind_step` must be before the first pruning step " + first):
        train(build(STAIRS), WeightRewinding(6), epochs=1)
    legacy = build(STAIRS, tf_keras.optimizers.legacy.Adam(1e-2))
    with pytest.raises(TypeError, match="Argument `reset_optimizer` must be False with a legacy"):
        train(legacy, WeightRewinding(0), epochs=1)
    dense = tf_keras.Sequential([tf_keras.layers.Input((8,)), tf_keras.layers.Dense(4)])
    dense.compile("adam", "mse")
    with pytest.raises(ValueError, match="Argument `model` must be a built model pruned with prune_low_magnitude"):
        dense.fit(*data(), epochs=1, verbose=0, callbacks=[WeightRewinding()])


def test_wrong_use_on_a_keras3_model_is_refused_at_its_first_batch():
    """The PruningCallback chooses each layer's schedule when `fit` starts: checked at the first batch."""
    first = r"\(layer 'hidden' prunes first at step 6: at most 5\)"
    with pytest.raises(ValueError, match=r"Argument `rewind_step` must be before the first pruning step " + first):
        train(build(STAIRS, framework="keras3"), WeightRewinding(6), epochs=1)
    dense = build(STAIRS, framework="keras3")
    with pytest.raises(ValueError, match=r"Argument `model` must be a Keras 3 model pruned by a schedules\.keras3\."):
        dense.fit(*data(), epochs=1, verbose=0, callbacks=[WeightRewinding()])
