"""Tests for ierkit/cleanup/ (with ierkit/archive.py and ierkit/orgs/archived.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ierkit import schema
from ierkit.archive import ArchiveStore, ids_sha256
from ierkit.cleanup import (
    CRASH_ENV,
    CleanupError,
    Ledger,
    VerificationError,
    cleanup_criteria,
    plan_cleanup,
    restore_archive,
    run_cleanup,
    select_iers,
    select_links,
)
from ierkit.orgs import LocalOrg, open_org

IERS, LINKS = "individual_email_results", "individual_links"
AS_OF = dt.date(2026, 11, 20)
WORKER = Path(__file__).with_name("cleanup_crash_worker.py")


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _full(table: str, data: dict[str, list]) -> pl.DataFrame:
    """A frame of ``table`` with the given columns and every other column null."""
    spec = schema.table(table)
    frame = pl.DataFrame(data)
    missing = [pl.lit(None, c.dtype).alias(c.name) for c in spec.columns if c.name not in data]
    return schema.validate(table, frame.with_columns(missing))


# Retention 120 days as of 2026-11-20: cutoff 2026-07-23 00:00 UTC.
IER_ROWS = {
    "id": ["a0R1", "a0R2", "a0R3", "a0R4", "a0R5", "a0R6", "a0R7"],
    "name": [
        "Monthly Newsletter - May",
        "Monthly Newsletter - June",
        "Product Nurture - Week 25",
        "Monthly Newsletter - October",
        "Product Nurture - Week 29",
        "Product Nurture - Week 30",
        "Welcome Email - Day 1",
    ],
    "contact_id": ["003A", "003B", "003A", "003A", "003C", None, None],
    "lead_id": [None, None, None, None, None, "00QA", "00QB"],
    "email_send_id": ["a0S1", "a0S2", "a0S3", "a0S4", "a0S5", "a0S6", None],
    "triggered_send_id": [None, None, None, None, None, None, "a0T1"],
    "date_sent": [
        _utc("2026-05-05T10:00"),
        _utc("2026-06-05T10:00"),
        _utc("2026-06-20T10:00"),
        _utc("2026-10-05T10:00"),
        _utc("2026-07-22T23:59:59"),  # one second before the cutoff: selected
        _utc("2026-07-23T00:00"),  # at the cutoff: kept
        _utc("2026-06-30T08:00"),
    ],
    "opened": [True, False, True, True, False, True, True],
    "total_clicks": [3, 0, 1, 2, 0, 0, 1],
    "subject_line": ["May news", "June news", "W25", "Oct news", "W29", "W30", "Welcome"],
}
LINK_ROWS = {
    "id": ["a0L1", "a0L2", "a0L3", "a0L4", "a0L5", "a0L6", "a0L7"],
    "individual_email_result_id": ["a0R1", "a0R1", "a0R3", "a0R4", None, "a0R9", "a0R7"],
    "link_url": [f"https://www.example.com/{p}" for p in ("pricing", "a", "b", "c", "d", "e", "f")],
    "total_clicks": [2, 1, 1, 2, 1, 1, 1],
    "created_date": [_utc(f"2026-0{m}-10T00:00") for m in (5, 5, 6, 9, 4, 3, 7)],
}
# Selected: IERs 1, 2, 3, 5, 7; their links 1, 2, 3, 7; orphans 5 (empty lookup), 6 (IER gone).
SELECTED_IERS = ["a0R1", "a0R2", "a0R3", "a0R5", "a0R7"]
SELECTED_LINKS = ["a0L1", "a0L2", "a0L3", "a0L5", "a0L6", "a0L7"]


def _make_org(path: Path) -> LocalOrg:
    org = LocalOrg(path)
    org.write_table(IERS, _full(IERS, IER_ROWS))
    org.write_table(LINKS, _full(LINKS, LINK_ROWS))
    return org


@pytest.fixture
def org(tmp_path: Path) -> LocalOrg:
    return _make_org(tmp_path / "org")


def _criteria(**options):
    return cleanup_criteria(120, as_of=AS_OF, **options)


def _ids(frame: pl.LazyFrame | pl.DataFrame) -> list[str]:
    frame = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    return sorted(frame.get_column("id").to_list())


def _folder_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _table(org: LocalOrg, name: str) -> pl.DataFrame:
    return org.table(name).collect().sort("id")


def _ledger_entries(result) -> list[dict]:
    return [json.loads(line) for line in Path(result.ledger_path).read_text().splitlines()]


# --- selection and plan ------------------------------------------------------------------------


def test_cutoff_is_as_of_midnight_minus_retention() -> None:
    assert _criteria().cutoff == _utc("2026-07-23T00:00")
    with pytest.raises(CleanupError, match="retention days"):
        cleanup_criteria(-1, as_of=AS_OF)


def test_selection_takes_old_iers_their_links_and_orphans(org: LocalOrg) -> None:
    assert _ids(select_iers(org, _criteria())) == SELECTED_IERS
    links = select_links(org, _criteria()).collect().sort("id")
    assert links["id"].to_list() == SELECTED_LINKS
    assert links.filter(pl.col("orphaned"))["id"].to_list() == ["a0L5", "a0L6"]


@pytest.mark.parametrize(
    ("options", "iers", "links"),
    [
        ({"programmes": ["Monthly Newsletter"]}, ["a0R1", "a0R2"], ["a0L1", "a0L2"]),
        ({"sends": ["a0S3", "a0T1"]}, ["a0R3", "a0R7"], ["a0L3", "a0L7"]),
        ({"programmes": ["Product Nurture"], "sends": ["a0S5"]}, ["a0R5"], []),
    ],
)
def test_programme_and_send_filters(org: LocalOrg, options, iers, links) -> None:
    criteria = _criteria(include_orphans=False, **options)
    assert _ids(select_iers(org, criteria)) == iers
    assert _ids(select_links(org, criteria)) == links


def test_plan_counts_per_object_programme_month_and_storage(org: LocalOrg) -> None:
    plan = plan_cleanup(org, _criteria())
    assert plan.records == {LINKS: 6, IERS: 5}
    assert plan.storage_mb == round(11 * 2 / 1024, 2)
    assert plan.by_programme.select("programme", "iers", "links").rows() == [
        ("(orphaned link details)", 0, 2),
        ("Monthly Newsletter", 2, 2),
        ("Product Nurture", 2, 1),
        ("Welcome Email", 1, 1),
    ]
    # Orphans count under their own created month (March, April): their send is gone.
    assert plan.by_month.select(pl.col("month").dt.strftime("%Y-%m"), "iers", "links").rows() == [
        ("2026-03", 0, 1),
        ("2026-04", 0, 1),
        ("2026-05", 1, 2),
        ("2026-06", 3, 2),
        ("2026-07", 1, 0),
    ]
    assert plan.by_send["send_id"].to_list() == ["a0S1", "a0S2", "a0S3", "a0T1", "a0S5"]
    assert any("2 link details already orphaned" in i for i in plan.impacts)
    assert any("3 contacts and 1 leads" in i for i in plan.impacts)
    assert "< 2026-07-23T00:00:00Z" in plan.query[IERS]


# --- dry run and execute -----------------------------------------------------------------------


def test_dry_run_changes_nothing(org: LocalOrg, tmp_path: Path) -> None:
    before = _folder_hashes(org.path)
    result = run_cleanup(org, archive=tmp_path / "archive", criteria=_criteria())
    assert result.dry_run and result.plan.total_records == 11
    assert _folder_hashes(org.path) == before
    assert not (tmp_path / "archive").exists()
    assert "Dry run" in str(result)


def test_execute_archives_exactly_the_selection_and_the_org_keeps_the_rest(
    org: LocalOrg, tmp_path: Path
) -> None:
    original = {t: _table(org, t) for t in (IERS, LINKS)}
    result = run_cleanup(
        org,
        archive=tmp_path / "archive",
        criteria=_criteria(),
        run_id="r1",
        execute=True,
        chunk_size=2,
    )
    store = ArchiveStore(tmp_path / "archive")
    for table, selected in ((IERS, SELECTED_IERS), (LINKS, SELECTED_LINKS)):
        archived = store.scan(table, run_id="r1").collect().sort("id")
        kept = _table(org, table)
        # Field for field: the archive holds the original rows of the selected Ids.
        assert_frame_equal(archived, original[table].filter(pl.col("id").is_in(selected)))
        assert_frame_equal(kept, original[table].filter(~pl.col("id").is_in(selected)))
        assert archived.height + kept.height == original[table].height
    assert result.verification is not None and result.verification["ok"].all()
    counts = result.deleted.select("table", "deleted", "failed").rows()
    assert counts == [(LINKS, 6, 0), (IERS, 5, 0)]
    assert result.failures.is_empty()


def test_manifest_has_counts_hashes_query_and_cutoff(org: LocalOrg, tmp_path: Path) -> None:
    run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    manifest = json.loads((tmp_path / "a/runs/r1/manifest.json").read_text())
    assert manifest["cutoff"] == "2026-07-23T00:00:00+00:00"
    assert "SELECT" in manifest["query"][IERS]
    assert manifest["tables"][IERS]["records"] == 5
    for entry in manifest["tables"][IERS]["files"] + manifest["tables"][LINKS]["files"]:
        path = tmp_path / "a" / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert ids_sha256(pl.read_parquet(path)["id"]) == entry["ids_sha256"]
    paths = [f["path"] for f in manifest["tables"][IERS]["files"]]
    assert paths == [f"{IERS}/year=2026/month={m}/r1-0000.parquet" for m in ("05", "06", "07")]


def test_corrupt_archive_file_stops_the_run_before_any_delete(
    org: LocalOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ierkit import cleanup

    before = _folder_hashes(org.path)
    begin = cleanup.Ledger.begin

    def corrupt_then_begin(self, step, **fields):
        if step == "verify":  # archive and manifest written: damage one file
            target = tmp_path / f"a/{IERS}/year=2026/month=06/r1-0000.parquet"
            pl.read_parquet(target).head(1).write_parquet(target)
        begin(self, step, **fields)

    monkeypatch.setattr(cleanup.Ledger, "begin", corrupt_then_begin)
    with pytest.raises(VerificationError, match="content hash"):
        run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    assert _folder_hashes(org.path) == before
    # Started again, the run archives afresh, verifies and deletes.
    monkeypatch.setattr(cleanup.Ledger, "begin", begin)
    result = run_cleanup(
        org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True
    )
    assert result.resumed and result.deleted["deleted"].to_list() == [6, 5]


# The same two cases against SalesforceOrg on the loopback server: test_cleanup_salesforce.py.
class FlakyOrg(LocalOrg):
    """A local org whose delete fails some Ids: ``transient`` once, ``permanent`` always."""

    def __init__(self, path: Path, *, transient: set[str], permanent: set[str]) -> None:
        super().__init__(path)
        self.transient, self.permanent = set(transient), set(permanent)
        self.requests: list[list[str]] = []

    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        ids = list(ids)
        self.requests.append(ids)
        failing = {i for i in ids if i in self.permanent or i in self.transient}
        self.transient -= failing
        result = super().delete(table_name, [i for i in ids if i not in failing], hard=hard)
        errors = pl.DataFrame(
            {"id": sorted(failing), "success": False, "error": "UNABLE_TO_LOCK_ROW: locked"}
        )
        return pl.concat([result, errors.cast(result.schema)])


def test_delete_failures_are_retried_once_then_listed(tmp_path: Path) -> None:
    _make_org(tmp_path / "org")
    org = FlakyOrg(tmp_path / "org", transient={"a0L2", "a0R3"}, permanent={"a0L6", "a0R5"})
    result = run_cleanup(
        org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True, chunk_size=10
    )
    assert result.failures.rows() == [
        (IERS, "a0R5", "UNABLE_TO_LOCK_ROW: locked"),
        (LINKS, "a0L6", "UNABLE_TO_LOCK_ROW: locked"),
    ]
    counts = result.deleted.select("table", "deleted", "failed").rows()
    assert counts == [(LINKS, 5, 1), (IERS, 4, 1)]
    # Each table's Ids once (a local org: one request per table), then one retry of the failed Ids.
    requests = [sorted(r) for r in org.requests]
    retry_links, retry_iers = requests.index(["a0L2", "a0L6"]), requests.index(["a0R3", "a0R5"])
    assert sorted(itertools.chain.from_iterable(requests[:retry_links])) == SELECTED_LINKS
    assert (
        sorted(itertools.chain.from_iterable(requests[retry_links + 1 : retry_iers]))
        == SELECTED_IERS
    )
    assert retry_iers == len(requests) - 1
    assert _ids(org.table(IERS)) == ["a0R4", "a0R5", "a0R6"]
    assert "a0R5: UNABLE_TO_LOCK_ROW" in str(result)


def test_local_cleanup_rewrites_each_table_once(
    org: LocalOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = {t: _table(org, t) for t in (IERS, LINKS)}
    writes: list[str] = []
    write_table = LocalOrg.write_table

    def counting_write(self: LocalOrg, name: str, frame: pl.DataFrame | pl.LazyFrame) -> None:
        writes.append(name)
        write_table(self, name, frame)

    monkeypatch.setattr(LocalOrg, "write_table", counting_write)
    result = run_cleanup(
        org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True, chunk_size=2
    )
    # Chunks of 2 Ids: several ledger steps per table, yet one rewrite of each table.
    steps = {e["step"] for e in _ledger_entries(result) if e["step"].startswith("delete:")}
    assert len([s for s in steps if s.startswith(f"delete:{LINKS}:")]) > 1
    assert len([s for s in steps if s.startswith(f"delete:{IERS}:")]) > 1
    assert writes == [LINKS, IERS]
    for table, selected in ((IERS, SELECTED_IERS), (LINKS, SELECTED_LINKS)):
        assert_frame_equal(
            _table(org, table), original[table].filter(~pl.col("id").is_in(selected))
        )
    assert result.deleted.select("table", "deleted", "already_deleted", "failed").rows() == [
        (LINKS, 6, 0, 0),
        (IERS, 5, 0, 0),
    ]


def _ledger_entries(result) -> list[dict]:
    return [json.loads(line) for line in Path(result.ledger_path).read_text().splitlines()]


def test_resume_with_other_criteria_is_refused(org: LocalOrg, tmp_path: Path) -> None:
    run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    with pytest.raises(CleanupError, match="pass the same options"):
        run_cleanup(
            org,
            archive=tmp_path / "a",
            criteria=cleanup_criteria(90, as_of=AS_OF),
            run_id="r1",
            execute=True,
        )
    again = run_cleanup(
        org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True
    )
    assert again.resumed and again.deleted["deleted"].to_list() == [6, 5]


def test_ledger_without_its_archived_plan_asks_for_a_new_run_id(
    org: LocalOrg, tmp_path: Path
) -> None:
    # A remote archive's ledger lives in the local cache: the archive can be emptied under it.
    run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    plans = list((tmp_path / "a").rglob("plan.json"))
    assert len(plans) == 1
    plans[0].unlink()
    before = org.table(IERS).collect()
    with pytest.raises(CleanupError, match="Nothing was deleted; start again with a new run id"):
        run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    assert org.table(IERS).collect().equals(before)


# --- crash and resume (real processes, SIGKILL) ------------------------------------------------


def _worker(org_dir: Path, archive: Path, log: Path, crash_at: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash_at:
        env[CRASH_ENV] = crash_at
    done = subprocess.run(
        [sys.executable, str(WORKER), str(org_dir), str(archive), "run1", str(log), "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(done.stderr)
    return done.returncode


def _final_state(base: Path) -> dict[str, object]:
    org = LocalOrg(base / "org")
    store = ArchiveStore(base / "archive")
    return {
        "org": {t: _table(org, t) for t in (IERS, LINKS)},
        "archive": {t: store.scan(t).collect().sort("id") for t in (IERS, LINKS)},
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("uninterrupted")
    _make_org(base / "org")
    assert _worker(base / "org", base / "archive", base / "deletes.log", None) == 0
    return _final_state(base)


@pytest.mark.parametrize(
    "crash_at",
    [
        "plan/finished",
        f"archive:{IERS}/finished",
        f"archive:{LINKS}/started",
        "manifest/finished",
        "verify/started",
        f"delete:{LINKS}:0.0/finished",  # deleted in the org, not yet in the ledger
        f"delete:{LINKS}:1.0/started",
        f"delete:{IERS}:1.0/finished",
        "finish/started",
    ],
)
def test_killed_run_resumes_to_the_uninterrupted_state(
    tmp_path: Path, crash_at: str, uninterrupted: dict[str, object]
) -> None:
    _make_org(tmp_path / "org")
    log = tmp_path / "deletes.log"
    assert _worker(tmp_path / "org", tmp_path / "archive", log, crash_at) == -signal.SIGKILL
    assert _worker(tmp_path / "org", tmp_path / "archive", log, None) == 0
    state = _final_state(tmp_path)
    for part in ("org", "archive"):
        for table in (IERS, LINKS):
            assert_frame_equal(state[part][table], uninterrupted[part][table])
    # Every archived record was asked to be deleted exactly once across both processes.
    requested = log.read_text().splitlines()
    assert sorted(requested) == sorted(
        [f"{LINKS}\t{i}" for i in SELECTED_LINKS] + [f"{IERS}\t{i}" for i in SELECTED_IERS]
    )


# --- using the archive -------------------------------------------------------------------------


def test_archive_source_reads_archived_and_live_records(org: LocalOrg, tmp_path: Path) -> None:
    original = _table(org, IERS)
    run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    union = open_org(f"{org.path}+archive:{tmp_path / 'a'}")
    assert_frame_equal(union.table(IERS).collect().sort("id"), original)
    assert _ids(union.table(LINKS)) == sorted(LINK_ROWS["id"])
    assert _ids(union.archived_table(IERS)) == SELECTED_IERS


def test_restore_puts_archived_records_back(org: LocalOrg, tmp_path: Path) -> None:
    original = {t: _table(org, t) for t in (IERS, LINKS)}
    run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    counts = restore_archive(org, tmp_path / "a")
    assert counts.select("table", "restored").rows() == [(IERS, 5), (LINKS, 6)]
    for table in (IERS, LINKS):
        assert_frame_equal(_table(org, table), original[table])
    again = restore_archive(org, tmp_path / "a", run_id="r1")
    assert again["restored"].to_list() == [0, 0] and again["already_present"].to_list() == [5, 6]
    # Restored records read through the archive source once, not twice.
    union = open_org(f"{org.path}+archive:{tmp_path / 'a'}")
    assert union.table(IERS).select(pl.len()).collect().item() == original[IERS].height


def test_restore_refuses_a_salesforce_like_org(org: LocalOrg, tmp_path: Path) -> None:
    from ierkit.orgs.archived import ArchivedOrg

    with pytest.raises(CleanupError, match="Email Send"):
        restore_archive(ArchivedOrg(org, tmp_path / "a"), tmp_path / "a")


# --- the command line --------------------------------------------------------------------------


def test_cli_cleanup_dry_run_then_execute_then_restore(
    org: LocalOrg, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ierkit.cli import main

    args = [
        "cleanup",
        "--source",
        str(org.path),
        "--retention-days",
        "120",
        "--as-of",
        "2026-11-20",
        "--archive",
        str(tmp_path / "a"),
    ]
    before = _folder_hashes(org.path)
    assert main(args) == 0
    assert "Dry run" in capsys.readouterr().out and _folder_hashes(org.path) == before
    assert main([*args, "--execute", "--run-id", "cli1", "--programme", "Monthly Newsletter"]) == 0
    out = capsys.readouterr().out
    assert "archive verified: yes" in out
    assert _ids(org.table(IERS)) == ["a0R3", "a0R4", "a0R5", "a0R6", "a0R7"]
    assert main(["restore", "--source", str(org.path), "--archive", str(tmp_path / "a")]) == 0
    assert _ids(org.table(IERS)) == sorted(IER_ROWS["id"])


# --- on the demo org ---------------------------------------------------------------------------


def test_demo_cleanup_archives_selection_and_keeps_the_rest(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    try:
        demo = Path(request.getfixturevalue("small_demo_path"))
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no small_demo_path fixture yet")
    shutil.copytree(demo, tmp_path / "org")  # a copy: the cached demo is never modified
    org = LocalOrg(tmp_path / "org")
    criteria = cleanup_criteria(90, as_of=dt.date(2026, 11, 20))
    expected = {
        IERS: select_iers(org, criteria).collect().sort("id"),
        LINKS: select_links(org, criteria)
        .select(schema.INDIVIDUAL_LINKS.column_names)
        .collect()
        .sort("id"),
    }
    totals = org.record_counts([IERS, LINKS])
    result = run_cleanup(
        org,
        archive=tmp_path / "a",
        criteria=criteria,
        run_id="demo",
        execute=True,
        chunk_size=50_000,
    )
    assert result.verification["ok"].all() and result.failures.is_empty()
    store = ArchiveStore(tmp_path / "a")
    for table in (IERS, LINKS):
        archived = store.scan(table).collect().sort("id")
        kept = org.table(table).select("id").collect()
        assert_frame_equal(archived, expected[table])
        assert archived.height + kept.height == totals[table]
        assert kept.join(archived, on="id", how="semi").is_empty()
    assert expected[IERS].height > 0


def test_archive_and_verify_deletes_nothing_and_a_later_run_deletes(
    org: LocalOrg, tmp_path: Path
) -> None:
    from ierkit.cleanup import archive_and_verify

    before = _folder_hashes(org.path)
    checked = archive_and_verify(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1")
    assert checked.verification["ok"].all()
    assert checked.deleted["deleted"].to_list() == [0, 0]
    assert _folder_hashes(org.path) == before
    manifest_bytes = (tmp_path / "a/runs/r1/manifest.json").read_bytes()
    done = run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    assert done.deleted["deleted"].to_list() == [6, 5]
    # The deletes used the archive already verified: it was not written again.
    assert (tmp_path / "a/runs/r1/manifest.json").read_bytes() == manifest_bytes


@pytest.mark.parametrize(
    "argv",
    [
        ["cleanup", "--retention-days", "90", "--archive", "A", "--execute"],
        ["restore", "--archive", "A"],
    ],
)
def test_cli_never_changes_the_cached_demo(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from ierkit.cli import main

    assert main([*argv, "--source", "demo"]) == 2
    assert "copy it first" in capsys.readouterr().err


# --- one process per run id (real processes) ---------------------------------------------------


def _start_worker(base: Path, *, lock_wait: float, delay: float) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    command = [sys.executable, str(WORKER), str(base / "org"), str(base / "archive"), "run1"]
    command += [str(base / "deletes.log"), "2", str(lock_wait), str(delay)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_holder(base: Path, pid: int) -> None:
    """Until the process ``pid`` holds run1's lock (it writes its pid into the lock file)."""
    lock = base / "archive/runs/run1/ledger.lock"
    for _ in range(300):  # at most 30 s
        if lock.exists() and f'"pid": {pid},' in lock.read_text():
            return
        time.sleep(0.1)
    raise AssertionError("the first run never took its lock")


