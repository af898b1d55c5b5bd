"""``ierkit aggregate`` under kills, concurrent runs and hostile paths, with real subprocesses.

The crash tests kill a real ``ierkit aggregate`` process with SIGKILL at each write boundary
(``IERKIT_CRASH_AT``, see ``ierkit._files.crash_point``), run the next extract, and compare both
output tables with an uninterrupted run of the same extracts.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from ierkit import _files, aggregate, cli, store
from ierkit.errors import IerkitError
from ierkit.orgs import LocalOrg
from tests.test_aggregate import CONTACT, CONTACT_2, HEAD, LEAD, mc

ROOT = Path(__file__).resolve().parent.parent
AGGREGATE = (sys.executable, "-m", "ierkit.cli", "aggregate")


def write_window(folder: Path, jobs: range, days: range, *, subject: str) -> Path:
    """An extract of several sends to three recipients, covering whole days (0 = send day).

    Each day: an open by CONTACT; on odd days a click by CONTACT_2 on a per-send link; on
    day 2 an open by LEAD. SendJobs gives each send the subject ``"<subject> <job>"``.
    """
    sent, opens, clicks = [], [], []
    for job in jobs:
        for day in days:
            minute = day * 1440 + job
            if day == 0:
                sent += [f"1,{job},{key},,{sid},5,{mc(job)},Sent,0," for key, sid in _PEOPLE]
            opens.append(f"1,{job},{CONTACT},,11,5,{mc(minute + 30)},Open,0,")
            if day % 2:
                link = f"https://x/{job}/{day}"
                clicks.append(f"1,{job},{CONTACT_2},,13,5,{mc(minute + 31)},Click,0,,{link}")
            if day == 2:
                opens.append(f"1,{job},{LEAD},,12,5,{mc(minute + 45)},Open,0,")
    folder.mkdir(parents=True)
    (folder / "Sent.csv").write_text("\n".join([HEAD, *sent]) + "\n")
    (folder / "Opens.csv").write_text("\n".join([HEAD, *opens]) + "\n")
    (folder / "Clicks.csv").write_text("\n".join([HEAD + ",URL", *clicks]) + "\n")
    jobs_rows = [f"1,{job},Acme,news@acme.test,{subject} {job},Mail {job}" for job in jobs]
    (folder / "SendJobs.csv").write_text(
        "\n".join(["ClientID,SendID,FromName,FromEmail,Subject,EmailName", *jobs_rows]) + "\n"
    )
    return folder


_PEOPLE = ((CONTACT, 11), (LEAD, 12), (CONTACT_2, 13))


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """C (the first week), then A and B: overlapping windows and sends, new sends in each."""
    root = tmp_path_factory.mktemp("extracts")
    return {
        "C": write_window(root / "C", range(100, 104), range(0, 2), subject="C"),
        "A": write_window(root / "A", range(101, 105), range(0, 4), subject="A"),
        "B": write_window(root / "B", range(102, 106), range(2, 5), subject="B"),
    }


def tables(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    org = LocalOrg(out)
    return (
        org.table("individual_email_results").collect().sort("id"),
        org.table("individual_links").collect().sort("id"),
    )


def same(left: tuple[pl.DataFrame, pl.DataFrame], right: tuple[pl.DataFrame, pl.DataFrame]) -> bool:
    return left[0].equals(right[0]) and left[1].equals(right[1])


@pytest.fixture(scope="module")
def reference(
    extracts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[pl.DataFrame, pl.DataFrame]]:
    """Uninterrupted runs, one extract after the other, in process: "CAB", "CBA" and "CB"."""
    results = {}
    for order in ("CAB", "CBA", "CB"):
        out = tmp_path_factory.mktemp(f"ref-{order}") / "out"
        for name in order:
            assert cli.main(["aggregate", str(extracts[name]), "--out", str(out)]) == 0
        results[order] = tables(out)
    assert results["CAB"][0].height == 18 and results["CAB"][1].height > 0
    assert not same(results["CAB"], results["CB"])
    return results


def run_cli(*args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    """``ierkit aggregate ARGS`` in a new process (killing itself at ``crash_at``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(_files.CRASH_ENV, None)
    if crash_at is not None:
        env[_files.CRASH_ENV] = crash_at
    return subprocess.run(
        [*AGGREGATE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def debris(out: Path) -> list[str]:
    """Temporary files and folders of aggregate runs left in the output folder or its store."""
    patterns = [".staging-*", ".sorting-*", ".*.tmp", "events/.*.old-*", "events/*/.*"]
    found = [p for pattern in patterns for p in (out / "event_store").glob(pattern)]
    found += [p for pattern in (".aggregate-*", ".*.tmp") for p in out.glob(pattern)]
    return sorted(str(p.relative_to(out)) for p in found)


# --- SIGKILL at every write boundary ---------------------------------------------------------

#: Each crash point, and what the store must show right after the kill (proof the kill landed
#: inside the window it names).
CRASH_POINTS = [
    "aggregate/staged",  # parsed and flushed, not committed: as if the run never happened
    "aggregate/committed",  # journal names the staging; store unchanged
    "aggregate/merge-written",  # a group's merged folders written, none switched
    "replace_folder/between-renames",  # a send's old folder moved aside, the new one not in
    "aggregate/merged",  # all events merged, send details not
    "aggregate/landed",  # store complete, tables stale
    "aggregate/tables-written",  # new tables in temporary files
    "aggregate/individual_email_results-replaced",  # IER table new, link table old
    "aggregate/individual_links-replaced",  # both new, the journal still lists the sends
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill_at_every_write_boundary_then_next_extract_ends_as_uninterrupted(
    point: str,
    extracts: dict[str, Path],
    reference: dict[str, tuple[pl.DataFrame, pl.DataFrame]],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    assert cli.main(["aggregate", str(extracts["C"]), "--out", str(out)]) == 0
    killed = run_cli(str(extracts["A"]), "--out", str(out), crash_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    events = store.events_dir(out / "event_store")
    if point == "replace_folder/between-renames":
        # The window the issue lost data in: the send's folder is gone, its old copy hidden.
        assert list(events.glob(".job_id=*.old-*")), "the kill did not land between the renames"
    if point != "aggregate/staged":
        assert store.read_journal(out / "event_store").pending, "nothing recorded as owed"

    assert cli.main(["aggregate", str(extracts["B"]), "--out", str(out)]) == 0
    expected = reference["CB" if point == "aggregate/staged" else "CAB"]
    got = tables(out)
    assert got[0].equals(expected[0]), point
    assert got[1].equals(expected[1]), point
    assert debris(out) == []
    assert store.read_journal(out / "event_store") == store.Journal()


def test_kill_during_recovery_is_recovered_too(
    extracts: dict[str, Path],
    reference: dict[str, tuple[pl.DataFrame, pl.DataFrame]],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    assert cli.main(["aggregate", str(extracts["C"]), "--out", str(out)]) == 0
    first = run_cli(str(extracts["A"]), "--out", str(out), crash_at="aggregate/committed")
    assert first.returncode == -signal.SIGKILL
    # The next run dies while finishing the first one's landing: the run after finishes both.
    second = run_cli(str(extracts["B"]), "--out", str(out), crash_at="aggregate/merge-written")
    assert second.returncode == -signal.SIGKILL
    assert cli.main(["aggregate", str(extracts["B"]), "--out", str(out)]) == 0
    assert same(tables(out), reference["CAB"])
    assert debris(out) == []


def test_a_failing_disk_keeps_the_old_tables_and_the_next_run_repairs(
    extracts: dict[str, Path],
    reference: dict[str, tuple[pl.DataFrame, pl.DataFrame]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    assert cli.main(["aggregate", str(extracts["C"]), "--out", str(out)]) == 0
    before = tables(out)

    def full_disk(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(aggregate, "_sink", full_disk)
        with pytest.raises(OSError, match="No space left"):
            aggregate.aggregate_extracts([extracts["A"]], out)
    assert same(tables(out), before)  # the previous tables, whole
    assert store.read_journal(out / "event_store").pending == (
        101,
        102,
        103,
        104,
    )  # the sends A touched
    assert cli.main(["aggregate", str(extracts["B"]), "--out", str(out)]) == 0
    assert same(tables(out), reference["CAB"]) and debris(out) == []


# --- concurrent runs ---------------------------------------------------------------------------


def test_two_concurrent_runs_end_as_one_after_the_other(
    extracts: dict[str, Path],
    reference: dict[str, tuple[pl.DataFrame, pl.DataFrame]],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    assert cli.main(["aggregate", str(extracts["C"]), "--out", str(out)]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(_files.CRASH_ENV, None)
    # Hold the store while both start, so they surely overlap, then let them race for it.
    with _files.exclusive_lock(out / "event_store" / store.LOCK_FILE, wait=0, what="test"):
        runs = [
            subprocess.Popen(
                [*AGGREGATE, str(extracts[name]), "--out", str(out), "--lock-wait", "60"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in "AB"
        ]
        time.sleep(1.5)
        assert all(run.poll() is None for run in runs), "a run did not wait for the lock"
    for run in runs:
        _stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
    got = tables(out)
    assert same(got, reference["CAB"]) or same(got, reference["CBA"])


@pytest.fixture
def held_output(extracts: dict[str, Path], tmp_path: Path) -> Iterator[Path]:
    """An output folder whose store this test process holds (as a running aggregate would)."""
    out = tmp_path / "out"
    assert cli.main(["aggregate", str(extracts["C"]), "--out", str(out)]) == 0
    with _files.exclusive_lock(out / "event_store" / store.LOCK_FILE, wait=0, what="test"):
        yield out


def test_second_run_is_refused_naming_the_holder_and_a_rerun_completes(
    held_output: Path, extracts: dict[str, Path]
) -> None:
    out = held_output
    # Debris of the holder's work in progress: never touched by the refused run.
    staging = out / "event_store" / ".staging-inprogress"
    staging.mkdir()
    before = tables(out)
    started = time.monotonic()
    refused = run_cli(str(extracts["A"]), "--out", str(out), "--lock-wait", "0.5")
    assert refused.returncode == 2
    message = refused.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert f"pid {os.getpid()} on host {socket.gethostname()}, started " in message
    assert "is in use by another run" in message and "waited 0.5 s" in message
    assert time.monotonic() - started < 60
    assert staging.is_dir() and same(tables(out), before)


def test_rerun_after_the_holder_finished_completes(
    extracts: dict[str, Path],
    reference: dict[str, tuple[pl.DataFrame, pl.DataFrame]],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    assert cli.main(["aggregate", str(extracts["C"]), "--out", str(out)]) == 0
    lock = out / "event_store" / store.LOCK_FILE
    with _files.exclusive_lock(lock, wait=0, what="test"):
        assert run_cli(str(extracts["A"]), "--out", str(out), "--lock-wait", "0").returncode == 2
    assert not lock.exists()  # released: no stale holder named in a file
    assert run_cli(str(extracts["A"]), "--out", str(out), "--lock-wait", "0").returncode == 0
    assert cli.main(["aggregate", str(extracts["B"]), "--out", str(out)]) == 0
    assert same(tables(out), reference["CAB"])


def test_lock_is_reentrant_in_one_process_and_bounded_across(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with _files.exclusive_lock(lock, wait=0, what="x") as outer:
        with _files.exclusive_lock(lock, wait=0, what="x") as inner:
            assert (outer, inner) == (True, False)
        assert f'"pid": {os.getpid()}' in lock.read_text()
        child = subprocess.run(
            [sys.executable, "-c", _HOLD_ONCE, str(lock)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert child.returncode == 3 and "x is in use by another run" in child.stderr
    refused = pytest.raises(IerkitError, match="give a number of seconds")
    with refused, _files.exclusive_lock(lock, wait=float("nan"), what="x"):
        pass


_HOLD_ONCE = """
import sys
from ierkit import _files
try:
    with _files.exclusive_lock(sys.argv[1], wait=0.2, what="x"):
        pass
except _files.LockHeldError as error:
    print(error, file=sys.stderr)
    sys.exit(3)
"""


# --- folders that are not aggregate's own ------------------------------------------------------


def test_refuses_a_local_org_folder(
    extracts: dict[str, Path],
    reference: dict[str, tuple[pl.DataFrame, pl.DataFrame]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    org_path = tmp_path / "snapshot"
    org = LocalOrg(org_path)
    org.write_table("individual_email_results", reference["CB"][0])
    org.write_table("individual_links", reference["CB"][1])
    written = {p.name: p.read_bytes() for p in org_path.iterdir()}
    assert cli.main(["aggregate", str(extracts["A"]), "--out", str(org_path)]) == 2
    err = capsys.readouterr().err
    assert f"--out {org_path}: this folder is not an output of ierkit aggregate" in err
    assert "individual_email_results.parquet" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in org_path.iterdir()} == written


@pytest.mark.parametrize("option", ["--out", "--store"])
def test_refuses_a_file_as_out_or_store(
    option: str, extracts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me\n")
    for given in (a_file, a_file / "below"):
        args = ["aggregate", str(extracts["A"]), "--out", str(tmp_path / "out")]
        args += ["--store", str(tmp_path / "store")]
        args[args.index(option) + 1] = str(given)
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert f"{option} {given}: {a_file} is a file, not a folder" in err
    assert a_file.read_text() == "keep me\n"


def test_refuses_a_store_folder_with_other_contents(
    extracts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "report.docx").write_text("x")
    args = ["aggregate", str(extracts["A"]), "--out", str(tmp_path / "out")]
    assert cli.main([*args, "--store", str(documents)]) == 2
    assert "is not an event store" in capsys.readouterr().err
    assert sorted(p.name for p in documents.iterdir()) == ["report.docx"]


def test_an_output_of_an_earlier_version_is_accepted(
    extracts: dict[str, Path],
    reference: dict[str, tuple[pl.DataFrame, pl.DataFrame]],
    tmp_path: Path,
) -> None:
    # Earlier versions wrote no marker: their two tables beside their event store are theirs.
    out = tmp_path / "out"
    assert cli.main(["aggregate", str(extracts["C"]), "--out", str(out)]) == 0
    (out / store.OUTPUT_MARKER).unlink()
    assert cli.main(["aggregate", str(extracts["B"]), "--out", str(out)]) == 0
    assert same(tables(out), reference["CB"]) and (out / store.OUTPUT_MARKER).is_file()


def test_debris_of_a_killed_run_is_removed_on_the_next_start(
    extracts: dict[str, Path],
    reference: dict[str, tuple[pl.DataFrame, pl.DataFrame]],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    assert cli.main(["aggregate", str(extracts["C"]), "--out", str(out)]) == 0
    killed = uuid.uuid4().hex
    left = [
        out / "event_store" / ".staging-k1ll3d",
        out / "event_store" / f".sorting-{killed}",
        out / f".aggregate-{killed}",
    ]
    for folder in left:
        (folder / "job_id=100").mkdir(parents=True)
    (out / f".individual_email_results.{killed}.tmp").write_bytes(b"half")
    (out / "event_store" / ".send_jobs.parquet.k1ll3d.tmp").write_bytes(b"half")
    (out / ".engagement_signal.parquet.k1ll3d_x.tmp").write_bytes(b"half")
    # Not aggregate's: a user's file, and another writer's temporary table (atomic_path's name).
    others = [out / "notes.tmp", out / ".individual_links.parquet.x7q2.tmp"]
    for other in others:
        other.write_text("not ours")
    assert cli.main(["aggregate", str(extracts["B"]), "--out", str(out)]) == 0
    assert debris(out) == [str(others[1].relative_to(out))]
    assert all(other.is_file() for other in others)
    assert same(tables(out), reference["CB"])
