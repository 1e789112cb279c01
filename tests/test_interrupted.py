"""Interrupted training loses nothing: a pruning run killed with SIGKILL in the middle of
the schedule and restarted from its last checkpoint ends with masks and weights equal,
bit for bit, to those of an uninterrupted run.

Each run is a fresh process running `_interrupted_worker.py` (read its docstring): one
model with a pruned branch per case of `_registry.FRESH_PROCESS_CASES["interrupted"]` (its
part of the cases of every family, `cyclic_uneven` among them; plus tfmot's two as controls), Adam,
`EPOCHS x STEPS_PER_EPOCH` deterministic steps (fixed seeds and data, `shuffle=False`,
op determinism, one thread), `UpdatePruningStep` first in the callbacks, then the
variant's checkpointing: `BackupAndRestore` or `ModelCheckpoint` saving `.keras`, `.h5`
or a SavedModel at each epoch end.

One process, with `BackupAndRestore` and every `ModelCheckpoint` at once (most of a
process's time is importing TensorFlow and tracing the training step, so one killed run
serves every kind), is SIGKILLed right after step `KILL_STEP`, in the middle of an epoch.
The restart, one per variant on its own copy of the killed run's directory, resumes from
the variant's last checkpoint (the end of the previous epoch, step `CHECKPOINT_STEP`),
redoes the lost steps and finishes. It is compared with the
uninterrupted `reference` run: right after restoring (against the reference's state at
the checkpoint), after every later epoch, and at the end.

Why bit-for-bit holds, and what it takes (each point was seen to break it when missing):

* Checkpoints are at epoch ends and `fit(initial_epoch=...)` resumes at an epoch start,
  so the resumed run sees the same batches in the same order. (`BackupAndRestore` with
  an integer `save_freq` resumes in the middle of an epoch but feeds it the epoch's
  *first* batches: tf-keras starts a new data iterator and only advances its step count.
  Checked with 10 batches per epoch: resumed at batch 2, it fed batches 0 to 7.)
* The optimizer state comes back: Adam's moments and `iterations` are in every
  checkpoint, but tf-keras' `load_model` does not restore them from a SavedModel
  (tensorflow/tensorflow#44670); `load_weights` on the same directory does, and the
  worker calls it (through `schedules.load_model`). Without it most final masks differ
  (seen as 10 of 11 with an earlier set of schedules).
* `UpdatePruningStep` comes before the checkpoint callback, so the checkpoint holds the
  weights it re-masked at the epoch end (`test_checkpoint_before_update_pruning_step...`).
* Nothing else is needed from the schedule: it holds no variable, and the resumed step
  (`CHECKPOINT_STEP + 1`) is a cycle restart of `cyclic_uneven` to a non-zero sparsity,
  a mask update that depends on exactly which restored weights are zero.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import _models
import numpy as np
import pytest
import tensorflow as tf
from _registry import CASES, FRESH_PROCESS_CASES, HORIZON

WORKER = Path(__file__).with_name("_interrupted_worker.py")
# Few long epochs: each epoch end writes a checkpoint (a SavedModel takes seconds).
STEPS_PER_EPOCH = 156
EPOCHS = 3
TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH  # 468, past HORIZON
KILL_STEP = 200  # after the 44th batch of epoch 1 (0-based epochs)
CHECKPOINT_EPOCH = KILL_STEP // STEPS_PER_EPOCH  # epochs done at the last checkpoint: 1
CHECKPOINT_STEP = CHECKPOINT_EPOCH * STEPS_PER_EPOCH  # 156
TIMEOUT = 900  # seconds per process; several run at once on 2 cores

#: ModelCheckpoint's file at the end of epoch `n` (1-based), by variant.
CHECKPOINT_FILES = {"keras": "epoch{:02d}.keras", "h5": "epoch{:02d}.h5", "savedmodel": "epoch{:02d}"}
VARIANTS = ["backup", *CHECKPOINT_FILES]
#: The wrong callback order, to show what it costs: a `.keras` ModelCheckpoint listed
#: before UpdatePruningStep, saving `unmaskedNN.keras`.
WRONG_ORDER = "wrong_order"
WRONG_ORDER_FILE = "unmasked{:02d}.keras"
#: The worker's variant that writes every ModelCheckpoint at once (the killed run's).
ALL_CHECKPOINTS = "checkpoints"
#: The branches of the model, as the worker builds them: the slow subset, then tfmot's controls.
NAMES = sorted(FRESH_PROCESS_CASES["interrupted"]) + sorted(_models.TFMOT_SCHEDULES)


# --- running the workers ------------------------------------------------------------------


@dataclass
class Run:
    """One worker process: its exit code, the end of its output, and its out directory."""

    args: list[str]
    returncode: int | None
    output: str
    out: Path
    report: dict = field(default_factory=dict)

    def describe(self) -> str:
        return f"`{' '.join(self.args)}` exited with {self.returncode}:\n{self.output[-4000:]}"

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        with np.load(self.out / f"{name}.npz") as data:
            return dict(data)


def run_worker(args: list[str], run_dir: Path, out: Path) -> Run:
    command = [
        sys.executable,
        str(WORKER),
        args[0],
        str(run_dir),
        str(out),
        f"--epochs={EPOCHS}",
        f"--steps-per-epoch={STEPS_PER_EPOCH}",
        *args[1:],
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=WORKER.parent)
        run = Run(args, done.returncode, done.stdout + done.stderr, out)
    except subprocess.TimeoutExpired as e:  # subprocess.run has killed it
        output = "".join(s.decode() if isinstance(s, bytes) else s for s in (e.stdout or "", e.stderr or ""))
        run = Run(args, None, f"timed out after {TIMEOUT} s\n{output}", out)
    if (out / "report.json").exists():
        run.report = json.loads((out / "report.json").read_text())
    return run


@dataclass
class Chain:
    run_dir: Path
    killed: Run
    left_by_kill: list[str]  # the files in `run_dir` (checkpoints) the killed run left
    resumed: Run | None  # None when the killed run did not die as planned


def run_chains(directory: Path, pool: ThreadPoolExecutor) -> dict[str, Chain]:
    """One run killed with every kind of checkpoint, then one restart per variant, each on
    its own copy of the killed run's directory (a restart writes checkpoints too)."""
    run_dir = directory / "run"
    killed = run_worker([ALL_CHECKPOINTS, f"--kill-at-step={KILL_STEP}"], run_dir, directory / "killed")
    left = sorted(str(path.relative_to(run_dir)) for path in run_dir.rglob("*")) if run_dir.exists() else []
    chains = {}
    for variant in [*VARIANTS, WRONG_ORDER]:
        copy = directory / variant / "run"
        if killed.returncode == -9:
            shutil.copytree(run_dir, copy)
            chains[variant] = (copy, pool.submit(run_worker, [variant], copy, directory / variant / "resumed"))
        else:
            chains[variant] = (copy, None)
    return {
        variant: Chain(copy, killed, left, None if future is None else future.result())
        for variant, (copy, future) in chains.items()
    }


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Run | Chain]:
    """The uninterrupted reference and every chain, all run at once (most of a short
    process is importing TensorFlow, and each process uses one thread)."""
    root = tmp_path_factory.mktemp("interrupted")
    with ThreadPoolExecutor(max_workers=2 + len(VARIANTS)) as pool:
        reference = pool.submit(run_worker, ["reference"], root / "reference" / "run", root / "reference" / "out")
        chains = run_chains(root / ALL_CHECKPOINTS, pool)
        return {"reference": reference.result(), **chains}


