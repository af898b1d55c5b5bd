"""Write-back through simple-salesforce over HTTPS: ``SalesforceOrg.update``, ``insert``,
``finish_write`` and ``field_writable`` against the test server (tests/sfserver.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from ierkit import schema
from ierkit.orgs import OrgError
from ierkit.orgs.salesforce import SalesforceOrg
from tests.sfserver import RunningServer, serve
from tests.test_salesforce import connect, fake, jwt_env, sfid, small_org

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = [c.name for c in schema.CONTACTS.columns if c.name.startswith("engagement_")]
AS_OF = dt.datetime(2026, 11, 20, 10, 30, tzinfo=dt.UTC)


@pytest.fixture
def server(tmp_path: Path, rsa_key: tuple[Path, bytes]) -> Iterator[RunningServer]:
    with serve(fake(small_org(), rsa_key), tmp_path) as running:
        yield running


def summary(ids: list[str], *, score: float = 12.5) -> pl.DataFrame:
    """Engagement summary values for ``ids``, each row a little different."""
    n = len(ids)
    return pl.DataFrame(
        {
            "id": ids,
            "engagement_last_open": [
                AS_OF - dt.timedelta(days=i, milliseconds=7) for i in range(n)
            ],
            "engagement_last_human_click": [AS_OF - dt.timedelta(hours=i) for i in range(n)],
            "engagement_human_clicks_90d": [i + 1 for i in range(n)],
            "engagement_score": [score + i for i in range(n)],
            "engagement_last_link": [f'Pricing, "plan {i}"' for i in range(n)],
            "engagement_summary_as_of": [AS_OF] * n,
        }
    ).cast({c: schema.CONTACTS.column(c).dtype for c in SUMMARY})


def contacts(org: SalesforceOrg, ids: list[str]) -> pl.DataFrame:
    org.refresh()
    return (
        org.table("contacts")
        .filter(pl.col("id").is_in(ids))
        .select("id", "last_name", *SUMMARY)
        .collect()
        .sort("id")
    )


def test_writeback_update_sets_values_and_null_clears(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    ids = [sfid("003", i) for i in (4, 1, 7)]
    wanted = summary(ids)
    submitted: list[str] = []
    result = org.update("contacts", wanted, on_submit=submitted.append)
    assert result.to_dicts() == [{"id": i, "success": True, "error": None} for i in ids]
    assert len(submitted) == 1 and submitted[0] in server.org.jobs
    # The upload as Bulk API 2.0 takes it: API names, UTC with milliseconds, plain numbers.
    upload = server.org.jobs[submitted[0]]["data"].decode()
    assert upload.splitlines()[0] == "Id," + ",".join(
        schema.CONTACTS.column(c).sf_field for c in SUMMARY
    )
    assert "2026-11-20T10:29:59.993Z" in upload and ",12.5," in upload
    got = contacts(org, ids)
    assert got.drop("last_name").equals(wanted.sort("id"))
    assert got.get_column("last_name").to_list() == ["Name1", "Name4", "Name7"]  # untouched
    # A null clears the field (sent as #N/A), and so does an empty text.
    clearing = pl.DataFrame(
        {
            "id": [ids[0], ids[1]],
            "engagement_score": [None, 3.25],
            "engagement_last_link": ["", None],
        }
    ).cast({"engagement_score": pl.Float64})
    assert org.update("contacts", clearing).get_column("success").to_list() == [True, True]
    assert "#N/A" in server.org.jobs[list(server.org.jobs)[-1]]["data"].decode()
    after = contacts(org, ids).sort("id")
    row4 = after.filter(pl.col("id") == ids[0]).row(0, named=True)
    row1 = after.filter(pl.col("id") == ids[1]).row(0, named=True)
    assert row4["engagement_score"] is None and row4["engagement_last_link"] is None
    assert row1["engagement_score"] == 3.25 and row1["engagement_last_link"] is None
    # Fields the upload left out keep their values.
    assert row4["engagement_human_clicks_90d"] == 1
    assert dict(server.org.writes) == {ids[0]: 2, ids[1]: 2, ids[2]: 1}


def test_writeback_failures_are_per_record_with_ids_and_codes(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    refused, locked, fine = sfid("003", 2), sfid("003", 3), sfid("003", 5)
    server.org.fail_validation([refused], "Engagement fields are set by the integration only")
    server.org.lock_rows_once([locked])
    ids = [refused, locked, sfid("003", 999), fine, "bad"]
    first = org.update("contacts", summary(ids))
    assert first.get_column("id").to_list() == ids
    assert first.get_column("success").to_list() == [False, False, False, True, False]
    errors = first.get_column("error").to_list()
    assert errors[0] == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION:Engagement fields are set by the integration only:--"
    )
    assert errors[1].startswith("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access")
    assert errors[2] == "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"
    assert errors[4].startswith("MALFORMED_ID:")
    # Retried once: the row lock has passed, the validation rule fails again.
    again = org.update("contacts", summary([refused, locked]))
    assert again.get_column("success").to_list() == [False, True]
    assert again.item(0, "error").startswith("FIELD_CUSTOM_VALIDATION_EXCEPTION:")
    assert dict(server.org.writes) == {locked: 1, fine: 1}


def test_writeback_unwritable_field_fails_every_record(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    server.org.make_read_only("Contact", "Ierkit_Engagement_Score__c")
    org = connect(server, jwt_env(rsa_key))
    ids = [sfid("003", i) for i in range(3)]
    result = org.update("contacts", summary(ids))
    assert result.get_column("id").to_list() == ids
    assert not result.get_column("success").any()
    assert (
        result.get_column("error")
        .str.starts_with(
            "INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: "
            "Ierkit_Engagement_Score__c."
        )
        .all()
    )
    assert not server.org.writes
    # Without that column the same records go in.
    rest = org.update("contacts", summary(ids).drop("engagement_score"))
    assert rest.get_column("success").all()


def test_writeback_insert_returns_new_ids_in_order(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    server.org.require_field("Task", "Subject")
    org = connect(server, jwt_env(rsa_key))
    who = [sfid("003", 1), sfid("003", 2), sfid("003", 1), sfid("003", 3), sfid("003", 1)]
    subjects = ["Clicked Pricing in A", "Clicked Demo in B", "Clicked Pricing in A", None, "C"]
    tasks = pl.DataFrame(
        {
            "who_id": who,
            "subject": subjects,
            "activity_date": [dt.date(2026, 11, 20)] * 5,
        }
    )
    result = org.insert("tasks", tasks)
    assert result.get_column("success").to_list() == [True, True, True, False, True]
    assert result.item(3, "id") is None
    assert result.item(3, "error") == (
        "REQUIRED_FIELD_MISSING:Required fields are missing: [Subject]:Subject --"
    )
    new = result.get_column("id").to_list()
    assert len({i for i in new if i}) == 4 and all(i.startswith("00T") for i in new if i)
    org.refresh()
    stored = org.table("tasks").filter(pl.col("id").is_in(new)).collect()
    by_id = {r["id"]: r for r in stored.to_dicts()}
    for k, new_id in enumerate(new):
        if new_id:  # each new Id is the record made from that row
            assert (by_id[new_id]["who_id"], by_id[new_id]["subject"]) == (who[k], subjects[k])
            assert by_id[new_id]["status"] == "Not Started"  # Salesforce's default
    assert sum(server.org.writes.values()) == 4


def test_writeback_field_writable(tmp_path: Path, rsa_key: tuple[Path, bytes]) -> None:
    fields = ("Ierkit_Engagement_Score__c", "Ierkit_Last_Email_Open__c")
    with serve(fake(small_org(), rsa_key), tmp_path) as running:
        running.org.make_read_only("Lead", fields[0])
        entry = next(f for f in running.org.objects["Contact"].fields if f["name"] == fields[1])
        del entry["updateable"]  # a describe that does not say
        org = connect(running, jwt_env(rsa_key))
        assert org.field_writable("Contact", fields[0]) is True
        assert org.field_writable("Contact", fields[0].lower()) is True
        assert org.field_writable("Lead", fields[0]) is False
        assert org.field_writable("Contact", fields[1]) is None
        assert org.field_writable("Contact", "CreatedDate") is False
        assert org.field_writable("Contact", "No_Such_Field__c") is False
    with serve(fake(small_org(), rsa_key), tmp_path) as running:
        running.org.drop_writeback_fields()
        org = connect(running, jwt_env(rsa_key))
        assert org.field_writable("Contact", fields[0]) is False
        assert org.has_field("Lead", fields[1]) is False
        with pytest.raises(OrgError, match=r"no field Ierkit_Last_Email_Open__c.*ierkit metadata"):
            org.update("contacts", summary([sfid("003", 1)]))
        assert not running.org.jobs


WORKER = """
import json, sys, time
import polars as pl
from ierkit.orgs.salesforce import SalesforceOrg
from tests.sfserver import LoopbackSession

