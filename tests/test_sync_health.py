"""Sync health: reasons per recipient, coverage per send, throughput, the demo's ground truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from ierkit import cli, demo, extract, ids, reasons, schema, sync_health
from ierkit.orgs import LocalOrg
from ierkit.reports import ReportTables

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC
AS_OF = T0 + dt.timedelta(days=2)

# Ids (valid 18-character forms built from 15-character ones).
C1 = ids.to_18("003000000000001")
C2 = ids.to_18("003000000000002")
C3_15 = "003000000000ABC"  # a contact whose Subscriber Key is its 15-character Id
C3 = ids.to_18(C3_15)
GONE = ids.to_18("003000000000999")  # a contact deleted in Salesforce
L1 = ids.to_18("00Q000000000001")  # converted lead
L2 = ids.to_18("00Q000000000002")


def _events(rows: list[tuple]) -> pl.LazyFrame:
    """Events from (job_id, batch_id, subscriber_key, email, event_type, event_time)."""
    frame = pl.DataFrame(
        rows,
        schema={
            "job_id": pl.Int64,
            "batch_id": pl.Int64,
            "subscriber_key": pl.String,
            "email": pl.String,
            "event_type": pl.String,
            "event_time": schema.UTC_DATETIME,
        },
        orient="row",
    ).with_columns(pl.col("event_type").cast(extract.EventType))
    return pl.concat(
        [pl.DataFrame(schema=extract.EVENT_SCHEMA), frame], how="diagonal_relaxed"
    ).lazy()


def _table(name: str, rows: list[dict]) -> pl.LazyFrame:
    spec = schema.table(name)
    names = {k for row in rows for k in row}
    frame = pl.DataFrame(rows, schema={c.name: c.dtype for c in spec.columns if c.name in names})
    base = spec.empty()
    return (pl.concat([base, frame], how="diagonal_relaxed") if rows else base).lazy()


def _ier(
    n: int,
    job: int,
    person: str,
    *,
    batch: int = 0,
    created: dt.datetime | None = None,
    sent: dt.datetime = T0,
) -> dict:
    field = "lead_id" if person.startswith("00Q") else "contact_id"
    return {
        "id": f"a0R{job:06d}{n:09d}",
        "name": f"send {job}",
        field: person,
        "job_id": job,
        "batch_id": batch,
        "date_sent": sent,
        "created_date": created or sent + dt.timedelta(hours=1, minutes=10),
    }


def _tables(iers: list[dict], sends: list[dict]) -> ReportTables:
    return ReportTables(
        iers=_table("individual_email_results", iers),
        contacts=_table(
            "contacts",
            [{"id": c, "email": f"{c[-6:].lower()}@example.com"} for c in (C1, C2, C3)]
            + [{"id": ids.to_18("003000000000004"), "email": "owner@example.com"}],
        ),
        leads=_table(
            "leads",
            [
                {
                    "id": L1,
                    "email": "l1@example.com",
                    "is_converted": True,
                    "converted_contact_id": C2,
                },
                {
                    "id": L2,
                    "email": "l2@example.com",
                    "is_converted": False,
                    "converted_contact_id": None,
                },
            ],
        ),
        email_sends=_table("email_sends", sends),
        triggered_sends=_table("triggered_sends", []),
    )


def _send(job: int, *, tracking_off: bool = False, sent: dt.datetime = T0) -> dict:
    return {
        "id": f"a0S{job:015d}",
        "job_id": job,
        "email_name": f"Send {job}",
        "date_sent": sent,
        "individual_tracking_disabled": tracking_off,
    }


def _reasons(recipients: pl.LazyFrame) -> dict[tuple[int, str], tuple[str, str]]:
    frame = recipients.collect()
    return {
        (r["job_id"], r["subscriber_key"]): (r["status"], r["reason"])
        for r in frame.iter_rows(named=True)  # a handful of inline rows
    }


@pytest.fixture()
def scenario() -> dict[tuple[int, str], tuple[str, str]]:
    """One send of each kind; every recipient's expected (status, reason) is in the test."""
    sent = [
        # Send 1: tracked, old, healthy apart from key problems.
        (1, 0, C1, "a@x.com", "Sent", T0),
        (1, 0, L1, "l1@example.com", "Sent", T0),
        (1, 0, "owner@example.com", "owner@example.com", "Sent", T0),
        (1, 0, C3_15, "c3@x.com", "Sent", T0),
        (1, 0, GONE, "gone@x.com", "Sent", T0),
        (1, 0, C2, "c2@x.com", "Sent", T0),  # no IER, nothing explains it
        # Send 2: tracking switched off, one email key too: the send-level reason wins.
        (2, 0, C1, "a@x.com", "Sent", T0),
        (2, 0, "someone@x.com", "someone@x.com", "Sent", T0),
        # Send 3: imported CSV audience: no Email Send record, no IER.
        (3, 0, "partner@x.com", "partner@x.com", "Sent", T0),
        (3, 0, C1, "a@x.com", "Sent", T0),
        # Send 4: sent an hour before as-of: younger than the grace period.
        (4, 0, C1, "a@x.com", "Sent", AS_OF - dt.timedelta(hours=1)),
        (4, 0, L2, "l2@example.com", "Sent", AS_OF - dt.timedelta(hours=1)),
        # Send 5: sent after as-of: left out.
        (5, 0, C1, "a@x.com", "Sent", AS_OF + dt.timedelta(hours=1)),
        # A deleted subscriber's opens: no Sent row, not a recipient.
        (1, 0, None, None, "Open", T0 + dt.timedelta(hours=3)),
    ]
    iers = [
        _ier(1, 1, C1),
        _ier(2, 1, L1),
        _ier(3, 4, L2, sent=AS_OF - dt.timedelta(hours=1), created=AS_OF - dt.timedelta(minutes=5)),
        # Created after as-of: does not exist yet at as-of.
        _ier(4, 4, C1, sent=AS_OF - dt.timedelta(hours=1), created=AS_OF + dt.timedelta(hours=1)),
    ]
    sends = [_send(1), _send(2, tracking_off=True), _send(4, sent=AS_OF - dt.timedelta(hours=1))]
    recipients = sync_health.match_recipients(_events(sent), _tables(iers, sends), as_of=AS_OF)
    return _reasons(recipients)


