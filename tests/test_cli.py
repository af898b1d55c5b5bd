"""The command line: help for every command, one clear line and a non-zero exit for mistakes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ierkit import cli


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ierkit.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_help_lists_every_command_with_one_line() -> None:
    _parser, runners = cli.build_parser()
    result = _run("--help")
    assert result.returncode == 0
    for name in runners:
        assert f"    {name} " in result.stdout or f"    {name}\n" in result.stdout


@pytest.mark.parametrize("command", sorted(cli.build_parser()[1]))
def test_every_command_has_help(command: str) -> None:
    result = _run(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: ierkit {command}")


def test_no_command_prints_help_and_fails() -> None:
    result = _run()
    assert result.returncode == 2 and "COMMAND" in result.stdout


def test_a_user_mistake_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = _run("weekly", "--source", str(tmp_path / "no-such-folder"), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ierkit weekly: error: source ")


def test_a_bad_date_is_reported_by_argparse() -> None:
    result = _run("weekly", "--as-of", "20/11/2026")
    assert result.returncode == 2
    assert "'20/11/2026' is not a date of the form YYYY-MM-DD" in result.stderr


def test_weekly_refuses_an_unknown_time_zone_by_name() -> None:
    result = _run("weekly", "--timezone", "Mars/Olympus")
    assert result.returncode == 2
    assert "'Mars/Olympus' is not an IANA zone name" in result.stderr
