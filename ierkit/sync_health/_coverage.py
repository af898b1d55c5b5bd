"""Per-send coverage, missing IERs by reason, and the Subscriber Keys to fix.

Everything here reads ``match_recipients`` output (one row per sent recipient with its status
and reason) and stays lazy.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from ierkit import clock, reasons, schema
from ierkit.reports import ReportTables
from ierkit.sync_health._matching import MATCHED, MISSING, ON_CONVERTED_LEAD
from ierkit.sync_health._throughput import ThroughputEstimate

#: Send statuses in ``send_coverage``.
SEND_COMPLETE: Final = "complete"
SEND_SYNCING: Final = "syncing"
SEND_INCOMPLETE: Final = "incomplete"
SEND_TRACKING_OFF: Final = "tracking off"
SEND_NOT_SALESFORCE: Final = "not from Salesforce"

#: Reasons a RevOps lead fixes on the records themselves (the Subscriber Key in the audience).
KEY_REASONS: Final = (reasons.EMAIL_KEY, reasons.ID15_KEY, reasons.UNKNOWN_ID)


def _send_names(tables: ReportTables, send_jobs: pl.LazyFrame | None) -> pl.LazyFrame:
    """job_id -> email_name: Email Sends first, then the extract's SendJobs, then IER names."""
    frames = [
        tables.email_sends.select("job_id", "email_name").with_columns(rank=pl.lit(0)),
        tables.iers.select("job_id", email_name="name").with_columns(rank=pl.lit(2)),
    ]
    if send_jobs is not None:
        frames.append(send_jobs.select("job_id", "email_name").with_columns(rank=pl.lit(1)))
    return (
        pl.concat(frames)
        .filter(pl.col("job_id").is_not_null() & pl.col("email_name").is_not_null())
        .sort("job_id", "rank", "email_name")
        .group_by("job_id")
        .agg(pl.col("email_name").first())
    )