def _assert_like_uninterrupted(base: Path, uninterrupted: dict[str, object]) -> None:
    state = _final_state(base)
    for part in ("org", "archive"):
        for table in (IERS, LINKS):
            assert_frame_equal(state[part][table], uninterrupted[part][table])
    # Each archived record asked to be deleted exactly once, by either process.
    assert sorted((base / "deletes.log").read_text().splitlines()) == sorted(
        [f"{LINKS}\t{i}" for i in SELECTED_LINKS] + [f"{IERS}\t{i}" for i in SELECTED_IERS]
    )


def test_a_second_run_with_the_same_id_is_refused_naming_the_first(
    tmp_path: Path, uninterrupted: dict[str, object]
) -> None:
    _make_org(tmp_path / "org")
    first = _start_worker(tmp_path, lock_wait=30, delay=3)
    try:
        _wait_for_holder(tmp_path, first.pid)
        second = _start_worker(tmp_path, lock_wait=0.5, delay=0)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 3
        assert f"cleanup run run1 is in use by another run (pid {first.pid} on host " in err
        assert "waited 0.5 s" in err
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
    finally:
        first.kill()
    assert "5 deleted" in out
    _assert_like_uninterrupted(tmp_path, uninterrupted)


def test_a_second_run_waits_for_the_first_then_finds_it_finished(
    tmp_path: Path, uninterrupted: dict[str, object]
) -> None:
    _make_org(tmp_path / "org")
    first = _start_worker(tmp_path, lock_wait=30, delay=1.5)
    try:
        _wait_for_holder(tmp_path, first.pid)
        second = _start_worker(tmp_path, lock_wait=60, delay=0)
        out, err = second.communicate(timeout=90)
        assert second.returncode == 0, err
        assert first.wait(timeout=60) == 0
    finally:
        first.kill()
    # It read the ledger only once it held the lock: the finished run, nothing redone.
    assert "Run run1 (resumed)" in out
    _assert_like_uninterrupted(tmp_path, uninterrupted)
    manifest = json.loads((tmp_path / "archive/runs/run1/manifest.json").read_text())
    assert manifest["tables"][IERS]["records"] == len(SELECTED_IERS)


