"""Matching an extract's sent recipients to the org's IERs, one reason for each one missing.

IERs from an org carry no Subscriber Key, so a Sent row (``job_id``, ``batch_id``,
``subscriber_key``) matches an IER with the same ``job_id`` and ``batch_id`` whose Contact or
Lead is the key (in its 18-character form). The reasons and their precedence are those of
``ierkit.sync_health``.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from ierkit import clock, ids, reasons, schema
from ierkit.reports import ReportTables
from ierkit.sync_health._throughput import (
    Cycle,
    ThroughputEstimate,
    cycle_length,
    estimate_throughput,
)

#: Recipient statuses in ``match_recipients``.
MATCHED: Final = "matched"
ON_CONVERTED_LEAD: Final = "on_converted_lead"
MISSING: Final = "missing"

#: Columns of ``match_recipients``.
RECIPIENT_SCHEMA: Final = pl.Schema(
    {
        "job_id": pl.Int64(),
        "batch_id": pl.Int64(),
        "subscriber_key": pl.String(),
        "email": pl.String(),
        "sent_at": schema.UTC_DATETIME,
        "key_kind": pl.String(),
        "recipient_id": pl.String(),
        "repaired_key": pl.String(),
        "ier_id": pl.String(),
        "has_ier": pl.Boolean(),
        "status": pl.String(),
        "reason": pl.String(),
        "detail": pl.String(),
    }
)


def sent_rows(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per recipient per send and batch from the Sent events of an extract.

    Returns:
        job_id, batch_id (0 when blank), subscriber_key, email, sent_at. Sent rows with a blank
        key are dropped (they cannot be attributed to anyone).
    """
    return (
        events.filter(
            (pl.col("event_type") == "Sent")
            & pl.col("subscriber_key").is_not_null()
            & (pl.col("subscriber_key").str.strip_chars() != "")
        )
        .group_by(pl.col("job_id"), pl.col("batch_id").fill_null(0), pl.col("subscriber_key"))
        .agg(pl.col("email").first(), sent_at=pl.col("event_time").min())
    )


def unattributable_events(events: pl.LazyFrame) -> pl.LazyFrame:
    """Opens and clicks with a blank Subscriber Key (subscribers deleted in Marketing Cloud).

    Returns:
        Per send: job_id, unattributable_opens, unattributable_clicks, unattributable_events;
        only sends that have some; sorted by job_id.
    """
    blank = pl.col("subscriber_key").is_null() | (pl.col("subscriber_key").str.strip_chars() == "")
    return (
        events.filter(blank & pl.col("event_type").is_in(["Open", "Click"]))
        .group_by("job_id")
        .agg(
            unattributable_opens=(pl.col("event_type") == "Open").sum().cast(pl.Int64),
            unattributable_clicks=(pl.col("event_type") == "Click").sum().cast(pl.Int64),
        )
        .with_columns(
            unattributable_events=pl.col("unattributable_opens") + pl.col("unattributable_clicks")
        )
        .sort("job_id")
    )


def _ier_keys(tables: ReportTables, as_of: dt.datetime) -> pl.LazyFrame:
    """(job_id, batch_id, person_id) -> ier_id for IERs that existed at ``as_of``."""
    iers = tables.iers.filter(
        pl.col("created_date").is_null() | (pl.col("created_date") <= as_of)
    ).join(
        # Package versions before 2023 lack the IER's JobID: take it from its Email Send.
        tables.email_sends.select(pl.col("id").alias("email_send_id"), send_job_id="job_id"),
        on="email_send_id",
        how="left",
    )
    base = iers.select(
        ier_id="id",
        job_id=pl.coalesce("job_id", "send_job_id"),
        batch_id=pl.col("batch_id").fill_null(0),
        contact_id="contact_id",
        lead_id="lead_id",
    )
    # An IER names a Contact or a Lead; either can be the Subscriber Key.
    return (
        pl.concat(
            [
                base.select("ier_id", "job_id", "batch_id", person_id="contact_id"),
                base.select("ier_id", "job_id", "batch_id", person_id="lead_id"),
            ]
        )
        .filter(pl.col("person_id").is_not_null() & pl.col("job_id").is_not_null())
        .group_by("job_id", "batch_id", "person_id")
        .agg(pl.col("ier_id").min())
    )


def _people(tables: ReportTables) -> pl.LazyFrame:
    """Contacts and Leads: person_id, email, is_converted_lead."""
    contacts = tables.contacts.select(
        person_id="id", person_email="email", is_converted_lead=pl.lit(False)
    )
    leads = tables.leads.select(
        person_id="id",
        person_email="email",
        is_converted_lead=pl.col("is_converted").fill_null(False)
        & pl.col("converted_contact_id").is_not_null(),
    )
    return pl.concat([contacts, leads]).unique("person_id", keep="first")


