"""Cleanup against a Salesforce org: the demo served by the Salesforce-like server over HTTPS.

The same ``run_cleanup`` as on a local org, through ``SalesforceOrg`` and Bulk API 2.0 ingest
jobs: partial delete failures are retried once and reported per Id, and a run whose archive
fails verification never sends a single delete job.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl
import pytest

from ierkit import cleanup, demo
from ierkit.cleanup import (
    VerificationError,
    cleanup_criteria,
    run_cleanup,
    select_iers,
    select_links,
)
from ierkit.orgs.salesforce import SalesforceOrg
from tests.sfserver import RunningServer, load_local_org, serve
from tests.test_salesforce import connect, fake, jwt_env

IERS, LINKS = "individual_email_results", "individual_links"
LOCKED = "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--"


@pytest.fixture
def served(
    small_demo_path: Path, tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> Iterator[RunningServer]:
    with serve(fake(load_local_org(small_demo_path), rsa_key), tmp_path) as running:
        yield running


def _criteria() -> cleanup.CleanupCriteria:
    # Retention 150 days: the oldest month or so of the demo, a few thousand IERs.
    return cleanup_criteria(150, as_of=demo.DEMO_AS_OF)


def _ingest_jobs(server: RunningServer) -> list[dict]:
    return [job for job in server.org.jobs.values() if job["kind"] == "ingest"]


def _uploaded_ids(job: dict) -> list[str]:
    return sorted(pl.read_csv(io.BytesIO(job["data"]), schema={"Id": pl.String})["Id"].to_list())


class _LockReleasedAfterFirstJob(SalesforceOrg):
    """Some rows are locked during the first delete job of each table, then free again."""

    transient: dict[str, set[str]]
    server: RunningServer

    def delete(self, table_name: str, ids: Iterable[str], *, hard: bool = False) -> pl.DataFrame:
        result = super().delete(table_name, ids, hard=hard)
        for record_id in self.transient.pop(table_name, set()):
            self.server.org.delete_failures.pop(record_id, None)
        return result


def test_partial_delete_failures_are_retried_once_then_reported(
    served: RunningServer, tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    reader = connect(served, jwt_env(rsa_key))
    iers = select_iers(reader, _criteria()).select("id").collect()["id"].sort().to_list()
    links = select_links(reader, _criteria()).select("id").collect()["id"].sort().to_list()
    assert len(iers) > 1000 and len(links) > 10
    transient = {LINKS: {links[0]}, IERS: {iers[0], iers[1]}}
    permanent = {links[1], iers[2]}
    for record_id in {*transient[LINKS], *transient[IERS], *permanent}:
        served.org.delete_failures[record_id] = LOCKED

    org = _LockReleasedAfterFirstJob.from_env(
        jwt_env(rsa_key), session=served.session(), sleep=lambda _: None, poll_interval=0.0
    )
    org.transient, org.server = transient, served
    result = run_cleanup(
        org, archive=tmp_path / "archive", criteria=_criteria(), run_id="sf1", execute=True
    )

    assert sorted(result.failures.rows()) == sorted(
        [(IERS, iers[2], LOCKED), (LINKS, links[1], LOCKED)]
    )
    counts = {row[0]: row[1:] for row in result.deleted.select("table", "deleted", "failed").rows()}
    assert counts == {LINKS: (len(links) - 1, 1), IERS: (len(iers) - 1, 1)}
    # Children first; each table's retry job holds exactly the Ids that failed the first time.
    jobs = _ingest_jobs(served)
    objects = [job["object"] for job in jobs]
    assert objects == sorted(objects, key=lambda o: o != "et4ae5__IndividualLink__c")
    retries = [job for job in jobs if len(_uploaded_ids(job)) <= 3]
    assert [_uploaded_ids(j) for j in retries] == [
        sorted([links[0], links[1]]),
        sorted([iers[0], iers[1], iers[2]]),
    ]
    # The org, read afresh, keeps exactly the permanent failures of the selection.
    fresh = connect(served, jwt_env(rsa_key))
    left = set(fresh.table(IERS).select("id").collect()["id"].to_list())
    assert iers[2] in left and not (set(iers) - {iers[2]}) & left
    assert "UNABLE_TO_LOCK_ROW" in str(result)


def test_a_corrupt_archive_never_reaches_a_delete_job(
    served: RunningServer,
    tmp_path: Path,
    rsa_key: tuple[Path, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    begin = cleanup.Ledger.begin

    def corrupt_then_begin(self, step, **fields):  # type: ignore[no-untyped-def]
        if step == "verify":  # the archive is written: truncate one of its files
            victim = sorted((tmp_path / "archive" / IERS).rglob("*.parquet"))[0]
            pl.read_parquet(victim).head(1).write_parquet(victim)
        begin(self, step, **fields)

    monkeypatch.setattr(cleanup.Ledger, "begin", corrupt_then_begin)
    org = connect(served, jwt_env(rsa_key))
    before = org.record_counts([IERS, LINKS])
    with pytest.raises(VerificationError):
        run_cleanup(
            org, archive=tmp_path / "archive", criteria=_criteria(), run_id="sf2", execute=True
        )
    assert _ingest_jobs(served) == []
    assert not any("/jobs/ingest" in path for _, path, _ in served.org.requests)
    assert connect(served, jwt_env(rsa_key)).record_counts([IERS, LINKS]) == before


def test_rerunning_a_finished_run_retries_its_failed_deletes_in_one_job_per_table(
    served: RunningServer, tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    reader = connect(served, jwt_env(rsa_key))
    iers = select_iers(reader, _criteria()).select("id").collect()["id"].sort().to_list()
    links = select_links(reader, _criteria()).select("id").collect()["id"].sort().to_list()
    locked = {links[3], iers[5], iers[6]}
    for record_id in locked:
        served.org.delete_failures[record_id] = LOCKED
    org = SalesforceOrg.from_env(
        jwt_env(rsa_key), session=served.session(), sleep=lambda _: None, poll_interval=0.0
    )
    run = {"archive": tmp_path / "archive", "criteria": _criteria(), "run_id": "sf3"}
    first = run_cleanup(org, execute=True, **run)
    assert sorted(first.failures["id"].to_list()) == sorted(locked)

    # The locks are released; the same run id again sends only the failed Ids, children first.
    for record_id in locked:
        served.org.delete_failures.pop(record_id)
    jobs_before = len(_ingest_jobs(served))
    second = run_cleanup(org, execute=True, **run)
    new_jobs = _ingest_jobs(served)[jobs_before:]
    assert [job["object"] for job in new_jobs] == [
        "et4ae5__IndividualLink__c",
        "et4ae5__IndividualEmailResult__c",
    ]
    assert [_uploaded_ids(job) for job in new_jobs] == [[links[3]], sorted([iers[5], iers[6]])]
    assert second.failures.is_empty()
    counts = second.deleted.select("table", "deleted", "failed").rows()
    assert counts == [(LINKS, len(links), 0), (IERS, len(iers), 0)]
    fresh = connect(served, jwt_env(rsa_key))  # kept: its pulled tables live while it does
    assert not set(iers) & set(fresh.table(IERS).select("id").collect()["id"])