args = json.loads(sys.argv[1])
org = SalesforceOrg.from_env(
    args["env"], session=LoopbackSession(args["base"], args["ca"]), poll_interval=0.05
)

def submitted(job_id):
    with open(args["ref"] + ".tmp", "w") as out:
        out.write(job_id)
    import os
    os.replace(args["ref"] + ".tmp", args["ref"])
    if args["hang"]:  # die before the upload: the job stays Open
        time.sleep(600)

org.update("contacts", pl.read_parquet(args["records"]), on_submit=submitted)
print("finished", flush=True)
"""


def run_until_killed(
    running: RunningServer,
    rsa_key: tuple[Path, bytes],
    records: pl.DataFrame,
    tmp_path: Path,
    *,
    hang: bool,
) -> str:
    """Run an update in a real subprocess, SIGKILL it mid-job, return the job Id it submitted."""
    records.write_parquet(tmp_path / "records.parquet")
    ref = tmp_path / "job-id"
    args = {
        "env": jwt_env(rsa_key),
        "base": running.base_url,
        "ca": str(running.ca_path),
        "records": str(tmp_path / "records.parquet"),
        "ref": str(ref),
        "hang": hang,
    }

    def reached() -> bool:
        job = running.org.jobs.get(ref.read_text()) if ref.is_file() else None
        return job is not None and (hang or (job["state"] == "InProgress" and job["polls"] > 1))

    kill_worker_when(WORKER, args, reached)
    return ref.read_text()


def kill_worker_when(worker: str, args: dict[str, object], reached: Callable[[], bool]) -> None:
    """Run ``worker`` (Python source, given ``args`` as JSON) in a real process and SIGKILL it
    as soon as ``reached()`` holds; fails if the worker ends or a minute passes first."""
    child = subprocess.Popen(
        [sys.executable, "-c", worker, json.dumps(args)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not reached():
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the worker never reached the point to kill it"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def changed(org: SalesforceOrg, wanted: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``wanted`` whose values the org does not hold yet (the runner's diff)."""
    held = contacts(org, wanted.get_column("id").to_list()).drop("last_name")
    joined = wanted.join(held, on="id", how="left", suffix="_held")
    differs = pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_held")) for c in SUMMARY)
    return joined.filter(differs).select(wanted.columns)