def test_a_run_that_started_while_another_finished_reads_the_ledger_under_the_lock(
    org: LocalOrg, tmp_path: Path
) -> None:
    # The race of the issue: B starts, A runs the same id to the end, then B takes the lock.
    # Had B read the ledger before locking, it would re-plan (nothing is left to select),
    # remove A's archive files and write an empty manifest.
    from ierkit.cleanup._run import _Run

    later = _Run(org, ArchiveStore(tmp_path / "a"), _criteria(), "r1", False, 10, None)
    run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    archived = _folder_hashes(tmp_path / "a" / IERS)
    result = later.execute()
    assert _folder_hashes(tmp_path / "a" / IERS) == archived
    assert _ids(ArchiveStore(tmp_path / "a").scan(IERS, run_id="r1")) == SELECTED_IERS
    assert result.resumed
    assert result.deleted.select("deleted", "failed").rows() == [(6, 0), (5, 0)]


# --- a finished run started again retries its failed deletes -----------------------------------


class FailingOrg(LocalOrg):
    """A local org whose delete fails each Id of ``fails`` that many times, then succeeds."""

    def __init__(self, path: Path, fails: dict[str, int]) -> None:
        super().__init__(path)
        self.fails = dict(fails)
        self.requests: list[list[str]] = []

    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        ids = list(ids)
        self.requests.append(sorted(ids))
        failing = {i for i in ids if self.fails.get(i, 0) > 0}
        for i in failing:
            self.fails[i] -= 1
        result = super().delete(table_name, [i for i in ids if i not in failing], hard=hard)
        errors = pl.DataFrame(
            {"id": sorted(failing), "success": False, "error": "UNABLE_TO_LOCK_ROW: locked"}
        )
        return pl.concat([result, errors.cast(result.schema)])


