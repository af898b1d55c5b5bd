"""Recipients left out by "Dedupe Subscribers": no Sent row, no IER, and that is by design.

With "Dedupe Subscribers" on (``email_sends.dedupe_subscribers``, the default), of several
recipients of one send sharing an email address only the first is sent to; the others get no
Sent row and no IER. Triggered sends never deduplicate. Marketing Cloud records nothing for them,
so they are found from the org. A Contact or Lead is a deduplicated recipient of an Email Send
with dedupe on when:

- a recipient who was sent to (a Sent row matched to another Contact or Lead) has its address,
  ignoring case;
- it has no Sent row of its own in that send, and no Sent row there carries its address under a
  key that names nobody (an email-address key shared by several records: it may have been them);
- it existed at the send, and could have been in the audience: not unsubscribed or hard-bounced
  before the send (its own IERs say so), and, where the send's Campaign has members, one of them.

The last two conditions keep out people who share an address but were never in the audience.
"""

from __future__ import annotations

import polars as pl

from ierkit import ids, reasons
from ierkit.reports import ReportTables
from ierkit.sync_health._matching import MISSING, RECIPIENT_SCHEMA


def deduplicated_recipients(
    recipients: pl.LazyFrame,
    tables: ReportTables,
    campaign_members: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """One row per recipient deduplicated away, in ``RECIPIENT_SCHEMA``, reason ``deduplicated``.

    Args:
        recipients: The sent recipients matched to the org (``match_recipients``): job_id,
            batch_id, email, sent_at and recipient_id (the Contact or Lead the key names).
        tables: The org's tables (contacts, leads, email_sends, iers).
        campaign_members: The org's Campaign Members (campaign_id, contact_id, lead_id,
            created_date), if it holds them: a send to a Campaign reaches its members only.

    Returns:
        The rows, ``detail`` saying "deduplicated: shares an email address with <name>, who was
        sent to"; sorted by job_id, batch_id, subscriber_key.
    """
    address = pl.col("email").str.to_lowercase().str.strip_chars()

    def part(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.select(
            person_id="id",
            person_name=pl.concat_str(
                ["first_name", "last_name"], separator=" ", ignore_nulls=True
            ),
            address=address,
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
        .group_by("job_id")
        .agg(pl.col("campaign_id").first())
    )
    sent = recipients.join(dedupe_jobs, on="job_id", how="inner").with_columns(address=address)
    got_sent = sent.filter(pl.col("recipient_id").is_not_null()).select(
        "job_id", person_id="recipient_id"
    )
    # An address sent under a key that names nobody: whoever holds it may have been sent to.
    unnamed = sent.filter(pl.col("recipient_id").is_null()).select("job_id", "address")
    holders = (
        sent.filter(pl.col("recipient_id").is_not_null())
        .join(
            people.select("person_id", holder_name="person_name"),
            left_on="recipient_id",
            right_on="person_id",
            how="left",
        )
        .select(
            "job_id",
            "batch_id",
            "address",
            "sent_at",
            "campaign_id",
            holder_id="recipient_id",
            holder=pl.coalesce("holder_name", "email"),
        )
    )
    candidates = (
        holders.join(people, on="address", how="inner")
        .filter(
            (pl.col("person_id") != pl.col("holder_id"))
            & (pl.col("created_date").is_null() | (pl.col("created_date") < pl.col("sent_at")))
        )
        .join(got_sent, on=["job_id", "person_id"], how="anti")
        .join(unnamed, on=["job_id", "address"], how="anti")
    )
    candidates = _could_have_been_in_audience(candidates, tables, campaign_members)
    return (
        candidates.group_by("job_id", "person_id")
        .agg(
            pl.col("batch_id").min(),
            pl.col("address").min(),
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


def _could_have_been_in_audience(
    candidates: pl.LazyFrame, tables: ReportTables, campaign_members: pl.LazyFrame | None
) -> pl.LazyFrame:
    """Drop candidates who could not have been in the send's audience.

    Marketing Cloud does not send to a subscriber who unsubscribed or hard-bounced, so such a
    person was left out for that, not by the dedupe; a send to a Campaign goes to its members.
    """
    person = pl.coalesce("contact_id", "lead_id")
    suppressed = (
        tables.iers.select(
            person_id=person,
            at=pl.min_horizontal(
                pl.when(pl.col("unsubscribed").fill_null(False)).then(
                    pl.coalesce("date_unsubscribed", "date_sent")
                ),
                pl.when(pl.col("hard_bounce").fill_null(False)).then(
                    pl.coalesce("date_bounced", "date_sent")
                ),
            ),
        )
        .filter(pl.col("person_id").is_not_null() & pl.col("at").is_not_null())
        .group_by("person_id")
        .agg(suppressed_at=pl.col("at").min())
    )
    out = (
        candidates.join(suppressed, on="person_id", how="left")
        .filter(pl.col("suppressed_at").is_null() | (pl.col("suppressed_at") >= pl.col("sent_at")))
        .drop("suppressed_at")
    )
    if campaign_members is None:
        return out
    members = campaign_members.select("campaign_id", person_id=person, joined="created_date")
    with_members = members.select("campaign_id").unique()
    to_campaign = out.join(with_members, on="campaign_id", how="semi")
    member_of = to_campaign.join(members, on=["campaign_id", "person_id"], how="inner").filter(
        pl.col("joined").is_null() | (pl.col("joined") < pl.col("sent_at"))
    )
    return pl.concat(
        [
            out.join(with_members, on="campaign_id", how="anti"),
            member_of.drop("joined").unique(maintain_order=True),
        ]
    )