def test_writeback_finish_write_after_sigkill_mid_job_writes_each_record_once(
    server: RunningServer, rsa_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    ids = [sfid("003", i) for i in range(20)]
    wanted = summary(ids)
    server.org.stall_jobs()
    job_id = run_until_killed(server, rsa_key, wanted, tmp_path, hang=False)
    assert server.org.jobs[job_id]["state"] == "InProgress" and not server.org.writes
    server.org.stall_jobs(False)
    org = connect(server, jwt_env(rsa_key))
    finished = org.finish_write(job_id)
    assert finished is not None
    assert sorted(finished.get_column("id").to_list()) == sorted(ids)
    assert finished.get_column("success").all()
    # Asked again (a second crash before the ledger kept the results): the same answer.
    again = org.finish_write(job_id)
    assert again is not None and again.sort("id").equals(finished.sort("id"))
    # The resumed run diffs against the org: nothing left to write, nothing written twice.
    assert changed(org, wanted).is_empty()
    assert dict(server.org.writes) == dict.fromkeys(ids, 1)


def test_writeback_finish_write_of_a_job_never_closed_aborts_it_and_the_records_go_again(
    server: RunningServer, rsa_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    ids = [sfid("003", i) for i in range(6)]
    wanted = summary(ids)
    job_id = run_until_killed(server, rsa_key, wanted, tmp_path, hang=True)
    assert server.org.jobs[job_id]["state"] == "Open"
    org = connect(server, jwt_env(rsa_key))
    assert org.finish_write(job_id) is None
    assert server.org.jobs[job_id]["state"] == "Aborted"
    assert org.finish_write(job_id) is None
    assert org.finish_write("750000000000000AAA") is None  # a job Salesforce never had
    todo = changed(org, wanted)
    assert todo.height == 6
    assert org.update("contacts", todo).get_column("success").all()
    assert changed(org, wanted).is_empty()
    assert dict(server.org.writes) == dict.fromkeys(ids, 1)


def test_writeback_failed_job_lists_every_record_unprocessed(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    ids = [sfid("003", i) for i in (9, 3, 6)]
    server.org.fail_next_job("InternalServerError: job failed")
    submitted: list[str] = []
    result = org.update("contacts", summary(ids), on_submit=submitted.append)
    assert result.get_column("id").to_list() == ids
    assert not result.get_column("success").any()
    expected = f"UNPROCESSED: job {submitted[0]} ended Failed: InternalServerError: job failed"
    assert set(result.get_column("error")) == {expected}
    assert any("ended Failed" in e for e in org.events)
    # Picked up after a crash, the same job lists the same records by Id.
    finished = org.finish_write(submitted[0])
    assert finished is not None and finished.sort("id").equals(result.sort("id"))
    assert not server.org.writes


def test_writeback_an_upload_whose_answer_is_lost_is_never_sent_twice_into_one_job(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    # Salesforce took the rows but the 201 was lost: sending them again into the same job
    # would insert every Task twice. The job is aborted and the rows go in a new one.
    org = connect(server, jwt_env(rsa_key))
    server.org.lose_upload_answers(1)
    who = [sfid("003", 1), sfid("003", 2), sfid("003", 3)]
    tasks = pl.DataFrame(
        {
            "who_id": who,
            "subject": ["Clicked Pricing in A"] * 3,
            "activity_date": [AS_OF.date()] * 3,
        }
    )
    submitted: list[str] = []
    result = org.insert("tasks", tasks, on_submit=submitted.append)
    assert result.get_column("success").to_list() == [True, True, True]
    assert len(submitted) == 2
    assert [server.org.jobs[job]["state"] for job in submitted] == ["Aborted", "JobComplete"]
    org.refresh()
    stored = org.table("tasks").filter(pl.col("who_id").is_in(who)).collect()
    assert sorted(stored.get_column("who_id").to_list()) == who  # each Task once
    assert sum(server.org.writes.values()) == 3
    assert any(f"upload of job {submitted[0]}" in e and "aborted" in e for e in org.events)
    # An update too: aborted, then written once.
    server.org.lose_upload_answers(1)
    ids = [sfid("003", i) for i in (4, 5)]
    updated = org.update("contacts", summary(ids))
    assert updated.get_column("success").to_list() == [True, True]
    assert [server.org.writes[i] for i in ids] == [1, 1]
    # No answer three times: the run stops, and no job holding the rows is left to run.
    server.org.lose_upload_answers(3)
    with pytest.raises(OrgError, match=r"no answer|gave up after 1 try.*aborted, nothing"):
        org.insert("tasks", tasks.head(1))
    assert all(job["state"] != "Open" for job in server.org.jobs.values())
    assert sum(server.org.writes.values()) == 5


def test_writeback_a_job_that_cannot_be_aborted_stops_the_run_and_resuming_aborts_it(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    # The upload fails (503), then every try to abort the job fails too.
    server.org.fail_next(1 + org.retry.attempts, path_contains="jobs/ingest/")
    submitted: list[str] = []
    with pytest.raises(OrgError, match=r"\(aborting job \w+, which got no answer to its upload\)"):
        org.update("contacts", summary([sfid("003", 4)]), on_submit=submitted.append)
    [job] = submitted  # no second job: the run stopped
    assert server.org.jobs[job]["state"] == "Open" and not server.org.writes
    assert org.finish_write(job) is None  # resumed: aborted, its records go again
    assert server.org.jobs[job]["state"] == "Aborted"
