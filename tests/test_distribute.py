"""tf.distribute: pruning with our schedules under `MirroredStrategy` (two logical CPU devices
in one process) and `MultiWorkerMirroredStrategy` (two worker processes on localhost).

Both runs train the same model, one pruned layer per case of
`_registry.FRESH_PROCESS_CASES["distribute"]` (its part of the cases of every family) plus
tfmot's ConstantSparsity and PolynomialDecay, past the last change of their schedules, with
`UpdatePruningStep` (see `tests/_distribute_worker.py`, which runs in fresh processes:
logical devices must be configured before TensorFlow starts, and each worker is a process).
The three processes (one Mirrored, the two workers) run in parallel, once per module. Every
replica's and every worker's masks are read after every step. The assertions are
parametrized over the schedule names, so a failure names the schedule:

* the final sparsity is reached exactly (tfmot's kept count) on every replica and worker;
* the masks are bit-for-bit identical on every replica and on both workers, at every step;
* the masks follow the schedule at every step under the strategy (as in test_training),
  and every other weight is bit-identical on every replica and worker too;
* the model the chief saves reloads, with the trained masks and schedules.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import _distribute_worker as worker
import _models
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from _registry import CASES, FRESH_PROCESS_CASES, HORIZON

#: The pruned layers, as the worker builds them: the slow subset, then tfmot's two.
NAMES = sorted(FRESH_PROCESS_CASES["distribute"]) + sorted(_models.TFMOT_SCHEDULES)
WORKER = Path(worker.__file__).resolve()
#: For all three processes together; a worker whose peer died would otherwise wait for
#: its collectives forever.
TIMEOUT = 600
#: A step far beyond every schedule's last change: the value a schedule holds for good.
FAR = 10**9

name_param = pytest.mark.parametrize("name", NAMES)


# --- running the processes ------------------------------------------------------------------


@dataclass
class Run:
    """What one process reported (see `_distribute_worker`)."""

    directory: Path
    report: dict
    arrays: dict[str, np.ndarray]

    def layer(self, name: str) -> dict:
        return self.report["layers"][name]

    def masks(self, name: str) -> list[np.ndarray]:
        """The final mask of layer `name` on each local replica."""
        return [self.arrays[f"{name}/mask/{r}"] for r in range(len(self.layer(name)["final_step"]))]


def free_ports(count: int) -> list[int]:
    """Ports free right now on every interface (TensorFlow's gRPC server binds 0.0.0.0)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start(mode: str, out: Path, tf_config: dict | None = None) -> subprocess.Popen:
    out.mkdir(parents=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    # The worker imports `_models` and `_registry` from its own directory and `schedules`
    # from the repository, installed or not.
    env["PYTHONPATH"] = os.pathsep.join([str(WORKER.parents[1]), *filter(None, [env.get("PYTHONPATH")])])
    with open(out / "stdout.txt", "w") as stdout, open(out / "stderr.txt", "w") as stderr:
        return subprocess.Popen(
            [sys.executable, str(WORKER), mode, str(out)], stdout=stdout, stderr=stderr, env=env, cwd=out
        )


def wait(groups: dict[str, dict[str, subprocess.Popen]], deadline: float) -> dict[str, str]:
    """Waits for every process; returns an error message per failed group. When one
    process of a group fails, the rest of its group is killed at once (a worker whose
    peer is gone blocks in its next collective); at the deadline, everything left is."""
    errors: dict[str, str] = {}
    running = {(group, key): process for group, processes in groups.items() for key, process in processes.items()}
    while running:
        for (group, key), process in list(running.items()):
            code = process.poll()
            if code is not None:
                del running[group, key]
                if code != 0:
                    errors.setdefault(group, f"{key} exited with code {code}")
        for (group, key), process in list(running.items()):
            if group in errors or time.monotonic() > deadline:
                process.kill()
                process.wait()
                del running[group, key]
                errors.setdefault(group, f"{key} timed out after {TIMEOUT} s")
        time.sleep(0.1)
    return errors


def stderr_tail(directory: Path, lines: int = 40) -> str:
    text = (directory / "stderr.txt").read_text(errors="replace").splitlines()
    noise = ("I0000 ", "WARNING: All log messages")  # TensorFlow's start-up chatter
    return "\n".join([line for line in text if not line.startswith(noise)][-lines:])


def load(directory: Path) -> Run:
    with np.load(directory / "masks.npz") as arrays:
        return Run(directory, json.loads((directory / "report.json").read_text()), dict(arrays))


def start_workers(directory: Path) -> tuple[dict[str, subprocess.Popen], list[Path], dict]:
    """The two MultiWorkerMirroredStrategy workers, on two free localhost ports."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    outs = [directory / f"worker{index}" for index in range(2)]
    processes = {}
    for index, out in enumerate(outs):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        processes[f"worker {index}"] = start("multiworker", out, tf_config)
    return processes, outs, cluster


@pytest.fixture(scope="module")
def distributed_runs(tmp_path_factory) -> dict[str, list[Run] | str]:
    """`{"mirrored": [run], "multiworker": [worker 0, worker 1]}`, or an error message.

    The Mirrored process and the two workers run in parallel. If a worker cannot start
    its gRPC server (a port taken since `free_ports` chose it), the pair is started once
    more on other ports."""
    directory = tmp_path_factory.mktemp("distribute")
    deadline = time.monotonic() + TIMEOUT
    started: list[subprocess.Popen] = []
    outs = {"mirrored": [directory / "mirrored"]}
    groups: dict[str, dict[str, subprocess.Popen]] = {"mirrored": {"mirrored": start("mirrored", outs["mirrored"][0])}}
    started += groups["mirrored"].values()
    errors: dict[str, str] = {}
    try:
        for attempt in (1, 2):
            groups["multiworker"], outs["multiworker"], cluster = start_workers(directory / f"multiworker{attempt}")
            started += groups["multiworker"].values()
            errors.update(wait(groups, deadline))
            port_taken = any("Could not start gRPC server" in stderr_tail(out) for out in outs["multiworker"])
            if "multiworker" not in errors or not port_taken or attempt == 2:
                break
            del errors["multiworker"]
            groups = {}
    finally:
        for process in started:  # still running only after an exception here
            if process.poll() is None:
                process.kill()
                process.wait()
    results: dict[str, list[Run] | str] = {}
    for group, directories in outs.items():
        if group in errors:
            tails = "\n".join(f"--- {d.name} stderr:\n{stderr_tail(d)}" for d in directories)
            where = f" (TF_CONFIG cluster {cluster})" if group == "multiworker" else ""
            results[group] = f"{errors[group]}{where}\n{tails}"
        else:
            results[group] = [load(d) for d in directories]
    return results


def outcome(distributed_runs, group: str) -> list[Run]:
    result = distributed_runs[group]
    if isinstance(result, str):
        pytest.fail(f"the {group} run failed: {result}", pytrace=False)
    return result


@pytest.fixture(scope="module")
def mirrored(distributed_runs) -> Run:
    (run,) = outcome(distributed_runs, "mirrored")
    return run


@pytest.fixture(scope="module")
def workers(distributed_runs) -> list[Run]:
    return outcome(distributed_runs, "multiworker")


# --- the reference ---------------------------------------------------------------------------


def layer_schedule(name: str):
    return CASES[name](0) if name in CASES else _models.TFMOT_SCHEDULES[name]()


def final_sparsity(schedule) -> np.float32:
    _, sparsity = schedule(tf.constant([FAR], tf.int64))
    return np.float32(np.broadcast_to(np.asarray(sparsity), (1,))[0])


def training_events(should_prune: np.ndarray) -> np.ndarray:
    """Steps where training updates the mask; an event at step 0 is carried to step 1."""
    events = should_prune.copy()
    events[1] |= should_prune[0]
    events[0] = False
    return events


def schedule_mismatches(layer: dict, replica: int, schedule) -> list[str]:
    """Every step at which one replica's recorded mask departs from `schedule`."""
    kept = [k[replica] for k in layer["kept"]]
    digests = [d[replica] for d in layer["digest"]]
    n = layer["size"]
    should_prune, sparsity = _models.scheduled(schedule, len(kept))
    events = training_events(should_prune)
    problems = [] if kept[0] == n else [f"step 0: a fresh mask keeps {kept[0]} of {n} weights"]
    for step in range(1, len(kept)):
        if events[step]:
            expected = _models.expected_kept(sparsity[step], n)
            if kept[step] != expected:
                problems.append(f"step {step}: keeps {kept[step]} of {n}, expected {expected} ({sparsity[step]!r})")
        elif digests[step] != digests[step - 1]:
            problems.append(f"step {step}: mask changed ({kept[step - 1]} -> {kept[step]} kept) without an event")
    return problems


def test_training_runs_past_the_last_change_of_every_schedule_of_ours():
    """So that the final sparsity checked below is the one each schedule holds for good."""
    for name in FRESH_PROCESS_CASES["distribute"]:
        should_prune, sparsity = _models.scheduled(CASES[name](0), HORIZON + 1)
        last = max(np.flatnonzero(should_prune).max(), np.flatnonzero(np.diff(sparsity)).max() + 1)
        assert last < worker.STEPS, (name, int(last))


def test_no_sparsity_decrease_at_an_epoch_start():
    """Keeps the per-step checks exact: a lower sparsity on the first batch of an epoch
    meets the exact zeros of `UpdatePruningStep.on_epoch_end` and keeps them all (see
    test_training), so no layer may have one there."""
    starts = range(worker.STEPS_PER_EPOCH + 1, worker.STEPS + 1, worker.STEPS_PER_EPOCH)
    for name in NAMES:
        should_prune, sparsity = _models.scheduled(layer_schedule(name), worker.STEPS + 1)
        events = np.flatnonzero(training_events(should_prune))
        for previous, step in itertools.pairwise(events):
            assert not (step in starts and sparsity[step] < sparsity[previous]), (name, int(step))


# --- MirroredStrategy, two logical CPUs in one process -----------------------------------------


@pytest.mark.slow
def test_mirrored_trains_two_replicas_on_two_logical_cpus(mirrored):
    report = mirrored.report
    assert report["strategy"] == "MirroredStrategy"
    assert report["num_replicas_in_sync"] == 2
    devices = report["worker_devices"]
    assert len(set(devices)) == 2 and all(device.endswith(("CPU:0", "CPU:1")) for device in devices), devices
    assert {name: layer["final_step"] for name, layer in report["layers"].items()} == {
        name: [worker.STEPS] * 2 for name in NAMES
    }


@pytest.mark.slow
@name_param
def test_mirrored_reaches_the_final_sparsity_on_every_replica(mirrored, name):
    layer = mirrored.layer(name)
    n, final = layer["size"], final_sparsity(layer_schedule(name))
    assert layer["final_scheduled_sparsity"] == final
    assert layer["expected_mask_sparsity"] == _models.expected_mask_sparsity(final, n)
    assert [int(mask.sum()) for mask in mirrored.masks(name)] == [_models.expected_kept(final, n)] * 2
    assert layer["mask_sparsity"] == [layer["expected_mask_sparsity"]] * 2


@pytest.mark.slow
@name_param
def test_mirrored_masks_identical_on_every_replica_at_every_step(mirrored, name):
    layer = mirrored.layer(name)
    first, second = mirrored.masks(name)
    assert np.array_equal(first, second) and layer["replicas_identical"]
    assert len(layer["digest"]) == worker.STEPS + 1
    differ = [step for step, digests in enumerate(layer["digest"]) if len(set(digests)) != 1]
    assert not differ, f"replicas' masks differ after steps {differ[:10]}"
    assert all(steps == [step] * 2 for step, steps in enumerate(layer["step"]))


@pytest.mark.slow
@name_param
def test_mirrored_masks_follow_the_schedule_at_every_step(mirrored, name):
    assert not schedule_mismatches(mirrored.layer(name), 0, layer_schedule(name))


@pytest.mark.slow
def test_mirrored_replicas_hold_the_same_weights(mirrored):
    differ = [weight for weight, digests in mirrored.report["weights"].items() if len(set(digests)) != 1]
    assert not differ


# --- MultiWorkerMirroredStrategy, two worker processes on localhost -------------------------------


@pytest.mark.slow
def test_multiworker_trains_one_replica_in_each_of_two_workers(workers):
    assert [run.report["task"] for run in workers] == [["worker", 0], ["worker", 1]]
    assert [run.report["chief"] for run in workers] == [True, False]
    for index, run in enumerate(workers):
        assert run.report["strategy"] == "CollectiveAllReduceStrategy"  # MultiWorkerMirroredStrategy
        assert run.report["num_replicas_in_sync"] == 2
        assert run.report["worker_devices"] == [f"/job:worker/replica:0/task:{index}/device:CPU:0"]
        assert {name: layer["final_step"] for name, layer in run.report["layers"].items()} == {
            name: [worker.STEPS] for name in NAMES
        }


@pytest.mark.slow
@name_param
def test_multiworker_reaches_the_final_sparsity_on_every_worker(workers, name):
    for run in workers:
        layer = run.layer(name)
        n, final = layer["size"], final_sparsity(layer_schedule(name))
        assert layer["final_scheduled_sparsity"] == final
        (mask,) = run.masks(name)
        assert int(mask.sum()) == _models.expected_kept(final, n), run.directory.name
        assert layer["mask_sparsity"] == [_models.expected_mask_sparsity(final, n)]


@pytest.mark.slow
@name_param
def test_multiworker_masks_identical_on_every_worker_at_every_step(workers, name):
    (mask0,), (mask1,) = (run.masks(name) for run in workers)
    assert mask0.dtype == mask1.dtype and mask0.tobytes() == mask1.tobytes()  # bit for bit
    digests0, digests1 = (run.layer(name)["digest"] for run in workers)
    assert len(digests0) == len(digests1) == worker.STEPS + 1
    differ = [step for step, (a, b) in enumerate(zip(digests0, digests1, strict=True)) if a != b]
    assert not differ, f"the workers' masks differ after steps {differ[:10]}"
    assert all(steps == [step] for run in workers for step, steps in enumerate(run.layer(name)["step"]))


@pytest.mark.slow
@name_param
def test_multiworker_masks_follow_the_schedule_at_every_step(workers, name):
    for run in workers:
        assert not schedule_mismatches(run.layer(name), 0, layer_schedule(name)), run.directory.name


@pytest.mark.slow
def test_multiworker_workers_hold_the_same_weights(workers):
    """All weights (kernels, biases, masks, thresholds, steps) are bit-identical: the
    workers really trained one model."""
    weights0, weights1 = (run.report["weights"] for run in workers)
    assert sorted(weights0) == sorted(weights1)
    assert not [weight for weight in weights0 if weights0[weight] != weights1[weight]]


@pytest.fixture(scope="module")
def chief_model(workers) -> keras.Model:
    """The model worker 0 (the chief) saved, loaded in this process without a strategy."""
    assert not (workers[1].directory / "model.keras").exists()
    with tfmot.sparsity.keras.prune_scope():
        return keras.models.load_model(workers[0].directory / "model.keras")


@pytest.mark.slow
@name_param
def test_multiworker_model_saved_by_the_chief_reloads_with_the_trained_masks(workers, chief_model, name):
    layer = workers[0].layer(name)
    wrapper = chief_model.get_layer(layer["layer"])
    schedule = layer_schedule(name)
    assert type(wrapper.pruning_schedule) is type(schedule)
    assert wrapper.pruning_schedule.get_config() == schedule.get_config()
    weight, mask, _ = wrapper.pruning_vars[0]
    assert np.array_equal(mask.numpy(), workers[0].arrays[f"{name}/mask/0"])
    assert np.array_equal(weight.numpy(), workers[0].arrays[f"{name}/kernel/0"])
    assert int(wrapper.pruning_step.numpy()) == worker.STEPS
