"""Recipients left out by "Dedupe Subscribers": no Sent row, no IER, and that is by design.

With "Dedupe Subscribers" on (``email_sends.dedupe_subscribers``, the default), of several
recipients sharing an email address only the first is sent to; the others get no Sent row and
no IER. Triggered sends never
deduplicate. Marketing Cloud records nothing for them, so they are found from the org: a
Contact or Lead that existed at the send, shares (ignoring case) the address of a recipient who
was sent to on an Email Send with dedupe on, and has no Sent row of its own in that send.
"""

from __future__ import annotations

import polars as pl

from ierkit import ids, reasons
from ierkit.reports import ReportTables
from ierkit.sync_health._matching import MISSING, RECIPIENT_SCHEMA


def deduplicated_recipients(sent: pl.LazyFrame, tables: ReportTables) -> pl.LazyFrame:
    """One row per recipient deduplicated away, in ``RECIPIENT_SCHEMA``, reason ``deduplicated``.

    Args:
        sent: ``sent_rows`` of the extract (job_id, batch_id, subscriber_key, email, sent_at).
        tables: The org's tables (contacts, leads, email_sends).

    Returns:
        The rows, ``detail`` saying "deduplicated: shares an email address with <name>, who was
        sent to"; sorted by job_id, batch_id, subscriber_key.
    """

    def part(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.select(
            person_id="id",
            person_name=pl.concat_str(
                ["first_name", "last_name"], separator=" ", ignore_nulls=True
            ),
            address=pl.col("email").str.to_lowercase().str.strip_chars(),
            created_date="created_date",
        )

    # A converted Lead keeps its address beside its Contact but is no longer sent to.
    leads = tables.leads.filter(~pl.col("is_converted").fill_null(False))
    people = pl.concat([part(tables.contacts), part(leads)]).filter(
        pl.col("address").is_not_null() & (pl.col("address") != "")
    )
    dedupe_jobs = (
        tables.email_sends.filter(
            pl.col("dedupe_subscribers").fill_null(True) & pl.col("job_id").is_not_null()
        )
        .select("job_id")
        .unique()
    )
    sent_keyed = sent.join(dedupe_jobs, on="job_id", how="semi").with_columns(
        address=pl.col("email").str.to_lowercase().str.strip_chars(),
        sent_person=ids.to_18_expr(pl.col("subscriber_key")),
    )
    holders = sent_keyed.join(
        people.select("person_id", holder_name="person_name"),
        left_on="sent_person",
        right_on="person_id",
        how="left",
    )
    got_sent = sent_keyed.select("job_id", person_id="sent_person").unique()
    return (
        holders.select(
            "job_id",
            "batch_id",
            "address",
            "sent_at",
            "sent_person",
            holder=pl.coalesce("holder_name", "email"),
        )
        .join(people, on="address", how="inner")
        .filter(
            (pl.col("person_id") != pl.col("sent_person").fill_null(""))
            & (pl.col("created_date").is_null() | (pl.col("created_date") < pl.col("sent_at")))
        )
        .join(got_sent, on=["job_id", "person_id"], how="anti")
        .group_by("job_id", "person_id")
        .agg(
            pl.col("batch_id").min(),
            pl.col("address").first(),
            holder=pl.col("holder").sort().first(),
        )
        .select(
            "job_id",
            "batch_id",
            subscriber_key=pl.col("person_id"),
            email=pl.col("address"),
            sent_at=pl.lit(None, dtype=RECIPIENT_SCHEMA["sent_at"]),
            key_kind=pl.lit(ids.KEY_CONTACT_OR_LEAD_ID),
            recipient_id=pl.col("person_id"),
            repaired_key=pl.lit(None, dtype=pl.String),
            ier_id=pl.lit(None, dtype=pl.String),
            has_ier=pl.lit(False),
            status=pl.lit(MISSING),
            reason=pl.lit(reasons.DEDUPLICATED),
            detail=pl.lit("deduplicated: shares an email address with ")
            + pl.col("holder")
            + pl.lit(", who was sent to"),
        )
        .cast(RECIPIENT_SCHEMA)
        .sort("job_id", "batch_id", "subscriber_key")
    )