@pytest.fixture(scope="session")
def reference(runs) -> Run:
    run = runs["reference"]
    if run.returncode != 0:
        pytest.fail(f"the uninterrupted reference run failed: {run.describe()}")
    return run


def resumed(runs, chain_name: str) -> Run:
    """The restarted run of a chain; fails clearly if the kill or the restart failed."""
    chain = runs[chain_name]
    if chain.resumed is None:
        pytest.fail(f"{chain_name}: the run to kill did not die by SIGKILL: {chain.killed.describe()}")
    if chain.resumed.returncode != 0:
        pytest.fail(f"{chain_name}: the restarted run failed: {chain.resumed.describe()}")
    return chain.resumed


def wrapper(reference: Run, name: str) -> str:
    """The pruning wrapper of the branch pruned by schedule `name`."""
    (layer,) = [
        layer
        for layer in reference.report["pruned_layer_weights"]
        if layer.endswith((f"_conv_{name}", f"_dense_{name}"))
    ]
    return layer


def differences(got: dict[str, np.ndarray], want: dict[str, np.ndarray], keys=None) -> list[str]:
    """Every key whose arrays are not bit-for-bit equal, with how much they differ."""
    keys = sorted(want) if keys is None else keys
    problems = [f"{key}: missing" for key in keys if key not in got]
    for key in keys:
        if key in got and not np.array_equal(got[key], want[key]):
            a, b = np.asarray(got[key]), np.asarray(want[key])
            if a.shape != b.shape:
                problems.append(f"{key}: shape {a.shape} != {b.shape}")
            else:
                diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
                problems.append(f"{key}: {int(np.sum(a != b))} of {a.size} differ, by up to {diff.max():.3g}")
    return problems