def test_rerunning_a_finished_run_retries_only_its_failed_deletes(tmp_path: Path) -> None:
    _make_org(tmp_path / "org")
    # Failing the first delete and its retry: left failed by the run; a0R1 fails once more.
    org = FailingOrg(tmp_path / "org", {"a0L6": 2, "a0R5": 2, "a0R1": 3})
    run = {"archive": tmp_path / "a", "criteria": _criteria(), "run_id": "r1", "execute": True}
    first = run_cleanup(org, **run)
    assert first.failures.select("table", "id").rows() == [
        (IERS, "a0R1"),
        (IERS, "a0R5"),
        (LINKS, "a0L6"),
    ]
    assert first.deleted.select("deleted", "failed").rows() == [(5, 1), (3, 2)]

    org.requests.clear()
    second = run_cleanup(org, **run)
    # One request per table, exactly the Ids that failed: nothing else is asked again.
    assert org.requests == [["a0L6"], ["a0R1", "a0R5"]]
    assert second.failures.select("table", "id").rows() == [(IERS, "a0R1")]
    assert second.deleted.select("deleted", "failed").rows() == [(6, 0), (4, 1)]
    assert "a0R1: UNABLE_TO_LOCK_ROW" in str(second)

    org.requests.clear()
    third = run_cleanup(org, **run)
    assert org.requests == [["a0R1"]]
    assert third.failures.is_empty()
    assert third.deleted.select("deleted", "already_deleted", "failed").rows() == [
        (6, 0, 0),
        (5, 0, 0),
    ]
    assert _ids(org.table(IERS)) == ["a0R4", "a0R6"]
    steps = [e["step"] for e in _ledger_entries(third) if e["event"] == "done"]
    assert [s for s in steps if s.startswith("retry:")] == [
        f"retry:{LINKS}",
        f"retry:{IERS}",
        f"retry:{LINKS}:2",
        f"retry:{IERS}:2",
        f"retry:{IERS}:3",
    ]
    org.requests.clear()
    assert run_cleanup(org, **run).failures.is_empty() and org.requests == []


