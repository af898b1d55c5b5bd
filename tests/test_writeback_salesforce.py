"""The write-back end to end through simple-salesforce over HTTPS (the test server).

The runner (``ierkit.writeback``) with a real ``SalesforceOrg``: dry run, execute, a second run
that writes nothing, a SIGKILLed run resumed, partial failures, Tasks, the cleanup's
``--require-writeback``, and the same summary as a local org holding the same tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from ierkit import schema
from ierkit.cleanup import CleanupError, cleanup_criteria, run_cleanup
from ierkit.orgs.salesforce import SalesforceOrg
from ierkit.writeback import run_writeback
from tests.sfserver import RunningServer, serve
from tests.test_salesforce import connect, fake, jwt_env
from tests.test_salesforce_writeback import kill_worker_when
from tests.test_writeback import AS_OF, A, B, C, D, E, held, small_org, small_tables

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = [c.name for c in schema.CONTACTS.columns if c.name.startswith("engagement_")]
PEOPLE = {"contacts": [A, B, C], "leads": [D]}  # E has no IERs: never written


@pytest.fixture
def server(tmp_path: Path, rsa_key: tuple[Path, bytes]) -> Iterator[RunningServer]:
    with serve(fake(small_tables(), rsa_key), tmp_path) as running:
        yield running


def on_server(org: SalesforceOrg) -> dict[str, dict[str, object]]:
    """The summary values each Contact and Lead holds in the server, by Id."""
    org.refresh()
    frames = [org.table(t).select("id", *SUMMARY) for t in ("contacts", "leads")]
    return {r.pop("id"): r for r in pl.concat(frames).collect().iter_rows(named=True)}


def ingest_jobs(running: RunningServer) -> list[dict[str, object]]:
    jobs = running.org.jobs.values()
    return [job for job in jobs if job.get("operation") in {"update", "insert"}]


def test_writeback_over_https_dry_run_execute_rerun_and_same_as_local_org(
    server: RunningServer, rsa_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    org = connect(server, jwt_env(rsa_key))
    dry = run_writeback(org, as_of=AS_OF, ledger_dir=tmp_path / "runs")
    assert dry.plan is not None and dry.plan.changed == {"contacts": 3, "leads": 1}
    assert not server.org.writes and not ingest_jobs(server)  # a dry run writes nothing
    assert not (tmp_path / "runs").exists()

    done = run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "runs")
    assert done.written == {"contacts": 3, "leads": 1} and done.failures.is_empty()
    people = [*PEOPLE["contacts"], *PEOPLE["leads"]]
    assert dict(server.org.writes) == dict.fromkeys(people, 1)

    # The local org holding the same tables gets the same values, to the millisecond.
    local = small_org(tmp_path / "local")
    run_writeback(local, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "local-runs")
    remote = on_server(org)
    assert remote == held(local)
    assert remote[A]["engagement_last_link"] == "Pricing"
    assert remote[E] == dict.fromkeys(SUMMARY)

    again = run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "runs")
    assert again.written == {"contacts": 0, "leads": 0}
    assert again.unchanged == {"contacts": 3, "leads": 1}
    assert dict(server.org.writes) == dict.fromkeys(people, 1)


def test_writeback_over_https_partial_failures_are_retried_once_and_listed(
    server: RunningServer, rsa_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    server.org.fail_validation([B], "Owner must approve changes")
    server.org.lock_rows_once([C, D])
    org = connect(server, jwt_env(rsa_key))
    result = run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "runs")
    failures = result.failures.select("table", "id", "error").to_dicts()
    assert len(failures) == 1
    assert failures[0]["id"] == B and failures[0]["table"] == "contacts"
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in failures[0]["error"]
    assert "Owner must approve changes" in failures[0]["error"]
    assert "1 failed" in str(result) and B in str(result)
    # The row locks passed on the retry; B was never written.
    assert server.org.writes[C] == 1 and server.org.writes[D] == 1 and server.org.writes[A] == 1
    assert B not in server.org.writes
    assert result.folder is not None and B in (result.folder / "failures.csv").read_text()


WORKER = """
import json, sys
from pathlib import Path
from ierkit.orgs.salesforce import SalesforceOrg
from ierkit.writeback import run_writeback
from tests.sfserver import LoopbackSession
import datetime as dt

