"""A model pruned with our schedules, saved as `.keras`, `.h5` or a SavedModel, reloads in
a fresh Python process with `import schedules` and `prune_scope()`, no custom_objects.

One model holds a layer pruned with each case of `_registry.FRESH_PROCESS_CASES["reload"]`
(its part of the cases of every family, the compositions among them) plus tfmot's
ConstantSparsity and PolynomialDecay. It is trained to `SAVED_STEP`, mid-schedule, and saved
in the three formats; one fresh process loads each format in turn, reports what it restored,
trains one more step and reports again. The assertions are parametrized over format x
schedule, so a failure names both.
Every case of `_registry.CASES` goes through the wrapper's config round trip in process
(`test_prune_low_magnitude_from_config_restores_the_schedule_class`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import _models
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from _registry import CASES, FRESH_PROCESS_CASES
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

import schedules

#: Saved after this many steps; the next step, 160, is a pruning event for some layers
#: (exponential, scaled, tfmot_polynomial) and not for the others.
SAVED_STEP = 159
FORMATS = {"keras": "model.keras", "h5": "model.h5", "savedmodel": "savedmodel"}
NAMES = sorted(FRESH_PROCESS_CASES["reload"]) + sorted(_models.TFMOT_SCHEDULES)
TIMEOUT = 300

# Runs in one fresh interpreter: argv = batch .npz, then (model path, output directory) per format.
LOADER = textwrap.dedent(
    """
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import collect_prunable_layers

    import schedules  # registers our schedules with tf-keras; nothing else tells the loader about them

    def load_and_resume(model_path, out):
        with tfmot.sparsity.keras.prune_scope():
            model = keras.models.load_model(model_path)
        layers = [layer for layer in collect_prunable_layers(model) if layer.pruning_vars]

        report = {
            "compiled_on_load": model.optimizer is not None,
            "layer_types": {
                layer.name: f"{type(layer).__module__}.{type(layer).__qualname__}" for layer in model.layers
            },
            "layers": {},
        }
        loaded = {f"weights_{i}": w for i, w in enumerate(model.get_weights())}
        for layer in layers:
            schedule = layer.pruning_schedule
            cls = type(schedule)
            report["layers"][layer.name] = {
                "schedule_type": f"{cls.__module__}.{cls.__qualname__}",
                "schedule_config": None if isinstance(schedule, (str, dict)) else schedule.get_config(),
                "schedule_used_for_masks": layer.pruning_obj._pruning_schedule is schedule,
                "step_after_load": int(layer.pruning_step.numpy()),
            }
            (weight, mask, _), = layer.pruning_vars
            loaded[f"{layer.name}.kernel"] = weight.numpy()
            loaded[f"{layer.name}.mask"] = mask.numpy()
        np.savez(os.path.join(out, "loaded.npz"), **loaded)

        if model.optimizer is None:
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
        batch = np.load(batch_path)
        model.fit(batch["x"], batch["y"], batch_size=len(batch["x"]), epochs=1, shuffle=False, verbose=0,
                  callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
        resumed = {}
        for layer in layers:
            report["layers"][layer.name]["step_after_fit"] = int(layer.pruning_step.numpy())
            resumed[f"{layer.name}.mask"] = layer.pruning_vars[0][1].numpy()
        np.savez(os.path.join(out, "resumed.npz"), **resumed)
        with open(os.path.join(out, "report.json"), "w") as f:
            json.dump(report, f)

    batch_path = sys.argv[1]
    for model_path, out in zip(sys.argv[2::2], sys.argv[3::2]):
        try:  # one format failing leaves the others to report
            load_and_resume(model_path, out)
        except Exception:
            import traceback
            with open(os.path.join(out, "error.txt"), "w") as f:
                f.write(traceback.format_exc())
    """
)


def layer_schedules() -> dict[str, object]:
    return {
        **{name: CASES[name](0) for name in sorted(FRESH_PROCESS_CASES["reload"])},
        **{name: factory() for name, factory in _models.TFMOT_SCHEDULES.items()},
    }


def layer_name(name: str, layers) -> str:
    (layer,) = [layer for layer in layers if layer.endswith((f"_conv_{name}", f"_dense_{name}"))]
    return layer


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass
class Saved:
    directory: Path
    schedules: dict[str, object]  # by case / tfmot name
    layers: dict[str, str]  # wrapper name by case / tfmot name
    kernels: dict[str, np.ndarray]  # by wrapper name
    masks: dict[str, np.ndarray]
    weights: list[np.ndarray]  # model.get_weights()
    step: int


@pytest.fixture(scope="session")
def saved(tmp_path_factory) -> Saved:
    """The model trained to `SAVED_STEP` and saved in every format, with its state."""
    directory = tmp_path_factory.mktemp("reload")
    schedules_by_name = layer_schedules()
    model = _models.build_branch_model(schedules_by_name)
    _models.fit(model, steps_per_epoch=SAVED_STEP)
    # The extra step after reload sees the epoch-end re-masked weights (exact zeros), so
    # no layer may lower its sparsity there (it would keep every tied zero).
    next_step = SAVED_STEP + 1
    for name, schedule in schedules_by_name.items():
        should_prune, sparsity = _models.scheduled(schedule, next_step + 1)
        previous = sparsity[:next_step][should_prune[:next_step]]
        assert not (should_prune[next_step] and previous.size and sparsity[next_step] < previous[-1]), name
    masks = _models.masks(model)
    state = Saved(
        directory=directory,
        schedules=schedules_by_name,
        layers={name: layer_name(name, masks) for name in schedules_by_name},
        kernels=_models.kernels(model),
        masks=masks,
        weights=model.get_weights(),
        step=_models.pruning_step(model),
    )
    assert state.step == SAVED_STEP
    model.save(directory / FORMATS["keras"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file", UserWarning)
        model.save(directory / FORMATS["h5"])
    model.save(directory / FORMATS["savedmodel"], save_format="tf")
    x, y = _models.make_data(_models.BATCH_SIZE, seed=1)
    np.savez(directory / "batch.npz", x=x, y=y)
    return state


@dataclass
class Reloaded:
    report: dict
    loaded: dict[str, np.ndarray]
    resumed: dict[str, np.ndarray]


@pytest.fixture(scope="session")
def reloaded(saved) -> dict[str, Reloaded | str]:
    """Per format, what a fresh process restored, or the error output if it failed. One
    process loads the three formats in turn (most of a process is importing TensorFlow)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    script = saved.directory / "load_pruned.py"
    script.write_text(LOADER)
    outs = {fmt: saved.directory / f"out_{fmt}" for fmt in FORMATS}
    command = [sys.executable, str(script), str(saved.directory / "batch.npz")]
    for fmt, out in outs.items():
        out.mkdir()
        command += [str(saved.directory / FORMATS[fmt]), str(out)]
    try:
        process = subprocess.run(command, capture_output=True, text=True, env=env, cwd=saved.directory, timeout=TIMEOUT)
        failure = "" if process.returncode == 0 else f"exit code {process.returncode}\n{process.stderr[-4000:]}"
    except subprocess.TimeoutExpired as error:
        failure = f"timed out after {TIMEOUT} s\n{str(error.stderr)[-4000:]}"
    results: dict[str, Reloaded | str] = {}
    for fmt, out in outs.items():
        if (out / "error.txt").exists():
            results[fmt] = (out / "error.txt").read_text()
        elif failure or not (out / "report.json").exists():
            results[fmt] = failure or "the loader wrote no report"
        else:
            with np.load(out / "loaded.npz") as loaded, np.load(out / "resumed.npz") as resumed:
                results[fmt] = Reloaded(
                    report=json.loads((out / "report.json").read_text()), loaded=dict(loaded), resumed=dict(resumed)
                )
    return results


def result(reloaded, fmt: str) -> Reloaded:
    outcome = reloaded[fmt]
    if isinstance(outcome, str):
        pytest.fail(f"loading the {fmt} model in a fresh process failed: {outcome}")
    return outcome


def restored_layer(outcome: Reloaded, fmt: str, layer: str) -> dict:
    """The report on wrapper `layer`; fails clearly if it did not come back as a wrapper
    (tf-keras silently revives a SavedModel layer it cannot rebuild from its config as
    a plain layer without pruning)."""
    if layer not in outcome.report["layers"]:
        pytest.fail(
            f"the {fmt} reload has no pruning wrapper {layer!r}; it restored it as "
            f"{outcome.report['layer_types'].get(layer)!r}. Layers: {outcome.report['layer_types']}"
        )
    return outcome.report["layers"][layer]


fmt_param = pytest.mark.parametrize("fmt", list(FORMATS))
name_param = pytest.mark.parametrize("name", NAMES)


@pytest.mark.slow
@fmt_param
@name_param
def test_schedule_restored_as_its_own_class_with_its_config(saved, reloaded, fmt, name):
    restored = restored_layer(result(reloaded, fmt), fmt, saved.layers[name])
    original = saved.schedules[name]
    assert restored["schedule_type"] == qualified_name(type(original))
    assert restored["schedule_config"] == json.loads(json.dumps(original.get_config()))


@pytest.mark.slow
@fmt_param
@name_param
def test_weights_masks_and_step_restored(saved, reloaded, fmt, name):
    outcome = result(reloaded, fmt)
    layer = saved.layers[name]
    restored = restored_layer(outcome, fmt, layer)
    assert np.array_equal(outcome.loaded[f"{layer}.kernel"], saved.kernels[layer])
    assert np.array_equal(outcome.loaded[f"{layer}.mask"], saved.masks[layer])
    assert restored["step_after_load"] == saved.step


@pytest.mark.slow
@fmt_param
@name_param
def test_training_resumes_at_the_next_step_with_the_same_schedule(saved, reloaded, fmt, name):
    """One more step: the step is saved + 1, the restored schedule drives the masks,
    and the mask follows the schedule at that step (an event or not)."""
    outcome = result(reloaded, fmt)
    layer = saved.layers[name]
    restored = restored_layer(outcome, fmt, layer)
    assert restored["step_after_fit"] == saved.step + 1
    assert restored["schedule_used_for_masks"]
    step = saved.step + 1
    should_prune, sparsity = _models.scheduled(saved.schedules[name], step + 1)
    mask = outcome.resumed[f"{layer}.mask"]
    if should_prune[step]:
        assert int(mask.sum()) == _models.expected_kept(sparsity[step], mask.size)
    else:
        assert np.array_equal(mask, saved.masks[layer])


def test_the_resumed_step_prunes_some_layers_and_not_others():
    """Keeps the previous test meaningful: step saved + 1 is an event for some layers only,
    ours and tfmot's."""
    step = SAVED_STEP + 1
    events = {name: bool(_models.scheduled(s, step + 1)[0][step]) for name, s in layer_schedules().items()}
    assert list(events) == NAMES
    assert any(events.values()) and not all(events.values()), events
    ours = [events[name] for name in FRESH_PROCESS_CASES["reload"]]
    assert any(ours) and not all(ours), events


@pytest.mark.slow
@fmt_param
def test_every_model_weight_restored(saved, reloaded, fmt):
    loaded = result(reloaded, fmt).loaded
    restored = [loaded[f"weights_{i}"] for i in range(len(saved.weights))]
    assert f"weights_{len(saved.weights)}" not in loaded
    assert all(np.array_equal(a, b) for a, b in zip(restored, saved.weights, strict=True))


def test_a_keras_file_loads_from_its_extracted_weights_and_leaves_nothing_behind(saved, tmp_path, monkeypatch):
    """`schedules.load_model` has tf-keras read a `.keras` file's weights from a copy extracted from the archive
    (h5py's seeks in the zip stream cost minutes on large models): every weight restored, tf-keras' own store
    class back in place afterwards, and the extracted copy deleted."""
    from tf_keras.src.saving import saving_lib

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile reads TMPDIR again
    extracted = []
    extract = zipfile.ZipFile.extract

    def spy(archive, member, path=None, pwd=None):
        extracted.append(member)
        return extract(archive, member, path, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "extract", spy)
    store = saving_lib.H5IOStore
    model = schedules.load_model(saved.directory / FORMATS["keras"])
    assert extracted == ["model.weights.h5"]
    assert saving_lib.H5IOStore is store
    assert list(tmp_path.iterdir()) == []
    assert all(np.array_equal(w.numpy(), s) for w, s in zip(model.weights, saved.weights, strict=True))


# --- in process: the wrapper's own config round trip ---------------------------------------


def test_prune_low_magnitude_from_config_restores_the_schedule_class(schedule):
    wrapper = PruneLowMagnitude(keras.layers.Dense(4), pruning_schedule=schedule)
    config = wrapper.get_config()
    for candidate in (config, json.loads(json.dumps(config))):  # as stored in memory and in a file
        restored = PruneLowMagnitude.from_config(candidate).pruning_schedule
        assert type(restored) is type(schedule)
        assert restored.get_config() == schedule.get_config()
        steps = tf.range(400, dtype=tf.int64)
        for got, want in zip(restored(steps), schedule(steps), strict=True):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
