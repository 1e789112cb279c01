"""The command line: plot, gallery, demo, quickstart, and clear errors for bad options."""

from __future__ import annotations

import importlib.metadata
import os
import re
import runpy
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping

import pytest
import tf_keras as keras

from schedules import catalog, gallery, quickstart, registry
from schedules.cli import main
from schedules.demo import NEEDS_SCIKIT_LEARN
from schedules.models import build_cnn

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["quickstart", "--steps", "5"], "`--steps` must be an integer in [20, 10000000]. Received: --steps=5"),
        (["quickstart", "--final-sparsity", "1.2"], "`--final-sparsity` must be a finite number in [0.0, 1.0)"),
        (["quickstart", "--steps", "ten"], "invalid int value: 'ten'"),
        (["nonsense"], "invalid choice: 'nonsense'"),
        (["plot", "cubic"], "the following arguments are required: -o/--output"),
        (
            ["plot", "cubic", "-o", "x.jpg"],
            "`--output` must be a file name ending in .png or .svg. Received: --output='x.jpg'",
        ),
        (["plot", "cubic", "-o", "no/such/dir/x.png"], "`--output` must be in an existing directory"),
        (["plot", "cubical", "-o", "x.png"], "Unknown schedule family 'cubical'"),
        (["plot", "cubic", "--final-sparsity", "1.5", "-o", "x.png"], "`final_sparsity` must be a finite number"),
        (["plot", "cubic", "--final-sparsity", "high", "-o", "x.png"], "`final_sparsity` must be a number"),
        (["plot", "cyclic:num_cycles=0", "-o", "x.png"], "`num_cycles` must be an integer in [1, 500]"),
        (
            ["plot", "cyclic:cycles=2", "-o", "x.png"],
            "Schedule family 'cyclic' (CyclicSparsity) takes no parameter 'cycles'",
        ),
        (
            ["plot", "cubic:power=2", "-o", "x.png"],
            "Schedule family 'cubic' (CubicSparsity) takes no parameter 'power'",
        ),
        (
            ["plot", "exponential:rate=0.2", "-o", "x.png"],
            "Schedule family 'exponential' (ExponentialSparsity) takes no parameter 'rate'",
        ),
        (
            ["plot", "cubic", "--num-cycles", "3", "-o", "x.png"],
            "Parameter `num_cycles` is taken by none of the schedules named (cubic); it is a parameter of cyclic",
        ),
        (
            ["plot", "sequential", "-o", "x.png"],
            "Schedule family 'sequential' (SequentialSparsity) is built from other",
        ),
        (["plot", "cyclic:num_cycles", "-o", "x.png"], "Expected key=value"),
        (["plot", "cubic", "--end-step", "-5", "-o", "x.png"], "`end_step` must be an integer"),
        (["plot", "step", "--boundaries", "10;5", "--sparsities", "0.1;0.2", "-o", "x.png"], "strictly increasing"),
        (["plot", "cubic", "--steps", "0", "-o", "x.png"], "`--steps` must be an integer in [1,"),
        (["plot", "power", "--orientation", "sideways", "-o", "x.png"], "`orientation` must be one of 'fast_early'"),
        (["plot", "cosine:shape=wave", "-o", "x.png"], "`shape` must be one of 's_curve'"),
        (["plot", "one_cycle", "--alpha", "0", "-o", "x.png"], "`alpha` must be a finite number in (0.0, 1000.0]"),
        (["plot", "alternating", "--sparse-steps", "0", "-o", "x.png"], "`sparse_steps` must be an integer in [1,"),
        (["demo", "--schedule", "nope"], "Unknown schedule family 'nope'"),
        (["demo", "--final-sparsity", "1"], "`--final-sparsity` must be a finite number in [0.0, 1.0)"),
        (["demo", "--prune-epochs", "0"], "`--prune-epochs` must be an integer in [1, 10000]"),
        (["demo", "--schedule", "cyclic:num_cycles=1000"], "`num_cycles` must be an integer in [1, 220]"),
        (["demo", "--schedule", "cubic:power=2"], "Schedule family 'cubic' (CubicSparsity) takes no parameter 'power'"),
        (["demo", "--rewind-step", "-1"], "`--rewind-step` must be an integer in [0,"),
        (["demo", "--pattern", "2:4"], "--pattern is for Keras 3 models: add --keras3"),
        (["demo", "--backend", "jax"], "--backend is for Keras 3 models: add --keras3"),
        (["demo", "--keras3", "--pattern", "2-4"], "--pattern must be M:N (2:4) or RxC (4x1); received '2-4'"),
        (["demo", "--keras3", "--pattern", "4:4"], "--pattern M:N needs 0 < M < N"),
        (["demo", "--keras3", "--pattern", "0x2"], "--pattern RxC needs blocks of at least 1x1"),
        (["demo", "--keras3", "--pattern", "1:3", "--final-sparsity", "0.5"], "an M:N pattern prunes to M/N"),
        (["demo", "--keras3", "--pattern", "2:4", "--allocation", "erk"], "--allocation uniform with --pattern 2:4"),
        (["demo", "--channels", "--allocation", "lamp"], "--allocation uniform with --channels: ERK and LAMP rank"),
        (["demo", "--channels", "--keras3", "--pattern", "2:4"], "--pattern is for weight pruning; leave it out"),
        (["demo", "--channels", "--rewind-step", "3"], "--rewind-step is for weight pruning; leave it out"),
        (
            ["report", "missing.keras"],
            "Argument `MODEL` must be a saved model. Received: MODEL='missing.keras' (no such file)",
        ),
        (["report", "missing.keras", "--dense", "x.keras"], "Argument `MODEL` must be a saved model."),
        (
            ["demo", "--rewind-step", "40"],
            "`--rewind-step` must be before the first pruning step (the schedule prunes ",
        ),
    ],
)
def test_bad_options_exit_2_with_a_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "command, options",
    [
        ([], ["demo", "plot", "gallery", "quickstart"]),
        (["demo"], ["--schedule", "--final-sparsity", "--dense-epochs", "--prune-epochs", "--output-dir", "--seed"]),
        (["plot"], ["--output", "--steps", "--title"]),
        (["quickstart"], ["--steps", "--final-sparsity", "--seed"]),
    ],
)
def test_help_explains_every_option(command, options, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text


def test_plot_help_has_a_flag_for_every_parameter_of_every_family(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", "--help"])
    assert exit_info.value.code == 0
    flags = set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))

    def flag(name):
        return "--" + catalog.ALIASES.get(name, name).replace("_", "-")

    assert {flag(name) for name in catalog.parameters()} <= flags
    for family in catalog.command_line_families():
        missing = [name for name in family.parameters() if flag(name) not in flags]
        assert not missing, f"`plot --help` has no flag for parameters {missing} of family {family.name!r}"