args = json.loads(sys.argv[1])
org = SalesforceOrg.from_env(
    args["env"], session=LoopbackSession(args["base"], Path(args["ca"])),
    sleep=lambda _: None, poll_interval=0.05,
)
run_writeback(
    org, as_of=dt.datetime.fromisoformat(args["as_of"]), execute=True,
    run_id="crash", ledger_dir=args["runs"], tasks=args["tasks"],
)
print("finished", flush=True)
"""


def kill_mid_job(
    running: RunningServer, rsa_key: tuple[Path, bytes], runs: Path, *, tasks: bool
) -> None:
    """Run the write-back in a real process and SIGKILL it while its Bulk job is in progress."""
    args = {
        "env": jwt_env(rsa_key),
        "base": running.base_url,
        "ca": str(running.ca_path),
        "as_of": AS_OF.isoformat(),
        "runs": str(runs),
        "tasks": tasks,
    }
    kill_worker_when(
        WORKER, args, lambda: any(job["state"] == "InProgress" for job in ingest_jobs(running))
    )


def test_writeback_over_https_sigkill_mid_job_resumes_and_writes_every_record_once(
    server: RunningServer, rsa_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    server.org.stall_jobs()
    kill_mid_job(server, rsa_key, tmp_path / "runs", tasks=False)
    assert not server.org.writes  # killed while Salesforce still held the job
    server.org.stall_jobs(False)
    org = connect(server, jwt_env(rsa_key))
    resumed = run_writeback(
        org, as_of=AS_OF, execute=True, run_id="crash", ledger_dir=tmp_path / "runs"
    )
    assert resumed.failures.is_empty()
    people = [*PEOPLE["contacts"], *PEOPLE["leads"]]
    assert dict(server.org.writes) == dict.fromkeys(people, 1)
    assert on_server(org)[D]["engagement_last_human_click"] is not None
    # Run once more: nothing left to write.
    again = run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "runs")
    assert sum(again.written.values()) == 0
    assert dict(server.org.writes) == dict.fromkeys(people, 1)


def test_writeback_over_https_tasks_once_per_person_and_day_even_after_a_kill(
    server: RunningServer, rsa_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    org = connect(server, jwt_env(rsa_key))
    local = small_org(tmp_path / "local")
    expected = run_writeback(
        local, as_of=AS_OF, execute=True, tasks=True, ledger_dir=tmp_path / "local-runs"
    ).written["tasks"]
    assert expected > 0

    server.org.stall_jobs()
    kill_mid_job(server, rsa_key, tmp_path / "runs", tasks=True)
    server.org.stall_jobs(False)
    run_writeback(
        org, as_of=AS_OF, execute=True, tasks=True, run_id="crash", ledger_dir=tmp_path / "runs"
    )
    run_writeback(org, as_of=AS_OF, execute=True, tasks=True, ledger_dir=tmp_path / "runs")
    org.refresh()
    tasks = org.table("tasks").collect()
    assert tasks.height == expected
    assert tasks.select("who_id", "activity_date", "subject").is_duplicated().sum() == 0
    local_tasks = local.table("tasks").collect()
    key = ["who_id", "activity_date", "subject"]
    assert tasks.select(key).sort(key).equals(local_tasks.select(key).sort(key))


def test_writeback_over_https_required_by_cleanup_refuses_then_allows(
    server: RunningServer, rsa_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    org = connect(server, jwt_env(rsa_key))
    criteria = cleanup_criteria(0, as_of=AS_OF.date())
    with pytest.raises(CleanupError, match="ierkit writeback --execute"):
        run_cleanup(
            org, archive=tmp_path / "a", criteria=criteria, execute=True, require_writeback=True
        )
    assert server.org.count("et4ae5__IndividualEmailResult__c") == 7
    run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "runs")
    org.refresh()
    result = run_cleanup(
        org, archive=tmp_path / "a", criteria=criteria, execute=True, require_writeback=True
    )
    assert result.failures is None or result.failures.height == 0
    assert server.org.count("et4ae5__IndividualEmailResult__c") == 1  # the one sent later
    assert on_server(org)[A]["engagement_last_link"] == "Pricing"  # the signal stays
