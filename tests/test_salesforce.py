"""SalesforceOrg against a Salesforce-like HTTPS server on loopback (tests/sfserver.py)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from simple_salesforce.exceptions import SalesforceError

from ierkit import ids, schema
from ierkit.orgs import LocalOrg, OrgError
from ierkit.orgs._sf_adapter import LineEnding, Operation, bulk_client
from ierkit.orgs.salesforce import RetryPolicy, SalesforceOrg
from ierkit.orgs.salesforce_auth import Credentials, SalesforceAuthError
from tests.sfserver import NULL_STYLES, FakeSalesforce, RunningServer, load_local_org, serve

IER = schema.INDIVIDUAL_EMAIL_RESULTS
LINK = schema.INDIVIDUAL_LINKS
T0 = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)
PASSWORD = "Pa55-w0rd-ZQXJ-distinctive"
TOKEN = "SecTok-9f8e7d-distinctive"
CLIENT_SECRET = "client-secret-7781-distinctive"


def sfid(prefix: str, n: int) -> str:
    return ids.to_18(f"{prefix}{n:012d}")


def canonical(name: str, data: dict[str, list]) -> pl.DataFrame:
    """A canonical table from a few columns; the others null."""
    spec = schema.table(name)
    height = len(next(iter(data.values())))
    frame = pl.DataFrame(
        {
            c.name: pl.Series(c.name, data.get(c.name, [None] * height), dtype=c.dtype)
            for c in spec.columns
        }
    )
    return schema.validate(name, frame)


def small_org(n_iers: int = 250) -> dict[str, pl.DataFrame]:
    """Inline tables: 2 sends, 20 contacts, ``n_iers`` IERs, a few links and tasks."""
    contacts = canonical(
        "contacts",
        {
            "id": [sfid("003", i) for i in range(20)],
            "last_name": [f"Name{i}" for i in range(20)],
            "company": ["Acme" if i % 2 else None for i in range(20)],
            "industry": ["Retail" if i % 2 else None for i in range(20)],
            "created_date": [T0] * 20,
            "system_modstamp": [T0] * 20,
        },
    )
    sends = canonical(
        "email_sends",
        {
            "id": [sfid("a0S", 1), sfid("a0S", 2)],
            "name": ["ES-1", "ES-2"],
            "job_id": [1001, 1002],
            "email_name": ["Monthly Newsletter - Oct", "Product Nurture - 1"],
            "date_sent": [T0, T0 + dt.timedelta(days=1)],
            "individual_tracking_disabled": [False, False],
            "number_sent": [200, 50],
            "created_date": [T0] * 2,
            "system_modstamp": [T0] * 2,
        },
    )
    n = n_iers
    iers = canonical(
        "individual_email_results",
        {
            "id": [sfid("a0R", i) for i in range(n)],
            "name": ["Monthly Newsletter - Oct"] * n,
            "contact_id": [sfid("003", i % 20) for i in range(n)],
            "email_send_id": [sfid("a0S", 1 + i % 2) for i in range(n)],
            "job_id": [1001 + i % 2 for i in range(n)],
            "batch_id": [0] * n,
            "subject_line": ['Hello, "friend"\nline two' if i == 3 else "Hi" for i in range(n)],
            "date_sent": [T0 + dt.timedelta(minutes=i) for i in range(n)],
            "opened": [i % 3 == 0 for i in range(n)],
            "date_opened": [
                T0 + dt.timedelta(hours=1, milliseconds=i) if i % 3 == 0 else None for i in range(n)
            ],
            "total_clicks": [i % 4 for i in range(n)],
            "unique_clicks": [min(i % 4, 2) for i in range(n)],
            "clicked": [i % 4 > 0 for i in range(n)],
            "hard_bounce": [False] * n,
            "soft_bounce": [False] * n,
            "date_unsubscribed": [T0 + dt.timedelta(days=2) if i == 7 else None for i in range(n)],
            "unsubscribed": [i == 7 for i in range(n)],
            "tracking_as_of": [T0 + dt.timedelta(hours=2)] * n,
            "created_date": [T0] * n,
            "system_modstamp": [T0 + dt.timedelta(seconds=i) for i in range(n)],
        },
    )
    links = canonical(
        "individual_links",
        {
            "id": [sfid("a0L", i) for i in range(5)],
            "individual_email_result_id": [sfid("a0R", i) for i in range(5)],
            "job_id": [1001 + i % 2 for i in range(5)],
            "batch_id": [0] * 5,
            "link_url": ["https://www.example.com/pricing"] * 5,
            "link_name": ["Pricing"] * 5,
            "total_clicks": [1] * 5,
            "unique_link_id": [f"u{i}" for i in range(5)],
            "created_date": [T0] * 5,
            "system_modstamp": [T0] * 5,
        },
    )
    return {
        "contacts": contacts,
        "email_sends": sends,
        "individual_email_results": iers,
        "individual_links": links,
    }


def fake(tables: dict[str, pl.DataFrame], rsa_key: tuple[Path, bytes], **options) -> FakeSalesforce:
    return FakeSalesforce(
        tables,
        username="integration@example.com",
        password=PASSWORD,
        security_token=TOKEN,
        consumer_key="CONSUMER-KEY",
        public_key_pem=rsa_key[1],
        client_id="CLIENT-ID",
        client_secret=CLIENT_SECRET,
        **options,
    )


@pytest.fixture(params=NULL_STYLES)
def server(
    request: pytest.FixtureRequest, tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> Iterator[RunningServer]:
    """The small org, served writing Bulk CSV nulls as Salesforce does (``""``) and bare."""
    org = fake(small_org(), rsa_key, page_size=40, null_style=request.param)
    with serve(org, tmp_path) as running:
        yield running


def jwt_env(rsa_key: tuple[Path, bytes]) -> dict[str, str]:
    return {
        "SF_USERNAME": "integration@example.com",
        "SF_CONSUMER_KEY": "CONSUMER-KEY",
        "SF_PRIVATE_KEY_FILE": str(rsa_key[0]),
    }


class Sleeps(list):
    """Records the waits asked for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def connect(running: RunningServer, env: dict[str, str], **options) -> SalesforceOrg:
    options.setdefault("sleep", Sleeps())
    options.setdefault("poll_interval", 0.0)
    return SalesforceOrg.from_env(env, session=running.session(), **options)


