"""Tests for ierkit/cleanup/_restore.py: restore verifies the archive before it writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from ierkit.archive import ArchiveError
from ierkit.cleanup import restore_archive, run_cleanup
from ierkit.orgs import LocalOrg
from tests.test_cleanup import IERS, LINKS, SELECTED_IERS, _criteria, _folder_hashes, _make_org


@pytest.fixture
def cleaned(tmp_path: Path) -> tuple[LocalOrg, Path]:
    """An org cleaned up by run r1 into the archive ``tmp_path/a``."""
    org = _make_org(tmp_path / "org")
    run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    return org, tmp_path / "a"


def _manifest(archive: Path) -> dict:
    return json.loads((archive / "runs/r1/manifest.json").read_text())


def _file(archive: Path, table: str = IERS, index: int = 1) -> Path:
    return archive / _manifest(archive)["tables"][table]["files"][index]["path"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ierkit.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_an_edited_archive_file_is_refused_by_name_and_nothing_is_written(
    cleaned: tuple[LocalOrg, Path],
) -> None:
    org, archive = cleaned
    victim = _file(archive)
    # A plausible edit: the same records, one field changed; a valid Parquet file.
    frame = pl.read_parquet(victim)
    frame.with_columns(pl.col("subject_line").str.to_uppercase()).write_parquet(victim)
    before = _folder_hashes(org.path)
    with pytest.raises(ArchiveError) as caught:
        restore_archive(org, archive)
    message = str(caught.value)
    assert str(victim) in message and "does not match the manifest" in message
    assert "nothing restored" in message
    assert _folder_hashes(org.path) == before


def test_a_truncated_archive_file_is_refused_by_name(cleaned: tuple[LocalOrg, Path]) -> None:
    org, archive = cleaned
    victim = _file(archive, LINKS, 0)
    victim.write_bytes(victim.read_bytes()[:100])
    before = _folder_hashes(org.path)
    with pytest.raises(ArchiveError, match="does not match the manifest") as caught:
        restore_archive(org, archive, run_id="r1")
    assert str(victim) in str(caught.value)
    assert _folder_hashes(org.path) == before


def test_a_truncated_file_with_a_manifest_made_to_match_is_named_not_a_traceback(
    cleaned: tuple[LocalOrg, Path],
) -> None:
    org, archive = cleaned
    victim = _file(archive)
    victim.write_bytes(victim.read_bytes()[:100])
    manifest = _manifest(archive)
    entry = next(f for f in manifest["tables"][IERS]["files"] if archive / f["path"] == victim)
    entry["sha256"] = hashlib.sha256(victim.read_bytes()).hexdigest()
    (archive / "runs/r1/manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArchiveError, match="not a readable Parquet file") as caught:
        restore_archive(org, archive)
    assert str(victim) in str(caught.value)


def test_a_manifest_whose_counts_were_edited_is_refused(cleaned: tuple[LocalOrg, Path]) -> None:
    org, archive = cleaned
    manifest = _manifest(archive)
    manifest["tables"][IERS]["files"][0]["records"] += 1
    (archive / "runs/r1/manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArchiveError, match=r"1 records, the manifest says 2"):
        restore_archive(org, archive)


@pytest.mark.parametrize(
    ("where", "run_id", "expected"),
    [
        ("missing", None, "does not exist"),
        ("empty", None, "holds no cleanup run"),
        ("archive", "r9", "holds no run 'r9' (runs there: r1)"),
        ("file", None, "is a file: an archive is a folder"),
    ],
)
def test_a_wrong_archive_or_run_says_so(
    cleaned: tuple[LocalOrg, Path], where: str, run_id: str | None, expected: str
) -> None:
    org, archive = cleaned
    paths = {
        "missing": archive.parent / "nope",
        "empty": archive.parent / "org",
        "archive": archive,
    }
    paths["file"] = org.table_path(IERS)
    with pytest.raises(ArchiveError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        restore_archive(org, paths[where], run_id=run_id)


def test_a_run_stopped_before_its_manifest_has_nothing_to_restore(tmp_path: Path) -> None:
    org = _make_org(tmp_path / "org")
    (tmp_path / "a/runs/r2").mkdir(parents=True)
    with pytest.raises(ArchiveError, match=r"run r2 .* has no manifest"):
        restore_archive(org, tmp_path / "a", run_id="r2")


def test_a_verified_archive_restores_every_record(cleaned: tuple[LocalOrg, Path]) -> None:
    org, archive = cleaned
    counts = restore_archive(org, archive)
    assert counts.select("table", "archived", "restored").rows() == [(IERS, 5, 5), (LINKS, 6, 6)]
    assert set(SELECTED_IERS) <= set(org.table(IERS).collect()["id"])


def test_cli_restore_refusals_are_one_line_and_non_zero(cleaned: tuple[LocalOrg, Path]) -> None:
    org, archive = cleaned
    wrong = _cli("restore", "--source", str(org.path), "--archive", str(archive.parent / "org"))
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.count("\n") == 1 and "holds no cleanup run" in wrong.stderr
    victim = _file(archive)
    victim.write_bytes(victim.read_bytes()[:-10])
    bad = _cli("restore", "--source", str(org.path), "--archive", str(archive))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and str(victim) in bad.stderr
