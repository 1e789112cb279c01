"""Models pruned and saved with schedules 0.1 still load, and resume training, with this code.

`fixtures/saved_0_1/` holds a tiny model with one pruned branch per schedule of the 0.1 test
registry (every family, with tfmot's `ConstantSparsity` and `PolynomialDecay`), trained with
`UpdatePruningStep` to step 159 and saved as `.keras` and `.h5` by schedules 0.1.0 (commit
80cfb4f), and what that code recorded about it (`expected.json`, `expected.npz`; see
`make_fixtures.py` there, which runs only against that commit). Each file is loaded once, in
process, with `schedules.load_model`, then trained one more step.

Old configs meet the redesign here: `ExponentialSparsity` configs carry `rate` (None, or a float
with `end_step=-1`). A plain one comes back as `ExponentialSparsity`, the open-ended one as the
equivalent `ExponentialRateSparsity`; every other schedule comes back as its old class. The
assertions are parametrized over format x schedule, so a failure names both.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

import schedules

#: The fixtures were saved with tf-keras 2.21. An older tf-keras cannot read what a newer one wrote,
#: whatever the schedules (tf-keras 2.16 refuses the `optional` argument of `InputLayer`).
SAVED_WITH_TF_KERAS = (2, 21)
pytestmark = pytest.mark.skipif(
    tuple(int(part) for part in keras.__version__.split(".")[:2]) < SAVED_WITH_TF_KERAS,
    reason="the fixtures were saved with tf-keras 2.21, which older tf-keras releases cannot read",
)

FIXTURES = Path(__file__).parent / "fixtures" / "saved_0_1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
FORMATS = {"keras": "model.keras", "h5": "model.h5"}
NAMES = sorted(EXPECTED["layers"])
SAVED_STEP = EXPECTED["saved_step"]
NEXT_STEP = SAVED_STEP + 1
STEPS = np.array(EXPECTED["steps"], dtype=np.int64)
BATCH_SIZE = 8  # as tests/_models.py
LEARNING_RATE = 0.05


# --- what the old configs become ---------------------------------------------------------


def in_new_form(config: dict) -> dict:
    """An old `{'class_name', 'config'}` schedule config as the redesigned code writes it.

    `ExponentialSparsity` had `rate`: with `end_step=-1` and a rate it is now an
    `ExponentialRateSparsity(rate, max_sparsity, begin_step, frequency, initial_sparsity)`;
    otherwise (`rate: None`) it stays an `ExponentialSparsity` without the key. A
    composition's children are converted likewise; everything else is unchanged.
    """
    class_name, arguments = config["class_name"], dict(config["config"])
    if class_name == "schedules>ExponentialSparsity":
        rate = arguments.pop("rate")
        if arguments["end_step"] == -1:
            assert rate is not None, config
            return {
                "class_name": "schedules>ExponentialRateSparsity",
                "config": {
                    "rate": rate,
                    "max_sparsity": arguments["final_sparsity"],
                    "begin_step": arguments["begin_step"],
                    "frequency": arguments["frequency"],
                    "initial_sparsity": arguments["initial_sparsity"],
                },
            }
        assert rate is None, config
    if class_name == "schedules>SequentialSparsity":
        arguments["schedules"] = [in_new_form(child) for child in arguments["schedules"]]
    if class_name == "schedules>ScaledSparsity":
        arguments["schedule"] = in_new_form(arguments["schedule"])
    return {"class_name": class_name, "config": arguments}


def class_of(config: dict) -> type:
    """The public class a (new-form) config names: ours by registered name, tfmot's by class name."""
    package, _, name = config["class_name"].rpartition(">")
    if package == "schedules":
        return getattr(schedules, name)
    assert not package, config
    return getattr(tfmot.sparsity.keras, name)


def children(schedule) -> list:
    """A composition's child schedules (its `schedules` or `schedule` argument); [] otherwise."""
    if isinstance(schedule, schedules.SequentialSparsity):
        return list(schedule.schedules)
    if isinstance(schedule, schedules.ScaledSparsity):
        return [schedule.schedule]
    return []


def child_configs(config: dict) -> list[dict]:
    arguments = config["config"]
    return list(arguments.get("schedules", [])) + ([arguments["schedule"]] if "schedule" in arguments else [])


def kept_by_tfmot(sparsity: float, size: int) -> int:
    """Weights a tfmot mask keeps at `sparsity` without ties (`pruning_impl.Pruning._update_mask`:
    `max(round(size * (1 - sparsity)), 1)` in float32, rounding half to even), as
    `tests/_models.expected_kept`."""
    return int(max(np.round(np.float32(size) * (np.float32(1.0) - np.float32(sparsity))), np.float32(1.0)))


def scheduled(schedule) -> tuple[np.ndarray, np.ndarray]:
    """`(should_prune, sparsity)` at `STEPS`, one vectorized eager call as the fixtures were recorded
    (tfmot's `ConstantSparsity` returns a scalar sparsity: broadcast)."""
    should_prune, sparsity = schedule(tf.constant(STEPS))
    assert should_prune.dtype == tf.bool and sparsity.dtype == tf.float32, (should_prune.dtype, sparsity.dtype)
    return (
        np.broadcast_to(should_prune.numpy(), STEPS.shape),
        np.broadcast_to(sparsity.numpy(), STEPS.shape),
    )


