"""The command line: plot, gallery, demo, quickstart, and clear errors for bad options."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from schedules.cli import main

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
        (["plot", "cyclic:cycles=2", "-o", "x.png"], "Unknown parameter 'cycles'"),
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
        (["plot"], ["--output", "--steps", "--title", "--initial-sparsity", "--num-cycles", "--rate", "--boundaries"]),
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


def test_demo_checks_the_schedule_it_will_really_build(capsys):
    """The option check uses the demo's window and --final-sparsity, not the plot defaults."""
    from schedules.cli import _parser, _prepare

    args = _parser().parse_args(
        ["demo", "--final-sparsity", "0.95", "--schedule", "exponential:rate=0.1,initial_sparsity=0.85"]
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
    assert main(["plot", "exponential", "--rate", "5e-324", "--steps", "100", "-o", str(output)]) == 0
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
        "exponential:rate=0.2",
        "power:orientation=fast_late",
        "cosine:shape=fast_early",
        "one_cycle",
        "alternating:sparse_steps=50,dense_steps=50",
        "polynomial",
        "constant",
    ]
    assert main(["plot", *specs, "--end-step", "500", "--frequency", "25", "-o", str(output), "--title", "T"]) == 0
    root = ElementTree.parse(output).getroot()
    assert root.tag.endswith("svg")
    text = output.read_text()
    for spec in specs:
        assert spec in text  # the legend labels (matplotlib keeps text in SVG as comments and glyphs)


def test_gallery_writes_one_picture_per_family_and_a_comparison(tmp_path):
    assert main(["gallery", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "alternating.png",
        "comparison.png",
        "composition.png",
        "cosine.png",
        "cubic.png",
        "cyclic.png",
        "exponential.png",
        "one_cycle.png",
        "power.png",
        "step.png",
    ]
    for path in tmp_path.iterdir():
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--schedule", "cyclic:num_cycles=2", "--dense-epochs", "2", "--prune-epochs", "3"]
    assert main([*argv, "--final-sparsity", "0.8", "--output-dir", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "Dense test accuracy" in text and "Pruned test accuracy" in text
    assert "schedule CyclicSparsity" in text
    for name in ("conv1", "conv2", "dense", "logits"):
        line = next(line for line in text.splitlines() if line.strip().startswith(name + " "))
        assert abs(float(line.split()[-1]) - 0.8) < 0.01
    assert (out / "pruned.keras").exists() and (out / "sparsity.csv").exists()
    assert (out / "sparsity.png").read_bytes().startswith(PNG_SIGNATURE)


def test_quickstart_prunes_every_family_to_its_final_sparsity(capsys):
    assert main(["quickstart", "--steps", "40", "--final-sparsity", "0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:6]}
    assert sorted(rows) == ["cubic", "cyclic", "exponential", "step"]
    for values in rows.values():
        scheduled, conv, dense, logits = map(float, values[:4])
        assert scheduled == 0.5
        # Each layer within one weight of the target: conv 144 weights, dense 400*32, logits 128.
        assert abs(conv - 0.5) <= 1 / 144 and abs(dense - 0.5) <= 1 / 12800 and abs(logits - 0.5) <= 1 / 128


def test_python_dash_m_and_console_script_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "schedules", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0 and "demo" in result.stdout