def _send_facts(
    tables: ReportTables, send_jobs: pl.LazyFrame | None, ier_keys: pl.LazyFrame
) -> pl.LazyFrame:
    """Per job_id: whether the org knows the send, and whether its tracking is off."""
    sends = tables.email_sends.group_by("job_id").agg(
        in_email_sends=pl.lit(True),
        tracking_disabled=pl.col("individual_tracking_disabled").fill_null(False).any(),
    )
    with_iers = ier_keys.select("job_id").unique().with_columns(has_iers=pl.lit(True))
    parts = [sends.select("job_id"), with_iers.select("job_id")]
    triggered = pl.LazyFrame(schema={"job_id": pl.Int64, "triggered_off": pl.Boolean})
    if send_jobs is not None:
        # A triggered send with tracking off writes no IER and has no Email Send record: find it
        # by the email name the extract's SendJobs gives it.
        off = tables.triggered_sends.filter(
            pl.col("individual_tracking_disabled").fill_null(False)
        ).select(email_name="name", triggered_off=pl.lit(True))
        triggered = (
            send_jobs.select("job_id", "email_name")
            .join(off.unique("email_name"), on="email_name", how="inner")
            .group_by("job_id")
            .agg(pl.col("triggered_off").any())
        )
        parts.append(triggered.select("job_id"))
    facts = (
        pl.concat(parts)
        .unique()
        .join(sends, on="job_id", how="left")
        .join(with_iers, on="job_id", how="left")
        .join(triggered, on="job_id", how="left")
    )
    return facts.select(
        "job_id",
        send_known=pl.col("in_email_sends").fill_null(False)
        | pl.col("has_iers").fill_null(False)
        | pl.col("triggered_off").fill_null(False),
        tracking_disabled=pl.col("tracking_disabled").fill_null(False)
        | pl.col("triggered_off").fill_null(False),
    )


