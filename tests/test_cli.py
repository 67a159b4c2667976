"""tavce command line: --version, --help, subcommand dispatch and error reporting."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys

import pytest

import tavce
from tavce import cli
from tavce.errors import InvalidAudioError


@pytest.fixture(autouse=True)
def _restore_root_logging(restore_root_logging):
    """Every test here runs main(), which configures the root logger (undone after each test)."""
    yield


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tavce {tavce.__version__}"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    output = capsys.readouterr().out
    assert "usage: tavce" in output and "--verbose" in output


def test_no_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: tavce" in capsys.readouterr().err


def _fake_subcommand(calls: list[argparse.Namespace], failure: BaseException | None = None) -> cli.Subcommand:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("audio")

    def run(arguments: argparse.Namespace) -> int:
        calls.append(arguments)
        logging.getLogger("tavce.test").debug("debug line")
        if failure is not None:
            raise failure
        return 0

    return cli.Subcommand("speak", "say something", add_arguments, run)


def test_subcommand_dispatch_and_verbose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[argparse.Namespace] = []
    monkeypatch.setattr(cli, "available_subcommands", lambda: [_fake_subcommand(calls)])
    assert cli.main(["--verbose", "speak", "a.wav"]) == 0
    assert calls[0].audio == "a.wav"
    assert "debug line" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "say something" in capsys.readouterr().out


def test_tavce_error_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    failure = InvalidAudioError("a.wav: audio file not found; check the path")
    monkeypatch.setattr(cli, "available_subcommands", lambda: [_fake_subcommand([], failure)])
    assert cli.main(["speak", "a.wav"]) == 2
    error = capsys.readouterr().err
    assert error.strip() == "tavce speak: error: a.wav: audio file not found; check the path"
    assert "Traceback" not in error


def test_unexpected_errors_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "available_subcommands", lambda: [_fake_subcommand([], ZeroDivisionError())])
    with pytest.raises(ZeroDivisionError):
        cli.main(["speak", "a.wav"])


def test_python_dash_m() -> None:
    run = subprocess.run([sys.executable, "-m", "tavce", "--version"], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stdout.strip() == f"tavce {tavce.__version__}"
