"""The command line: the quick-start job and its option errors."""

from __future__ import annotations

import pytest

from schedules.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["quickstart", "--steps", "5"], "`--steps` must be an integer in [20, 10000000]. Received: --steps=5"),
        (["quickstart", "--final-sparsity", "1.2"], "`--final-sparsity` must be a finite number in [0.0, 1.0)"),
        (["quickstart", "--steps", "ten"], "invalid int value: 'ten'"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_bad_options_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["quickstart", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--steps", "--final-sparsity", "--seed"):
        assert option in text


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
