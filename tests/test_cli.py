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


def _show_config_commands() -> list[list[str]]:
    """Every command line a user can end with `--show-config`: each registered stage, and each of its
    own subcommands or ACTION choices, enumerated from the parsers so that a new stage is included."""
    import argparse

    from slmscale.cli import command_parser, make_parser
    stages = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    lines = []
    for name in stages.choices:
        _, parser = command_parser(name)
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs:  # `tokenizer`, `corpus`, ...: the option belongs to each subcommand
            lines += [[name, sub] for sub in subs[0].choices]
            continue
        lines.append([name])
        lines += [[name, choice] for action in parser._actions if not action.option_strings and action.choices
                  for choice in action.choices]  # `unigram train`, `unigram encode`
    return lines


def test_every_command_answers_show_config(capsys):
    # The README promises `--show-config` for every stage; tokenize, tokenize-text, report, export,
    # generate, sizes, units check and sweep failed it (required arguments, or no such option).
    lines = _show_config_commands()
    assert {"tokenize", "report", "generate", "sweep"} <= {line[0] for line in lines}
    assert ["corpus", "import-folder"] in lines and ["unigram", "encode"] in lines
    for line in lines:
        assert main([*line, "--show-config"]) == 0, line
        out = capsys.readouterr().out
        assert out.strip(), line


@pytest.mark.parametrize("argv, keys", [
    (["tokenize"], ["dedup", "skip_bad", "workers", "hubert_path"]),
    (["tokenize-text"], ["alphabet"]),
    (["report"], ["bootstrap", "seed", "delta"]),
    (["generate"], ["temperature", "top_k", "top_p", "seed"]),
    (["sweep"], ["launcher", "slurm.partition", "grids[].sizes", "variants[].units"]),
    (["sizes"], []), (["export"], []), (["units", "check"], []),
])
def test_show_config_lists_the_keys_or_says_there_are_none(argv, keys, capsys):
    assert main([*argv, "--show-config"]) == 0
    out = capsys.readouterr().out
    listed = [line.split(" = ")[0] for line in out.splitlines() if " = " in line]
    assert all(key in listed for key in keys), (keys, listed)
    if not keys:
        assert "has no config keys" in out


@pytest.mark.parametrize("argv, needle", [
    (["tokenize", "C", "--out", "U"], "--tokenizer TOK"),
    (["tokenize-text", "T.jsonl"], "--out UNITS"),
    (["report", "SW"], "--out DIR"),
    (["export", "RUN"], "--out DIR"),
    (["generate", "RUN", "--out", "o.wav"], "--seconds S"),
    (["units", "check"], "UNITS"),
    (["unigram"], "ACTION"),
    (["sweep"], "usage: slmscale sweep"),
    (["report", "SW", "--out", "R", "--bootstrap", "-1"], "bootstrap: value -1"),
    (["tokenize", "C", "--tokenizer", "T", "--out", "U", "workers=-2"], "workers: value -2"),
])
def test_what_argparse_no_longer_requires_is_still_a_one_line_error(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and needle in err, err


def test_the_new_stage_configs_document_every_key():
    import dataclasses

    from slmscale.config import field_docs
    from slmscale.report.config import ReportConfig
    from slmscale.units.config import TokenizeConfig
    for cls in (TokenizeConfig, ReportConfig):
        docs = field_docs(cls)
        assert all(docs.get(f.name) for f in dataclasses.fields(cls)), cls