def wrapper_keys(state: dict[str, np.ndarray], layer: str) -> list[str]:
    return [f"mask/{layer}", f"kernel/{layer}", *sorted(k for k in state if k.startswith(f"weights/{layer}/"))]


variant_param = pytest.mark.parametrize("variant", VARIANTS)
name_param = pytest.mark.parametrize("name", NAMES)


# --- the design holds ------------------------------------------------------------------------


def test_the_kill_and_the_resume_fall_where_they_test_something():
    """The kill is mid-epoch and mid-schedule; the checkpoint is before it; the lost steps
    of every branch of ours hold pruning events, and so do the steps after the kill; the
    first resumed step lowers a sparsity (a cycle restart) for one branch."""
    assert KILL_STEP % STEPS_PER_EPOCH != 0
    assert 0 < CHECKPOINT_STEP < KILL_STEP < HORIZON < TOTAL_STEPS
    schedules_by_name = {name: CASES[name](0) for name in sorted(FRESH_PROCESS_CASES["interrupted"])}
    lost, restarts, later = [], [], []
    for name, schedule in schedules_by_name.items():
        should_prune, sparsity = _models.scheduled(schedule, TOTAL_STEPS + 1)
        events = np.flatnonzero(should_prune)
        if np.any((events > CHECKPOINT_STEP) & (events <= KILL_STEP)):
            lost.append(name)
        if np.any(events > KILL_STEP):
            later.append(name)
        first = CHECKPOINT_STEP + 1
        before = events[events < first]
        if should_prune[first] and before.size and sparsity[first] < sparsity[before[-1]]:
            restarts.append(name)
    assert lost == later == list(schedules_by_name), (lost, later)
    assert restarts == ["cyclic_uneven"]
    assert CASES["cyclic_uneven"](0).initial_sparsity > 0  # a restart that meets re-masked zeros


@pytest.mark.slow
def test_the_reference_runs_every_step_past_the_horizon(reference):
    """`EPOCHS` whole epochs, one step per batch, past every schedule's last change."""
    epochs = reference.report["epochs"]
    assert [(e["epoch"], e["step_at_begin"], e["step_at_end"]) for e in epochs] == [
        (k, k * STEPS_PER_EPOCH, (k + 1) * STEPS_PER_EPOCH) for k in range(EPOCHS)
    ]
    assert reference.report["final_step"] == TOTAL_STEPS
    final = reference.arrays("final")
    assert int(final["iterations"]) == TOTAL_STEPS
    assert all(np.all(np.isfinite(value)) for value in final.values())