@pytest.mark.parametrize(
    ("job", "key", "status", "reason"),
    [
        (1, C1, sync_health.MATCHED, reasons.HEALTHY),
        (1, L1, sync_health.ON_CONVERTED_LEAD, reasons.LEAD_CONVERTED),
        (1, "owner@example.com", sync_health.MISSING, reasons.EMAIL_KEY),
        (1, C3_15, sync_health.MISSING, reasons.ID15_KEY),
        (1, GONE, sync_health.MISSING, reasons.UNKNOWN_ID),
        (1, C2, sync_health.MISSING, reasons.UNEXPLAINED),
        (2, C1, sync_health.MISSING, reasons.TRACKING_OFF),
        (2, "someone@x.com", sync_health.MISSING, reasons.TRACKING_OFF),
        (3, "partner@x.com", sync_health.MISSING, reasons.NOT_SALESFORCE_AUDIENCE),
        (3, C1, sync_health.MISSING, reasons.NOT_SALESFORCE_AUDIENCE),
        (4, L2, sync_health.MATCHED, reasons.HEALTHY),
        (4, C1, sync_health.MISSING, reasons.IN_SYNC_WINDOW),
    ],
)
def test_each_recipient_gets_one_reason(scenario, job, key, status, reason) -> None:
    assert scenario[(job, key)] == (status, reason)


def test_only_sent_rows_up_to_as_of_are_recipients(scenario) -> None:
    assert len(scenario) == 12
    assert all(job != 5 and key is not None for job, key in scenario)