def test_a_rerun_killed_during_its_retry_finishes_that_retry(tmp_path: Path) -> None:
    _make_org(tmp_path / "org")
    org = FailingOrg(tmp_path / "org", {"a0R5": 2})
    run = {"archive": tmp_path / "a", "criteria": _criteria(), "run_id": "r1", "execute": True}
    assert run_cleanup(org, **run).failures["id"].to_list() == ["a0R5"]
    # The rerun's retry was sent (and deleted a0R5) but the kill came before the ledger knew.
    ledger = Ledger(tmp_path / "a/runs/r1/ledger.jsonl")
    ledger.open()
    ledger.write(f"retry:{IERS}:2", "start", records=1)
    ledger.close()
    org.delete(IERS, ["a0R5"])
    org.requests.clear()
    again = run_cleanup(org, **run)
    assert org.requests == []  # reconciled: already gone, not asked again
    assert again.failures.is_empty()
    assert again.deleted.select("deleted", "already_deleted").rows() == [(6, 0), (4, 1)]


# --- private archives and values the archive refuses --------------------------------------------


def test_a_local_archive_is_private(org: LocalOrg, tmp_path: Path) -> None:
    run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    paths = [tmp_path / "a", *(tmp_path / "a").rglob("*")]
    assert len([p for p in paths if p.is_file()]) >= 8  # data, plan, manifest, ledger, lock
    for path in paths:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