# --- the kill ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_by_sigkill_mid_epoch_after_a_checkpoint(runs):
    chain = runs["backup"]  # every variant's chain starts from the same killed run
    assert all(runs[variant].killed is chain.killed for variant in [*VARIANTS, WRONG_ORDER])
    assert chain.killed.returncode == -9, chain.killed.describe()
    killed = json.loads((chain.killed.out / "killed.json").read_text())
    assert killed == {"step": KILL_STEP, "epoch": CHECKPOINT_EPOCH}
    left = chain.left_by_kill
    # One ModelCheckpoint of each kind per finished epoch, and the backup directory ...
    patterns = [*CHECKPOINT_FILES.values(), WRONG_ORDER_FILE]
    assert [name for name in left if "/" not in name] == sorted(
        ["backup", *(pattern.format(epoch) for pattern in patterns for epoch in range(1, CHECKPOINT_EPOCH + 1))]
    )
    # ... with one backup, of the last finished epoch (fit deletes it when it finishes).
    assert "backup/chief/checkpoint" in left, left
    assert f"backup/chief/ckpt-{CHECKPOINT_EPOCH}.index" in left, left


# --- the restart restores the checkpoint ---------------------------------------------------


@pytest.mark.slow
@variant_param
def test_the_restart_resumes_at_the_checkpoint_step(runs, variant):
    """The restored `pruning_step` is the checkpoint's; the first batch run is the first of
    the next epoch, step `CHECKPOINT_STEP + 1`; training ends at the same step."""
    report = resumed(runs, variant).report
    assert report["restarted"]
    assert report["step_at_train_begin"] == CHECKPOINT_STEP
    assert (report["first_epoch"], report["first_batch"]) == (CHECKPOINT_EPOCH, 0)
    assert report["step_after_first_batch"] == CHECKPOINT_STEP + 1
    assert report["final_step"] == TOTAL_STEPS
    if variant in CHECKPOINT_FILES:
        assert report["checkpoint"] == CHECKPOINT_FILES[variant].format(CHECKPOINT_EPOCH)
        assert report["step_after_load_model"] == CHECKPOINT_STEP


@pytest.mark.slow
@variant_param
@name_param
def test_restored_mask_and_weights_equal_the_uninterrupted_run_at_the_checkpoint(runs, reference, variant, name):
    layer = wrapper(reference, name)
    at_checkpoint = reference.arrays(f"epoch{CHECKPOINT_EPOCH:02d}")
    problems = differences(resumed(runs, variant).arrays("restored"), at_checkpoint, wrapper_keys(at_checkpoint, layer))
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@variant_param
def test_restored_state_equals_the_uninterrupted_run_at_the_checkpoint(runs, reference, variant):
    """Every weight, the step and the optimizer's variables. From a SavedModel, `load_weights`
    restores Adam's moments only when Adam creates them, at the first step (deferred
    restoration); the equal moments after the next epoch show that they came back."""
    restored = resumed(runs, variant).arrays("restored")
    at_checkpoint = reference.arrays(f"epoch{CHECKPOINT_EPOCH:02d}")
    keys = sorted(at_checkpoint)
    if variant == "savedmodel":
        assert sorted(key for key in keys if key not in restored) == sorted(
            key for key in keys if key.startswith("optimizer/") and key != "optimizer/0"
        )
        keys = [key for key in keys if key in restored]
    problems = differences(restored, at_checkpoint, keys)
    assert not problems, "\n".join(problems)
    assert int(restored["iterations"]) == int(restored["pruning_step"]) == CHECKPOINT_STEP


@pytest.mark.slow
def test_load_model_restores_no_optimizer_state_from_a_savedmodel(runs):
    """Why the worker follows `load_model` with `load_weights` for a SavedModel: tf-keras'
    `load_model` restores the optimizer from `.keras` and `.h5`, not from a SavedModel
    (tensorflow/tensorflow#44670). If this fails, tf-keras changed: revisit docs/saving.md."""
    after_load_model = {
        variant: resumed(runs, variant).report["iterations_after_load_model"] for variant in CHECKPOINT_FILES
    }
    assert after_load_model == {"keras": CHECKPOINT_STEP, "h5": CHECKPOINT_STEP, "savedmodel": 0}


# --- the resumed run ends where the uninterrupted one does -------------------------------


