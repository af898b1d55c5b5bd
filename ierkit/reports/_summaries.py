"""Summaries for marketing: roll-ups by campaign, owner, segment; trends; click heat map."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

import polars as pl

from ierkit import signal
from ierkit._exprs import rate
from ierkit.orgs.base import Org
from ierkit.programmes import programme_expr
from ierkit.reports._facts import (
    BOUNCED,
    CLICKED,
    OPENED,
    UNSUBSCRIBED,
    _recipients,
    sends,
)
from ierkit.reports._tables import (
    NO_CAMPAIGN,
    NO_OWNER,
    NO_SEGMENT,
    ReportError,
    ReportTables,
    _check_segment,
    _utc,
    as_tables,
)

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# --- summaries -------------------------------------------------------------------------------

#: Counts of a summary, in output order.
#: ``human_opens``/``human_clicks``: without suspected machine opens and automated clicks
#: (``ierkit.signal.classify_iers``).
SUMMARY_COUNTS = (
    "sent",
    "delivered",
    "bounces",
    "unique_opens",
    "unique_clicks",
    "unsubscribes",
    "human_opens",
    "human_clicks",
)

#: Rates of a summary, in output order: each metric over sent and over delivered.
RATE_COLUMNS = (
    "open_rate_over_sent",
    "open_rate_over_delivered",
    "click_rate_over_sent",
    "click_rate_over_delivered",
    "unsubscribe_rate_over_sent",
    "unsubscribe_rate_over_delivered",
    "bounce_rate_over_sent",
    # "opened 38%, 21% without machine opens": over sent, beside the raw rates.
    "open_rate_without_machine_opens",
    "click_rate_without_automated_clicks",
)

# The additive counts; delivered and the rates are derived from them after every roll-up.
_ADDITIVE = (
    "sent",
    "bounces",
    "unique_opens",
    "unique_clicks",
    "unsubscribes",
    "human_opens",
    "human_clicks",
)


def _count_aggs() -> list[pl.Expr]:
    # Sums of the raw flags: the IERs need not go through _ier_facts first (cheaper).
    return [
        pl.len().cast(pl.Int64).alias("sent"),
        BOUNCED.sum().cast(pl.Int64).alias("bounces"),
        OPENED.sum().cast(pl.Int64).alias("unique_opens"),
        CLICKED.sum().cast(pl.Int64).alias("unique_clicks"),
        UNSUBSCRIBED.sum().cast(pl.Int64).alias("unsubscribes"),
        pl.col("human_opened").sum().cast(pl.Int64).alias("human_opens"),
        pl.col("human_clicked").sum().cast(pl.Int64).alias("human_clicks"),
    ]


def _human_iers(tables: ReportTables) -> pl.LazyFrame:
    """The IERs with ``human_opened``/``human_clicked`` (``ierkit.signal.classify_iers``)."""
    flags = signal.classify_iers(tables.iers, tables.links).select(
        id="ier_id", human_opened="human_opened", human_clicked="human_clicked"
    )
    return tables.iers.join(flags, on="id", how="left", maintain_order="left").with_columns(
        pl.col("human_opened").fill_null(OPENED), pl.col("human_clicked").fill_null(CLICKED)
    )


def rollup(
    counts: pl.LazyFrame, by: Sequence[str], *, sort_by: Sequence[str] | None = None
) -> pl.LazyFrame:
    """Sum summary counts by ``by`` and add delivered and the rates over sent and delivered.

    Args:
        counts: Rows with the additive counts ``sent``, ``bounces``, ``unique_opens``,
            ``unique_clicks``, ``unsubscribes``, ``human_opens``, ``human_clicks`` (e.g. a
            summary's output) and the ``by`` columns.
        by: Grouping columns.
        sort_by: Output order; ``by`` when None.

    Returns:
        ``by``, then ``SUMMARY_COUNTS``, then ``RATE_COLUMNS``.
    """
    summed = counts.group_by(list(by)).agg(pl.col(c).sum().cast(pl.Int64) for c in _ADDITIVE)
    return (
        summed.with_columns(delivered=pl.col("sent") - pl.col("bounces"))
        .with_columns(
            open_rate_over_sent=rate("unique_opens", "sent"),
            open_rate_over_delivered=rate("unique_opens", "delivered"),
            click_rate_over_sent=rate("unique_clicks", "sent"),
            click_rate_over_delivered=rate("unique_clicks", "delivered"),
            unsubscribe_rate_over_sent=rate("unsubscribes", "sent"),
            unsubscribe_rate_over_delivered=rate("unsubscribes", "delivered"),
            bounce_rate_over_sent=rate("bounces", "sent"),
            open_rate_without_machine_opens=rate("human_opens", "sent"),
            click_rate_without_automated_clicks=rate("human_clicks", "sent"),
        )
        .select(*by, *SUMMARY_COUNTS, *RATE_COLUMNS)
        .sort(list(sort_by or by), nulls_last=True)
    )


def _period(
    iers: pl.LazyFrame, since: dt.datetime | dt.date | None, until: dt.datetime | dt.date | None
) -> pl.LazyFrame:
    if since is not None:
        iers = iers.filter(pl.col("date_sent") >= _utc(since, "since"))
    if until is not None:
        iers = iers.filter(pl.col("date_sent") < _utc(until, "until"))
    return iers


def _per_send_week(
    tables: ReportTables, since: dt.datetime | dt.date | None, until: dt.datetime | dt.date | None
) -> pl.LazyFrame:
    """Counts per send, email name and week sent: few rows, from low-cardinality columns.

    The campaign summary and the programme trend roll this one plan up, so collecting both
    together reads the IERs once.
    """
    return (
        _period(_human_iers(tables), since, until)
        .group_by(
            "email_send_id",
            "triggered_send_id",
            "name",
            week_start=pl.col("date_sent").dt.truncate("1w").dt.date(),
        )
        .agg(_count_aggs())
        .with_columns(send_id=pl.coalesce("email_send_id", "triggered_send_id"))
    )


def _per_recipient(
    tables: ReportTables, since: dt.datetime | dt.date | None, until: dt.datetime | dt.date | None
) -> pl.LazyFrame:
    """Counts per recipient. Owner and segment summaries build on the same plan, so
    ``pl.collect_all`` computes it once for both (common subplan elimination)."""
    return (
        _period(_human_iers(tables), since, until)
        .group_by("contact_id", "lead_id")
        .agg(_count_aggs())
        .with_columns(recipient_id=pl.coalesce("contact_id", "lead_id"))
    )


def campaign_summary(
    source: ReportTables | Org,
    *,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> pl.LazyFrame:
    """Sent, delivered, opens, clicks, bounces, unsubscribes and rates per campaign.

    Counted from the IERs (one per recipient per send) sent in ``[since, until)`` (a date means
    00:00 UTC that day). IERs of sends without a campaign (triggered sends) are grouped under
    ``NO_CAMPAIGN``.

    Returns:
        ``campaign_id``, ``campaign_name``, ``campaign_type``, ``SUMMARY_COUNTS``,
        ``RATE_COLUMNS``; by campaign name, campaign Id.
    """
    tables = as_tables(source)
    send_info = sends(tables).select("send_id", "campaign_id", "campaign_name", "campaign_type")
    counts = (
        _per_send_week(tables, since, until)
        .join(send_info, on="send_id", how="left")
        .with_columns(pl.col("campaign_name").fill_null(NO_CAMPAIGN))
    )
    return rollup(
        counts,
        ["campaign_id", "campaign_name", "campaign_type"],
        sort_by=["campaign_name", "campaign_id"],
    )


def owner_summary(
    source: ReportTables | Org,
    *,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> pl.LazyFrame:
    """Engagement per record owner of the recipients (the rep whose book it is).

    Returns:
        ``owner_id``, ``owner_name``, ``SUMMARY_COUNTS``, ``RATE_COLUMNS``; by owner name, Id.
    """
    tables = as_tables(source)
    owners = _recipients(tables).select("recipient_id", "owner_id", "owner_name")
    counts = (
        _per_recipient(tables, since, until)
        .join(owners, on="recipient_id", how="left")
        .with_columns(pl.col("owner_name").fill_null(NO_OWNER))
    )
    return rollup(counts, ["owner_id", "owner_name"], sort_by=["owner_name", "owner_id"])


def segment_summary(
    source: ReportTables | Org,
    *,
    segment: str = "industry",
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> pl.LazyFrame:
    """Engagement per value of a Contact/Lead field (industry, lifecycle stage, lead source).

    Args:
        source: The tables, or an org.
        segment: One of ``SEGMENT_FIELDS``.
        since: Earliest send date, inclusive.
        until: Latest send date, exclusive.

    Returns:
        ``segment`` (the field's name), ``segment_value`` (``NO_SEGMENT`` when empty),
        ``SUMMARY_COUNTS``, ``RATE_COLUMNS``; by segment value.

    Raises:
        ReportError: When ``segment`` is not one of ``SEGMENT_FIELDS``.
    """
    _check_segment(segment)
    tables = as_tables(source)
    values = _recipients(tables, [segment]).select("recipient_id", segment_value=pl.col(segment))
    counts = (
        _per_recipient(tables, since, until)
        .join(values, on="recipient_id", how="left")
        .with_columns(
            segment=pl.lit(segment),
            segment_value=pl.when(pl.col("segment_value").str.strip_chars().fill_null("") == "")
            .then(pl.lit(NO_SEGMENT))
            .otherwise(pl.col("segment_value")),
        )
    )
    return rollup(counts, ["segment", "segment_value"])


def programme_trend(
    source: ReportTables | Org,
    *,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> pl.LazyFrame:
    """Weekly opens and clicks per programme, by the week the email was sent.

    Opens and clicks are counted against the week of ``date_sent`` (IERs hold one open date and
    no click dates, so event-week counts are not available from an org). Weeks start on Monday,
    UTC.

    Returns:
        ``week_start`` (Date), ``programme``, ``SUMMARY_COUNTS``, ``RATE_COLUMNS``; by week
        then programme.
    """
    tables = as_tables(source)
    counts = (
        _per_send_week(tables, since, until)
        .filter(pl.col("week_start").is_not_null())
        # The programme rule runs on distinct email names, not on every IER.
        .with_columns(programme_expr("name"))
    )
    return rollup(counts, ["week_start", "programme"])


def click_heatmap(
    source: ReportTables | Org,
    *,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
    time_zone: str = "UTC",
) -> pl.LazyFrame:
    """Link clicks by weekday and hour of day: at most 7 x 24 rows, whatever the org's size.

    Each link detail counts once, at its ``last_clicked`` (Salesforce keeps no earlier click
    times), in ``time_zone``; ``total_clicks`` sums the link details' click counts.

    Args:
        source: The tables, or an org.
        since: Earliest click, inclusive (UTC).
        until: Latest click, exclusive (UTC).
        time_zone: IANA zone the weekdays and hours are shown in (say it in the chart title).

    Returns:
        ``weekday`` (1 = Monday), ``weekday_name``, ``hour`` (0-23), ``links_clicked``,
        ``total_clicks``, ``time_zone``; by weekday then hour. Only cells with clicks appear.
    """
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ReportError(f"click_heatmap: unknown time zone {time_zone!r}") from None
    tables = as_tables(source)
    links = tables.links.filter(pl.col("last_clicked").is_not_null())
    if since is not None:
        links = links.filter(pl.col("last_clicked") >= _utc(since, "since"))
    if until is not None:
        links = links.filter(pl.col("last_clicked") < _utc(until, "until"))
    local = pl.col("last_clicked").dt.convert_time_zone(time_zone)
    return (
        links.with_columns(
            weekday=local.dt.weekday().cast(pl.Int8), hour=local.dt.hour().cast(pl.Int8)
        )
        .group_by("weekday", "hour")
        .agg(
            links_clicked=pl.len().cast(pl.Int64),
            total_clicks=pl.col("total_clicks").fill_null(1).sum().cast(pl.Int64),
        )
        .with_columns(
            weekday_name=pl.col("weekday").replace_strict(
                list(range(1, 8)), list(_WEEKDAYS), return_dtype=pl.String
            ),
            time_zone=pl.lit(time_zone),
        )
        .select("weekday", "weekday_name", "hour", "links_clicked", "total_clicks", "time_zone")
        .sort("weekday", "hour")
    )


#: Names of the reports ``all_reports`` returns, in order.