def match_recipients(
    sent_events: pl.LazyFrame,
    tables: ReportTables,
    *,
    as_of: dt.datetime,
    grace: dt.timedelta = clock.SYNC_GRACE,
    cycle: Cycle = "hourly",
    throughput: ThroughputEstimate | None = None,
    send_jobs: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Match every sent recipient to its IER and give each one without an IER a reason.

    Args:
        sent_events: Tracking events in ``ierkit.extract.EVENT_SCHEMA`` (only Sent rows are used;
            other event types may be present).
        tables: The org's tables (``ReportTables``: iers, contacts, leads, email_sends and
            triggered_sends are read).
        as_of: The moment to judge from (UTC): later Sent rows are left out and later IERs do
            not count as existing yet.
        grace: A send (or batch) younger than this is never called broken.
        cycle: The Connect sync frequency.
        throughput: The sync's throughput; estimated from ``tables.iers`` when None.
        send_jobs: The extract's SendJobs (``extract.read_send_jobs``): finds triggered sends
            with tracking off by name. Optional.

    Returns:
        One row per sent recipient (``RECIPIENT_SCHEMA``): job_id, batch_id, subscriber_key,
        email, sent_at, key_kind (``ierkit.ids`` kinds), recipient_id (the Contact or Lead the
        key points to, where the org has one; for an email key, the only Contact or Lead with
        that address), repaired_key (the 18-character Id for a 15-character key; the record Id
        for an email key, where one record has the address), ier_id, has_ier, status
        (``matched``, ``on_converted_lead``, ``missing``) and reason (``ierkit.reasons``).
        Sorted by job_id, batch_id, subscriber_key.
    """
    as_of = clock.to_utc(as_of)
    length = cycle_length(cycle)
    if throughput is None:
        throughput = estimate_throughput(tables.iers, cycle=cycle, as_of=as_of)
    ier_keys = _ier_keys(tables, as_of)
    people = _people(tables)
    key = pl.col("subscriber_key")
    kind = ids.classify_subscriber_key_expr(key)
    id_like = key.str.contains(r"^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$")
    # Email addresses that belong to exactly one Contact or Lead: an email key's likely owner.
    by_email = (
        people.filter(pl.col("person_email").is_not_null())
        .with_columns(address=pl.col("person_email").str.to_lowercase())
        .group_by("address")
        .agg(pl.col("person_id").first(), n=pl.len())
        .filter(pl.col("n") == 1)
        .select("address", email_owner="person_id")
    )
    rows = (
        sent_rows(sent_events)
        .filter(pl.col("sent_at") <= as_of)
        .with_columns(key_kind=kind)
        .with_columns(
            # Ids match in their 18-character form.
            match_key=pl.when(pl.col("key_kind").is_in([ids.KEY_CONTACT_OR_LEAD_ID, ids.KEY_ID15]))
            .then(ids.to_18_expr(key))
            .when(id_like)
            .then(ids.to_18_expr(key)),
            address=pl.when(pl.col("key_kind") == ids.KEY_EMAIL).then(key.str.to_lowercase()),
        )
        .join(
            ier_keys,
            left_on=["job_id", "batch_id", "match_key"],
            right_on=["job_id", "batch_id", "person_id"],
            how="left",
        )
        .join(people, left_on="match_key", right_on="person_id", how="left")
        .with_columns(in_org=pl.col("is_converted_lead").is_not_null())
        .join(by_email, on="address", how="left")
        .join(_send_facts(tables, send_jobs, ier_keys), on="job_id", how="left")
        .with_columns(
            pl.col("send_known").fill_null(False),
            pl.col("tracking_disabled").fill_null(False),
            has_ier=pl.col("ier_id").is_not_null(),
        )
    )
    structural = (
        pl.when(~pl.col("send_known"))
        .then(pl.lit(reasons.NOT_SALESFORCE_AUDIENCE))
        .when(pl.col("tracking_disabled"))
        .then(pl.lit(reasons.TRACKING_OFF))
        .when(pl.col("key_kind") == ids.KEY_EMAIL)
        .then(pl.lit(reasons.EMAIL_KEY))
        .when((pl.col("key_kind") == ids.KEY_ID15) & pl.col("in_org"))
        .then(pl.lit(reasons.ID15_KEY))
        .when(id_like & ~pl.col("in_org"))
        .then(pl.lit(reasons.UNKNOWN_ID))
    )
    rows = rows.with_columns(structural=pl.when(~pl.col("has_ier")).then(structural))
    # The sync model, per send and batch: IERs that should come, and whether they still can.
    expected = (pl.col("structural").is_null() & (pl.col("key_kind") != ids.KEY_OTHER)) | pl.col(
        "has_ier"
    )
    batches = rows.group_by("job_id", "batch_id").agg(
        batch_sent=pl.col("sent_at").min(),
        expected=expected.sum(),
        arrived=pl.col("has_ier").sum(),
    )
    per_cycle = throughput.per_cycle_p10 or 0.0
    if per_cycle > 0:
        cycles_needed = (pl.col("expected").cast(pl.Float64) / per_cycle).ceil()
        # One cycle to wait for the first sync after the send, then the cycles the send needs.
        model_done = pl.col("batch_sent") + pl.duration(
            seconds=((cycles_needed + 1) * length.total_seconds()).cast(pl.Int64)
        )
    else:
        model_done = pl.col("batch_sent")
    young = pl.col("batch_sent") > pl.lit(as_of - grace)
    batches = batches.with_columns(
        syncing=young | ((pl.col("arrived") < pl.col("expected")) & (model_done > pl.lit(as_of)))
    ).select("job_id", "batch_id", "syncing")
    rows = rows.join(batches, on=["job_id", "batch_id"], how="left")
    reason = (
        pl.when(pl.col("has_ier") & pl.col("is_converted_lead").fill_null(False))
        .then(pl.lit(reasons.LEAD_CONVERTED))
        .when(pl.col("has_ier"))
        .then(pl.lit(reasons.HEALTHY))
        .when(pl.col("structural").is_not_null())
        .then(pl.col("structural"))
        .when(pl.col("syncing"))
        .then(pl.lit(reasons.IN_SYNC_WINDOW))
        .otherwise(pl.lit(reasons.UNEXPLAINED))
    )
    status = (
        pl.when(pl.col("reason") == reasons.LEAD_CONVERTED)
        .then(pl.lit(ON_CONVERTED_LEAD))
        .when(pl.col("has_ier"))
        .then(pl.lit(MATCHED))
        .otherwise(pl.lit(MISSING))
    )
    recipient = pl.when(pl.col("in_org")).then(pl.col("match_key")).otherwise(pl.col("email_owner"))
    repaired = (
        pl.when((pl.col("key_kind") == ids.KEY_ID15) & pl.col("in_org"))
        .then(pl.col("match_key"))
        .when(pl.col("key_kind") == ids.KEY_EMAIL)
        .then(pl.col("email_owner"))
    )
    return (
        rows.with_columns(reason=reason)
        .with_columns(
            status=status,
            recipient_id=recipient,
            repaired_key=repaired,
            detail=pl.lit(None, dtype=pl.String),
        )
        .select(RECIPIENT_SCHEMA.names())
        .cast(RECIPIENT_SCHEMA)
        .sort("job_id", "batch_id", "subscriber_key")
    )
