"""What the tracking decision and the send plan from history share.

``ierkit.decision`` measures programmes from their IERs and recommends what to do with their
tracking; ``ierkit.storage`` turns the same IERs into a send plan and applies the recommendations
to it. Both read the IERs the same way (one programme rule, one send key, one link count) and
speak the same recommendations, so those live here, below both.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal

import polars as pl

from ierkit.programmes import programme_expr
from ierkit.reports import BOUNCED, CLICKED, NO_CAMPAIGN, OPENED, ReportTables, sends

GroupBy = Literal["email_name", "campaign", "campaign_type", "send_type"]
#: Ways to group sends into programmes.
GROUPINGS: Final = ("email_name", "campaign", "campaign_type", "send_type")

TRACK: Final = "track"
SKIP: Final = "skip"
TRACK_WITH_RETENTION: Final = "track with retention"
TOO_NEW: Final = "too new"
#: Every recommendation, in the order a table sorts them.
RECOMMENDATIONS: Final = (TRACK, TRACK_WITH_RETENTION, SKIP, TOO_NEW)


def unknown_grouping(group_by: str) -> str | None:
    """Why ``group_by`` cannot group sends, or None when it is one of ``GROUPINGS``."""
    if group_by in GROUPINGS:
        return None
    return f"group_by {group_by!r} is not one of {', '.join(GROUPINGS)}"


def programme_of(group_by: str, separator: str) -> pl.Expr:
    """The ``programme`` of an IER row of ``ier_rows`` under ``group_by`` (one of ``GROUPINGS``).

    Raises:
        ValueError: For a grouping not in ``GROUPINGS`` (callers check with ``unknown_grouping``
            first, so that the error names their own module).
    """
    if group_by == "email_name":
        return programme_expr(pl.coalesce("name", "send_name"), separator=separator)
    if group_by == "campaign":
        return pl.col("campaign_name").fill_null(NO_CAMPAIGN).alias("programme")
    if group_by == "campaign_type":
        return pl.col("campaign_type").fill_null(NO_CAMPAIGN).alias("programme")
    if group_by == "send_type":
        return pl.col("send_type").fill_null("(unknown send)").alias("programme")
    raise ValueError(unknown_grouping(group_by))


def ier_rows(
    tables: ReportTables,
    *,
    as_of: dt.datetime,
    since: dt.datetime | None,
    group_by: str,
    separator: str,
) -> pl.LazyFrame:
    """IERs sent in (since, as_of] with their programme, send key, flags and link count."""
    link_counts = (
        tables.links.filter(pl.col("individual_email_result_id").is_not_null())
        .group_by("individual_email_result_id")
        .agg(links=pl.len().cast(pl.Int64), first_link_click=pl.col("last_clicked").min())
        .rename({"individual_email_result_id": "id"})
    )
    window = pl.col("date_sent") <= as_of
    if since is not None:
        window = window & (pl.col("date_sent") > since)
    return (
        tables.iers.filter(window)
        .with_columns(send_id=pl.coalesce("email_send_id", "triggered_send_id"))
        .join(
            sends(tables).select(
                "send_id", "send_type", "send_name", "campaign_name", "campaign_type"
            ),
            on="send_id",
            how="left",
        )
        .join(link_counts, on="id", how="left")
        .with_columns(
            programme_of(group_by, separator),
            # A triggered send goes out in batches; a list send is batch 0. Older packages have
            # no batch Id: the day sent stands in.
            send_key=pl.concat_str(
                pl.col("send_id").fill_null("?"),
                pl.coalesce(
                    pl.col("batch_id").cast(pl.String),
                    pl.col("date_sent").dt.date().cast(pl.String),
                ),
                separator="/",
            ),
            recipient_id=pl.coalesce("contact_id", "lead_id"),
            links=pl.col("links").fill_null(0),
            is_bounced=BOUNCED,
            is_opened=OPENED,
            is_clicked=CLICKED,
        )
        .with_columns(
            is_engaged=pl.col("is_opened") | pl.col("is_clicked"),
            engaged_at=pl.min_horizontal("date_opened", "first_link_click").fill_null(
                pl.col("date_sent")
            ),
        )
    )