def test_every_command_line_family_plots_with_its_defaults_alone(tmp_path, capsys):
    # One picture of them all (a picture per family costs a second each): each spec is built on its own,
    # from the catalog's defaults, exactly as `plot FAMILY` builds it.
    names = [family.name for family in catalog.command_line_families()]
    output = tmp_path / "every.svg"
    assert main(["plot", *names, "-o", str(output)]) == 0, names
    assert ElementTree.parse(output).getroot().tag.endswith("svg")
    text = output.read_text()
    assert [name for name in names if f"<!-- {name} -->" not in text] == []


def test_demo_checks_the_schedule_it_will_really_build(capsys):
    """The option check uses the demo's window and --final-sparsity, not the plot defaults."""
    from schedules.cli import _parser, _prepare

    args = _parser().parse_args(
        ["demo", "--final-sparsity", "0.95", "--schedule", "exponential_rate:rate=0.1,initial_sparsity=0.85"]
    )
    assert callable(_prepare("demo", args))
    args = _parser().parse_args(["demo", "--prune-epochs", "100", "--schedule", "cyclic:num_cycles=600"])
    assert callable(_prepare("demo", args))


def test_an_unwritable_output_ends_with_a_message_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", "cubic", "-o", "/proc/cubic.png"])
    assert exit_info.value.code != 0
    assert "cannot write /proc/cubic.png" in str(exit_info.value.code)


def test_tiny_rates_plot_without_a_traceback(tmp_path):
    output = tmp_path / "tiny.png"
    assert main(["plot", "exponential_rate", "--rate", "5e-324", "--steps", "100", "-o", str(output)]) == 0
    assert output.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_writes_a_valid_png(tmp_path, capsys):
    output = tmp_path / "one.png"
    assert main(["plot", "cubic", "--final-sparsity", "0.9", "-o", str(output)]) == 0
    assert output.read_bytes().startswith(PNG_SIGNATURE)
    assert f"wrote {output}" in capsys.readouterr().out