def send_coverage(
    recipients: pl.LazyFrame,
    tables: ReportTables,
    *,
    throughput: ThroughputEstimate,
    as_of: dt.datetime,
    send_jobs: pl.LazyFrame | None = None,
    unattributable: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Per send: sent, IERs, coverage, status, and when a send still syncing should be done.

    Args:
        recipients: ``match_recipients`` output.
        tables: The org's tables (for email names).
        throughput: The sync's throughput (``estimate_throughput``).
        as_of: The moment the matching judged from (UTC).
        send_jobs: The extract's SendJobs, for names of sends the org does not know.
        unattributable: ``unattributable_events`` output, joined per send when given.

    Returns:
        job_id, email_name, date_sent (first Sent row), sent (recipients sent to: those
        deduplicated away are not), iers (IERs found, including those
        on converted Leads), on_converted_lead, missing, coverage (iers / sent), status
        (``complete``, ``syncing``, ``incomplete``, ``tracking off``, ``not from Salesforce``),
        main_reason (the commonest reason for the missing), expected_completion (syncing sends:
        when the last IER should have arrived at the median throughput) and
        expected_completion_latest (at the 10th-percentile throughput), unattributable_events.
        Newest send first.
    """
    as_of = clock.to_utc(as_of)
    missing = pl.col("status") == MISSING
    # Recipients left out by "Dedupe Subscribers" were never sent to: not in sent or missing
    # (as in Marketing Cloud's own totals); missing_by_reason still lists them, by design.
    recipients = recipients.filter(pl.col("reason") != reasons.DEDUPLICATED)
    per_send = recipients.group_by("job_id").agg(
        date_sent=pl.col("sent_at").min(),
        sent=pl.len().cast(pl.Int64),
        iers=pl.col("has_ier").sum().cast(pl.Int64),
        on_converted_lead=(pl.col("status") == ON_CONVERTED_LEAD).sum().cast(pl.Int64),
        missing=missing.sum().cast(pl.Int64),
        syncing_left=(pl.col("reason") == reasons.IN_SYNC_WINDOW).sum().cast(pl.Int64),
        tracking_off=(pl.col("reason") == reasons.TRACKING_OFF).sum().cast(pl.Int64),
        not_salesforce=(pl.col("reason") == reasons.NOT_SALESFORCE_AUDIENCE).sum().cast(pl.Int64),
    )
    main_reason = (
        recipients.filter(missing)
        .group_by("job_id", "reason")
        .agg(n=pl.len())
        .sort("job_id", "n", "reason", descending=[False, True, False])
        .group_by("job_id")
        .agg(main_reason=pl.col("reason").first())
    )
    next_cycle = throughput.next_cycle(as_of)
    length = throughput.cycle_length.total_seconds()

    def completion(per_cycle: float | None) -> pl.Expr:
        if not per_cycle:
            return pl.lit(None, schema.UTC_DATETIME)
        cycles = (pl.col("syncing_left").cast(pl.Float64) / per_cycle).ceil()
        return pl.when(pl.col("syncing_left") > 0).then(
            pl.lit(next_cycle, schema.UTC_DATETIME)
            + pl.duration(seconds=(cycles * length).cast(pl.Int64))
        )

    status = (
        pl.when(pl.col("syncing_left") > 0)
        .then(pl.lit(SEND_SYNCING))
        .when(pl.col("missing") == 0)
        .then(pl.lit(SEND_COMPLETE))
        .when(pl.col("not_salesforce") == pl.col("missing"))
        .then(pl.lit(SEND_NOT_SALESFORCE))
        .when(pl.col("tracking_off") == pl.col("missing"))
        .then(pl.lit(SEND_TRACKING_OFF))
        .otherwise(pl.lit(SEND_INCOMPLETE))
    )
    frame = (
        per_send.join(_send_names(tables, send_jobs), on="job_id", how="left")
        .join(main_reason, on="job_id", how="left")
        .with_columns(
            coverage=pl.col("iers") / pl.col("sent"),
            status=status,
            expected_completion=completion(throughput.per_cycle_median),
            expected_completion_latest=completion(throughput.per_cycle_p10),
        )
    )
    if unattributable is not None:
        frame = frame.join(
            unattributable.select("job_id", "unattributable_events"), on="job_id", how="left"
        )
    else:
        frame = frame.with_columns(unattributable_events=pl.lit(None, pl.Int64))
    return frame.select(
        "job_id",
        "email_name",
        "date_sent",
        "sent",
        "iers",
        "on_converted_lead",
        "missing",
        "coverage",
        "status",
        "main_reason",
        "expected_completion",
        "expected_completion_latest",
        pl.col("unattributable_events").fill_null(0),
    ).sort("date_sent", "job_id", descending=[True, False])


def missing_by_reason(
    recipients: pl.LazyFrame, *, unattributable: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """Missing IERs per reason, most first, with the fix in words.

    Recipients whose IER is on a converted Lead are counted too (status ``on_converted_lead``:
    the IER exists, but not where a report on the Contact looks). Unattributable events, when
    given, add a ``deleted_in_marketing_cloud`` row counting events, not recipients.

    Returns:
        reason, missing (recipients, or events for deleted_in_marketing_cloud), sends, fix.
    """
    frame = (
        recipients.filter(pl.col("status") != MATCHED)
        .group_by("reason")
        .agg(missing=pl.len().cast(pl.Int64), sends=pl.col("job_id").n_unique().cast(pl.Int64))
    )
    if unattributable is not None:
        deleted = unattributable.select(
            reason=pl.lit(reasons.DELETED_IN_MARKETING_CLOUD),
            missing=pl.col("unattributable_events").sum().cast(pl.Int64),
            sends=pl.len().cast(pl.Int64),
        ).filter(pl.col("missing") > 0)
        frame = pl.concat([frame, deleted])
    return frame.with_columns(
        fix=pl.col("reason").replace_strict(reasons.FIX, return_dtype=pl.String)
    ).sort("missing", "reason", descending=[True, False])


def fixable_records(recipients: pl.LazyFrame) -> pl.LazyFrame:
    """Subscriber Keys to fix in Marketing Cloud, one row per key, with the repaired key.

    Returns:
        subscriber_key, reason (email_key, id15_key, unknown_id), repaired_key (the Id to use
        instead, where the org has one), email, sends (sends the key missed an IER in),
        last_sent, fix. Most sends first.
    """
    return (
        recipients.filter((pl.col("status") == MISSING) & pl.col("reason").is_in(KEY_REASONS))
        .group_by("subscriber_key", "reason")
        .agg(
            pl.col("repaired_key").drop_nulls().first(),
            pl.col("email").drop_nulls().first(),
            sends=pl.col("job_id").n_unique().cast(pl.Int64),
            last_sent=pl.col("sent_at").max(),
        )
        .with_columns(fix=pl.col("reason").replace_strict(reasons.FIX, return_dtype=pl.String))
        .sort("sends", "subscriber_key", descending=[True, False])
    )