def saved_schedule_configs(fmt: str) -> dict[str, dict]:
    """The `pruning_schedule` config of every wrapper, read from the file itself (not loaded)."""
    path = FIXTURES / FORMATS[fmt]
    if fmt == "keras":
        with zipfile.ZipFile(path) as archive:
            model_config = json.loads(archive.read("config.json"))
    else:
        with h5py.File(path, "r") as file:
            model_config = json.loads(file.attrs["model_config"])
    return {
        layer["config"]["name"]: layer["config"]["pruning_schedule"]
        for layer in model_config["config"]["layers"]
        if layer["class_name"] == "PruneLowMagnitude"
    }


# --- the loaded models, once per format ----------------------------------------------------


@dataclass
class LayerState:
    schedule: object
    step: int
    mask: np.ndarray
    kernel: np.ndarray
    step_after_fit: int | None = None
    mask_after_fit: np.ndarray | None = None
    schedule_used_for_masks: bool | None = None


@pytest.fixture(scope="module")
def expected_arrays() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "expected.npz") as arrays:
        return dict(arrays)


@pytest.fixture(scope="module", params=list(FORMATS))
def fmt(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def restored(fmt) -> dict[str, LayerState]:
    """Per wrapper name, the state `schedules.load_model` restored, then after one more step."""
    model = schedules.load_model(FIXTURES / FORMATS[fmt])
    wrappers = [layer for layer in model.layers if isinstance(layer, PruneLowMagnitude)]
    states = {}
    for layer in wrappers:
        ((weight, mask, _),) = layer.pruning_vars
        states[layer.name] = LayerState(
            schedule=layer.pruning_schedule,
            step=int(layer.pruning_step.numpy()),
            mask=mask.numpy().copy(),
            kernel=weight.numpy().copy(),
        )
    if model.optimizer is None:  # both formats keep the compiled SGD; compile as the fixtures did otherwise
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), loss="mse")
    # Eagerly: tracing the training step of 22 pruned layers takes 10 times as long as running it
    # once. (Schedules in a `tf.function` are the contract suite's job: eager equals graph.)
    model.run_eagerly = True
    # One batch, as tests/_models.make_data(BATCH_SIZE, seed=1) (test_reload.py's extra step).
    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH_SIZE, *model.input_shape[1:])).astype(np.float32)
    y = rng.normal(size=(BATCH_SIZE, *model.output_shape[1:])).astype(np.float32)
    model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    for layer in wrappers:
        state = states[layer.name]
        state.step_after_fit = int(layer.pruning_step.numpy())
        state.mask_after_fit = layer.pruning_vars[0][1].numpy().copy()
        state.schedule_used_for_masks = layer.pruning_obj._pruning_schedule is layer.pruning_schedule
    return states


def restored_layer(restored: dict[str, LayerState], fmt: str, name: str) -> LayerState:
    wrapper = EXPECTED["layers"][name]["wrapper"]
    if wrapper not in restored:
        pytest.fail(f"the {fmt} model has no pruning wrapper {wrapper!r}; it has {sorted(restored)}")
    return restored[wrapper]


name_param = pytest.mark.parametrize("name", NAMES)


# --- the fixtures are what they claim --------------------------------------------------------


def test_fixtures_cover_every_family():
    classes = {record["class"]["name"] for record in EXPECTED["layers"].values()}
    children_classes = {child["name"] for record in EXPECTED["layers"].values() for child in record["children"]}
    assert classes == {
        "AlternatingSparsity",
        "ConstantSparsity",
        "CosineSparsity",
        "CubicSparsity",
        "CyclicSparsity",
        "ExponentialSparsity",
        "OneCycleSparsity",
        "PolynomialDecay",
        "PolynomialSparsity",
        "ScaledSparsity",
        "SequentialSparsity",
        "StepSparsity",
    }
    assert {"PolynomialDecay", "StepSparsity", "CubicSparsity", "CyclicSparsity"} <= children_classes
    rates = [
        record["config"]["config"]["rate"]
        for record in EXPECTED["layers"].values()
        if record["class"]["name"] == "ExponentialSparsity"
    ]
    assert None in rates and any(rate is not None for rate in rates)  # the plain and the open-ended form


def test_file_holds_the_0_1_configs(fmt):
    """The saved files really hold the old configs (e.g. ExponentialSparsity with `rate`)."""
    saved = saved_schedule_configs(fmt)
    assert saved == {record["wrapper"]: record["config"] for record in EXPECTED["layers"].values()}


def test_the_next_step_prunes_some_layers_and_not_others(expected_arrays):
    """Keeps the resumed-training test meaningful: step 160 is an event for some layers only."""
    index = int(np.flatnonzero(STEPS == NEXT_STEP)[0])
    events = {name: bool(expected_arrays[f"{name}.should_prune"][index]) for name in NAMES}
    assert any(events.values()) and not all(events.values()), events


# --- what loading restores -----------------------------------------------------------------


