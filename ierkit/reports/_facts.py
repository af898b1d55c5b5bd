"""Building blocks: engagement flags of an IER, recipients and sends."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ierkit.orgs.base import Org
from ierkit.reports._tables import (
    NO_CAMPAIGN,
    NO_OWNER,
    ReportTables,
    _check_segment,
    as_tables,
)

# --- building blocks -------------------------------------------------------------------------

# Engagement flags of an IER, read from the checkbox or the date, whichever the org filled
# (see the module docstring); ierkit.decision counts with the same ones.
BOUNCED = (
    pl.col("hard_bounce").fill_null(False)
    | pl.col("soft_bounce").fill_null(False)
    | pl.col("date_bounced").is_not_null()
)
OPENED = pl.col("opened").fill_null(False) | pl.col("date_opened").is_not_null()
CLICKED = pl.col("clicked").fill_null(False) | (pl.col("unique_clicks").fill_null(0) > 0)
UNSUBSCRIBED = pl.col("unsubscribed").fill_null(False) | pl.col("date_unsubscribed").is_not_null()


def _ier_facts(iers: pl.LazyFrame) -> pl.LazyFrame:
    """IERs with recipient and send keys and the engagement flags derived.

    Filter the raw IERs (with ``CLICKED`` etc.) before calling this where a report can: the
    derived columns then cost only the rows kept. The programme is derived later still, on
    few rows or on distinct email names.
    """
    return iers.with_columns(
        recipient_id=pl.coalesce("contact_id", "lead_id"),
        send_id=pl.coalesce("email_send_id", "triggered_send_id"),
        is_bounced=BOUNCED,
        is_opened=OPENED,
        is_clicked=CLICKED,
        is_unsubscribed=UNSUBSCRIBED,
    )


def recipients(source: ReportTables | Org, *, extra_fields: Sequence[str] = ()) -> pl.LazyFrame:
    """Contacts and leads as one table of recipients, with their owner's name.

    Args:
        source: The tables, or an org.
        extra_fields: Further columns present on both Contact and Lead (see ``SEGMENT_FIELDS``).

    Returns:
        ``recipient_id``, ``recipient_type`` ("Contact"/"Lead"), ``recipient_name``, ``company``,
        ``email``, ``owner_id``, ``owner_name`` (``NO_OWNER`` when unknown), ``owner_email``, then
        ``extra_fields``; sorted by ``recipient_id``.
    """
    return _recipients(as_tables(source), extra_fields).sort("recipient_id")


def _recipients(tables: ReportTables, extra_fields: Sequence[str] = ()) -> pl.LazyFrame:
    """``recipients`` unsorted: for joins, where sorting 1M+ rows would be wasted work."""
    for name in extra_fields:
        _check_segment(name)
    # "company" is always there; asking for it as a segment must not select it twice.
    extra_fields = [n for n in dict.fromkeys(extra_fields) if n != "company"]

    def part(frame: pl.LazyFrame, kind: str) -> pl.LazyFrame:
        # Positional columns come first in a select, whatever their place in the call.
        return frame.select(
            *[pl.col(n) for n in extra_fields],
            recipient_id=pl.col("id"),
            recipient_type=pl.lit(kind),
            recipient_name=pl.concat_str(
                ["first_name", "last_name"], separator=" ", ignore_nulls=True
            ),
            company=pl.col("company"),
            email=pl.col("email"),
            owner_id=pl.col("owner_id"),
        )

    owners = tables.users.select(
        owner_id=pl.col("id"), owner_name=pl.col("name"), owner_email=pl.col("email")
    )
    return (
        pl.concat([part(tables.contacts, "Contact"), part(tables.leads, "Lead")])
        .join(owners, on="owner_id", how="left")
        .with_columns(pl.col("owner_name").fill_null(NO_OWNER))
        .select(
            "recipient_id",
            "recipient_type",
            "recipient_name",
            "company",
            "email",
            "owner_id",
            "owner_name",
            "owner_email",
            *extra_fields,
        )
    )


def sends(source: ReportTables | Org) -> pl.LazyFrame:
    """Email Sends and Triggered Sends as one table, with their campaign.

    Returns:
        ``send_id``, ``send_type`` ("Email Send"/"Triggered Send"), ``send_name`` (the email
        name of an Email Send, the name of a Triggered Send), ``subject_line``, ``campaign_id``,
        ``campaign_name`` (``NO_CAMPAIGN`` when none), ``campaign_type``; sorted by ``send_id``.
    """
    tables = as_tables(source)
    campaigns = tables.campaigns.select(
        campaign_id=pl.col("id"), campaign_name=pl.col("name"), campaign_type=pl.col("type")
    )
    email = tables.email_sends.select(
        send_id=pl.col("id"),
        send_type=pl.lit("Email Send"),
        send_name=pl.col("email_name"),
        subject_line=pl.col("subject_line"),
        campaign_id=pl.col("campaign_id"),
    )
    triggered = tables.triggered_sends.select(
        send_id=pl.col("id"),
        send_type=pl.lit("Triggered Send"),
        send_name=pl.col("name"),
        subject_line=pl.lit(None, dtype=pl.String),
        campaign_id=pl.lit(None, dtype=pl.String),
    )
    return (
        pl.concat([email, triggered])
        .join(campaigns, on="campaign_id", how="left")
        .with_columns(pl.col("campaign_name").fill_null(NO_CAMPAIGN))
        .sort("send_id")
    )