@pytest.mark.parametrize("year", [1650, 0, -50])
def test_a_record_dated_outside_salesforces_range_is_refused_by_name(
    org: LocalOrg, tmp_path: Path, year: int
) -> None:
    from ierkit.archive import ArchiveError

    iers = org.table(IERS).collect()
    bad = pl.datetime(year, 12, 5, time_zone="UTC")
    org.write_table(
        IERS,
        iers.with_columns(
            pl.when(pl.col("id") == "a0R2").then(bad).otherwise("date_sent").alias("date_sent")
        ),
    )
    before = _folder_hashes(org.path)
    with pytest.raises(ArchiveError, match=r"1 record is dated outside .* a0R2 has date_sent "):
        run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    assert _folder_hashes(org.path) == before


def test_a_value_that_does_not_fit_its_field_is_named_with_its_record(
    org: LocalOrg, tmp_path: Path
) -> None:
    raw = pl.read_parquet(org.table_path(IERS)).with_columns(pl.col("total_clicks").cast(pl.Int64))
    big = pl.when(pl.col("id") == "a0R3").then(2**40).otherwise("total_clicks")
    raw.with_columns(big.alias("total_clicks")).write_parquet(org.table_path(IERS))
    before = _folder_hashes(org.path)
    with pytest.raises(CleanupError) as caught:
        run_cleanup(org, archive=tmp_path / "a", criteria=_criteria(), run_id="r1", execute=True)
    message = str(caught.value)
    assert "record a0R3: total_clicks = 1099511627776 does not fit Int32" in message
    assert str(org.table_path(IERS)) in message and "same run id" in message
    assert _folder_hashes(org.path) == before


def test_retention_beyond_salesforces_dates_is_refused() -> None:
    with pytest.raises(CleanupError, match=r"before 1700-01-01.*at most 119,392 days"):
        cleanup_criteria(99_999_999, as_of=AS_OF)
    assert cleanup_criteria(119_392, as_of=AS_OF).cutoff == _utc("1700-01-01T00:00")
