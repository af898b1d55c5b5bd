"""The clear errors of ierkit/cli.py: input a user can fix gives one line and a non-zero exit,
never a traceback or silent nonsense (NaN in JSON, a negative day count accepted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from ierkit import cli
from tests.test_cleanup import IERS, _make_org

ARCHIVE_ARGS = ["--retention-days", "120", "--as-of", "2026-11-20"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ierkit.cli", *args], capture_output=True, text=True, timeout=120
    )


def _one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ierkit {command}: error: ")
    return lines[0]


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """argparse refuses ``argv`` (exit 2) with one line; that line."""
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == "", captured.err
    return lines[0]


# --- numbers: NaN, infinite, negative or zero where a count or size is meant --------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["storage", "--recipients", "nan"], "--recipients: 'nan' is not a whole number"),
        (["storage", "--recipients", "0"], "--recipients: '0' must be 1 or more"),
        (["storage", "--recipients", "-5"], "--recipients: '-5' must be 1 or more"),
        (["storage", "--recipients", "9" * 400], "--recipients: '999"),
        (
            ["storage", "--recipients", "10", "--links-per-recipient", "nan"],
            "--links-per-recipient: 'nan' is not a finite number",
        ),
        (
            ["storage", "--recipients", "10", "--links-per-recipient", "-0.5"],
            "--links-per-recipient: '-0.5' must be 0 or more",
        ),
        (
            ["storage", "--recipients", "10", "--sends-per-month", "inf"],
            "--sends-per-month: 'inf' is not a finite number",
        ),
        (
            ["storage", "--recipients", "10", "--sends-per-month", "0"],
            "--sends-per-month: '0' must be greater than 0",
        ),
        (
            ["storage", "--recipients", "10", "--record-kb", "-2"],
            "--record-kb: '-2' must be greater than 0",
        ),
        (["storage", "--recipients", "10", "--record-kb", "NaN"], "--record-kb: 'NaN' is not a"),
        (["check", "--days", "-5"], "--days: '-5' must be 1 or more"),
        (["sync-health", "--grace-hours", "nan"], "--grace-hours: 'nan' is not a finite number"),
        (["sync-health", "--grace-hours", "-1"], "--grace-hours: '-1' must be 0 or more"),
        (["diagnose", "--grace-hours", "inf"], "--grace-hours: 'inf' is not a finite number"),
        (
            ["cleanup", "--archive", "A", "--retention-days", "90", "--chunk-size", "0"],
            "--chunk-size: '0' must be 1 or more",
        ),
        (
            ["cleanup", "--archive", "A", "--retention-days", "90", "--chunk-size", "-10"],
            "--chunk-size: '-10' must be 1 or more",
        ),
        (["cleanup", "--archive", "A", "--retention-days", "-1"], "'-1' must be 0 or more"),
    ],
)
def test_a_number_out_of_its_range_is_refused_naming_the_option(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _refused(argv, capsys)
    assert line.startswith(f"ierkit {argv[0]}: error: argument ")
    assert expected in line


def test_storage_json_is_valid_json_or_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["storage", "--recipients", "1000", "--sends-per-month", "4", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)  # no NaN/Infinity
    assert figures["records"] == 1000 and figures["mb_per_year"] == pytest.approx(93.75)
    argv = ["storage", "--recipients", "1000", "--sends-per-month", "1e308", "--json"]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "too large to compute" in captured.err


def test_storage_figures_refuse_nan_from_the_library_too() -> None:
    from ierkit.storage import StorageError, send_storage

    with pytest.raises(StorageError, match="links per recipient must be a finite number"):
        send_storage(1000, links_per_recipient=float("nan"))
    with pytest.raises(StorageError, match="recipients must be a finite number"):
        send_storage(10**400)


# --- cleanup options -----------------------------------------------------------------------------


def test_retention_days_beyond_any_date_is_refused(tmp_path: Path) -> None:
    org = _make_org(tmp_path / "org")
    result = _cli(
        "cleanup",
        "--source",
        str(org.path),
        "--retention-days",
        "99999999",
        "--archive",
        str(tmp_path / "a"),
    )
    line = _one_line_error(result, "cleanup")
    assert "retention days 99,999,999 put the cutoff before 1700-01-01" in line


def test_an_archive_that_is_a_file_is_refused(tmp_path: Path) -> None:
    org = _make_org(tmp_path / "org")
    not_a_folder = tmp_path / "archive.txt"
    not_a_folder.write_text("x")
    for command in (["cleanup", *ARCHIVE_ARGS, "--execute"], ["restore"]):
        argv = [*command, "--source", str(org.path), "--archive", str(not_a_folder)]
        line = _one_line_error(_cli(*argv), command[0])
        assert f"{not_a_folder} is a file: an archive is a folder" in line
    assert not_a_folder.read_text() == "x"


def test_a_value_out_of_range_at_archive_time_names_the_record(tmp_path: Path) -> None:
    org = _make_org(tmp_path / "org")
    iers = org.table(IERS).collect()
    bad = pl.when(pl.col("id") == "a0R2").then(pl.datetime(1066, 10, 14, time_zone="UTC"))
    org.write_table(IERS, iers.with_columns(bad.otherwise("date_sent").alias("date_sent")))
    argv = ["cleanup", "--source", str(org.path), *ARCHIVE_ARGS, "--archive", str(tmp_path / "a")]
    line = _one_line_error(_cli(*argv, "--execute", "--run-id", "r1"), "cleanup")
    assert "a0R2 has date_sent 1066-10-14T00:00:00" in line and "1700-01-01" in line
    assert org.table(IERS).select(pl.len()).collect().item() == iers.height


# --- a damaged Parquet table in a local org ------------------------------------------------------


def test_a_truncated_table_is_named_with_its_file(tmp_path: Path) -> None:
    org = _make_org(tmp_path / "org")
    path = org.table_path(IERS)
    path.write_bytes(path.read_bytes()[:-40])
    argv = ["cleanup", "--source", str(org.path), *ARCHIVE_ARGS, "--archive", str(tmp_path / "a")]
    line = _one_line_error(_cli(*argv), "cleanup")
    assert f"table {IERS} ({path}) cannot be read" in line and "truncated or damaged" in line


def test_a_table_damaged_inside_is_named_when_the_query_meets_it(tmp_path: Path) -> None:
    org = _make_org(tmp_path / "org")
    path = org.table_path(IERS)
    data = bytearray(path.read_bytes())
    # Parquet ends with the footer, its 4-byte length and "PAR1": zero everything before it.
    pages_end = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    data[4:pages_end] = bytes(pages_end - 4)
    path.write_bytes(bytes(data))
    org.table(IERS)  # the footer reads: the damage shows only when a query reads the data
    argv = ["cleanup", "--source", str(org.path), *ARCHIVE_ARGS, "--archive", str(tmp_path / "a")]
    line = _one_line_error(_cli(*argv), "cleanup")
    assert f"table {IERS} ({path}) cannot be read" in line


def test_a_polars_error_the_data_does_not_explain_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Honest reporting: only errors a damaged table explains become one line.
    org = _make_org(tmp_path / "org")

    def broken(args):  # type: ignore[no-untyped-def]
        raise pl.exceptions.ComputeError("something else")

    parser, runners = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: (parser, dict.fromkeys(runners, broken)))
    with pytest.raises(pl.exceptions.ComputeError, match="something else"):
        cli.main(["check", "--source", str(org.path)])
