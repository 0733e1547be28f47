"""The `slmscale` command: help lists the stages, errors are clean."""

from __future__ import annotations

import subprocess
import sys

import pytest

from slmscale.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name, _, _ in COMMANDS:
        assert name in out


def test_every_command_has_help(capsys):
    for name, _, _ in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"slmscale {name}" in capsys.readouterr().out


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-stage"])
    assert exit_info.value.code == 2
    assert "no-such-stage" in capsys.readouterr().err


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "slmscale", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "slmscale" in result.stdout


@pytest.mark.parametrize("argv", [
    ["train", "--units", "A", "--units", "B", "--out", "R"],
    ["eval", "R", "--benchmark", "B", "--out", "F1", "--out", "F2"],
    ["sweep", "plan", "S.yaml", "--workers", "1", "--workers", "2"],
])
def test_a_single_valued_option_given_twice_is_an_error(argv, capsys):
    # argparse keeps the last value: `--units A --units B` trained on B without a word.
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "was given twice" in capsys.readouterr().err


@pytest.mark.parametrize("verbosity, ours, theirs", [(0, True, False), (1, True, True), (-1, False, False)])
def test_other_libraries_log_only_warnings_unless_verbose(verbosity, ours, theirs):
    import logging

    from slmscale.log import setup_logging
    try:
        setup_logging(verbosity)
        assert logging.getLogger("slmscale.units.tokenize").isEnabledFor(logging.INFO) is ours
        assert logging.getLogger("faiss.loader").isEnabledFor(logging.INFO) is theirs
        assert logging.getLogger("faiss.loader").isEnabledFor(logging.WARNING)
    finally:
        setup_logging(0)