def test_repaired_keys_and_recipient_ids() -> None:
    sent = _events(
        [
            (1, 0, C3_15, None, "Sent", T0),
            (1, 0, "Owner@Example.com", None, "Sent", T0),
            (1, 0, "nobody@example.com", None, "Sent", T0),
            (1, 0, "003000000000777", None, "Sent", T0),  # 15 characters, but no such contact
        ]
    )
    frame = (
        sync_health.match_recipients(sent, _tables([_ier(1, 1, C1)], [_send(1)]), as_of=AS_OF)
        .collect()
        .select("subscriber_key", "reason", "repaired_key", "recipient_id")
        .sort("subscriber_key")
    )
    owner = ids.to_18("003000000000004")
    assert frame.rows() == [
        ("003000000000777", reasons.UNKNOWN_ID, None, None),
        (C3_15, reasons.ID15_KEY, C3, C3),
        ("Owner@Example.com", reasons.EMAIL_KEY, owner, owner),
        ("nobody@example.com", reasons.EMAIL_KEY, None, None),
    ]


def _big_send_tables(arrived: int, *, per_cycle: int = 5, sent: dt.datetime) -> ReportTables:
    """Send 9 to 20 contacts; ``arrived`` IERs written ``per_cycle`` an hour from 10:15."""
    iers = [
        _ier(
            i,
            9,
            ids.to_18(f"0030000000{i:05d}"),
            sent=sent,
            created=sent.replace(minute=15) + dt.timedelta(hours=1 + i // per_cycle, seconds=i),
        )
        for i in range(arrived)
    ]
    return _tables(iers, [_send(9, sent=sent)])


def _big_send_events(sent: dt.datetime) -> pl.LazyFrame:
    return _events([(9, 0, ids.to_18(f"0030000000{i:05d}"), None, "Sent", sent) for i in range(20)])


def test_a_send_the_sync_model_says_is_still_arriving_is_in_the_sync_window() -> None:
    # 20 recipients at 5 IERs an hour: 4 cycles. Three hours after the send, 10 have arrived.
    sent = AS_OF - dt.timedelta(hours=3)
    tables = _big_send_tables(10, sent=sent)
    contacts = pl.concat(
        [
            tables.contacts,
            _table(
                "contacts",
                [{"id": ids.to_18(f"0030000000{i:05d}"), "email": None} for i in range(20)],
            ),
        ]
    )
    tables = ReportTables(
        iers=tables.iers,
        contacts=contacts,
        leads=tables.leads,
        email_sends=tables.email_sends,
        triggered_sends=tables.triggered_sends,
    )
    throughput = sync_health.estimate_throughput(tables.iers)
    recipients = sync_health.match_recipients(
        _big_send_events(sent), tables, as_of=AS_OF, throughput=throughput
    ).collect()
    assert recipients.get_column("reason").value_counts().sort("reason").rows() == [
        (reasons.HEALTHY, 10),
        (reasons.IN_SYNC_WINDOW, 10),
    ]
    coverage = sync_health.send_coverage(
        recipients.lazy(), tables, throughput=throughput, as_of=AS_OF
    ).collect()
    row = coverage.row(0, named=True)
    assert (row["sent"], row["iers"], row["status"]) == (20, 10, sync_health.SEND_SYNCING)
    # 10 left at 5 a cycle: two more cycles from the next one (12:15) -> done by 14:15.
    next_cycle = AS_OF.replace(minute=15)
    assert row["expected_completion"] == next_cycle + dt.timedelta(hours=2)

    # The same send two days later, still short: the sync should long be done: unexplained.
    later = AS_OF + dt.timedelta(days=2)
    late = sync_health.match_recipients(_big_send_events(sent), tables, as_of=later).collect()
    missing = late.filter(pl.col("status") == sync_health.MISSING)
    assert missing.get_column("reason").unique().to_list() == [reasons.UNEXPLAINED]


def test_throughput_is_estimated_from_full_cycles() -> None:
    sent = T0.replace(hour=10, minute=0)
    tables = _big_send_tables(20, per_cycle=5, sent=sent)
    small = [
        _ier(
            100 + i,
            50 + i,
            C1,
            sent=T0 + dt.timedelta(days=1 + i),
            created=T0 + dt.timedelta(days=1 + i, hours=1, minutes=15 + i),
        )
        for i in range(3)
    ]
    iers = pl.concat([tables.iers, _table("individual_email_results", small)])
    estimate = sync_health.estimate_throughput(iers)
    # Cycles of send 9: 5, 5, 5, 5; the first three are full (IERs were still waiting).
    assert estimate.per_cycle_median == 5
    assert (estimate.per_cycle_p10, estimate.per_cycle_p90) == (5, 5)
    assert estimate.full_cycles == 3 and not estimate.lower_bound
    assert estimate.phase == dt.timedelta(minutes=15)
    assert estimate.next_cycle(AS_OF) == AS_OF.replace(minute=15)
    assert "about 5 IERs per hour" in str(estimate)


def test_throughput_without_a_multi_cycle_send_is_a_lower_bound() -> None:
    iers = _table("individual_email_results", [_ier(i, 1, C1) for i in range(3)])
    estimate = sync_health.estimate_throughput(iers)
    assert estimate.lower_bound and estimate.per_cycle_median == 3 and estimate.full_cycles == 0
    assert "at least 3" in str(estimate)
    empty = sync_health.estimate_throughput(_table("individual_email_results", []))
    assert empty.per_cycle_median is None and empty.iers == 0


def test_unattributable_events_are_counted_per_send() -> None:
    events = _events(
        [
            (1, 0, None, None, "Open", T0),
            (1, 0, "", None, "Click", T0),
            (1, 0, None, None, "Click", T0),
            (1, 0, C1, None, "Open", T0),
            (2, 0, None, None, "Sent", T0),
        ]
    )
    frame = sync_health.unattributable_events(events).collect()
    assert frame.rows() == [(1, 1, 2, 3)]


def test_coverage_statuses_and_fixable_records(scenario) -> None:
    sent = _events(
        [
            (1, 0, C1, None, "Sent", T0),
            (1, 0, C3_15, None, "Sent", T0),
            (
                1,
                0,
                C3_15,
                None,
                "Sent",
                T0 + dt.timedelta(hours=1),
            ),  # same recipient twice: one row
            (6, 0, C1, None, "Sent", T0),
            (6, 0, C3_15, None, "Sent", T0),
            (2, 0, C1, None, "Sent", T0),
            (3, 0, "p@x.com", None, "Sent", T0),
            (7, 0, C1, None, "Sent", T0),
        ]
    )
    tables = _tables(
        [_ier(1, 1, C1), _ier(2, 6, C1), _ier(3, 7, C1)],
        [_send(1), _send(2, tracking_off=True), _send(6), _send(7)],
    )
    throughput = sync_health.estimate_throughput(tables.iers)
    recipients = sync_health.match_recipients(sent, tables, as_of=AS_OF, throughput=throughput)
    coverage = sync_health.send_coverage(recipients, tables, throughput=throughput, as_of=AS_OF)
    statuses = dict(coverage.select("job_id", "status").collect().rows())
    assert statuses == {
        1: sync_health.SEND_INCOMPLETE,
        2: sync_health.SEND_TRACKING_OFF,
        3: sync_health.SEND_NOT_SALESFORCE,
        6: sync_health.SEND_INCOMPLETE,
        7: sync_health.SEND_COMPLETE,
    }
    fixable = sync_health.fixable_records(recipients).collect()
    assert fixable.select("subscriber_key", "reason", "repaired_key", "sends").rows() == [
        (C3_15, reasons.ID15_KEY, C3, 2)
    ]


def test_summary_puts_the_largest_fixable_reason_first() -> None:
    coverage = pl.DataFrame(
        {
            "job_id": [1],
            "email_name": ["A"],
            "date_sent": [T0],
            "sent": [100],
            "iers": [80],
            "status": [sync_health.SEND_INCOMPLETE],
            "expected_completion": [None],
            "expected_completion_latest": [None],
        },
        schema_overrides={
            "expected_completion": schema.UTC_DATETIME,
            "expected_completion_latest": schema.UTC_DATETIME,
        },
    )
    by_reason = pl.DataFrame(
        {
            "reason": [reasons.IN_SYNC_WINDOW, reasons.ID15_KEY, reasons.EMAIL_KEY],
            "missing": [12, 5, 3],
            "sends": [1, 1, 1],
        }
    ).with_columns(fix=pl.col("reason").replace_strict(reasons.FIX))
    text = sync_health.summary_text(
        coverage, by_reason, sync_health.estimate_throughput(_table("individual_email_results", []))
    )
    assert "80.0% coverage" in text
    first, second = (line for line in text.splitlines() if line.startswith("  "))
    assert first.startswith("  1. id15_key: 5 missing IERs in 1 send.")
    assert second.startswith("  2. email_key")
    assert "in_sync_window" not in text  # waiting is not a fix


@pytest.mark.parametrize(
    ("value", "source", "expected"),
    [
        ("", "demo", demo.as_of_instant(demo.DEMO_AS_OF)),
        # A date means the end of that day for every source (ierkit.clock); the demo's noon is
        # its own instant, used when no date is given.
        ("2026-11-18", "demo", dt.datetime(2026, 11, 19, tzinfo=UTC)),
        ("2026-03-04", "salesforce", dt.datetime(2026, 3, 5, tzinfo=UTC)),
        ("2026-03-04T10:30", "salesforce", dt.datetime(2026, 3, 4, 10, 30, tzinfo=UTC)),
        (dt.date(2026, 3, 4), "salesforce", dt.datetime(2026, 3, 5, tzinfo=UTC)),
    ],
)
def test_resolve_as_of(value, source, expected) -> None:
    assert sync_health.resolve_as_of(value, source=source) == expected


def test_resolve_as_of_rejects_text_that_is_not_a_date() -> None:
    with pytest.raises(sync_health.MatchingError, match="as_of: '20/11/2026'"):
        sync_health.resolve_as_of("20/11/2026", source="demo")


def test_extract_is_required_for_sources_other_than_the_demo(tmp_path: Path) -> None:
    with pytest.raises(sync_health.MatchingError, match="give the tracking extract"):
        sync_health.default_extract(str(tmp_path), "")


# --- the demo org: the planted ground truth is recovered -----------------------------------------


def _check_ground_truth(path: Path) -> sync_health.Diagnosis:
    result = sync_health.diagnose(
        LocalOrg(path), path / "tracking_extract.zip", as_of=demo.as_of_instant(demo.DEMO_AS_OF)
    )
    truth = pl.read_parquet(path / "ground_truth.parquet")
    # Deleted-in-Marketing-Cloud rows have no Sent row (their key is null): not recipients.
    planted = truth.filter(pl.col("subscriber_key").is_not_null())
    keys = ["job_id", "batch_id", "subscriber_key"]
    joined = planted.join(result.recipients, on=keys, how="full", suffix="_found", coalesce=True)
    assert joined.height == planted.height == result.recipients.height
    wrong = joined.filter(
        (pl.col("reason") != pl.col("reason_found"))
        | (pl.col("has_ier") != pl.col("has_ier_found"))
        | (pl.col("ier_id").eq_missing(pl.col("ier_id_found")).not_())
    )
    assert wrong.height == 0, wrong.group_by("reason", "reason_found").len()
    # Every planted failure mode occurs, and nothing is unexplained.
    assert set(planted.get_column("reason")) == set(reasons.ALL) - {
        reasons.DELETED_IN_MARKETING_CLOUD,
        reasons.UNEXPLAINED,
    }
    healthy = joined.filter(pl.col("reason") == reasons.HEALTHY)
    assert (healthy.get_column("status") == sync_health.MATCHED).all()
    # The deleted subscribers' blank-key opens and clicks are counted, not made into recipients.
    deleted = truth.filter(pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD)
    assert deleted.height > 0
    assert result.unattributable.get_column("unattributable_events").sum() > 0
    assert set(result.unattributable.get_column("job_id")) <= set(deleted.get_column("job_id"))
    return result


def test_small_demo_ground_truth_is_recovered(small_demo_path: Path) -> None:
    result = _check_ground_truth(small_demo_path)
    # The demo's sync writes max(200, 5,000 x scale) IERs an hour; the estimate finds it.
    assert result.throughput.per_cycle_median == 500 and not result.throughput.lower_bound
    syncing = result.coverage.filter(pl.col("status") == sync_health.SEND_SYNCING)
    assert syncing.get_column("email_name").to_list() == ["Product Announcement - Northbeam 5.0"]
    assert syncing.item(0, "expected_completion") > result.as_of
    assert "1. tracking_off" in result.summary


@pytest.mark.slow
def test_default_demo_ground_truth_is_recovered(demo_path: Path) -> None:
    result = _check_ground_truth(demo_path)
    assert result.throughput.per_cycle_median == demo.SYNC_THROUGHPUT


def test_cli_diagnose_prints_coverage_and_summary(small_demo_path: Path, capsys) -> None:
    code = cli.main(["diagnose", "--source", str(small_demo_path), "--as-of", "2026-11-20T12:00"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Sync health as of 2026-11-20 12:00 UTC" in out
    assert "Product Announcement - Northbeam 5.0" in out and "syncing" in out
    assert "Fix first" in out


# --- deduplicated recipients (Dedupe Subscribers) ----------------------------------------------

DEDUPE_SENT = dt.datetime(2026, 10, 1, 10, tzinfo=dt.UTC)


def _person(pid: str, first: str, email: str) -> dict:
    created = DEDUPE_SENT - dt.timedelta(days=30)
    return {
        "id": pid,
        "first_name": first,
        "last_name": "Doe",
        "email": email,
        "created_date": created,
    }


def _sent(job: int, key: str, email: str, recipient: str | None) -> dict:
    return {
        "job_id": job,
        "batch_id": 0,
        "subscriber_key": key,
        "email": email,
        "sent_at": DEDUPE_SENT,
        "recipient_id": recipient,
    }


def test_deduplicated_recipients_only_those_who_could_have_been_sent_to() -> None:
    ann, bob, cat, dan, eve = (f"003000000000000{c}AAA" for c in "ABCDE")
    contacts = pl.DataFrame(
        [
            _person(ann, "Ann", "team@acme.example"),  # sent to on both sends
            _person(bob, "Bob", "TEAM@acme.example"),  # same address, ignoring case: deduped
            _person(cat, "Cat", "team@acme.example"),  # unsubscribed before the send: not
            _person(dan, "Dan", "solo@acme.example"),  # sent under an email key: himself
            _person(eve, "Eve", "ops@beta.example"),  # not a member of the send's Campaign
        ]
    )
    iers = pl.DataFrame(
        {
            "id": ["a0R000000000000001"],
            "contact_id": [cat],
            "date_sent": [DEDUPE_SENT - dt.timedelta(days=20)],
            "unsubscribed": [True],
            "date_unsubscribed": [DEDUPE_SENT - dt.timedelta(days=19)],
        }
    )
    email_sends = pl.DataFrame(
        {
            "id": ["a0S000000000000001", "a0S000000000000002", "a0S000000000000003"],
            "job_id": [1, 2, 3],
            "campaign_id": [None, None, "701000000000000AAA"],
            "dedupe_subscribers": [True, False, True],
        }
    )
    members = pl.DataFrame(
        {
            "campaign_id": ["701000000000000AAA"],
            "contact_id": ["003000000000000FAAA"],
            "lead_id": [None],
            "created_date": [DEDUPE_SENT - dt.timedelta(days=1)],
        },
        schema_overrides={"lead_id": pl.String},
    )
    recipients = pl.DataFrame(
        [
            _sent(1, ann, "team@acme.example", ann),
            _sent(1, "solo@acme.example", "solo@acme.example", dan),
            _sent(2, ann, "team@acme.example", ann),  # dedupe off: Bob was simply not chosen
            _sent(3, "003000000000000FAAA", "ops@beta.example", "003000000000000FAAA"),
        ]
    ).with_columns(pl.col("sent_at").cast(schema.UTC_DATETIME))
    tables = ReportTables.of(contacts=contacts, iers=iers, email_sends=email_sends)
    got = sync_health.deduplicated_recipients(recipients.lazy(), tables, members.lazy()).collect()
    assert got.select("job_id", "recipient_id", "reason", "has_ier").rows() == [
        (1, bob, reasons.DEDUPLICATED, False)
    ]
    assert got.item(0, "detail") == (
        "deduplicated: shares an email address with Ann Doe, who was sent to"
    )