@pytest.mark.slow
@variant_param
@name_param
def test_final_mask_equals_the_uninterrupted_run(runs, reference, variant, name):
    layer = wrapper(reference, name)
    problems = differences(resumed(runs, variant).arrays("final"), reference.arrays("final"), [f"mask/{layer}"])
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@variant_param
@name_param
def test_final_weights_equal_the_uninterrupted_run(runs, reference, variant, name):
    """The pruned kernel, the bias, the threshold and the step of the branch's wrapper."""
    layer = wrapper(reference, name)
    final = reference.arrays("final")
    problems = differences(resumed(runs, variant).arrays("final"), final, wrapper_keys(final, layer))
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@variant_param
def test_every_weight_equals_the_uninterrupted_run_after_every_epoch(runs, reference, variant):
    """The whole model (the unpruned head too) and the optimizer's variables (`iterations`,
    Adam's moments), at each epoch end after the restart and at the end; names the first
    epoch that differs."""
    run = resumed(runs, variant)
    for epoch in range(CHECKPOINT_EPOCH + 1, EPOCHS + 1):
        problems = differences(run.arrays(f"epoch{epoch:02d}"), reference.arrays(f"epoch{epoch:02d}"))
        assert not problems, f"after epoch {epoch}:\n" + "\n".join(problems)
    problems = differences(run.arrays("final"), reference.arrays("final"))
    assert not problems, "at the end:\n" + "\n".join(problems)


# --- the schedule's state is the step -------------------------------------------------------


@pytest.mark.slow
@name_param
def test_the_schedule_adds_no_state_beyond_the_step(reference, name):
    """A wrapper's variables are its layer's, the mask, the threshold and `pruning_step`;
    the schedule object holds no variable. So a checkpoint of the model's weights is all
    a schedule needs (the equal resumed runs above show it is enough)."""
    assert reference.report["pruned_layer_weights"][wrapper(reference, name)] == [
        "kernel",
        "bias",
        "mask",
        "threshold",
        "pruning_step",
    ]
    schedule = CASES[name](0) if name in CASES else _models.TFMOT_SCHEDULES[name]()
    assert not [value for value in vars(schedule).values() if isinstance(value, (tf.Variable, tf.Module))]


# --- the callback order matters -------------------------------------------------------------


@pytest.mark.slow
def test_checkpoint_before_update_pruning_step_saves_unmasked_weights_and_diverges(runs, reference):
    """With the checkpoint callback *before* `UpdatePruningStep`, the checkpoint is written
    before `UpdatePruningStep.on_epoch_end` re-masks the weights: it holds masked weights
    that are not zero (the optimizer moved them). The first resumed step, a restart of `cyclic_uneven`
    to a lower sparsity, then ranks those instead of exact zeros, and the run ends with other
    masks. This is why `UpdatePruningStep` must come before the checkpoint callback."""
    run = resumed(runs, WRONG_ORDER)
    at_checkpoint = reference.arrays(f"epoch{CHECKPOINT_EPOCH:02d}")
    restored = run.arrays("restored")
    layers = [wrapper(reference, name) for name in NAMES]
    assert not differences(restored, at_checkpoint, [f"mask/{layer}" for layer in layers])
    unmasked = []
    for layer in layers:
        kernel, mask = restored[f"kernel/{layer}"], restored[f"mask/{layer}"]
        assert np.array_equal(kernel * mask, at_checkpoint[f"kernel/{layer}"]), layer
        assert not np.any(at_checkpoint[f"kernel/{layer}"][mask == 0]), layer
        if np.any(kernel[mask == 0]):
            unmasked.append(layer)
    # Every layer with a pruned weight at the checkpoint (an alternating schedule in a
    # dense phase has none) holds non-zero masked weights in the checkpoint.
    pruned = [layer for layer in layers if np.any(restored[f"mask/{layer}"] == 0)]
    assert len(pruned) > len(layers) // 2
    assert unmasked == pruned
    final_masks = differences(run.arrays("final"), reference.arrays("final"), [f"mask/{layer}" for layer in layers])
    assert any(wrapper(reference, "cyclic_uneven") in problem for problem in final_masks), final_masks