def test_plot_writes_a_valid_svg_comparing_several(tmp_path):
    output = tmp_path / "cmp.svg"
    specs = [
        "cubic",
        "cyclic:num_cycles=4",
        "step:spacing=geometric",
        "exponential",
        "exponential_rate:rate=0.2",
        "power:orientation=fast_late",
        "cosine:shape=fast_early",
        "one_cycle",
        "alternating:sparse_steps=50,dense_steps=50",
        "polynomial",
        "constant",
    ]
    # Shared flags apply to the named schedules that take them (--power: cyclic, power, polynomial).
    argv = ["plot", *specs, "--end-step", "500", "--frequency", "25", "--power", "2", "-o", str(output), "--title", "T"]
    assert main(argv) == 0
    root = ElementTree.parse(output).getroot()
    assert root.tag.endswith("svg")
    text = output.read_text()
    for spec in specs:
        assert spec in text  # the legend labels (matplotlib keeps text in SVG as comments and glyphs)


@pytest.fixture(scope="module")
def gallery_run(tmp_path_factory):
    """Runs `schedules gallery` once, recording every schedule it draws."""
    directory = tmp_path_factory.mktemp("gallery")
    drawn = []
    draw_one, draw_many = gallery.plot_schedule, gallery.plot_schedules

    def plot_schedule(schedule, *args, **kwargs):
        drawn.append(schedule)
        return draw_one(schedule, *args, **kwargs)

    def plot_schedules(schedules, *args, **kwargs):
        drawn.extend(schedules.values() if isinstance(schedules, Mapping) else schedules)
        return draw_many(schedules, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gallery, "plot_schedule", plot_schedule)
        patch.setattr(gallery, "plot_schedules", plot_schedules)
        assert main(["gallery", str(directory)]) == 0
    return directory, drawn