def sorted_frame(frame: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    data = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    return data.sort("id")


# --- logins ---------------------------------------------------------------------------------


def test_jwt_login_then_rest_and_bulk_reads_match_the_backing_tables(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, {**jwt_env(rsa_key), "SF_DOMAIN": "test"}, page_records=60)
    assert server.org.logins == ["jwt@test.salesforce.com"]
    tables = small_org()
    for name in ("contacts", "email_sends", "individual_email_results", "individual_links"):
        got = sorted_frame(schema.validate(name, org.table(name)))
        assert got.equals(sorted_frame(tables[name])), name
    # 250 IERs in Bulk pages of 60 (5 pages); 20 contacts through Bulk, 2 sends through REST.
    pages = [p for m, p, s in server.org.requests if "/results" in p and m == "GET"]
    assert sum(1 for p in pages if "locator=" not in p) == 3  # contacts, IERs, links jobs
    assert len(pages) == 3 + 4 + 0 + 0  # IERs: 4 follow-up pages
    assert org.notes == []  # every field the schema reads exists in this org


def test_rest_query_follows_next_records_url_across_many_pages(
    tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    sends = canonical(
        "email_sends",
        {
            "id": [sfid("a0S", i) for i in range(95)],
            "job_id": list(range(95)),
            "number_sent": [1000 + i for i in range(95)],
            "date_sent": [T0 + dt.timedelta(hours=i) for i in range(95)],
            "system_modstamp": [T0] * 95,
        },
    )
    with serve(fake({"email_sends": sends}, rsa_key, page_size=10), tmp_path) as running:
        org = connect(running, jwt_env(rsa_key))
        got = sorted_frame(org.table("email_sends"))
        more = [p for _, p, _ in running.org.requests if "/query/01g" in p]
    assert got.equals(sorted_frame(sends))
    assert len(more) == 9  # 95 records in pages of 10: the first page plus 9 more


@pytest.mark.parametrize(
    ("env", "method"),
    [
        (
            {
                "SF_USERNAME": "integration@example.com",
                "SF_PASSWORD": PASSWORD,
                "SF_SECURITY_TOKEN": TOKEN,
            },
            "soap@login.salesforce.com",
        ),
        (
            {
                "SF_CLIENT_ID": "CLIENT-ID",
                "SF_CLIENT_SECRET": CLIENT_SECRET,
                "SF_DOMAIN": "https://acme.my.salesforce.com",
            },
            "client_credentials@acme.my.salesforce.com",
        ),
    ],
)
def test_other_login_methods(server: RunningServer, env: dict[str, str], method: str) -> None:
    org = connect(server, env)
    assert server.org.logins == [method]
    assert org.record_counts(["email_sends"]) == {"email_sends": 2}


def test_session_id_from_environment(server: RunningServer, rsa_key: tuple[Path, bytes]) -> None:
    first = connect(server, jwt_env(rsa_key))
    env = {"SF_INSTANCE_URL": server.base_url, "SF_SESSION_ID": first._client().session_id}
    org = connect(server, env)
    assert org.storage_limits().max_mb == 10_240.0
    server.org.expire_sessions()
    with pytest.raises(OrgError, match="SF_SESSION_ID cannot be renewed"):
        org.storage_limits()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no Salesforce credentials in the environment: set SF_INSTANCE_URL"),
        (
            {"SF_USERNAME": "u", "SF_CONSUMER_KEY": "k"},
            "missing environment variable SF_PRIVATE_KEY_FILE",
        ),
        (
            {"SF_USERNAME": "u", "SF_PASSWORD": PASSWORD},
            "missing environment variable SF_SECURITY_TOKEN",
        ),
        (
            {"SF_CLIENT_ID": "c", "SF_CLIENT_SECRET": CLIENT_SECRET},
            "need your My Domain in SF_DOMAIN",
        ),
    ],
)
def test_missing_variables_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SalesforceAuthError, match=message) as raised:
        Credentials.from_env(env)
    assert PASSWORD not in str(raised.value) and CLIENT_SECRET not in str(raised.value)