@name_param
def test_schedule_restored_as_the_expected_class(restored, fmt, name):
    old_config = EXPECTED["layers"][name]["config"]
    schedule = restored_layer(restored, fmt, name).schedule
    assert isinstance(schedule, tfmot.sparsity.keras.PruningSchedule), type(schedule)
    assert type(schedule) is class_of(in_new_form(old_config))
    got = [type(child) for child in children(schedule)]
    assert got == [class_of(child) for child in child_configs(in_new_form(old_config))]
    for child in children(schedule):
        assert isinstance(child, tfmot.sparsity.keras.PruningSchedule), type(child)


def test_open_ended_exponential_restored_as_exponential_rate_sparsity(restored, fmt):
    config = EXPECTED["layers"]["exponential_rate"]["config"]
    assert config["config"]["end_step"] == -1 and config["config"]["rate"] == 0.2
    schedule = restored_layer(restored, fmt, "exponential_rate").schedule
    assert type(schedule) is schedules.ExponentialRateSparsity
    assert schedule.end_step == -1


@pytest.mark.parametrize("name", ["exponential", "exponential_rate"])
def test_exponential_from_config_takes_the_old_config(name, expected_arrays):
    """`ExponentialSparsity.from_config` on the old config as saved: the inner dict (what tfmot's
    wrapper passes) and the `{'class_name', 'config'}` envelope."""
    config = EXPECTED["layers"][name]["config"]
    for candidate in (config["config"], config):
        schedule = schedules.ExponentialSparsity.from_config(candidate)
        assert type(schedule) is class_of(in_new_form(config))
        should_prune, sparsity = scheduled(schedule)
        np.testing.assert_array_equal(should_prune, expected_arrays[f"{name}.should_prune"])
        assert sparsity.tobytes() == expected_arrays[f"{name}.sparsity"].tobytes()


@name_param
def test_config_is_the_old_config_in_the_new_form(restored, fmt, name):
    """Saving a loaded model again writes the old arguments, in the redesigned form."""
    schedule = restored_layer(restored, fmt, name).schedule
    expected = in_new_form(EXPECTED["layers"][name]["config"])
    assert json.loads(json.dumps(schedule.get_config())) == expected


@name_param
def test_schedule_values_equal_the_old_values(restored, fmt, name, expected_arrays):
    """At steps 0 .. 400 and at giant steps. Bit for bit, except where the old code itself was
    not: tfmot's float32 `PolynomialDecay` (alone or as a child) differs by a few ulps between
    call forms, so it may differ by as much here (`ulps_across_call_forms`, recorded by
    make_fixtures.py; 0 for every schedule of this package)."""
    should_prune, sparsity = scheduled(restored_layer(restored, fmt, name).schedule)
    np.testing.assert_array_equal(should_prune, expected_arrays[f"{name}.should_prune"])
    old = expected_arrays[f"{name}.sparsity"]
    tolerance = EXPECTED["layers"][name]["ulps_across_call_forms"]
    if tolerance == 0:
        different = np.flatnonzero(sparsity.view(np.int32) != old.view(np.int32))
        assert different.size == 0, {int(STEPS[i]): (float(sparsity[i]), float(old[i])) for i in different[:10]}
    else:
        np.testing.assert_array_max_ulp(sparsity, old, maxulp=tolerance)


@name_param
def test_masks_kernels_and_step_restored(restored, fmt, name, expected_arrays):
    state = restored_layer(restored, fmt, name)
    for what, got in (("mask", state.mask), ("kernel", state.kernel)):
        want = expected_arrays[f"{name}.{what}"]
        assert (got.dtype, got.shape) == (want.dtype, want.shape), what
        different = np.argwhere(got.view(np.uint32) != want.view(np.uint32))  # bits: 0.0 is not -0.0
        assert different.size == 0, f"{what} differs at {different[:5].tolist()}"
    assert state.step == EXPECTED["layers"][name]["pruning_step"] == SAVED_STEP


@name_param
def test_training_resumes_at_the_next_step_with_the_restored_schedule(restored, fmt, name, expected_arrays):
    """One more step: the step is 160, the restored schedule drives the masks, and at an event
    the mask keeps tfmot's count; otherwise it is unchanged.

    The saved kernels were re-masked to exact zeros at the end of the epoch, so at an event with
    a lower sparsity than the previous one tfmot would keep every tied zero; no layer's schedule
    does that at step 160 (checked below), so the count is exact."""
    state = restored_layer(restored, fmt, name)
    assert state.step_after_fit == NEXT_STEP
    assert state.schedule_used_for_masks
    should_prune = expected_arrays[f"{name}.should_prune"]
    sparsity = expected_arrays[f"{name}.sparsity"]
    index = int(np.flatnonzero(STEPS == NEXT_STEP)[0])
    if should_prune[index]:
        earlier = sparsity[:index][should_prune[:index]]
        assert not earlier.size or sparsity[index] >= earlier[-1], "fixture precondition: no lower sparsity at 160"
        assert int(state.mask_after_fit.sum()) == kept_by_tfmot(sparsity[index], state.mask.size)
    else:
        assert np.array_equal(state.mask_after_fit, state.mask)