def test_gallery_writes_one_picture_per_family_and_a_comparison(gallery_run):
    directory, _ = gallery_run
    names = sorted(path.name for path in directory.iterdir())
    expected = [f"{name}.png" for name in gallery.PICTURES] + ["composition.png", "comparison.png", "allocation.png"]
    assert names == sorted(expected)
    for path in directory.iterdir():
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_gallery_draws_every_family_of_ours(gallery_run):
    _, drawn = gallery_run
    ours = [family for family in registry.families() if family.cls.__module__.split(".")[0] == "schedules"]
    assert ours
    drawn_classes = {type(schedule) for schedule in drawn}
    missing = [f"{family.name} ({family.cls.__name__})" for family in ours if family.cls not in drawn_classes]
    assert not missing, (
        f"the gallery draws no schedule of the families {missing}: add them to schedules.gallery.PICTURES"
    )


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--schedule", "cyclic:num_cycles=2", "--dense-epochs", "2", "--prune-epochs", "3"]
    argv += ["--allocation", "erk", "--final-sparsity", "0.8", "--output-dir", str(out), "--quiet"]
    argv += ["--rewind-step", "3"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    rewound = next(line for line in text.splitlines() if line.startswith("Rewound"))
    prefix = "Rewound to the weights of step 3 after the mask changes at steps: "
    assert rewound.startswith(prefix)
    steps = [int(step) for step in rewound.removeprefix(prefix).split(", ")]
    assert len(steps) > 10 and steps == sorted(steps) and steps[0] > 6  # the cycles start at sparsity 0
    assert (out / "rewind.npz").exists()
    assert "Dense test accuracy" in text and "Pruned test accuracy" in text
    assert "erk allocation for an overall sparsity of 0.8" in text
    reloaded = next(line for line in text.splitlines() if line.startswith("Reloaded"))
    assert "conv2 CyclicSparsity" in reloaded or "conv2 ScaledSparsity" in reloaded
    lines = text.splitlines()
    title = lines.index("erk allocation for an overall sparsity of 0.8")
    allocated = {line.split()[0]: line.split() for line in lines[title + 2 : title + 7]}
    report = lines[lines.index("Weights per layer (zeros counted in weight * mask):") + 2 :][:5]
    achieved = {line.split()[0]: line.split() for line in report}
    assert list(achieved) == ["conv1", "conv2", "dense", "logits", "overall"]
    for name, row in achieved.items():  # the trained masks keep what the allocation says, overall 0.8
        assert row[4] == allocated[name][3], (name, row, allocated[name])
    assert abs(float(achieved["overall"][-1]) - 0.8) <= 1 / 23824
    assert (out / "pruned.keras").exists() and (out / "sparsity.csv").exists()
    assert "What pruning saved" in text and "Stripped model files:" in text
    assert main(["report", str(out / "pruned.keras"), "--tflite"]) == 0  # the same figures from the saved file
    reported = capsys.readouterr().out.splitlines()
    table = reported[reported.index("layer    weights  target  zeros  kept  sparsity") + 1 :][:5]
    assert {line.split()[0]: line.split()[3] for line in table} == {name: row[3] for name, row in achieved.items()}
    sizes = {line.split("  ")[0]: line.split() for line in reported if line.startswith((".keras", ".h5", ".tflite"))}
    assert list(sizes) == [".keras", ".h5", ".tflite", ".tflite (sparse)", ".tflite (int8)", ".tflite (int8, sparse)"]
    raw = {form: int(row[-4].replace(",", "")) for form, row in sizes.items()}  # "98,900 B  17,577 B"
    assert raw[".tflite (sparse)"] < raw[".tflite"] / 2  # 80% zeros, stored sparse
    for picture in ("sparsity.png", "allocation.png"):
        assert (out / picture).read_bytes().startswith(PNG_SIGNATURE)


def test_demo_on_keras3_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--keras3", "--allocation", "lamp", "--dense-epochs", "1", "--prune-epochs", "1", "--quiet"]
    assert main([*argv, "--rewind-step", "1", "--output-dir", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rewound = next(line for line in lines if line.startswith("Rewound"))
    assert rewound.startswith("Rewound to the weights of step 1 after the mask changes at steps: ")
    assert (out / "rewind.npz").exists()
    assert lines[0].startswith("Keras 3.") and "(tensorflow backend), no tfmot." in lines[0]
    report = lines[lines.index("Weights per layer (zeros counted in the kernels):") + 2 :][:5]
    overall = report[-1].split()
    assert overall[0] == "overall" and abs(float(overall[-1]) - 0.9) <= 1 / 23824
    reloaded = next(line for line in lines if line.startswith("Reloaded"))
    assert "pruned-keras3.keras: step 45," in reloaded  # one epoch of 45 steps
    assert "Largest difference between trained and reloaded predictions: 0.00e+00" in lines
    assert (out / "sparsity-keras3.png").read_bytes().startswith(PNG_SIGNATURE)
    assert len((out / "sparsity.csv").read_text().splitlines()) > 20


def test_demo_on_keras3_takes_a_backend_and_a_pattern(tmp_path, capfd):
    """`--backend jax` runs the demo again in a new process under JAX; `--pattern 2:4` prunes every layer to
    2:4 (the first convolution, with one input channel, has no group of 4 and keeps every weight)."""
    pytest.importorskip("jax")
    out = tmp_path / "demo"
    argv = ["demo", "--keras3", "--backend", "jax", "--pattern", "2:4", "--dense-epochs", "1", "--prune-epochs", "1"]
    assert main([*argv, "--quiet", "--output-dir", str(out)]) == 0
    lines = capfd.readouterr().out.splitlines()
    assert any(line.startswith("Keras 3.") and "(jax backend), no tfmot." in line for line in lines), lines
    report = lines[lines.index("Weights per layer (zeros counted in the kernels):") + 2 :][:4]
    assert [(row.split()[0], float(row.split()[-1])) for row in report] == [
        ("conv1", 0.0),
        ("conv2", 0.5),
        ("dense", 0.5),
        ("logits", 0.5),
    ]
    assert "Largest difference between trained and reloaded predictions: 0.00e+00" in lines


def test_demo_with_channels_prunes_shrinks_and_times_the_small_model(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--channels", "--dense-epochs", "1", "--prune-epochs", "2", "--quiet", "--output-dir", str(out)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.strip() for line in lines if "kept" in line and "channels" in line] == [
        "conv1: kept 8 of 16 channels",
        "conv2: kept 16 of 32 channels",
        "dense: kept 32 of 64 channels",
    ]
    assert "  left whole: logits (a model output)" in lines
    assert "Parameters: 23,946 -> 6,218" in lines
    difference = next(line for line in lines if line.startswith("Largest difference"))
    assert float(difference.rsplit(" ", 1)[1]) <= 1e-4
    assert any(line.startswith("Invoke: dense ") and "of dense" in line for line in lines)
    assert (out / "channels-small.keras").exists() and (out / "channels-shrunk.tflite").exists()


def test_report_refuses_a_file_that_is_no_pruned_model(tmp_path, capsys):
    (tmp_path / "notes.keras").write_text("not a model")
    build_cnn(keras).save(tmp_path / "dense.keras")
    for name, message in (
        ("notes.keras", "Argument `MODEL` must be a saved Keras model ("),
        ("dense.keras", "Argument `MODEL` must be a pruned model (it has no pruning wrapper and no zero"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["report", str(tmp_path / name)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        lines = [line for line in err.strip().splitlines() if not line.startswith("loading ")]  # progress
        assert message in err and "Traceback" not in err and len(lines) <= 2, err


def test_quickstart_prunes_with_each_of_its_schedules_to_the_final_sparsity(capsys):
    assert main(["quickstart", "--steps", "40", "--final-sparsity", "0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    columns = lines[1].split()[1:]  # scheduled, conv1, conv2, dense, logits, accuracy
    rows = {line.split()[0]: dict(zip(columns, map(float, line.split()[1:]), strict=True)) for line in lines[2:-1]}
    assert list(rows) == list(quickstart.default_schedules(40))
    # Each layer within one weight of the target (the quick start's CNN: 12x12x1 images, 4 classes).
    model = build_cnn(keras, (12, 12, 1), 4)
    sizes = {layer.name: layer.kernel.shape.num_elements() for layer in model.layers if hasattr(layer, "kernel")}
    assert len(sizes) == 4 and set(sizes) <= set(columns)
    for name, values in rows.items():
        assert values["scheduled"] == 0.5
        for layer, size in sizes.items():
            assert abs(values[layer] - 0.5) <= 1 / size, (name, layer, values[layer])


def test_python_dash_m_and_console_script_entry_point(monkeypatch, capsys):
    """`python -m schedules --help` (run in process: a subprocess would spend its time
    importing TensorFlow), and the installed `schedules` command is `cli.main`."""
    monkeypatch.setattr(sys, "argv", ["python -m schedules", "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("schedules", run_name="__main__", alter_sys=True)
    assert exited.value.code == 0 and "demo" in capsys.readouterr().out
    (script,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "schedules"]
    assert script.load() is main


def test_the_demo_without_scikit_learn_says_in_one_line_what_to_install(tmp_path):
    """`python -m schedules` in a fresh process that cannot import scikit-learn (an extra, `demo`): exit
    status 1, nothing on stdout, no traceback, and the last line of stderr, after TensorFlow's start-up
    lines, says what to install."""
    (tmp_path / "sitecustomize.py").write_text("import sys\n\nsys.modules['sklearn'] = None  # as if not installed\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "schedules"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == f"schedules demo {NEEDS_SCIKIT_LEARN}"
    assert 'pip install "tfmot-schedules[demo]"' in NEEDS_SCIKIT_LEARN and "\n" not in NEEDS_SCIKIT_LEARN
    assert not (tmp_path / "demo-output").exists()


def test_a_spec_chooses_the_form_and_shared_values_fill_only_what_it_takes():
    """`step:boundaries=...` next to a shared window (the demo always passes one) is the explicit staircase."""
    from schedules import StepSparsity, catalog

    explicit = catalog.build("step", {"boundaries": [10, 20], "sparsities": [0.1, 0.2]}, shared={"end_step": 500})
    assert type(explicit) is StepSparsity and explicit.boundaries == [10, 20]
    from_flags = catalog.build("step", shared={"boundaries": [10, 20], "sparsities": [0.1, 0.2]})
    assert from_flags.boundaries == [10, 20]
    assert catalog.build("step", shared={"end_step": 500, "num_stages": 2}).boundaries == [0, 500]
    with pytest.raises(ValueError, match="takes no parameters 'boundaries', 'num_stages' together"):
        catalog.build("step", {"boundaries": [10, 20], "num_stages": 3})