def test_no_secret_in_errors_or_logs(
    server: RunningServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = {
        "SF_USERNAME": "integration@example.com",
        "SF_PASSWORD": PASSWORD + "x",
        "SF_SECURITY_TOKEN": TOKEN,
    }
    with pytest.raises(SalesforceAuthError) as refused:
        connect(server, wrong)
    assert "INVALID_LOGIN" in str(refused.value)
    good = {**wrong, "SF_PASSWORD": PASSWORD}
    org = connect(server, good, retry=RetryPolicy(attempts=2))
    server.org.expire_sessions()
    server.org.fail_next(1, path_contains="/jobs/")
    org.table("individual_email_results").collect()
    server.org.fail_next(5)
    with pytest.raises(OrgError) as gave_up:
        org.storage_limits()
    captured = capsys.readouterr()
    outputs = [
        str(refused.value),
        repr(refused.value),
        str(gave_up.value),
        caplog.text,
        captured.out,
        captured.err,
        *org.events,
        *org.notes,
        repr(org),
        repr(org.credentials),
    ]
    for secret in (PASSWORD, TOKEN, org._client().session_id):
        assert not any(secret in text for text in outputs), secret
    assert "retiring" in caplog.text  # the SOAP login warns that it is going away


# --- faults ---------------------------------------------------------------------------------


def test_expired_session_mid_bulk_read_is_renewed(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    assert org.has_table("individual_email_results")
    server.org.expire_sessions()
    got = org.table("individual_email_results").collect()
    assert got.height == 250
    assert len(server.org.logins) == 2
    assert any("INVALID_SESSION_ID" in e and "logging in again" in e for e in org.events)


def test_503_and_request_limit_are_retried_with_reported_waits(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    sleeps = Sleeps()
    org = connect(
        server,
        jwt_env(rsa_key),
        sleep=sleeps,
        retry=RetryPolicy(attempts=4, base_delay=1.0, limit_delay=30.0),
    )
    server.org.fail_next(2, path_contains="/results")
    server.org.fail_next(
        1,
        status=403,
        code="REQUEST_LIMIT_EXCEEDED",
        message="TotalRequests Limit exceeded.",
        path_contains="/results",
    )
    assert org.table("individual_email_results").collect().height == 250
    waits = [s for s in sleeps if s > 0]
    assert waits == [1.0, 2.0, 30.0]
    assert [e.split(": ", 1)[1].split(";")[0] for e in org.events] == [
        "HTTP 503 SERVER_UNAVAILABLE",
        "HTTP 503 SERVER_UNAVAILABLE",
        "HTTP 403 REQUEST_LIMIT_EXCEEDED",
    ]
    server.org.fail_next(4, path_contains="/limits")
    with pytest.raises(OrgError, match=r"storage limits: gave up after 4 tries \(HTTP 503"):
        org.storage_limits()


def test_failed_query_job_is_an_error_naming_the_job(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    server.org.fail_next_job("InternalServerError: query timed out")
    with pytest.raises(
        OrgError, match=r"job 750\w+ ended Failed: InternalServerError: query timed out"
    ):
        org.table("individual_email_results")


def test_missing_optional_fields_come_back_null_with_a_note(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    for api in ("et4ae5__JobId__c", "et4ae5__BatchId__c"):
        server.org.drop_field(IER.sobject, api)
    org = connect(server, jwt_env(rsa_key))
    iers = org.table("individual_email_results").collect()
    links = org.table("individual_links").collect()
    assert iers.get_column("job_id").null_count() == 250
    assert iers.get_column("opened").sum() == 84  # the other fields still arrive
    assert links.get_column("job_id").null_count() == 5  # read through the parent, also gone
    notes = " ".join(org.notes)
    assert "et4ae5__JobId__c" in notes and "et4ae5__BatchId__c" in notes
    assert "et4ae5__Individual_Email_Result__r.et4ae5__JobId__c" in notes


def test_unsupported_soql_is_answered_with_salesforce_errors(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    sf = org._client()
    for soql, code in [
        ("SELECT COUNT() FROM Contact", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE LastName = 'a' OR LastName = 'b'", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
    ]:
        with pytest.raises(OrgError, match=code):
            org._call("query", lambda s, q=soql: s.query(q))
    result = sf.query(
        "SELECT Id, LastName FROM Contact WHERE LastName IN ('Name1', 'Name2') "
        "ORDER BY LastName DESC LIMIT 1"
    )
    assert [r["LastName"] for r in result["records"]] == ["Name2"]


# --- deletes, storage, snapshots ----------------------------------------------------------


def test_delete_reports_each_id_including_partial_failures(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key), delete_chunk=3)
    locked = sfid("a0R", 2)
    server.org.delete_failures[locked] = "ENTITY_IS_LOCKED:the entity is locked for editing:--"
    request = [
        sfid("a0R", 0),
        sfid("a0R", 1),
        locked,
        sfid("a0R", 0),
        sfid("a0R", 999),
        "bad",
        sfid("a0R", 3),
    ]
    result = org.delete("individual_email_results", request)
    assert result.to_dicts() == [
        {"id": sfid("a0R", 0), "success": True, "error": None},
        {"id": sfid("a0R", 1), "success": True, "error": None},
        {
            "id": locked,
            "success": False,
            "error": "ENTITY_IS_LOCKED:the entity is locked for editing:--",
        },
        {"id": sfid("a0R", 0), "success": False, "error": "ENTITY_IS_DELETED: entity is deleted"},
        {
            "id": sfid("a0R", 999),
            "success": False,
            "error": "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--",
        },
        {"id": "bad", "success": False, "error": "MALFORMED_ID:bad id bad:--"},
        {"id": sfid("a0R", 3), "success": True, "error": None},
    ]
    assert server.org.count(IER.sobject) == 247
    creates = [p for m, p, _ in server.org.requests if m == "POST" and p.endswith("/jobs/ingest")]
    assert len(creates) == 2  # 6 distinct Ids in chunks of 3
    # Soft-deleted records sit in the Recycle Bin: deleting again fails, hard delete succeeds.
    again = org.delete("individual_email_results", [sfid("a0R", 1)])
    assert again.row(0) == (sfid("a0R", 1), False, "ENTITY_IS_DELETED:entity is deleted:--")
    hard = org.delete("individual_email_results", [sfid("a0R", 1), sfid("a0R", 4)], hard=True)
    assert hard.get_column("success").to_list() == [True, True]


def test_failed_delete_job_marks_its_ids_unprocessed(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    server.org.fail_next_job("InvalidBatch: Failed to process query")
    result = org.delete("individual_links", [sfid("a0L", 0), sfid("a0L", 1)])
    assert result.get_column("success").to_list() == [False, False]
    assert result.get_column("error").str.starts_with("UNPROCESSED: job 750").all()
    assert server.org.count(LINK.sobject) == 5


def test_storage_facts(server: RunningServer, rsa_key: tuple[Path, bytes]) -> None:
    org = connect(server, jwt_env(rsa_key))
    assert org.record_counts(["individual_email_results", "individual_links", "tasks"]) == {
        "individual_email_results": 250,
        "individual_links": 5,
        "tasks": 0,
    }
    limits = org.storage_limits()
    records = 250 + 5 + 20 + 2
    assert limits.used_mb == pytest.approx(records * 2 / 1024)


def test_snapshot_then_incremental_pull(
    server: RunningServer, rsa_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    org = connect(server, jwt_env(rsa_key))
    folder = tmp_path / "snap"
    local = org.snapshot(folder, tables=["individual_email_results", "email_sends"])
    assert isinstance(local, LocalOrg)
    assert local.table("individual_email_results").collect().height == 250
    # Change one record, add none, delete two; the next snapshot pulls only what changed.
    records = server.org.objects[IER.sobject].records
    changed_id = sfid("a0R", 10)
    server.org.objects[IER.sobject].records = records.with_columns(
        pl.when(pl.col("Id") == changed_id)
        .then(pl.lit("Changed"))
        .otherwise(pl.col("et4ae5__SubjectLine__c"))
        .alias("et4ae5__SubjectLine__c"),
        pl.when(pl.col("Id") == changed_id)
        .then(pl.lit(T0 + dt.timedelta(days=30)))
        .otherwise(pl.col("SystemModstamp"))
        .alias("SystemModstamp"),
    )
    org.delete("individual_email_results", [sfid("a0R", 20), sfid("a0R", 21)], hard=True)
    before = len(server.org.requests)
    again = org.snapshot(folder, tables=["individual_email_results"])
    iers = again.table("individual_email_results").collect()
    assert iers.height == 248
    assert iers.filter(pl.col("id") == changed_id).get_column("subject_line").item() == "Changed"
    soql_pages = [p for m, p, _ in server.org.requests[before:] if "/results" in p]
    assert len(soql_pages) == 2  # one page of changes, one page of Ids
    assert json_rows(folder) == 248


def json_rows(folder: Path) -> int:
    import json

    return json.loads((folder / "_salesforce_snapshot.json").read_text())["tables"][
        "individual_email_results"
    ]["rows"]


# --- the demo org through the server ------------------------------------------------------


@pytest.mark.parametrize("null_style", NULL_STYLES)
def test_demo_org_read_through_the_server_equals_the_local_tables(
    small_demo_path: Path, tmp_path: Path, rsa_key: tuple[Path, bytes], null_style: str
) -> None:
    tables = load_local_org(small_demo_path)
    with serve(fake(tables, rsa_key, null_style=null_style), tmp_path) as running:
        org = connect(running, jwt_env(rsa_key))
        local = LocalOrg(small_demo_path)
        for name in tables:
            got = schema.validate(name, org.table(name)).collect()
            want = local.table(name).collect()
            spec = schema.table(name)
            # Columns Salesforce does not store come back null; everything it stores is equal.
            stored = [c.name for c in spec.columns if c.api_name is not None]
            assert sorted_frame(got.select(stored)).equals(sorted_frame(want.select(stored))), name
        derived = org.table("individual_email_results").select("id", "unsubscribed").collect()
        truth = local.table("individual_email_results").select("id", "date_unsubscribed").collect()
        joined = derived.join(truth, on="id")
        assert joined.get_column("unsubscribed").equals(
            joined.get_column("date_unsubscribed").is_not_null(), check_names=False
        )


# --- Bulk API 2.0 as Salesforce answers it ------------------------------------------------


def test_results_before_job_complete_are_412(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    server.org.polls_until_complete = 3
    org = connect(server, jwt_env(rsa_key))
    bulk = bulk_client(org._client(), "Contact")
    job = bulk.create_job(Operation.query, query="SELECT Id FROM Contact")
    with pytest.raises(SalesforceError) as early:
        bulk.get_query_results(job["id"])
    assert early.value.status == 412
    with pytest.raises(OrgError, match="HTTP 412 INVALIDJOBSTATE"):
        org._call("results", lambda sf: bulk_client(sf, "Contact").get_query_results(job["id"]))
    while bulk.get_job(job["id"], True)["state"] != "JobComplete":
        pass  # three polls
    assert bulk.get_query_results(job["id"])["number_of_records"] == 20


def test_job_info_is_complete_and_jobs_are_listed_and_deleted(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    sf = org._client()
    query = bulk_client(sf, "Contact").create_job(Operation.query, query="SELECT Id FROM Contact")
    ingest = bulk_client(sf, IER.sobject).create_job(Operation.delete)
    info = bulk_client(sf, "Contact").get_job(query["id"], True)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000"
    assert re.fullmatch(stamp, info["createdDate"]) and re.fullmatch(stamp, info["systemModstamp"])
    assert info["jobType"] == "V2Query" and info["apiVersion"] == 59.0
    assert {"numberRecordsProcessed", "retries", "totalProcessingTime"} <= set(info)
    assert ingest["contentUrl"] == f"services/data/v59.0/jobs/ingest/{ingest['id']}/batches"
    ingest_info = bulk_client(sf, IER.sobject).get_job(ingest["id"], False)
    assert ingest_info["jobType"] == "V2Ingest" and ingest_info["state"] == "Open"
    assert ingest_info["numberRecordsFailed"] == 0 and ingest_info["object"] == IER.sobject

    listed = sf.restful("jobs/query")
    assert listed["done"] is True and listed["nextRecordsUrl"] is None
    assert [j["id"] for j in listed["records"]] == [query["id"]]
    assert sf.restful("jobs/ingest", params={"jobType": "V2Query"})["records"] == []
    assert [j["id"] for j in sf.restful("jobs/ingest")["records"]] == [ingest["id"]]

    # An open ingest job cannot be deleted; a closed one can, and is gone after.
    with pytest.raises(SalesforceError, match="INVALIDJOBSTATE"):
        sf.restful(f"jobs/ingest/{ingest['id']}", method="DELETE")
    bulk_client(sf, IER.sobject).close_job(ingest["id"])
    assert sf.restful(f"jobs/ingest/{ingest['id']}", method="DELETE") is None  # 204
    while bulk_client(sf, "Contact").get_job(query["id"], True)["state"] != "JobComplete":
        pass  # an InProgress query job cannot be deleted either
    assert sf.restful(f"jobs/query/{query['id']}", method="DELETE") is None
    statuses = [s for m, _, s in server.org.requests if m == "DELETE"]
    assert statuses == [400, 204, 204]
    with pytest.raises(SalesforceError) as gone:
        bulk_client(sf, "Contact").get_job(query["id"], True)
    assert gone.value.status == 404
    assert sf.restful("jobs/query")["records"] == []


def test_a_chunked_ingest_upload_is_accepted(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    sf = org._client()
    bulk = bulk_client(sf, IER.sobject)
    job = bulk.create_job(Operation.delete, line_ending=LineEnding.CRLF)
    ids = [sfid("a0R", i) for i in range(40, 46)]
    lines = ["Id", *ids]
    # A generator body makes requests send ``Transfer-Encoding: chunked``, one line a chunk.
    response = server.session().put(
        f"{server.base_url}/{job['contentUrl']}",
        data=(f"{line}\r\n".encode() for line in lines),
        headers={"Authorization": f"Bearer {sf.session_id}", "Content-Type": "text/csv"},
    )
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 201 and response.content == b""
    bulk.close_job(job["id"])
    while bulk.get_job(job["id"], False)["state"] != "JobComplete":
        pass
    done = bulk.get_ingest_results(job["id"], "successfulResults")
    assert sorted(done.split("\r\n")[1:-1]) == sorted(f'"{i}","false","{i}"' for i in ids)
    assert server.org.count(IER.sobject) == 250 - 6


def test_triggered_send_tracking_as_of_is_not_queried(
    tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    """The package's Triggered Send has no Tracking_As_Of__c: the server has none either."""
    triggered = canonical(
        "triggered_sends",
        {"id": [sfid("a0T", 1)], "name": ["Welcome Email"], "system_modstamp": [T0]},
    )
    with serve(fake({"triggered_sends": triggered}, rsa_key), tmp_path) as running:
        fields = {f["name"] for f in running.org.objects[schema.TRIGGERED_SENDS.sobject].fields}
        assert "et4ae5__Tracking_As_Of__c" not in fields
        org = connect(running, jwt_env(rsa_key))
        got = org.table("triggered_sends").collect()
        queries = [p for _, p, _ in running.org.requests if "/query" in p]
    assert got.get_column("name").to_list() == ["Welcome Email"]
    assert got.get_column("tracking_as_of").to_list() == [None]
    assert not any("Tracking_As_Of" in q for q in queries) and org.notes == []


def test_soql_values_are_quoted_by_format_soql(
    server: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(server, jwt_env(rsa_key))
    since = T0 + dt.timedelta(seconds=100, milliseconds=400)
    recent = org.table_since("individual_email_results", "system_modstamp", since).collect()
    # Records 101..249 are on or after it; SOQL datetimes stop at the second, ierkit does not.
    assert recent.height == 149
    soql = next(j["soql"] for j in server.org.jobs.values() if j["kind"] == "query")
    assert soql.endswith(
        " FROM et4ae5__IndividualEmailResult__c WHERE SystemModstamp >= 2026-10-01T09:01:40+00:00"
    )


# --- login errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key at all\n", "is not a PEM private key"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "not a PEM private"),
        (
            b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            "cannot sign the login: InvalidKeyError",
        ),
    ],
)
def test_a_bad_private_key_file_is_a_clear_error(
    server: RunningServer, tmp_path: Path, rsa_key: tuple[Path, bytes], content: bytes, message: str
) -> None:
    key = tmp_path / "bad.key"
    key.write_bytes(content)
    with pytest.raises(SalesforceAuthError, match=message) as raised:
        connect(server, {**jwt_env(rsa_key), "SF_PRIVATE_KEY_FILE": str(key)})
    assert "SF_PRIVATE_KEY_FILE" in str(raised.value) and server.org.logins == []


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"SF_CONSUMER_KEY": "WRONG-KEY"}, "invalid_client_id: client identifier invalid"),
        ({"SF_USERNAME": "someone@example.com"}, "user hasn't approved this consumer"),
    ],
)
# simple-salesforce warns about self-authorisation on "hasn't approved": not ours to show.
@pytest.mark.filterwarnings("ignore:\\s*If your connected app policy:UserWarning")
def test_a_refused_login_says_what_salesforce_said(
    server: RunningServer, rsa_key: tuple[Path, bytes], env: dict[str, str], said: str
) -> None:
    with pytest.raises(SalesforceAuthError) as raised:
        connect(server, {**jwt_env(rsa_key), **env})
    text = str(raised.value)
    assert said in text and "Response content" not in text and "{content}" not in text


def test_cli_names_a_non_pem_key_file_in_one_line(tmp_path: Path) -> None:
    key = tmp_path / "server.crt"
    key.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SF_")},
        "SF_USERNAME": "integration@example.com",
        "SF_CONSUMER_KEY": "CONSUMER-KEY",
        "SF_PRIVATE_KEY_FILE": str(key),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ierkit.cli", "check", "--source", "salesforce"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert f"SF_PRIVATE_KEY_FILE ({key}) is not a PEM private key" in done.stderr


def test_users_manager_and_time_zone_read_and_instance_url_kept_by_a_snapshot(
    tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    users = canonical(
        "users",
        {
            "id": [sfid("005", 1), sfid("005", 2)],
            "name": ["Avery Collins", "Jordan Blake"],
            "email": ["avery@example.com", "jordan@example.com"],
            "is_active": [True, True],
            "manager_id": [None, sfid("005", 1)],
            "time_zone": ["Europe/London", "America/Chicago"],
            "created_date": [T0, T0],
            "system_modstamp": [T0, T0],
        },
    )
    with serve(fake({**small_org(), "users": users}, rsa_key), tmp_path) as running:
        org = connect(running, jwt_env(rsa_key))
        got = sorted_frame(org.table("users"))
        assert got.select("manager_id", "time_zone").rows() == [
            (None, "Europe/London"),
            (sfid("005", 1), "America/Chicago"),
        ]
        assert org.instance_url is not None and org.instance_url.startswith("https://")
        local = org.snapshot(tmp_path / "snap", tables=["users"])
        assert local.instance_url == org.instance_url
