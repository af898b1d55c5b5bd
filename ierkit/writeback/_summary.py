"""The engagement summary per Contact and Lead: what ``ierkit writeback`` writes onto them.

Six values per person who has IERs (the columns of ``ierkit.schema``'s engagement summary):

- ``engagement_last_open``: the latest ``date_opened`` of an IER the person opened, possible
  machine opens left out (``ierkit.signal.classify_iers``).
- ``engagement_last_human_click``: the latest click not flagged as automated: a link detail's
  ``last_clicked``, or for a clicked IER without link details its ``tracking_as_of`` (then its
  ``date_opened``), as the engagement worklist dates a click.
- ``engagement_human_clicks_90d``: the human clicks dated in the 90 days up to the summary's
  instant (a link detail counts its ``total_clicks``, dated at its ``last_clicked``: the org
  keeps no time per click).
- ``engagement_score``: ``ierkit.signal.engagement_score``, the one score every report shows.
- ``engagement_last_link``: the name (else the URL) of the link a person clicked last.
- ``engagement_summary_as_of``: the instant the summary describes.

Times are cut to the millisecond, as Salesforce stores them, so a summary written and read back
compares equal and a second run writes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from ierkit import clock, schema, signal
from ierkit.orgs.base import Org

#: The six columns written onto Contacts and Leads, in schema order.
SUMMARY_COLUMNS: Final = tuple(
    c.name for c in schema.CONTACTS.columns if c.name.startswith("engagement_")
)

#: The window of ``engagement_human_clicks_90d``.
CLICK_WINDOW: Final = dt.timedelta(days=90)

#: ``Ierkit_Last_Link_Clicked__c`` is Text(255): longer link names are cut.
LINK_NAME_LENGTH: Final = 255

#: Columns of ``summarise``: the person's Id, then the six summary columns.
SUMMARY_SCHEMA: Final = pl.Schema(
    {"recipient_id": pl.String(), **{n: schema.CONTACTS.column(n).dtype for n in SUMMARY_COLUMNS}}
)


def _ms(expr: pl.Expr) -> pl.Expr:
    """A UTC datetime cut to the millisecond (Salesforce keeps DateTime to the millisecond)."""
    return expr.dt.truncate("1ms")


def summarise(
    org: Org, as_of: dt.datetime, params: signal.SignalParams | None = None
) -> pl.LazyFrame:
    """The engagement summary of every Contact and Lead with an IER sent by ``as_of``.

    Args:
        org: The org whose IERs and link details are summarised.
        as_of: The instant the summary describes (UTC; naive is read as UTC); later events
            are left out.
        params: The signal's windows and weights; the defaults when None.

    Returns:
        ``SUMMARY_SCHEMA``: ``recipient_id`` (the Contact or Lead Id) and the six summary
        columns, one row per person, sorted by ``recipient_id``.
    """
    iers, links = _tables(org)
    return summarise_tables(iers, links, as_of, params)


def summarise_tables(
    iers: pl.LazyFrame,
    links: pl.LazyFrame,
    as_of: dt.datetime,
    params: signal.SignalParams | None = None,
) -> pl.LazyFrame:
    """``summarise`` on the canonical IER and link detail tables themselves (see there)."""
    end = clock.to_utc(as_of)
    start = end - CLICK_WINDOW
    flags = signal.classify_iers(iers, links, params)
    scores = signal.engagement_score(flags, links, as_of=end, params=params).select(
        "recipient_id", "engagement_score"
    )
    facts = _facts(iers, flags, end)
    last_open = (
        facts.filter(pl.col("human_opened") & (pl.col("date_opened") <= end))
        .group_by("recipient_id")
        .agg(engagement_last_open=pl.col("date_opened").max())
    )
    named = pl.col("link").is_not_null()
    per_click = (
        _human_clicks(facts, links, end)
        .group_by("recipient_id")
        .agg(
            engagement_last_human_click=pl.col("clicked_at").max(),
            engagement_human_clicks_90d=pl.col("clicks")
            .filter(pl.col("clicked_at") > start)
            .sum()
            .cast(pl.Int32),
            # The link clicked last; two on the same instant: the first name in order.
            engagement_last_link=pl.col("link")
            .filter(named)
            .sort_by(
                pl.col("clicked_at").filter(named),
                pl.col("link").filter(named),
                descending=[True, False],
            )
            .first(),
        )
    )
    return (
        facts.select("recipient_id")
        .unique()
        .join(last_open, on="recipient_id", how="left")
        .join(per_click, on="recipient_id", how="left")
        .join(scores, on="recipient_id", how="left")
        .select(
            "recipient_id",
            engagement_last_open=_ms(pl.col("engagement_last_open")),
            engagement_last_human_click=_ms(pl.col("engagement_last_human_click")),
            engagement_human_clicks_90d=pl.col("engagement_human_clicks_90d").fill_null(0),
            engagement_score=pl.col("engagement_score").fill_null(0.0).round(2),
            engagement_last_link=pl.col("engagement_last_link").str.slice(0, LINK_NAME_LENGTH),
            engagement_summary_as_of=_ms(pl.lit(end, schema.UTC_DATETIME)),
        )
        .cast(SUMMARY_SCHEMA)
        .sort("recipient_id")
    )


def human_clicks(
    org: Org, as_of: dt.datetime, params: signal.SignalParams | None = None
) -> pl.LazyFrame:
    """Every human click of the org dated by ``as_of``: the clicks the summary counts.

    Returns:
        ``ier_id``, ``recipient_id``, ``email_name``, ``clicked_at``, ``clicks`` and ``link``
        (the link's name, else its URL; null for a clicked IER without link details).
    """
    end = clock.to_utc(as_of)
    iers, links = _tables(org)
    return _human_clicks(_facts(iers, signal.classify_iers(iers, links, params), end), links, end)


def _tables(org: Org) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    links = (
        org.table("individual_links")
        if org.has_table("individual_links")
        else schema.INDIVIDUAL_LINKS.empty().lazy()
    )
    return org.table("individual_email_results"), links


def _facts(iers: pl.LazyFrame, flags: pl.LazyFrame, end: dt.datetime) -> pl.LazyFrame:
    """IERs sent by ``end`` to a known person, with their signal flags."""
    return (
        iers.select(
            ier_id=pl.col("id"),
            email_name=pl.col("name"),
            date_opened=pl.col("date_opened"),
            ier_clicked_at=pl.coalesce("tracking_as_of", "date_opened"),
            ier_clicks=pl.coalesce("total_clicks", "unique_clicks").fill_null(1).clip(1, None),
        )
        .join(flags, on="ier_id", how="inner")
        .filter(pl.col("recipient_id").is_not_null() & (pl.col("date_sent") <= end))
    )


def _human_clicks(facts: pl.LazyFrame, links: pl.LazyFrame, end: dt.datetime) -> pl.LazyFrame:
    """Human clicks dated by ``end``: one row per link detail, or per clicked IER without any."""
    human = facts.filter("human_clicked").select(
        "ier_id", "recipient_id", "email_name", "ier_clicked_at", "ier_clicks"
    )
    link_clicks = (
        links.filter(pl.col("individual_email_result_id").is_not_null())
        .select(
            ier_id=pl.col("individual_email_result_id"),
            clicked_at=pl.col("last_clicked"),
            clicks=pl.col("total_clicks").fill_null(1).clip(1, None).cast(pl.Int64),
            link=pl.coalesce("link_name", "link_url"),
        )
        .join(human.select("ier_id", "recipient_id", "email_name"), on="ier_id", how="inner")
    )
    # A clicked IER without link details still counts, dated as the worklist dates its click.
    bare_clicks = human.join(link_clicks.select("ier_id"), on="ier_id", how="anti").select(
        "ier_id",
        "recipient_id",
        "email_name",
        clicked_at=pl.col("ier_clicked_at"),
        clicks=pl.col("ier_clicks").cast(pl.Int64),
        link=pl.lit(None, pl.String),
    )
    return pl.concat(
        [link_clicks.select(_CLICK_COLUMNS), bare_clicks.select(_CLICK_COLUMNS)]
    ).filter(pl.col("clicked_at") <= end)


_CLICK_COLUMNS: Final = ("ier_id", "recipient_id", "email_name", "clicked_at", "clicks", "link")
